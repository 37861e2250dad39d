//! The input projection of a sequence: `W x` for the rows of a few time
//! steps at once (the driver projects the next chunk of steps right before
//! they run, so the result is still in L2 when the steps read it), with the
//! same product as the step (so a streaming step, which multiplies `W`
//! inside the step, gives the same numbers), several rows per tile so each
//! weight load serves many rows.
//!
//! The projection needs no epilogue, so its tiles need not hold all gates
//! of a unit: with f32, 16-bit and int8 panels, whole groups of
//! [`Kernel::PROJ_ROWS`] rows run in gate-pair tiles (one gate's `NR`
//! units, twice the rows of the step's half-block tile per weight vector:
//! half the panel bytes per FMA), the rest in the step's tiles. Measured
//! (Intel Xeon, 3 interleaved runs, projection alone): AVX-512 12-row
//! tiles 262 -> 245 us per step at lstm-h256-b64, 65 -> 55 at b16, 0.97 ->
//! 0.90 at lstm-h128-b1, unchanged at lstm-h512-b64; AVX2 6-row tiles 697
//! -> 447 at b64, 172 -> 104 at b16, 10.6 -> 6.7 at lstm-h256-b1.

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::{chunk_rows, dot_panel, pair_dot_panel, Bf16, Elem, Kernel, F16, I8};
use super::pack::Panels;
use super::tile::{chunks, Ctx, QBuf, TilePlan};
use crate::weights::WeightFormat;

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
    let group = PROJECT_GROUP_TILES * S::HALF_ROWS.max(S::PROJ_ROWS);
    let mr = S::PROJ_ROWS;
    let pairs = mr > 0 && w.format() != WeightFormat::Int8Dynamic;
    let mut g0 = 0;
    while g0 < n_rows {
        let g1 = (g0 + group).min(n_rows);
        // Whole groups of PROJ_ROWS rows in gate-pair tiles; the rest in
        // the step's tiles.
        let rest = if pairs && g1 - g0 >= mr {
            let r1 = g0 + (g1 - g0) / mr * mr;
            // SAFETY: rows g0..r1 < n_rows exist in x and out (the
            // contract); the block range is checked above.
            unsafe { project_pairs::<S, G>(s, ctx, x, out, blocks, (g0, r1)) };
            r1
        } else {
            g0
        };
        if rest < g1 {
            // SAFETY: rows rest..g1 < n_rows (the contract).
            unsafe { project_rows::<S, G>(s, ctx, x, out, blocks, (rest, g1)) };
        }
        g0 = g1;
    }
}

