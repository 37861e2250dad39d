//! The seed document's concatenated form: one matrix per gate over
//! `x_in = [h_{t-1}, x_t]`, each `[(H + I), H]` (`[in, out]`: rows `0..H`
//! multiply `h`, rows `H..H+I` multiply `x`), and one bias `[H]` per gate.
//!
//! LSTM gates as the seed writes them: `f, i, c, o`. GRU gates `r, z, h`,
//! with the reset applied before the matmul (Cho et al. 2014) and the seed's
//! update `h = z ⊙ n + (1 - z) ⊙ h`. That is ONNX's cell with the update
//! gate's sign flipped (`1 - σ(a) = σ(-a)`), so z's weights and bias are
//! negated on import (exact for the default sigmoid).

use crate::builder::RnnBuilder;
use crate::config::{Cell, Config, GruReset};
use crate::error::{Error, Result};
use crate::model::Rnn;
use crate::weights::DirectionWeights;

/// One gate of the concatenated form.
#[derive(Debug, Clone, Copy)]
pub struct ConcatGate<'a> {
    /// `[(H + I), H]`, rows over `[h, x]`.
    pub weight: &'a [f32],
    /// `[H]`.
    pub bias: &'a [f32],
}

/// Splits the gates into canonical `W [G*H, I]`, `R [G*H, H]`, bias.
fn split(
    gates: &[ConcatGate<'_>],
    hidden: usize,
    input: usize,
    negate: &[bool],
) -> Result<DirectionWeights> {
    let g = gates.len();
    // `Config::validate` has bounded H and I; the gates' lengths are checked
    // before anything is sized from them.
    let rows = hidden + input;
    for (k, gate) in gates.iter().enumerate() {
        if gate.weight.len() != rows * hidden {
            return Err(Error::Shape {
                what: format!("gate {k} weight"),
                expected: vec![rows, hidden],
                got: vec![gate.weight.len()],
            });
        }
        if gate.bias.len() != hidden {
            return Err(Error::Shape {
                what: format!("gate {k} bias"),
                expected: vec![hidden],
                got: vec![gate.bias.len()],
            });
        }
    }
    let mut w = vec![0.0; g * hidden * input];
    let mut r = vec![0.0; g * hidden * hidden];
    let mut wb = vec![0.0; g * hidden];
    for (k, gate) in gates.iter().enumerate() {
        let s = if negate[k] { -1.0 } else { 1.0 };
        for j in 0..hidden {
            for m in 0..hidden {
                r[(k * hidden + j) * hidden + m] = s * gate.weight[m * hidden + j];
            }
            for i in 0..input {
                w[(k * hidden + j) * input + i] = s * gate.weight[(hidden + i) * hidden + j];
            }
            wb[k * hidden + j] = s * gate.bias[j];
        }
    }
    Ok(DirectionWeights {
        w,
        r,
        wb,
        rb: vec![0.0; g * hidden],
        peepholes: None,
        proj: None,
    })
}

/// An LSTM from the seed's gates in its order `[f, i, c, o]`.
///
/// # Errors
/// [`Error::InvalidAttribute`] for bad sizes, [`Error::Shape`] for gates
/// of the wrong length; as [`RnnBuilder::build`].
pub fn lstm(gates_fico: [ConcatGate<'_>; 4], hidden: usize, input: usize) -> Result<Rnn> {
    lstm_builder(gates_fico, hidden, input)?.build()
}

/// [`lstm`] as an [`RnnBuilder`].
///
/// # Errors
/// As for [`lstm`], except those of packing.
pub fn lstm_builder(
    gates_fico: [ConcatGate<'_>; 4],
    hidden: usize,
    input: usize,
) -> Result<RnnBuilder> {
    let [f, i, c, o] = gates_fico;
    let cfg = Config::new(Cell::Lstm, input, hidden);
    cfg.validate()?;
    let w = split(&[i, f, c, o], hidden, input, &[false; 4])?;
    Ok(RnnBuilder::new(cfg, vec![w]))
}

/// A GRU from the seed's gates in its order `[r, z, h]` (reset before the
/// matmul; the seed's z is negated to ONNX's sense).
///
/// # Errors
/// As for [`lstm`].
pub fn gru(gates_rzh: [ConcatGate<'_>; 3], hidden: usize, input: usize) -> Result<Rnn> {
    gru_builder(gates_rzh, hidden, input)?.build()
}

/// [`gru`] as an [`RnnBuilder`].
///
/// # Errors
/// As for [`gru`], except those of packing.
pub fn gru_builder(
    gates_rzh: [ConcatGate<'_>; 3],
    hidden: usize,
    input: usize,
) -> Result<RnnBuilder> {
    let [r, z, h] = gates_rzh;
    let mut cfg = Config::new(Cell::Gru, input, hidden);
    cfg.gru_reset = GruReset::BeforeMatmul;
    cfg.validate()?;
    let w = split(&[z, r, h], hidden, input, &[true, false, false])?;
    Ok(RnnBuilder::new(cfg, vec![w]))
}
