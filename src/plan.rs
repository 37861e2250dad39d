//! Kernel families, CPU detection (once, when a model is built) and the
//! per-model plan.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::weights::DirectionWeights;

/// A family of kernels that can run every cell and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelFamily {
    /// The scalar reference (f64 inside a step); always available.
    Reference,
}

impl KernelFamily {
    /// Every family, slowest first.
    pub const ALL: &'static [KernelFamily] = &[KernelFamily::Reference];

    /// The family's name as `--kernel` takes it.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Reference => "reference",
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
        match self {
            KernelFamily::Reference => true,
        }
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

/// What a model runs: the chosen family and its full kernel name.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    family: KernelFamily,
    name: String,
}

impl Plan {
    pub(crate) fn new(
        cfg: &Config,
        _weights: &[DirectionWeights],
        family: KernelFamily,
    ) -> Result<Plan> {
        if !family.is_available() {
            return Err(Error::KernelUnavailable(format!(
                "`{}` needs CPU features this host lacks",
                family.name()
            )));
        }
        let cell = match cfg.cell {
            crate::config::Cell::Lstm => "lstm",
            crate::config::Cell::Gru => "gru",
        };
        Ok(Plan {
            family,
            name: format!("{cell}_f64acc_reference"),
        })
    }

    pub(crate) fn family(&self) -> KernelFamily {
        self.family
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}
