//! A caller-owned team of persistent threads that runs one model's step
//! split by hidden units: each thread computes its own range of weight
//! blocks (so each core streams, and keeps in its own cache, its own share
//! of the weights across steps), with one barrier per layer step.
//!
//! Threads start when the team is made and end when it is dropped; a job
//! wakes them without starting anything and without a lock. Between jobs
//! and at barriers a thread spins for at most [`SPIN`] (yielding its core
//! after the first eighth of it, in case the thread it waits for was
//! preempted), then parks (`std::thread::park`), so an idle team costs no
//! CPU.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a waiting team thread spins before it parks: longer than a
/// barrier wait inside a run (one layer step of a model worth splitting,
/// tens of microseconds at most), far shorter than the gap between two
/// 10 ms frames of a stream, so an idle team sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// Spins (with the CPU's pause hint, then yielding the core) until `done()`
/// holds, at most [`SPIN`], then parks until it holds. Whoever makes `done()` true unparks this
/// thread afterwards (an unpark that comes first makes the next park
/// return at once), so no wake-up is lost.
fn wait_until(done: impl Fn() -> bool) {
    let mut start = None;
    let mut spins = 0u32;
    while !done() {
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
            continue;
        }
        spins = 0;
        let t0 = *start.get_or_insert_with(Instant::now);
        let waited = t0.elapsed();
        if waited < SPIN / 8 {
            std::hint::spin_loop();
        } else if waited < SPIN {
            // Long for a barrier: the thread we wait for may have been
            // preempted (another process on the core); offer the core.
            std::thread::yield_now();
        } else {
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

/// What a job runs: `f(i)` on team thread `i` (0 is the caller).
type JobFn<'a> = dyn Fn(usize) + Sync + 'a;

/// The job in flight: written by the caller before it publishes a new
/// epoch, read by the workers after they see it.
struct JobSlot {
    /// The job, its lifetime erased: the caller does not return (or unwind)
    /// before every worker has finished it.
    f: *const JobFn<'static>,
    /// The caller's thread, unparked by the last worker to finish.
    caller: Option<Thread>,
}

/// State the team's threads share.
struct Shared {
    /// Team size, caller included.
    n: usize,
    /// Bumped (Release) once a job is in [`Shared::job`]; workers wait for it.
    epoch: AtomicU64,
    job: UnsafeCell<JobSlot>,
    /// Workers that have not yet finished the current job.
    pending: AtomicUsize,
    /// Barrier: arrivals in the current round, and the round number.
    arrived: AtomicUsize,
    round: AtomicUsize,
    /// Set when a thread's part of a job panicked: waiting threads give up.
    poisoned: AtomicBool,
    shutdown: AtomicBool,
    /// The workers' handles, for unparking (set once, right after spawning,
    /// before the first job).
    workers: OnceLock<Vec<Thread>>,
}

// SAFETY: `job` is written only by the caller while no job is in flight
// (every worker has finished the previous one: `pending` is 0 and the
// caller holds `&mut Team`), and read by workers only after they see the
// new epoch (Acquire, paired with the caller's Release), so the accesses
// never overlap. Everything else is atomic or immutable after construction.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw job pointer is only dereferenced under that
// protocol, and `Thread` handles are Send.
unsafe impl Send for Shared {}

impl Shared {
    fn poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Unparks every team thread but the calling one.
    fn wake_all(&self, me: usize) {
        if let Some(w) = self.workers.get() {
            for (i, t) in w.iter().enumerate() {
                if i + 1 != me {
                    t.unpark();
                }
            }
        }
        if me != 0 {
            // SAFETY: read during a job (see `unsafe impl Sync`).
            if let Some(c) = unsafe { &(*self.job.get()).caller } {
                c.unpark();
            }
        }
    }

    /// Waits until all `n` team threads have called it for this round.
    /// Panics (unwinding this thread's part of the job) if another
    /// thread's part panicked, so no thread waits forever.
    fn barrier(&self, me: usize) {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
            self.wake_all(me);
        } else {
            wait_until(|| self.round.load(Ordering::Acquire) != round || self.poisoned());
        }
        if self.poisoned() {
            panic!("another thread of the team panicked");
        }
    }
}

/// A worker: waits for each new epoch, runs its part, reports.
fn worker(shared: Arc<Shared>, me: usize) {
    let mut seen = 0u64;
    loop {
        wait_until(|| {
            shared.epoch.load(Ordering::Acquire) != seen || shared.shutdown.load(Ordering::Acquire)
        });
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = shared.epoch.load(Ordering::Acquire);
        // SAFETY: the new epoch was published (Release) after the job slot
        // was written, and the caller keeps the closure alive until
        // `pending` reaches 0, which this worker has not yet signalled.
        let f = unsafe { &*(*shared.job.get()).f };
        if catch_unwind(AssertUnwindSafe(|| f(me))).is_err() {
            shared.poisoned.store(true, Ordering::Release);
            shared.wake_all(me);
        }
        if shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the caller waits for `pending` = 0 before it touches
            // the slot again, so it is still this job's.
            if let Some(c) = unsafe { &(*shared.job.get()).caller } {
                c.unpark();
            }
        }
    }
}

