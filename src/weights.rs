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

/// How the fast kernels store the weight matrices (`W`, `R`, the
/// projection) once packed; compute, biases, peepholes and states stay f32.
///
/// The 16-bit formats halve the bytes a step reads, which is what bounds a
/// batch-1 step once the weights leave L2 (large H). They change the model:
/// [`crate::Rnn::with_weight_format`] rounds the matrices to the format
/// (nearest, ties to even) and every kernel, the reference included, then
/// computes with the rounded values. Rounding error per weight: bf16
/// 2^-9 relative (8 significant bits), f16 2^-12 relative (11 bits, normal
/// range; magnitudes below 6.1e-5 lose precision, below 6e-8 become 0,
/// above 65504 become infinite).
///
/// Measured on the project's Zen 4 machine (README), batch 1: with
/// AVX-512 bf16 makes a step 1.5-1.9x faster and f16 1.0-1.4x; with AVX2
/// (H = 1024) 1.3-1.5x. Batches are no faster (AVX-512) or slower (AVX2):
/// keep f32 for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightFormat {
    /// 32-bit floats, as given.
    #[default]
    F32,
    /// IEEE binary16 (widened with F16C / AVX-512F).
    F16,
    /// bfloat16, the high half of an f32 (widened by a 16-bit shift).
    Bf16,
}

impl WeightFormat {
    /// Every format.
    pub const ALL: &'static [WeightFormat] =
        &[WeightFormat::F32, WeightFormat::F16, WeightFormat::Bf16];

    /// `"f32"`, `"f16"` or `"bf16"` (as in kernel names and tool flags).
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Bf16 => "bf16",
        }
    }

    /// The format of that name.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for any other name (as
    /// [`crate::KernelFamily::from_name`] gives for a family).
    pub fn from_name(name: &str) -> Result<WeightFormat> {
        WeightFormat::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name)
            .ok_or_else(|| Error::UnknownName {
                kind: "weight format",
                name: name.to_string(),
                known: WeightFormat::ALL.iter().map(|f| f.name()).collect(),
            })
    }

    /// Bytes per stored weight.
    pub fn bytes(self) -> usize {
        match self {
            WeightFormat::F32 => 4,
            WeightFormat::F16 | WeightFormat::Bf16 => 2,
        }
    }

    /// `x` rounded to the format and widened back to f32 (exactly what a
    /// kernel loads).
    pub fn round(self, x: f32) -> f32 {
        match self {
            WeightFormat::F32 => x,
            WeightFormat::F16 => half::f16::from_f32(x).to_f32(),
            WeightFormat::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }
}

fn check(what: &str, v: &[f32], dims: &[usize]) -> Result<()> {
    // Bounded by `Config::validate`, which runs first; checked all the same.
    let expected = crate::error::product(what, dims)?;
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
    /// These weights with the matrices (`w`, `r`, `proj`) rounded to
    /// `format`; biases and peepholes unchanged.
    pub fn rounded(&self, format: WeightFormat) -> DirectionWeights {
        let r = |v: &Vec<f32>| v.iter().map(|&x| format.round(x)).collect::<Vec<f32>>();
        DirectionWeights {
            w: r(&self.w),
            r: r(&self.r),
            wb: self.wb.clone(),
            rb: self.rb.clone(),
            peepholes: self.peepholes.clone(),
            proj: self.proj.as_ref().map(r),
        }
    }

    /// Checks every shape against the configuration for layer `layer`
    /// (the configuration itself is checked first).
    ///
    /// # Errors
    /// [`Error::Shape`] for a tensor of the wrong size,
    /// [`Error::MissingTensor`] / [`Error::Unsupported`] for a projection
    /// or peepholes that do not match the configuration.
    pub fn validate(&self, cfg: &Config, layer: usize) -> Result<()> {
        cfg.validate()?;
        let g = cfg.cell.gates();
        let h = cfg.hidden_size;
        let hout = cfg.output_size();
        let inp = cfg.layer_input_size(layer);
        check("W", &self.w, &[g * h, inp])?;
        check("R", &self.r, &[g * h, hout])?;
        check("input bias", &self.wb, &[g * h])?;
        check("recurrent bias", &self.rb, &[g * h])?;
        if let Some(p) = &self.peepholes {
            if cfg.cell != Cell::Lstm {
                return Err(Error::Unsupported("peepholes on a GRU".into()));
            }
            check("peepholes", p, &[3 * h])?;
        }
        match (&self.proj, cfg.proj_size) {
            (None, 0) => {}
            (Some(p), ps) if ps > 0 => check("projection", p, &[hout, h])?,
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
