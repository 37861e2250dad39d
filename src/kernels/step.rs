//! One time step of one layer direction: which passes the cell runs
//! (LSTM: the gates, then the projection if any; GRU reset-after: one
//! pass; GRU reset-before: z, r then n), the order the blocks are walked in
//! (ping-pong: alternate directions on successive steps, so the panels read
//! last are read first while still in cache), and how the active batch rows
//! split into whole-block tiles (the batch-1 latency path), half-block
//! tiles (more rows per weight load for batches) and, for whole groups of
//! `PROJ_ROWS` rows, gate-pair tiles whose sums the half-block tiles'
//! epilogue reads back (see [`pair_rows`]). Measured (Intel Xeon, bench
//! tool, fastest of 5 interleaved runs, on top of the projection's
//! gate-pair tiles): AVX-512 lstm-h256-b64 561 -> 543 us per step, b16 148
//! -> 140, 64 streams of gru-h256 6.1 -> 5.7 us per stream-step; both
//! changes together on the AVX2 kernels: b64 1509 -> 1123, b16 373 -> 288.

// Index loops over the small register arrays (row x vector) read closer
// to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::{pair_dot_panel, Acc, Bf16, Elem, Kernel, F16, I8};
use super::gru::{gru_after_tile, gru_before_n_tile, gru_before_zr_tile};
use super::lstm::{lstm_tile, proj_tile};
use super::pack::Panels;
use super::quant::quantize;
use super::tile::{chunks, park, Bufs, Chunk, Ctx, TilePlan, XSrc};
use crate::config::{Cell, GruReset};
use crate::team::Part;
use crate::weights::WeightFormat;

/// Which tile function a pass runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Lstm,
    GruAfter,
    GruBeforeZr,
    GruBeforeN,
    Proj,
}

