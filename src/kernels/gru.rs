//! The GRU epilogue tiles. Reset after the matmul (PyTorch, ONNX
//! `linear_before_reset=1`): one pass over `R` for z, r and `R_n h`.
//! Reset before the matmul (ONNX default, Keras `reset_after=False`): a
//! z, r pass that leaves `r ⊙ h`, then a pass over `R_n`.

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::{Acc, Kernel, QRows};
use super::tile::{accumulate, bias, clip, flush, gate, park, resume, x_part, Bufs, Chunk, Ctx};

/// `h = (1 - z) n + z h_old`, in the reference's (and ONNX's) form rather
/// than `n + z (h_old - n)`: the two differ when z is infinite (an
/// unbounded gate function), where this one gives NaN as the reference
/// does (found by the fast-vs-reference fuzz target). One more multiply
/// per vector of the epilogue.
#[inline(always)]
fn update<S: Kernel>(s: S, z: S::V, n: S::V, h_old: S::V) -> S::V {
    s.mul_add(z, h_old, s.mul(s.sub(s.splat(1.0), z), n))
}

/// One GRU block (reset after the matmul) for a tile of rows.
///
/// # Safety
/// As for `step::step`.
#[inline(always)]
pub(crate) unsafe fn gru_after_tile<
    S: Kernel,
    const MB: usize,
    const NV: usize,
    const DEF: bool,
>(
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
    let (first, xn_part) = if ch.first {
        // SAFETY: forwarded contract.
        let xp = unsafe { x_part::<S, 3, MB, NV>(s, ctx, blk, v0, b, rows, ch.far) };
        let mut init = xp;
        for a in init.iter_mut() {
            a[2] = [s.zero(); NV];
        }
        let xn: [Acc<S::V, 1, NV>; MB] = std::array::from_fn(|m| [xp[m][2]]);
        if !ch.last {
            // SAFETY: forwarded contract (slot 3 of the tile's rows).
            unsafe { park::<S, 1, MB, NV>(s, b, rows, 3, v0, &xn) };
        }
        (Some(init), xn)
    } else if ch.last {
        // SAFETY: forwarded contract.
        (None, unsafe { resume::<S, 1, MB, NV>(s, b, rows, 3, v0) })
    } else {
        (None, [[[s.zero(); NV]; 1]; MB])
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    // SAFETY: block `blk` of R has K = H >= k1 rows; h rows hold H floats.
    let Some(acc) = (unsafe {
        accumulate::<S, 3, MB, NV>(s, &p.r, blk, v0, b, rows, hrows, b.qh.rows(rows), ch, first)
    }) else {
        return;
    };
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
            // SAFETY: h rows hold hstride >= Hp floats; j = blk*NR +
            // (v0+v)*L with blk < blocks, v0 + v < 2, so j + L <= Hp.
            unsafe {
                let h_old = s.load(hrows[m].add(j));
                let h = flush(s, update(s, z, n, h_old));
                s.store(b.h_next.add(rows[m] * b.hstride + j), h);
            }
        }
    }
}

/// GRU (reset before the matmul), first pass: z, r, and `r ⊙ h` for the
/// second pass; the input part of n is kept for the second pass.
///
/// # Safety
/// As for `step::step`.
#[inline(always)]
pub(crate) unsafe fn gru_before_zr_tile<
    S: Kernel,
    const MB: usize,
    const NV: usize,
    const DEF: bool,
>(
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
    let first: Option<[Acc<S::V, 2, NV>; MB]> = if ch.first {
        // SAFETY: forwarded contract.
        let xp = unsafe { x_part::<S, 3, MB, NV>(s, ctx, blk, v0, b, rows, ch.far) };
        for m in 0..MB {
            let at = rows[m] * hp + blk * 2 * l + v0 * l;
            for v in 0..NV {
                // SAFETY: xn rows hold Hp floats; blk*NR + (v0+v+1)*L <= Hp.
                unsafe { s.store(b.xn.add(at + v * l), xp[m][2][v]) };
            }
        }
        Some(std::array::from_fn(|m| [xp[m][0], xp[m][1]]))
    } else {
        None
    };
    let hrows = std::array::from_fn(|m| b.h_prev.wrapping_add(rows[m] * b.hstride));
    // SAFETY: block `blk` of R_zr has K = H >= k1 rows; h rows hold H floats.
    let Some(acc) = (unsafe {
        accumulate::<S, 2, MB, NV>(s, &p.r, blk, v0, b, rows, hrows, b.qh.rows(rows), ch, first)
    }) else {
        return;
    };
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
                s.store(b.aux.add(at), flush(s, s.mul(rg, h_old)));
            }
        }
    }
}

/// GRU (reset before the matmul), second pass: n from `R_n (r ⊙ h)`, then h.
///
/// # Safety
/// As for `step::step`.
#[inline(always)]
pub(crate) unsafe fn gru_before_n_tile<
    S: Kernel,
    const MB: usize,
    const NV: usize,
    const DEF: bool,
>(
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
    let first = if ch.first {
        let mut init = [[[s.zero(); NV]; 1]; MB];
        for m in 0..MB {
            for v in 0..NV {
                // SAFETY: xn rows hold Hp floats; j0 + (v+1)*L <= Hp.
                init[m][0][v] = unsafe { s.load(b.xn.add(rows[m] * hp + j0 + v * l)) };
            }
        }
        Some(init)
    } else {
        None
    };
    let rh = std::array::from_fn(|m| b.aux.cast_const().wrapping_add(rows[m] * hp));
    let rn = p.rn.as_ref().expect("reset-before GRU has R_n panels");
    // SAFETY: block `blk` of R_n has K = H >= k1 rows; r ⊙ h rows hold Hp floats.
    let Some(acc) = (unsafe {
        accumulate::<S, 1, MB, NV>(s, rn, blk, v0, b, rows, rh, QRows::none(), ch, first)
    }) else {
        return;
    };
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
                    flush(s, update(s, z, n, h_old)),
                );
            }
        }
    }
}
