//! The per-model plan: the kernel family chosen once when a model is
//! built (CPU detection happens in [`crate::family`]), and the weights
//! packed once for that family and weight format.

use crate::config::Config;
use crate::error::Result;
use crate::family::{select, Isa, KernelFamily};
use crate::kernels::FastKernel;
use crate::weights::{DirectionWeights, WeightFormat};

/// What a model runs: the chosen family, its full kernel name and, for a
/// fast family, the weights packed for it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    family: KernelFamily,
    name: String,
    fast: Option<FastKernel>,
}

impl Plan {
    /// Selects `family`'s token and packs every layer direction for it,
    /// in `format`: the only place a model's weights are packed.
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
        let isa = select(family)?;
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
