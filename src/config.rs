//! What a model is: cell type, sizes, direction, layers and the ONNX/PyTorch
//! attributes (clip, input_forget, proj_size, activation functions).

use crate::error::{attr_err, Result};

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cell {
    /// Long short-term memory; canonical gate order `i, f, g, o`.
    Lstm,
    /// Gated recurrent unit; canonical gate order `z, r, n`.
    Gru,
}

impl Cell {
    /// Number of gates: 4 for LSTM, 3 for GRU.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// Canonical LSTM gate indices (row blocks of every canonical weight matrix).
pub mod lstm_gate {
    /// Input gate.
    pub const I: usize = 0;
    /// Forget gate.
    pub const F: usize = 1;
    /// Cell candidate (ONNX `c`, PyTorch `g`).
    pub const G: usize = 2;
    /// Output gate.
    pub const O: usize = 3;
}

/// Canonical GRU gate indices (row blocks of every canonical weight matrix).
pub mod gru_gate {
    /// Update gate (ONNX/PyTorch sense: `h = (1 - z) n + z h`).
    pub const Z: usize = 0;
    /// Reset gate.
    pub const R: usize = 1;
    /// New-state candidate (ONNX `h`, PyTorch `n`).
    pub const N: usize = 2;
}

/// Where the GRU reset gate is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GruReset {
    /// `n = tanh(W_n x + R_n (r ⊙ h) + b)`: Cho et al. 2014, ONNX
    /// `linear_before_reset=0`, Keras `reset_after=False`.
    BeforeMatmul,
    /// `n = tanh(W_n x + b_in + r ⊙ (R_n h + b_hn))`: PyTorch, cuDNN, ONNX
    /// `linear_before_reset=1`, Keras `reset_after=True`.
    AfterMatmul,
}

/// Direction of the pass over the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// t = 0, 1, ...
    Forward,
    /// t = len-1, ..., 0 (each entry starts at its own last valid step).
    Reverse,
    /// Both; outputs concatenated per time step `[forward, reverse]`.
    Bidirectional,
}

impl Direction {
    /// Number of directions D (1 or 2).
    pub fn count(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            _ => 1,
        }
    }

    /// Whether pass `d` (0 or 1) of this direction runs backwards in time.
    pub fn is_reverse(self, d: usize) -> bool {
        matches!(self, Direction::Reverse) || (matches!(self, Direction::Bidirectional) && d == 1)
    }
}

/// One of the eleven activation functions of the ONNX RNN operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
    /// `max(0, x)`
    Relu,
    /// `alpha * x + beta`
    Affine {
        /// slope
        alpha: f32,
        /// offset
        beta: f32,
    },
    /// `x` if `x >= 0` else `alpha * x`
    LeakyRelu {
        /// negative slope
        alpha: f32,
    },
    /// `x` if `x > alpha` else 0
    ThresholdedRelu {
        /// threshold
        alpha: f32,
    },
    /// `alpha * tanh(beta * x)`
    ScaledTanh {
        /// output scale
        alpha: f32,
        /// input scale
        beta: f32,
    },
    /// `clamp(alpha * x + beta, 0, 1)` (Keras 2 `hard_sigmoid` is alpha 0.2, beta 0.5)
    HardSigmoid {
        /// slope
        alpha: f32,
        /// offset
        beta: f32,
    },
    /// `x` if `x >= 0` else `alpha * (exp(x) - 1)`
    Elu {
        /// negative scale
        alpha: f32,
    },
    /// `x / (1 + |x|)`
    Softsign,
    /// `log(1 + exp(x))`
    Softplus,
}

