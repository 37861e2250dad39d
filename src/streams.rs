//! Many independent streams of one model, stepped together: each weight
//! load of a step serves every stream in the call.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Cell;
use crate::error::{check_dims, check_len, product, Error, Result};
use crate::kernels::grow;
use crate::model::Rnn;
use crate::state::{State, Workspace};
use crate::team::{Exec, Team};

/// Pool ids: a [`StreamId`] of one pool is never valid in another.
static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

/// Names one stream of a [`Streams`] pool, from [`Streams::join`] until
/// [`Streams::leave`]. An id of a stream that left (even if its slot has
/// been reused since) or of another pool is refused with
/// [`Error::InvalidStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    pool: u64,
    slot: u32,
    generation: u32,
}

impl StreamId {
    /// The stream's slot in its pool, `0..capacity` (slots are reused once
    /// a stream leaves).
    pub fn slot(&self) -> usize {
        self.slot as usize
    }

    /// `(pool, slot, generation)`, for the C API's plain struct.
    #[cfg(feature = "capi")]
    pub(crate) fn parts(&self) -> (u64, u32, u32) {
        (self.pool, self.slot, self.generation)
    }

    /// The id of those parts. Any values are safe: a pool checks every id
    /// it is given (another pool's, a stale or an out-of-range slot is
    /// `Error::InvalidStream`).
    #[cfg(feature = "capi")]
    pub(crate) fn from_parts(pool: u64, slot: u32, generation: u32) -> StreamId {
        StreamId {
            pool,
            slot,
            generation,
        }
    }
}

/// The states of up to `capacity` independent streams of one forward
/// model (any cell, layer count, features and weight format), stepped
/// together: streams [`join`](Streams::join) and [`leave`](Streams::leave)
/// between steps, and one [`step`](Streams::step) advances any subset of
/// them by one time step, each with its own input frame, through the
/// batched fused kernels, so each weight load serves every stream in the
/// call. A stream's numbers are bit-identical to stepping it alone with
/// [`Rnn::step`] (the same per-unit arithmetic; the batch only changes how
/// many rows share a weight load).
///
/// All memory is taken when the pool is made (state for `capacity`
/// streams, the workspace for a step of all of them); a step allocates
/// nothing (a [`Team`]'s first step grows the workspace for its threads
/// once).
///
/// ```
/// # use fusedrnn::{Cell, Config, DirectionWeights, Rnn, Streams};
/// # let (h, i) = (8, 3);
/// # let w = DirectionWeights { w: vec![0.1; 4 * h * i], r: vec![0.05; 4 * h * h],
/// #     wb: vec![0.0; 4 * h], rb: vec![0.0; 4 * h], peepholes: None, proj: None };
/// let model = Rnn::new(Config::new(Cell::Lstm, i, h), vec![w])?;
/// let mut pool = Streams::new(&model, 64)?;
/// let (a, b) = (pool.join()?, pool.join()?);
/// // One frame per stream, in the order of the ids: [n, I] in, [n, Hout] out.
/// let frames = [0.5, -0.5, 1.0, /* b: */ 0.0, 0.25, 0.75];
/// let mut out = vec![0.0; 2 * h];
/// pool.step(&model, &[a, b], &frames, &mut out)?;
/// pool.step(&model, &[b], &frames[3..], &mut out[..h])?; // b alone
/// pool.leave(a)?;
/// # Ok::<(), fusedrnn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Streams {
    pool: u64,
    cell: Cell,
    /// L, I, H, Hout of the model the pool was made for.
    dims: [usize; 4],
    capacity: usize,
    /// `[L, capacity, Hout]`.
    h: Vec<f32>,
    /// `[L, capacity, H]` (empty for GRU).
    c: Vec<f32>,
    generation: Vec<u32>,
    live: Vec<bool>,
    /// Free slots, taken from the end.
    free: Vec<u32>,
    /// `mark[slot] == call`: the slot is already in this call's ids.
    mark: Vec<u64>,
    call: u64,
    /// This call's slots, in the order of its ids.
    slots: Vec<usize>,
    /// Steps taken (their parity alternates the panel walk).
    steps: u64,
    ws: Workspace,
}

