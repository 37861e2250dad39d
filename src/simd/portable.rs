//! Plain-Rust vectors: `[f32; 8]` for the portable kernels (written so the
//! compiler can autovectorize them on any target) and `f32` for the scalar
//! twins of the vectorized activations. Multiply-add is a separate multiply
//! and add: a fused `mul_add` is a slow library call on targets without FMA.

use super::Simd;

/// Eight lanes of plain Rust.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Portable;

/// One lane: the scalar twin of every vector formula.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scalar;

macro_rules! lanewise {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {{
        let (a, b) = ($a, $b);
        std::array::from_fn(|i| {
            let ($x, $y) = (a[i], b[i]);
            $e
        })
    }};
}

#[inline(always)]
fn pow2i_scalar(n: f32) -> f32 {
    f32::from_bits((((n as i32) + 127) as u32) << 23)
}

#[inline(always)]
fn sel(c: bool, x: f32, y: f32) -> f32 {
    if c {
        x
    } else {
        y
    }
}

impl Simd for Portable {
    type V = [f32; 8];
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(self, x: f32) -> [f32; 8] {
        [x; 8]
    }
    /// # Safety
    /// The contract of [`Simd::load`].
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> [f32; 8] {
        // SAFETY: the caller guarantees 8 readable floats at `p`.
        unsafe { std::ptr::read_unaligned(p as *const [f32; 8]) }
    }
    /// # Safety
    /// The contract of [`Simd::load_bf16_pair`].
    #[inline(always)]
    unsafe fn load_bf16_pair(self, p: *const u16, second: bool) -> [f32; 8] {
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        let v = unsafe { std::ptr::read_unaligned(p as *const [u16; 16]) };
        let k = usize::from(second);
        std::array::from_fn(|i| f32::from_bits(u32::from(v[2 * i + k]) << 16))
    }
    /// # Safety
    /// The contract of [`Simd::load_f16`].
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> [f32; 8] {
        // SAFETY: the caller guarantees 8 readable u16 at `p`.
        let v = unsafe { std::ptr::read_unaligned(p as *const [u16; 8]) };
        v.map(|b| half::f16::from_bits(b).to_f32())
    }
    /// # Safety
    /// The contract of [`Simd::load_i8`].
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> [f32; 8] {
        // SAFETY: the caller guarantees 8 readable i8 at `p`.
        let v = unsafe { std::ptr::read_unaligned(p as *const [i8; 8]) };
        v.map(f32::from)
    }
    #[inline(always)]
    fn cvt_i32(self, v: [f32; 8]) -> [f32; 8] {
        v.map(|x| x.to_bits() as i32 as f32)
    }
    /// # Safety
    /// The contract of [`Simd::store`].
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: [f32; 8]) {
        // SAFETY: the caller guarantees 8 writable floats at `p`.
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], v) }
    }
    /// # Safety
    /// The contract of [`Simd::store_low_bytes`].
    #[inline(always)]
    unsafe fn store_low_bytes(self, p: *mut i8, v: [f32; 8]) {
        // SAFETY: the caller guarantees 8 writable bytes at `p`.
        unsafe { std::ptr::write_unaligned(p as *mut [i8; 8], v.map(|x| x.to_bits() as u8 as i8)) }
    }
    #[inline(always)]
    fn add(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        lanewise!(a, b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        lanewise!(a, b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        lanewise!(a, b, |x, y| x * y)
    }
    #[inline(always)]
    fn div(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        lanewise!(a, b, |x, y| x / y)
    }
    #[inline(always)]
    fn mul_add(self, a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn min(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        lanewise!(a, b, |x, y| sel(x < y, x, y))
    }
    #[inline(always)]
    fn max(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        lanewise!(a, b, |x, y| sel(x > y, x, y))
    }
    #[inline(always)]
    fn abs(self, a: [f32; 8]) -> [f32; 8] {
        a.map(f32::abs)
    }
    #[inline(always)]
    fn copysign(self, mag: [f32; 8], sign: [f32; 8]) -> [f32; 8] {
        lanewise!(mag, sign, |x, y| x.copysign(y))
    }
    #[inline(always)]
    fn round(self, a: [f32; 8]) -> [f32; 8] {
        a.map(f32::round_ties_even)
    }
    #[inline(always)]
    fn pow2i(self, n: [f32; 8]) -> [f32; 8] {
        n.map(pow2i_scalar)
    }
    #[inline(always)]
    fn select_lt(self, a: [f32; 8], b: [f32; 8], x: [f32; 8], y: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| sel(a[i] < b[i], x[i], y[i]))
    }
    #[inline(always)]
    fn select_gt(self, a: [f32; 8], b: [f32; 8], x: [f32; 8], y: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| sel(a[i] > b[i], x[i], y[i]))
    }
    #[inline(always)]
    fn select_ge(self, a: [f32; 8], b: [f32; 8], x: [f32; 8], y: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| sel(a[i] >= b[i], x[i], y[i]))
    }
}