impl Activation {
    /// Parses an ONNX activation name (case-insensitive), taking alpha and
    /// beta from the iterators when the function uses them, in ONNX's order
    /// (alpha then beta), with ONNX Runtime's defaults when a list runs out
    /// or is absent: LeakyRelu alpha 0.01, HardSigmoid alpha 0.2 and beta
    /// 0.5, Elu alpha 1; every other parameter 0 (so `Affine` is 0 and
    /// `ScaledTanh` is 0 without their parameters, `ThresholdedRelu` cuts at
    /// 0), as ONNX Runtime 1.32 computes them (probed function by function).
    pub fn from_onnx(
        name: &str,
        alphas: &mut dyn Iterator<Item = f32>,
        betas: &mut dyn Iterator<Item = f32>,
    ) -> Result<Activation> {
        let mut a = |default: f32| alphas.next().unwrap_or(default);
        Ok(match name.to_ascii_lowercase().as_str() {
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "affine" => {
                let alpha = a(0.0);
                Activation::Affine {
                    alpha,
                    beta: betas.next().unwrap_or(0.0),
                }
            }
            "leakyrelu" => Activation::LeakyRelu { alpha: a(0.01) },
            "thresholdedrelu" => Activation::ThresholdedRelu { alpha: a(0.0) },
            "scaledtanh" => {
                let alpha = a(0.0);
                Activation::ScaledTanh {
                    alpha,
                    beta: betas.next().unwrap_or(0.0),
                }
            }
            "hardsigmoid" => {
                let alpha = a(0.2);
                Activation::HardSigmoid {
                    alpha,
                    beta: betas.next().unwrap_or(0.5),
                }
            }
            "elu" => Activation::Elu { alpha: a(1.0) },
            "softsign" => Activation::Softsign,
            "softplus" => Activation::Softplus,
            other => {
                return Err(attr_err(
                    "activations",
                    format!("unknown function `{other}`"),
                ))
            }
        })
    }

    fn params_finite(&self) -> bool {
        match *self {
            Activation::Affine { alpha, beta }
            | Activation::ScaledTanh { alpha, beta }
            | Activation::HardSigmoid { alpha, beta } => alpha.is_finite() && beta.is_finite(),
            Activation::LeakyRelu { alpha }
            | Activation::ThresholdedRelu { alpha }
            | Activation::Elu { alpha } => alpha.is_finite(),
            _ => true,
        }
    }
}

/// The activation functions of one direction, in ONNX's roles.
///
/// LSTM: `f` for the i, f, o gates, `g` for the cell candidate, `h` for the
/// cell output `h = o ⊙ h(c)`. GRU: `f` for z and r, `g` for the candidate;
/// `h` is unused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activations {
    /// Gate function (default sigmoid).
    pub f: Activation,
    /// Candidate function (default tanh).
    pub g: Activation,
    /// Cell-output function, LSTM only (default tanh).
    pub h: Activation,
}

impl Default for Activations {
    fn default() -> Self {
        Activations {
            f: Activation::Sigmoid,
            g: Activation::Tanh,
            h: Activation::Tanh,
        }
    }
}

impl Activations {
    /// True for the default sigmoid/tanh/tanh set.
    pub fn is_default(&self) -> bool {
        *self == Activations::default()
    }
}

/// Largest `input_size`, `hidden_size` and `proj_size` of a model (2^24):
/// far above any RNN in use, and small enough that the element and byte
/// counts of every weight matrix, panel and state row fit in 64 bits.
pub const MAX_SIZE: usize = 1 << 24;

/// Most stacked layers of a model (2^16).
pub const MAX_LAYERS: usize = 1 << 16;

