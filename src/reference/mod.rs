//! The scalar reference: the LSTM and GRU equations (crate docs, `lstm.rs`,
//! `gru.rs`) with the ONNX Runtime and PyTorch semantics the golden cases
//! pin (`tests/data/GOLDEN_FORMAT.md`), written for clarity. It is the oracle every fast kernel is
//! tested against.
//!
//! **Accumulation.** Weights, inputs and the states carried between steps
//! are f32 (the API's types), but everything inside one step (the dot
//! products, biases, peepholes, clip, activations and the state update) is
//! computed in f64 and rounded to f32 once when the new `h` and `c` are
//! stored. That makes the reference's own rounding error negligible
//! (about one f32 ULP per step), so a difference between a fast kernel and
//! the reference is the fast kernel's error, and the golden files (ONNX
//! Runtime and PyTorch, themselves f32) are matched to their own precision.
//! Because the sequence run and the streaming step both call the same step
//! functions with f32 states in between, the two give bit-identical results.

pub mod activations;
pub mod gru;
pub mod lstm;

use crate::config::{Cell, Config};
use crate::weights::DirectionWeights;

/// Per-direction settings the step functions need.
#[derive(Debug, Clone, Copy)]
pub struct StepParams<'a> {
    /// The model configuration.
    pub cfg: &'a Config,
    /// The activation set for this direction.
    pub acts: crate::config::Activations,
    /// The weights of this direction and layer.
    pub w: &'a DirectionWeights,
}

/// One step of one batch entry: `x` is the layer input `[In]`, `h` the
/// recurrent state `[Hout]` and `c` the cell state `[H]` (empty for GRU);
/// both are updated in place.
pub fn step(p: &StepParams<'_>, x: &[f32], h: &mut [f32], c: &mut [f32]) {
    match p.cfg.cell {
        Cell::Lstm => lstm::step(p, x, h, c),
        Cell::Gru => gru::step(p, x, h),
    }
}

/// `out[j] = sum_k m[j, k] * v[k]` for rows `rows` of the row-major matrix
/// `m` with `v.len()` columns, in f64.
pub(crate) fn matvec_f64(m: &[f32], v: &[f32], rows: std::ops::Range<usize>, out: &mut [f64]) {
    let n = v.len();
    for (o, j) in out.iter_mut().zip(rows) {
        let row = &m[j * n..(j + 1) * n];
        *o += row
            .iter()
            .zip(v)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum::<f64>();
    }
}

/// Same as [`matvec_f64`] with an f64 vector.
pub(crate) fn matvec_f64_v64(m: &[f32], v: &[f64], rows: std::ops::Range<usize>, out: &mut [f64]) {
    let n = v.len();
    for (o, j) in out.iter_mut().zip(rows) {
        let row = &m[j * n..(j + 1) * n];
        *o += row.iter().zip(v).map(|(&a, &b)| a as f64 * b).sum::<f64>();
    }
}

/// Clamps to `[-clip, clip]` when a clip is set.
pub(crate) fn clip(v: f64, clip: Option<f32>) -> f64 {
    match clip {
        Some(c) => v.clamp(-(c as f64), c as f64),
        None => v,
    }
}
