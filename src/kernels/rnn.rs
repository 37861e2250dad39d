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
    /// Partial sums between chunks: per batch entry, [`ACC_SLOTS`] blocks
    /// of `NR` floats (the gates' sums, then GRU's input part of n).
    pub(crate) acc: *mut f32,
}

/// `NR`-float slots per batch entry in [`Bufs::acc`].
pub(crate) const ACC_SLOTS: usize = 4;

/// Rows `k0..k1` of a panel for one pass over a block's tiles. With more
/// than one tile the panel is walked in chunks that stay in L1 while every
/// tile uses them; the tiles keep their partial sums in [`Bufs::acc`]
/// between chunks (stored f32 values: the sum is the same as in one pass).
#[derive(Clone, Copy)]
struct Chunk {
    k0: usize,
    k1: usize,
    first: bool,
    last: bool,
}

/// Loads the partial sums of `G` gates from slots `0..G` of the tile's rows.
///
/// # Safety
/// `b.acc` has [`ACC_SLOTS`] `* NR` floats for every entry in `rows`.
#[inline(always)]
unsafe fn resume<S: Kernel, const G: usize, const MB: usize>(
    s: S,
    b: &Bufs,
    rows: &[usize; MB],
    slot0: usize,
) -> [Acc<S::V, G>; MB] {
    let l = S::LANES;
    std::array::from_fn(|m| {
        std::array::from_fn(|g| {
            // SAFETY: slot0 + g < ACC_SLOTS, rows[m] < batch.
            let p = unsafe { b.acc.add((rows[m] * ACC_SLOTS + slot0 + g) * 2 * l) };
            // SAFETY: as above, 2L floats per slot.
            unsafe { [s.load(p), s.load(p.add(l))] }
        })
    })
}

/// Stores the partial sums of `G` gates into slots `slot0..slot0+G`.
///
/// # Safety
/// As for [`resume`].
#[inline(always)]
unsafe fn park<S: Kernel, const G: usize, const MB: usize>(
    s: S,
    b: &Bufs,
    rows: &[usize; MB],
    slot0: usize,
    acc: &[Acc<S::V, G>; MB],
) {
    let l = S::LANES;
    for m in 0..MB {
        for g in 0..G {
            // SAFETY: slot0 + g < ACC_SLOTS, rows[m] < batch, 2L floats per slot.
            unsafe {
                let p = b.acc.add((rows[m] * ACC_SLOTS + slot0 + g) * 2 * l);
                s.store(p, acc[m][g][0]);
                s.store(p.add(l), acc[m][g][1]);
            }
        }
    }
}

/// An ISA whose [`dot`] runs as a function of its own, compiled for the
/// ISA's features and never inlined into the tile functions. Inlined, the
/// epilogue's constants (σ/tanh coefficients, hoisted out of the block
/// loop by LLVM) took the registers the product's sums need, and the 3-row
/// LSTM tile kept its 24 sums on the stack: a load, an FMA and a store per
/// sum and weight row. Out of line, the loop holds the sums, the row
/// broadcasts and one weight vector in registers. The call costs a few
/// dozen cycles per tile against `K * G * 2 * MB` FMAs.
pub(crate) trait Kernel: Simd {
    /// [`dot`] for this ISA.
    ///
    /// # Safety
    /// As for [`dot`].
    unsafe fn dot_k<const G: usize, const MB: usize>(
        self,
        blk: *const f32,
        k0: usize,
        k1: usize,
        rows: [*const f32; MB],
        acc: [Acc<Self::V, G>; MB],
    ) -> [Acc<Self::V, G>; MB];
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
        // SAFETY: rows[m] has at least k1 > kk floats.
        let x: [S::V; MB] = std::array::from_fn(|m| s.splat(unsafe { *rows[m].add(kk) }));
        // One weight vector at a time, used by every row right away: live
        // registers are the MB*G*2 sums, MB broadcasts and one weight.
        for g in 0..G {
            for v in 0..2 {
                // SAFETY: kk < k1 <= K, so the G*NR floats at `wp` are in the block.
                let w = unsafe { s.load(wp.add(g * nr + v * l)) };
                for m in 0..MB {
                    acc[m][g][v] = s.mul_add(w, x[m], acc[m][g][v]);
                }
            }
        }
        wp = wp.wrapping_add(G * nr);
    }
    acc
}

#[inline(always)]
fn clip<S: Kernel>(s: S, v: S::V, c: Option<f32>) -> S::V {
    match c {
        // Constants first so a NaN pre-activation propagates.
        Some(c) => s.min(s.splat(c), s.max(s.splat(-c), v)),
        None => v,
    }
}

