//! The fused recurrent step, written once over [`Simd`] and instantiated
//! per ISA by `kernels/mod.rs`.
//!
//! For a block of `NR` hidden units and a tile of `MB` batch rows, [`dot`]
//! walks the block's panel once and leaves every gate's pre-activation in
//! registers (`G x 2 x MB` vectors); the cell's epilogue then adds the
//! input part, applies peepholes, clip and the activations, and updates `c`
//! and `h` for those units before the next block is touched. Nothing is
//! written to memory but the new states.
//!
//! The input part of each gate comes either from the sequence's input
//! projection (computed beforehand for all steps by [`project`], which uses
//! the same [`dot`] over the `W` panels with several rows per tile) or, in a
//! streaming step, from a [`dot`] over the same block's `W` panel right
//! before its `R` panel. Both start every accumulator at 0 and add the
//! `W x` terms then the `R h` terms in the same order, so a streaming step
//! gives bit-identical numbers to the sequence run.

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::pack::Panels;
use super::DirPack;
use crate::activations::{activation_v, sigmoid_v, tanh_v};
use crate::config::{Activations, Cell, Config, GruReset};
use crate::simd::Simd;

/// `[gate][half]` accumulators for one row.
pub(crate) type Acc<V, const G: usize> = [[V; 2]; G];

/// What a step needs to know about one layer direction.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) acts: Activations,
    pub(crate) p: &'a DirPack,
    /// Padded hidden size: `blocks * NR`.
    pub(crate) hp: usize,
    /// Layer input size.
    pub(crate) inp: usize,
}

/// Where the input part of each gate comes from.
#[derive(Clone, Copy)]
pub(crate) enum XSrc {
    /// Precomputed `W x` rows `[G*Hp]`: row of entry b at `base + off[b]`.
    Pre { base: *const f32, off: *const usize },
    /// Layer input rows `[In]` at `base + off[b]`, multiplied by the block's
    /// `W` panel inside the step.
    Fused { base: *const f32, off: *const usize },
}

/// Per-step buffers, one row per batch entry. `h_prev`/`h_next` rows are
/// `hstride` apart; every other buffer has rows of `Hp`.
#[derive(Clone, Copy)]
pub(crate) struct Bufs {
    pub(crate) x: XSrc,
    pub(crate) h_prev: *const f32,
    pub(crate) h_next: *mut f32,
    pub(crate) hstride: usize,
    pub(crate) c: *mut f32,
    /// LSTM with projection: the unprojected `h`; GRU reset-before: `r ⊙ h`.
    pub(crate) aux: *mut f32,
    /// GRU reset-before: z.
    pub(crate) z: *mut f32,
    /// GRU reset-before: the input part of n.
    pub(crate) xn: *mut f32,
}

/// `acc[m][g][v] += sum_{k0 <= kk < k1} panel[kk][g][v] * rows[m][kk]` over one block.
///
/// # Safety
/// `blk` points to a block of a [`Panels`] with `G` gates, `NR = 2 * LANES`
/// and at least `k1` rows; each `rows[m]` is valid for reading `k1` floats.
#[inline(always)]
pub(crate) unsafe fn dot<S: Simd, const G: usize, const MB: usize>(
    s: S,
    blk: *const f32,
    k0: usize,
    k1: usize,
    rows: [*const f32; MB],
    mut acc: [Acc<S::V, G>; MB],
) -> [Acc<S::V, G>; MB] {
    let l = S::LANES;
    let nr = 2 * l;
    let mut wp = blk.wrapping_add(k0 * G * nr);
    for kk in k0..k1 {
        let mut w = [[s.zero(); 2]; G];
        for (g, wg) in w.iter_mut().enumerate() {
            // SAFETY: kk < k1 <= K, so the G*NR floats at `wp` are in the block.
            unsafe {
                wg[0] = s.load(wp.add(g * nr));
                wg[1] = s.load(wp.add(g * nr + l));
            }
        }
        for m in 0..MB {
            // SAFETY: rows[m] has at least k1 > kk floats.
            let x = s.splat(unsafe { *rows[m].add(kk) });
            for g in 0..G {
                acc[m][g][0] = s.mul_add(w[g][0], x, acc[m][g][0]);
                acc[m][g][1] = s.mul_add(w[g][1], x, acc[m][g][1]);
            }
        }
        wp = wp.wrapping_add(G * nr);
    }
    acc
}

