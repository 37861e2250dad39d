//! The safe drivers around the fused step: a layer direction over a whole
//! sequence (input projection, then one step per time step, with per-entry
//! lengths and reverse passes) and one streaming step, plus their
//! workspace. Every length is checked here before any unsafe code runs.

use super::entries::Token;
use super::pack::{grow, DirPack};
use super::project::xproj_stride;
use super::tile::{Bufs, Ctx, XSrc, ACC_SLOTS, FLUSH_BELOW};
use crate::config::{Cell, Config};
use crate::error::{product, Result};
use crate::family::Isa;
use crate::weights::{DirectionWeights, WeightFormat};

/// A model's fast kernel: the ISA and every layer direction packed for it.
#[derive(Clone)]
pub(crate) struct FastKernel {
    isa: Isa,
    packs: Vec<DirPack>,
}

impl std::fmt::Debug for FastKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FastKernel(nr {}, {} packs)",
            self.isa.nr(),
            self.packs.len()
        )
    }
}

/// Scratch buffers of the fast kernels (inside [`crate::Workspace`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct FastWs {
    xproj: Vec<f32>,
    h0: Vec<f32>,
    h1: Vec<f32>,
    c: Vec<f32>,
    aux: Vec<f32>,
    z: Vec<f32>,
    xn: Vec<f32>,
    acc: Vec<f32>,
    off: Vec<usize>,
    rows: Vec<usize>,
    /// The layer input with its subnormals flushed to zero, used only when
    /// the caller's input holds some (see [`flushed_input`]).
    xflush: Vec<f32>,
}

/// Whether `x` holds a nonzero float of magnitude below [`FLUSH_BELOW`].
/// One vectorizable pass (no early exit), a fraction of the `G*H`
/// multiply-adds each input float feeds.
fn has_tiny(x: &[f32]) -> bool {
    x.iter()
        .fold(false, |any, &v| any | (v != 0.0 && v.abs() < FLUSH_BELOW))
}

/// Copies a caller's state row or input with the values below
/// [`FLUSH_BELOW`] set to 0, as the kernels flush every state they store.
fn copy_flushed(dst: &mut [f32], src: &[f32]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = if v.abs() < FLUSH_BELOW { 0.0 } else { v };
    }
}

/// The input a layer computes with: `x` itself, or, if it holds values below
/// [`FLUSH_BELOW`], a copy in `buf` with them set to 0 (NaN and infinities
/// kept), so that the input projection's FMAs never take the subnormal
/// microcode assists of Intel cores (see [`FLUSH_BELOW`]). `buf`
/// is grown only when used; [`FastKernel::reserve`] grows it beforehand.
fn flushed_input<'a>(x: &'a [f32], buf: &'a mut Vec<f32>) -> Result<&'a [f32]> {
    if !has_tiny(x) {
        return Ok(x);
    }
    grow(buf, x.len())?;
    copy_flushed(&mut buf[..x.len()], x);
    Ok(&buf[..x.len()])
}

impl FastWs {
    /// Grows the per-step buffers to `batch` rows (h rows of `hstride`,
    /// partial sums of [`ACC_SLOTS`] blocks of `nr`, the others of `hp`).
    fn grow_step(&mut self, batch: usize, hstride: usize, hp: usize, nr: usize) -> Result<()> {
        grow(
            &mut self.acc,
            product("partial sums", &[batch, ACC_SLOTS, nr])?,
        )?;
        let h_len = product("h rows", &[batch, hstride])?;
        for v in [&mut self.h0, &mut self.h1] {
            grow(v, h_len)?;
        }
        let row_len = product("state rows", &[batch, hp])?;
        for v in [&mut self.c, &mut self.aux, &mut self.z, &mut self.xn] {
            grow(v, row_len)?;
        }
        grow(&mut self.off, batch)?;
        grow(&mut self.rows, batch)
    }
}

