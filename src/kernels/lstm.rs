//! The LSTM epilogue tile (biases, peepholes, clip, input_forget, the
//! activations, the `c` and `h` update) and the projection tile of an LSTM
//! with `proj_size` (`h = W_hr h_full`, PyTorch).

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::{Kernel, QRows};
use super::pack::Panels;
use super::tile::{accumulate, bias, clip, flush, gate, x_part, Bufs, Chunk, Ctx};

/// One LSTM block for a tile of rows.
///
/// # Safety
/// As for `step::step`.
#[inline(always)]
pub(crate) unsafe fn lstm_tile<S: Kernel, const MB: usize, const NV: usize, const DEF: bool>(
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
    let first = if ch.first {
        // SAFETY: forwarded contract.
        Some(unsafe { x_part::<S, 4, MB, NV>(s, ctx, blk, v0, b, rows, ch.far) })
    } else {
        None
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    // SAFETY: block `blk` of R has K = Hout >= k1 rows; h rows hold Hout
    // floats; `b.qh` their quantized copies when R is int8-dynamic.
    let Some(acc) = (unsafe {
        let q = b.qh.rows(rows);
        accumulate::<S, 4, MB, NV>(s, &p.r, blk, v0, b, rows, hrows, q, ch, first)
    }) else {
        return;
    };
    let (out, ostride) = match p.proj {
        Some(_) => (b.aux, hp),
        None => (b.h_next, b.hstride),
    };
    for m in 0..MB {
        for v in 0..NV {
            let j = blk * 2 * l + (v0 + v) * l;
            let pre = |g: usize| s.add(bias(s, &p.bias, g * hp + j), acc[m][g][v]);
            // SAFETY: c rows hold Hp floats; j = blk*NR + (v0+v)*L with
            // blk < blocks and v0 + v < 2, so j + L <= (blk+1)*NR <= Hp.
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
            let c_new = flush(s, s.mul_add(f, c_old, s.mul(i, g)));
            if let Some(pp) = &p.peep {
                po = s.mul_add(bias(s, pp, 2 * hp + j), c_new, po);
            }
            let o = gate::<S, DEF, true>(s, ctx.acts.f, clip(s, po, cfg.clip));
            let h = flush(s, s.mul(o, gate::<S, DEF, false>(s, ctx.acts.h, c_new)));
            // SAFETY: c and output rows hold at least Hp floats from j.
            unsafe {
                s.store(cp, c_new);
                s.store(out.add(rows[m] * ostride + j), h);
            }
        }
    }
}

/// Projection `h = W_hr h_full` for a tile: a plain product, stored.
///
/// # Safety
/// As for `step::step`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn proj_tile<S: Kernel, const MB: usize, const NV: usize>(
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
    let first = ch.first.then_some([[[s.zero(); NV]; 1]; MB]);
    // SAFETY: block `blk` of the projection has K = H >= k1 rows; h_full rows hold Hp floats.
    let Some(acc) = (unsafe {
        accumulate::<S, 1, MB, NV>(s, pr, blk, v0, b, rows, src, QRows::none(), ch, first)
    }) else {
        return;
    };
    for m in 0..MB {
        // SAFETY: h_next rows hold hstride >= proj blocks * NR floats.
        unsafe {
            let o = b.h_next.add(rows[m] * b.hstride + blk * 2 * l + v0 * l);
            for v in 0..NV {
                s.store(o.add(v * l), flush(s, acc[m][0][v]));
            }
        }
    }
}
