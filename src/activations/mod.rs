//! Vectorized sigmoid and tanh, one formula for every ISA plus a scalar
//! twin (the same code instantiated with one lane).
//!
//! # Error bounds
//!
//! Measured against an f64 reference over **every** finite f32 input (the
//! `#[ignore]`d `exhaustive_*` tests in `tests/activations.rs` sweep all
//! 2^32 bit patterns per ISA and print the worst input):
//!
//! | function | AVX-512 / AVX2 (FMA) | portable / scalar (no FMA) |
//! |---|---|---|
//! | [`sigmoid`] | see [`SIGMOID_MAX_ULP`] | same bound |
//! | [`tanh`] | see [`TANH_MAX_ULP`] | same bound |
//!
//! Results whose exact value is below `f32::MIN_POSITIVE` (subnormal) may be
//! flushed to 0; that is not counted as an error. `tanh` saturates to
//! exactly ±1 and `sigmoid` to exactly 1 (and 0 below -87.34); NaN in gives
//! NaN out; no input produces a subnormal intermediate or an overflow, so
//! there is no slow path.
//!
//! # Derivation
//!
//! `exp(v)`: Cody–Waite reduction `v = n ln2 + r`, `n = round(v log2 e)`,
//! with `ln2 = C1 + C2` (`C1 = 0.693359375` has 9 significant bits, so
//! `n * C1` is exact for `|n| <= 128` and the reduction loses nothing), then
//! the degree-7 Cephes `expf` polynomial `1 + r + r^2 P(r)` on
//! `|r| <= ln2/2` (relative error < 1.2e-8 in exact arithmetic), scaled by
//! `2^n` built in the exponent bits. The argument is clamped to
//! `[-87, 88]` first so `n` stays in `[-126, 127]`.
//!
//! `sigmoid(x) = 1 / (1 + exp(-x))`, with the clamp giving exactly 1 for
//! large x and an explicit 0 below `SIGMOID_ZERO` (where the true value is
//! subnormal).
//!
//! `tanh(x)`: for `|x| < 0.625` the Cephes `tanhf` odd polynomial
//! `x + x^3 P(x^2)` (no cancellation: the correction is under 12% of x);
//! above it `1 - 2 / (exp(2|x|) + 1)`, whose rounding errors are damped by
//! `2/(e^{2|x|}+1) < tanh(|x|)` there, with the sign restored by copysign.
//! `exp(2|x|)` is clamped to `exp(88)`, where `2/(e+1)` is far below half an
//! ULP of 1, giving exactly ±1.

// The polynomial coefficients are written as published (Cephes), with more
// digits than an f32 holds; the compiler rounds them once, as Cephes does.
#![allow(clippy::excessive_precision)]

use crate::config::Activation;
use crate::simd::Simd;

/// Max error of [`sigmoid`] and of every vectorized sigmoid, in ULP of the
/// correctly rounded result, over all finite f32 inputs (enforced by tests).
pub const SIGMOID_MAX_ULP: u32 = 2;
/// Max error of [`tanh`] and of every vectorized tanh, in ULP, over all
/// finite f32 inputs (enforced by tests).
pub const TANH_MAX_ULP: u32 = 2;

/// Below this, the true sigmoid is subnormal and the result is 0.
const SIGMOID_ZERO: f32 = -87.336_55;

#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, v: S::V) -> S::V {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_375;
    const C2: f32 = -2.121_944_4e-4;
    // Constant first: a NaN in `v` is the second operand and survives.
    let v = s.min(s.splat(88.0), s.max(s.splat(-87.0), v));
    let n = s.round(s.mul(v, s.splat(LOG2E)));
    let r = s.sub(v, s.mul(n, s.splat(C1)));
    let r = s.sub(r, s.mul(n, s.splat(C2)));
    let mut p = s.splat(1.987_569_1e-4);
    p = s.mul_add(p, r, s.splat(1.398_199_9e-3));
    p = s.mul_add(p, r, s.splat(8.333_452e-3));
    p = s.mul_add(p, r, s.splat(4.166_579_6e-2));
    p = s.mul_add(p, r, s.splat(1.666_666_5e-1));
    p = s.mul_add(p, r, s.splat(5.000_000_1e-1));
    let r2 = s.mul(r, r);
    let e = s.add(s.mul_add(p, r2, r), s.splat(1.0));
    s.mul(e, s.pow2i(n))
}

/// Logistic sigmoid, vectorized; see the module docs for the bound.
#[inline(always)]
pub(crate) fn sigmoid_v<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let e = exp(s, s.sub(s.zero(), x));
    let y = s.div(one, s.add(one, e));
    s.select_lt(x, s.splat(SIGMOID_ZERO), s.zero(), y)
}

/// Hyperbolic tangent, vectorized; see the module docs for the bound.
#[inline(always)]
pub(crate) fn tanh_v<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let ax = s.abs(x);
    // Small |x|: x + x^3 P(x^2).
    let z = s.mul(x, x);
    let mut p = s.splat(-5.704_988_7e-3);
    p = s.mul_add(p, z, s.splat(2.063_908_9e-2));
    p = s.mul_add(p, z, s.splat(-5.373_971_6e-2));
    p = s.mul_add(p, z, s.splat(1.333_144_2e-1));
    p = s.mul_add(p, z, s.splat(-3.333_328_2e-1));
    let small = s.mul_add(s.mul(p, z), x, x);
    // Large |x|: 1 - 2 / (exp(2|x|) + 1).
    let e = exp(s, s.add(ax, ax));
    let large = s.sub(one, s.div(s.splat(2.0), s.add(e, one)));
    s.select_lt(ax, s.splat(0.625), small, s.copysign(large, x))
}

