//! What every tile shares: the step's context and per-row buffers, the
//! chunks a panel is walked in, parking partial sums between chunks, the
//! input part of the gates, and the small epilogue helpers (bias, clip,
//! activation). A tile is one block of `NR` units (or half of one) for up
//! to a few batch rows.

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::{dot_panel, Acc, Kernel, QRows};
use super::pack::{DirPack, Panels};
use crate::activations::{sigmoid_v, tanh_v};
use crate::config::{Activation, Activations, Config};
use crate::weights::WeightFormat;

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
    /// Int8-dynamic (null otherwise): this thread's quantized `h_prev`
    /// rows, per batch entry `q.stride` bytes apart, and their scales,
    /// written at the start of each step (see `step::step`).
    pub(crate) qh: QBuf,
    /// Int8-dynamic with [`XSrc::Fused`] (null otherwise): the quantized
    /// input rows, per batch entry, and their scales (read only).
    pub(crate) qx: QBuf,
}

/// Quantized rows (int8-dynamic): row `i`'s int8 values at `q + i *
/// stride`, its scale at `s + i`. Null when the panel's format needs none.
#[derive(Clone, Copy)]
pub(crate) struct QBuf {
    pub(crate) q: *mut i8,
    pub(crate) s: *mut f32,
    pub(crate) stride: usize,
}

impl QBuf {
    /// No quantized rows.
    pub(crate) fn none() -> QBuf {
        QBuf {
            q: std::ptr::null_mut(),
            s: std::ptr::null_mut(),
            stride: 0,
        }
    }

    /// The quantized rows `rows` (null rows when there are none).
    ///
    /// # Safety
    /// Unless null, the buffer holds a row and a scale for every entry of
    /// `rows`.
    #[inline(always)]
    pub(crate) unsafe fn rows<const MB: usize>(&self, rows: &[usize; MB]) -> QRows<MB> {
        if self.q.is_null() {
            return QRows::none();
        }
        QRows {
            q: std::array::from_fn(|m| self.q.wrapping_add(rows[m] * self.stride).cast_const()),
            // SAFETY: a scale per row (the caller's contract).
            s: std::array::from_fn(|m| unsafe { *self.s.add(rows[m]) }),
        }
    }
}

/// `NR`-float slots per batch entry in [`Bufs::acc`].
pub(crate) const ACC_SLOTS: usize = 4;

/// Rows `k0..k1` of a panel for one pass over a block's tiles. With more
/// than one tile the panel is walked in chunks that stay in L1 while every
/// tile uses them; the tiles keep their partial sums in [`Bufs::acc`]
/// between chunks (stored f32 values: the sum is the same as in one pass).
#[derive(Clone, Copy)]
pub(crate) struct Chunk {
    pub(crate) k0: usize,
    pub(crate) k1: usize,
    pub(crate) first: bool,
    pub(crate) last: bool,
    /// The pass streams more weights than stay in L2 (see
    /// [`super::step::FAR_BYTES`]): one-row f32 products prefetch ahead.
    pub(crate) far: bool,
}

/// Loads the partial sums of `G` gates from slots `0..G` of the tile's rows.
///
/// # Safety
/// `b.acc` has [`ACC_SLOTS`] `* NR` floats for every entry in `rows`.
#[inline(always)]
pub(crate) unsafe fn resume<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
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
pub(crate) unsafe fn park<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
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

/// States and inputs smaller than this in magnitude (2^-63, 1.1e-19) are
/// taken as 0 by the fast kernels. A product of two values at least this
/// large is a normal float, so a state that decays toward zero (silence
/// after speech, a zero-bias model on zero input) never drives the FMAs
/// into subnormal operands or results, which take a microcode assist on
/// Intel cores: lstm-h256-b1 ran 96x slower on subnormal states, 6x on
/// states decaying from 1e-20, before the flush. The change is at most
/// 1.1e-19 absolute per value, far under every tolerance; the scalar
/// reference computes the equations' exact values.
pub(crate) const FLUSH_BELOW: f32 = 1.0 / (1u64 << 63) as f32;

/// `v` with the lanes of magnitude below [`FLUSH_BELOW`] set to 0 (NaN,
/// infinities and larger values kept): every state value and output a
/// kernel stores goes through it.
#[inline(always)]
pub(crate) fn flush<S: Kernel>(s: S, v: S::V) -> S::V {
    s.select_lt(s.abs(v), s.splat(FLUSH_BELOW), s.zero(), v)
}

/// Clamps a pre-activation to `[-c, c]` (ONNX `clip`).
#[inline(always)]
pub(crate) fn clip<S: Kernel>(s: S, v: S::V, c: Option<f32>) -> S::V {
    match c {
        // Constants first so a NaN pre-activation propagates.
        Some(c) => s.min(s.splat(c), s.max(s.splat(-c), v)),
        None => v,
    }
}

/// A gate activation: with the default activations (`DEF`) the fast
/// sigmoid (`SIG`) or tanh, else the configured function `a`.
#[inline(always)]
pub(crate) fn gate<S: Kernel, const DEF: bool, const SIG: bool>(
    s: S,
    a: Activation,
    v: S::V,
) -> S::V {
    match (DEF, SIG) {
        (true, true) => sigmoid_v(s, v),
        (true, false) => tanh_v(s, v),
        _ => s.act(a, v),
    }
}

