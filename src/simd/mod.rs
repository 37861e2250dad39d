//! A small SIMD abstraction: one trait, one zero-sized token type per ISA.
//!
//! A token (`Avx512`, `Avx2`) can only be obtained through a checked
//! `new() -> Option<Self>`, so holding one proves the CPU has the features;
//! that is what makes the safe arithmetic methods sound. Generic kernels are
//! written once over [`Simd`] with `#[inline(always)]` and instantiated
//! inside a `#[target_feature]` entry point per ISA, so the intrinsics
//! inline into code compiled for that ISA.
//!
//! Min/max follow x86 semantics so that NaN propagates the same way on
//! every ISA: `max(a, b) = if a > b { a } else { b }` (a NaN in either
//! operand gives `b`). Callers put the constant first and the data second.

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) mod aarch64;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// Vector arithmetic over `LANES` f32 lanes.
pub(crate) trait Simd: Copy {
    /// The vector type.
    type V: Copy;
    /// Lanes per vector.
    const LANES: usize;

    fn splat(self, x: f32) -> Self::V;
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }
    /// Loads `LANES` floats.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` f32 (no alignment required).
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Loads `2 * LANES` bf16 values (the high 16 bits of an f32) stored as
    /// `LANES` pairs and returns one member of each pair widened to f32,
    /// exactly: the first of each pair if `!second`, else the second. One
    /// full-width load and one shift or mask, no cross-lane widening.
    ///
    /// # Safety
    /// `p` must be valid for reading `2 * LANES` u16 (no alignment required).
    unsafe fn load_bf16_pair(self, p: *const u16, second: bool) -> Self::V;
    /// Loads `LANES` IEEE binary16 values widened to f32, exactly.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` u16 (no alignment required).
    unsafe fn load_f16(self, p: *const u16) -> Self::V;
    /// Loads `LANES` signed 8-bit integers converted to f32, exactly.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` i8 (no alignment required).
    unsafe fn load_i8(self, p: *const i8) -> Self::V;
    /// The lanes of `v` read as i32 (bit patterns, as the integer
    /// product of `kernels/qdot.rs` leaves them) converted to f32, rounded
    /// to nearest, ties to even (exact below 2^24 in magnitude).
    fn cvt_i32(self, v: Self::V) -> Self::V;
    /// Stores `LANES` floats.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` f32 (no alignment required).
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Stores the low byte of each lane's bit pattern (lane `i` to
    /// `p[i]`): a float in `[2^23, 2^24)` holds an integer whose low 8
    /// bits these are (the int8-dynamic quantizer's narrowing).
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` bytes.
    unsafe fn store_low_bytes(self, p: *mut i8, v: Self::V);
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` (fused where the ISA has FMA).
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `if a < b { a } else { b }` per lane.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a > b { a } else { b }` per lane.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `|a|` (clears the sign bit).
    fn abs(self, a: Self::V) -> Self::V;
    /// The magnitude of `mag` with the sign bit of `sign`.
    fn copysign(self, mag: Self::V, sign: Self::V) -> Self::V;
    /// Rounds to the nearest integer, ties to even.
    fn round(self, a: Self::V) -> Self::V;
    /// `2^n` for lanes holding integers in `[-126, 127]`.
    fn pow2i(self, n: Self::V) -> Self::V;
    /// `a * 2^n` for lanes of `n` holding integers in `[-126, 127]` whose
    /// product is a normal float: exact, so an ISA with a scaling
    /// instruction (AVX-512 `vscalefps`, one uop for `pow2i`'s three and
    /// the multiply) gives `mul(a, pow2i(n))` bit for bit.
    #[inline(always)]
    fn mul_pow2i(self, a: Self::V, n: Self::V) -> Self::V {
        self.mul(a, self.pow2i(n))
    }
    /// `if a < b { x } else { y }` per lane (false for NaN).
    fn select_lt(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// `if a > b { x } else { y }` per lane (false for NaN).
    fn select_gt(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// `if a >= b { x } else { y }` per lane (false for NaN).
    fn select_ge(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
}
