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
//! Tiles: up to [`Kernel::FULL_ROWS`] active rows run as one whole-block
//! tile (the batch-1 latency path). A larger batch runs in half-block
//! tiles of [`Kernel::HALF_ROWS`] rows (`G x 1 x MB` sums, each weight
//! vector feeding more rows), once per half, and the rows left over in
//! whole-block tiles. Per ISA, [`Kernel::CHUNK_BYTES`] may split each
//! panel into chunks kept in L1 across the tiles. Tile sizes are
//! constants of the ISA, so only the sizes it uses are compiled.
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
use crate::config::{Activation, Activations, Cell, Config, GruReset};
use crate::simd::Simd;
use crate::weights::WeightFormat;

/// `[gate][vector]` accumulators for one row: `NV` = 2 vectors per gate
/// (a whole block of `NR = 2 * LANES` units) or 1 (half a block).
pub(crate) type Acc<V, const G: usize, const NV: usize> = [[V; NV]; G];

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
unsafe fn resume<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    b: &Bufs,
    rows: &[usize; MB],
    slot0: usize,
    v0: usize,
) -> [Acc<S::V, G, NV>; MB] {
    let l = S::LANES;
    let mut acc = [[[s.zero(); NV]; G]; MB];
    for m in 0..MB {
        for g in 0..G {
            for v in 0..NV {
                // SAFETY: slot0 + g < ACC_SLOTS, rows[m] < batch, v0 + v < 2.
                acc[m][g][v] = unsafe {
                    s.load(
                        b.acc
                            .add((rows[m] * ACC_SLOTS + slot0 + g) * 2 * l + (v0 + v) * l),
                    )
                };
            }
        }
    }
    acc
}