/// Runs `pass` over this thread's share of the blocks (in ping-pong
/// order) and every tile of active rows.
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
    part: Part<'_>,
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
    // Whole groups of PROJ_ROWS rows in gate-pair tiles, the rest in the
    // step's own tiles.
    let (pair_rows, rows) = rows.split_at(pair_rows::<S>(ctx, pass, b, rows.len()));
    let plan = TilePlan::new::<S>(rows.len(), panel);
    // Half tiles of HALF_ROWS rows, the last one shorter if the plan says so.
    let n_half = plan.halves * S::HALF_ROWS;
    let n_half = if plan.short { rows.len() } else { n_half };
    let (half_rows, rest) = rows.split_at(n_half);
    let (first, end) = part.range(panel.blocks);
    let far = streams_far(ctx, pass, panel, b, end - first);
    for i in first..end {
        let blk = if backwards { end - 1 - (i - first) } else { i };
        if !pair_rows.is_empty() {
            // SAFETY: forwarded contract; pair_rows is a whole number of
            // PROJ_ROWS groups of active entries (`pair_rows`).
            unsafe { s.pair_block::<DEF>(ctx, pass, blk, b, pair_rows) };
        }
        if rows.is_empty() {
            continue;
        }
        for ch in chunks(panel.k, plan.kc, far) {
            for v0 in 0..2 {
                for r in half_rows.chunks(S::HALF_ROWS) {
                    // SAFETY: forwarded contract; the tile's rows are active
                    // batch entries, at most HALF_ROWS of them.
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

/// Weights a thread's share of one pass streams per step above which its
/// one-row products prefetch ahead (see [`Chunk::far`]): more than stays
/// in L2 from one step to the next. Below it the panels come from L1/L2,
/// where the prefetches only cost issue slots.
///
/// Measured on an Intel Xeon (m207, AVX-512, L2 2 MiB; bench tool, one
/// core, 3-5 interleaved runs, median) with a prefetch 16 panel rows ahead
/// in every one-row f32 product, against none: lstm-h1024-b1 (16 MiB of
/// `R`) 625 -> 606 us per step, gru-h1024-b1 454 -> 447, lstm-h512-step
/// (4 MiB of `W` and 4 of `R`) 265 -> 251, lstm-h512-b1 (4 MiB) 124 ->
/// 123; but lstm-h256-b1 (1 MiB) 13.9 -> 14.6, gru-h256-b1 9.9 -> 10.7,
/// lstm-h64-b1 0.93 -> 1.07 (min). bf16 panels gained nothing (lstm-h1024
/// 343 -> 344, gru-h1024 237 -> 243): f32 only. A C loop streaming 16 MiB
/// with the same FMAs: 560 us per step, 530-533 with prefetches 2-8 KiB
/// ahead, 592 at 32 KiB.
pub(crate) const FAR_BYTES: usize = 2 << 20;

/// Whether `n` blocks of `panel` (a thread's share of `pass`), with the
/// same blocks of `W` when the pass multiplies the input itself (a
/// streaming step's gate pass), stream more than [`FAR_BYTES`] per step.
#[inline(always)]
fn streams_far(ctx: &Ctx<'_>, pass: Pass, panel: &Panels, b: &Bufs, n: usize) -> bool {
    let gates = matches!(pass, Pass::Lstm | Pass::GruAfter | Pass::GruBeforeZr);
    let w = match b.x {
        XSrc::Fused { .. } if gates => ctx.p.w.blocks_bytes(n),
        _ => 0,
    };
    panel.blocks_bytes(n).saturating_add(w) > FAR_BYTES
}

/// One block of `pass` for the gate-pair rows `rows`: their products
/// ([`pair_products`]), then their epilogue in half-block tiles from the
/// parked sums (a last chunk with no panel rows left: the tiles resume
/// every gate's sum and add nothing).
///
/// Runs out of line ([`Kernel::pair_block`]): inlined into the step, the
/// pair code made LLVM compile the batch-1 GRU step 1.5x slower
/// (gru-h256-b1 9.8 -> 14.7 us, gru-h64-b1 0.70 -> 1.07, Intel Xeon
/// AVX-512) though batch 1 never runs it.
///
/// # Safety
/// As for [`pair_products`].
#[inline(always)]
pub(crate) unsafe fn pair_block<S: Kernel, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    b: &Bufs,
    rows: &[usize],
) {
    // SAFETY: forwarded contract.
    unsafe { pair_products::<S>(s, ctx, pass, blk, b, rows) };
    let k = ctx.p.r.k;
    let done = Chunk {
        k0: k,
        k1: k,
        first: false,
        last: true,
        far: false,
    };
    for v0 in 0..2 {
        for r in rows.chunks(S::HALF_ROWS) {
            // SAFETY: forwarded contract; each chunk is HALF_ROWS active
            // entries (PROJ_ROWS is a multiple of HALF_ROWS), whose slots
            // hold their sums (above). Only the ISA's half-tile size is
            // instantiated.
            unsafe {
                match S::HALF_ROWS {
                    6 => pair_epilogue::<S, 6, DEF>(s, ctx, pass, blk, v0, b, r, done),
                    3 => pair_epilogue::<S, 3, DEF>(s, ctx, pass, blk, v0, b, r, done),
                    n => unreachable!("no gate-pair epilogue of {n}-row half tiles"),
                }
            }
        }
    }
}

/// The epilogue half tile of `MB` pair rows: [`tile_at`] for the two
/// passes gate-pair tiles run (so the others are not instantiated again).
///
/// # Safety
/// As for [`pair_block`]; `rows.len() >= MB`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pair_epilogue<S: Kernel, const MB: usize, const DEF: bool>(
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
    // SAFETY: forwarded contract.
    unsafe {
        match pass {
            Pass::Lstm => lstm_tile::<S, MB, 1, DEF>(s, ctx, blk, v0, b, &r, ch),
            Pass::GruAfter => gru_after_tile::<S, MB, 1, DEF>(s, ctx, blk, v0, b, &r, ch),
            _ => unreachable!("no gate-pair tiles for this pass (`pair_rows`)"),
        }
    }
}

/// How many of `n` active rows a pass runs in gate-pair tiles: whole groups
/// of [`Kernel::PROJ_ROWS`] rows for an LSTM (without projection: its
/// passes keep the step's tiles) or reset-after GRU pass whose products
/// are f32, 16-bit or int8 (scaled per segment as the step's tiles do, see
/// [`pair_dot_panel`]; int8-dynamic keeps its integer tiles), else none.
///
/// Int8-dynamic gate-pair tiles (the integer product over one gate for
/// `PROJ_ROWS` rows, in the projection and in the step) were built and
/// measured (Intel Xeon m207, bench tool, 3 interleaved runs): with
/// AVX-512 VNNI within noise (lstm-h256-b64 232 -> 241 us, b16 54 -> 56,
/// lstm-h512-b1 16.8 -> 16.0), with AVX2 10-15% slower (b64 862 -> 969,
/// b16 212 -> 240; its sign trick costs a `vpsignb` per weight and row, so
/// more rows per weight load save no work). Left out.
///
/// The products of a block then run first, one gate's `NR` units for
/// `PROJ_ROWS` rows per tile (each weight vector serves twice the rows of
/// a half-block tile), into the rows' parking slots, and the epilogue
/// reads them back in the step's half-block tiles: the same FMAs in the
/// same order as the step's tiles, so a row's numbers do not depend on how
/// many rows share the step.
#[inline(always)]
fn pair_rows<S: Kernel>(ctx: &Ctx<'_>, pass: Pass, b: &Bufs, n: usize) -> usize {
    let mr = S::PROJ_ROWS;
    let ok = mr > 0
        && mr % S::HALF_ROWS == 0
        && n >= mr
        && matches!(pass, Pass::Lstm | Pass::GruAfter)
        && ctx.p.proj.is_none()
        && ctx.p.r.format() != WeightFormat::Int8Dynamic
        && (matches!(b.x, XSrc::Pre { .. }) || ctx.p.w.format() == ctx.p.r.format());
    if ok {
        n / mr * mr
    } else {
        0
    }
}

/// The products of one block of `pass` for `rows` (a whole number of
/// `PROJ_ROWS` groups) in gate-pair tiles, parked in the rows' slots for
/// the epilogue (see [`pair_rows`]).
///
/// # Safety
/// As for [`step`]; `rows` are active batch entries, `rows.len()` a
/// multiple of `PROJ_ROWS`, and [`pair_rows`] allows the pass.
#[inline(always)]
unsafe fn pair_products<S: Kernel>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    b: &Bufs,
    rows: &[usize],
) {
    // SAFETY: forwarded contract; the element type is R's format, and W's
    // when the step multiplies it (`pair_rows` checked they are the same).
    unsafe {
        match (pass, ctx.p.r.format()) {
            (Pass::Lstm, WeightFormat::F32) => {
                pair_products_e::<S, f32, 4>(s, ctx, pass, blk, b, rows)
            }
            (Pass::Lstm, WeightFormat::Bf16) => {
                pair_products_e::<S, Bf16, 4>(s, ctx, pass, blk, b, rows)
            }
            (Pass::Lstm, WeightFormat::Int8) => {
                pair_products_e::<S, I8, 4>(s, ctx, pass, blk, b, rows)
            }
            (Pass::Lstm, _) => pair_products_e::<S, F16, 4>(s, ctx, pass, blk, b, rows),
            (_, WeightFormat::F32) => pair_products_e::<S, f32, 3>(s, ctx, pass, blk, b, rows),
            (_, WeightFormat::Bf16) => pair_products_e::<S, Bf16, 3>(s, ctx, pass, blk, b, rows),
            (_, WeightFormat::Int8) => pair_products_e::<S, I8, 3>(s, ctx, pass, blk, b, rows),
            _ => pair_products_e::<S, F16, 3>(s, ctx, pass, blk, b, rows),
        }
    }
}

/// [`pair_products`] for panel elements `E` and `G` gates.
///
/// # Safety
/// As for [`pair_products`]; `E` is the storage type of R (and of W when
/// the step multiplies it), `G` the pass's gates.
#[inline(always)]
unsafe fn pair_products_e<S: Kernel, E: Elem, const G: usize>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    b: &Bufs,
    rows: &[usize],
) {
    for g in 0..G {
        for r in rows.chunks(S::PROJ_ROWS) {
            // SAFETY: forwarded contract; each chunk is a whole group.
            unsafe {
                match S::PROJ_ROWS {
                    12 => pair_tile::<S, E, G, 12>(s, ctx, pass, blk, g, b, r),
                    6 => pair_tile::<S, E, G, 6>(s, ctx, pass, blk, g, b, r),
                    n => unreachable!("no gate-pair tile of {n} rows"),
                }
            }
        }
    }
}

