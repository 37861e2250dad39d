//! The input projection of a sequence: `W x` for the rows of a few time
//! steps at once (the driver projects the next chunk of steps right before
//! they run, so the result is still in L2 when the steps read it), with the
//! same product as the step (so a streaming step, which multiplies `W`
//! inside the step, gives the same numbers), several rows per tile so each
//! weight load serves many rows.

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::{dot_panel, Kernel};
use super::pack::Panels;
use super::tile::{chunks, Ctx, QBuf, TilePlan};

/// The rows an input projection multiplies: projection row `r` (`0..n`)
/// is layer-input row `idx[r]` at `x + idx[r] * stride`, and for int8-dynamic panels `qx`'s row of the same
/// number. A sequence projects the rows of a few time steps at a time
/// (whatever the layout, direction and lengths say those rows are) into a
/// buffer that stays in cache (see `driver.rs`).
#[derive(Clone, Copy)]
pub(crate) struct XRows {
    pub(crate) x: *const f32,
    pub(crate) stride: usize,
    pub(crate) qx: QBuf,
    pub(crate) idx: *const usize,
    pub(crate) n: usize,
}

impl XRows {
    /// The layer-input row of projection row `r`.
    ///
    /// # Safety
    /// `r < self.n`; `idx` holds `n` entries.
    #[inline(always)]
    unsafe fn src(&self, r: usize) -> usize {
        // SAFETY: r < n entries (the contract).
        unsafe { *self.idx.add(r) }
    }
}

