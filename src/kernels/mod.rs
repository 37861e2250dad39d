//! The fast kernels: the fused recurrent step, written once over
//! [`Simd`](crate::simd::Simd) and instantiated per ISA.
//!
//! # How a step runs
//!
//! For a block of `NR` hidden units and a tile of `MB` batch rows, the
//! product ([`dot`]) walks the block's gate-interleaved panel once and
//! leaves every gate's pre-activation in registers (`G x 2 x MB` vectors);
//! the cell's epilogue ([`lstm`], [`gru`]) then adds the input part and the
//! biases, applies peepholes, clip and the activations, and updates `c` and
//! `h` for those units before the next block is touched. Nothing is written
//! to memory but the new states.
//!
//! # Files, in the order data flows through them
//!
//! | file | holds |
//! |---|---|
//! | `pack.rs` | aligned buffers; [`pack::Panels`] (gate-interleaved panels, f32/f16/bf16); [`pack::DirPack`] (one layer direction packed for one `NR`) |
//! | `dot.rs` | the product microkernel over one block, the panel element formats, and the per-ISA [`dot::Kernel`] trait (tile sizes, chunking) |
//! | `tile.rs` | what every tile shares: the step's context and buffers, chunks of a panel, parking partial sums, the input part, clip/bias/activation helpers |
//! | `lstm.rs` | the LSTM epilogue tile (peepholes, clip, input_forget) and the projection tile |
//! | `gru.rs` | the GRU epilogue tiles: reset after the matmul (one pass), reset before (two passes) |
//! | `step.rs` | one time step: which passes a cell runs, the block order (ping-pong), how active rows split into whole- and half-block tiles |
//! | `project.rs` | the input projection of a sequence (a chunk of time steps at a time) with the same product |
//! | `entries.rs` | the per-ISA `#[target_feature]` entry points and the dispatch from a token to them |
//! | `driver.rs` | the safe drivers (sequence, streaming step) and their workspace: every length is checked there before unsafe code runs |
//! | `probe.rs` | the memory-floor probe used by benchmark tools (feature `testing`) |
//!
//! # Kernel names
//!
//! `{cell}_{format}_{isa}_nr{NR}`, as [`crate::Rnn::kernel_name`] returns:
//! `cell` is `lstm` or `gru`, `format` the weight storage (`f32`, `f16`,
//! `bf16`, `int8`), `isa` the family (`avx512`, `avx2`, `portable`) and `NR` the
//! hidden units per packed block (two vectors: 32 for AVX-512, 16 for
//! AVX2 and portable). Example: `lstm_bf16_avx512_nr32`. The scalar
//! reference is `{cell}_f64acc_reference`.
//!
//! # Streaming and sequence give the same numbers
//!
//! The input part of each gate comes either from the sequence's input
//! projection ([`project`], the same [`dot`] over the `W` panels with
//! several rows per tile) or, in a streaming step, from a [`dot`] over the
//! block's `W` panel right before its `R` panel. Both start every
//! accumulator at 0 and add the `W x` terms, then the `R h` terms, in the
//! same order, so a streaming step is bit-identical to the sequence run.

pub(crate) mod dot;
pub(crate) mod driver;
pub(crate) mod entries;
pub(crate) mod gru;
pub(crate) mod lstm;
pub(crate) mod pack;
#[cfg(feature = "testing")]
pub(crate) mod probe;
pub(crate) mod project;
pub(crate) mod qdot;
pub(crate) mod quant;
pub(crate) mod step;
pub(crate) mod tile;

pub(crate) use driver::{FastKernel, FastWs, SeqArgs};
pub(crate) use pack::grow;