impl Streams {
    /// A pool for up to `capacity` streams of `model`, every buffer a step
    /// needs allocated here.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a reverse or bidirectional model (as
    /// [`Rnn::step`]); [`Error::InvalidAttribute`] for a capacity of 0 or
    /// above `u32::MAX`; [`Error::TooLarge`] if the sizes overflow or the
    /// memory cannot be had.
    pub fn new(model: &Rnn, capacity: usize) -> Result<Streams> {
        model.check_forward()?;
        if capacity == 0 || capacity > u32::MAX as usize {
            return Err(Error::InvalidAttribute {
                name: "capacity".into(),
                reason: format!("{capacity}: a pool holds 1 to {} streams", u32::MAX),
            });
        }
        let cfg = model.config();
        let (l, hs, hout) = (cfg.num_layers, cfg.hidden_size, cfg.output_size());
        let mut h = Vec::new();
        grow(&mut h, product("stream states h", &[l, capacity, hout])?)?;
        let mut c = Vec::new();
        if cfg.cell == Cell::Lstm {
            grow(&mut c, product("stream states c", &[l, capacity, hs])?)?;
        }
        let mut pool = Streams {
            pool: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
            cell: cfg.cell,
            dims: [l, cfg.input_size, hs, hout],
            capacity,
            h,
            c,
            generation: Vec::new(),
            live: Vec::new(),
            free: Vec::new(),
            mark: Vec::new(),
            call: 0,
            slots: Vec::new(),
            steps: 0,
            ws: Workspace::new(),
        };
        grow(&mut pool.generation, capacity)?;
        grow(&mut pool.live, capacity)?;
        grow(&mut pool.mark, capacity)?;
        grow(&mut pool.slots, capacity)?;
        pool.free
            .try_reserve_exact(capacity)
            .map_err(|_| Error::TooLarge {
                what: format!("stream pool of {capacity}"),
            })?;
        // Slot 0 is handed out first.
        pool.free.extend((0..capacity as u32).rev());
        pool.reserve(model, capacity, 1)?;
        Ok(pool)
    }

    /// Grows the workspace for a step of `n` streams on `threads` threads.
    fn reserve(&mut self, model: &Rnn, n: usize, threads: usize) -> Result<()> {
        grow(
            &mut self.ws.step_in,
            product("layer input", &[n, self.dims[3]])?,
        )?;
        if let Some(fast) = model.fast() {
            fast.reserve(model.config(), n, 0, threads, &mut self.ws.fast)?;
        }
        Ok(())
    }

    /// The most streams the pool holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of live streams.
    pub fn len(&self) -> usize {
        self.capacity - self.free.len()
    }

    /// Whether no stream is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` names a live stream of this pool.
    pub fn contains(&self, id: StreamId) -> bool {
        let s = id.slot as usize;
        id.pool == self.pool
            && s < self.capacity
            && self.live[s]
            && self.generation[s] == id.generation
    }

    /// A new stream with a zero state.
    ///
    /// # Errors
    /// [`Error::PoolFull`] if `capacity` streams are live.
    pub fn join(&mut self) -> Result<StreamId> {
        let slot = self.free.pop().ok_or(Error::PoolFull {
            capacity: self.capacity,
        })? as usize;
        self.live[slot] = true;
        self.set_rows(slot, None);
        Ok(StreamId {
            pool: self.pool,
            slot: slot as u32,
            generation: self.generation[slot],
        })
    }

    /// A new stream starting from `initial`, a batch-1 state of the model
    /// (`h` `[L, Hout]`, `c` `[L, H]`, as [`Rnn::new_state`]`(1)` makes).
    ///
    /// # Errors
    /// [`Error::BufferLength`] if `initial` is not a batch-1 state of the
    /// pool's sizes; [`Error::PoolFull`] if `capacity` streams are live.
    pub fn join_with(&mut self, initial: &State) -> Result<StreamId> {
        self.check_single(initial)?;
        let id = self.join()?;
        self.set_rows(id.slot as usize, Some(initial));
        Ok(id)
    }