#[inline(always)]
fn clip<S: Simd>(s: S, v: S::V, c: Option<f32>) -> S::V {
    match c {
        // Constants first so a NaN pre-activation propagates.
        Some(c) => s.min(s.splat(c), s.max(s.splat(-c), v)),
        None => v,
    }
}

#[inline(always)]
fn gate_f<S: Simd, const DEF: bool>(s: S, a: &Activations, v: S::V) -> S::V {
    if DEF {
        sigmoid_v(s, v)
    } else {
        activation_v(s, a.f, v)
    }
}

#[inline(always)]
fn gate_g<S: Simd, const DEF: bool>(s: S, a: &Activations, v: S::V) -> S::V {
    if DEF {
        tanh_v(s, v)
    } else {
        activation_v(s, a.g, v)
    }
}

#[inline(always)]
fn gate_h<S: Simd, const DEF: bool>(s: S, a: &Activations, v: S::V) -> S::V {
    if DEF {
        tanh_v(s, v)
    } else {
        activation_v(s, a.h, v)
    }
}

/// The `W x` part of `G` gates for a tile, from the precomputed projection
/// or from the block's `W` panel.
///
/// # Safety
/// As for [`step`]: every row pointer and offset valid for the layer's sizes.
#[inline(always)]
unsafe fn x_part<S: Simd, const G: usize, const MB: usize>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    x: XSrc,
    rows: &[usize; MB],
) -> [Acc<S::V, G>; MB] {
    let l = S::LANES;
    let j = blk * 2 * l;
    let zero = [[[s.zero(); 2]; G]; MB];
    match x {
        XSrc::Pre { base, off } => {
            let mut acc = zero;
            for m in 0..MB {
                // SAFETY: off[b] is the row's offset in a [rows, G*Hp] buffer.
                let row = unsafe { base.add(*off.add(rows[m])) };
                for (g, ag) in acc[m].iter_mut().enumerate() {
                    // SAFETY: g*Hp + j + 2L <= G*Hp.
                    unsafe {
                        ag[0] = s.load(row.add(g * ctx.hp + j));
                        ag[1] = s.load(row.add(g * ctx.hp + j + l));
                    }
                }
            }
            acc
        }
        XSrc::Fused { base, off } => {
            // SAFETY: off[b] is the row's offset of an [In] input row.
            let ptrs = std::array::from_fn(|m| unsafe { base.add(*off.add(rows[m])) });
            let w = &ctx.p.w;
            // SAFETY: block `blk` of the W panels has K = In rows.
            unsafe {
                dot::<S, G, MB>(
                    s,
                    w.as_slice().as_ptr().add(blk * w.block_len()),
                    0,
                    ctx.inp,
                    ptrs,
                    zero,
                )
            }
        }
    }
}

#[inline(always)]
fn bias<S: Simd>(s: S, v: &[f32], at: usize) -> S::V {
    debug_assert!(at + S::LANES <= v.len());
    // SAFETY: every bias vector is padded to G*Hp and at + LANES <= its length.
    unsafe { s.load(v.as_ptr().add(at)) }
}

