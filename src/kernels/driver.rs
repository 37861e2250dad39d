//! The safe drivers around the fused step: a layer direction over a whole
//! sequence (input projection, then one step per time step, with per-entry
//! lengths and reverse passes) and one streaming step, plus their
//! workspace. Every length is checked here before any unsafe code runs.

use super::entries::Token;
use super::pack::{grow, DirPack};
use super::project::{xproj_stride, XRows};
use super::tile::{Bufs, Ctx, QBuf, XSrc, ACC_SLOTS, FLUSH_BELOW};
use crate::config::{Cell, Config};
use crate::error::{product, Result};
use crate::family::Isa;
use crate::team::{Exec, Part};
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
    /// Per thread, for one chunk of a sequence's steps: the layer-input row
    /// of each projection row, in the order the steps read them.
    xidx: Vec<usize>,
    /// The layer input with its subnormals flushed to zero, used only when
    /// the caller's input holds some (see [`flushed_input`]).
    xflush: Vec<f32>,
    /// Int8-dynamic: quantized `h_prev` rows and scales, per thread and
    /// batch entry (written by each step).
    qh: Vec<i8>,
    qh_s: Vec<f32>,
    /// Int8-dynamic: the quantized layer input rows and their scales.
    qx: Vec<i8>,
    qx_s: Vec<f32>,
}

/// Bytes per quantized row of `k` values (int8-dynamic; whole cache lines,
/// at least `k` rounded up to 4): 0 for the other formats.
fn qstride(dynamic: bool, k: usize) -> usize {
    if dynamic {
        k.div_ceil(64) * 64
    } else {
        0
    }
}

/// The sequence's input projection is computed a few time steps at a
/// time, into a buffer of about this many bytes, right before those steps
/// run, so the steps read it from L2 instead of from DRAM: projected for
/// all 100 steps at once, lstm-h256-b64's buffer is 26 MB, written to and
/// read back from memory. Measured on an AMD EPYC Zen 4 (AVX-512, 1 MiB
/// L2), median of 7 interleaved rounds: lstm-h256-b64 809 -> 725 us per
/// step with 2 steps a chunk (512 KiB; 4 steps 730, 1 step 737),
/// lstm-h256-b16 204 -> 184 us with 4 steps (256 KiB; 8 steps 190, 16
/// steps 195).
const XPROJ_CHUNK_BYTES: usize = 320 * 1024;
/// Fewest projection rows per chunk (when the sequence has them): each
/// chunk streams the whole `W` panel once, so a chunk of a batch-1
/// sequence is many steps.
const XPROJ_MIN_ROWS: usize = 96;
/// A whole sequence's projection up to this size is one chunk: it stays
/// in L2/L3 anyway, and chunks would stream `W` more often for nothing
/// (lstm-h1024-b1, 1.6 MB for 100 steps: 337 -> 362 us per step in two
/// chunks; Zen 4, median of 3 interleaved runs).
const XPROJ_WHOLE_BYTES: usize = 2 << 20;

/// Time steps per chunk of the input projection (see
/// [`XPROJ_CHUNK_BYTES`]) for `t_len` steps of `batch` rows of `xs` floats:
/// the chunks of a sequence are as even as possible. At least 1.
pub(crate) fn chunk_steps(t_len: usize, batch: usize, xs: usize) -> usize {
    if t_len == 0 || batch == 0 {
        return 1;
    }
    let per_step = batch.saturating_mul(xs).saturating_mul(4).max(1);
    if per_step.saturating_mul(t_len) <= XPROJ_WHOLE_BYTES {
        return t_len;
    }
    let tc = XPROJ_CHUNK_BYTES
        .div_ceil(per_step)
        .max(XPROJ_MIN_ROWS.div_ceil(batch))
        .clamp(1, t_len);
    t_len.div_ceil(t_len.div_ceil(tc))
}

