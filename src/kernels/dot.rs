//! The product microkernel: one pass over a block's panel leaves every
//! gate's pre-activation for a tile of rows in registers. Also the panel
//! element formats (f32, bf16, f16: widened to f32 as loaded) and the
//! per-ISA [`Kernel`] trait (tile sizes, chunking, the out-of-line call).

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::pack::Panels;
use crate::simd::Simd;
use crate::weights::WeightFormat;

/// `[gate][vector]` accumulators for one row: `NV` = 2 vectors per gate
/// (a whole block of `NR = 2 * LANES` units) or 1 (half a block).
pub(crate) type Acc<V, const G: usize, const NV: usize> = [[V; NV]; G];

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
    /// `Bufs::acc` (see `tile.rs`); 0 = one pass over the whole panel per tile.
    const CHUNK_BYTES: usize;
    /// Rows of an input-projection tile over one gate's two vectors (the
    /// `NR` units of a block) with f32 or 16-bit panels: `2 * PROJ_ROWS`
    /// sums, each weight vector used by every row, half the panel bytes per
    /// FMA of a half-block tile (see `project.rs`). 0: the projection uses
    /// the step's tiles only.
    const PROJ_ROWS: usize;

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

    /// Whether [`Kernel::dot_q`] takes the quantized activations biased by
    /// 128 (stored as `q + 128`: the unsigned bytes AVX-512 VNNI's
    /// `vpdpbusd` multiplies; the other products take them as they are).
    /// Fixed for the process (the VNNI check runs once).
    fn q_biased(self) -> bool;

    /// The gate-pair rows of one block of a step's pass, products and
    /// epilogue ([`super::step::pair_block`]), out of line.
    ///
    /// # Safety
    /// As for [`super::step::pair_block`].
    unsafe fn pair_block<const DEF: bool>(
        self,
        ctx: &super::tile::Ctx<'_>,
        pass: super::step::Pass,
        blk: usize,
        b: &super::tile::Bufs,
        rows: &[usize],
    );

    /// The int8-dynamic product of a whole block: [`super::qdot::dot_q`]
    /// with this ISA's [`super::qdot::QDot`], out of line; i32 sums (as
    /// bits).
    ///
    /// # Safety
    /// As for [`super::qdot::dot_q`].
    unsafe fn dot_q<const G: usize, const MB: usize, const NV: usize>(
        self,
        blk: *const i8,
        corr: *const i32,
        v0: usize,
        k4: usize,
        q: [*const i8; MB],
    ) -> [Acc<Self::V, G, NV>; MB];

    /// A configured (non-default) activation of one vector
    /// ([`crate::activations::activation_v`]), out of line. Inlined at
    /// every gate of every tile size, its twelve arms made three quarters
    /// of the crate's optimized build time (135 s of LLVM vs 32 s without);
    /// the default σ/tanh stay inline, and a call per vector costs the rare
    /// models with other activations a few percent.
    fn act(self, a: crate::config::Activation, v: Self::V) -> Self::V;
}

/// A panel element: f32, or a 16-bit format widened to f32 exactly as it
/// is loaded (compute and state stay f32).
pub(crate) trait Elem: Copy {
    /// Int8 (weights only): sums are scaled per segment (see
    /// [`pair_dot_panel`]). A constant, so the other types' code has no
    /// int8 branch.
    const INT8: bool = false;
    /// Loads vector `v` (0 or 1) of one gate's `NR = 2 * LANES` elements
    /// starting at `gate`, as f32.
    ///
    /// # Safety
    /// `gate` is valid for reading `2 * LANES` elements.
    unsafe fn load_v<S: Simd>(s: S, gate: *const Self, v: usize) -> S::V;
}

impl Elem for f32 {
    /// # Safety
    /// The contract of [`Elem::load_v`].
    #[inline(always)]
    unsafe fn load_v<S: Simd>(s: S, gate: *const f32, v: usize) -> S::V {
        // SAFETY: forwarded contract; v < 2.
        unsafe { s.load(gate.add(v * S::LANES)) }
    }
}

