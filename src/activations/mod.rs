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
//! there is no slow path (Intel cores take a microcode assist, ~100x, for
//! each FMA with a subnormal operand or result): where a polynomial's
//! powers of a tiny argument would underflow, the argument is below the
//! point where the result rounds to its first term, and the polynomial runs
//! on 0 instead (same result, bit for bit).
//!
//! # Derivation
//!
//! `exp(v)`: Cody–Waite reduction `v = n ln2 + r`, `n = round(v log2 e)`,
//! with `ln2 = C1 + C2` (`C1 = 0.693359375` has 9 significant bits, so
//! `n * C1` is exact for `|n| <= 128` and the reduction loses nothing;
//! `v - n C1` is one fused multiply-add, which rounds as a separate exact
//! product and difference would), then
//! the degree-7 Cephes `expf` polynomial `1 + r + r^2 P(r)` on
//! `|r| <= ln2/2` (relative error < 1.2e-8 in exact arithmetic), scaled by
//! `2^n` built in the exponent bits (AVX-512: `vscalefps`, one instruction
//! for the same exact product; the outputs of all 2^32 inputs are
//! bit-identical to AVX2's, checked with the sweep digests). The argument
//! is clamped to `[-87, 88]` first so `n` stays in `[-126, 127]`.
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
//! ULP of 1, giving exactly ±1, and its argument raised to at least 1.25
//! (the lanes below 0.625 take the polynomial), so it needs none of `exp`'s
//! guards for tiny or very negative arguments: three instructions fewer,
//! the same results (equal sweep digests for all 2^32 inputs).

// The polynomial coefficients are written as published (Cephes), with more
// digits than an f32 holds; the compiler rounds them once, as Cephes does.
#![allow(clippy::excessive_precision)]

use crate::config::Activation;
use crate::simd::Simd;

#[cfg(feature = "testing")]
mod apply;
#[cfg(feature = "testing")]
pub use apply::{apply, Function};

/// Max error of [`sigmoid`] and of every vectorized sigmoid, in ULP of the
/// correctly rounded result, over all finite f32 inputs (enforced by tests).
pub const SIGMOID_MAX_ULP: u32 = 2;
/// Max error of [`tanh`] and of every vectorized tanh, in ULP, over all
/// finite f32 inputs (enforced by tests).
pub const TANH_MAX_ULP: u32 = 2;

/// `exp`'s argument below this in magnitude is taken as 0 (exactly 1 out).
const TINY_EXP: f32 = 1.0 / (1u32 << 26) as f32;
/// `tanh(x)` is `x` below this (2^-12) in magnitude.
const TINY_TANH: f32 = 1.0 / (1u32 << 12) as f32;
/// `expm1(x)` is `x` below this (2^-25) in magnitude.
const TINY_EXPM1: f32 = 1.0 / (1u32 << 25) as f32;
/// `2 atanh(t)` is `2t` below this (2^-13).
const TINY_ATANH: f32 = 1.0 / (1u32 << 13) as f32;

/// Below this, the true sigmoid is subnormal and the result is 0.
const SIGMOID_ZERO: f32 = -87.336_55;

#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, v: S::V) -> S::V {
    // |v| < 2^-26 as 0: exp(v) rounds to 1 there either way, and the
    // polynomial's powers of a tiny r would underflow (subnormal
    // intermediates take microcode assists on Intel cores).
    let v = s.select_lt(s.abs(v), s.splat(TINY_EXP), s.zero(), v);
    // Constant first: a NaN in `v` is the second operand and survives.
    exp_above(s, s.max(s.splat(-87.0), v))
}