impl FastWs {
    /// The step's buffers: the given input source and h rows, this
    /// workspace's scratch for everything else.
    fn bufs(&mut self, x: XSrc, h_prev: *const f32, h_next: *mut f32, hstride: usize) -> Bufs {
        Bufs {
            x,
            h_prev,
            h_next,
            hstride,
            c: self.c.as_mut_ptr(),
            aux: self.aux.as_mut_ptr(),
            z: self.z.as_mut_ptr(),
            xn: self.xn.as_mut_ptr(),
            acc: self.acc.as_mut_ptr(),
        }
    }
}

/// One layer direction over a whole sequence.
pub(crate) struct SeqArgs<'a> {
    /// Layer input; entry (t, b) at `src_at(t, b)`, `In` floats.
    pub(crate) src: &'a [f32],
    pub(crate) src_t: usize,
    pub(crate) src_b: usize,
    /// Output; entry (t, b) of this direction at `dst_t*t + dst_b*b + dst_off`.
    pub(crate) dst: &'a mut [f32],
    pub(crate) dst_t: usize,
    pub(crate) dst_b: usize,
    pub(crate) dst_off: usize,
    pub(crate) seq_len: usize,
    pub(crate) batch: usize,
    pub(crate) lengths: Option<&'a [usize]>,
    pub(crate) reverse: bool,
    /// This direction's state rows: h `[B, Hout]`, c `[B, H]` (LSTM).
    pub(crate) h: &'a mut [f32],
    pub(crate) c: &'a mut [f32],
}

impl FastKernel {
    pub(crate) fn new(
        cfg: &Config,
        weights: &[DirectionWeights],
        isa: Isa,
        fmt: WeightFormat,
    ) -> FastKernel {
        let nr = isa.nr();
        let dirs = cfg.num_directions();
        let packs = weights
            .iter()
            .enumerate()
            .map(|(i, w)| DirPack::new(cfg, w, i / dirs, nr, fmt))
            .collect();
        FastKernel { isa, packs }
    }

    pub(crate) fn nr(&self) -> usize {
        self.isa.nr()
    }

    /// Bytes of recurrent weights one time step reads (every layer direction).
    pub(crate) fn recurrent_bytes(&self) -> usize {
        self.packs.iter().map(|p| p.recurrent_bytes()).sum()
    }

    /// Streams every recurrent panel (R, R_n, projection) once with this
    /// ISA's loads and returns the sum: the memory floor of one step.
    #[cfg(feature = "testing")]
    pub(crate) fn stream_recurrent(&self) -> f32 {
        let token = Token(self.isa);
        let mut sum = 0.0;
        for p in &self.packs {
            for m in std::iter::once(&p.r).chain(&p.rn).chain(&p.proj) {
                sum += token.stream_sum(m.raw());
            }
        }
        sum
    }

    /// Grows `ws` to everything a run of `batch` rows needs (with `n_rows`
    /// rows of input projection for a sequence, 0 for a streaming step), so
    /// the layers' own growth cannot fail once work has begun.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if a size overflows or memory cannot be had.
    pub(crate) fn reserve(
        &self,
        cfg: &Config,
        batch: usize,
        n_rows: usize,
        ws: &mut FastWs,
    ) -> Result<()> {
        let p = &self.packs[0];
        let xs = xproj_stride(cfg.cell.gates(), p.hp());
        grow(&mut ws.xproj, product("input projection", &[n_rows, xs])?)?;
        let x_len = product("layer input", &[n_rows.max(batch), cfg.input_size])?;
        grow(&mut ws.xflush, x_len)?;
        let hstride = self.packs.iter().map(|p| p.hstride()).max().unwrap_or(0);
        ws.grow_step(batch, hstride, p.hp(), self.isa.nr())
    }

    fn ctx<'a>(&'a self, cfg: &'a Config, idx: usize) -> Ctx<'a> {
        let dirs = cfg.num_directions();
        let p = &self.packs[idx];
        Ctx {
            cfg,
            acts: cfg.activations[idx % dirs],
            p,
            hp: p.hp(),
            inp: cfg.layer_input_size(idx / dirs),
        }
    }