/// One LSTM block for a tile of rows.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn lstm_tile<S: Simd, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    // SAFETY: forwarded contract.
    let init = unsafe { x_part::<S, 4, MB>(s, ctx, blk, b.x, rows) };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R has K = Hout rows; h rows hold Hout floats.
    let acc = unsafe {
        dot::<S, 4, MB>(
            s,
            r.as_slice().as_ptr().add(blk * r.block_len()),
            0,
            r.k,
            hrows,
            init,
        )
    };
    let (out, ostride) = match p.proj {
        Some(_) => (b.aux, hp),
        None => (b.h_next, b.hstride),
    };
    for m in 0..MB {
        for v in 0..2 {
            let j = blk * 2 * l + v * l;
            let pre = |g: usize| s.add(bias(s, &p.bias, g * hp + j), acc[m][g][v]);
            // SAFETY: c rows hold Hp floats and j + L <= Hp.
            let cp = unsafe { b.c.add(rows[m] * hp + j) };
            // SAFETY: as above.
            let c_old = unsafe { s.load(cp) };
            let (mut pi, mut pf, mut po) = (pre(0), pre(1), pre(3));
            if let Some(pp) = &p.peep {
                pi = s.mul_add(bias(s, pp, j), c_old, pi);
                pf = s.mul_add(bias(s, pp, hp + j), c_old, pf);
            }
            let i = gate_f::<S, DEF>(s, &ctx.acts, clip(s, pi, cfg.clip));
            let f = if cfg.input_forget {
                s.sub(s.splat(1.0), i)
            } else {
                gate_f::<S, DEF>(s, &ctx.acts, clip(s, pf, cfg.clip))
            };
            let g = gate_g::<S, DEF>(s, &ctx.acts, clip(s, pre(2), cfg.clip));
            let c_new = s.mul_add(f, c_old, s.mul(i, g));
            if let Some(pp) = &p.peep {
                po = s.mul_add(bias(s, pp, 2 * hp + j), c_new, po);
            }
            let o = gate_f::<S, DEF>(s, &ctx.acts, clip(s, po, cfg.clip));
            let h = s.mul(o, gate_h::<S, DEF>(s, &ctx.acts, c_new));
            // SAFETY: c and output rows hold at least Hp floats from j.
            unsafe {
                s.store(cp, c_new);
                s.store(out.add(rows[m] * ostride + j), h);
            }
        }
    }
}

/// One GRU block (reset after the matmul) for a tile of rows.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn gru_after_tile<S: Simd, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    // SAFETY: forwarded contract.
    let xp = unsafe { x_part::<S, 3, MB>(s, ctx, blk, b.x, rows) };
    // z and r continue from their input part; n's recurrent part starts at 0.
    let mut init = xp;
    for a in init.iter_mut() {
        a[2] = [s.zero(); 2];
    }
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R has K = H rows; h rows hold H floats.
    let acc = unsafe {
        dot::<S, 3, MB>(
            s,
            r.as_slice().as_ptr().add(blk * r.block_len()),
            0,
            r.k,
            hrows,
            init,
        )
    };
    for m in 0..MB {
        for v in 0..2 {
            let j = blk * 2 * l + v * l;
            let z = gate_f::<S, DEF>(
                s,
                &ctx.acts,
                clip(s, s.add(bias(s, &p.bias, j), acc[m][0][v]), cfg.clip),
            );
            let rg = gate_f::<S, DEF>(
                s,
                &ctx.acts,
                clip(s, s.add(bias(s, &p.bias, hp + j), acc[m][1][v]), cfg.clip),
            );
            let xn = s.add(bias(s, &p.bias, 2 * hp + j), xp[m][2][v]);
            let hn = s.add(acc[m][2][v], bias(s, &p.rbn, j));
            let n = gate_g::<S, DEF>(s, &ctx.acts, clip(s, s.mul_add(rg, hn, xn), cfg.clip));
            // SAFETY: h rows hold Hp floats from j.
            unsafe {
                let h_old = s.load(hrows[m].add(j));
                let h = s.mul_add(z, s.sub(h_old, n), n);
                s.store(b.h_next.add(rows[m] * b.hstride + j), h);
            }
        }
    }
}

