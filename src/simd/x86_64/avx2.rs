//! AVX2 + FMA: 8 lanes.

use std::arch::x86_64::*;

use crate::simd::Simd;

/// Proof that the CPU supports AVX2, FMA and F16C (every AVX2 CPU from Intel
/// and AMD has F16C). Only [`Avx2::new`] creates one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, if this CPU has the features.
    pub(crate) fn new() -> Option<Avx2> {
        if super::isa_features!(avx2 detect) {
            Some(Avx2(()))
        } else {
            None
        }
    }
}

#[inline(always)]
fn sign_mask() -> __m256 {
    // SAFETY: AVX; only reached through an `Avx2` token.
    unsafe { _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)) }
}

// Every method below calls AVX/AVX2/FMA intrinsics. They are safe to call
// because an `Avx2` value exists only when `Avx2::new` saw the features.
impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_set1_ps(x) }
    }
    /// # Safety
    /// The contract of [`Simd::load`].
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees 8 readable floats; the token proves AVX2.
        unsafe { _mm256_loadu_ps(p) }
    }
    /// # Safety
    /// The contract of [`Simd::load_bf16_pair`].
    #[inline(always)]
    unsafe fn load_bf16_pair(self, p: *const u16, second: bool) -> __m256 {
        // SAFETY: the caller guarantees 16 readable u16 (32 bytes); the
        // token proves AVX2.
        unsafe {
            let x = _mm256_loadu_si256(p as *const __m256i);
            let bits = if second {
                _mm256_and_si256(x, _mm256_set1_epi32(0xffff_0000_u32 as i32))
            } else {
                _mm256_slli_epi32::<16>(x)
            };
            _mm256_castsi256_ps(bits)
        }
    }
    /// # Safety
    /// The contract of [`Simd::load_f16`].
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees 8 readable u16 (16 bytes); the
        // token proves F16C.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
    }
    /// # Safety
    /// The contract of [`Simd::load_i8`].
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> __m256 {
        // SAFETY: the caller guarantees 8 readable i8 (8 bytes, one 64-bit
        // load); the token proves AVX2.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i))) }
    }
    #[inline(always)]
    fn cvt_i32(self, v: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_cvtepi32_ps(_mm256_castps_si256(v)) }
    }
    /// # Safety
    /// The contract of [`Simd::store`].
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: the caller guarantees 8 writable floats; the token proves AVX2.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    /// # Safety
    /// The contract of [`Simd::store_low_bytes`].
    #[inline(always)]
    unsafe fn store_low_bytes(self, p: *mut i8, v: __m256) {
        // SAFETY: the caller guarantees 8 writable bytes (one 64-bit
        // store); the token proves AVX2. Each 128-bit half gathers its
        // lanes' low bytes into its first 32 bits (the other bytes of the
        // shuffle are zeroed by -1 indices), then dwords 0 and 4 are moved
        // to the bottom.
        unsafe {
            let pick = _mm256_setr_epi8(
                0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1,
                -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
            );
            let b = _mm256_shuffle_epi8(_mm256_castps_si256(v), pick);
            let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
            _mm_storel_epi64(p.cast(), _mm256_castsi256_si128(b))
        }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: the token proves FMA.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_and_ps(a, sign_mask()) }
    }
    #[inline(always)]
    fn copysign(self, mag: __m256, sign: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let m = sign_mask();
            _mm256_or_ps(_mm256_and_ps(mag, m), _mm256_andnot_ps(m, sign))
        }
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn select_lt(self, a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)) }
    }
    #[inline(always)]
    fn select_gt(self, a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)) }
    }
    #[inline(always)]
    fn select_ge(self, a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GE_OQ>(a, b)) }
    }
}