#[inline(always)]
fn gate_f<S: Kernel, const DEF: bool>(s: S, a: &Activations, v: S::V) -> S::V {
    if DEF {
        sigmoid_v(s, v)
    } else {
        activation_v(s, a.f, v)
    }
}

#[inline(always)]
fn gate_g<S: Kernel, const DEF: bool>(s: S, a: &Activations, v: S::V) -> S::V {
    if DEF {
        tanh_v(s, v)
    } else {
        activation_v(s, a.g, v)
    }
}

#[inline(always)]
fn gate_h<S: Kernel, const DEF: bool>(s: S, a: &Activations, v: S::V) -> S::V {
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
unsafe fn x_part<S: Kernel, const G: usize, const MB: usize>(
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
                s.dot_k::<G, MB>(
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
fn bias<S: Kernel>(s: S, v: &[f32], at: usize) -> S::V {
    debug_assert!(at + S::LANES <= v.len());
    // SAFETY: every bias vector is padded to G*Hp and at + LANES <= its length.
    unsafe { s.load(v.as_ptr().add(at)) }
}

/// One LSTM block for a tile of rows.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn lstm_tile<S: Kernel, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    // SAFETY: forwarded contract.
    let init = unsafe {
        if ch.first {
            x_part::<S, 4, MB>(s, ctx, blk, b.x, rows)
        } else {
            resume::<S, 4, MB>(s, b, rows, 0)
        }
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R has K = Hout >= k1 rows; h rows hold Hout floats.
    let acc = unsafe {
        s.dot_k::<4, MB>(
            r.as_slice().as_ptr().add(blk * r.block_len()),
            ch.k0,
            ch.k1,
            hrows,
            init,
        )
    };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 4, MB>(s, b, rows, 0, &acc) };
        return;
    }
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
unsafe fn gru_after_tile<S: Kernel, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    // z and r continue from their input part; n's recurrent part starts at
    // 0 and its input part waits for the epilogue (slot 3 between chunks).
    let (init, xn_part) = if ch.first {
        // SAFETY: forwarded contract.
        let xp = unsafe { x_part::<S, 3, MB>(s, ctx, blk, b.x, rows) };
        let mut init = xp;
        for a in init.iter_mut() {
            a[2] = [s.zero(); 2];
        }
        let xn: [Acc<S::V, 1>; MB] = std::array::from_fn(|m| [xp[m][2]]);
        (init, xn)
    } else {
        // SAFETY: forwarded contract.
        unsafe {
            (
                resume::<S, 3, MB>(s, b, rows, 0),
                resume::<S, 1, MB>(s, b, rows, 3),
            )
        }
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R has K = H >= k1 rows; h rows hold H floats.
    let acc = unsafe {
        s.dot_k::<3, MB>(
            r.as_slice().as_ptr().add(blk * r.block_len()),
            ch.k0,
            ch.k1,
            hrows,
            init,
        )
    };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe {
            park::<S, 3, MB>(s, b, rows, 0, &acc);
            if ch.first {
                park::<S, 1, MB>(s, b, rows, 3, &xn_part);
            }
        }
        return;
    }
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
            let xn = s.add(bias(s, &p.bias, 2 * hp + j), xn_part[m][0][v]);
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
unsafe fn gru_before_zr_tile<S: Kernel, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    let init: [Acc<S::V, 2>; MB] = if ch.first {
        // SAFETY: forwarded contract.
        let xp = unsafe { x_part::<S, 3, MB>(s, ctx, blk, b.x, rows) };
        for m in 0..MB {
            let at = rows[m] * hp + blk * 2 * l;
            // SAFETY: xn rows hold Hp floats; blk*NR + 2L <= Hp.
            unsafe {
                s.store(b.xn.add(at), xp[m][2][0]);
                s.store(b.xn.add(at + l), xp[m][2][1]);
            }
        }
        std::array::from_fn(|m| [xp[m][0], xp[m][1]])
    } else {
        // SAFETY: forwarded contract.
        unsafe { resume::<S, 2, MB>(s, b, rows, 0) }
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R_zr has K = H >= k1 rows; h rows hold H floats.
    let acc = unsafe {
        s.dot_k::<2, MB>(
            r.as_slice().as_ptr().add(blk * r.block_len()),
            ch.k0,
            ch.k1,
            hrows,
            init,
        )
    };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 2, MB>(s, b, rows, 0, &acc) };
        return;
    }
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
            }
        }
    }
}