/// GRU (reset before the matmul), first pass: z, r, and `r ⊙ h` for the
/// second pass; the input part of n is kept for the second pass.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn gru_before_zr_tile<S: Simd, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    // SAFETY: forwarded contract.
    let xp = unsafe { x_part::<S, 3, MB>(s, ctx, blk, b.x, rows) };
    let init: [Acc<S::V, 2>; MB] = std::array::from_fn(|m| [xp[m][0], xp[m][1]]);
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R_zr has K = H rows; h rows hold H floats.
    let acc = unsafe {
        dot::<S, 2, MB>(
            s,
            r.as_slice().as_ptr().add(blk * r.block_len()),
            0,
            r.k,
            hrows,
            init,
        )
    };
    for m in 0..MB {
        for v in 0..2 {
            let j = blk * 2 * l + v * l;
            let at = rows[m] * hp + j;
            let z = gate_f::<S, DEF>(
                s,
                &ctx.acts,
                clip(s, s.add(bias(s, &p.bias, j), acc[m][0][v]), cfg.clip),
            );
            let rg = gate_f::<S, DEF>(
                s,
                &ctx.acts,
                clip(s, s.add(bias(s, &p.bias, hp + j), acc[m][1][v]), cfg.clip),
            );
            // SAFETY: h rows and the Hp-row buffers hold Hp floats from j.
            unsafe {
                let h_old = s.load(hrows[m].add(j));
                s.store(b.z.add(at), z);
                s.store(b.aux.add(at), s.mul(rg, h_old));
                s.store(b.xn.add(at), xp[m][2][v]);
            }
        }
    }
}

/// GRU (reset before the matmul), second pass: n from `R_n (r ⊙ h)`, then h.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn gru_before_n_tile<S: Simd, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    let j0 = blk * 2 * l;
    let mut init = [[[s.zero(); 2]; 1]; MB];
    for m in 0..MB {
        // SAFETY: xn rows hold Hp floats.
        unsafe {
            init[m][0][0] = s.load(b.xn.add(rows[m] * hp + j0));
            init[m][0][1] = s.load(b.xn.add(rows[m] * hp + j0 + l));
        }
    }
    let rh = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    let rn = p.rn.as_ref().expect("reset-before GRU has R_n panels");
    // SAFETY: block `blk` of R_n has K = H rows; r ⊙ h rows hold Hp floats.
    let acc = unsafe {
        dot::<S, 1, MB>(
            s,
            rn.as_slice().as_ptr().add(blk * rn.block_len()),
            0,
            rn.k,
            rh,
            init,
        )
    };
    for m in 0..MB {
        for v in 0..2 {
            let j = j0 + v * l;
            let n = gate_g::<S, DEF>(
                s,
                &ctx.acts,
                clip(
                    s,
                    s.add(bias(s, &p.bias, 2 * hp + j), acc[m][0][v]),
                    cfg.clip,
                ),
            );
            // SAFETY: h, z rows hold Hp floats from j.
            unsafe {
                let h_old = s.load(b.h_prev.add(rows[m] * b.hstride + j));
                let z = s.load(b.z.add(rows[m] * hp + j));
                s.store(
                    b.h_next.add(rows[m] * b.hstride + j),
                    s.mul_add(z, s.sub(h_old, n), n),
                );
            }
        }
    }
}

/// Projection `h = W_hr h_full` for a tile: a plain product, stored.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn proj_tile<S: Simd, const MB: usize>(
    s: S,
    pr: &Panels,
    blk: usize,
    b: &Bufs,
    hp: usize,
    rows: &[usize; MB],
) {
    let l = S::LANES;
    let src = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    // SAFETY: block `blk` of the projection has K = H rows; h_full rows hold Hp floats.
    let acc = unsafe {
        dot::<S, 1, MB>(
            s,
            pr.as_slice().as_ptr().add(blk * pr.block_len()),
            0,
            pr.k,
            src,
            [[[s.zero(); 2]; 1]; MB],
        )
    };
    for m in 0..MB {
        // SAFETY: h_next rows hold hstride >= proj blocks * NR floats.
        unsafe {
            let o = b.h_next.add(rows[m] * b.hstride + blk * 2 * l);
            s.store(o, acc[m][0][0]);
            s.store(o.add(l), acc[m][0][1]);
        }
    }
}

/// Which tile function a pass runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Lstm,
    GruAfter,
    GruBeforeZr,
    GruBeforeN,
    Proj,
}