    /// Runs layer direction `idx` over a sequence. Every slice length is
    /// checked here, before any unsafe code runs.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if the workspace cannot grow to the shape.
    pub(crate) fn sequence(
        &self,
        cfg: &Config,
        idx: usize,
        a: SeqArgs<'_>,
        ws: &mut FastWs,
    ) -> Result<()> {
        let ctx = self.ctx(cfg, idx);
        let (hp, hs, hout, inp) = (ctx.hp, cfg.hidden_size, cfg.output_size(), ctx.inp);
        let g = cfg.cell.gates();
        let hstride = ctx.p.hstride();
        let (t_len, batch) = (a.seq_len, a.batch);
        let n_rows = t_len * batch;
        // The layer input is a [T*B, In] matrix in its memory order.
        let row_of = |t: usize, b: usize| (t * a.src_t + b * a.src_b) / inp;
        assert!(a.src.len() >= n_rows * inp, "layer input too short");
        assert!(a.h.len() == batch * hout && (cfg.cell != Cell::Lstm || a.c.len() == batch * hs));
        if n_rows > 0 {
            let last = row_of(t_len - 1, batch - 1)
                .max(row_of(t_len - 1, 0))
                .max(row_of(0, batch - 1));
            assert!(last < n_rows);
            assert!(
                a.dst.len() >= (t_len - 1) * a.dst_t + (batch - 1) * a.dst_b + a.dst_off + hout
            );
        }
        let xs = xproj_stride(g, hp);
        grow(&mut ws.xproj, product("input projection", &[n_rows, xs])?)?;
        ws.grow_step(batch, hstride, hp, self.isa.nr())?;
        let mut xbuf = std::mem::take(&mut ws.xflush);
        let src = flushed_input(&a.src[..n_rows * inp], &mut xbuf)?;
        // SAFETY: src holds n_rows rows of In floats (asserted above, and
        // the flushed copy has its length); xproj holds n_rows rows of
        // xproj_stride (grown above); the packs match the token.
        unsafe { Token(self.isa).project(&ctx, src.as_ptr(), inp, n_rows, ws.xproj.as_mut_ptr()) };
        ws.xflush = xbuf;
        for b in 0..batch {
            let row = &mut ws.h0[b * hstride..(b + 1) * hstride];
            row.fill(0.0);
            copy_flushed(&mut row[..hout], &a.h[b * hout..(b + 1) * hout]);
            let crow = &mut ws.c[b * hp..(b + 1) * hp];
            crow.fill(0.0);
            if cfg.cell == Cell::Lstm {
                copy_flushed(&mut crow[..hs], &a.c[b * hs..(b + 1) * hs]);
            }
        }
        let len = |b: usize| a.lengths.map_or(t_len, |l| l[b]);
        let (mut cur, mut nxt) = (std::mem::take(&mut ws.h0), std::mem::take(&mut ws.h1));
        for s in 0..t_len {
            let mut n_active = 0;
            for b in 0..batch {
                let lb = len(b);
                if s < lb {
                    let t = if a.reverse { lb - 1 - s } else { s };
                    ws.off[b] = row_of(t, b) * xs;
                    ws.rows[n_active] = b;
                    n_active += 1;
                } else {
                    nxt[b * hstride..(b + 1) * hstride]
                        .copy_from_slice(&cur[b * hstride..(b + 1) * hstride]);
                }
            }
            if n_active == 0 {
                std::mem::swap(&mut cur, &mut nxt);
                continue;
            }
            let x = XSrc::Pre {
                base: ws.xproj.as_ptr(),
                off: ws.off.as_ptr(),
            };
            let bufs = ws.bufs(x, cur.as_ptr(), nxt.as_mut_ptr(), hstride);
            let rows = &ws.rows[..n_active];
            // SAFETY: every buffer was grown above to B rows of its stride;
            // off[b] + G*Hp <= n_rows*xs for active rows; the packs match the
            // token; cur and nxt are distinct buffers.
            unsafe { Token(self.isa).step(&ctx, &bufs, rows, s % 2 == 1) };
            for &b in rows {
                let lb = len(b);
                let t = if a.reverse { lb - 1 - s } else { s };
                let o = t * a.dst_t + b * a.dst_b + a.dst_off;
                a.dst[o..o + hout].copy_from_slice(&nxt[b * hstride..b * hstride + hout]);
            }
            std::mem::swap(&mut cur, &mut nxt);
        }
        for b in 0..batch {
            for t in len(b)..t_len {
                let o = t * a.dst_t + b * a.dst_b + a.dst_off;
                a.dst[o..o + hout].fill(0.0);
            }
            let zero = a.lengths.is_some() && len(b) == 0;
            let h = &mut a.h[b * hout..(b + 1) * hout];
            if zero {
                h.fill(0.0);
            } else {
                h.copy_from_slice(&cur[b * hstride..b * hstride + hout]);
            }
            if cfg.cell == Cell::Lstm {
                let c = &mut a.c[b * hs..(b + 1) * hs];
                if zero {
                    c.fill(0.0);
                } else {
                    c.copy_from_slice(&ws.c[b * hp..b * hp + hs]);
                }
            }
        }
        ws.h0 = cur;
        ws.h1 = nxt;
        Ok(())
    }