/// A bf16 panel element (the high half of an f32). Bf16 panels store each
/// gate's `NR` units as `LANES` pairs (unit `i`, unit `LANES + i`), so both
/// vectors come from one full-width load, one by a shift and one by a mask
/// (see [`Panels::pack`]).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Bf16(#[allow(dead_code)] u16);

impl Elem for Bf16 {
    /// # Safety
    /// The contract of [`Elem::load_v`].
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
    /// # Safety
    /// The contract of [`Elem::load_v`].
    #[inline(always)]
    unsafe fn load_v<S: Simd>(s: S, gate: *const F16, v: usize) -> S::V {
        // SAFETY: forwarded contract; F16 is a transparent u16; v < 2.
        unsafe { s.load_f16(gate.add(v * S::LANES).cast()) }
    }
}

/// Panel rows per chunk of a multi-tile pass over `p` (see `TilePlan`):
/// [`Kernel::CHUNK_BYTES`] of the panel's blocks, counted in f32 for the
/// f32 and 16-bit formats (as tuned) and in bytes for int8 (the same bytes
/// cover four times the rows; int8 sums are scaled once per chunk).
#[inline(always)]
pub(crate) fn chunk_rows<S: Kernel>(p: &Panels) -> usize {
    let elem = if p.format().is_int8() { 1 } else { 4 };
    (S::CHUNK_BYTES / (elem * p.g * p.nr)).max(1)
}

/// A signed 8-bit panel element (int8 panels; the row's scale is applied
/// by [`dot_panel`] after the product).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct I8(#[allow(dead_code)] i8);

impl Elem for I8 {
    const INT8: bool = true;
    /// # Safety
    /// The contract of [`Elem::load_v`].
    #[inline(always)]
    unsafe fn load_v<S: Simd>(s: S, gate: *const I8, v: usize) -> S::V {
        // SAFETY: forwarded contract; I8 is a transparent i8; v < 2.
        unsafe { s.load_i8(gate.add(v * S::LANES).cast()) }
    }
}

/// The rows of a product quantized for int8-dynamic panels (see
/// `kernels/qdot.rs`): row `m`'s int8 values (`K` rounded up to 4) at
/// `q[m]` and its scale `s[m]`. Null pointers where the product's panel is
/// of another format (its f32 rows are used).
#[derive(Clone, Copy)]
pub(crate) struct QRows<const MB: usize> {
    pub(crate) q: [*const i8; MB],
    pub(crate) s: [f32; MB],
}

impl<const MB: usize> QRows<MB> {
    /// No quantized rows.
    pub(crate) fn none() -> QRows<MB> {
        QRows {
            q: [std::ptr::null(); MB],
            s: [0.0; MB],
        }
    }
}

