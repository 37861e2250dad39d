//! aarch64 NEON (Advanced SIMD): 4 lanes, 32 vector registers.
//!
//! NEON is part of the aarch64 base ISA and the `aarch64-*` targets with
//! std compile with it enabled, so the kernels need no `#[target_feature]`
//! entry points (this module exists only when `target_feature = "neon"` is
//! on). The token still checks at run time, like the x86 ones.
//!
//! Every method maps to one or two instructions: FMLA for `mul_add`
//! (fused, as on AVX2/AVX-512), BSL selects with x86's NaN behaviour for
//! min/max (see [`crate::simd`]), FRINTN for ties-to-even rounding, FCVTL
//! for binary16 (base ARMv8.0; through `asm!` because Rust's `float16x4_t`
//! intrinsics are not stable).

use std::arch::aarch64::*;

use crate::simd::Simd;

/// Proof that the CPU has NEON. Only [`Neon::new`] creates one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Neon(());

impl Neon {
    /// The token, if this CPU has NEON (every aarch64 CPU Linux and macOS
    /// run on does).
    pub(crate) fn new() -> Option<Neon> {
        if std::arch::is_aarch64_feature_detected!("neon") {
            Some(Neon(()))
        } else {
            None
        }
    }
}

impl Simd for Neon {
    type V = float32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vdupq_n_f32(x) }
    }
    /// # Safety
    /// The contract of [`Simd::load`].
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        // SAFETY: the caller guarantees 4 readable floats at `p` (LD1 needs
        // only the element's alignment, which an f32 pointer has); the
        // token proves NEON.
        unsafe { vld1q_f32(p) }
    }
    /// # Safety
    /// The contract of [`Simd::load_bf16_pair`].
    #[inline(always)]
    unsafe fn load_bf16_pair(self, p: *const u16, second: bool) -> float32x4_t {
        // SAFETY: the caller guarantees 8 readable u16 at `p` (loaded as
        // u16 elements, so a 2-byte aligned pointer suffices); the token
        // proves NEON.
        unsafe {
            let x = vreinterpretq_u32_u16(vld1q_u16(p));
            let bits = if second {
                vandq_u32(x, vdupq_n_u32(0xffff_0000))
            } else {
                vshlq_n_u32::<16>(x)
            };
            vreinterpretq_f32_u32(bits)
        }
    }
    /// # Safety
    /// The contract of [`Simd::load_f16`].
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> float32x4_t {
        // SAFETY: the caller guarantees 4 readable u16 at `p`; the token
        // proves NEON.
        let h = unsafe { vld1_u16(p) };
        let r: float32x4_t;
        // SAFETY: FCVTL (binary16 to binary32, exact) is base ARMv8.0
        // Advanced SIMD; it reads and writes registers only.
        unsafe {
            std::arch::asm!(
                "fcvtl {r:v}.4s, {h:v}.4h",
                r = out(vreg) r,
                h = in(vreg) h,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        r
    }
    /// # Safety
    /// The contract of [`Simd::load_i8`].
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> float32x4_t {
        // SAFETY: the caller guarantees 4 readable i8 at `p`; read as one
        // unaligned u32.
        let w = unsafe { p.cast::<u32>().read_unaligned() };
        // SAFETY: the token proves NEON.
        unsafe {
            let b = vreinterpret_s8_u32(vdup_n_u32(w));
            vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(b))))
        }
    }
    #[inline(always)]
    fn cvt_i32(self, v: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vcvtq_f32_s32(vreinterpretq_s32_f32(v)) }
    }
    /// # Safety
    /// The contract of [`Simd::store_low_bytes`].
    #[inline(always)]
    unsafe fn store_low_bytes(self, p: *mut i8, v: float32x4_t) {
        // SAFETY: the caller guarantees 4 writable bytes at `p` (written as
        // one unaligned u32); the token proves NEON. Two narrowing moves
        // keep each lane's low byte.
        unsafe {
            let h = vmovn_u32(vreinterpretq_u32_f32(v));
            let b = vmovn_u16(vcombine_u16(h, h));
            let w = vget_lane_u32::<0>(vreinterpret_u32_u8(b));
            p.cast::<u32>().write_unaligned(w)
        }
    }
    /// # Safety
    /// The contract of [`Simd::store`].
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        // SAFETY: the caller guarantees 4 writable floats at `p`; the token
        // proves NEON.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vbslq_f32(vcltq_f32(a, b), a, b) }
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vbslq_f32(vcgtq_f32(a, b), a, b) }
    }
    #[inline(always)]
    fn abs(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vabsq_f32(a) }
    }
    #[inline(always)]
    fn copysign(self, mag: float32x4_t, sign: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vbslq_f32(vdupq_n_u32(0x8000_0000), sign, mag) }
    }
    #[inline(always)]
    fn round(self, a: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vrndnq_f32(a) }
    }
    #[inline(always)]
    fn pow2i(self, n: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe {
            let e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
            vreinterpretq_f32_s32(vshlq_n_s32::<23>(e))
        }
    }
    #[inline(always)]
    fn select_lt(
        self,
        a: float32x4_t,
        b: float32x4_t,
        x: float32x4_t,
        y: float32x4_t,
    ) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vbslq_f32(vcltq_f32(a, b), x, y) }
    }
    #[inline(always)]
    fn select_gt(
        self,
        a: float32x4_t,
        b: float32x4_t,
        x: float32x4_t,
        y: float32x4_t,
    ) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vbslq_f32(vcgtq_f32(a, b), x, y) }
    }
    #[inline(always)]
    fn select_ge(
        self,
        a: float32x4_t,
        b: float32x4_t,
        x: float32x4_t,
        y: float32x4_t,
    ) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vbslq_f32(vcgeq_f32(a, b), x, y) }
    }
}