/// Rows of one chunk of the input projection: [`chunk_steps`] steps of
/// `batch` rows (at most the sequence's `t_len * batch`).
fn chunk_rows(t_len: usize, batch: usize, xs: usize) -> usize {
    chunk_steps(t_len, batch, xs)
        .saturating_mul(batch)
        .min(t_len.saturating_mul(batch))
}

/// Quantizes `rows` rows of `k` floats (`x`, `k` apart) into `q` (rows
/// `stride` bytes apart) and `qs` (one scale per row), growing both, as
/// `isa`'s int8-dynamic product takes them (biased for VNNI).
///
/// # Errors
/// [`crate::Error::TooLarge`] if the buffers cannot grow.
fn quantize_rows(
    isa: Isa,
    x: &[f32],
    k: usize,
    rows: usize,
    stride: usize,
    q: &mut Vec<i8>,
    qs: &mut Vec<f32>,
) -> Result<()> {
    grow(q, product("quantized rows", &[rows, stride])?)?;
    grow(qs, rows)?;
    let biased = super::quant::bias(isa);
    super::quant::quantize_rows(isa, x, k, stride, q, &mut qs[..rows], biased);
    Ok(())
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
    /// partial sums of [`ACC_SLOTS`] blocks of `nr`, the others of `hp`);
    /// partial sums and index rows once per thread of `threads`, and the
    /// projection index rows of a chunk of `chunk_rows`.
    #[allow(clippy::too_many_arguments)]
    fn grow_step(
        &mut self,
        batch: usize,
        hstride: usize,
        hp: usize,
        nr: usize,
        qh_stride: usize,
        threads: usize,
        chunk_rows: usize,
    ) -> Result<()> {
        let xidx = product("projection index rows", &[threads, chunk_rows])?;
        grow(&mut self.xidx, xidx)?;
        grow(
            &mut self.acc,
            product("partial sums", &[threads, batch, ACC_SLOTS, nr])?,
        )?;
        grow(
            &mut self.qh,
            product("quantized h rows", &[threads, batch, qh_stride])?,
        )?;
        if qh_stride > 0 {
            grow(&mut self.qh_s, product("h scales", &[threads, batch])?)?;
        }
        let h_len = product("h rows", &[batch, hstride])?;
        for v in [&mut self.h0, &mut self.h1] {
            grow(v, h_len)?;
        }
        let row_len = product("state rows", &[batch, hp])?;
        for v in [&mut self.c, &mut self.aux, &mut self.z, &mut self.xn] {
            grow(v, row_len)?;
        }
        let idx = product("index rows", &[threads, batch])?;
        grow(&mut self.off, idx)?;
        grow(&mut self.rows, idx)
    }
}