/// [`Kernel::dot_k`] over block `blk` of `p` (from vector `v0` of each
/// gate), in the panel's storage format: the format is matched once per
/// call, outside the product loop. Int8-dynamic panels multiply the
/// quantized rows `q` over the whole block (`k0 = 0`, `k1 = K`: their
/// passes are never chunked, see `TilePlan`), convert the exact i32 sums
/// to f32 and scale them once: `sum * (s_w * s_x)`.
///
/// # Safety
/// As for [`dot`]: `blk < p.blocks`, `k1 <= p.k`, `v0 + NV <= 2`; for
/// int8-dynamic panels every `q.q[m]` is valid for reading `K` rounded up
/// to 4 bytes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn dot_panel<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    p: &Panels,
    blk: usize,
    v0: usize,
    k0: usize,
    k1: usize,
    rows: [*const f32; MB],
    q: QRows<MB>,
    acc: [Acc<S::V, G, NV>; MB],
    far: bool,
) -> [Acc<S::V, G, NV>; MB] {
    let at = blk * p.block_len();
    // SAFETY: `at` is inside the panel's storage (forwarded contract); the
    // pointer's element type is the panel's format.
    unsafe {
        match p.format() {
            WeightFormat::F32 if MB == 1 && far && S::LANES >= FAR_LANES => {
                // One row: inline, as `dot_k` runs it, with prefetches.
                dot::<S, f32, G, MB, NV, true>(s, p.ptr::<f32>().add(at), v0, k0, k1, rows, acc)
            }
            WeightFormat::F32 => {
                s.dot_k::<f32, G, MB, NV>(p.ptr::<f32>().add(at), v0, k0, k1, rows, acc)
            }
            WeightFormat::Bf16 => {
                s.dot_k::<Bf16, G, MB, NV>(p.ptr::<Bf16>().add(at), v0, k0, k1, rows, acc)
            }
            WeightFormat::F16 => {
                s.dot_k::<F16, G, MB, NV>(p.ptr::<F16>().add(at), v0, k0, k1, rows, acc)
            }
            WeightFormat::Int8 => {
                // Integer weights summed unscaled, then each output's sum
                // times its row's scale: once per segment of `chunk_rows`
                // panel rows (not per weight). The segments are the chunks
                // a multi-tile pass walks (`TilePlan`), so a row's sums are
                // bit-identical however many rows share the pass (a
                // stream alone or in a batch, one thread or a team).
                let seg = if S::CHUNK_BYTES == 0 {
                    usize::MAX
                } else {
                    chunk_rows::<S>(p)
                };
                let sc = p.scales_at(blk);
                let mut acc = acc;
                let mut a = k0;
                while a < k1 {
                    let b = (a / seg).saturating_add(1).saturating_mul(seg).min(k1);
                    let zero = [[[s.zero(); NV]; G]; MB];
                    // k0 <= a < b <= k1: inside the forwarded contract.
                    let sums =
                        s.dot_k::<I8, G, MB, NV>(p.ptr::<I8>().add(at), v0, a, b, rows, zero);
                    for g in 0..G {
                        for v in 0..NV {
                            // `sc` holds G * NR = G * 2 * LANES scales and
                            // v0 + v < 2: the LANES read are inside.
                            let scale = s.load(sc.add(g * 2 * S::LANES + (v0 + v) * S::LANES));
                            for m in 0..MB {
                                acc[m][g][v] = s.mul_add(sums[m][g][v], scale, acc[m][g][v]);
                            }
                        }
                    }
                    a = b;
                }
                acc
            }
            WeightFormat::Int8Dynamic => {
                assert!(
                    k0 == 0 && k1 == p.k && q.q.iter().all(|r| !r.is_null()),
                    "int8-dynamic products run over whole quantized rows"
                );
                let (sc, corr) = (p.scales_at(blk), p.corr_at(blk));
                // Block `blk` of K rounded up to 4 rows; q rows of as many
                // bytes (forwarded contract).
                let sums =
                    s.dot_q::<G, MB, NV>(p.ptr::<i8>().add(at), corr, v0, p.k.div_ceil(4), q.q);
                let mut acc = acc;
                for g in 0..G {
                    for v in 0..NV {
                        // `sc` holds G * NR scales and v0 + v < 2.
                        let sw = s.load(sc.add(g * 2 * S::LANES + (v0 + v) * S::LANES));
                        for m in 0..MB {
                            let scale = s.mul(sw, s.splat(q.s[m]));
                            acc[m][g][v] = s.mul_add(s.cvt_i32(sums[m][g][v]), scale, acc[m][g][v]);
                        }
                    }
                }
                acc
            }
        }
    }
}

/// `acc[m][g][v] += sum_{k0 <= kk < k1} panel[kk][g][v0 + v] * rows[m][kk]`
/// over one block: both vectors of each gate (`NV = 2`, `v0 = 0`) or one
/// (`NV = 1`, `v0` 0 or 1). Tiles of several rows prefetch [`PF_ROWS`]
/// panel rows ahead; one-row tiles only with `FAR` (a pass that streams its
/// panels from beyond L2, see `step::FAR_BYTES`).
///
/// # Safety
/// `blk` points to a block of a [`Panels`] with `G` gates, `NR = 2 * LANES`
/// and at least `k1` rows; `v0 + NV <= 2`; each `rows[m]` is valid for
/// reading `k1` floats.
#[inline(always)]
pub(crate) unsafe fn dot<
    S: Simd,
    E: Elem,
    const G: usize,
    const MB: usize,
    const NV: usize,
    const FAR: bool,
