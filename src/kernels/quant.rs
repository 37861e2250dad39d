//! The int8-dynamic activation quantizer on each ISA's vectors: the bytes
//! and scale of [`crate::quantize_activations`] (the reference's scalar
//! code, the oracle), bit for bit. Every operation is an exact IEEE one
//! (the maximum of magnitudes does not depend on the order; `x * inv`,
//! the clamp and `+ 1.5 * 2^23` are the scalar code's operations), and the
//! rounded sum's low byte is the integer (see [`crate::weights::ROUND`]),
//! stored with one narrowing per vector. The scalar loop, whose saturating
//! `as i8` LLVM does not vectorize, took ~4.7 TSC ticks per value (Intel
//! Xeon, AVX-512): at lstm-h256-b64 ~10% of an int8-dynamic step.

use crate::family::Isa;
use crate::simd::portable::Scalar;
#[cfg(target_arch = "x86_64")]
use crate::simd::x86_64::isa_features;
use crate::simd::Simd;
use crate::weights::{INT8_TINY, ROUND};

/// Quantizes `v` into `q` as [`crate::quantize_activations`] does (same
/// bytes, same returned scale) with `S`'s vectors; the tail shorter than a
/// vector runs the same operations on [`Scalar`]. With `biased`, each byte
/// is stored plus 128 (the reference's byte xor `0x80`: the unsigned
/// operand AVX-512 VNNI's `vpdpbusd` multiplies, see [`bias`]).
#[inline(always)]
pub(crate) fn quantize<S: Simd>(s: S, v: &[f32], q: &mut [i8], biased: bool) -> f32 {
    const { assert!(S::LANES <= 16) };
    let l = S::LANES;
    let full = v.len() / l * l;
    let (inf, one) = (s.splat(f32::INFINITY), s.splat(1.0));
    let (mut mx, mut bad) = (s.zero(), s.zero());
    for i in (0..full).step_by(l) {
        // SAFETY: i + LANES <= full <= v.len().
        let a = s.abs(unsafe { s.load(v.as_ptr().add(i)) });
        // A NaN lane may leave the running maximum; `bad` remembers it.
        mx = s.max(mx, a);
        // Not below infinity: an infinity or a NaN.
        bad = s.select_lt(a, inf, bad, one);
    }
    let (mut lanes, mut flags) = ([0.0f32; 16], [0.0f32; 16]);
    // SAFETY: both arrays hold 16 >= LANES floats.
    unsafe {
        s.store(lanes.as_mut_ptr(), mx);
        s.store(flags.as_mut_ptr(), bad);
    }
    let mut max = 0.0f32;
    let mut is_bad = false;
    for i in 0..l {
        max = if lanes[i] > max { lanes[i] } else { max };
        is_bad |= flags[i] != 0.0;
    }
    for &x in &v[full..] {
        let a = x.abs();
        max = if a > max { a } else { max };
        is_bad |= !a.is_finite();
    }
    let n = v.len().min(q.len());
    // `+ 128` in the rounding constant: the sum stays in [2^23, 2^24),
    // and its low byte is the integer's plus 128.
    let (round_c, zero) = if biased {
        (ROUND + 128.0, i8::MIN)
    } else {
        (ROUND, 0)
    };
    if is_bad || max < INT8_TINY {
        q[..n].fill(zero);
        return if is_bad { f32::NAN } else { 0.0 };
    }
    let inv = 127.0 / max;
    let nfull = n / l * l;
    let (lo, hi, vi, round) = (
        s.splat(-127.0),
        s.splat(127.0),
        s.splat(inv),
        s.splat(round_c),
    );
    for i in (0..nfull).step_by(l) {
        // SAFETY: i + LANES <= nfull <= n, within both `v` and `q`.
        unsafe {
            let y = s.min(hi, s.max(lo, s.mul(s.load(v.as_ptr().add(i)), vi)));
            s.store_low_bytes(q.as_mut_ptr().add(i), s.add(y, round));
        }
    }
    let t = Scalar;
    for (i, &x) in v.iter().enumerate().take(n).skip(nfull) {
        let y = t.min(127.0, t.max(-127.0, x * inv));
        // SAFETY: i < n <= q.len().
        unsafe { t.store_low_bytes(q.as_mut_ptr().add(i), y + round_c) };
    }
    max / 127.0
}