impl FastWs {
    /// The scratch rows (c, aux, z, xn) as pointers.
    fn scratch(&mut self) -> Scratch {
        Scratch {
            c: self.c.as_mut_ptr(),
            aux: self.aux.as_mut_ptr(),
            z: self.z.as_mut_ptr(),
            xn: self.xn.as_mut_ptr(),
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
    /// rows of input projection for a sequence, 0 for a streaming step, on
    /// up to `threads` threads), so the layers' own growth cannot fail once
    /// work has begun.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] if a size overflows or memory cannot be had.
    pub(crate) fn reserve(
        &self,
        cfg: &Config,
        batch: usize,
        n_rows: usize,
        threads: usize,
        ws: &mut FastWs,
    ) -> Result<()> {
        let p = &self.packs[0];
        let xs = xproj_stride(cfg.cell.gates(), p.hp());
        // The rows of one chunk of the input projection (`sequence`).
        let chunk_rows = chunk_rows(n_rows.checked_div(batch).unwrap_or(0), batch, xs);
        grow(
            &mut ws.xproj,
            product("input projection", &[chunk_rows, xs])?,
        )?;
        let x_len = product("layer input", &[n_rows.max(batch), cfg.input_size])?;
        grow(&mut ws.xflush, x_len)?;
        let hstride = self.packs.iter().map(|p| p.hstride()).max().unwrap_or(0);
        let dynamic = p.dynamic();
        if dynamic {
            let inp = (0..cfg.num_layers)
                .map(|l| cfg.layer_input_size(l))
                .max()
                .unwrap_or(0);
            let rows = n_rows.max(batch);
            grow(
                &mut ws.qx,
                product("quantized rows", &[rows, qstride(true, inp)])?,
            )?;
            grow(&mut ws.qx_s, rows)?;
        }
        let qh = qstride(dynamic, cfg.output_size());
        ws.grow_step(
            batch,
            hstride,
            p.hp(),
            self.isa.nr(),
            qh,
            threads,
            chunk_rows,
        )
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

    /// Threads a team should use for one step of layer direction `idx`
    /// over `rows` batch rows (1: the caller alone).
    fn threads(
        &self,
        cfg: &Config,
        idx: usize,
        rows: usize,
        fused: bool,
        exec: &Exec<'_>,
    ) -> usize {
        let p = &self.packs[idx];
        let k = p.r.k + if fused { p.w.k } else { 0 };
        let proj = p.proj.as_ref().map_or(0, |q| q.k * q.blocks * q.nr);
        let fmas = rows
            .saturating_mul(cfg.cell.gates() * p.hp())
            .saturating_mul(k)
            .saturating_add(rows.saturating_mul(proj));
        exec.threads_for(fmas, p.r.blocks)
    }

    /// Runs layer direction `idx` over a sequence, on the calling thread or
    /// split by weight blocks over `exec`'s team. Every slice length is
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
        exec: &mut Exec<'_>,
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
        if let Some(l) = a.lengths {
            assert!(l.len() == batch && l.iter().all(|&v| v <= t_len));
        }
        let xs = xproj_stride(g, hp);
        let threads = self.threads(cfg, idx, batch, false, exec);
        let tc = chunk_steps(t_len, batch, xs);
        let chunk_rows = chunk_rows(t_len, batch, xs);
        grow(
            &mut ws.xproj,
            product("input projection", &[chunk_rows, xs])?,
        )?;
        let dynamic = ctx.p.dynamic();
        let qh_stride = qstride(dynamic, hout);
        ws.grow_step(
            batch,
            hstride,
            hp,
            self.isa.nr(),
            qh_stride,
            threads,
            chunk_rows,
        )?;
        let xbuf = std::mem::take(&mut ws.xflush);
        let mut xbuf = xbuf;
        let src = flushed_input(&a.src[..n_rows * inp], &mut xbuf)?;
        let qx_stride = qstride(dynamic, inp);
        if dynamic {
            quantize_rows(
                self.isa,
                src,
                inp,
                n_rows,
                qx_stride,
                &mut ws.qx,
                &mut ws.qx_s,
            )?;
        }
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
        // The pass that writes h_next: its blocks decide which units of h
        // a thread copies (to finished rows and to the output).
        let out_blocks = ctx.p.proj.as_ref().map_or(ctx.p.r.blocks, |q| q.blocks);
        let nr = self.isa.nr();
        let p = SharedPtrs {
            src: src.as_ptr() as *mut f32,
            xproj: ws.xproj.as_mut_ptr(),
            h0: ws.h0.as_mut_ptr(),
            h1: ws.h1.as_mut_ptr(),
            dst: a.dst.as_mut_ptr(),
            off: ws.off.as_mut_ptr(),
            rows: ws.rows.as_mut_ptr(),
            xidx: ws.xidx.as_mut_ptr(),
            acc: ws.acc.as_mut_ptr(),
            scratch: ws.scratch(),
            qh: ws.qh.as_mut_ptr(),
            qh_s: ws.qh_s.as_mut_ptr(),
            qx: ws.qx.as_mut_ptr(),
            qx_s: ws.qx_s.as_mut_ptr(),
        };
        let token = Token(self.isa);
        let (dst_t, dst_b, dst_off, reverse) = (a.dst_t, a.dst_b, a.dst_off, a.reverse);
        let job = |part: Part<'_>| {
            let me = part.index;
            let p = &p;
            let (b0, b1) = part.range(ctx.p.w.blocks);
            let qx = p.qx_buf(qx_stride);
            // This thread's projection index rows for one chunk (grown for
            // `threads` threads of `chunk_rows` entries).
            // SAFETY: me < threads; xidx holds threads*chunk_rows.
            let xidx =
                unsafe { std::slice::from_raw_parts_mut(p.xidx.add(me * chunk_rows), chunk_rows) };
            let (u0, u1) = part.range(out_blocks);
            let (u0, u1) = ((u0 * nr).min(hout), (u1 * nr).min(hout));
            // This thread's index rows and partial sums (grown for
            // `threads` threads of `batch` rows each).
            // SAFETY: me < threads; off and rows hold threads*batch entries.
            let (off, rows) = unsafe {
                (
                    std::slice::from_raw_parts_mut(p.off.add(me * batch), batch),
                    std::slice::from_raw_parts_mut(p.rows.add(me * batch), batch),
                )
            };
            // SAFETY: acc holds threads * batch * ACC_SLOTS * NR floats.
            let acc = unsafe { p.acc.add(me * batch * ACC_SLOTS * nr) };
            // This thread's quantized h rows (int8-dynamic; grown for
            // `threads` threads of `batch` rows of qh_stride bytes).
            let qh = p.qh_for(me, batch, qh_stride);
            let (mut cur, mut nxt) = (p.h0, p.h1);
            // The chunk's projection row of the next step's first active entry.
            let mut pos = 0;
            for s in 0..t_len {
                if s % tc == 0 {
                    // Project the rows of steps s..s+tc that run, in the
                    // order the steps below read them (step by step, entries
                    // in order), so step s's active entry k is row pos + k.
                    let mut n = 0;
                    for st in s..(s + tc).min(t_len) {
                        for b in 0..batch {
                            let lb = len(b);
                            if st < lb {
                                let t = if reverse { lb - 1 - st } else { st };
                                xidx[n] = row_of(t, b);
                                n += 1;
                            }
                        }
                    }
                    pos = 0;
                    if n > 0 && b0 < b1 {
                        let rows = XRows {
                            x: p.src,
                            stride: inp,
                            qx,
                            idx: xidx.as_ptr(),
                            n,
                        };
                        // SAFETY: every xidx entry is a row below n_rows
                        // (asserted above) of src (n_rows rows of In
                        // floats; the flushed copy has the same length);
                        // qx (int8-dynamic) holds those rows quantized
                        // (above); xproj holds chunk_rows >= n rows of xs
                        // (grown above); b1 <= the W blocks; threads write
                        // disjoint blocks' columns, and each thread's steps
                        // read only its own blocks' columns.
                        unsafe { token.project(&ctx, rows, p.xproj, (b0, b1)) };
                    }
                }
                let mut n_active = 0;
                for (b, ob) in off.iter_mut().enumerate() {
                    let lb = len(b);
                    if s < lb {
                        *ob = (pos + n_active) * xs;
                        rows[n_active] = b;
                        n_active += 1;
                    } else if u0 < u1 {
                        // SAFETY: b < batch rows of hstride >= hout >= u1
                        // floats in both h buffers (grown above); this
                        // thread's units, written by no other thread.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                cur.add(b * hstride + u0),
                                nxt.add(b * hstride + u0),
                                u1 - u0,
                            )
                        };
                    }
                }
                pos += n_active;
                if n_active > 0 {
                    let bufs = p.scratch.bufs(
                        XSrc::Pre {
                            base: p.xproj,
                            off: off.as_ptr(),
                        },
                        cur,
                        nxt,
                        hstride,
                        acc,
                        qh,
                        QBuf::none(),
                    );
                    // SAFETY: every buffer was grown above to B rows of its
                    // stride (acc: this thread's own); off[b] + G*Hp <=
                    // n_rows*xs for active rows; the packs match the token;
                    // cur and nxt are distinct buffers; every thread of
                    // `part` runs this step with the same rows.
                    unsafe { token.step(&ctx, &bufs, &rows[..n_active], s % 2 == 1, part) };
                    for &b in &rows[..n_active] {
                        let lb = len(b);
                        let t = if reverse { lb - 1 - s } else { s };
                        let o = t * dst_t + b * dst_b + dst_off;
                        // SAFETY: o + hout <= dst.len() (asserted above for
                        // the last t and b); u1 <= hout; this thread's units.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                nxt.add(b * hstride + u0),
                                p.dst.add(o + u0),
                                u1 - u0,
                            )
                        };
                    }
                }
                // The next step reads every unit of this step's h.
                part.sync();
                std::mem::swap(&mut cur, &mut nxt);
            }
        };
        exec.run(threads, &job);
        ws.xflush = xbuf;
        let fin = if t_len % 2 == 0 { &ws.h0 } else { &ws.h1 };
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
                h.copy_from_slice(&fin[b * hstride..b * hstride + hout]);
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
        Ok(())
    }

    /// One streaming step of layer `k` (a forward model) for `n` rows, on
    /// the calling thread or split over `exec`'s team: `x` `[n, In]`; the
    /// state rows live in `h` `[N, Hout]` and `c` `[N, H]`, row `slots[i]`
    /// for input row `i` (`slots` `None`: row `i`, `n = N`), read and
    /// updated in place; `backwards` alternates the panel walk between
    /// calls.
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
        slots: Option<&[usize]>,
        backwards: bool,
        ws: &mut FastWs,
        exec: &mut Exec<'_>,
    ) -> Result<()> {
        let ctx = self.ctx(cfg, k);
        let (hp, hs, hout, inp) = (ctx.hp, cfg.hidden_size, cfg.output_size(), ctx.inp);
        let hstride = ctx.p.hstride();
        let cap = h.len() / hout;
        let n = slots.map_or(cap, |s| s.len());
        let slot = |i: usize| slots.map_or(i, |s| s[i]);
        assert!(x.len() == n * inp && h.len() == cap * hout);
        assert!(cfg.cell != Cell::Lstm || c.len() == cap * hs);
        assert!(
            slots.is_none_or(|s| s.iter().all(|&v| v < cap)),
            "stream slot"
        );
        let threads = self.threads(cfg, k, n, true, exec);
        let dynamic = ctx.p.dynamic();
        let qh_stride = qstride(dynamic, hout);
        ws.grow_step(n, hstride, hp, self.isa.nr(), qh_stride, threads, 0)?;
        for i in 0..n {
            let sl = slot(i);
            copy_flushed(
                &mut ws.h0[i * hstride..i * hstride + hout],
                &h[sl * hout..(sl + 1) * hout],
            );
            if cfg.cell == Cell::Lstm {
                copy_flushed(&mut ws.c[i * hp..i * hp + hs], &c[sl * hs..(sl + 1) * hs]);
            }
            ws.off[i] = i * inp;
            ws.rows[i] = i;
        }
        let mut xbuf = std::mem::take(&mut ws.xflush);
        let x = flushed_input(x, &mut xbuf)?;
        let qx_stride = qstride(dynamic, inp);
        if dynamic {
            quantize_rows(self.isa, x, inp, n, qx_stride, &mut ws.qx, &mut ws.qx_s)?;
        }
        let nr = self.isa.nr();
        let p = SharedPtrs {
            src: x.as_ptr() as *mut f32,
            xproj: std::ptr::null_mut(),
            h0: ws.h0.as_mut_ptr(),
            h1: ws.h1.as_mut_ptr(),
            dst: std::ptr::null_mut(),
            off: ws.off.as_mut_ptr(),
            rows: ws.rows.as_mut_ptr(),
            xidx: ws.xidx.as_mut_ptr(),
            acc: ws.acc.as_mut_ptr(),
            scratch: ws.scratch(),
            qh: ws.qh.as_mut_ptr(),
            qh_s: ws.qh_s.as_mut_ptr(),
            qx: ws.qx.as_mut_ptr(),
            qx_s: ws.qx_s.as_mut_ptr(),
        };
        let token = Token(self.isa);
        let rows = &ws.rows[..n];
        let job = |part: Part<'_>| {
            let p = &p;
            // SAFETY: acc holds threads * n * ACC_SLOTS * NR floats.
            let acc = unsafe { p.acc.add(part.index * n * ACC_SLOTS * nr) };
            let xs = XSrc::Fused {
                base: p.src,
                off: p.off,
            };
            let qx = p.qx_buf(qx_stride);
            let qh = p.qh_for(part.index, n, qh_stride);
            let bufs = p.scratch.bufs(xs, p.h0, p.h1, hstride, acc, qh, qx);
            // SAFETY: buffers grown above to n rows of their strides (acc:
            // this thread's own); x (the caller's or its flushed copy, same
            // length) has n rows of In floats at off[i] = i*In; packs
            // match the token; every thread runs the same rows.
            unsafe { token.step(&ctx, &bufs, rows, backwards, part) };
        };
        exec.run(threads, &job);
        ws.xflush = xbuf;
        for i in 0..n {
            let sl = slot(i);
            h[sl * hout..(sl + 1) * hout].copy_from_slice(&ws.h1[i * hstride..i * hstride + hout]);
            if cfg.cell == Cell::Lstm {
                c[sl * hs..(sl + 1) * hs].copy_from_slice(&ws.c[i * hp..i * hp + hs]);
            }
        }
        Ok(())
    }
}

