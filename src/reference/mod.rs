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
    /// [`crate::WeightFormat::Int8Dynamic`]: the products of `W` with `x`
    /// and of `R` with the previous `h` quantize their vector per step
    /// ([`crate::quantize_activations`]) and multiply integers
    /// (an exact integer product); the weights must be int8-rounded already.
    pub dynamic: bool,
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

/// `out[j] += (Σ_k q_w[j, k] * q_v[k]) * (s_w[j] * s_v)` for rows `rows`:
/// the [`crate::WeightFormat::Int8Dynamic`] product, with `v` quantized by
/// [`crate::quantize_activations`] and each row of `m` (already rounded to
/// int8) quantized again by [`crate::quantize_row_int8`] (idempotent: the
/// packed `q_w`, `s_w`). The integer sum is exact; it is converted to f32
/// and scaled in f32 exactly as the fast kernels do, so a fast kernel and
/// the reference given the same `v` agree on the product to the f32
/// rounding of the final additions.
pub(crate) fn matvec_dynamic(m: &[f32], v: &[f32], rows: std::ops::Range<usize>, out: &mut [f64]) {
    let n = v.len();
    let mut qv = vec![0i8; n];
    let sv = crate::weights::quantize_activations(v, &mut qv);
    let mut qw = vec![0i8; n];
    for (o, j) in out.iter_mut().zip(rows) {
        let sw = crate::weights::quantize_row_int8(&m[j * n..(j + 1) * n], &mut qw);
        let acc: i64 = qw
            .iter()
            .zip(&qv)
            .map(|(&a, &b)| i64::from(a) * i64::from(b))
            .sum();
        // |acc| <= 127^2 * INT8_DYNAMIC_MAX_K < 2^31 (checked when the
        // format is chosen).
        *o += ((acc as i32) as f32 * (sw * sv)) as f64;
    }
}

/// [`matvec_dynamic`] if `dynamic`, else [`matvec_f64`].
pub(crate) fn matvec(
    dynamic: bool,
    m: &[f32],
    v: &[f32],
    rows: std::ops::Range<usize>,
    out: &mut [f64],
) {
    if dynamic {
        matvec_dynamic(m, v, rows, out)
    } else {
        matvec_f64(m, v, rows, out)
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