    /// Replaces a live stream's state with `state` (batch 1).
    ///
    /// # Errors
    /// [`Error::InvalidStream`] if `id` names no live stream of this pool;
    /// [`Error::BufferLength`] if `state` is not a batch-1 state of the
    /// pool's sizes.
    pub fn set_state(&mut self, id: StreamId, state: &State) -> Result<()> {
        self.check_id(id, 0)?;
        self.check_single(state)?;
        self.set_rows(id.slot as usize, Some(state));
        Ok(())
    }

    /// A copy of a live stream's state, as a batch-1 [`State`].
    ///
    /// # Errors
    /// [`Error::InvalidStream`] if `id` names no live stream of this pool.
    pub fn state(&self, id: StreamId) -> Result<State> {
        self.check_id(id, 0)?;
        let [l, _, hs, hout] = self.dims;
        let slot = id.slot as usize;
        let mut st = State {
            h: Vec::with_capacity(l * hout),
            c: Vec::with_capacity(if self.c.is_empty() { 0 } else { l * hs }),
            batch: 1,
            steps: self.steps,
        };
        for k in 0..l {
            st.h.extend_from_slice(&self.h[(k * self.capacity + slot) * hout..][..hout]);
            if !self.c.is_empty() {
                st.c.extend_from_slice(&self.c[(k * self.capacity + slot) * hs..][..hs]);
            }
        }
        Ok(st)
    }

    /// Ends a stream; its id (and every copy of it) stops being valid.
    ///
    /// # Errors
    /// [`Error::InvalidStream`] if `id` names no live stream of this pool.
    pub fn leave(&mut self, id: StreamId) -> Result<()> {
        self.check_id(id, 0)?;
        let slot = id.slot as usize;
        self.live[slot] = false;
        self.generation[slot] = self.generation[slot].wrapping_add(1);
        self.free.push(id.slot);
        Ok(())
    }

    /// Ends every stream.
    pub fn clear(&mut self) {
        for s in 0..self.capacity {
            if self.live[s] {
                self.live[s] = false;
                self.generation[s] = self.generation[s].wrapping_add(1);
            }
        }
        self.free.clear();
        self.free.extend((0..self.capacity as u32).rev());
    }

    /// One time step of the streams `ids` (any subset of the live
    /// streams, in any order, each at most once): `x` holds one input frame
    /// per id, `[n, I]` in the order of `ids`; `output` receives each
    /// stream's new last-layer `h`, `[n, Hout]` in the same order. Each
    /// stream's state advances as [`Rnn::step`] would advance it alone, bit
    /// for bit; streams not named are untouched. `model` is the model the
    /// pool was made for (or one of the same sizes).
    ///
    /// # Errors
    /// Before any work, leaving every state untouched: [`Error::Shape`] if
    /// `model` has other sizes than the pool's; [`Error::InvalidStream`]
    /// for an id that names no live stream of this pool;
    /// [`Error::DuplicateStream`] for an id given twice;
    /// [`Error::BufferLength`] if `x` is not `n*I` floats or `output` not
    /// `n*Hout`.
    pub fn step(
        &mut self,
        model: &Rnn,
        ids: &[StreamId],
        x: &[f32],
        output: &mut [f32],
    ) -> Result<()> {
        self.step_in(model, ids, x, output, &mut Exec::Solo)
    }

