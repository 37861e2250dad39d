//! Many streams and the thread team: a stream of a [`Streams`] pool,
//! stepped together with others that join and leave at random steps, gives
//! bit for bit what stepping it alone with `Rnn::step` gives, for every
//! kernel the host runs, every cell feature and weight format; the same
//! pool stepped on a [`Team`] gives bit for bit what one thread gives; bad
//! ids and buffers are typed errors.

mod common;
use common::Rng;

use fusedrnn::{
    Cell, Config, Direction, DirectionWeights, Error, GruReset, KernelFamily, Rnn, State, StreamId,
    Streams, Team, WeightFormat, Workspace,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    cell: Cell,
    h: usize,
    i: usize,
    layers: usize,
    proj: bool,
    peep: bool,
    clip: bool,
    reset: GruReset,
    format: WeightFormat,
    capacity: usize,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(Cell::Lstm), Just(Cell::Gru)],
        prop_oneof![
            2 => prop::sample::select(vec![1usize, 8, 16, 17, 32, 33, 64, 65]),
            1 => 1usize..=130,
        ],
        1usize..=40,
        1usize..=3,
        (any::<bool>(), any::<bool>(), prop::bool::weighted(0.3)),
        prop_oneof![Just(GruReset::AfterMatmul), Just(GruReset::BeforeMatmul)],
        prop_oneof![
            2 => Just(WeightFormat::F32),
            1 => Just(WeightFormat::Bf16),
            1 => Just(WeightFormat::F16),
            1 => Just(WeightFormat::Int8),
            1 => Just(WeightFormat::Int8Dynamic)
        ],
        1usize..=20,
        any::<u64>(),
    )
        .prop_map(
            |(cell, h, i, layers, (proj, peep, clip), reset, format, capacity, seed)| Case {
                cell,
                h,
                i,
                layers,
                proj: proj && cell == Cell::Lstm && h > 1,
                peep: peep && cell == Cell::Lstm,
                clip,
                reset,
                format,
                capacity,
                seed,
            },
        )
}

fn build(c: &Case) -> Rnn {
    let mut cfg = Config::new(c.cell, c.i, c.h);
    cfg.num_layers = c.layers;
    cfg.gru_reset = c.reset;
    cfg.proj_size = if c.proj {
        1 + c.seed as usize % (c.h - 1)
    } else {
        0
    };
    cfg.clip = c.clip.then_some(2.0);
    let mut rng = Rng(c.seed | 1);
    let (g, h, hout) = (c.cell.gates(), c.h, cfg.output_size());
    let scale = 1.0 / (h as f32).sqrt();
    let weights = (0..c.layers)
        .map(|k| DirectionWeights {
            w: rng.vec(g * h * cfg.layer_input_size(k), scale),
            r: rng.vec(g * h * hout, scale),
            wb: rng.vec(g * h, scale),
            rb: rng.vec(g * h, scale),
            peepholes: c.peep.then(|| rng.vec(3 * h, scale)),
            proj: c.proj.then(|| rng.vec(hout * h, scale)),
        })
        .collect();
    Rnn::new(cfg, weights)
        .and_then(|m| m.with_weight_format(c.format))
        .expect("valid case")
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs a random schedule (streams join, some with an initial state, and
/// leave; each round steps a random subset in a random order) on a pool,
/// on a second pool through a team of 2 that splits every step, and on one
/// `State` per stream stepped alone; every output and state must agree
/// bit for bit.
fn check(c: &Case, model: &Rnn) -> Result<(), TestCaseError> {
    let (i, hout) = (c.i, model.output_features());
    let mut rng = Rng(c.seed.rotate_left(9) | 1);
    let mut pick = |n: usize| (rng.f32(1.0).abs() * n as f32) as usize % n.max(1);
    let mut pool = Streams::new(model, c.capacity).unwrap();
    let mut team_pool = Streams::new(model, c.capacity).unwrap();
    let mut team = Team::new(2).unwrap();
    team.set_min_split_fmas(0);
    // (pool id, team pool id, the stream's own state)
    let mut live: Vec<(StreamId, StreamId, State)> = Vec::new();
    let mut ws = Workspace::new();
    let mut xr = Rng(c.seed ^ 0x5eed);
    for round in 0..10 {
        // Joins and leaves between steps.
        for _ in 0..pick(4) {
            if live.len() < c.capacity {
                let mut st = model.new_state(1).unwrap();
                let (a, b) = if pick(2) == 0 {
                    let n = st.h().len();
                    st.h_mut().copy_from_slice(&xr.vec(n, 1.0));
                    let n = st.c().len();
                    st.c_mut().copy_from_slice(&xr.vec(n, 1.0));
                    (
                        pool.join_with(&st).unwrap(),
                        team_pool.join_with(&st).unwrap(),
                    )
                } else {
                    (pool.join().unwrap(), team_pool.join().unwrap())
                };
                live.push((a, b, st));
            }
        }
        if !live.is_empty() && pick(3) == 0 {
            let (a, b, _) = live.swap_remove(pick(live.len()));
            pool.leave(a).unwrap();
            team_pool.leave(b).unwrap();
            prop_assert_eq!(pool.leave(a), Err(Error::InvalidStream { index: 0 }));
        }
        prop_assert_eq!(pool.len(), live.len());
        // A random subset in a random order.
        let mut order: Vec<usize> = (0..live.len()).filter(|_| pick(4) != 0).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, pick(k + 1));
        }
        let n = order.len();
        let x = xr.vec(n * i, 2.0);
        let ids: Vec<StreamId> = order.iter().map(|&k| live[k].0).collect();
        let team_ids: Vec<StreamId> = order.iter().map(|&k| live[k].1).collect();
        let mut out = vec![f32::NAN; n * hout];
        pool.step(model, &ids, &x, &mut out).unwrap();
        let mut team_out = vec![f32::NAN; n * hout];
        team.step_streams(model, &mut team_pool, &team_ids, &x, &mut team_out)
            .unwrap();
        prop_assert!(
            bits(&team_out) == bits(&out),
            "team differs, round {}",
            round
        );
        let mut alone = vec![f32::NAN; hout];
        for (j, &k) in order.iter().enumerate() {
            model
                .step(&x[j * i..(j + 1) * i], &mut live[k].2, &mut alone, &mut ws)
                .unwrap();
            prop_assert!(
                bits(&alone) == bits(&out[j * hout..(j + 1) * hout]),
                "{} stream {} differs from stepping it alone, round {}",
                model.kernel_name(),
                k,
                round
            );
        }
        for (a, b, st) in &live {
            prop_assert!(pool.state(*a).unwrap() == *st, "state of a stream");
            prop_assert!(team_pool.state(*b).unwrap() == *st, "state on the team");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 100, ..ProptestConfig::default() })]
    #[test]
    fn streams_equal_stepping_each_alone(c in case()) {
        let model = build(&c);
        for f in KernelFamily::available() {
            check(&c, &model.clone().with_kernel(f).unwrap())?;
        }
    }
}