/// Stores the partial sums of `G` gates into slots `slot0..slot0+G`.
///
/// # Safety
/// As for [`resume`].
#[inline(always)]
unsafe fn park<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    b: &Bufs,
    rows: &[usize; MB],
    slot0: usize,
    v0: usize,
    acc: &[Acc<S::V, G, NV>; MB],
) {
    let l = S::LANES;
    for m in 0..MB {
        for g in 0..G {
            for v in 0..NV {
                // SAFETY: slot0 + g < ACC_SLOTS, rows[m] < batch, v0 + v < 2.
                unsafe {
                    let p = b
                        .acc
                        .add((rows[m] * ACC_SLOTS + slot0 + g) * 2 * l + (v0 + v) * l);
                    s.store(p, acc[m][g][v]);
                }
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
    /// Most rows of a whole-block tile (`NV = 2`, 1..=3). Up to this many
    /// active rows run as one whole-block tile per block: the batch-1
    /// latency path, with `2 * G` independent sums per row.
    const FULL_ROWS: usize;
    /// Rows of a half-block tile (`NV = 1`; 1, 2, 3 or 6), used when more
    /// rows are active: each weight vector feeds this many rows, so a batch
    /// reads the panels from L2 half as often per FMA. Rows left over run
    /// in whole-block tiles.
    const HALF_ROWS: usize;
    /// With more than one tile, walk each panel in chunks of this many
    /// bytes, kept in L1 across the tiles, with the partial sums parked in
    /// [`Bufs::acc`]; 0 = one pass over the whole panel per tile.
    const CHUNK_BYTES: usize;

    /// [`dot`] for this ISA.
    ///
    /// # Safety
    /// As for [`dot`].
    unsafe fn dot_k<E: Elem, const G: usize, const MB: usize, const NV: usize>(
        self,
        blk: *const E,
        v0: usize,
        k0: usize,
        k1: usize,
        rows: [*const f32; MB],
        acc: [Acc<Self::V, G, NV>; MB],
    ) -> [Acc<Self::V, G, NV>; MB];
}

/// A panel element: f32, or a 16-bit format widened to f32 exactly as it
/// is loaded (compute and state stay f32).
pub(crate) trait Elem: Copy {
    /// Loads vector `v` (0 or 1) of one gate's `NR = 2 * LANES` elements
    /// starting at `gate`, as f32.
    ///
    /// # Safety
    /// `gate` is valid for reading `2 * LANES` elements.
    unsafe fn load_v<S: Simd>(s: S, gate: *const Self, v: usize) -> S::V;
}

impl Elem for f32 {
    #[inline(always)]
    unsafe fn load_v<S: Simd>(s: S, gate: *const f32, v: usize) -> S::V {
        // SAFETY: forwarded contract; v < 2.
        unsafe { s.load(gate.add(v * S::LANES)) }
    }
}

/// A bf16 panel element (the high half of an f32). Bf16 panels store each
/// gate's `NR` units as `LANES` pairs (unit `i`, unit `LANES + i`), so both
/// vectors come from one full-width load, one by a shift and one by a mask
/// (see [`super::pack::Panels::pack`]).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Bf16(#[allow(dead_code)] u16);

impl Elem for Bf16 {
    #[inline(always)]
    unsafe fn load_v<S: Simd>(s: S, gate: *const Bf16, v: usize) -> S::V {
        // SAFETY: forwarded contract; Bf16 is a transparent u16.
        unsafe { s.load_bf16_pair(gate.cast(), v == 1) }
    }
}

/// An IEEE binary16 panel element.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F16(#[allow(dead_code)] u16);

impl Elem for F16 {
    #[inline(always)]
    unsafe fn load_v<S: Simd>(s: S, gate: *const F16, v: usize) -> S::V {
        // SAFETY: forwarded contract; F16 is a transparent u16; v < 2.
        unsafe { s.load_f16(gate.add(v * S::LANES).cast()) }
    }
}

/// [`Kernel::dot_k`] over block `blk` of `p` (from vector `v0` of each
/// gate), in the panel's storage format: the format is matched once per
/// call, outside the product loop.
///
/// # Safety
/// As for [`dot`]: `blk < p.blocks`, `k1 <= p.k`, `v0 + NV <= 2`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_panel<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    p: &Panels,
    blk: usize,
    v0: usize,
    k0: usize,
    k1: usize,
    rows: [*const f32; MB],
    acc: [Acc<S::V, G, NV>; MB],
) -> [Acc<S::V, G, NV>; MB] {
    let at = blk * p.block_len();
    // SAFETY: `at` is inside the panel's storage (forwarded contract); the
    // pointer's element type is the panel's format.
    unsafe {
        match p.format() {
            WeightFormat::F32 => {
                s.dot_k::<f32, G, MB, NV>(p.ptr::<f32>().add(at), v0, k0, k1, rows, acc)
            }
            WeightFormat::Bf16 => {
                s.dot_k::<Bf16, G, MB, NV>(p.ptr::<Bf16>().add(at), v0, k0, k1, rows, acc)
            }
            WeightFormat::F16 => {
                s.dot_k::<F16, G, MB, NV>(p.ptr::<F16>().add(at), v0, k0, k1, rows, acc)
            }
        }
    }
}

/// `acc[m][g][v] += sum_{k0 <= kk < k1} panel[kk][g][v0 + v] * rows[m][kk]`
/// over one block: both vectors of each gate (`NV = 2`, `v0 = 0`) or one
/// (`NV = 1`, `v0` 0 or 1).
///
/// # Safety
/// `blk` points to a block of a [`Panels`] with `G` gates, `NR = 2 * LANES`
/// and at least `k1` rows; `v0 + NV <= 2`; each `rows[m]` is valid for
/// reading `k1` floats.
#[inline(always)]
pub(crate) unsafe fn dot<S: Simd, E: Elem, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    blk: *const E,
    v0: usize,
    k0: usize,
    k1: usize,
    rows: [*const f32; MB],
    acc: [Acc<S::V, G, NV>; MB],
) -> [Acc<S::V, G, NV>; MB] {
    // The vector index as a constant inside the loop, so the element's
    // load (a bf16 pair's shift or mask) is fixed at compile time.
    // SAFETY: forwarded contract.
    unsafe {
        if NV == 1 && v0 == 1 {
            dot_v0::<S, E, G, MB, NV, 1>(s, blk, k0, k1, rows, acc)
        } else {
            dot_v0::<S, E, G, MB, NV, 0>(s, blk, k0, k1, rows, acc)
        }
    }
}

/// [`dot`] for a constant `V0`.
///
/// # Safety
/// As for [`dot`].
#[inline(always)]
unsafe fn dot_v0<
    S: Simd,
    E: Elem,
    const G: usize,
    const MB: usize,
    const NV: usize,
    const V0: usize,
>(
    s: S,
    blk: *const E,
    k0: usize,
    k1: usize,
    rows: [*const f32; MB],
    mut acc: [Acc<S::V, G, NV>; MB],
) -> [Acc<S::V, G, NV>; MB] {
    let l = S::LANES;
    let nr = 2 * l;
    let mut wp = blk.wrapping_add(k0 * G * nr);
    for kk in k0..k1 {
        let mut x = [s.zero(); MB];
        for m in 0..MB {
            // SAFETY: rows[m] has at least k1 > kk floats.
            x[m] = s.splat(unsafe { *rows[m].add(kk) });
        }
        // One weight vector at a time, used by every row right away: live
        // registers are the MB*G*NV sums, MB broadcasts and one weight.
        for g in 0..G {
            for v in 0..NV {
                // SAFETY: kk < k1 <= K, so the G*NR weights at `wp` are in the block.
                let w = unsafe { E::load_v(s, wp.add(g * nr), V0 + v) };
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

/// A gate activation: with the default activations (`DEF`) the fast
/// sigmoid (`SIG`) or tanh, else the configured function `a`.
#[inline(always)]
fn gate<S: Kernel, const DEF: bool, const SIG: bool>(s: S, a: Activation, v: S::V) -> S::V {
    match (DEF, SIG) {
        (true, true) => sigmoid_v(s, v),
        (true, false) => tanh_v(s, v),
        _ => activation_v(s, a, v),
    }
}

/// The `W x` part of `G` gates for a tile, from the precomputed projection
/// or from the block's `W` panel.
///
/// # Safety
/// As for [`step`]: every row pointer and offset valid for the layer's sizes.
#[inline(always)]
unsafe fn x_part<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    v0: usize,
    x: XSrc,
    rows: &[usize; MB],
) -> [Acc<S::V, G, NV>; MB] {
    let l = S::LANES;
    let j = blk * 2 * l + v0 * l;
    let zero = [[[s.zero(); NV]; G]; MB];
    match x {
        XSrc::Pre { base, off } => {
            let mut acc = zero;
            for m in 0..MB {
                // SAFETY: off[b] is the row's offset in a [rows, G*Hp] buffer.
                let row = unsafe { base.add(*off.add(rows[m])) };
                for (g, ag) in acc[m].iter_mut().enumerate() {
                    for (v, a) in ag.iter_mut().enumerate() {
                        // SAFETY: g*Hp + j + (v+1)*L <= G*Hp.
                        *a = unsafe { s.load(row.add(g * ctx.hp + j + v * l)) };
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
            unsafe { dot_panel::<S, G, MB, NV>(s, w, blk, v0, 0, ctx.inp, ptrs, zero) }
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
unsafe fn lstm_tile<S: Kernel, const MB: usize, const NV: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    // SAFETY: forwarded contract.
    let init = unsafe {
        if ch.first {
            x_part::<S, 4, MB, NV>(s, ctx, blk, v0, b.x, rows)
        } else {
            resume::<S, 4, MB, NV>(s, b, rows, 0, v0)
        }
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R has K = Hout >= k1 rows; h rows hold Hout floats.
    let acc = unsafe { dot_panel::<S, 4, MB, NV>(s, r, blk, v0, ch.k0, ch.k1, hrows, init) };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 4, MB, NV>(s, b, rows, 0, v0, &acc) };
        return;
    }
    let (out, ostride) = match p.proj {
        Some(_) => (b.aux, hp),
        None => (b.h_next, b.hstride),
    };
    for m in 0..MB {
        for v in 0..NV {
            let j = blk * 2 * l + (v0 + v) * l;
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
            let i = gate::<S, DEF, true>(s, ctx.acts.f, clip(s, pi, cfg.clip));
            let f = if cfg.input_forget {
                s.sub(s.splat(1.0), i)
            } else {
                gate::<S, DEF, true>(s, ctx.acts.f, clip(s, pf, cfg.clip))
            };
            let g = gate::<S, DEF, false>(s, ctx.acts.g, clip(s, pre(2), cfg.clip));
            let c_new = s.mul_add(f, c_old, s.mul(i, g));
            if let Some(pp) = &p.peep {
                po = s.mul_add(bias(s, pp, 2 * hp + j), c_new, po);
            }
            let o = gate::<S, DEF, true>(s, ctx.acts.f, clip(s, po, cfg.clip));
            let h = s.mul(o, gate::<S, DEF, false>(s, ctx.acts.h, c_new));
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
unsafe fn gru_after_tile<S: Kernel, const MB: usize, const NV: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    v0: usize,
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
        let xp = unsafe { x_part::<S, 3, MB, NV>(s, ctx, blk, v0, b.x, rows) };
        let mut init = xp;
        for a in init.iter_mut() {
            a[2] = [s.zero(); NV];
        }
        let xn: [Acc<S::V, 1, NV>; MB] = std::array::from_fn(|m| [xp[m][2]]);
        (init, xn)
    } else {
        // SAFETY: forwarded contract.
        unsafe {
            (
                resume::<S, 3, MB, NV>(s, b, rows, 0, v0),
                resume::<S, 1, MB, NV>(s, b, rows, 3, v0),
            )
        }
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R has K = H >= k1 rows; h rows hold H floats.
    let acc = unsafe { dot_panel::<S, 3, MB, NV>(s, r, blk, v0, ch.k0, ch.k1, hrows, init) };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe {
            park::<S, 3, MB, NV>(s, b, rows, 0, v0, &acc);
            if ch.first {
                park::<S, 1, MB, NV>(s, b, rows, 3, v0, &xn_part);
            }
        }
        return;
    }
    for m in 0..MB {
        for v in 0..NV {
            let j = blk * 2 * l + (v0 + v) * l;
            let z = gate::<S, DEF, true>(
                s,
                ctx.acts.f,
                clip(s, s.add(bias(s, &p.bias, j), acc[m][0][v]), cfg.clip),
            );
            let rg = gate::<S, DEF, true>(
                s,
                ctx.acts.f,
                clip(s, s.add(bias(s, &p.bias, hp + j), acc[m][1][v]), cfg.clip),
            );
            let xn = s.add(bias(s, &p.bias, 2 * hp + j), xn_part[m][0][v]);
            let hn = s.add(acc[m][2][v], bias(s, &p.rbn, j));
            let n = gate::<S, DEF, false>(s, ctx.acts.g, clip(s, s.mul_add(rg, hn, xn), cfg.clip));
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
unsafe fn gru_before_zr_tile<S: Kernel, const MB: usize, const NV: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    let init: [Acc<S::V, 2, NV>; MB] = if ch.first {
        // SAFETY: forwarded contract.
        let xp = unsafe { x_part::<S, 3, MB, NV>(s, ctx, blk, v0, b.x, rows) };
        for m in 0..MB {
            let at = rows[m] * hp + blk * 2 * l + v0 * l;
            for v in 0..NV {
                // SAFETY: xn rows hold Hp floats; blk*NR + (v0+v+1)*L <= Hp.
                unsafe { s.store(b.xn.add(at + v * l), xp[m][2][v]) };
            }
        }
        std::array::from_fn(|m| [xp[m][0], xp[m][1]])
    } else {
        // SAFETY: forwarded contract.
        unsafe { resume::<S, 2, MB, NV>(s, b, rows, 0, v0) }
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    let r = &p.r;
    // SAFETY: block `blk` of R_zr has K = H >= k1 rows; h rows hold H floats.
    let acc = unsafe { dot_panel::<S, 2, MB, NV>(s, r, blk, v0, ch.k0, ch.k1, hrows, init) };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 2, MB, NV>(s, b, rows, 0, v0, &acc) };
        return;
    }
    for m in 0..MB {
        for v in 0..NV {
            let j = blk * 2 * l + (v0 + v) * l;
            let at = rows[m] * hp + j;
            let z = gate::<S, DEF, true>(
                s,
                ctx.acts.f,
                clip(s, s.add(bias(s, &p.bias, j), acc[m][0][v]), cfg.clip),
            );
            let rg = gate::<S, DEF, true>(
                s,
                ctx.acts.f,
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
unsafe fn gru_before_n_tile<S: Kernel, const MB: usize, const NV: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let (hp, cfg, p) = (ctx.hp, ctx.cfg, ctx.p);
    let j0 = blk * 2 * l + v0 * l;
    let mut init = [[[s.zero(); NV]; 1]; MB];
    if ch.first {
        for m in 0..MB {
            for v in 0..NV {
                // SAFETY: xn rows hold Hp floats.
                init[m][0][v] = unsafe { s.load(b.xn.add(rows[m] * hp + j0 + v * l)) };
            }
        }
    } else {
        // SAFETY: forwarded contract.
        init = unsafe { resume::<S, 1, MB, NV>(s, b, rows, 0, v0) };
    }
    let rh = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    let rn = p.rn.as_ref().expect("reset-before GRU has R_n panels");
    // SAFETY: block `blk` of R_n has K = H >= k1 rows; r ⊙ h rows hold Hp floats.
    let acc = unsafe { dot_panel::<S, 1, MB, NV>(s, rn, blk, v0, ch.k0, ch.k1, rh, init) };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 1, MB, NV>(s, b, rows, 0, v0, &acc) };
        return;
    }
    for m in 0..MB {
        for v in 0..NV {
            let j = j0 + v * l;
            let n = gate::<S, DEF, false>(
                s,
                ctx.acts.g,
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
#[allow(clippy::too_many_arguments)]
unsafe fn proj_tile<S: Kernel, const MB: usize, const NV: usize>(
    s: S,
    pr: &Panels,
    blk: usize,
    v0: usize,
    b: &Bufs,
    hp: usize,
    rows: &[usize; MB],
    ch: Chunk,
) {
    let l = S::LANES;
    let src = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    let init = if ch.first {
        [[[s.zero(); NV]; 1]; MB]
    } else {
        // SAFETY: forwarded contract.
        unsafe { resume::<S, 1, MB, NV>(s, b, rows, 0, v0) }
    };
    // SAFETY: block `blk` of the projection has K = H >= k1 rows; h_full rows hold Hp floats.
    let acc = unsafe { dot_panel::<S, 1, MB, NV>(s, pr, blk, v0, ch.k0, ch.k1, src, init) };
    if !ch.last {
        // SAFETY: forwarded contract.
        unsafe { park::<S, 1, MB, NV>(s, b, rows, 0, v0, &acc) };
        return;
    }
    for m in 0..MB {
        // SAFETY: h_next rows hold hstride >= proj blocks * NR floats.
        unsafe {
            let o = b.h_next.add(rows[m] * b.hstride + blk * 2 * l + v0 * l);
            for v in 0..NV {
                s.store(o.add(v * l), acc[m][0][v]);
            }
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

/// How `n` active rows split into tiles: `halves` half-block tiles of
/// `HALF_ROWS` rows (each run for both halves of a block), then the rest in
/// whole-block tiles of up to `FULL_ROWS` rows; and the panel rows per chunk.
#[derive(Clone, Copy)]
struct TilePlan {
    halves: usize,
    kc: usize,
}

impl TilePlan {
    #[inline(always)]
    fn new<S: Kernel>(n: usize, p: &Panels) -> TilePlan {
        let full = S::FULL_ROWS.clamp(1, 3);
        let halves = if n <= full { 0 } else { n / S::HALF_ROWS };
        let rest = n - halves * S::HALF_ROWS;
        let tiles = 2 * halves + rest.div_ceil(full);
        let kc = if tiles <= 1 || S::CHUNK_BYTES == 0 {
            p.k.max(1)
        } else {
            (S::CHUNK_BYTES / (4 * p.g * p.nr)).max(1)
        };
        TilePlan { halves, kc }
    }
}

/// The chunks of `k` panel rows, `kc` rows each (the last may be shorter;
/// one empty chunk when `k = 0`). An iterator, not a closure: code in a
/// closure does not inherit the caller's `#[target_feature]`s, and the
/// tiles' intrinsics would stop inlining.
#[derive(Clone, Copy)]
struct Chunks {
    k: usize,
    kc: usize,
    next: Option<usize>,
}

fn chunks(k: usize, kc: usize) -> Chunks {
    Chunks {
        k,
        kc: kc.max(1),
        next: Some(0),
    }
}

impl Iterator for Chunks {
    type Item = Chunk;

    #[inline(always)]
    fn next(&mut self) -> Option<Chunk> {
        let k0 = self.next?;
        let k1 = (k0 + self.kc).min(self.k);
        let last = k1 >= self.k;
        self.next = if last { None } else { Some(k1) };
        Some(Chunk {
            k0,
            k1,
            first: k0 == 0,
            last,
        })
    }
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
    let plan = TilePlan::new::<S>(rows.len(), panel);
    let (half_rows, rest) = rows.split_at(plan.halves * S::HALF_ROWS);
    let blocks = panel.blocks;
    for i in 0..blocks {
        let blk = if backwards { blocks - 1 - i } else { i };
        for ch in chunks(panel.k, plan.kc) {
            for v0 in 0..2 {
                for r in half_rows.chunks_exact(S::HALF_ROWS) {
                    // SAFETY: forwarded contract; the tile's rows are active
                    // batch entries.
                    unsafe { half_tile::<S, DEF>(s, ctx, pass, blk, v0, b, r, ch) };
                }
            }
            for r in rest.chunks(S::FULL_ROWS.clamp(1, 3)) {
                // SAFETY: as above.
                unsafe { whole_tile::<S, DEF>(s, ctx, pass, blk, b, r, ch) };
            }
        }
    }
}

/// One whole-block tile of `rows` (1..=`FULL_ROWS` rows).
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn whole_tile<S: Kernel, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    b: &Bufs,
    rows: &[usize],
    ch: Chunk,
) {
    // SAFETY: forwarded contract. `FULL_ROWS` is a constant of the ISA, so
    // the tile sizes it rules out are never instantiated.
    unsafe {
        if S::FULL_ROWS <= 1 {
            tile_at::<S, 1, 2, DEF>(s, ctx, pass, blk, 0, b, rows, ch)
        } else {
            match rows.len() {
                1 => tile_at::<S, 1, 2, DEF>(s, ctx, pass, blk, 0, b, rows, ch),
                2 => tile_at::<S, 2, 2, DEF>(s, ctx, pass, blk, 0, b, rows, ch),
                _ => tile_at::<S, 3, 2, DEF>(s, ctx, pass, blk, 0, b, rows, ch),
            }
        }
    }
}

/// One half-block tile (vector `v0` of each gate) of `HALF_ROWS` rows.
///
/// # Safety
/// As for [`step`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn half_tile<S: Kernel, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize],
    ch: Chunk,
) {
    // SAFETY: forwarded contract; `HALF_ROWS` is a constant of the ISA, so
    // only its own tile size is instantiated.
    unsafe {
        match S::HALF_ROWS {
            6 => tile_at::<S, 6, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            3 => tile_at::<S, 3, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            2 => tile_at::<S, 2, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            _ => tile_at::<S, 1, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
        }
    }
}

/// One tile of the first `MB` entries of `rows`.
///
/// # Safety
/// As for [`step`]; `rows.len() >= MB`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_at<S: Kernel, const MB: usize, const NV: usize, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize],
    ch: Chunk,
) {
    let r: [usize; MB] = std::array::from_fn(|i| rows[i]);
    let rows = &r;
    // SAFETY: forwarded contract of `step`.
    unsafe {
        match pass {
            Pass::Lstm => lstm_tile::<S, MB, NV, DEF>(s, ctx, blk, v0, b, rows, ch),
            Pass::GruAfter => gru_after_tile::<S, MB, NV, DEF>(s, ctx, blk, v0, b, rows, ch),
            Pass::GruBeforeZr => gru_before_zr_tile::<S, MB, NV, DEF>(s, ctx, blk, v0, b, rows, ch),
            Pass::GruBeforeN => gru_before_n_tile::<S, MB, NV, DEF>(s, ctx, blk, v0, b, rows, ch),
            Pass::Proj => {
                let pr = ctx.p.proj.as_ref().expect("projection panels");
                proj_tile::<S, MB, NV>(s, pr, blk, v0, b, ctx.hp, rows, ch)
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
) {
    if ctx.acts.is_default() {
        // SAFETY: forwarded contract.
        unsafe { step_impl::<S, true>(s, ctx, b, rows, backwards) }
    } else {
        // SAFETY: forwarded contract.
        unsafe { step_impl::<S, false>(s, ctx, b, rows, backwards) }
    }
}

#[inline(always)]
unsafe fn step_impl<S: Kernel, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match (ctx.cfg.cell, ctx.cfg.gru_reset) {
            (Cell::Lstm, _) => {
                run_pass::<S, DEF>(s, ctx, Pass::Lstm, b, rows, backwards);
                if ctx.p.proj.is_some() {
                    run_pass::<S, DEF>(s, ctx, Pass::Proj, b, rows, backwards);
                }
            }
            (Cell::Gru, GruReset::AfterMatmul) => {
                run_pass::<S, DEF>(s, ctx, Pass::GruAfter, b, rows, backwards)
            }
            (Cell::Gru, GruReset::BeforeMatmul) => {
                run_pass::<S, DEF>(s, ctx, Pass::GruBeforeZr, b, rows, backwards);
                run_pass::<S, DEF>(s, ctx, Pass::GruBeforeN, b, rows, backwards);
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
) {
    // SAFETY: forwarded contract.
    unsafe {
        match ctx.p.w.g {
            4 => project_g::<S, 4>(s, ctx, x, x_stride, n_rows, out),
            _ => project_g::<S, 3>(s, ctx, x, x_stride, n_rows, out),
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

#[inline(always)]
unsafe fn project_g<S: Kernel, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    x: *const f32,
    x_stride: usize,
    n_rows: usize,
    out: *mut f32,
) {
    let w = &ctx.p.w;
    let group = PROJECT_GROUP_TILES * S::HALF_ROWS;
    let mut g0 = 0;
    while g0 < n_rows {
        let g1 = (g0 + group).min(n_rows);
        let plan = TilePlan::new::<S>(g1 - g0, w);
        let n_half = g0 + plan.halves * S::HALF_ROWS;
        let full = S::FULL_ROWS.clamp(1, 3);
        for blk in 0..w.blocks {
            for ch in chunks(w.k, plan.kc) {
                let (k0, k1) = (ch.k0, ch.k1);
                let at = |r: usize, v0: usize| ProjectAt {
                    w,
                    hp: ctx.hp,
                    x,
                    x_stride,
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
    /// Input rows `[n_rows, In]`, `x_stride` apart.
    x: *const f32,
    x_stride: usize,
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
        x_stride,
        r0,
        out,
        blk,
        v0,
        k0,
        k1,
    } = at;
    let l = S::LANES;
    let rows = std::array::from_fn(|m| x.wrapping_add((r0 + m) * x_stride));
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
    // SAFETY: block `blk` has K = In >= k1 rows; each x row holds In floats.
    let acc = unsafe { dot_panel::<S, G, MB, NV>(s, w, blk, v0, k0, k1, rows, acc) };
    for m in 0..MB {
        for g in 0..G {
            for v in 0..NV {
                // SAFETY: as above.
                unsafe { s.store(out.add(at(m, g, v)), acc[m][g][v]) };
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
