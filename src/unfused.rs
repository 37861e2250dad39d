//! The unfused baseline, kept for comparison in benchmarks: the textbook
//! way every general framework runs an RNN. One GEMM for the input part of
//! all steps, then per step a GEMM for the recurrent part (matrixmultiply,
//! which repacks its operands on every call), followed by separate passes
//! over memory for the bias, the sigmoid, the tanh and the state update.
//! Single-layer forward models with default activations only.

use crate::config::{Cell, Direction, GruReset};
use crate::error::{Error, Result};
use crate::model::Rnn;

/// A single-layer forward LSTM or GRU (reset after the matmul), unfused.
#[derive(Debug, Clone)]
pub struct Unfused {
    cell: Cell,
    h: usize,
    i: usize,
    w: Vec<f32>,
    r: Vec<f32>,
    bias: Vec<f32>,
    rbn: Vec<f32>,
}

/// Scratch buffers of the baseline.
#[derive(Debug, Default, Clone)]
pub struct UnfusedWs {
    xproj: Vec<f32>,
    gates: Vec<f32>,
}

fn sigmoid(v: &mut [f32]) {
    for x in v {
        *x = 1.0 / (1.0 + (-*x).exp());
    }
}

fn tanh(v: &mut [f32]) {
    for x in v {
        *x = x.tanh();
    }
}

impl Unfused {
    /// The baseline of `model`'s weights; a typed error for what it does
    /// not cover (several layers, reverse, projection, peepholes, clip,
    /// non-default activations, GRU reset before the matmul).
    pub fn new(model: &Rnn) -> Result<Unfused> {
        let cfg = model.config();
        let w = &model.weights()[0];
        if cfg.num_layers != 1
            || cfg.direction != Direction::Forward
            || cfg.proj_size != 0
            || cfg.clip.is_some()
            || cfg.input_forget
            || w.peepholes.is_some()
            || !cfg.activations[0].is_default()
            || (cfg.cell == Cell::Gru && cfg.gru_reset == GruReset::BeforeMatmul)
        {
            return Err(Error::Unsupported(
                "the unfused baseline covers single-layer forward models with default activations"
                    .into(),
            ));
        }
        let (h, g) = (cfg.hidden_size, cfg.cell.gates());
        let bias = (0..g * h)
            .map(|k| {
                w.wb[k]
                    + if cfg.cell == Cell::Gru && k >= 2 * h {
                        0.0
                    } else {
                        w.rb[k]
                    }
            })
            .collect();
        let rbn = if cfg.cell == Cell::Gru {
            w.rb[2 * h..].to_vec()
        } else {
            Vec::new()
        };
        Ok(Unfused {
            cell: cfg.cell,
            h,
            i: cfg.input_size,
            w: w.w.clone(),
            r: w.r.clone(),
            bias,
            rbn,
        })
    }

    /// Runs `x` `[T, B, I]`; `h` `[B, H]`, `c` `[B, H]` (LSTM) are the
    /// state, `out` `[T, B, H]`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        x: &[f32],
        t: usize,
        b: usize,
        h: &mut [f32],
        c: &mut [f32],
        out: &mut [f32],
        ws: &mut UnfusedWs,
    ) -> Result<()> {
        let (hs, g, i) = (self.h, self.cell.gates(), self.i);
        crate::error::check_len("input", t * b * i, x.len())?;
        crate::error::check_len("output", t * b * hs, out.len())?;
        crate::error::check_len("h", b * hs, h.len())?;
        if self.cell == Cell::Lstm {
            crate::error::check_len("c", b * hs, c.len())?;
        }
        let gh = g * hs;
        ws.xproj.resize(t * b * gh, 0.0);
        ws.gates.resize(b * gh, 0.0);
        // SAFETY: the slices hold m*k, k*n (as W^T via strides) and m*n floats.
        unsafe {
            matrixmultiply::sgemm(
                t * b,
                i,
                gh,
                1.0,
                x.as_ptr(),
                i as isize,
                1,
                self.w.as_ptr(),
                1,
                i as isize,
                0.0,
                ws.xproj.as_mut_ptr(),
                gh as isize,
                1,
            );
        }
        for s in 0..t {
            let gates = &mut ws.gates;
            // SAFETY: h is [B, H], R^T via strides is [H, G*H], gates [B, G*H].
            unsafe {
                matrixmultiply::sgemm(
                    b,
                    hs,
                    gh,
                    1.0,
                    h.as_ptr(),
                    hs as isize,
                    1,
                    self.r.as_ptr(),
                    1,
                    hs as isize,
                    0.0,
                    gates.as_mut_ptr(),
                    gh as isize,
                    1,
                );
            }
            let xp = &ws.xproj[s * b * gh..(s + 1) * b * gh];
            match self.cell {
                Cell::Lstm => {
                    for e in 0..b {
                        let row = &mut gates[e * gh..(e + 1) * gh];
                        for k in 0..gh {
                            row[k] += xp[e * gh + k] + self.bias[k];
                        }
                        sigmoid(&mut row[..2 * hs]);
                        tanh(&mut row[2 * hs..3 * hs]);
                        sigmoid(&mut row[3 * hs..]);
                        let (cr, hr) = (&mut c[e * hs..(e + 1) * hs], &mut h[e * hs..(e + 1) * hs]);
                        for j in 0..hs {
                            cr[j] = row[hs + j] * cr[j] + row[j] * row[2 * hs + j];
                        }
                        for j in 0..hs {
                            hr[j] = cr[j].tanh();
                        }
                        for j in 0..hs {
                            hr[j] *= row[3 * hs + j];
                        }
                    }
                }
                Cell::Gru => {
                    for e in 0..b {
                        let row = &mut gates[e * gh..(e + 1) * gh];
                        let xr = &xp[e * gh..(e + 1) * gh];
                        for k in 0..2 * hs {
                            row[k] += xr[k] + self.bias[k];
                        }
                        sigmoid(&mut row[..2 * hs]);
                        for j in 0..hs {
                            row[2 * hs + j] = xr[2 * hs + j]
                                + self.bias[2 * hs + j]
                                + row[hs + j] * (row[2 * hs + j] + self.rbn[j]);
                        }
                        tanh(&mut row[2 * hs..]);
                        let hr = &mut h[e * hs..(e + 1) * hs];
                        for j in 0..hs {
                            hr[j] = (1.0 - row[j]) * row[2 * hs + j] + row[j] * hr[j];
                        }
                    }
                }
            }
            out[s * b * hs..(s + 1) * b * hs].copy_from_slice(h);
        }
        Ok(())
    }
}