/// The product of gate `g` (both vectors) of block `blk` for the first
/// `MR` entries of `rows`, parked in slot `g` of each row's [`Bufs::acc`]:
/// from the input part (precomputed, or W's panel times the input rows)
/// over R's panel times `h_prev`. Reset-after GRU's n (`g = 2`) starts
/// from 0 and parks its input part in slot 3, as `gru_after_tile` does.
///
/// # Safety
/// As for [`pair_products_e`]; `rows.len() >= MR`.
#[inline(always)]
unsafe fn pair_tile<S: Kernel, E: Elem, const G: usize, const MR: usize>(
    s: S,
    ctx: &Ctx<'_>,
    pass: Pass,
    blk: usize,
    g: usize,
    b: &Bufs,
    rows: &[usize],
) {
    let l = S::LANES;
    let nr = 2 * l;
    let rows: [usize; MR] = std::array::from_fn(|m| rows[m]);
    let j = g * ctx.hp + blk * nr;
    let mut acc = [[s.zero(); 2]; MR];
    match b.x {
        XSrc::Pre { base, off } => {
            for m in 0..MR {
                for v in 0..2 {
                    // SAFETY: off[b] is the row's offset in a [rows, G*Hp]
                    // buffer; g*Hp + blk*NR + (v+1)*L <= G*Hp.
                    acc[m][v] = unsafe { s.load(base.add(*off.add(rows[m]) + j + v * l)) };
                }
            }
        }
        XSrc::Fused { base, off } => {
            let w = &ctx.p.w;
            // SAFETY: off[b] is the row's offset of an [In] input row; block
            // `blk` of W has K = In rows, gate g < G.
            acc = unsafe {
                let x = std::array::from_fn(|m| base.add(*off.add(rows[m])));
                pair_dot_panel::<S, E, G, MR>(s, w, blk, g, 0, ctx.inp, x, acc)
            };
        }
    }
    // One gate's two vectors per row, in the shape the step's tiles park.
    let park = |slot: usize, acc: &[[S::V; 2]; MR]| {
        let acc: [Acc<S::V, 1, 2>; MR] = std::array::from_fn(|m| [acc[m]]);
        // SAFETY: `b.acc` holds ACC_SLOTS slots of NR floats per batch
        // entry (step's contract); slot < ACC_SLOTS.
        unsafe { park::<S, 1, MR, 2>(s, b, &rows, slot, 0, &acc) };
    };
    if pass == Pass::GruAfter && g == 2 {
        park(3, &acc);
        acc = [[s.zero(); 2]; MR];
    }
    let r = &ctx.p.r;
    // SAFETY: block `blk` of R has K = Hout rows, gate g < G; h rows hold
    // Hout floats.
    let acc = unsafe {
        let h = std::array::from_fn(|m| b.h_prev.add(rows[m] * b.hstride));
        pair_dot_panel::<S, E, G, MR>(s, r, blk, g, 0, r.k, h, acc)
    };
    park(g, &acc);
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

/// One half-block tile (vector `v0` of each gate) of `rows`: `HALF_ROWS`
/// rows, or fewer for the short last tile of a [`TilePlan`] (4 or 5 rows
/// with AVX-512's 6-row half tiles, 2 with AVX2's 3-row ones).
///
/// # Safety
/// As for [`step`]; `1 <= rows.len() <= S::HALF_ROWS`.
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
    // SAFETY: forwarded contract; each arm's row count is at most
    // HALF_ROWS (a constant of the ISA), so no tile larger than the ISA's
    // half tile is instantiated.
    unsafe {
        match rows.len() {
            6 if S::HALF_ROWS >= 6 => tile_at::<S, 6, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            5 if S::HALF_ROWS >= 5 => tile_at::<S, 5, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            4 if S::HALF_ROWS >= 4 => tile_at::<S, 4, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            3 if S::HALF_ROWS >= 3 => tile_at::<S, 3, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
            2 if S::HALF_ROWS >= 2 => tile_at::<S, 2, 1, DEF>(s, ctx, pass, blk, v0, b, rows, ch),
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
/// `rows`: reads `h_prev`, writes `h_next`, updates `c`. Only the blocks
/// of `part`'s share of each pass are computed; with a team, every thread
/// of the part calls this with the same arguments but its own `b.acc`, and
/// they meet at a barrier between two passes (the second reads every unit
/// the first wrote).
///
/// # Safety
/// Every pointer in `b` is valid for the rows in `rows`: `h_prev`/`h_next`
/// rows of `hstride >= max(Hp, proj blocks * NR)` floats (holding the state
/// in their first `Hout`), `c`, `aux`, `z`, `xn` rows of `Hp` floats (those
/// the cell uses), and `b.x` rows as its variant says; `ctx.p` was packed
/// for `S` (`NR = 2 * S::LANES`). With int8-dynamic panels, `b.qh` holds
/// a row of at least `Hout` rounded up to 4 bytes and a scale per batch
/// entry, and `b.qx` (with [`super::tile::XSrc::Fused`]) the quantized
/// input rows. No two of the written buffers overlap, and no two threads
/// of `part` share a `b.acc` or a `b.qh`.
#[inline(always)]
pub(crate) unsafe fn step<S: Kernel>(
    s: S,
    ctx: &Ctx<'_>,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
    part: Part<'_>,
) {
    if ctx.p.dynamic() {
        // The rows R multiplies, quantized once for every pass and block
        // of this step (into this thread's own buffer).
        let k = ctx.cfg.output_size();
        for &r in rows {
            // SAFETY: h_prev rows hold Hout = k floats; `b.qh` holds a row
            // of `stride >= k` bytes and a scale for every batch entry, and
            // belongs to this thread (the contract).
            unsafe {
                let h = std::slice::from_raw_parts(b.h_prev.add(r * b.hstride), k);
                let q = std::slice::from_raw_parts_mut(b.qh.q.add(r * b.qh.stride), k);
                *b.qh.s.add(r) = quantize(s, h, q, s.q_biased());
            }
        }
    }
    if ctx.acts.is_default() {
        // SAFETY: forwarded contract.
        unsafe { step_impl::<S, true>(s, ctx, b, rows, backwards, part) }
    } else {
        // SAFETY: forwarded contract.
        unsafe { step_impl::<S, false>(s, ctx, b, rows, backwards, part) }
    }
}

/// [`step`] with the activations known at compile time (`DEF`: the
/// default sigmoid/tanh set).
///
/// # Safety
/// As for [`step`].
#[inline(always)]
unsafe fn step_impl<S: Kernel, const DEF: bool>(
    s: S,
    ctx: &Ctx<'_>,
    b: &Bufs,
    rows: &[usize],
    backwards: bool,
    part: Part<'_>,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match (ctx.cfg.cell, ctx.cfg.gru_reset) {
            (Cell::Lstm, _) => {
                run_pass::<S, DEF>(s, ctx, Pass::Lstm, b, rows, backwards, part);
                if ctx.p.proj.is_some() {
                    // The projection reads every unit of the unprojected h.
                    part.sync();
                    run_pass::<S, DEF>(s, ctx, Pass::Proj, b, rows, backwards, part);
                }
            }
            (Cell::Gru, GruReset::AfterMatmul) => {
                run_pass::<S, DEF>(s, ctx, Pass::GruAfter, b, rows, backwards, part)
            }
            (Cell::Gru, GruReset::BeforeMatmul) => {
                run_pass::<S, DEF>(s, ctx, Pass::GruBeforeZr, b, rows, backwards, part);
                // The n pass reads every unit of r ⊙ h.
                part.sync();
                run_pass::<S, DEF>(s, ctx, Pass::GruBeforeN, b, rows, backwards, part);
            }
        }
    }
}