/// [`exp`] of `v >= -87` (or NaN) that is 0 or at least `TINY_EXP` in
/// magnitude (the caller keeps tiny and very negative arguments away):
/// clamped above at 88 as [`exp`] does, so exactly [`exp`]'s result.
#[inline(always)]
fn exp_above<S: Simd>(s: S, v: S::V) -> S::V {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_375;
    const C2: f32 = -2.121_944_4e-4;
    // Constant first: NaN survives.
    let v = s.min(s.splat(88.0), v);
    let n = s.round(s.mul(v, s.splat(LOG2E)));
    // n * C1 is exact, so one fused step rounds the same as mul then sub.
    let r = s.mul_add(n, s.splat(-C1), v);
    let r = s.sub(r, s.mul(n, s.splat(C2)));
    let mut p = s.splat(1.987_569_1e-4);
    p = s.mul_add(p, r, s.splat(1.398_199_9e-3));
    p = s.mul_add(p, r, s.splat(8.333_452e-3));
    p = s.mul_add(p, r, s.splat(4.166_579_6e-2));
    p = s.mul_add(p, r, s.splat(1.666_666_5e-1));
    p = s.mul_add(p, r, s.splat(5.000_000_1e-1));
    let r2 = s.mul(r, r);
    let e = s.add(s.mul_add(p, r2, r), s.splat(1.0));
    // e in [0.70, 1.42] and n in [-126, 127] with n = -126 only for v
    // near -87, where e > 1: the product is normal.
    s.mul_pow2i(e, n)
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
    // Small |x|: x + x^3 P(x^2). Below 2^-12 the correction is under half
    // an ULP (x^2/3 < 2^-25.6 relative), so the result is x; the polynomial
    // then runs on 0 instead of x, whose powers would underflow.
    let xp = s.select_lt(ax, s.splat(TINY_TANH), s.zero(), x);
    let z = s.mul(xp, xp);
    let mut p = s.splat(-5.704_988_7e-3);
    p = s.mul_add(p, z, s.splat(2.063_908_9e-2));
    p = s.mul_add(p, z, s.splat(-5.373_971_6e-2));
    p = s.mul_add(p, z, s.splat(1.333_144_2e-1));
    p = s.mul_add(p, z, s.splat(-3.333_328_2e-1));
    let small = s.mul_add(s.mul(p, z), xp, x);
    // Large |x|: 1 - 2 / (exp(2|x|) + 1). Only |x| >= 0.625 keeps it, so
    // exp's argument is raised to at least 1.25 (no lane takes exp's tiny
    // or negative path): the same values where it is kept, three
    // instructions fewer than `exp`.
    let e = exp_above(s, s.max(s.splat(1.25), s.add(ax, ax)));
    let large = s.sub(one, s.div(s.splat(2.0), s.add(e, one)));
    s.select_lt(ax, s.splat(0.625), small, s.copysign(large, x))
}

/// `exp(x) - 1` for `x <= 0` (the negative branch of Elu), vectorized: the
/// Taylor series to degree 9 on `[-0.35, 0]`, where `exp(x) - 1` would
/// cancel (the first dropped term is below 2^-32 of the result), and
/// `exp(x) - 1` below it, where the result is under -0.29 and the
/// subtraction is exact enough (see [`ELU_MAX_ULP`]). Saturates to -1.
#[inline(always)]
fn expm1_neg<S: Simd>(s: S, x: S::V) -> S::V {
    // 1/k! for k = 9 down to 2.
    const INV_FACT: [f32; 8] = [
        2.755_732e-6,
        2.480_158_7e-5,
        1.984_127e-4,
        1.388_888_9e-3,
        8.333_333e-3,
        4.166_666_8e-2,
        1.666_666_7e-1,
        0.5,
    ];
    let mut p = s.splat(INV_FACT[0]);
    for &c in &INV_FACT[1..] {
        p = s.mul_add(p, x, s.splat(c));
    }
    // x + x^2 (1/2 + x/6 + ...)
    // Below 2^-25 the result rounds to x (x/2 < 2^-26 relative); the
    // polynomial runs on 0 there, not on powers of x that would underflow.
    let xp = s.select_lt(s.abs(x), s.splat(TINY_EXPM1), s.zero(), x);
    let small = s.mul_add(s.mul(p, xp), xp, x);
    let large = s.sub(exp(s, x), s.splat(1.0));
    s.select_lt(x, s.splat(-0.35), large, small)
}