/// Runs `pass` over every block (in ping-pong order) and every tile of
/// active rows.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn run_pass<S: Simd, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
    max_rows: usize,
) {
    let blocks = match pass {
        Pass::Proj => ctx.p.proj.as_ref().map_or(0, |p| p.blocks),
        _ => ctx.p.r.blocks,
    };
    for i in 0..blocks {
        let blk = if backwards { blocks - 1 - i } else { i };
        let mut t = 0;
        while t < rows.len() {
            let n = (rows.len() - t).min(max_rows);
            // SAFETY: forwarded contract; the tile's rows are
            // active batch entries.
            unsafe {
                match n {
                    1 => tile::<S, 1, DEF>(s, ctx, pass, blk, b, &[rows[t]]),
                    2 => tile::<S, 2, DEF>(s, ctx, pass, blk, b, &[rows[t], rows[t + 1]]),
                    _ => tile::<S, 3, DEF>(
                        s,
                        ctx,
                        pass,
                        blk,
                        b,
                        &[rows[t], rows[t + 1], rows[t + 2]],
                    ),
                }
            }
            t += n.min(3);
        }
    }
}

#[inline(always)]
unsafe fn tile<S: Simd, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
) {
    // SAFETY: forwarded contract of `step`.
    unsafe {
        match pass {
            Pass::Lstm => lstm_tile::<S, MB, DEF>(s, ctx, blk, b, rows),
            Pass::GruAfter => gru_after_tile::<S, MB, DEF>(s, ctx, blk, b, rows),
            Pass::GruBeforeZr => gru_before_zr_tile::<S, MB, DEF>(s, ctx, blk, b, rows),
            Pass::GruBeforeN => gru_before_n_tile::<S, MB, DEF>(s, ctx, blk, b, rows),
            Pass::Proj => {
                let pr = ctx.p.proj.as_ref().expect("projection panels");
                proj_tile::<S, MB>(s, pr, blk, b, ctx.hp, rows)
            }
        }
    }
}

/// One time step of one layer direction for the active batch entries
/// `rows`: reads `h_prev`, writes `h_next`, updates `c`.
///
/// # Safety
/// Every pointer in `b` is valid for the rows in `rows`: `h_prev`/`h_next`
/// rows of `hstride >= max(Hp, proj blocks * NR)` floats (holding the state
/// in their first `Hout`), `c`, `aux`, `z`, `xn` rows of `Hp` floats (those
/// the cell uses), and `b.x` rows as its variant says; `ctx.p` was packed
/// for `S` (`NR = 2 * S::LANES`). No two of the written buffers overlap.
#[inline(always)]
pub(crate) unsafe fn step<S: Simd>(
    s: S,
    ctx: &Ctx<'_>,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
    max_rows: usize,
) {
    if ctx.acts.is_default() {
        // SAFETY: forwarded contract.
        unsafe { step_impl::<S, true>(s, ctx, b, rows, backwards, max_rows) }
    } else {
        // SAFETY: forwarded contract.
        unsafe { step_impl::<S, false>(s, ctx, b, rows, backwards, max_rows) }
    }
}

#[inline(always)]
unsafe fn step_impl<S: Simd, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
    max_rows: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match (ctx.cfg.cell, ctx.cfg.gru_reset) {
            (Cell::Lstm, _) => {
                run_pass::<S, DEF>(s, ctx, Pass::Lstm, b, rows, backwards, max_rows);
                if ctx.p.proj.is_some() {
                    run_pass::<S, DEF>(s, ctx, Pass::Proj, b, rows, backwards, max_rows);
                }
            }
            (Cell::Gru, GruReset::AfterMatmul) => {
                run_pass::<S, DEF>(s, ctx, Pass::GruAfter, b, rows, backwards, max_rows)
            }
            (Cell::Gru, GruReset::BeforeMatmul) => {
                run_pass::<S, DEF>(s, ctx, Pass::GruBeforeZr, b, rows, backwards, max_rows);
                run_pass::<S, DEF>(s, ctx, Pass::GruBeforeN, b, rows, backwards, max_rows);
            }
        }
    }
}

