//! The int8-dynamic product ([`crate::WeightFormat::Int8Dynamic`]): int8
//! weights times int8 activations, summed exactly in i32.
//!
//! Panels of this format store each block as `[K/4][2][G][LANES][4]` bytes
//! (`NR = 2 * LANES` units per gate, in two halves): for every four
//! consecutive `k`, each unit's four weights are adjacent, so one 32-bit
//! lane of a vector holds one unit's four weights, and the first half of
//! every gate comes before the second (a half-block tile, one half of each
//! gate, reads `G` contiguous vectors per four `k`, not every other one:
//! 1.54 -> 1.95 `vpdpbusd` per cycle from L2 in a model on Zen 5); an
//! instruction that multiplies four byte pairs per lane and adds them into
//! that lane (`vpdpbusd`) consumes `4 * LANES` weights at a time. A row's
//! activations are quantized once per step (`quant::quantize`: the bytes
//! of `weights::quantize_activations`) and four of them are broadcast to
//! every lane.
//!
//! Each ISA supplies one [`QDot`]: AVX-512 VNNI `vpdpbusd` (unsigned times
//! signed: the activations are stored `+128`, and the sums start from the
//! panel's correction `-128 * Σ q_w` instead of 0); AVX2 (and AVX-512 without
//! VNNI) `vpsignb` + `vpmaddubsw` + `vpmaddwd` on `|x|` and `w * sign(x)`,
//! whose 16-bit pair sums (at most `2 * 127 * 127 = 32258`) never
//! saturate; NEON widening multiplies; plain Rust. All are exact, so every
//! family's integer sums are identical.

// Index loops over the small register arrays (gate x half x row) read
// closer to the math than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::dot::Acc;
use crate::simd::Simd;

/// Byte offset, within one group of four `k` of a block with `g` gates and
/// `lanes` units per half gate, of the first unit of half `half` (0 or 1)
/// of gate `gate`: the `[2][G][LANES][4]` layout the packer writes and
/// [`dot_q`] reads (each unit's four weights are then 4 bytes apart).
#[inline(always)]
pub(crate) const fn group_at(g: usize, lanes: usize, half: usize, gate: usize) -> usize {
    (half * g + gate) * lanes * 4
}

/// One ISA's step of the integer product: per lane (one unit), add the four
/// products of its four int8 weights with a row's four activations.
pub(crate) trait QDot<S: Simd>: Copy {
    /// The sums start from the panel's correction `-128 * Σ_k q_w` (the
    /// ISA multiplies unsigned activations, `q_x + 128`, which the
    /// quantizer stores so: `Kernel::q_biased`).
    const OFFSET: bool;
    /// A row's four activations as the ISA multiplies them, prepared once
    /// per four `k` and used by every weight vector.
    type B: Copy;
    /// Prepares four activations (bytes of `x4` in memory order).
    fn bcast(self, s: S, x4: i32) -> Self::B;
    /// `acc` (i32 lanes, as bits) plus, per lane `i`, the sum over `j < 4`
    /// of `x[j] * w[4 * i + j]`.
    ///
    /// # Safety
    /// `w` is valid for reading `4 * LANES` bytes.
    unsafe fn dot(self, s: S, acc: S::V, b: Self::B, w: *const i8) -> S::V;
}

/// `acc[m][g][v]` = the i32 sums (as bits) of units `(v0 + v) * LANES ..`
/// of gate `g` over the whole block (`k4` groups of four `k`) for row `m`.
///
/// # Safety
/// `blk` points to a block of int8-dynamic panels with `G` gates, `NR = 2 *
/// LANES` and `k4` groups; `corr` to its `G * NR` corrections; `v0 + NV <=
/// 2`; each `q[m]` is valid for reading `4 * k4` bytes.
#[inline(always)]
pub(crate) unsafe fn dot_q<
    S: Simd,
    D: QDot<S>,
    const G: usize,
    const MB: usize,
    const NV: usize,