/// The `W x` part of `G` gates for a tile, from the precomputed projection
/// or from the block's `W` panel (`far`: as [`Chunk::far`]).
///
/// # Safety
/// As for `step::step`: every row pointer and offset valid for the layer's sizes.
#[inline(always)]
pub(crate) unsafe fn x_part<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    ctx: &Ctx<'_>,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize; MB],
    far: bool,
) -> [Acc<S::V, G, NV>; MB] {
    let l = S::LANES;
    let j = blk * 2 * l + v0 * l;
    let zero = [[[s.zero(); NV]; G]; MB];
    match b.x {
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
            // SAFETY: block `blk` of the W panels has K = In rows; the
            // quantized input rows (int8-dynamic) exist for every batch
            // entry (`step::step`'s contract).
            unsafe {
                let q = b.qx.rows(rows);
                dot_panel::<S, G, MB, NV>(s, w, blk, v0, 0, ctx.inp, ptrs, q, zero, far)
            }
        }
    }
}

/// `LANES` floats of a padded per-unit vector (biases, peepholes) from
/// `at`. Callers pass `at = gate * Hp + blk * NR + v * LANES`, whose vector
/// ends inside the vector's `G * Hp` (padded) floats; checked here, since
/// this runs once per vector of the epilogue, not per weight.
#[inline(always)]
pub(crate) fn bias<S: Kernel>(s: S, v: &[f32], at: usize) -> S::V {
    assert!(
        at + S::LANES <= v.len(),
        "bias vector read past its padding"
    );
    // SAFETY: at + LANES <= v.len(), asserted above.
    unsafe { s.load(v.as_ptr().add(at)) }
}

/// The part every tile shares: start from `first` on the panel's first
/// chunk (the tile's own initial sums) or from the sums parked by the
/// previous chunk, add this chunk's product of block `blk` of `panel` with
/// the `src` rows, and park the sums unless this is the panel's last chunk.
/// `Some(sums)` on the last chunk, for the tile's epilogue; `None` before.
///
/// # Safety
/// As for `step::step`: `blk < panel.blocks`, `ch.k1 <= panel.k`, each
/// `src[m]` is valid for reading `ch.k1` floats (and `q`, for an
/// int8-dynamic panel, holds the quantized rows), `b.acc` holds
/// [`ACC_SLOTS`] slots for every entry of `rows`, `v0 + NV <= 2`; `first`
/// is `Some` exactly on the first chunk.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn accumulate<S: Kernel, const G: usize, const MB: usize, const NV: usize>(
    s: S,
    panel: &Panels,
    blk: usize,
    v0: usize,
    b: &Bufs,
    rows: &[usize; MB],
    src: [*const f32; MB],
    q: QRows<MB>,
    ch: Chunk,
    first: Option<[Acc<S::V, G, NV>; MB]>,
) -> Option<[Acc<S::V, G, NV>; MB]> {
    let init = match first {
        Some(acc) => acc,
        // SAFETY: forwarded contract (slots 0..G of the tile's rows).
        None => unsafe { resume::<S, G, MB, NV>(s, b, rows, 0, v0) },
    };
    // SAFETY: forwarded contract: block `blk` has K >= ch.k1 rows and every
    // src row holds ch.k1 floats.
    let acc =
        unsafe { dot_panel::<S, G, MB, NV>(s, panel, blk, v0, ch.k0, ch.k1, src, q, init, ch.far) };
    if ch.last {
        return Some(acc);
    }
    // SAFETY: forwarded contract.
    unsafe { park::<S, G, MB, NV>(s, b, rows, 0, v0, &acc) };
    None
}

/// How `n` active rows split into tiles: `halves` half-block tiles of
/// `HALF_ROWS` rows (each run for both halves of a block), then the rest:
/// in one short half-block tile (`short`: when the rest would take two or
/// more whole-block tiles but fits one half tile, as 4 or 5 rows with
/// 6-row half tiles: one walk over the block's panel instead of two), else
/// in whole-block tiles of up to `FULL_ROWS` rows; and the panel rows per
/// chunk.
#[derive(Clone, Copy)]
pub(crate) struct TilePlan {
    pub(crate) halves: usize,
    pub(crate) short: bool,
    pub(crate) kc: usize,
}

impl TilePlan {
    #[inline(always)]
    pub(crate) fn new<S: Kernel>(n: usize, p: &Panels) -> TilePlan {
        let full = S::FULL_ROWS.clamp(1, 3);
        let halves = if n <= full { 0 } else { n / S::HALF_ROWS };
        let rest = n - halves * S::HALF_ROWS;
        let short = rest > full && rest < S::HALF_ROWS;
        let tiles = 2 * halves + if short { 2 } else { rest.div_ceil(full) };
        // Int8-dynamic sums are i32 until the whole panel is summed: one
        // pass (its panels are a quarter of f32's, and L2 serves them).
        let kc = if tiles <= 1 || S::CHUNK_BYTES == 0 || p.format() == WeightFormat::Int8Dynamic {
            p.k.max(1)
        } else {
            super::dot::chunk_rows::<S>(p)
        };
        TilePlan { halves, short, kc }
    }
}

/// The chunks of `k` panel rows, `kc` rows each (the last may be shorter;
/// one empty chunk when `k = 0`). An iterator, not a closure: code in a
/// closure does not inherit the caller's `#[target_feature]`s, and the
/// tiles' intrinsics would stop inlining.
#[derive(Clone, Copy)]
pub(crate) struct Chunks {
    k: usize,
    kc: usize,
    far: bool,
    next: Option<usize>,
}

/// The chunks of `k` rows, `kc` each, every one marked `far` or not (see
/// [`Chunk::far`]).
pub(crate) fn chunks(k: usize, kc: usize, far: bool) -> Chunks {
    Chunks {
        k,
        kc: kc.max(1),
        far,
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
            far: self.far,
        })
    }
}