/// The input projection for many rows at once: `out[r] = W x[r]` for every
/// gate, `[G*Hp]` per row, computed with the same [`dot`] as the step (so
/// the numbers match a streaming step exactly), several rows per tile so
/// each weight load is reused.
///
/// # Safety
/// `x` holds `n_rows` rows of `ctx.inp` floats, `x_stride` apart; `out` holds
/// `n_rows` rows of `G*Hp` floats; `ctx.p` was packed for `S`.
#[inline(always)]
pub(crate) unsafe fn project<S: Simd>(
    s: S,
    ctx: &Ctx<'_>,
    x: *const f32,
    x_stride: usize,
    n_rows: usize,
    out: *mut f32,
    max_rows: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match ctx.p.w.g {
            4 => project_g::<S, 4>(s, ctx, x, x_stride, n_rows, out, max_rows),
            _ => project_g::<S, 3>(s, ctx, x, x_stride, n_rows, out, max_rows),
        }
    }
}

#[inline(always)]
unsafe fn project_g<S: Simd, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: *const f32,
    x_stride: usize,
    n_rows: usize,
    out: *mut f32,
    max_rows: usize,
) {
    let w = &ctx.p.w;
    let mut r = 0;
    while r < n_rows {
        let n = (n_rows - r).min(max_rows).min(4);
        // SAFETY: rows r..r+n exist in x and out.
        unsafe {
            match n {
                1 => project_tile::<S, G, 1>(s, w, ctx.hp, x, x_stride, r, out),
                2 => project_tile::<S, G, 2>(s, w, ctx.hp, x, x_stride, r, out),
                3 => project_tile::<S, G, 3>(s, w, ctx.hp, x, x_stride, r, out),
                _ => project_tile::<S, G, 4>(s, w, ctx.hp, x, x_stride, r, out),
            }
        }
        r += n;
    }
}

#[inline(always)]
unsafe fn project_tile<S: Simd, const G: usize, const MB: usize>(
    s: S,
    w: &Panels,
    hp: usize,
    x: *const f32,
    x_stride: usize,
    r0: usize,
    out: *mut f32,
) {
    let l = S::LANES;
    let rows = std::array::from_fn(|m| x.wrapping_add((r0 + m) * x_stride));
    for blk in 0..w.blocks {
        // SAFETY: block `blk` has K = In rows; each x row holds In floats.
        let acc = unsafe {
            dot::<S, G, MB>(
                s,
                w.as_slice().as_ptr().add(blk * w.block_len()),
                0,
                w.k,
                rows,
                [[[s.zero(); 2]; G]; MB],
            )
        };
        for m in 0..MB {
            for g in 0..G {
                // SAFETY: out rows hold G*Hp floats; g*Hp + blk*NR + 2L <= G*Hp.
                unsafe {
                    let o = out.add((r0 + m) * G * hp + g * hp + blk * 2 * l);
                    s.store(o, acc[m][g][0]);
                    s.store(o.add(l), acc[m][g][1]);
                }
            }
        }
    }
}

/// Reads every float of `data` once with the ISA's vector loads (a sum, so
/// the loads cannot be optimized away): the floor a step's recurrent
/// product cannot beat. `data.len()` must be a multiple of `4 * LANES`
/// (packed panels are).
#[inline(always)]
pub(crate) fn stream_sum<S: Simd>(s: S, data: &[f32]) -> f32 {
    let l = S::LANES;
    // Eight independent sums so the adds' latency never limits the loads.
    let mut acc = [s.zero(); 8];
    let (body, tail) = data.split_at(data.len() / (8 * l) * (8 * l));
    for c in body.chunks_exact(8 * l) {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` has 8 * LANES floats.
            *a = s.add(*a, unsafe { s.load(c.as_ptr().add(k * l)) });
        }
    }
    for c in tail.chunks_exact(4 * l) {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` has 4 * LANES floats.
            *a = s.add(*a, unsafe { s.load(c.as_ptr().add(k * l)) });
        }
    }
    let v = acc[1..].iter().fold(acc[0], |a, &b| s.add(a, b));
    let mut out = [0.0f32; 16];
    // SAFETY: `out` holds 16 >= LANES floats.
    unsafe { s.store(out.as_mut_ptr(), v) };
    out.iter().sum()
}