impl Simd for Scalar {
    type V = f32;
    const LANES: usize = 1;

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    /// # Safety
    /// The contract of [`Simd::load`].
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32 {
        // SAFETY: the caller guarantees one readable float at `p`.
        unsafe { p.read_unaligned() }
    }
    /// # Safety
    /// The contract of [`Simd::load_bf16_pair`].
    #[inline(always)]
    unsafe fn load_bf16_pair(self, p: *const u16, second: bool) -> f32 {
        // SAFETY: the caller guarantees two readable u16 at `p`.
        let b = unsafe { p.add(usize::from(second)).read_unaligned() };
        f32::from_bits(u32::from(b) << 16)
    }
    /// # Safety
    /// The contract of [`Simd::load_f16`].
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> f32 {
        // SAFETY: the caller guarantees one readable u16 at `p`.
        half::f16::from_bits(unsafe { p.read_unaligned() }).to_f32()
    }
    /// # Safety
    /// The contract of [`Simd::load_i8`].
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> f32 {
        // SAFETY: the caller guarantees one readable i8 at `p`.
        f32::from(unsafe { p.read() })
    }
    #[inline(always)]
    fn cvt_i32(self, v: f32) -> f32 {
        v.to_bits() as i32 as f32
    }
    /// # Safety
    /// The contract of [`Simd::store`].
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32) {
        // SAFETY: the caller guarantees one writable float at `p`.
        unsafe { p.write_unaligned(v) }
    }
    /// # Safety
    /// The contract of [`Simd::store_low_bytes`].
    #[inline(always)]
    unsafe fn store_low_bytes(self, p: *mut i8, v: f32) {
        // SAFETY: the caller guarantees one writable byte at `p`.
        unsafe { p.write(v.to_bits() as u8 as i8) }
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    fn mul_add(self, a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        sel(a < b, a, b)
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        sel(a > b, a, b)
    }
    #[inline(always)]
    fn abs(self, a: f32) -> f32 {
        a.abs()
    }
    #[inline(always)]
    fn copysign(self, mag: f32, sign: f32) -> f32 {
        mag.copysign(sign)
    }
    #[inline(always)]
    fn round(self, a: f32) -> f32 {
        a.round_ties_even()
    }
    #[inline(always)]
    fn pow2i(self, n: f32) -> f32 {
        pow2i_scalar(n)
    }
    #[inline(always)]
    fn select_lt(self, a: f32, b: f32, x: f32, y: f32) -> f32 {
        sel(a < b, x, y)
    }
    #[inline(always)]
    fn select_gt(self, a: f32, b: f32, x: f32, y: f32) -> f32 {
        sel(a > b, x, y)
    }
    #[inline(always)]
    fn select_ge(self, a: f32, b: f32, x: f32, y: f32) -> f32 {
        sel(a >= b, x, y)
    }
}