/// Whether `isa`'s int8-dynamic product takes its activations biased by
/// 128 ([`super::dot::Kernel::q_biased`]: AVX-512 with VNNI).
pub(crate) fn bias(isa: Isa) -> bool {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(s) => super::dot::Kernel::q_biased(s),
        _ => false,
    }
}

/// [`quantize`] of `qs.len()` rows of `k` floats (`x`, `k` apart) into `q`
/// (rows `stride` bytes apart), one scale per row into `qs`.
#[inline(always)]
fn rows_with<S: Simd>(
    s: S,
    x: &[f32],
    k: usize,
    stride: usize,
    q: &mut [i8],
    qs: &mut [f32],
    biased: bool,
) {
    for (r, sc) in qs.iter_mut().enumerate() {
        *sc = quantize(
            s,
            &x[r * k..(r + 1) * k],
            &mut q[r * stride..r * stride + k],
            biased,
        );
    }
}

/// [`rows_with`] compiled with an x86 ISA's features (`$isa`, token type
/// `$ty`), called with that ISA's token.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_rows {
    ($isa:ident, $ty:ty, $s:expr, $($arg:expr),*) => {{
        isa_features!($isa enable {
            /// # Safety
            /// The CPU has the token's features.
            unsafe fn go(
                s: $ty,
                x: &[f32],
                k: usize,
                stride: usize,
                q: &mut [i8],
                qs: &mut [f32],
                biased: bool,
            ) {
                rows_with(s, x, k, stride, q, qs, biased)
            }
        });
        // SAFETY: the token proves the CPU has its features.
        unsafe { go($s, $($arg),*) }
    }};
}

/// Quantizes `qs.len()` rows of `k` floats (`x`, rows `k` apart) into `q`
/// (rows `stride >= k` bytes apart) and their scales into `qs`, with
/// `isa`'s vectors (the same bytes whatever the ISA), biased by 128 if
/// `biased`.
///
/// # Panics
/// If `x` holds fewer than `qs.len() * k` floats or `q` fewer than
/// `(qs.len() - 1) * stride + k` bytes (callers grow them first).
pub(crate) fn quantize_rows(
    isa: Isa,
    x: &[f32],
    k: usize,
    stride: usize,
    q: &mut [i8],
    qs: &mut [f32],
    biased: bool,
) {
    match isa {
        Isa::Scalar => rows_with(Scalar, x, k, stride, q, qs, biased),
        Isa::Portable(s) => rows_with(s, x, k, stride, q, qs, biased),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(s) => x86_rows!(
            avx2,
            crate::simd::x86_64::Avx2,
            s,
            x,
            k,
            stride,
            q,
            qs,
            biased
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(s) => {
            x86_rows!(
                avx512,
                crate::simd::x86_64::Avx512,
                s,
                x,
                k,
                stride,
                q,
                qs,
                biased
            )
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(s) => rows_with(s, x, k, stride, q, qs, biased),
    }
}

/// Quantizes `v` into `q` (of the same length) with kernel family
/// `family`'s vector code: the bytes and scale of
/// [`crate::quantize_activations`], each byte plus 128 (xor `0x80`) if
/// `biased` (feature `testing`; the kernels call their ISA's quantizer
/// directly, biased for AVX-512 VNNI).
///
/// # Errors
/// [`crate::Error::KernelUnavailable`] if the family is not available here;
/// [`crate::Error::Shape`] if `q` and `v` differ in length.
#[cfg(feature = "testing")]
pub fn quantize_with(
    family: crate::KernelFamily,
    v: &[f32],
    q: &mut [i8],
    biased: bool,
) -> crate::Result<f32> {
    let isa = crate::family::select(family)?;
    if q.len() != v.len() {
        return Err(crate::Error::Shape {
            what: "quantized vector".to_string(),
            expected: vec![v.len()],
            got: vec![q.len()],
        });
    }
    let mut s = [0.0f32];
    quantize_rows(isa, v, v.len(), v.len(), q, &mut s, biased);
    Ok(s[0])
}
