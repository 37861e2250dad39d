//! Kernel families and ISA selection: the one place that turns a
//! [`KernelFamily`] into a CPU-feature token. The planner, the kernels and
//! the activations' test entry all import it; it imports none of them.

use std::sync::OnceLock;

use crate::error::{Error, Result};
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use crate::simd::aarch64::Neon;
use crate::simd::portable::Portable;
#[cfg(target_arch = "x86_64")]
use crate::simd::x86_64::{Avx2, Avx512};
use crate::simd::Simd;

/// A family of kernels that can run every cell, shape and weight format.
///
/// Full kernel names follow `{cell}_{format}_{family}_nr{NR}` (see the
/// crate docs); the reference is `{cell}_f64acc_reference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelFamily {
    /// The scalar reference (f64 inside a step); always available.
    Reference,
    /// Plain Rust written to autovectorize, 8-lane blocks; always available.
    Portable,
    /// AVX2 + FMA + F16C intrinsics, x86_64.
    Avx2,
    /// AVX-512F intrinsics, x86_64.
    Avx512,
    /// NEON (Advanced SIMD) intrinsics, aarch64: 4 lanes, 8-unit blocks.
    Neon,
}

impl KernelFamily {
    /// Every family, slowest first.
    pub const ALL: &'static [KernelFamily] = &[
        KernelFamily::Reference,
        KernelFamily::Portable,
        KernelFamily::Avx2,
        KernelFamily::Avx512,
        KernelFamily::Neon,
    ];

    /// The family's name as `--kernel` takes it and kernel names spell it.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Reference => "reference",
            KernelFamily::Portable => "portable",
            KernelFamily::Avx2 => "avx2",
            KernelFamily::Avx512 => "avx512",
            KernelFamily::Neon => "neon",
        }
    }

    /// Parses a family name.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name that is no family (whether or not
    /// this host could run it).
    pub fn from_name(name: &str) -> Result<KernelFamily> {
        KernelFamily::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name)
            .ok_or_else(|| Error::UnknownName {
                kind: "kernel family",
                name: name.to_string(),
                known: KernelFamily::ALL.iter().map(|f| f.name()).collect(),
            })
    }

    /// Whether this CPU and build can run the family.
    pub fn is_available(self) -> bool {
        select(self).is_ok()
    }

    /// Every family this host can run, slowest first.
    pub fn available() -> Vec<KernelFamily> {
        KernelFamily::ALL
            .iter()
            .copied()
            .filter(|f| f.is_available())
            .collect()
    }

    /// The fastest family this host can run.
    pub fn detect() -> KernelFamily {
        *KernelFamily::available()
            .last()
            .unwrap_or(&KernelFamily::Reference)
    }

    /// The family a model runs when the caller chose none: the one named
    /// by the environment variable [`KERNEL_ENV`] (`FUSEDRNN_KERNEL`) if it
    /// is set, else [`KernelFamily::detect`]. The variable is read once per
    /// process. It lets a whole test suite, or a service, run on one
    /// family; a family that is named but missing is an error, never a
    /// silent fallback to another.
    ///
    /// # Errors
    /// [`Error::UnknownName`] if the variable names no family,
    /// [`Error::KernelUnavailable`] if this host cannot run the one it names.
    pub fn auto() -> Result<KernelFamily> {
        static FORCED: OnceLock<Option<String>> = OnceLock::new();
        let forced = FORCED.get_or_init(|| std::env::var(KERNEL_ENV).ok());
        KernelFamily::resolve(forced.as_deref())
    }

    /// The family [`KernelFamily::auto`] picks when [`KERNEL_ENV`] holds
    /// `forced` (`None`: unset). Blank means unset; surrounding spaces are
    /// ignored.
    ///
    /// # Errors
    /// As for [`KernelFamily::auto`].
    pub fn resolve(forced: Option<&str>) -> Result<KernelFamily> {
        match forced.map(str::trim) {
            None | Some("") => Ok(KernelFamily::detect()),
            Some(name) => {
                let family = KernelFamily::from_name(name)?;
                select(family)?;
                Ok(family)
            }
        }
    }
}

/// The environment variable read by [`KernelFamily::auto`]: a family name
/// (`reference`, `portable`, `avx2`, `avx512`) that every model built
/// without an explicit family runs.
pub const KERNEL_ENV: &str = "FUSEDRNN_KERNEL";

/// An ISA token (or the scalar reference): holding one proves the CPU
/// can run its family.
#[derive(Clone, Copy)]
pub(crate) enum Isa {
    Scalar,
    Portable(Portable),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    Neon(Neon),
}

impl Isa {
    /// Units per packed block: two vectors (1 for the reference).
    pub(crate) fn nr(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Portable(_) => 2 * Portable::LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(_) => 2 * Avx2::LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(_) => 2 * Avx512::LANES,
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon(_) => 2 * Neon::LANES,
        }
    }
}

/// The token of `family`.
///
/// # Errors
/// [`Error::KernelUnavailable`] if this CPU or build cannot run it.
pub(crate) fn select(family: KernelFamily) -> Result<Isa> {
    let isa = match family {
        KernelFamily::Reference => Some(Isa::Scalar),
        KernelFamily::Portable => Some(Isa::Portable(Portable)),
        #[cfg(target_arch = "x86_64")]
        KernelFamily::Avx2 => Avx2::new().map(Isa::Avx2),
        #[cfg(target_arch = "x86_64")]
        KernelFamily::Avx512 => Avx512::new().map(Isa::Avx512),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        KernelFamily::Neon => Neon::new().map(Isa::Neon),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    isa.ok_or_else(|| {
        Error::KernelUnavailable(format!(
            "`{}` needs CPU features this host lacks",
            family.name()
        ))
    })
}