/// Elu, `x` for `x >= 0` else `alpha (exp(x) - 1)`, vectorized; max error
/// [`ELU_MAX_ULP`] ULP for `alpha = 1` over all finite inputs (one more
/// rounding, half an ULP, for other `alpha`). NaN in gives NaN out.
#[inline(always)]
pub(crate) fn elu_v<S: Simd>(s: S, alpha: f32, x: S::V) -> S::V {
    // expm1_neg of min(x, 0): the positive branch never reaches exp.
    let neg = s.mul(s.splat(alpha), expm1_neg(s, s.min(s.zero(), x)));
    s.select_ge(x, s.zero(), x, neg)
}

/// Softplus, `log(1 + exp(x))`, vectorized as
/// `max(x, 0) + log1p(exp(-|x|))` so that neither term overflows or
/// cancels, with `log1p(u) = 2 atanh(u / (2 + u))`: `s = u / (2 + u)` lies in
/// `(0, 1/3]`, where `2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...)` to `s^14`
/// leaves a relative remainder below 2^-26. Max error
/// [`SOFTPLUS_MAX_ULP`] ULP over all finite inputs; 0 below
/// `SIGMOID_ZERO`, where the true value is subnormal; NaN in gives NaN out.
#[inline(always)]
pub(crate) fn softplus_v<S: Simd>(s: S, x: S::V) -> S::V {
    /// e^-16, rounded to f32.
    const E_M16: f32 = 1.125_351_7e-7;
    // 1/(2k+1) for k = 7 down to 1.
    const INV_ODD: [f32; 7] = [
        1.0 / 15.0,
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
    ];
    // u = exp(-|x|); below -87, where `exp` clamps its argument (to keep
    // every intermediate normal), as exp(-|x| + 16) e^-16.
    let nx = s.sub(s.zero(), s.abs(x));
    let u_tail = s.mul(exp(s, s.add(nx, s.splat(16.0))), s.splat(E_M16));
    let u = s.select_lt(nx, s.splat(-87.0), u_tail, exp(s, nx));
    let t = s.div(u, s.add(s.splat(2.0), u));
    // Below 2^-13, 2 atanh(t) rounds to 2t (t^2/3 < 2^-27 relative); the
    // series runs on 0 there instead of t^2, which would underflow.
    let tp = s.select_lt(t, s.splat(TINY_ATANH), s.zero(), t);
    let z = s.mul(tp, tp);
    let mut p = s.splat(INV_ODD[0]);
    for &c in &INV_ODD[1..] {
        p = s.mul_add(p, z, s.splat(c));
    }
    let t2 = s.add(t, t);
    let log1p = s.mul_add(s.mul(t2, z), p, t2);
    // Constant first: a NaN x is the second operand and survives.
    let y = s.add(s.max(s.zero(), x), log1p);
    s.select_lt(x, s.splat(SIGMOID_ZERO), s.zero(), y)
}

/// Max error of the vectorized Elu (`alpha = 1`), in ULP, over all finite
/// f32 inputs (enforced by tests).
pub const ELU_MAX_ULP: u32 = 1;
/// Max error of the vectorized Softplus, in ULP, over all finite f32
/// inputs (enforced by tests).
pub const SOFTPLUS_MAX_ULP: u32 = 3;

/// Any ONNX activation, vectorized. Sigmoid and tanh use the fast kernels
/// above; the piecewise-linear ones are exact vector code; Elu and
/// Softplus have their own vector formulas with stated bounds.
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
        Activation::Elu { alpha } => elu_v(s, alpha, x),
        Activation::Softplus => softplus_v(s, x),
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
