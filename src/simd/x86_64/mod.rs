//! x86_64 ISA tokens, and the one list of CPU features per ISA.
//!
//! [`isa_features!`] holds each ISA's feature list once. Runtime detection
//! (`Avx2::new`, `Avx512::new`) and every `#[target_feature]` entry point
//! (`kernels/entries.rs`, the activations' test entry) expand from it, so
//! an entry can never enable fewer or other features than its token checks.
//! (A `#[target_feature(enable = some_macro!())]` is silently ignored by
//! rustc 1.95, which is why the list is spliced in by a macro around the
//! item instead.)

mod avx2;
mod avx512;

pub(crate) use avx2::Avx2;
pub(crate) use avx512::Avx512;

/// The features of one ISA token, as a list for [`with_features!`]:
/// `isa_features!(avx2 detect)` is true when the CPU has them all;
/// `isa_features!(avx2 enable { items })` compiles each item with them.
macro_rules! isa_features {
    (avx2 $($rest:tt)*) => {
        $crate::simd::x86_64::with_features! { ["avx2", "fma", "f16c"] $($rest)* }
    };
    (avx512 $($rest:tt)*) => {
        $crate::simd::x86_64::with_features! { ["avx512f", "avx2", "fma"] $($rest)* }
    };
    // AVX-512 with VNNI: the int8-dynamic product's `vpdpbusd` (a
    // sub-kernel of the avx512 family, used when the CPU has it).
    (avx512vnni $($rest:tt)*) => {
        $crate::simd::x86_64::with_features! { ["avx512f", "avx512vnni", "avx2", "fma"] $($rest)* }
    };
}
pub(crate) use isa_features;

/// The two uses of a feature list; see [`isa_features!`].
macro_rules! with_features {
    ([$($f:tt),*] detect) => {
        true $(&& std::is_x86_feature_detected!($f))*
    };
    ($fs:tt enable { $($i:item)* }) => {
        $( $crate::simd::x86_64::with_features!($fs enable_one $i); )*
    };
    ([$($f:tt),*] enable_one $i:item) => {
        #[target_feature($(enable = $f),*)]
        $i
    };
}
pub(crate) use with_features;
