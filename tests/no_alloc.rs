//! Once the caller holds a state and a workspace grown to the shape, the
//! sequence run and the streaming step allocate nothing, for every fast
//! kernel this host runs (a counting global allocator proves it). The
//! counter is per thread so that the test harness's own threads do not
//! disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell as StdCell;

use fusedrnn::{Cell, Config, Direction, DirectionWeights, KernelFamily, Rnn, Sequence, Workspace};

struct Counting;

thread_local! {
    static ALLOCS: StdCell<usize> = const { StdCell::new(0) };
}

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

fn model(cell: Cell, layers: usize, direction: Direction, proj: usize) -> Rnn {
    let (h, i) = (40, 24);
    let mut cfg = Config::new(cell, i, h);
    cfg.num_layers = layers;
    cfg.direction = direction;
    cfg.proj_size = proj;
    let g = cell.gates();
    let hout = cfg.output_size();
    let w = (0..layers * cfg.num_directions())
        .map(|idx| {
            let inp = cfg.layer_input_size(idx / cfg.num_directions());
            DirectionWeights {
                w: vec![0.01; g * h * inp],
                r: vec![0.02; g * h * hout],
                wb: vec![0.1; g * h],
                rb: vec![0.1; g * h],
                peepholes: None,
                proj: (proj > 0).then(|| vec![0.03; hout * h]),
            }
        })
        .collect();
    Rnn::new(cfg, w).unwrap()
}

#[test]
fn run_and_step_do_not_allocate() {
    let configs = [
        (Cell::Lstm, 3, Direction::Bidirectional, 0),
        (Cell::Lstm, 2, Direction::Forward, 16),
        (Cell::Gru, 2, Direction::Forward, 0),
        (Cell::Gru, 1, Direction::Reverse, 0),
        (Cell::Lstm, 2, Direction::Bidirectional, 16),
    ];
    for family in KernelFamily::available()
        .into_iter()
        .filter(|f| *f != KernelFamily::Reference)
    {
        for ((cell, layers, dir, proj), fmt) in configs.into_iter().zip([
            fusedrnn::WeightFormat::F32,
            fusedrnn::WeightFormat::Bf16,
            fusedrnn::WeightFormat::F16,
            fusedrnn::WeightFormat::Int8,
            fusedrnn::WeightFormat::Int8Dynamic,
        ]) {
            let m = model(cell, layers, dir, proj)
                .with_weight_format(fmt)
                .and_then(|m| m.with_kernel(family))
                .unwrap();
            let (t, b) = (7, 5);
            let x = vec![0.3f32; t * b * 24];
            let lengths = [7, 3, 0, 5, 7];
            let seq = Sequence {
                lengths: Some(&lengths),
                ..Sequence::new(&x, t, b)
            };
            let mut state = m.new_state(b).unwrap();
            let mut out = vec![0.0; t * b * m.output_features()];
            let mut ws = Workspace::new();
            m.run(&seq, &mut state, &mut out, &mut ws).unwrap(); // grows ws
            let before = allocs();
            for _ in 0..3 {
                m.run(&seq, &mut state, &mut out, &mut ws).unwrap();
            }
            assert_eq!(allocs(), before, "{} run allocated", m.kernel_name());
            if dir == Direction::Forward {
                let mut o = vec![0.0; b * m.config().output_size()];
                m.step(&x[..b * 24], &mut state, &mut o, &mut ws).unwrap();
                let before = allocs();
                for _ in 0..3 {
                    m.step(&x[..b * 24], &mut state, &mut o, &mut ws).unwrap();
                }
                assert_eq!(allocs(), before, "{} step allocated", m.kernel_name());
            }
        }
    }
}

/// A stream pool's step allocates nothing once the pool is made (any
/// subset of its streams, joins and leaves between steps), on one thread
/// and on a team (after the team's first step has grown the workspace for
/// its threads); the team's `run` and `step` allocate nothing either.
#[test]
fn streams_and_team_do_not_allocate() {
    use fusedrnn::{Streams, Team};
    // The reference (the oracle, not a product path) computes in f64
    // scratch it allocates per step.
    for family in KernelFamily::available()
        .into_iter()
        .filter(|f| *f != KernelFamily::Reference)
    {
        for (cell, layers, proj, fmt) in [
            (Cell::Lstm, 2, 16, fusedrnn::WeightFormat::F32),
            (Cell::Gru, 1, 0, fusedrnn::WeightFormat::Int8),
            (Cell::Lstm, 1, 0, fusedrnn::WeightFormat::F32),
            (Cell::Lstm, 2, 16, fusedrnn::WeightFormat::Int8),
            (Cell::Gru, 1, 0, fusedrnn::WeightFormat::Int8Dynamic),
            (Cell::Lstm, 2, 16, fusedrnn::WeightFormat::Int8Dynamic),
        ] {
            let m = model(cell, layers, Direction::Forward, proj)
                .with_weight_format(fmt)
                .and_then(|m| m.with_kernel(family))
                .unwrap();
            let hout = m.config().output_size();
            let mut pool = Streams::new(&m, 8).unwrap();
            let ids: Vec<_> = (0..8).map(|_| pool.join().unwrap()).collect();
            let x = vec![0.3f32; 8 * 24];
            let mut out = vec![0.0; 8 * hout];
            let mut team = Team::new(2).unwrap();
            team.set_min_split_fmas(0);
            team.step_streams(&m, &mut pool, &ids, &x, &mut out)
                .unwrap();
            let before = allocs();
            for n in [8, 3, 1, 8] {
                pool.step(&m, &ids[..n], &x[..n * 24], &mut out[..n * hout])
                    .unwrap();
                team.step_streams(&m, &mut pool, &ids[..n], &x[..n * 24], &mut out[..n * hout])
                    .unwrap();
            }
            pool.leave(ids[2]).unwrap();
            let again = pool.join().unwrap();
            pool.step(&m, &[again, ids[0]], &x[..48], &mut out[..2 * hout])
                .unwrap();
            assert_eq!(
                allocs(),
                before,
                "{} many-stream step allocated",
                m.kernel_name()
            );

            let (t, b) = (6, 3);
            let xs = vec![0.1f32; t * b * 24];
            let seq = Sequence::new(&xs, t, b);
            let mut state = m.new_state(b).unwrap();
            let mut y = vec![0.0; t * b * hout];
            let mut ws = Workspace::new();
            team.run(&m, &seq, &mut state, &mut y, &mut ws).unwrap();
            let mut o = vec![0.0; b * hout];
            team.step(&m, &xs[..b * 24], &mut state, &mut o, &mut ws)
                .unwrap();
            let before = allocs();
            for _ in 0..3 {
                team.run(&m, &seq, &mut state, &mut y, &mut ws).unwrap();
                team.step(&m, &xs[..b * 24], &mut state, &mut o, &mut ws)
                    .unwrap();
            }
            assert_eq!(
                allocs(),
                before,
                "{} team run/step allocated",
                m.kernel_name()
            );
        }
    }
}