/// GRU (reset before the matmul), second pass: n from `R_n (r ⊙ h)`, then h.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn gru_before_n_tile<S: Kernel, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    let j0 = blk * 2 * l;
    let mut init = [[[s.zero(); 2]; 1]; MB];
    if ch.first {
        for m in 0..MB {
            // SAFETY: xn rows hold Hp floats.
            unsafe {
                init[m][0][0] = s.load(b.xn.add(rows[m] * hp + j0));
                init[m][0][1] = s.load(b.xn.add(rows[m] * hp + j0 + l));
            }
        }
    } else {
        // SAFETY: forwarded contract.
        init = unsafe { resume::<S, 1, MB>(s, b, rows, 0) };
    }
    let rh = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    let rn = p.rn.as_ref().expect("reset-before GRU has R_n panels");
    // SAFETY: block `blk` of R_n has K = H >= k1 rows; r ⊙ h rows hold Hp floats.
    let acc = unsafe {
        s.dot_k::<1, MB>(
            rn.as_slice().as_ptr().add(blk * rn.block_len()),
            ch.k0,
            ch.k1,
            rh,
            init,
        )
    };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 1, MB>(s, b, rows, 0, &acc) };
        return;
    }
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
unsafe fn proj_tile<S: Kernel, const MB: usize>(
    s: S,
    pr: &Panels,
    blk: usize,
    b: &Bufs,
    hp: usize,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let src = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    let init = if ch.first {
        [[[s.zero(); 2]; 1]; MB]
    } else {
        // SAFETY: forwarded contract.
        unsafe { resume::<S, 1, MB>(s, b, rows, 0) }
    };
    // SAFETY: block `blk` of the projection has K = H >= k1 rows; h_full rows hold Hp floats.
    let acc = unsafe {
        s.dot_k::<1, MB>(
            pr.as_slice().as_ptr().add(blk * pr.block_len()),
            ch.k0,
            ch.k1,
            src,
            init,
        )
    };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 1, MB>(s, b, rows, 0, &acc) };
        return;
    }
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
unsafe fn run_pass<S: Kernel, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
    max_rows: usize,
) {
    let p = ctx.p;
    let panel = match pass {
        Pass::Proj => match &p.proj {
            Some(pr) => pr,
            None => return,
        },
        Pass::GruBeforeN => p.rn.as_ref().expect("reset-before GRU has R_n panels"),
        _ => &p.r,
    };
    let mb = max_rows.clamp(1, 3);
    let kc = chunk_rows(panel, rows.len().div_ceil(mb));
    let blocks = panel.blocks;
    for i in 0..blocks {
        let blk = if backwards { blocks - 1 - i } else { i };
        let mut k0 = 0;
        loop {
            let k1 = (k0 + kc).min(panel.k);
            let ch = Chunk {
                k0,
                k1,
                first: k0 == 0,
                last: k1 >= panel.k,
            };
            let mut t = 0;
            while t < rows.len() {
                let n = (rows.len() - t).min(mb);
                // SAFETY: forwarded contract; the tile's rows are
                // active batch entries.
                unsafe {
                    match n {
                        1 => tile::<S, 1, DEF>(s, ctx, pass, blk, b, &[rows[t]], ch),
                        2 => tile::<S, 2, DEF>(s, ctx, pass, blk, b, &[rows[t], rows[t + 1]], ch),
                        _ => tile::<S, 3, DEF>(
                            s,
                            ctx,
                            pass,
                            blk,
                            b,
                            &[rows[t], rows[t + 1], rows[t + 2]],
                            ch,
                        ),
                    }
                }
                t += n;
            }
            if ch.last {
                break;
            }
            k0 = k1;
        }
    }
}

