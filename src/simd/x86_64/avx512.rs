//! AVX-512F: 16 lanes.

use std::arch::x86_64::*;

use crate::simd::Simd;

/// Proof that the CPU supports AVX-512F (and FMA, AVX2, which every
/// AVX-512F CPU has). Only [`Avx512::new`] creates one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The token, if this CPU has the features.
    pub(crate) fn new() -> Option<Avx512> {
        if super::isa_features!(avx512 detect) {
            Some(Avx512(()))
        } else {
            None
        }
    }
}

// Every method below calls AVX-512F intrinsics. They are safe to call
// because an `Avx512` value exists only when `Avx512::new` saw the features.
impl Simd for Avx512 {
    type V = __m512;
    const LANES: usize = 16;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    /// # Safety
    /// The contract of [`Simd::load`].
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees 16 readable floats; the token proves AVX-512F.
        unsafe { _mm512_loadu_ps(p) }
    }
    /// # Safety
    /// The contract of [`Simd::load_bf16_pair`].
    #[inline(always)]
    unsafe fn load_bf16_pair(self, p: *const u16, second: bool) -> __m512 {
        // SAFETY: the caller guarantees 32 readable u16 (64 bytes); the
        // token proves AVX-512F.
        unsafe {
            let x = _mm512_loadu_si512(p as *const __m512i);
            let bits = if second {
                _mm512_and_si512(x, _mm512_set1_epi32(0xffff_0000_u32 as i32))
            } else {
                _mm512_slli_epi32::<16>(x)
            };
            _mm512_castsi512_ps(bits)
        }
    }
    /// # Safety
    /// The contract of [`Simd::load_f16`].
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> __m512 {
        // SAFETY: the caller guarantees 16 readable u16 (32 bytes); the
        // token proves AVX-512F (vcvtph2ps zmm is AVX-512F).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)) }
    }
    /// # Safety
    /// The contract of [`Simd::load_i8`].
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> __m512 {
        // SAFETY: the caller guarantees 16 readable i8 (16 bytes); the
        // token proves AVX-512F (vpmovsxbd zmm, vcvtdq2ps zmm).
        unsafe { _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p as *const __m128i))) }
    }
    #[inline(always)]
    fn cvt_i32(self, v: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cvtepi32_ps(_mm512_castps_si512(v)) }
    }
    /// # Safety
    /// The contract of [`Simd::store`].
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: the caller guarantees 16 writable floats; the token proves AVX-512F.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    /// # Safety
    /// The contract of [`Simd::store_low_bytes`].
    #[inline(always)]
    unsafe fn store_low_bytes(self, p: *mut i8, v: __m512) {
        // SAFETY: the caller guarantees 16 writable bytes (one 128-bit
        // store); the token proves AVX-512F (vpmovdb truncates each lane to
        // its low byte).
        unsafe { _mm_storeu_si128(p.cast(), _mm512_cvtepi32_epi8(_mm512_castps_si512(v))) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(0x7fff_ffff),
            ))
        }
    }
    #[inline(always)]
    fn copysign(self, mag: __m512, sign: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            let m = _mm512_set1_epi32(0x7fff_ffff);
            _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(mag), m),
                _mm512_andnot_si512(m, _mm512_castps_si512(sign)),
            ))
        }
    }
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            let e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn mul_pow2i(self, a: __m512, n: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F. `n` is integral, so the scale
        // is 2^n exactly, and the product is normal (the contract): exact.
        unsafe { _mm512_scalef_ps(a, n) }
    }
    #[inline(always)]
    fn select_lt(self, a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), y, x) }
    }
    #[inline(always)]
    fn select_gt(self, a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b), y, x) }
    }
    #[inline(always)]
    fn select_ge(self, a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b), y, x) }
    }
}
