//! # fusedrnn
//!
//! LSTM and GRU inference on the CPU, with the weights of ONNX, PyTorch,
//! Keras or the concatenated `[h, x]` form, and numbers checked against a
//! scalar reference and against ONNX Runtime and PyTorch outputs.
//!
//! ## Data flow
//!
//! ```text
//! importers (import::onnx / pytorch / keras / concat, safetensors files)
//!   -> canonical weights (DirectionWeights: LSTM i f g o, GRU z r n; f32)
//!   -> plan (kernel family chosen once when the model is built)
//!   -> run: Rnn::run (whole sequences) or Rnn::step (one streaming step)
//! reference: the scalar oracle (f64 inside each step)
//! ```
//!
//! ## Example
//!
//! ```
//! use fusedrnn::{Cell, Config, DirectionWeights, Rnn, Sequence};
//!
//! // A one-layer LSTM with H = 2, I = 3 and made-up weights.
//! let (h, i) = (2, 3);
//! let cfg = Config::new(Cell::Lstm, i, h);
//! let w = DirectionWeights {
//!     w: vec![0.1; 4 * h * i],
//!     r: vec![0.2; 4 * h * h],
//!     wb: vec![0.0; 4 * h],
//!     rb: vec![0.0; 4 * h],
//!     peepholes: None,
//!     proj: None,
//! };
//! let model = Rnn::new(cfg, vec![w])?;
//! let x = vec![0.5f32; 5 * 1 * i]; // [T = 5, B = 1, I]
//! let (y, state) = model.forward(&Sequence::new(&x, 5, 1), None)?;
//! assert_eq!(y.len(), 5 * h);
//! assert_eq!(state.h(), &y[4 * h..]);
//! # Ok::<(), fusedrnn::Error>(())
//! ```

#![warn(missing_docs)]

pub mod activations;
pub mod config;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod error;
mod family;
pub mod import;
mod kernels;
mod model;
mod plan;
pub mod reference;
#[cfg(feature = "testing")]
pub mod shapes;
mod simd;
mod state;
#[cfg(feature = "testing")]
pub mod unfused;
mod weights;

pub use config::{Activation, Activations, Cell, Config, Direction, GruReset};
pub use error::{Error, Result};
pub use family::{KernelFamily, KERNEL_ENV};
pub use model::{Rnn, RnnBuilder};
pub use state::{Layout, Sequence, State, Workspace};
pub use weights::{DirectionWeights, WeightFormat};
