//! What the caller owns and passes to a run: the input sequence and its
//! layout, the recurrent state of each stream, and the scratch workspace.

/// Memory order of a sequence tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `[T, B, F]` (ONNX `layout=0`, PyTorch `batch_first=False`).
    SequenceMajor,
    /// `[B, T, F]` (ONNX `layout=1`, PyTorch `batch_first=True`, Keras).
    BatchMajor,
}

/// A batch of input sequences.
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    /// The input, `[T, B, I]` or `[B, T, I]` by `layout`.
    pub input: &'a [f32],
    /// T, the number of time steps (may be 0).
    pub seq_len: usize,
    /// B, the number of batch entries (may be 0).
    pub batch: usize,
    /// Memory order of `input` and of the output.
    pub layout: Layout,
    /// Per-entry lengths `[B]`, each in `0..=T`; `None` means all T.
    /// Entry b runs only t < `lengths[b]` (the reverse pass starts at
    /// `lengths[b] - 1`); its outputs for later steps are exactly 0 and its
    /// final state is the state after its last valid step. An explicit
    /// length of 0 gives a zero final state, as ONNX Runtime does; with
    /// `T = 0` and no lengths no step runs and the state is left as it was.
    pub lengths: Option<&'a [usize]>,
}

impl<'a> Sequence<'a> {
    /// A sequence-major `[T, B, I]` batch of full-length sequences.
    pub fn new(input: &'a [f32], seq_len: usize, batch: usize) -> Sequence<'a> {
        Sequence {
            input,
            seq_len,
            batch,
            layout: Layout::SequenceMajor,
            lengths: None,
        }
    }
}

/// Per-stream recurrent state, owned by the caller.
///
/// `h` is `[L*D, B, Hout]` and `c` is `[L*D, B, H]` (empty for GRU), indexed
/// by `layer * D + direction` as in PyTorch's `h_n`/`c_n`. Before a run it
/// holds the initial state; after it, the final state. Two states are equal
/// when their batch, `h` and `c` are (the count of streaming steps taken,
/// which only picks the direction the kernels walk the weights in, is not
/// compared).
#[derive(Debug, Clone)]
pub struct State {
    pub(crate) h: Vec<f32>,
    pub(crate) c: Vec<f32>,
    pub(crate) batch: usize,
    /// Number of streaming steps taken (kernels use its parity to alternate
    /// the direction they walk the weights in).
    pub(crate) steps: u64,
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.batch == other.batch && self.h == other.h && self.c == other.c
    }
}

impl State {
    /// The recurrent state `[L*D, B, Hout]`.
    pub fn h(&self) -> &[f32] {
        &self.h
    }
    /// The recurrent state, writable (to set an initial state).
    pub fn h_mut(&mut self) -> &mut [f32] {
        &mut self.h
    }
    /// The LSTM cell state `[L*D, B, H]` (empty for GRU).
    pub fn c(&self) -> &[f32] {
        &self.c
    }
    /// The LSTM cell state, writable.
    pub fn c_mut(&mut self) -> &mut [f32] {
        &mut self.c
    }
    /// The batch size B this state holds.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Sets every state to zero.
    pub fn reset(&mut self) {
        self.h.fill(0.0);
        self.c.fill(0.0);
        self.steps = 0;
    }
}

/// Scratch memory for a run, owned by the caller so that repeated runs do
/// not allocate. It grows on first use for a given shape and is reused after.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    pub(crate) layer_a: Vec<f32>,
    pub(crate) layer_b: Vec<f32>,
    pub(crate) step_in: Vec<f32>,
    pub(crate) fast: crate::kernels::FastWs,
}

impl Workspace {
    /// An empty workspace; it grows on first use.
    pub fn new() -> Workspace {
        Workspace::default()
    }
}