/// The full description of a model: everything except the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// LSTM or GRU.
    pub cell: Cell,
    /// Input features I of layer 0.
    pub input_size: usize,
    /// Hidden units H (the size of the cell state `c`).
    pub hidden_size: usize,
    /// Number of stacked layers L; layer k > 0 reads layer k-1's
    /// (direction-concatenated) output.
    pub num_layers: usize,
    /// Forward, reverse or bidirectional.
    pub direction: Direction,
    /// Clamp every gate pre-activation to `[-clip, clip]` (ONNX `clip`); the
    /// cell state is never clipped.
    pub clip: Option<f32>,
    /// LSTM only: `f = 1 - i` (ONNX `input_forget`).
    pub input_forget: bool,
    /// LSTM only: PyTorch `proj_size`; 0 for none. The projected `h` (size
    /// `proj_size`) is both the output and the recurrent state.
    pub proj_size: usize,
    /// GRU only: where the reset gate is applied.
    pub gru_reset: GruReset,
    /// Activation functions for the forward pass (index 0) and the reverse
    /// pass (index 1; for `Direction::Reverse` index 0 is the reverse pass).
    pub activations: [Activations; 2],
}

impl Config {
    /// A configuration with the defaults: one forward layer, no clip, no
    /// projection, default activations, GRU reset after the matmul (PyTorch).
    pub fn new(cell: Cell, input_size: usize, hidden_size: usize) -> Config {
        Config {
            cell,
            input_size,
            hidden_size,
            num_layers: 1,
            direction: Direction::Forward,
            clip: None,
            input_forget: false,
            proj_size: 0,
            gru_reset: GruReset::AfterMatmul,
            activations: [Activations::default(); 2],
        }
    }

    /// Number of directions D.
    pub fn num_directions(&self) -> usize {
        self.direction.count()
    }

    /// Size of the recurrent state and output of one direction: `proj_size`
    /// if set, else `hidden_size`.
    pub fn output_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Input size of layer `k`: `input_size` for k = 0, else `D * output_size`.
    pub fn layer_input_size(&self, k: usize) -> usize {
        if k == 0 {
            self.input_size
        } else {
            self.num_directions() * self.output_size()
        }
    }

    /// Checks every value; called by every constructor.
    ///
    /// Sizes are bounded here, once, so that nothing computed from them
    /// later can overflow: `input_size`, `hidden_size` and `proj_size` at
    /// most [`MAX_SIZE`], `num_layers` at most [`MAX_LAYERS`], and the
    /// bytes of each layer direction's largest weight matrix
    /// (`G * H * max(I, D * Hout)` floats) must fit in an `isize`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidAttribute`] naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("input_size", self.input_size),
        ] {
            if v == 0 || v > MAX_SIZE {
                return Err(attr_err(
                    name,
                    format!("must be in 1..={MAX_SIZE}, got {v}"),
                ));
            }
        }
        if self.num_layers == 0 || self.num_layers > MAX_LAYERS {
            return Err(attr_err(
                "num_layers",
                format!("must be in 1..={MAX_LAYERS}, got {}", self.num_layers),
            ));
        }
        if let Some(clip) = self.clip {
            if !(clip.is_finite() && clip > 0.0) {
                return Err(attr_err(
                    "clip",
                    format!("must be finite and > 0, got {clip}"),
                ));
            }
        }
        if self.cell == Cell::Gru && self.input_forget {
            return Err(attr_err("input_forget", "is an LSTM attribute"));
        }
        if self.proj_size > 0 {
            if self.cell != Cell::Lstm {
                return Err(attr_err("proj_size", "is an LSTM attribute"));
            }
            if self.proj_size >= self.hidden_size {
                return Err(attr_err(
                    "proj_size",
                    format!(
                        "must be smaller than hidden_size {}, got {}",
                        self.hidden_size, self.proj_size
                    ),
                ));
            }
        }
        let widest = self
            .input_size
            .max(self.num_directions() * self.output_size());
        let bytes = [self.cell.gates(), self.hidden_size, widest, 4]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&b| b <= isize::MAX as usize);
        if bytes.is_none() {
            return Err(attr_err(
                "hidden_size",
                "the weight matrices' byte counts overflow this target's address space",
            ));
        }
        for acts in &self.activations {
            for a in [acts.f, acts.g, acts.h] {
                if !a.params_finite() {
                    return Err(attr_err("activation_alpha/beta", "must be finite"));
                }
            }
        }
        Ok(())
    }
}