/// A team of `N` threads (the caller's and `N - 1` workers it starts
/// once) that runs a model's [`run`](Team::run), [`step`](Team::step) and
/// many-stream [`step_streams`](Team::step_streams) split by hidden units.
///
/// Each thread computes a contiguous range of the model's weight blocks
/// (of `NR` hidden units) in every layer step, so each core streams only
/// its share of the recurrent weights and keeps it in its own cache from
/// step to step; the threads meet at one barrier per layer step (two for an
/// LSTM with a projection or a GRU with the reset before the matmul: the
/// second pass reads every unit of the first). Every unit is computed by
/// the same code as on one thread, so results are bit-identical to the
/// single-threaded [`Rnn::run`](crate::Rnn::run) and
/// [`Rnn::step`](crate::Rnn::step).
///
/// Models too small to gain (fewer than [`Team::MIN_SPLIT_FMAS`]
/// multiply-adds per layer step, or fewer weight blocks than threads) run
/// on the calling thread alone. Single-threaded stays the default: nothing
/// else in the crate starts a thread.
///
/// Methods take `&mut self`, so a team runs one job at a time; the model is
/// only read, so one model may be shared by several teams and threads.
/// Idle workers spin for at most 100 us after a job, then park; dropping
/// the team stops and joins them.
///
/// ```
/// # use fusedrnn::{Cell, Config, DirectionWeights, Rnn, Sequence, Team, Workspace};
/// # let (h, i) = (64, 8);
/// # let w = DirectionWeights { w: vec![0.01; 4 * h * i], r: vec![0.02; 4 * h * h],
/// #     wb: vec![0.0; 4 * h], rb: vec![0.0; 4 * h], peepholes: None, proj: None };
/// let model = Rnn::new(Config::new(Cell::Lstm, i, h), vec![w])?;
/// let mut team = Team::new(2)?;
/// let x = vec![0.5; 10 * i];
/// let mut state = model.new_state(1)?;
/// let mut y = vec![0.0; 10 * h];
/// team.run(&model, &Sequence::new(&x, 10, 1), &mut state, &mut y, &mut Workspace::new())?;
/// let (y1, _) = model.forward(&Sequence::new(&x, 10, 1), None)?;
/// assert_eq!(y, y1); // bit for bit
/// # Ok::<(), fusedrnn::Error>(())
/// ```
pub struct Team {
    min_split: usize,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    caller: Option<(std::thread::ThreadId, Thread)>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Team({} threads)", self.shared.n)
    }
}

impl Team {
    /// Multiply-adds per layer step below which a team runs the step on
    /// the calling thread alone (2^15): waking a second core and meeting it
    /// at a barrier costs about a microsecond, more than such a step gains.
    /// Measured on a team of 2 (Intel Xeon, AVX-512): lstm-h128-b1 (2^16
    /// per step) 3.70 -> 2.80 us per step split; lstm-h64-b1 (2^14) 0.89 ->
    /// 0.98 and gru-h64-b1 0.63 -> 0.93 if split, so they are not.
    pub const MIN_SPLIT_FMAS: usize = 1 << 15;

    /// Most threads a team may have.
    pub const MAX_THREADS: usize = 256;