fn small_lstm() -> Rnn {
    build(&Case {
        cell: Cell::Lstm,
        h: 20,
        i: 3,
        layers: 2,
        proj: false,
        peep: false,
        clip: false,
        reset: GruReset::AfterMatmul,
        format: WeightFormat::F32,
        capacity: 4,
        seed: 7,
    })
}

#[test]
fn bad_ids_and_buffers_are_typed_errors() {
    let m = small_lstm();
    let (i, h) = (3, 20);
    let mut pool = Streams::new(&m, 2).unwrap();
    let mut other = Streams::new(&m, 2).unwrap();
    let a = pool.join().unwrap();
    let b = pool.join().unwrap();
    assert_eq!(pool.join(), Err(Error::PoolFull { capacity: 2 }));
    let foreign = other.join().unwrap();
    let x = vec![0.1; 2 * i];
    let mut out = vec![0.0; 2 * h];
    assert_eq!(
        pool.step(&m, &[a, foreign], &x, &mut out),
        Err(Error::InvalidStream { index: 1 })
    );
    assert_eq!(
        pool.step(&m, &[b, b], &x, &mut out),
        Err(Error::DuplicateStream { index: 1 })
    );
    assert!(matches!(
        pool.step(&m, &[a, b], &x[..i], &mut out),
        Err(Error::BufferLength { .. })
    ));
    assert!(matches!(
        pool.step(&m, &[a], &x[..i], &mut out),
        Err(Error::BufferLength { .. })
    ));
    // A stale id stays invalid after its slot is reused.
    pool.leave(a).unwrap();
    let c = pool.join().unwrap();
    assert_eq!(c.slot(), a.slot());
    assert!(!pool.contains(a) && pool.contains(c));
    assert_eq!(
        pool.step(&m, &[a], &x[..i], &mut out[..h]),
        Err(Error::InvalidStream { index: 0 })
    );
    assert_eq!(
        pool.state(a).map(|_| ()),
        Err(Error::InvalidStream { index: 0 })
    );
    // Nothing was stepped by the failed calls.
    assert_eq!(pool.state(b).unwrap(), m.new_state(1).unwrap());
    // A model of other sizes, a bidirectional model, a bad capacity, a
    // state of the wrong batch.
    let mut cfg = m.config().clone();
    cfg.hidden_size = 21;
    let w = DirectionWeights {
        w: vec![0.0; 4 * 21 * 3],
        r: vec![0.0; 4 * 21 * 21],
        wb: vec![0.0; 84],
        rb: vec![0.0; 84],
        peepholes: None,
        proj: None,
    };
    cfg.num_layers = 1;
    let wider = Rnn::new(cfg.clone(), vec![w.clone()]).unwrap();
    assert!(matches!(
        pool.step(&wider, &[b], &x[..i], &mut out[..h]),
        Err(Error::Shape { .. })
    ));
    cfg.direction = Direction::Bidirectional;
    let bidir = Rnn::new(cfg, vec![w.clone(), w]).unwrap();
    assert!(matches!(
        Streams::new(&bidir, 4),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        Streams::new(&m, 0),
        Err(Error::InvalidAttribute { .. })
    ));
    assert!(matches!(
        pool.join_with(&m.new_state(2).unwrap()),
        Err(Error::BufferLength { .. })
    ));
    assert!(matches!(
        Streams::new(&m, usize::MAX),
        Err(Error::InvalidAttribute { .. })
    ));
    assert!(matches!(Team::new(0), Err(Error::InvalidAttribute { .. })));
    // An empty step is fine.
    pool.step(&m, &[], &[], &mut []).unwrap();
}