#[inline(always)]
unsafe fn tile<S: Kernel, const MB: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    // SAFETY: forwarded contract of `step`.
    unsafe {
        match pass {
            Pass::Lstm => lstm_tile::<S, MB, DEF>(s, ctx, blk, b, rows, ch),
            Pass::GruAfter => gru_after_tile::<S, MB, DEF>(s, ctx, blk, b, rows, ch),
            Pass::GruBeforeZr => gru_before_zr_tile::<S, MB, DEF>(s, ctx, blk, b, rows, ch),
            Pass::GruBeforeN => gru_before_n_tile::<S, MB, DEF>(s, ctx, blk, b, rows, ch),
            Pass::Proj => {
                let pr = ctx.p.proj.as_ref().expect("projection panels");
                proj_tile::<S, MB>(s, pr, blk, b, ctx.hp, rows, ch)
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
pub(crate) unsafe fn step<S: Kernel>(
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
unsafe fn step_impl<S: Kernel, const DEF: bool>(
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
/// gate, `[G*Hp]` per row (rows [`xproj_stride`] apart), computed with the same [`dot`] as the step (so
/// the numbers match a streaming step exactly), several rows per tile so
/// each weight load is reused.
///
/// # Safety
/// `x` holds `n_rows` rows of `ctx.inp` floats, `x_stride` apart; `out` holds
/// `n_rows` rows of [`xproj_stride`]`(G, Hp)` floats; `ctx.p` was packed for `S`.
#[inline(always)]
pub(crate) unsafe fn project<S: Kernel>(
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

/// Row stride of the input projection buffer: `G*Hp` plus one cache line,
/// so that rows are never a multiple of 4 KiB apart (rows that are all map
/// to the same L1 sets and evict each other while a row group's partial
/// sums are reused).
pub(crate) fn xproj_stride(g: usize, hp: usize) -> usize {
    g * hp + 16
}

/// Bytes of one chunk of a weight block: the rows of a panel that stay in
/// L1 while every batch tile runs over them (half of a 32 KiB L1D, the rest
/// for the activations and partial sums).
const CHUNK_BYTES: usize = 1 << 30;
/// Rows of the input projection per group: the group's partial sums
/// (`rows x G x NR` floats per block) stay in L2 while its chunks run.
const PROJECT_GROUP_TILES: usize = 32;

/// Rows `K` of a panel split into chunks of `kc` rows: `kc = K` when one
/// tile runs (the panel streams once anyway), else what fits
/// [`CHUNK_BYTES`].
#[inline(always)]
fn chunk_rows(p: &Panels, tiles: usize) -> usize {
    if tiles <= 1 {
        p.k.max(1)
    } else {
        (CHUNK_BYTES / (4 * p.g * p.nr)).max(1)
    }
}

#[inline(always)]
unsafe fn project_g<S: Kernel, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: *const f32,
    x_stride: usize,
    n_rows: usize,
    out: *mut f32,
    max_rows: usize,
) {
    let w = &ctx.p.w;
    let mb = max_rows.clamp(1, 3);
    let group = PROJECT_GROUP_TILES * mb;
    let mut g0 = 0;
    while g0 < n_rows {
        let g1 = (g0 + group).min(n_rows);
        let kc = chunk_rows(w, (g1 - g0).div_ceil(mb));
        for blk in 0..w.blocks {
            let mut k0 = 0;
            loop {
                let k1 = (k0 + kc).min(w.k);
                let mut r = g0;
                while r < g1 {
                    let n = (g1 - r).min(mb);
                    // SAFETY: rows r..r+n exist in x and out; k0 <= k1 <= K.
                    unsafe {
                        match n {
                            1 => project_tile::<S, G, 1>(
                                s, w, ctx.hp, x, x_stride, r, out, blk, k0, k1,
                            ),
                            2 => project_tile::<S, G, 2>(
                                s, w, ctx.hp, x, x_stride, r, out, blk, k0, k1,
                            ),
                            _ => project_tile::<S, G, 3>(
                                s, w, ctx.hp, x, x_stride, r, out, blk, k0, k1,
                            ),
                        }
                    }
                    r += n;
                }
                if k1 >= w.k {
                    break;
                }
                k0 = k1;
            }
        }
        g0 = g1;
    }
}

/// Rows `k0..k1` of block `blk` of the projection for rows `r0..r0+MB`:
/// starts from 0 when `k0 == 0`, else from the partial sums already in
/// `out` (stored f32 values, so the sum is the same as in one pass).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn project_tile<S: Kernel, const G: usize, const MB: usize>(
    s: S,
    w: &Panels,
    hp: usize,
    x: *const f32,
    x_stride: usize,
    r0: usize,
    out: *mut f32,
    blk: usize,
    k0: usize,
    k1: usize,
) {
    let l = S::LANES;
    let rows = std::array::from_fn(|m| x.wrapping_add((r0 + m) * x_stride));
    let stride = xproj_stride(G, hp);
    let at = |m: usize, g: usize| (r0 + m) * stride + g * hp + blk * 2 * l;
    let mut acc = [[[s.zero(); 2]; G]; MB];
    if k0 > 0 {
        for m in 0..MB {
            for g in 0..G {
                // SAFETY: out rows are `xproj_stride` apart and hold G*Hp
                // floats; g*Hp + blk*NR + 2L <= G*Hp.
                unsafe {
                    acc[m][g][0] = s.load(out.add(at(m, g)));
                    acc[m][g][1] = s.load(out.add(at(m, g) + l));
                }
            }
        }
    }
    // SAFETY: block `blk` has K = In >= k1 rows; each x row holds In floats.
    let acc = unsafe {
        s.dot_k::<G, MB>(
            w.as_slice().as_ptr().add(blk * w.block_len()),
            k0,
            k1,
            rows,
            acc,
        )
    };
    for m in 0..MB {
        for g in 0..G {
            // SAFETY: as above.
            unsafe {
                s.store(out.add(at(m, g)), acc[m][g][0]);
                s.store(out.add(at(m, g) + l), acc[m][g][1]);
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
