//! One time step of one layer direction: which passes the cell runs
//! (LSTM: the gates, then the projection if any; GRU reset-after: one
//! pass; GRU reset-before: z, r then n), the order the blocks are walked in
//! (ping-pong: alternate directions on successive steps, so the panels read
//! last are read first while still in cache), and how the active batch rows
//! split into whole-block tiles (the batch-1 latency path) and half-block
//! tiles (more rows per weight load for batches).

use super::dot::Kernel;
use super::gru::{gru_after_tile, gru_before_n_tile, gru_before_zr_tile};
use super::lstm::{lstm_tile, proj_tile};
use super::tile::{chunks, Bufs, Chunk, Ctx, TilePlan};
use crate::config::{Cell, GruReset};
use crate::team::Part;
use crate::weights::quantize_activations;

/// Which tile function a pass runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
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
    let plan = TilePlan::new::<S>(rows.len(), panel);
    // Half tiles of HALF_ROWS rows, the last one shorter if the plan says so.
    let n_half = plan.halves * S::HALF_ROWS;
    let n_half = if plan.short { rows.len() } else { n_half };
    let (half_rows, rest) = rows.split_at(n_half);
    let (first, end) = part.range(panel.blocks);
    for i in first..end {
        let blk = if backwards { end - 1 - (i - first) } else { i };
        for ch in chunks(panel.k, plan.kc) {
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
                *b.qh.s.add(r) = quantize_activations(h, q);
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