>(
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
            dot_v0::<S, E, G, MB, NV, 1, FAR>(s, blk, k0, k1, rows, acc)
        } else {
            dot_v0::<S, E, G, MB, NV, 0, FAR>(s, blk, k0, k1, rows, acc)
        }
    }
}

/// Fewest f32 lanes for a `FAR` one-row [`dot`]: one prefetch per 64-byte weight
/// vector, a cache line. With AVX2's 32-byte vectors (two prefetches per
/// line) the far one-row products were no faster on the Intel Xeon m207
/// (bench tool, `--kernel avx2`, 3 interleaved runs, median: lstm-h1024-b1
/// 691 -> 688 us, lstm-h512-step 260 -> 258, gru-h1024-b1 496 -> 500,
/// lstm-h512-b1 144 -> 146), so they keep the hardware's prefetch alone.
const FAR_LANES: usize = 16;

/// Panel rows ahead that the product loop of a multi-row tile prefetches
/// (one prefetch per weight vector it loads). A tile of several rows does
/// several FMAs per weight byte, so the hardware prefetcher alone lets a
/// panel that streams from L3 stall the FMAs; 16 rows (8 KiB of an f32
/// LSTM block) ahead hides it: 16 streams of lstm-h1024 stepped together
/// went from 3.0-3.7x to 4.3-5.6x the one-by-one rate (Intel Xeon, AVX-512,
/// interleaved runs; 8 and 32 rows ahead were no better, 64 worse), batch
/// shapes that fit L2 unchanged. One-row tiles (batch-1 latency) prefetch
/// only when their pass streams more than L2 keeps (f32 with 64-byte
/// vectors, see `step::FAR_BYTES` and [`dot`]).
#[cfg(target_arch = "x86_64")]
const PF_ROWS: usize = 16;

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
    const FAR: bool,
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
                #[cfg(target_arch = "x86_64")]
                if MB > 1 || FAR {
                    // SAFETY: a prefetch never faults; the address is
                    // computed with wrapping arithmetic.
                    unsafe {
                        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                        _mm_prefetch::<_MM_HINT_T0>(
                            wp.wrapping_add(PF_ROWS * G * nr + g * nr + (V0 + v) * l)
                                .cast::<i8>(),
                        );
                    }
                }
                // SAFETY: the loop runs kk in k0..k1 with k1 <= K, the
                // block's rows, so `wp` = block + kk*G*NR elements and gate
                // g < G reads within wp + g*NR .. wp + (g+1)*NR <= block +
                // K*G*NR, for every panel kind (G = 1, 2, 3, 4; the
                // projection's and R_n's panels too) and element: f32 reads
                // LANES floats at v*LANES (v < 2), bf16 one full NR-u16 load
                // (both vectors), f16 LANES u16 at v*LANES.
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

/// Panel rows ahead that a gate-pair walk prefetches (as the multi-row
/// tiles above do).
#[cfg(target_arch = "x86_64")]
const PAIR_PF_ROWS: usize = 16;

