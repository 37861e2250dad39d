//! Canonical weights: one gate order per cell, f32, `[out, in]` row-major.
//!
//! Every importer produces these; every kernel packs from them.

use crate::config::{Cell, Config};
use crate::error::{Error, Result};

/// The weights of one direction of one layer, in canonical form.
///
/// Gate blocks are stacked along the rows in the canonical order: LSTM
/// `i, f, g, o`, GRU `z, r, n` (see [`crate::config::lstm_gate`],
/// [`crate::config::gru_gate`]). With `G` gates, `H = hidden_size`,
/// `Hout = output_size` and `In` the layer's input size:
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionWeights {
    /// Input weights `[G*H, In]`.
    pub w: Vec<f32>,
    /// Recurrent weights `[G*H, Hout]`.
    pub r: Vec<f32>,
    /// Input bias `[G*H]` (ONNX `Wb`, PyTorch `bias_ih`).
    pub wb: Vec<f32>,
    /// Recurrent bias `[G*H]` (ONNX `Rb`, PyTorch `bias_hh`). Kept apart
    /// from `wb` because the GRU reset-after form scales it by `r`.
    pub rb: Vec<f32>,
    /// LSTM peepholes `[3*H]` in the order `i, f, o`, or `None`.
    pub peepholes: Option<Vec<f32>>,
    /// LSTM projection `[Hout, H]` (PyTorch `weight_hr`), present iff
    /// `proj_size > 0`.
    pub proj: Option<Vec<f32>>,
}

fn check(what: &str, v: &[f32], expected: usize, dims: &[usize]) -> Result<()> {
    if v.len() != expected {
        return Err(Error::Shape {
            what: what.to_string(),
            expected: dims.to_vec(),
            got: vec![v.len()],
        });
    }
    Ok(())
}

impl DirectionWeights {
    /// Checks every shape against the configuration for layer `layer`.
    pub fn validate(&self, cfg: &Config, layer: usize) -> Result<()> {
        let g = cfg.cell.gates();
        let h = cfg.hidden_size;
        let hout = cfg.output_size();
        let inp = cfg.layer_input_size(layer);
        check("W", &self.w, g * h * inp, &[g * h, inp])?;
        check("R", &self.r, g * h * hout, &[g * h, hout])?;
        check("input bias", &self.wb, g * h, &[g * h])?;
        check("recurrent bias", &self.rb, g * h, &[g * h])?;
        if let Some(p) = &self.peepholes {
            if cfg.cell != Cell::Lstm {
                return Err(Error::Unsupported("peepholes on a GRU".into()));
            }
            check("peepholes", p, 3 * h, &[3 * h])?;
        }
        match (&self.proj, cfg.proj_size) {
            (None, 0) => {}
            (Some(p), ps) if ps > 0 => check("projection", p, hout * h, &[hout, h])?,
            (Some(_), _) => {
                return Err(Error::Unsupported(
                    "projection weights without proj_size".into(),
                ))
            }
            (None, _) => return Err(Error::MissingTensor("projection weights".into())),
        }
        Ok(())
    }
}