/// The scratch rows a step writes besides h (see [`Bufs`]).
#[derive(Clone, Copy)]
struct Scratch {
    c: *mut f32,
    aux: *mut f32,
    z: *mut f32,
    xn: *mut f32,
}

impl Scratch {
    /// The step's buffers: `x`, the h rows and this thread's partial sums.
    #[allow(clippy::too_many_arguments)]
    fn bufs(
        self,
        x: XSrc,
        h_prev: *const f32,
        h_next: *mut f32,
        hstride: usize,
        acc: *mut f32,
        qh: QBuf,
        qx: QBuf,
    ) -> Bufs {
        Bufs {
            x,
            h_prev,
            h_next,
            hstride,
            c: self.c,
            aux: self.aux,
            z: self.z,
            xn: self.xn,
            acc,
            qh,
            qx,
        }
    }
}

/// The buffers a job's threads share, as raw pointers.
struct SharedPtrs {
    src: *mut f32,
    xproj: *mut f32,
    h0: *mut f32,
    h1: *mut f32,
    dst: *mut f32,
    off: *mut usize,
    rows: *mut usize,
    xidx: *mut usize,
    acc: *mut f32,
    scratch: Scratch,
    qh: *mut i8,
    qh_s: *mut f32,
    qx: *mut i8,
    qx_s: *mut f32,
}

