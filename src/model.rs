//! The model object, how it is built (packed once), and the two ways to
//! run it: a whole sequence, or one streaming time step.

use crate::config::{Cell, Config};
use crate::error::{check_dims, check_len, product, Error, Result};
use crate::family::KernelFamily;
use crate::kernels::grow;
use crate::plan::Plan;
use crate::reference;
use crate::team::Exec;
use crate::weights::{DirectionWeights, WeightFormat};

use crate::state::{Layout, Sequence, State, Workspace};

/// A recurrent model (LSTM or GRU, any number of layers, any direction):
/// immutable once built, `Send + Sync`, so one copy of the weights serves
/// many threads, each with its own [`State`] and [`Workspace`].
#[derive(Debug, Clone)]
pub struct Rnn {
    cfg: Config,
    /// `[L * D]`, indexed `layer * D + direction`.
    weights: Vec<DirectionWeights>,
    format: WeightFormat,
    plan: Plan,
}

/// Where one pass reads or writes a sequence: element offset of `(t, b)` is
/// `t * t_stride + b * b_stride`, plus a feature offset.
#[derive(Clone, Copy)]
struct Strides {
    t: usize,
    b: usize,
}

impl Strides {
    fn new(layout: Layout, seq_len: usize, batch: usize, features: usize) -> Strides {
        match layout {
            Layout::SequenceMajor => Strides {
                t: batch * features,
                b: features,
            },
            Layout::BatchMajor => Strides {
                t: features,
                b: seq_len * features,
            },
        }
    }
    fn at(&self, t: usize, b: usize) -> usize {
        t * self.t + b * self.b
    }
}

impl Rnn {
    /// A model of validated parts (see [`RnnBuilder::build`](crate::RnnBuilder::build)).
    pub(crate) fn from_parts(
        cfg: Config,
        weights: Vec<DirectionWeights>,
        format: WeightFormat,
        plan: Plan,
    ) -> Rnn {
        Rnn {
            cfg,
            weights,
            format,
            plan,
        }
    }

    /// The same model run by kernel family `family`. This packs the weights
    /// again for that family; [`RnnBuilder::kernel`](crate::RnnBuilder::kernel) packs them only once.
    ///
    /// # Errors
    /// [`Error::KernelUnavailable`] if this CPU or build cannot run it.
    pub fn with_kernel(mut self, family: KernelFamily) -> Result<Rnn> {
        self.plan = Plan::new(&self.cfg, &self.weights, family, self.format)?;
        Ok(self)
    }

    /// The model with its weight matrices (`W`, `R`, projection) stored in
    /// `format` by the fast kernels: they are rounded to the format once,
    /// here, and every kernel (the reference included) then computes with
    /// the rounded values, so the kernels still agree with each other and
    /// the model differs from the f32 one only by that rounding (see
    /// [`WeightFormat`] for the error per weight). From f32 only: rounding
    /// an already rounded model to another format would round twice, which
    /// gives [`Error::Unsupported`]. This packs the weights again;
    /// [`RnnBuilder::weight_format`](crate::RnnBuilder::weight_format) packs them only once.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the model was already rounded to another
    /// 16-bit format.
    ///
    /// ```
    /// # use fusedrnn::{Cell, Config, DirectionWeights, Rnn, WeightFormat};
    /// # let w = DirectionWeights { w: vec![0.1; 8 * 3], r: vec![0.2; 8 * 2], wb: vec![0.0; 8],
    /// #     rb: vec![0.0; 8], peepholes: None, proj: None };
    /// let model = Rnn::new(Config::new(Cell::Lstm, 3, 2), vec![w])?;
    /// let half = model.with_weight_format(WeightFormat::Bf16)?;
    /// assert!(half.kernel_name().contains("bf16") || half.kernel_name().contains("reference"));
    /// # Ok::<(), fusedrnn::Error>(())
    /// ```
    pub fn with_weight_format(mut self, format: WeightFormat) -> Result<Rnn> {
        if format == self.format {
            return Ok(self);
        }
        if self.format != WeightFormat::F32 {
            return Err(Error::Unsupported(format!(
                "weights already rounded to {}; build the model again to use {}",
                self.format.name(),
                format.name()
            )));
        }
        check_format(&self.cfg, format)?;
        self.weights = self.weights.iter().map(|w| w.rounded(format)).collect();
        self.format = format;
        self.plan = Plan::new(&self.cfg, &self.weights, self.plan.family(), format)?;
        Ok(self)
    }

