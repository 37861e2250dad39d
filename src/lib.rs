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
//!   -> RnnBuilder: kernel family (CPU detected once) and weight format
//!   -> plan: the weights packed once, for that family and format
//!   -> run: Rnn::run (whole sequences) or Rnn::step (one streaming step);
//!      Streams::step (many streams of one model, stepped together);
//!      Team::run / step / step_streams (the same, split over threads)
//! reference: the scalar oracle (f64 inside each step)
//! ```
//!
//! Each arrow is one module and nothing reaches back: `import` builds
//! [`DirectionWeights`]; `family` turns a [`KernelFamily`] into a CPU
//! feature token (the planner, the kernels and the activations all import
//! it, it imports none of them); `plan` packs; the private `kernels`
//! module runs the fused step (its module docs describe the files: packing,
//! the product microkernel, tiles, the LSTM and GRU epilogues, the step
//! scheduler, the input projection, the per-ISA entry points, the safe
//! drivers); `model` validates every call and chains the layers;
//! `streams` holds many streams' states and validates their ids; `team`
//! runs a job on persistent threads (a lock-free epoch and barrier, spin
//! then park) and splits each layer step by weight blocks.
//! `unsafe` lives only in `kernels`, `activations`, `simd`, `team` and the
//! C API (`capi`, feature `capi`).
//!
//! ## Kernel names
//!
//! [`Rnn::kernel_name`] returns `{cell}_{format}_{isa}_nr{NR}`: `cell` is
//! `lstm` or `gru`; `format` the weight storage, `f32`, `f16`, `bf16` or
//! `int8` ([`WeightFormat`]); `isa` the family, `avx512`, `avx2` or `portable`;
//! `NR` the hidden units per packed block (two vectors: 32 for AVX-512, 16
//! for AVX2 and portable). Example: `lstm_bf16_avx512_nr32`. The scalar
//! reference is `{cell}_f64acc_reference`.
//!
//! ## Error bounds
//!
//! The fast kernels compute in f32 with vectorized activations of stated
//! bounds ([`activations::SIGMOID_MAX_ULP`], [`activations::TANH_MAX_ULP`],
//! [`activations::ELU_MAX_ULP`], [`activations::SOFTPLUS_MAX_ULP`]); the
//! property tests hold every kernel to `5e-5 * max(1, |reference|)` on
//! every output. f16, bf16 and int8 change the model by rounding its
//! weights once (see [`WeightFormat`]; int8: at most max|row|/254 per
//! weight, [`quantize_row_int8`]); every kernel then computes with the
//! rounded weights. [`WeightFormat::Int8Dynamic`] also quantizes the
//! vectors `W` and `R` multiply, per step ([`quantize_activations`]: at
//! most max|x|/254 per element), identically in every kernel and the
//! reference, and sums exactly in integers: one step of one layer meets the
//! same 5e-5; over longer runs a vector element within f32 rounding of a
//! quantization boundary may round to the neighbouring level in one kernel
//! and not another, so the tests allow 0.1 there (one level times a weight,
//! carried by later steps).
//!
//! ## Input contract
//!
//! Every size from a caller or a file is checked before any work: element
//! counts use checked arithmetic ([`Error::TooLarge`] on overflow or when
//! memory cannot be had), buffers must have exactly the length their shape
//! says ([`Error::BufferLength`]), model sizes are bounded once when the
//! model is built ([`config::MAX_SIZE`], [`config::MAX_LAYERS`]). NaN and
//! infinity in weights, inputs or states are not errors: they propagate as
//! IEEE arithmetic says (a NaN input gives NaN outputs where it reaches).
//! The fast kernels take input and state values below 2^-63 (1.1e-19) in
//! magnitude as 0, so a step never runs into the slow subnormal path of
//! Intel cores and its latency does not depend on the data; a result moves
//! by at most 1.1e-19 (the reference computes the exact values).
//! Pairing a state with the model it came from is the caller's part: any
//! state of the right sizes is accepted.
//!
//! ## Feature `testing`
//!
//! Test and benchmark scaffolding, off by default: the golden-case runner
//! (`conformance`), the standard benchmark shapes (`shapes`), the unfused
//! baseline (`unfused`), each ISA's activations on a slice
//! (`activations::apply`) and the memory-floor probe
//! (`Rnn::stream_recurrent_weights`).
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
mod builder;
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
mod streams;
mod team;
#[cfg(feature = "testing")]
pub mod unfused;
mod weights;

#[cfg(feature = "capi")]
pub mod capi;

pub use builder::RnnBuilder;
pub use config::{Activation, Activations, Cell, Config, Direction, GruReset};
pub use error::{Error, Result};
pub use family::{KernelFamily, KERNEL_ENV};
#[cfg(feature = "testing")]
pub use kernels::quant::quantize_with;
pub use model::Rnn;
pub use state::{Layout, Sequence, State, Workspace};
pub use streams::{StreamId, Streams};
pub use team::Team;
pub use weights::{
    quantize_activations, quantize_row_int8, DirectionWeights, WeightFormat, INT8_DYNAMIC_MAX_K,
};
