//! LSTM step, ONNX semantics (FORMAT.md):
//!
//! ```text
//! i = f(clip(W_i x + R_i h + Wb_i + Rb_i + P_i . c))
//! f = f(clip(W_f x + R_f h + Wb_f + Rb_f + P_f . c))     or f = 1 - i (input_forget)
//! g = g(clip(W_g x + R_g h + Wb_g + Rb_g))
//! c = f . c + i . g
//! o = f(clip(W_o x + R_o h + Wb_o + Rb_o + P_o . c_new))
//! h = o . h(c)                       then h = W_hr h when proj_size > 0
//! ```

use super::activations::eval;
use super::{clip, matvec, matvec_f64_v64, StepParams};
use crate::config::lstm_gate::{F, G, I, O};

/// One LSTM step for one batch entry; see the module docs.
pub fn step(p: &StepParams<'_>, x: &[f32], h: &mut [f32], c: &mut [f32]) {
    let hs = p.cfg.hidden_size;
    let w = p.w;
    let gate = |k: usize| k * hs..(k + 1) * hs;
    // pre[k*H + j]: every gate's pre-activation before peepholes and clip.
    let mut pre: Vec<f64> =
        w.wb.iter()
            .zip(&w.rb)
            .map(|(&a, &b)| a as f64 + b as f64)
            .collect();
    matvec(p.dynamic, &w.w, x, 0..4 * hs, &mut pre);
    matvec(p.dynamic, &w.r, h, 0..4 * hs, &mut pre);

    // Without peepholes the cell state does not reach the gates at all: a
    // `0 * c` term would turn an infinite c into NaN (found by the
    // fast-vs-reference fuzz target; ONNX Runtime adds no such term).
    let peep = |k: usize, j: usize, c: f64| -> f64 {
        w.peepholes
            .as_ref()
            .map_or(0.0, |p| p[k * hs + j] as f64 * c)
    };
    let mut h_full = vec![0.0f64; hs];
    for j in 0..hs {
        let c_old = c[j] as f64;
        let i = eval(
            p.acts.f,
            clip(pre[gate(I)][j] + peep(0, j, c_old), p.cfg.clip),
        );
        let f = if p.cfg.input_forget {
            1.0 - i
        } else {
            eval(
                p.acts.f,
                clip(pre[gate(F)][j] + peep(1, j, c_old), p.cfg.clip),
            )
        };
        let g = eval(p.acts.g, clip(pre[gate(G)][j], p.cfg.clip));
        let c_new = f * c_old + i * g;
        let o = eval(
            p.acts.f,
            clip(pre[gate(O)][j] + peep(2, j, c_new), p.cfg.clip),
        );
        h_full[j] = o * eval(p.acts.h, c_new);
        c[j] = c_new as f32;
    }
    match &w.proj {
        None => {
            for (hj, v) in h.iter_mut().zip(&h_full) {
                *hj = *v as f32;
            }
        }
        Some(proj) => {
            let mut out = vec![0.0f64; h.len()];
            matvec_f64_v64(proj, &h_full, 0..h.len(), &mut out);
            for (hj, v) in h.iter_mut().zip(&out) {
                *hj = *v as f32;
            }
        }
    }
}