>(
    s: S,
    d: D,
    blk: *const i8,
    corr: *const i32,
    v0: usize,
    k4: usize,
    q: [*const i8; MB],
) -> [Acc<S::V, G, NV>; MB] {
    let l = S::LANES;
    let nr = 2 * l;
    // Zero bits are the integer 0.
    let mut acc = [[[s.zero(); NV]; G]; MB];
    if D::OFFSET {
        for g in 0..G {
            for v in 0..NV {
                // SAFETY: corr holds G * NR i32; g < G and v0 + v < 2, so
                // the LANES read end within gate g's NR.
                let c = unsafe { s.load(corr.add(g * nr + (v0 + v) * l).cast::<f32>()) };
                for m in 0..MB {
                    acc[m][g][v] = c;
                }
            }
        }
    }
    let mut wp = blk;
    for kk in 0..k4 {
        let b: [D::B; MB] = std::array::from_fn(|m| {
            // SAFETY: q[m] holds 4 * k4 bytes and kk < k4.
            let x4 = unsafe { q[m].add(4 * kk).cast::<i32>().read_unaligned() };
            d.bcast(s, x4)
        });
        for v in 0..NV {
            for g in 0..G {
                // SAFETY: `wp` is group kk of the block (kk < k4), which
                // holds G * NR * 4 = 2 * G * LANES * 4 bytes; half v0 + v <
                // 2 of gate g < G reads 4 * LANES bytes from `group_at` =
                // ((v0 + v) * G + g) * LANES * 4, ending within the group.
                let w = unsafe { wp.add(group_at(G, l, v0 + v, g)) };
                for m in 0..MB {
                    // SAFETY: w is valid for 4 * LANES bytes (above).
                    acc[m][g][v] = unsafe { d.dot(s, acc[m][g][v], b[m], w) };
                }
            }
        }
        wp = wp.wrapping_add(G * nr * 4);
    }
    acc
}

/// Plain Rust: eight i32 lanes kept as the bits of `[f32; 8]`.
#[derive(Clone, Copy)]
pub(crate) struct PortableQ;

impl QDot<crate::simd::portable::Portable> for PortableQ {
    const OFFSET: bool = false;
    type B = [i32; 4];
    #[inline(always)]
    fn bcast(self, _: crate::simd::portable::Portable, x4: i32) -> [i32; 4] {
        x4.to_ne_bytes().map(|b| i32::from(b as i8))
    }
    /// # Safety
    /// The contract of [`QDot::dot`].
    #[inline(always)]
    unsafe fn dot(
        self,
        _: crate::simd::portable::Portable,
        acc: [f32; 8],
        b: [i32; 4],
        w: *const i8,
    ) -> [f32; 8] {
        // SAFETY: the caller guarantees 4 * 8 readable bytes at `w`.
        let w = unsafe { w.cast::<[i8; 32]>().read_unaligned() };
        std::array::from_fn(|i| {
            let mut a = acc[i].to_bits() as i32;
            for j in 0..4 {
                // Exact: |sum| < 2^31 (INT8_DYNAMIC_MAX_K).
                a = a.wrapping_add(b[j] * i32::from(w[4 * i + j]));
            }
            f32::from_bits(a as u32)
        })
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx512Q, Avx512Vnni, SignQ};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::QDot;
    use crate::simd::x86_64::{isa_features, Avx2, Avx512};

    /// AVX2's signed product of four byte pairs per 32-bit lane: `|x|`
    /// (unsigned) times `w * sign(x)` by `vpmaddubsw` (pair sums at most
    /// 32258: no saturation), pairs summed by `vpmaddwd` with ones.
    ///
    /// # Safety
    /// The CPU has AVX2 (callers hold an AVX2 or AVX-512 token).
    #[inline(always)]
    unsafe fn sign_dot(acc: __m256i, b: (__m256i, __m256i), w: __m256i) -> __m256i {
        // SAFETY: AVX2 (the caller's contract).
        unsafe {
            let t = _mm256_sign_epi8(w, b.1);
            let p = _mm256_maddubs_epi16(b.0, t);
            _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
        }
    }

    /// `(|x|, x)` broadcast: the operands of [`sign_dot`].
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[inline(always)]
    unsafe fn sign_bcast(x4: i32) -> (__m256i, __m256i) {
        // SAFETY: AVX2 (the caller's contract).
        unsafe {
            let x = _mm256_set1_epi32(x4);
            (_mm256_abs_epi8(x), x)
        }
    }

    /// The AVX2 product ([`sign_dot`]).
    #[derive(Clone, Copy)]
    pub(crate) struct SignQ;

    impl QDot<Avx2> for SignQ {
        const OFFSET: bool = false;
        type B = (__m256i, __m256i);
        #[inline(always)]
        fn bcast(self, _: Avx2, x4: i32) -> (__m256i, __m256i) {
            // SAFETY: the Avx2 token proves AVX2.
            unsafe { sign_bcast(x4) }
        }
        /// # Safety
        /// The contract of [`QDot::dot`].
        #[inline(always)]
        unsafe fn dot(self, _: Avx2, acc: __m256, b: (__m256i, __m256i), w: *const i8) -> __m256 {
            // SAFETY: 32 readable bytes at `w` (the caller's contract); the
            // token proves AVX2.
            unsafe {
                let w = _mm256_loadu_si256(w.cast());
                _mm256_castsi256_ps(sign_dot(_mm256_castps_si256(acc), b, w))
            }
        }
    }