/// `acc[m][v] += sum_{k0 <= kk < k1} gate[kk * G * NR + v * LANES ..] *
/// rows[m][kk]`: both vectors of one gate of a block (its `NR` units) for
/// `MR` rows, each weight vector used by every row (the gate-pair tiles of
/// the input projection and of batched steps). Every sum gets the FMAs of
/// [`dot`] in the same order, so the numbers are those of the step's tiles.
///
/// # Safety
/// `gate` points to gate `g < G` of a block (block start + `g * NR`
/// elements) of f32 or 16-bit panels with `G` gates, `NR = 2 * LANES` and
/// at least `k1` rows; each `rows[m]` is valid for reading `k1` floats.
#[inline(always)]
pub(crate) unsafe fn pair_dot<S: Simd, E: Elem, const G: usize, const MR: usize>(
    s: S,
    gate: *const E,
    k0: usize,
    k1: usize,
    rows: [*const f32; MR],
    mut acc: [[S::V; 2]; MR],
) -> [[S::V; 2]; MR] {
    let nr = 2 * S::LANES;
    let mut wp = gate.wrapping_add(k0 * G * nr);
    for kk in k0..k1 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults; the address is computed with
        // wrapping arithmetic.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let ahead = wp.wrapping_add(PAIR_PF_ROWS * G * nr).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(ahead);
            if nr * std::mem::size_of::<E>() > 64 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
            }
        }
        // SAFETY: kk < k1 <= the block's rows, so `wp` = gate + kk*G*NR
        // elements: the gate's NR elements of row kk lie inside the block
        // (f32 reads LANES floats at v*LANES, v < 2; bf16 one NR-u16 load
        // for both vectors; f16 LANES u16 at v*LANES), for G = 3 and 4.
        let (w0, w1) = unsafe { (E::load_v(s, wp, 0), E::load_v(s, wp, 1)) };
        for m in 0..MR {
            // SAFETY: every row holds k1 > kk floats.
            let xm = s.splat(unsafe { *rows[m].add(kk) });
            acc[m][0] = s.mul_add(w0, xm, acc[m][0]);
            acc[m][1] = s.mul_add(w1, xm, acc[m][1]);
        }
        wp = wp.wrapping_add(G * nr);
    }
    acc
}

/// [`pair_dot`] over gate `g` of block `blk` of `p`, whose storage type is
/// `E` (f32, 16-bit or int8). Int8 panels sum each segment of
/// [`chunk_rows`] panel rows from 0 and add it times the gate's row scales
/// once (`acc += sum * scale`), as [`dot_panel`] does for the step's
/// tiles, so the numbers are theirs however the rows are tiled.
///
/// # Safety
/// `blk < p.blocks`, `g < G = p.g`, `k0 <= k1 <= p.k`; `E` is the panel's
/// storage type and not int8-dynamic's; each `rows[m]` is valid for
/// reading `k1` floats.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn pair_dot_panel<S: Kernel, E: Elem, const G: usize, const MR: usize>(
    s: S,
    p: &Panels,
    blk: usize,
    g: usize,
    k0: usize,
    k1: usize,
    rows: [*const f32; MR],
    acc: [[S::V; 2]; MR],
) -> [[S::V; 2]; MR] {
    let (l, nr) = (S::LANES, 2 * S::LANES);
    let gate = p.ptr::<E>().wrapping_add(blk * p.block_len() + g * nr);
    if !E::INT8 {
        // SAFETY: gate g of block blk (forwarded contract).
        return unsafe { pair_dot::<S, E, G, MR>(s, gate, k0, k1, rows, acc) };
    }
    let seg = if S::CHUNK_BYTES == 0 {
        usize::MAX
    } else {
        chunk_rows::<S>(p)
    };
    // SAFETY: int8 panels hold G * NR scales per block (blk < blocks);
    // gate g < G, so its two vectors' LANES scales each lie inside.
    let scale = unsafe {
        let sc = p.scales_at(blk);
        [s.load(sc.add(g * nr)), s.load(sc.add(g * nr + l))]
    };
    let mut acc = acc;
    let mut a = k0;
    while a < k1 {
        let b = (a / seg).saturating_add(1).saturating_mul(seg).min(k1);
        // SAFETY: k0 <= a < b <= k1: inside the forwarded contract.
        let sums = unsafe { pair_dot::<S, E, G, MR>(s, gate, a, b, rows, [[s.zero(); 2]; MR]) };
        for m in 0..MR {
            for v in 0..2 {
                acc[m][v] = s.mul_add(sums[m][v], scale[v], acc[m][v]);
            }
        }
        a = b;
    }
    acc
}
