//! Each ISA's activation code on a slice, for the error-bound tests and
//! benchmarks (feature `testing`); the kernels call the vector functions
//! directly.

use super::{elu_v, sigmoid_v, softplus_v, tanh_v};
use crate::family::{select, Isa};
use crate::simd::portable::Scalar;
#[cfg(target_arch = "x86_64")]
use crate::simd::x86_64::isa_features;
use crate::simd::Simd;

/// Which function [`apply`] evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// [`super::sigmoid`], bound [`super::SIGMOID_MAX_ULP`].
    Sigmoid,
    /// [`super::tanh`], bound [`super::TANH_MAX_ULP`].
    Tanh,
    /// Elu with `alpha = 1`, bound [`super::ELU_MAX_ULP`].
    Elu,
    /// Softplus, bound [`super::SOFTPLUS_MAX_ULP`].
    Softplus,
}

#[inline(always)]
fn eval_v<S: Simd>(s: S, f: Function, v: S::V) -> S::V {
    match f {
        Function::Sigmoid => sigmoid_v(s, v),
        Function::Tanh => tanh_v(s, v),
        Function::Elu => elu_v(s, 1.0, v),
        Function::Softplus => softplus_v(s, v),
    }
}

#[inline(always)]
fn apply_generic<S: Simd>(s: S, f: Function, xs: &mut [f32]) {
    let l = S::LANES;
    let mut chunks = xs.chunks_exact_mut(l);
    for c in &mut chunks {
        // SAFETY: `c` has exactly LANES elements.
        let v = unsafe { s.load(c.as_ptr()) };
        // SAFETY: `c` has exactly LANES elements.
        unsafe { s.store(c.as_mut_ptr(), eval_v(s, f, v)) };
    }
    for x in chunks.into_remainder() {
        *x = eval_v(Scalar, f, *x);
    }
}

/// Applies `f` in place with kernel family `family`'s vector code (the
/// tail shorter than a vector, and the whole slice for the reference, use
/// the scalar twin: the same formula on one lane).
///
/// # Errors
/// [`crate::Error::KernelUnavailable`] if the family is not available here.
pub fn apply(family: crate::KernelFamily, f: Function, xs: &mut [f32]) -> crate::Result<()> {
    match select(family)? {
        Isa::Scalar => apply_generic(Scalar, f, xs),
        Isa::Portable(s) => apply_generic(s, f, xs),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(s) => {
            isa_features!(avx2 enable {
                /// # Safety
                /// The CPU has the `Avx2` token's features.
                unsafe fn go(s: crate::simd::x86_64::Avx2, f: Function, xs: &mut [f32]) {
                    apply_generic(s, f, xs)
                }
            });
            // SAFETY: `s` is an `Avx2` token, so the CPU has its features.
            unsafe { go(s, f, xs) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512(s) => {
            isa_features!(avx512 enable {
                /// # Safety
                /// The CPU has the `Avx512` token's features.
                unsafe fn go(s: crate::simd::x86_64::Avx512, f: Function, xs: &mut [f32]) {
                    apply_generic(s, f, xs)
                }
            });
            // SAFETY: `s` is an `Avx512` token, so the CPU has its features.
            unsafe { go(s, f, xs) }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(s) => apply_generic(s, f, xs),
    }
    Ok(())
}