/// Rows `g0..g1` of the projection in the step's tiles (half-block tiles of
/// `HALF_ROWS` rows, the rest in whole-block tiles).
///
/// # Safety
/// As for [`project`]; `g0 <= g1 <= x.n`, `blocks.1 <= ctx.p.w.blocks`.
#[inline(always)]
unsafe fn project_rows<S: Kernel, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: XRows,
    out: *mut f32,
    blocks: (usize, usize),
    (g0, g1): (usize, usize),
) {
    let w = &ctx.p.w;
    let plan = TilePlan::new::<S>(g1 - g0, w);
    let n_half = g0 + plan.halves * S::HALF_ROWS;
    let full = S::FULL_ROWS.clamp(1, 3);
    for blk in blocks.0..blocks.1 {
        for ch in chunks(w.k, plan.kc, false) {
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
}

/// Bytes of one gate's panel (both vectors, `k` rows) past which a
/// gate-pair walk is split into chunks, the sums resumed from the output
/// (stored f32 values: the same sums as in one pass). Chunks that stay in
/// L1 did not pay for the resumes: the projection of lstm-h256-b64 took
/// 260 us per step in 16 KiB chunks, 245 in 32 KiB and 237 unchunked
/// (K = 256: 32 KiB per gate), lstm-h512-b64 1022 / 1028 / 1000 (Intel
/// Xeon, AVX-512, 3 interleaved runs); AVX2 the same within 1%. Only
/// reductions past 2048 (f32) are chunked, so a walk stays in L2.
const PAIR_CHUNK_BYTES: usize = 256 * 1024;

/// Rows `r0..r1` (a multiple of `PROJ_ROWS` rows) of the projection in
/// gate-pair tiles: per block and gate, `PROJ_ROWS` rows times the gate's
/// `NR` units, so every weight vector loaded serves `PROJ_ROWS` rows (a
/// half-block tile of the step serves `HALF_ROWS`). The sums are the
/// step's (the same FMAs in the same `k` order; int8's scaled per segment
/// as there), so the numbers are those of the step's tiles.
///
/// # Safety
/// As for [`project`]; `r0 <= r1 <= x.n` with `r1 - r0` a multiple of
/// `PROJ_ROWS`, `blocks.1 <= ctx.p.w.blocks`; the panels are f32, 16-bit or
/// int8.
#[inline(always)]
unsafe fn project_pairs<S: Kernel, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: XRows,
    out: *mut f32,
    blocks: (usize, usize),
    rows: (usize, usize),
) {
    // SAFETY: forwarded contract; the element type is the panel's format.
    unsafe {
        match ctx.p.w.format() {
            WeightFormat::F32 => project_pairs_e::<S, f32, G>(s, ctx, x, out, blocks, rows),
            WeightFormat::Bf16 => project_pairs_e::<S, Bf16, G>(s, ctx, x, out, blocks, rows),
            WeightFormat::F16 => project_pairs_e::<S, F16, G>(s, ctx, x, out, blocks, rows),
            WeightFormat::Int8 => project_pairs_e::<S, I8, G>(s, ctx, x, out, blocks, rows),
            f => unreachable!("gate-pair projection tiles for {f:?} panels"),
        }
    }
}

/// [`project_pairs`] for panel elements `E`.
///
/// # Safety
/// As for [`project_pairs`]; `E` is the panel's storage type.
#[inline(always)]
unsafe fn project_pairs_e<S: Kernel, E: Elem, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: XRows,
    out: *mut f32,
    blocks: (usize, usize),
    (r0, r1): (usize, usize),
) {
    let w = &ctx.p.w;
    let nr = 2 * S::LANES;
    let kc = (PAIR_CHUNK_BYTES / (nr * std::mem::size_of::<E>())).max(1);
    // Int8 sums are scaled per segment of `chunk_rows` rows: chunks of
    // whole segments, so none is split (the step's tiles' numbers).
    let kc = match (w.format(), S::CHUNK_BYTES) {
        (WeightFormat::Int8, c) if c > 0 => {
            let seg = chunk_rows::<S>(w);
            (kc / seg).max(1) * seg
        }
        _ => kc,
    };
    let mr = S::PROJ_ROWS;
    for blk in blocks.0..blocks.1 {
        for g in 0..G {
            for ch in chunks(w.k, kc, false) {
                for r in (r0..r1).step_by(mr) {
                    let at = ProjectAt {
                        w,
                        hp: ctx.hp,
                        x,
                        r0: r,
                        out,
                        blk,
                        v0: 0,
                        k0: ch.k0,
                        k1: ch.k1,
                    };
                    // SAFETY: rows r..r+mr <= r1 exist in x and out (the
                    // contract); blk < blocks; g < G; k1 <= K. One tile
                    // size per ISA constant.
                    unsafe {
                        match S::PROJ_ROWS {
                            12 => pair_tile::<S, E, G, 12>(s, at, g),
                            6 => pair_tile::<S, E, G, 6>(s, at, g),
                            n => unreachable!("no gate-pair tile of {n} rows"),
                        }
                    }
                }
            }
        }
    }
}

/// One gate-pair tile: rows `r0..r0+MR` times both vectors of gate `g` of
/// block `blk` (`at.v0` is unused), panel rows `k0..k1`, starting from 0
/// when `k0 == 0`, else from the partial sums in `out`.
///
/// # Safety
/// As for [`project_pairs`]; `r0 + MR <= x.n`, `blk < blocks`, `g < G`,
/// `k1 <= In`.
#[inline(always)]
unsafe fn pair_tile<S: Kernel, E: Elem, const G: usize, const MR: usize>(
    s: S,
    at: ProjectAt<'_>,
    g: usize,
) {
    let ProjectAt {
        w,
        hp,
        x,
        r0,
        out,
        blk,
        k0,
        k1,
        ..
    } = at;
    let l = S::LANES;
    let nr = 2 * l;
    // SAFETY: r0 + MR <= n_rows (the contract).
    let rows: [*const f32; MR] =
        std::array::from_fn(|m| x.x.wrapping_add(unsafe { x.src(r0 + m) } * x.stride));
    let stride = xproj_stride(G, hp);
    let at = |m: usize, v: usize| (r0 + m) * stride + g * hp + blk * nr + v * l;
    let mut acc = [[s.zero(); 2]; MR];
    if k0 > 0 {
        for m in 0..MR {
            for v in 0..2 {
                // SAFETY: out rows are `xproj_stride` apart and hold G*Hp
                // floats; g*Hp + blk*NR + (v+1)*L <= G*Hp.
                acc[m][v] = unsafe { s.load(out.add(at(m, v))) };
            }
        }
    }
    // SAFETY: block `blk` of W has K = In >= k1 rows (the contract) and
    // gate g < G; every x row holds In floats.
    let acc = unsafe { pair_dot_panel::<S, E, G, MR>(s, w, blk, g, k0, k1, rows, acc) };
    for m in 0..MR {
        for v in 0..2 {
            // SAFETY: as above.
            unsafe { s.store(out.add(at(m, v)), acc[m][v]) };
        }
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
        dot_panel::<S, G, MB, NV>(s, w, blk, v0, k0, k1, rows, q, acc, false)
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
