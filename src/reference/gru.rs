//! GRU step, ONNX semantics (FORMAT.md), both reset placements:
//!
//! ```text
//! z = f(clip(W_z x + R_z h + Wb_z + Rb_z))
//! r = f(clip(W_r x + R_r h + Wb_r + Rb_r))
//! BeforeMatmul: n = g(clip(W_n x + R_n (r . h) + Rb_n + Wb_n))
//! AfterMatmul:  n = g(clip(W_n x + r . (R_n h + Rb_n) + Wb_n))
//! h = (1 - z) . n + z . h
//! ```
//!
//! The seed document's `h = z . n + (1 - z) . h` is the same cell with the
//! update gate's sign flipped (`1 - σ(a) = σ(-a)`); the concatenated-form
//! importer negates z's weights and bias to map it here.

use super::activations::eval;
use super::{clip, matvec, StepParams};
use crate::config::gru_gate::{N, R, Z};
use crate::config::GruReset;

/// One GRU step for one batch entry; see the module docs.
pub fn step(p: &StepParams<'_>, x: &[f32], h: &mut [f32]) {
    let hs = p.cfg.hidden_size;
    let w = p.w;
    let gate = |k: usize| k * hs..(k + 1) * hs;
    // Input part of every gate, with the input bias.
    let mut xin: Vec<f64> = w.wb.iter().map(|&b| b as f64).collect();
    matvec(p.dynamic, &w.w, x, 0..3 * hs, &mut xin);
    // Recurrent part of z and r, with their recurrent bias.
    let mut zr: Vec<f64> = w.rb[..2 * hs].iter().map(|&b| b as f64).collect();
    matvec(p.dynamic, &w.r, h, 0..2 * hs, &mut zr);

    let z: Vec<f64> = (0..hs)
        .map(|j| eval(p.acts.f, clip(xin[gate(Z)][j] + zr[gate(Z)][j], p.cfg.clip)))
        .collect();
    let r: Vec<f64> = (0..hs)
        .map(|j| eval(p.acts.f, clip(xin[gate(R)][j] + zr[gate(R)][j], p.cfg.clip)))
        .collect();
    let mut rec_n: Vec<f64> = w.rb[gate(N)].iter().map(|&b| b as f64).collect();
    match p.cfg.gru_reset {
        GruReset::BeforeMatmul => {
            let rh64: Vec<f64> = (0..hs).map(|j| r[j] * h[j] as f64).collect();
            super::matvec_f64_v64(&w.r, &rh64, gate(N), &mut rec_n);
        }
        GruReset::AfterMatmul => {
            matvec(p.dynamic, &w.r, h, gate(N), &mut rec_n);
            for (v, rj) in rec_n.iter_mut().zip(&r) {
                *v *= rj;
            }
        }
    }
    for j in 0..hs {
        let n = eval(p.acts.g, clip(xin[gate(N)][j] + rec_n[j], p.cfg.clip));
        h[j] = ((1.0 - z[j]) * n + z[j] * h[j] as f64) as f32;
    }
}