    /// How the fast kernel stores the weight matrices.
    pub fn weight_format(&self) -> WeightFormat {
        self.format
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The canonical weights, indexed `layer * D + direction` (rounded to
    /// [`Rnn::weight_format`]).
    pub fn weights(&self) -> &[DirectionWeights] {
        &self.weights
    }

    /// The full name of the kernel this model runs.
    pub fn kernel_name(&self) -> &str {
        self.plan.name()
    }

    /// Bytes of packed recurrent weights one time step reads (all layers
    /// and directions); 0 for the reference, which packs nothing.
    pub fn recurrent_weight_bytes(&self) -> usize {
        self.plan.fast().map_or(0, |k| k.recurrent_bytes())
    }

    /// Reads every packed recurrent weight once with this model's ISA and
    /// returns their sum: the memory floor of one time step, for benchmark
    /// tools (`floor_ns`). Not part of inference (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn stream_recurrent_weights(&self) -> f32 {
        self.plan.fast().map_or(0.0, |k| k.stream_recurrent())
    }

    /// The kernel family this model runs.
    pub fn kernel_family(&self) -> KernelFamily {
        self.plan.family()
    }

    /// A zero state for `batch` entries (`h` `[L*D, B, Hout]`, `c`
    /// `[L*D, B, H]`).
    ///
    /// # Errors
    /// [`Error::TooLarge`] if its size overflows or the memory cannot be had.
    pub fn new_state(&self, batch: usize) -> Result<State> {
        let (h_len, c_len) = self.state_lens(batch)?;
        let zeros = |n: usize| -> Result<Vec<f32>> {
            let mut v = Vec::new();
            grow(&mut v, n)?;
            Ok(v)
        };
        Ok(State {
            h: zeros(h_len)?,
            c: zeros(c_len)?,
            batch,
            steps: 0,
        })
    }

    /// Number of output features per time step: `D * Hout`.
    pub fn output_features(&self) -> usize {
        self.cfg.num_directions() * self.cfg.output_size()
    }

    /// Lengths of `h` and `c` of a state for `batch` entries (checked).
    fn state_lens(&self, batch: usize) -> Result<(usize, usize)> {
        let ld = self.cfg.num_layers * self.cfg.num_directions();
        let c = match self.cfg.cell {
            Cell::Lstm => product("state c", &[ld, batch, self.cfg.hidden_size])?,
            Cell::Gru => 0,
        };
        Ok((product("state h", &[ld, batch, self.cfg.output_size()])?, c))
    }

    /// Checks that `state` fits this model: `h` and `c` hold the lengths
    /// its batch needs. (A state of another model with the same sizes fits
    /// too: it is the caller's to pair states with models.)
    fn check_state(&self, state: &State) -> Result<()> {
        let (h, c) = self.state_lens(state.batch)?;
        check_len("state h", h, state.h.len())?;
        check_len("state c", c, state.c.len())
    }

    /// Runs a whole batch of sequences.
    ///
    /// `state` holds the initial states on entry (use [`Rnn::new_state`] for
    /// zeros) and the final states on return. `output` receives every
    /// time step of the last layer, `[T, B, D*Hout]` or `[B, T, D*Hout]`
    /// (the input's layout), the forward pass's features first. All shapes
    /// are checked before any work; nothing is allocated once `ws` has
    /// grown to the shape.
    ///
    /// NaN and infinity in the input or the state are computed with as
    /// IEEE arithmetic says (a NaN reaches every later output it feeds);
    /// they are not errors.
    ///
    /// # Errors
    /// Before any work, leaving `state` and `output` untouched:
    /// [`Error::BufferLength`] if `seq.input` is not `T*B*I` floats,
    /// `output` not `T*B*D*Hout`, `state` not for batch `B` of this model,
    /// or `lengths` not `B` long; [`Error::LengthOutOfRange`] for a length
    /// above `T`; [`Error::TooLarge`] if `T*B*...` overflows or the
    /// workspace cannot grow to the shape.
    pub fn run(
        &self,
        seq: &Sequence<'_>,
        state: &mut State,
        output: &mut [f32],
        ws: &mut Workspace,
    ) -> Result<()> {
        self.run_in(seq, state, output, ws, &mut Exec::Solo)
    }

    /// [`Rnn::run`] on the calling thread or split over a team.
    pub(crate) fn run_in(
        &self,
        seq: &Sequence<'_>,
        state: &mut State,
        output: &mut [f32],
        ws: &mut Workspace,
        exec: &mut Exec<'_>,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let (t_len, batch) = (seq.seq_len, seq.batch);
        // Checked: T and B are the caller's; a product that overflows is an
        // error, never a wrapped length that a short buffer would match.
        check_dims("input", &[t_len, batch, cfg.input_size], seq.input.len())?;
        let feat = self.output_features();
        check_dims("output", &[t_len, batch, feat], output.len())?;
        if state.batch != batch {
            return Err(Error::BufferLength {
                what: "state batch".into(),
                expected: batch,
                got: state.batch,
            });
        }
        self.check_state(state)?;
        if let Some(lengths) = seq.lengths {
            check_len("lengths", batch, lengths.len())?;
            for (index, &length) in lengths.iter().enumerate() {
                if length > t_len {
                    return Err(Error::LengthOutOfRange {
                        index,
                        length,
                        seq_len: t_len,
                    });
                }
            }
        }

        if t_len == 0 || batch == 0 {
            // No step to run (and a huge T with B = 0 must not loop T
            // times over nothing); with explicit lengths every entry has
            // length 0 and ends with a zero state, as ONNX Runtime does.
            if seq.lengths.is_some() {
                state.h.fill(0.0);
                state.c.fill(0.0);
            }
            return Ok(());
        }
        // Fits: the output buffer has these T*B*feat floats.
        let inner = t_len * batch * feat;
        if cfg.num_layers > 1 {
            grow(&mut ws.layer_a, inner)?;
            grow(&mut ws.layer_b, if cfg.num_layers > 2 { inner } else { 0 })?;
        }
        if let Some(fast) = self.plan.fast() {
            // Every buffer the layers need, before any work: a run that
            // fails for memory leaves the state as it was.
            fast.reserve(cfg, batch, t_len * batch, exec.threads(), &mut ws.fast)?;
        }
        let mut buf_a = std::mem::take(&mut ws.layer_a);
        let mut buf_b = std::mem::take(&mut ws.layer_b);
        let mut result = Ok(());
        for k in 0..cfg.num_layers {
            let last = k + 1 == cfg.num_layers;
            // Layer k reads the user input (k = 0) or the previous layer's
            // buffer, and writes the user output (last) or the other buffer.
            let (src, src_strides, dst, dst_strides): (&[f32], Strides, &mut [f32], Strides) =
                match (k, last) {
                    (0, true) => (
                        seq.input,
                        Strides::new(seq.layout, t_len, batch, cfg.input_size),
                        &mut *output,
                        Strides::new(seq.layout, t_len, batch, feat),
                    ),
                    (0, false) => (
                        seq.input,
                        Strides::new(seq.layout, t_len, batch, cfg.input_size),
                        &mut buf_a[..inner],
                        Strides::new(Layout::SequenceMajor, t_len, batch, feat),
                    ),
                    (_, _) => {
                        let (prev, next) = if k % 2 == 1 {
                            (&buf_a[..inner], &mut buf_b[..])
                        } else {
                            (&buf_b[..inner], &mut buf_a[..])
                        };
                        let seq_strides = Strides::new(Layout::SequenceMajor, t_len, batch, feat);
                        if last {
                            (
                                prev,
                                seq_strides,
                                &mut *output,
                                Strides::new(seq.layout, t_len, batch, feat),
                            )
                        } else {
                            (prev, seq_strides, &mut next[..inner], seq_strides)
                        }
                    }
                };
            result = self.run_layer(
                k,
                seq,
                src,
                src_strides,
                dst,
                dst_strides,
                state,
                &mut ws.fast,
                exec,
            );
            if result.is_err() {
                break;
            }
        }
        ws.layer_a = buf_a;
        ws.layer_b = buf_b;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn run_layer(
        &self,
        k: usize,
        seq: &Sequence<'_>,
        src: &[f32],
        src_s: Strides,
        dst: &mut [f32],
        dst_s: Strides,
        state: &mut State,
        fws: &mut crate::kernels::FastWs,
        exec: &mut Exec<'_>,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let dirs = cfg.num_directions();
        let (hout, hs) = (cfg.output_size(), cfg.hidden_size);
        let in_size = cfg.layer_input_size(k);
        let batch = seq.batch;
        if let Some(fast) = self.plan.fast() {
            for d in 0..dirs {
                let idx = k * dirs + d;
                let c: &mut [f32] = if cfg.cell == Cell::Lstm {
                    &mut state.c[idx * batch * hs..(idx + 1) * batch * hs]
                } else {
                    &mut []
                };
                let args = crate::kernels::SeqArgs {
                    src,
                    src_t: src_s.t,
                    src_b: src_s.b,
                    dst: &mut *dst,
                    dst_t: dst_s.t,
                    dst_b: dst_s.b,
                    dst_off: d * hout,
                    seq_len: seq.seq_len,
                    batch,
                    lengths: seq.lengths,
                    reverse: cfg.direction.is_reverse(d),
                    h: &mut state.h[idx * batch * hout..(idx + 1) * batch * hout],
                    c,
                };
                fast.sequence(cfg, idx, args, fws, exec)?;
            }
            return Ok(());
        }
        for d in 0..dirs {
            let idx = k * dirs + d;
            let p = reference::StepParams {
                cfg,
                acts: cfg.activations[d],
                w: &self.weights[idx],
                dynamic: self.format == WeightFormat::Int8Dynamic,
            };
            let reverse = cfg.direction.is_reverse(d);
            for b in 0..batch {
                let len = seq.lengths.map_or(seq.seq_len, |l| l[b]);
                let h = &mut state.h[(idx * batch + b) * hout..][..hout];
                let c: &mut [f32] = if cfg.cell == Cell::Lstm {
                    &mut state.c[(idx * batch + b) * hs..][..hs]
                } else {
                    &mut []
                };
                if seq.lengths.is_some() && len == 0 {
                    h.fill(0.0);
                    c.fill(0.0);
                }
                for s in 0..len {
                    let t = if reverse { len - 1 - s } else { s };
                    let x = &src[src_s.at(t, b)..][..in_size];
                    reference::step(&p, x, h, c);
                    dst[dst_s.at(t, b) + d * hout..][..hout].copy_from_slice(h);
                }
                for t in len..seq.seq_len {
                    dst[dst_s.at(t, b) + d * hout..][..hout].fill(0.0);
                }
            }
        }
        Ok(())
    }

    /// One streaming time step of a forward (unidirectional) model: `x` is
    /// `[B, I]`, `state` is updated in place, `output` receives the last
    /// layer's new `h`, `[B, Hout]`. Gives the same numbers as
    /// [`Rnn::run`] over the same inputs (NaN and infinity included: they
    /// propagate, they are not errors).
    ///
    /// # Errors
    /// Before any work: [`Error::Unsupported`] for a reverse or
    /// bidirectional model; [`Error::BufferLength`] if `x` is not `B*I`
    /// floats, `output` not `B*Hout`, or `state` not of this model's sizes;
    /// [`Error::TooLarge`] if the workspace cannot grow to the batch.
    pub fn step(
        &self,
        x: &[f32],
        state: &mut State,
        output: &mut [f32],
        ws: &mut Workspace,
    ) -> Result<()> {
        self.step_in(x, state, output, ws, &mut Exec::Solo)
    }

    /// [`Error::Unsupported`] unless this is a forward model (the only
    /// kind a streaming step runs).
    pub(crate) fn check_forward(&self) -> Result<()> {
        if self.cfg.direction != crate::config::Direction::Forward {
            return Err(Error::Unsupported(
                "a streaming step needs a forward model (the reverse pass needs the whole sequence)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The packed fast kernel, if the model runs one.
    pub(crate) fn fast(&self) -> Option<&crate::kernels::FastKernel> {
        self.plan.fast()
    }

    /// [`Rnn::step`] on the calling thread or split over a team.
    pub(crate) fn step_in(
        &self,
        x: &[f32],
        state: &mut State,
        output: &mut [f32],
        ws: &mut Workspace,
        exec: &mut Exec<'_>,
    ) -> Result<()> {
        let cfg = &self.cfg;
        self.check_forward()?;
        let batch = state.batch;
        self.check_state(state)?;
        check_dims("input", &[batch, cfg.input_size], x.len())?;
        let hout = cfg.output_size();
        // Fits: the state's h holds L*B*Hout floats.
        check_len("output", batch * hout, output.len())?;
        let backwards = state.steps % 2 == 1;
        self.step_rows(
            x,
            (&mut state.h, &mut state.c),
            batch,
            None,
            backwards,
            output,
            ws,
            exec,
        )?;
        state.steps += 1;
        Ok(())
    }

    /// One streaming step of state rows of a forward model, the fast kernel
    /// or the reference: `h` `[L, N, Hout]` and `c` `[L, N, H]` hold `N`
    /// rows per layer; input row `i` of `x` (`[n, I]`) advances state row
    /// `slots[i]` (`None`: row `i`, `n = N`), and `output` (`[n, Hout]`)
    /// receives its new last-layer `h`. `backwards` alternates the panel
    /// walk between steps. Used by [`Rnn::step`] (a state's batch) and
    /// [`crate::Streams`] (the named streams of a pool); the callers check
    /// every length and that the slots are distinct rows below `N`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the workspace cannot grow to `n` rows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step_rows(
        &self,
        x: &[f32],
        (h, c): (&mut [f32], &mut [f32]),
        rows: usize,
        slots: Option<&[usize]>,
        backwards: bool,
        output: &mut [f32],
        ws: &mut Workspace,
        exec: &mut Exec<'_>,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let (l, hs, hout, inp) = (
            cfg.num_layers,
            cfg.hidden_size,
            cfg.output_size(),
            cfg.input_size,
        );
        let lstm = cfg.cell == Cell::Lstm;
        let n = slots.map_or(rows, |s| s.len());
        let slot = |i: usize| slots.map_or(i, |s| s[i]);
        if let Some(fast) = self.plan.fast() {
            grow(&mut ws.step_in, n * hout)?;
            fast.reserve(cfg, n, 0, exec.threads(), &mut ws.fast)?;
            for k in 0..l {
                if k > 0 {
                    // This layer's input: the rows' new h of layer k-1.
                    for i in 0..n {
                        ws.step_in[i * hout..(i + 1) * hout]
                            .copy_from_slice(&h[((k - 1) * rows + slot(i)) * hout..][..hout]);
                    }
                }
                let xin: &[f32] = if k == 0 { x } else { &ws.step_in[..n * hout] };
                let hk = &mut h[k * rows * hout..(k + 1) * rows * hout];
                let ck: &mut [f32] = if lstm {
                    &mut c[k * rows * hs..(k + 1) * rows * hs]
                } else {
                    &mut []
                };
                fast.stream(cfg, k, xin, hk, ck, slots, backwards, &mut ws.fast, exec)?;
            }
        } else {
            grow(&mut ws.step_in, hout)?;
            for i in 0..n {
                let r = slot(i);
                for k in 0..l {
                    let p = reference::StepParams {
                        cfg,
                        acts: cfg.activations[0],
                        w: &self.weights[k],
                        dynamic: self.format == WeightFormat::Int8Dynamic,
                    };
                    if k > 0 {
                        // The previous layer's new h is this layer's input.
                        ws.step_in[..hout]
                            .copy_from_slice(&h[((k - 1) * rows + r) * hout..][..hout]);
                    }
                    let xin: &[f32] = if k == 0 {
                        &x[i * inp..(i + 1) * inp]
                    } else {
                        &ws.step_in[..hout]
                    };
                    let hk = &mut h[(k * rows + r) * hout..][..hout];
                    let ck: &mut [f32] = if lstm {
                        &mut c[(k * rows + r) * hs..][..hs]
                    } else {
                        &mut []
                    };
                    reference::step(&p, xin, hk, ck);
                }
            }
        }
        for i in 0..n {
            output[i * hout..(i + 1) * hout]
                .copy_from_slice(&h[((l - 1) * rows + slot(i)) * hout..][..hout]);
        }
        Ok(())
    }

    /// Convenience for a one-off run: allocates the output, a state
    /// (from `initial` or zeros) and a workspace, and returns the output and
    /// the final state.
    ///
    /// # Errors
    /// As for [`Rnn::run`].
    pub fn forward(
        &self,
        seq: &Sequence<'_>,
        initial: Option<&State>,
    ) -> Result<(Vec<f32>, State)> {
        let mut state = match initial {
            Some(s) => s.clone(),
            None => self.new_state(seq.batch)?,
        };
        let mut out = vec![0.0; seq.seq_len * seq.batch * self.output_features()];
        self.run(seq, &mut state, &mut out, &mut Workspace::new())?;
        Ok((out, state))
    }
}

/// Whether `format` can hold a model of `cfg`: the reductions of an
/// [`WeightFormat::Int8Dynamic`] product (every layer's input size and
/// `Hout`) are at most [`crate::weights::INT8_DYNAMIC_MAX_K`].
///
/// # Errors
/// [`Error::Unsupported`] naming the size that is too long.
pub(crate) fn check_format(cfg: &Config, format: WeightFormat) -> Result<()> {
    if format != WeightFormat::Int8Dynamic {
        return Ok(());
    }
    let max = crate::weights::INT8_DYNAMIC_MAX_K;
    let k = (0..cfg.num_layers)
        .map(|l| cfg.layer_input_size(l))
        .chain([cfg.output_size()])
        .max()
        .unwrap_or(0);
    if k > max {
        return Err(Error::Unsupported(format!(
            "int8-dynamic weights reduce over at most {max} inputs (i32 sums), this model over {k}"
        )));
    }
    Ok(())
}