impl SharedPtrs {
    /// The quantized input rows, `stride` bytes apart, and their scales
    /// (none when `stride` is 0: not int8-dynamic).
    fn qx_buf(&self, stride: usize) -> QBuf {
        if stride == 0 {
            return QBuf::none();
        }
        QBuf {
            q: self.qx,
            s: self.qx_s,
            stride,
        }
    }

    /// Thread `me`'s quantized h rows: `rows` rows of `stride` bytes and
    /// their scales (none when `stride` is 0: not int8-dynamic).
    fn qh_for(&self, me: usize, rows: usize, stride: usize) -> QBuf {
        if stride == 0 {
            return QBuf::none();
        }
        QBuf {
            // In bounds: qh and qh_s were grown for every thread's rows
            // (`grow_step`); wrapping keeps this computation safe.
            q: self.qh.wrapping_add(me * rows * stride),
            s: self.qh_s.wrapping_add(me * rows),
            stride,
        }
    }
}

// SAFETY: the team threads of one job share these buffers under the step's
// contract: each thread writes only the units of its own weight blocks (h,
// c, the scratch rows, the output, the projection's columns) and its own
// rows of `off`, `rows` and `acc`; everything a thread reads that another
// wrote is read after the barrier that follows the write. `src` is only read.
unsafe impl Sync for SharedPtrs {}