    /// A team of `threads` threads: the caller's, plus `threads - 1`
    /// workers started here (and only here).
    ///
    /// # Errors
    /// [`Error::InvalidAttribute`] for 0 or more than [`Team::MAX_THREADS`]
    /// threads; [`Error::Unsupported`] if the system cannot start a thread.
    pub fn new(threads: usize) -> Result<Team> {
        if threads == 0 || threads > Team::MAX_THREADS {
            return Err(Error::InvalidAttribute {
                name: "threads".into(),
                reason: format!("{threads}: a team has 1 to {} threads", Team::MAX_THREADS),
            });
        }
        let shared = Arc::new(Shared {
            n: threads,
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(JobSlot {
                f: &|_: usize| {},
                caller: None,
            }),
            pending: AtomicUsize::new(0),
            arrived: AtomicUsize::new(0),
            round: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            workers: OnceLock::new(),
        });
        let mut team = Team {
            min_split: Team::MIN_SPLIT_FMAS,
            shared: shared.clone(),
            handles: Vec::new(),
            caller: None,
        };
        for me in 1..threads {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("fusedrnn-team-{me}"))
                .spawn(move || worker(s, me))
                .map_err(|e| Error::Unsupported(format!("cannot start a team thread: {e}")))?;
            team.handles.push(h);
        }
        let threads: Vec<Thread> = team.handles.iter().map(|h| h.thread().clone()).collect();
        // Set before the first job, once: `get` in `wake_all` sees it.
        let _ = shared.workers.set(threads);
        Ok(team)
    }

    /// The number of threads, the caller's included.
    pub fn threads(&self) -> usize {
        self.shared.n
    }

    /// Sets the multiply-adds per layer step below which the team runs a
    /// step on the calling thread alone ([`Team::MIN_SPLIT_FMAS`] by
    /// default; 0 splits every step that has at least one weight block
    /// per thread). Results are bit-identical either way; only speed
    /// changes.
    pub fn set_min_split_fmas(&mut self, fmas: usize) {
        self.min_split = fmas;
    }

    /// Runs `f` once on every team thread (part `i` of `n` on thread `i`,
    /// 0 being the calling thread) and returns when all have finished. A
    /// team of one runs `f` inline. `f` may call [`Part::sync`]; a panic in
    /// any part reaches the caller once every thread has left the job.
    pub(crate) fn exec(&mut self, f: &(dyn Fn(Part<'_>) + Sync)) {
        let n = self.shared.n;
        if n == 1 {
            f(Part::solo());
            return;
        }
        let shared = &*self.shared;
        let job = |i: usize| {
            f(Part {
                index: i,
                count: n,
                team: Some(shared),
            })
        };
        let job: &JobFn<'_> = &job;
        let me = std::thread::current();
        if self.caller.as_ref().map(|c| c.0) != Some(me.id()) {
            self.caller = Some((me.id(), me));
        }
        // SAFETY: no job is in flight (`&mut self`, and the previous exec
        // returned only once `pending` was 0), so no worker reads the slot.
        // The lifetime of `job` is erased: this function does not return or
        // unwind before `pending` is 0 again (below).
        unsafe {
            let slot = &mut *shared.job.get();
            slot.f = std::mem::transmute::<&JobFn<'_>, &'static JobFn<'static>>(job);
            slot.caller = self.caller.as_ref().map(|c| c.1.clone());
        }
        shared.poisoned.store(false, Ordering::Relaxed);
        shared.arrived.store(0, Ordering::Relaxed);
        shared.pending.store(shared.n - 1, Ordering::Relaxed);
        shared.epoch.fetch_add(1, Ordering::Release);
        shared.wake_all(0);
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        if mine.is_err() {
            shared.poisoned.store(true, Ordering::Release);
            shared.wake_all(0);
        }
        wait_until(|| shared.pending.load(Ordering::Acquire) == 0);
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if shared.poisoned() {
            panic!("a thread of the team panicked");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_all(0);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// One thread's share of a job: thread `index` of `count`, and the team's
/// barrier (none when the job runs on one thread).
#[derive(Clone, Copy)]
pub(crate) struct Part<'a> {
    pub(crate) index: usize,
    pub(crate) count: usize,
    team: Option<&'a Shared>,
}

impl<'a> Part<'a> {
    /// The whole job on the calling thread.
    pub(crate) fn solo() -> Part<'static> {
        Part {
            index: 0,
            count: 1,
            team: None,
        }
    }

    /// This thread's contiguous share `[a, b)` of `0..n` (shares differ in
    /// size by at most one; empty for threads beyond `n`).
    pub(crate) fn range(&self, n: usize) -> (usize, usize) {
        if self.index >= self.count {
            return (n, n);
        }
        (
            n * self.index / self.count,
            n * (self.index + 1) / self.count,
        )
    }

    /// Waits for every thread of the job (nothing on one thread).
    pub(crate) fn sync(&self) {
        if let Some(t) = self.team {
            t.barrier(self.index);
        }
    }
}

/// Where a run executes: on the calling thread, or split over a team.
pub(crate) enum Exec<'a> {
    Solo,
    Team(&'a mut Team),
}

impl Exec<'_> {
    /// The most threads a job may run on.
    pub(crate) fn threads(&self) -> usize {
        match self {
            Exec::Solo => 1,
            Exec::Team(t) => t.threads(),
        }
    }

    /// Threads to use for a layer step of `fmas` multiply-adds over
    /// `blocks` weight blocks: the whole team, or 1 (the caller alone) when
    /// the step is too small to gain or has fewer blocks than threads.
    pub(crate) fn threads_for(&self, fmas: usize, blocks: usize) -> usize {
        match self {
            Exec::Team(t) if fmas >= t.min_split && blocks >= t.threads() => t.threads(),
            _ => 1,
        }
    }

    /// Runs `f` on the whole team if `n > 1`, else inline on the caller
    /// (see [`Team::exec`]).
    pub(crate) fn run(&mut self, n: usize, f: &(dyn Fn(Part<'_>) + Sync)) {
        match self {
            Exec::Team(t) if n > 1 => t.exec(f),
            _ => f(Part::solo()),
        }
    }
}
