//! x86_64 ISA tokens. The feature lists here are the single source for
//! both detection (`new`) and the `#[target_feature]` entry points, which
//! name the same features through the `avx512_features!`/`avx2_features!`
//! lists in `kernels`.

mod avx2;
mod avx512;

pub(crate) use avx2::Avx2;
pub(crate) use avx512::Avx512;