/// The input projection for many rows at once: `out[r] = W x[r]` for every
/// gate, `[G*Hp]` per row (rows [`xproj_stride`] apart), computed with the
/// same product as the step (so the numbers match a streaming step
/// exactly), several rows per tile so each weight load is reused.
///
/// Only the units of weight blocks `blocks.0..blocks.1` are written (a
/// team thread's share: the units its step reads).
///
/// # Safety
/// `x.idx` holds `x.n` entries; every layer-input row `x.idx[r]` holds
/// `ctx.inp` floats at `x.x + x.idx[r] * x.stride`; `out` holds `x.n` rows of
/// [`xproj_stride`]`(G, Hp)` floats; `ctx.p` was packed for `S`;
/// `blocks.0 <= blocks.1 <= ctx.p.w.blocks`; for int8-dynamic panels
/// `x.qx` holds those rows quantized (`In` rounded up to 4 bytes each) and
/// their scales.
#[inline(always)]
pub(crate) unsafe fn project<S: Kernel>(
    s: S,
    ctx: &Ctx<'_>,
    x: XRows,
    out: *mut f32,
    blocks: (usize, usize),
) {
    // SAFETY: forwarded contract.
    unsafe {
        match ctx.p.w.g {
            4 => project_g::<S, 4>(s, ctx, x, out, blocks),
            _ => project_g::<S, 3>(s, ctx, x, out, blocks),
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

/// Rows of the input projection per group, in tiles: the group's partial
/// sums stay in L2 while its chunks run.
const PROJECT_GROUP_TILES: usize = 32;

/// [`project`] for `G` gates.
///
/// # Safety
/// As for [`project`].
#[inline(always)]
unsafe fn project_g<S: Kernel, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: XRows,
    out: *mut f32,
    blocks: (usize, usize),
) {
    let n_rows = x.n;
    let w = &ctx.p.w;
    assert!(blocks.0 <= blocks.1 && blocks.1 <= w.blocks, "block range");
    let group = PROJECT_GROUP_TILES * S::HALF_ROWS;
    let mut g0 = 0;
    while g0 < n_rows {
        let g1 = (g0 + group).min(n_rows);
        let plan = TilePlan::new::<S>(g1 - g0, w);
        let n_half = g0 + plan.halves * S::HALF_ROWS;
        let full = S::FULL_ROWS.clamp(1, 3);
        for blk in blocks.0..blocks.1 {
            for ch in chunks(w.k, plan.kc) {
                let (k0, k1) = (ch.k0, ch.k1);
                let at = |r: usize, v0: usize| ProjectAt {
                    w,
                    hp: ctx.hp,
                    x,
                    r0: r,
                    out,
                    blk,
                    v0,
                    k0,
                    k1,
                };
                for v0 in 0..2 {
                    for r in (g0..n_half).step_by(S::HALF_ROWS) {
                        let a = at(r, v0);
                        // SAFETY: rows r..r+HALF_ROWS exist in x and out;
                        // k0 <= k1 <= K. One tile size per ISA constant.
                        unsafe {
                            match S::HALF_ROWS {
                                6 => project_tile::<S, G, 6, 1>(s, a),
                                3 => project_tile::<S, G, 3, 1>(s, a),
                                2 => project_tile::<S, G, 2, 1>(s, a),
                                _ => project_tile::<S, G, 1, 1>(s, a),
                            }
                        }
                    }
                }
                let mut r = n_half;
                while r < g1 {
                    let n = (g1 - r).min(full);
                    let a = at(r, 0);
                    // SAFETY: rows r..r+n exist in x and out; k0 <= k1 <= K.
                    unsafe {
                        if S::FULL_ROWS <= 1 {
                            project_tile::<S, G, 1, 2>(s, a)
                        } else {
                            match n {
                                1 => project_tile::<S, G, 1, 2>(s, a),
                                2 => project_tile::<S, G, 2, 2>(s, a),
                                _ => project_tile::<S, G, 3, 2>(s, a),
                            }
                        }
                    }
                    r += n;
                }
            }
        }
        g0 = g1;
    }
}

/// Where one projection tile reads and writes.
#[derive(Clone, Copy)]
struct ProjectAt<'a> {
    w: &'a Panels,
    hp: usize,
    /// The rows multiplied (and, int8-dynamic, their quantized copies).
    x: XRows,
    /// First row of the tile.
    r0: usize,
    /// Output rows, [`xproj_stride`] apart.
    out: *mut f32,
    blk: usize,
    /// First vector of each gate (0, or 1 for a half tile's second half).
    v0: usize,
    /// Panel rows `k0..k1`.
    k0: usize,
    k1: usize,
}

/// Rows `k0..k1` of block `blk` (vectors `v0..v0+NV`) of the projection
/// for rows `r0..r0+MB`: starts from 0 when `k0 == 0`, else from the
/// partial sums already in `out` (stored f32 values, so the sum is the same
/// as in one pass).
///
/// # Safety
/// As for [`project`]; `r0 + MB <= n_rows`, `k1 <= In`.
#[inline(always)]
unsafe fn project_tile<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    at: ProjectAt<'_>,
) {
    let ProjectAt {
        w,
        hp,
        x,
        r0,
        out,
        blk,
        v0,
        k0,
        k1,
    } = at;
    let l = S::LANES;
    // SAFETY: r0 + MB <= n_rows (the contract).
    let src: [usize; MB] = std::array::from_fn(|m| unsafe { x.src(r0 + m) });
    let rows = std::array::from_fn(|m| x.x.wrapping_add(src[m] * x.stride));
    let stride = xproj_stride(G, hp);
    let at = |m: usize, g: usize, v: usize| (r0 + m) * stride + g * hp + blk * 2 * l + (v0 + v) * l;
    let mut acc = [[[s.zero(); NV]; G]; MB];
    if k0 > 0 {
        for m in 0..MB {
            for g in 0..G {
                for v in 0..NV {
                    // SAFETY: out rows are `xproj_stride` apart and hold G*Hp
                    // floats; g*Hp + blk*NR + (v0+v+1)*L <= G*Hp.
                    acc[m][g][v] = unsafe { s.load(out.add(at(m, g, v))) };
                }
            }
        }
    }
    // SAFETY: block `blk` has K = In >= k1 rows; each x row holds In
    // floats; qx (int8-dynamic) holds the same rows quantized.
    let acc = unsafe {
        let q = x.qx.rows(&src);
        dot_panel::<S, G, MB, NV>(s, w, blk, v0, k0, k1, rows, q, acc)
    };
    for m in 0..MB {
        for g in 0..G {
            for v in 0..NV {
                // SAFETY: as above.
                unsafe { s.store(out.add(at(m, g, v)), acc[m][g][v]) };
            }
        }
    }
}