/// `Team::step` and `Team::run` (split at the default threshold and at
/// every step) are bit-identical to one thread, for every kernel the host
/// runs, on a model big enough to split and one too small to.
#[test]
fn team_step_and_run_equal_one_thread() {
    for h in [20, 300] {
        let c = Case {
            cell: Cell::Lstm,
            h,
            i: 37,
            layers: 2,
            proj: true,
            peep: true,
            clip: false,
            reset: GruReset::AfterMatmul,
            format: WeightFormat::F32,
            capacity: 1,
            seed: 3,
        };
        let m = build(&c);
        let mut teams = [Team::new(2).unwrap(), Team::new(3).unwrap()];
        teams[1].set_min_split_fmas(0);
        for f in KernelFamily::available() {
            let m = m.clone().with_kernel(f).unwrap();
            for team in &mut teams {
                let b = 3;
                let x = Rng(1).vec(5 * b * c.i, 1.0);
                let seq = fusedrnn::Sequence::new(&x, 5, b);
                let (want, want_state) = m.forward(&seq, None).unwrap();
                let mut st = m.new_state(b).unwrap();
                let mut y = vec![f32::NAN; want.len()];
                let mut ws = Workspace::new();
                team.run(&m, &seq, &mut st, &mut y, &mut ws).unwrap();
                assert_eq!(bits(&y), bits(&want), "{} run", m.kernel_name());
                assert_eq!(st, want_state);
                let mut solo = m.new_state(b).unwrap();
                let mut st = m.new_state(b).unwrap();
                let hout = m.output_features();
                let (mut o1, mut o2) = (vec![0.0; b * hout], vec![0.0; b * hout]);
                for s in 0..5 {
                    let xs = &x[s * b * c.i..(s + 1) * b * c.i];
                    m.step(xs, &mut solo, &mut o1, &mut ws).unwrap();
                    team.step(&m, xs, &mut st, &mut o2, &mut ws).unwrap();
                    assert_eq!(bits(&o1), bits(&o2), "{} step {s}", m.kernel_name());
                }
                assert_eq!(st, solo);
            }
        }
    }
}

/// A team survives being moved to another thread and used from there,
/// and stops its threads when dropped.
#[test]
fn team_moves_between_threads() {
    let m = small_lstm();
    let mut team = Team::new(2).unwrap();
    team.set_min_split_fmas(0);
    let x = vec![0.2; 3];
    let mut st = m.new_state(1).unwrap();
    let mut out = vec![0.0; 20];
    let mut ws = Workspace::new();
    team.step(&m, &x, &mut st, &mut out, &mut ws).unwrap();
    let m2 = m.clone();
    let (team, st2) = std::thread::spawn(move || {
        let mut ws = Workspace::new();
        let mut out = vec![0.0; 20];
        for _ in 0..50 {
            team.step(&m2, &x, &mut st, &mut out, &mut ws).unwrap();
            // Long enough between steps for the worker to park.
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        (team, st)
    })
    .join()
    .unwrap();
    let mut solo = m.new_state(1).unwrap();
    for _ in 0..51 {
        m.step(&[0.2; 3], &mut solo, &mut out, &mut ws).unwrap();
    }
    assert_eq!(st2, solo);
    drop(team);
}
