//! A stream pool driven by arbitrary operations: joins (zero or given
//! states, some of the wrong size), leaves of live, stale and foreign ids,
//! steps of arbitrary id lists (repeats, stale ids, ids of another pool)
//! with frame and output buffers of arbitrary lengths, on one thread or a
//! team. Each call gives a typed error or a result; every stream's output
//! and state equal, bit for bit, a plain `State` stepped alone with
//! `Rnn::step`; a failed call changes no state.
#![no_main]

use fusedrnn::{
    Cell, Config, DirectionWeights, KernelFamily, Rnn, State, StreamId, Streams, Team, Workspace,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    gru: bool,
    hidden: u8,
    input: u8,
    layers: u8,
    capacity: u8,
    family: u8,
    team: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Join,
    JoinWith {
        batch: u8,
        seed: u8,
    },
    Leave(u8),
    LeaveForeign,
    Step {
        picks: Vec<u8>,
        x_extra: i8,
        out_extra: i8,
        foreign: bool,
    },
}

fuzz_target!(|inp: Input| {
    let cell = if inp.gru { Cell::Gru } else { Cell::Lstm };
    let (h, i) = (1 + inp.hidden as usize % 40, 1 + inp.input as usize % 12);
    let mut cfg = Config::new(cell, i, h);
    cfg.num_layers = 1 + inp.layers as usize % 2;
    let g = cell.gates();
    let w: Vec<DirectionWeights> = (0..cfg.num_layers)
        .map(|k| {
            let n = cfg.layer_input_size(k);
            DirectionWeights {
                w: (0..g * h * n)
                    .map(|v| ((v % 13) as f32 - 6.0) / 20.0)
                    .collect(),
                r: (0..g * h * h)
                    .map(|v| ((v % 7) as f32 - 3.0) / 10.0)
                    .collect(),
                wb: vec![0.1; g * h],
                rb: vec![-0.05; g * h],
                peepholes: None,
                proj: None,
            }
        })
        .collect();
    let fams = KernelFamily::available();
    let fam = fams[inp.family as usize % fams.len()];
    let model = Rnn::new(cfg, w).unwrap().with_kernel(fam).unwrap();
    let cap = 1 + inp.capacity as usize % 12;
    let mut pool = Streams::new(&model, cap).unwrap();
    let mut other = Streams::new(&model, 1).unwrap();
    let foreign = other.join().unwrap();
    let mut team = Team::new(2).unwrap();
    team.set_min_split_fmas(0);
    let mut live: Vec<(StreamId, State)> = Vec::new();
    let mut stale: Vec<StreamId> = Vec::new();
    let mut ws = Workspace::new();
    for (step, op) in inp.ops.into_iter().take(64).enumerate() {
        match op {
            Op::Join => match pool.join() {
                Ok(id) => live.push((id, model.new_state(1).unwrap())),
                Err(e) => assert_eq!(e, fusedrnn::Error::PoolFull { capacity: cap }),
            },
            Op::JoinWith { batch, seed } => {
                let b = batch as usize % 3;
                let mut st = model.new_state(b).unwrap();
                for (k, v) in st.h_mut().iter_mut().enumerate() {
                    *v = ((k + seed as usize) % 5) as f32 / 5.0 - 0.4;
                }
                match pool.join_with(&st) {
                    Ok(id) => {
                        assert_eq!(b, 1);
                        live.push((id, st));
                    }
                    Err(_) => assert!(b != 1 || live.len() == cap),
                }
            }
            Op::Leave(k) => {
                if !live.is_empty() {
                    let (id, _) = live.swap_remove(k as usize % live.len());
                    pool.leave(id).unwrap();
                    stale.push(id);
                }
                if let Some(&id) = stale.first() {
                    assert!(pool.leave(id).is_err());
                }
            }
            Op::LeaveForeign => assert!(pool.leave(foreign).is_err()),
            Op::Step {
                picks,
                x_extra,
                out_extra,
                foreign: use_foreign,
            } => {
                let mut ids = Vec::new();
                let mut which = Vec::new();
                for p in picks.into_iter().take(2 * cap + 2) {
                    let p = p as usize;
                    if !live.is_empty() && p % 8 != 7 {
                        let k = p % live.len();
                        ids.push(live[k].0);
                        which.push(Some(k));
                    } else if let Some(&s) = stale.get(p % stale.len().max(1)) {
                        ids.push(s);
                        which.push(None);
                    }
                }
                if use_foreign {
                    ids.push(foreign);
                    which.push(None);
                }
                let n = ids.len();
                let hout = model.output_features();
                let xl = (n * i).saturating_add_signed(x_extra as isize % 3);
                let ol = (n * hout).saturating_add_signed(out_extra as isize % 3);
                let x: Vec<f32> = (0..xl)
                    .map(|k| ((k + step) % 11) as f32 / 5.0 - 1.0)
                    .collect();
                let mut out = vec![f32::NAN; ol];
                let before: Vec<State> = live
                    .iter()
                    .map(|(id, _)| pool.state(*id).unwrap())
                    .collect();
                let r = if inp.team {
                    team.step_streams(&model, &mut pool, &ids, &x, &mut out)
                } else {
                    pool.step(&model, &ids, &x, &mut out)
                };
                let mut seen = std::collections::HashSet::new();
                let valid = xl == n * i
                    && ol == n * hout
                    && which.iter().all(|w| w.is_some())
                    && which.iter().all(|w| seen.insert(w.unwrap()));
                assert_eq!(r.is_ok(), valid, "{r:?}");
                if r.is_err() {
                    for ((id, _), b) in live.iter().zip(&before) {
                        assert_eq!(pool.state(*id).unwrap(), *b);
                    }
                    continue;
                }
                let mut one = vec![0.0; hout];
                for (j, w) in which.iter().enumerate() {
                    let k = w.unwrap();
                    model
                        .step(&x[j * i..(j + 1) * i], &mut live[k].1, &mut one, &mut ws)
                        .unwrap();
                    let got: Vec<u32> = out[j * hout..(j + 1) * hout]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    let want: Vec<u32> = one.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, want);
                }
                for (id, st) in &live {
                    assert_eq!(pool.state(*id).unwrap(), *st);
                }
            }
        }
    }
});
