//! Building a model: the kernel family and weight format are chosen
//! before anything is packed, so the weights are packed exactly once.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::family::KernelFamily;
use crate::model::Rnn;
use crate::plan::Plan;
use crate::weights::{DirectionWeights, WeightFormat};

/// Builds an [`Rnn`] with the kernel family and weight format chosen
/// before anything is packed, so the weights are packed exactly once (for
/// lstm-h1024, packing is most of a model's build time).
///
/// ```
/// # use fusedrnn::{Cell, Config, DirectionWeights, KernelFamily, RnnBuilder, WeightFormat};
/// # let w = DirectionWeights { w: vec![0.1; 8 * 3], r: vec![0.2; 8 * 2], wb: vec![0.0; 8],
/// #     rb: vec![0.0; 8], peepholes: None, proj: None };
/// let model = RnnBuilder::new(Config::new(Cell::Lstm, 3, 2), vec![w])
///     .kernel(KernelFamily::Portable)
///     .weight_format(WeightFormat::Bf16)
///     .build()?;
/// assert_eq!(model.kernel_name(), "lstm_bf16_portable_nr16");
/// # Ok::<(), fusedrnn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RnnBuilder {
    cfg: Config,
    weights: Vec<DirectionWeights>,
    family: Option<KernelFamily>,
    format: WeightFormat,
}

impl RnnBuilder {
    /// A builder for a configuration and canonical weights, one
    /// [`DirectionWeights`] per layer and direction, indexed
    /// `layer * D + direction`; by default the fastest family this CPU
    /// runs ([`KernelFamily::auto`]: `FUSEDRNN_KERNEL` if set) and f32
    /// weights. Nothing is checked until [`RnnBuilder::build`].
    pub fn new(cfg: Config, weights: Vec<DirectionWeights>) -> RnnBuilder {
        RnnBuilder {
            cfg,
            weights,
            family: None,
            format: WeightFormat::F32,
        }
    }

    /// The configuration and weights given so far (for importers that
    /// combine builders, e.g. stacked `.onnx` nodes).
    pub(crate) fn into_parts(self) -> (Config, Vec<DirectionWeights>) {
        (self.cfg, self.weights)
    }

    /// Run the model with kernel family `family` instead of the fastest one.
    pub fn kernel(mut self, family: KernelFamily) -> RnnBuilder {
        self.family = Some(family);
        self
    }

    /// Store the weight matrices in `format` (see
    /// [`Rnn::with_weight_format`] for what that changes).
    pub fn weight_format(mut self, format: WeightFormat) -> RnnBuilder {
        self.format = format;
        self
    }

    /// The configuration the model will have.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Checks every shape, rounds the matrices to the weight format and
    /// packs them once for the kernel family.
    ///
    /// # Errors
    /// [`Error::InvalidAttribute`] for a bad configuration,
    /// [`Error::Shape`] (or [`Error::MissingTensor`], [`Error::Unsupported`])
    /// for weights that do not fit it, [`Error::KernelUnavailable`] if this
    /// CPU cannot run the chosen family (or the one `FUSEDRNN_KERNEL`
    /// names, when none was chosen), [`Error::UnknownName`] if
    /// `FUSEDRNN_KERNEL` names no family.
    pub fn build(self) -> Result<Rnn> {
        let RnnBuilder {
            cfg,
            weights,
            family,
            format,
        } = self;
        cfg.validate()?;
        let expected = cfg.num_layers * cfg.num_directions();
        if weights.len() != expected {
            return Err(Error::Shape {
                what: "weights (layers x directions)".into(),
                expected: vec![expected],
                got: vec![weights.len()],
            });
        }
        for (i, w) in weights.iter().enumerate() {
            w.validate(&cfg, i / cfg.num_directions())?;
        }
        crate::model::check_format(&cfg, format)?;
        let weights = match format {
            WeightFormat::F32 => weights,
            f => weights.iter().map(|w| w.rounded(f)).collect(),
        };
        let family = match family {
            Some(f) => f,
            None => KernelFamily::auto()?,
        };
        let plan = Plan::new(&cfg, &weights, family, format)?;
        Ok(Rnn::from_parts(cfg, weights, format, plan))
    }
}

impl Rnn {
    /// Builds a model from a configuration and canonical weights, one
    /// [`DirectionWeights`] per layer and direction, indexed
    /// `layer * D + direction`, with the fastest kernel this CPU supports
    /// (chosen once, here; [`KernelFamily::auto`]) and f32 weights. Same as
    /// `RnnBuilder::new(cfg, weights).build()`; use [`RnnBuilder`] to choose
    /// the family or format before the weights are packed.
    ///
    /// # Errors
    /// As for [`RnnBuilder::build`].
    pub fn new(cfg: Config, weights: Vec<DirectionWeights>) -> Result<Rnn> {
        RnnBuilder::new(cfg, weights).build()
    }

    /// A builder for this configuration and these weights.
    pub fn builder(cfg: Config, weights: Vec<DirectionWeights>) -> RnnBuilder {
        RnnBuilder::new(cfg, weights)
    }
}