    /// [`Streams::step`] on the calling thread or split over a team.
    pub(crate) fn step_in(
        &mut self,
        model: &Rnn,
        ids: &[StreamId],
        x: &[f32],
        output: &mut [f32],
        exec: &mut Exec<'_>,
    ) -> Result<()> {
        model.check_forward()?;
        let cfg = model.config();
        let dims = [
            cfg.num_layers,
            cfg.input_size,
            cfg.hidden_size,
            cfg.output_size(),
        ];
        if dims != self.dims || cfg.cell != self.cell {
            return Err(Error::Shape {
                what: "model of the stream pool ([L, I, H, Hout])".into(),
                expected: self.dims.to_vec(),
                got: dims.to_vec(),
            });
        }
        let [_, inp, _, hout] = self.dims;
        let n = ids.len();
        check_dims("input frames", &[n, inp], x.len())?;
        // Fits: n <= capacity (checked below) and [L, capacity, Hout] fits.
        check_dims("output", &[n, hout], output.len())?;
        self.call += 1;
        for (index, &id) in ids.iter().enumerate() {
            self.check_id(id, index)?;
            let s = id.slot as usize;
            if self.mark[s] == self.call {
                return Err(Error::DuplicateStream { index });
            }
            self.mark[s] = self.call;
            self.slots[index] = s;
        }
        if n == 0 {
            return Ok(());
        }
        model.step_rows(
            x,
            (&mut self.h, &mut self.c),
            self.capacity,
            Some(&self.slots[..n]),
            self.steps % 2 == 1,
            output,
            &mut self.ws,
            exec,
        )?;
        self.steps += 1;
        Ok(())
    }

    /// [`Error::InvalidStream`] (at position `index` of a call) unless `id`
    /// names a live stream of this pool.
    fn check_id(&self, id: StreamId, index: usize) -> Result<()> {
        if self.contains(id) {
            Ok(())
        } else {
            Err(Error::InvalidStream { index })
        }
    }

    /// Checks that `st` is a batch-1 state of the pool's sizes.
    fn check_single(&self, st: &State) -> Result<()> {
        let [l, _, hs, hout] = self.dims;
        check_len("state batch", 1, st.batch)?;
        check_len("state h", l * hout, st.h.len())?;
        check_len(
            "state c",
            if self.c.is_empty() { 0 } else { l * hs },
            st.c.len(),
        )
    }

    /// Sets slot `slot`'s rows to `st` (checked batch-1 state) or zeros.
    fn set_rows(&mut self, slot: usize, st: Option<&State>) {
        let [l, _, hs, hout] = self.dims;
        for k in 0..l {
            let h = &mut self.h[(k * self.capacity + slot) * hout..][..hout];
            match st {
                Some(st) => h.copy_from_slice(&st.h[k * hout..(k + 1) * hout]),
                None => h.fill(0.0),
            }
            if !self.c.is_empty() {
                let c = &mut self.c[(k * self.capacity + slot) * hs..][..hs];
                match st {
                    Some(st) => c.copy_from_slice(&st.c[k * hs..(k + 1) * hs]),
                    None => c.fill(0.0),
                }
            }
        }
    }
}

impl Team {
    /// [`Rnn::run`] on this team: bit-identical results, each layer step
    /// split by hidden units over the team's threads.
    ///
    /// # Errors
    /// As for [`Rnn::run`].
    pub fn run(
        &mut self,
        model: &Rnn,
        seq: &crate::Sequence<'_>,
        state: &mut State,
        output: &mut [f32],
        ws: &mut Workspace,
    ) -> Result<()> {
        model.run_in(seq, state, output, ws, &mut Exec::Team(self))
    }

    /// [`Rnn::step`] on this team: bit-identical results.
    ///
    /// # Errors
    /// As for [`Rnn::step`].
    pub fn step(
        &mut self,
        model: &Rnn,
        x: &[f32],
        state: &mut State,
        output: &mut [f32],
        ws: &mut Workspace,
    ) -> Result<()> {
        model.step_in(x, state, output, ws, &mut Exec::Team(self))
    }

    /// [`Streams::step`] on this team: bit-identical results.
    ///
    /// # Errors
    /// As for [`Streams::step`].
    pub fn step_streams(
        &mut self,
        model: &Rnn,
        streams: &mut Streams,
        ids: &[StreamId],
        x: &[f32],
        output: &mut [f32],
    ) -> Result<()> {
        streams.step_in(model, ids, x, output, &mut Exec::Team(self))
    }
}
