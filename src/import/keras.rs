//! Keras `LSTM` / `GRU` layer weights (`layer.get_weights()`).
//!
//! Keras stores `kernel` `[I, G*H]` and `recurrent_kernel` `[H, G*H]`
//! (`[in, out]`, the transpose of ONNX/PyTorch). Gate order: LSTM
//! `i, f, c, o` (canonical already); GRU `z, r, h` (canonical already).
//! Biases: LSTM one `[4H]`; GRU `[3H]` with `reset_after=False` (the reset
//! before the matmul), `[2, 3H]` (input bias, recurrent bias) with
//! `reset_after=True` (the Keras 2+ default; the reset after the matmul).
//! Keras's GRU update `h = z ⊙ h + (1 - z) ⊙ n` is ONNX's.
//!
//! Activations: `recurrent_activation` is ONNX's `f` (the gates), and
//! `activation` is both `g` and `h`. Old Keras models default to
//! `hard_sigmoid` (`Activation::HardSigmoid { alpha: 0.2, beta: 0.5 }` in
//! Keras 2; Keras 3 uses `alpha: 1/6`).

use super::{transpose, TensorView};
use crate::builder::RnnBuilder;
use crate::config::{Activation, Activations, Cell, Config, GruReset};
use crate::error::{Error, Result};
use crate::model::Rnn;
use crate::weights::DirectionWeights;

/// A layer's activation functions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KerasActivations {
    /// `activation` (default tanh): candidate and cell output.
    pub activation: Activation,
    /// `recurrent_activation` (default sigmoid): the gates.
    pub recurrent_activation: Activation,
}

impl Default for KerasActivations {
    fn default() -> Self {
        KerasActivations {
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
        }
    }
}

impl KerasActivations {
    fn to_onnx(self) -> Activations {
        Activations {
            f: self.recurrent_activation,
            g: self.activation,
            h: self.activation,
        }
    }
}

fn direction(
    cell: Cell,
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias_in: Option<&[f32]>,
    bias_rec: Option<&[f32]>,
) -> Result<(usize, usize, DirectionWeights)> {
    let g = cell.gates();
    let [input, gh] = kernel.dims::<2>("kernel")?;
    let [hidden, gh2] = recurrent.dims::<2>("recurrent_kernel")?;
    // Checked: the shapes are the file's; `recurrent_kernel`'s data then
    // hold H * G*H floats, which bounds every size below.
    if hidden == 0 || Some(gh) != hidden.checked_mul(g) || gh2 != gh {
        return Err(Error::Shape {
            what: "recurrent_kernel".into(),
            expected: vec![hidden, hidden.saturating_mul(g)],
            got: recurrent.shape.to_vec(),
        });
    }
    let bias = |b: Option<&[f32]>| -> Vec<f32> { b.map_or(vec![0.0; gh], |b| b.to_vec()) };
    Ok((
        input,
        hidden,
        DirectionWeights {
            w: transpose(kernel.data, input, gh),
            r: transpose(recurrent.data, hidden, gh),
            wb: bias(bias_in),
            rb: bias(bias_rec),
            peepholes: None,
            proj: None,
        },
    ))
}

/// Canonical weights of a Keras LSTM: `kernel` `[I, 4H]`,
/// `recurrent_kernel` `[H, 4H]`, optional `bias` `[4H]`, order `i, f, c, o`.
/// Returns `(input_size, hidden_size, weights)`.
pub fn lstm_direction(
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias: Option<TensorView<'_>>,
) -> Result<(usize, usize, DirectionWeights)> {
    if let Some(b) = bias {
        b.expect("bias", &[kernel.shape.get(1).copied().unwrap_or(0)])?;
    }
    direction(Cell::Lstm, kernel, recurrent, bias.map(|b| b.data), None)
}

/// Canonical weights of a Keras GRU: `kernel` `[I, 3H]`,
/// `recurrent_kernel` `[H, 3H]`, optional `bias` (`[2, 3H]` when
/// `reset_after`, else `[3H]`), order `z, r, h`.
/// Returns `(input_size, hidden_size, weights)`.
pub fn gru_direction(
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias: Option<TensorView<'_>>,
    reset_after: bool,
) -> Result<(usize, usize, DirectionWeights)> {
    let gh = kernel.shape.get(1).copied().unwrap_or(0);
    match bias {
        None => direction(Cell::Gru, kernel, recurrent, None, None),
        Some(b) if reset_after => {
            b.expect("bias", &[2, gh])?;
            direction(
                Cell::Gru,
                kernel,
                recurrent,
                Some(&b.data[..gh]),
                Some(&b.data[gh..]),
            )
        }
        Some(b) => {
            b.expect("bias", &[gh])?;
            direction(Cell::Gru, kernel, recurrent, Some(b.data), None)
        }
    }
}

/// A one-layer forward Keras LSTM as a model.
///
/// # Errors
/// [`Error::Shape`] for misshapen tensors; as [`RnnBuilder::build`].
pub fn lstm(
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias: Option<TensorView<'_>>,
    acts: KerasActivations,
) -> Result<Rnn> {
    lstm_builder(kernel, recurrent, bias, acts)?.build()
}

/// [`lstm`] as an [`RnnBuilder`]: choose the kernel family and weight
/// format before the weights are packed.
///
/// # Errors
/// As for [`lstm`], except those of packing.
pub fn lstm_builder(
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias: Option<TensorView<'_>>,
    acts: KerasActivations,
) -> Result<RnnBuilder> {
    let (input, hidden, w) = lstm_direction(kernel, recurrent, bias)?;
    let mut cfg = Config::new(Cell::Lstm, input, hidden);
    cfg.activations = [acts.to_onnx(); 2];
    Ok(RnnBuilder::new(cfg, vec![w]))
}

/// A one-layer forward Keras GRU as a model (`reset_after` picks the
/// variant and the bias shape).
///
/// # Errors
/// As for [`lstm`].
pub fn gru(
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias: Option<TensorView<'_>>,
    reset_after: bool,
    acts: KerasActivations,
) -> Result<Rnn> {
    gru_builder(kernel, recurrent, bias, reset_after, acts)?.build()
}

/// [`gru`] as an [`RnnBuilder`].
///
/// # Errors
/// As for [`gru`], except those of packing.
pub fn gru_builder(
    kernel: TensorView<'_>,
    recurrent: TensorView<'_>,
    bias: Option<TensorView<'_>>,
    reset_after: bool,
    acts: KerasActivations,
) -> Result<RnnBuilder> {
    let (input, hidden, w) = gru_direction(kernel, recurrent, bias, reset_after)?;
    let mut cfg = Config::new(Cell::Gru, input, hidden);
    cfg.gru_reset = if reset_after {
        GruReset::AfterMatmul
    } else {
        GruReset::BeforeMatmul
    };
    cfg.activations = [acts.to_onnx(); 2];
    Ok(RnnBuilder::new(cfg, vec![w]))
}