/// Any ONNX activation, vectorized. Sigmoid and tanh use the fast kernels
/// above; the piecewise-linear ones are exact vector code; Elu and
/// Softplus go through f64 per lane (a slow path only non-default models
/// take).
#[inline(always)]
pub(crate) fn activation_v<S: Simd>(s: S, a: Activation, x: S::V) -> S::V {
    match a {
        Activation::Sigmoid => sigmoid_v(s, x),
        Activation::Tanh => tanh_v(s, x),
        Activation::Relu => s.max(s.zero(), x),
        Activation::Affine { alpha, beta } => s.mul_add(s.splat(alpha), x, s.splat(beta)),
        Activation::LeakyRelu { alpha } => s.select_ge(x, s.zero(), x, s.mul(s.splat(alpha), x)),
        Activation::ThresholdedRelu { alpha } => s.select_gt(x, s.splat(alpha), x, s.zero()),
        Activation::ScaledTanh { alpha, beta } => {
            s.mul(s.splat(alpha), tanh_v(s, s.mul(s.splat(beta), x)))
        }
        Activation::HardSigmoid { alpha, beta } => {
            let v = s.mul_add(s.splat(alpha), x, s.splat(beta));
            s.min(s.splat(1.0), s.max(s.zero(), v))
        }
        Activation::Softsign => s.div(x, s.add(s.splat(1.0), s.abs(x))),
        Activation::Elu { .. } | Activation::Softplus => s.map(x, |v| {
            crate::reference::activations::eval(a, v as f64) as f32
        }),
    }
}

/// Logistic sigmoid of one f32: the scalar twin of the vector kernels
/// (same formula). Max error [`SIGMOID_MAX_ULP`] ULP over all finite inputs.
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_v(crate::simd::portable::Scalar, x)
}

/// Hyperbolic tangent of one f32: the scalar twin of the vector kernels
/// (same formula). Max error [`TANH_MAX_ULP`] ULP over all finite inputs.
pub fn tanh(x: f32) -> f32 {
    tanh_v(crate::simd::portable::Scalar, x)
}

/// Which function [`apply`] evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// [`sigmoid`]
    Sigmoid,
    /// [`tanh`]
    Tanh,
}

#[inline(always)]
fn apply_generic<S: Simd>(s: S, f: Function, xs: &mut [f32]) {
    let l = S::LANES;
    let mut chunks = xs.chunks_exact_mut(l);
    for c in &mut chunks {
        // SAFETY: `c` has exactly LANES elements.
        let v = unsafe { s.load(c.as_ptr()) };
        let y = match f {
            Function::Sigmoid => sigmoid_v(s, v),
            Function::Tanh => tanh_v(s, v),
        };
        // SAFETY: `c` has exactly LANES elements.
        unsafe { s.store(c.as_mut_ptr(), y) };
    }
    for x in chunks.into_remainder() {
        *x = match f {
            Function::Sigmoid => sigmoid(*x),
            Function::Tanh => tanh(*x),
        };
    }
}

/// Applies `f` in place with kernel family `family`'s vector code (the
/// tail shorter than a vector uses the scalar twin). For testing and
/// measuring each ISA's activations; a typed error if the family is not
/// available here.
pub fn apply(family: crate::KernelFamily, f: Function, xs: &mut [f32]) -> crate::Result<()> {
    crate::kernels::with_isa(family, |isa| match isa {
        crate::kernels::Isa::Scalar => {
            for x in xs.iter_mut() {
                *x = match f {
                    Function::Sigmoid => sigmoid(*x),
                    Function::Tanh => tanh(*x),
                };
            }
        }
        crate::kernels::Isa::Portable(s) => apply_generic(s, f, xs),
        #[cfg(target_arch = "x86_64")]
        crate::kernels::Isa::Avx2(s) => {
            /// # Safety
            /// The `Avx2` token proves AVX2 and FMA.
            #[target_feature(enable = "avx2,fma")]
            unsafe fn go(s: crate::simd::x86_64::Avx2, f: Function, xs: &mut [f32]) {
                apply_generic(s, f, xs)
            }
            // SAFETY: `s` is an `Avx2` token, so the CPU has AVX2 and FMA.
            unsafe { go(s, f, xs) }
        }
        #[cfg(target_arch = "x86_64")]
        crate::kernels::Isa::Avx512(s) => {
            /// # Safety
            /// The `Avx512` token proves AVX-512F, AVX2 and FMA.
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn go(s: crate::simd::x86_64::Avx512, f: Function, xs: &mut [f32]) {
                apply_generic(s, f, xs)
            }
            // SAFETY: `s` is an `Avx512` token, so the CPU has the features.
            unsafe { go(s, f, xs) }
        }
    })
}
