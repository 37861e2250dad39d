//! The memory-floor probe of the benchmark tools: read every packed
//! recurrent weight once with the ISA's vector loads, the time a step's
//! recurrent product cannot beat. Test and benchmark scaffolding (feature
//! `testing`), not part of inference.

use crate::simd::Simd;

/// Independent sums, so the adds' latency never limits the loads.
const SUMS: usize = 8;

/// Reads every float of `data` exactly once and returns their sum (so the
/// loads cannot be optimized away), for any length: whole groups of
/// `SUMS * LANES` floats with one vector load per sum, then the whole
/// vectors left (fewer than `SUMS`), then the floats past the last whole
/// vector one at a time.
#[inline(always)]
pub(crate) fn stream_sum<S: Simd>(s: S, data: &[f32]) -> f32 {
    let l = S::LANES;
    let mut acc = [s.zero(); SUMS];
    let mut groups = data.chunks_exact(SUMS * l);
    for c in &mut groups {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` has exactly SUMS * LANES floats and k < SUMS, so
            // the vector k * LANES .. (k + 1) * LANES is inside it.
            *a = s.add(*a, unsafe { s.load(c.as_ptr().add(k * l)) });
        }
    }
    let mut vectors = groups.remainder().chunks_exact(l);
    for (c, a) in (&mut vectors).zip(acc.iter_mut()) {
        // SAFETY: `c` has exactly LANES floats.
        *a = s.add(*a, unsafe { s.load(c.as_ptr()) });
    }
    let v = acc[1..].iter().fold(acc[0], |a, &b| s.add(a, b));
    let mut out = [0.0f32; 16];
    debug_assert!(l <= out.len());
    // SAFETY: `out` holds 16 floats and no ISA has more than 16 lanes.
    unsafe { s.store(out.as_mut_ptr(), v) };
    out[..l].iter().sum::<f32>() + vectors.remainder().iter().sum::<f32>()
}

/// Independent FMA chains of the peak probe: more than an FMA's latency
/// times the FMA ports (4 x 2) on every x86_64 core, few enough to stay in
/// 16 registers.
pub(crate) const CHAINS: usize = 12;

/// `iters` rounds of one FMA on each of [`CHAINS`] independent vectors,
/// all in registers: the host's FMA peak for this ISA, the bound of the
/// batched kernels. Returns the flops done and the sum of the chains (so
/// the work cannot be optimized away).
#[inline(always)]
pub(crate) fn fma_chains<S: Simd>(s: S, iters: usize) -> (f64, f32) {
    let mut acc = [s.zero(); CHAINS];
    for (k, a) in acc.iter_mut().enumerate() {
        *a = s.splat(k as f32);
    }
    let (m, c) = (
        s.splat(std::hint::black_box(0.999_99)),
        s.splat(std::hint::black_box(1e-3)),
    );
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = s.mul_add(*a, m, c);
        }
    }
    let v = acc[1..].iter().fold(acc[0], |a, &b| s.add(a, b));
    let mut out = [0.0f32; 16];
    debug_assert!(S::LANES <= out.len());
    // SAFETY: `out` holds 16 floats and no ISA has more than 16 lanes.
    unsafe { s.store(out.as_mut_ptr(), v) };
    let flops = (2 * iters * CHAINS * S::LANES) as f64;
    (flops, out[..S::LANES].iter().sum())
}