    /// One streaming step of layer `k` (a forward model): `x` `[B, In]`,
    /// state rows `h` `[B, Hout]` and `c` `[B, H]` updated in place;
    /// `backwards` alternates the panel walk between calls.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if the workspace cannot grow to the batch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stream(
        &self,
        cfg: &Config,
        k: usize,
        x: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        backwards: bool,
        ws: &mut FastWs,
    ) -> Result<()> {
        let ctx = self.ctx(cfg, k);
        let (hp, hs, hout, inp) = (ctx.hp, cfg.hidden_size, cfg.output_size(), ctx.inp);
        let hstride = ctx.p.hstride();
        let batch = h.len() / hout;
        assert!(x.len() == batch * inp && h.len() == batch * hout);
        assert!(cfg.cell != Cell::Lstm || c.len() == batch * hs);
        ws.grow_step(batch, hstride, hp, self.isa.nr())?;
        for b in 0..batch {
            copy_flushed(
                &mut ws.h0[b * hstride..b * hstride + hout],
                &h[b * hout..(b + 1) * hout],
            );
            if cfg.cell == Cell::Lstm {
                copy_flushed(&mut ws.c[b * hp..b * hp + hs], &c[b * hs..(b + 1) * hs]);
            }
            ws.off[b] = b * inp;
            ws.rows[b] = b;
        }
        let mut xbuf = std::mem::take(&mut ws.xflush);
        let x = flushed_input(x, &mut xbuf)?;
        let xs = XSrc::Fused {
            base: x.as_ptr(),
            off: ws.off.as_ptr(),
        };
        let (h_prev, h_next) = (ws.h0.as_ptr(), ws.h1.as_mut_ptr());
        let bufs = ws.bufs(xs, h_prev, h_next, hstride);
        let rows = &ws.rows[..batch];
        // SAFETY: buffers grown above to B rows of their strides; x (the
        // caller's or its flushed copy, same length) has B rows of In
        // floats at off[b] = b*In; packs match the token.
        unsafe { Token(self.isa).step(&ctx, &bufs, rows, backwards) };
        ws.xflush = xbuf;
        for b in 0..batch {
            h[b * hout..(b + 1) * hout].copy_from_slice(&ws.h1[b * hstride..b * hstride + hout]);
            if cfg.cell == Cell::Lstm {
                c[b * hs..(b + 1) * hs].copy_from_slice(&ws.c[b * hp..b * hp + hs]);
            }
        }
        Ok(())
    }
}
