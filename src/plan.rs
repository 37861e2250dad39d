//! Kernel families, CPU detection (once, when a model is built) and the
//! per-model plan.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kernels::{FastKernel, Isa};
use crate::weights::{DirectionWeights, WeightFormat};

/// A family of kernels that can run every cell and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelFamily {
    /// The scalar reference (f64 inside a step); always available.
    Reference,
    /// Plain Rust written to autovectorize, 8-lane blocks; always available.
    Portable,
    /// AVX2 + FMA intrinsics, x86_64.
    Avx2,
    /// AVX-512F intrinsics, x86_64.
    Avx512,
}

impl KernelFamily {
    /// Every family, slowest first.
    pub const ALL: &'static [KernelFamily] = &[
        KernelFamily::Reference,
        KernelFamily::Portable,
        KernelFamily::Avx2,
        KernelFamily::Avx512,
    ];

    /// The family's name as `--kernel` takes it.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Reference => "reference",
            KernelFamily::Portable => "portable",
            KernelFamily::Avx2 => "avx2",
            KernelFamily::Avx512 => "avx512",
        }
    }

    /// Parses a family name; a typed error for an unknown name.
    pub fn from_name(name: &str) -> Result<KernelFamily> {
        KernelFamily::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name)
            .ok_or_else(|| Error::KernelUnavailable(format!("unknown kernel family `{name}`")))
    }

    /// Whether this CPU and build can run the family.
    pub fn is_available(self) -> bool {
        crate::kernels::with_isa(self, |_| ()).is_ok()
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
}

/// What a model runs: the chosen family, its full kernel name and, for a
/// fast family, the weights packed for it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    family: KernelFamily,
    name: String,
    fast: Option<FastKernel>,
}

impl Plan {
    pub(crate) fn new(
        cfg: &Config,
        weights: &[DirectionWeights],
        family: KernelFamily,
        format: WeightFormat,
    ) -> Result<Plan> {
        let cell = match cfg.cell {
            crate::config::Cell::Lstm => "lstm",
            crate::config::Cell::Gru => "gru",
        };
        let isa = crate::kernels::with_isa(family, |isa| isa)?;
        let fast = match isa {
            Isa::Scalar => None,
            _ => Some(FastKernel::new(cfg, weights, isa, format)),
        };
        let name = match &fast {
            None => format!("{cell}_f64acc_reference"),
            Some(k) => format!("{cell}_{}_{}_nr{}", format.name(), family.name(), k.nr()),
        };
        Ok(Plan { family, name, fast })
    }

    pub(crate) fn family(&self) -> KernelFamily {
        self.family
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn fast(&self) -> Option<&FastKernel> {
        self.fast.as_ref()
    }
}