    /// AVX-512 without VNNI: [`sign_dot`] on each 256-bit half.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512Q;

    impl QDot<Avx512> for Avx512Q {
        const OFFSET: bool = false;
        type B = (__m256i, __m256i);
        #[inline(always)]
        fn bcast(self, _: Avx512, x4: i32) -> (__m256i, __m256i) {
            // SAFETY: the Avx512 token proves AVX2 too.
            unsafe { sign_bcast(x4) }
        }
        /// # Safety
        /// The contract of [`QDot::dot`].
        #[inline(always)]
        unsafe fn dot(self, _: Avx512, acc: __m512, b: (__m256i, __m256i), w: *const i8) -> __m512 {
            // SAFETY: 64 readable bytes at `w` (the caller's contract); the
            // token proves AVX-512F and AVX2.
            unsafe {
                let a = _mm512_castps_si512(acc);
                let lo = sign_dot(_mm512_castsi512_si256(a), b, _mm256_loadu_si256(w.cast()));
                let hi = sign_dot(
                    _mm512_extracti64x4_epi64::<1>(a),
                    b,
                    _mm256_loadu_si256(w.add(32).cast()),
                );
                _mm512_castsi512_ps(_mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi))
            }
        }
    }

    /// AVX-512 VNNI: one `vpdpbusd` per 64 weights. Only [`Avx512Vnni::new`]
    /// creates one, when the CPU has VNNI (detected once).
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512Vnni(());

    impl Avx512Vnni {
        /// The token, if this CPU has AVX-512 VNNI (checked once per
        /// process). The environment variable `FUSEDRNN_NO_VNNI` (any
        /// value) makes it answer no, so a VNNI host can test the AVX-512
        /// kernels' other product (`.ci/run` does).
        pub(crate) fn new() -> Option<Avx512Vnni> {
            static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            HAS.get_or_init(|| {
                isa_features!(avx512vnni detect) && std::env::var_os("FUSEDRNN_NO_VNNI").is_none()
            })
            .then_some(Avx512Vnni(()))
        }
    }

    impl QDot<Avx512> for Avx512Vnni {
        const OFFSET: bool = true;
        type B = __m512i;
        #[inline(always)]
        fn bcast(self, _: Avx512, x4: i32) -> __m512i {
            // SAFETY: the Avx512 token proves AVX-512F. The bytes arrive
            // biased by 128 (unsigned; `Kernel::q_biased`), so this is a
            // plain broadcast (from memory: no shuffle-port uop).
            unsafe { _mm512_set1_epi32(x4) }
        }
        /// # Safety
        /// The contract of [`QDot::dot`].
        #[inline(always)]
        unsafe fn dot(self, _: Avx512, acc: __m512, b: __m512i, w: *const i8) -> __m512 {
            // SAFETY: 64 readable bytes at `w` (the caller's contract); an
            // Avx512Vnni value proves VNNI, the Avx512 token AVX-512F.
            unsafe {
                let w = _mm512_loadu_si512(w.cast());
                _mm512_castsi512_ps(_mm512_dpbusd_epi32(_mm512_castps_si512(acc), b, w))
            }
        }
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) use arm::NeonQ;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod arm {
    use std::arch::aarch64::*;

    use super::QDot;
    use crate::simd::aarch64::Neon;

    /// NEON: weights and activations widened to 16 bits, widening
    /// multiplies to 32, pairwise adds down to one sum per lane.
    #[derive(Clone, Copy)]
    pub(crate) struct NeonQ;

    impl QDot<Neon> for NeonQ {
        const OFFSET: bool = false;
        type B = int16x8_t;
        #[inline(always)]
        fn bcast(self, _: Neon, x4: i32) -> int16x8_t {
            // SAFETY: the token proves NEON. Bytes x0..x3 twice, widened.
            unsafe { vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(x4))) }
        }
        /// # Safety
        /// The contract of [`QDot::dot`].
        #[inline(always)]
        unsafe fn dot(self, _: Neon, acc: float32x4_t, b: int16x8_t, w: *const i8) -> float32x4_t {
            // SAFETY: 16 readable bytes at `w` (the caller's contract); the
            // token proves NEON.
            unsafe {
                let w = vld1q_s8(w);
                let lo = vmovl_s8(vget_low_s8(w));
                let hi = vmovl_high_s8(w);
                let p0 = vmull_s16(vget_low_s16(lo), vget_low_s16(b));
                let p1 = vmull_high_s16(lo, b);
                let p2 = vmull_s16(vget_low_s16(hi), vget_low_s16(b));
                let p3 = vmull_high_s16(hi, b);
                let sum = vpaddq_s32(vpaddq_s32(p0, p1), vpaddq_s32(p2, p3));
                vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(acc), sum))
            }
        }
    }
}
