//! One model shared through `Arc` by several threads gives bit-identical
//! results to one thread, on every kernel family this host runs; and a long
//! streaming soak (ignored: `cargo test --release --test concurrency --
//! --ignored --nocapture`) shows memory stays flat.

mod common;
use common::*;

use std::sync::Arc;

use fusedrnn::{Cell, Config, Direction, DirectionWeights, KernelFamily, Rnn, Sequence, Workspace};

fn model(cell: Cell, h: usize, i: usize, layers: usize, direction: Direction) -> Rnn {
    let mut cfg = Config::new(cell, i, h);
    cfg.num_layers = layers;
    cfg.direction = direction;
    let g = cell.gates();
    let mut r = Rng(5);
    let w = (0..layers * cfg.num_directions())
        .map(|idx| {
            let inp = cfg.layer_input_size(idx / cfg.num_directions());
            DirectionWeights {
                w: r.vec(g * h * inp, 0.4),
                r: r.vec(g * h * h, 0.4),
                wb: r.vec(g * h, 0.4),
                rb: r.vec(g * h, 0.4),
                peepholes: None,
                proj: None,
            }
        })
        .collect();
    Rnn::new(cfg, w).unwrap()
}

/// A sequence run and 20 streaming steps of the forward model: everything
/// the model computes, as bits.
fn work(seq_model: &Rnn, step_model: &Rnn, x: &[f32], t: usize, b: usize) -> Vec<u32> {
    let (y, st) = seq_model.forward(&Sequence::new(x, t, b), None).unwrap();
    let mut bits: Vec<u32> = y
        .iter()
        .chain(st.h())
        .chain(st.c())
        .map(|v| v.to_bits())
        .collect();
    let mut state = step_model.new_state(b).unwrap();
    let mut out = vec![0.0; b * step_model.config().output_size()];
    let mut ws = Workspace::new();
    let i = step_model.config().input_size;
    for s in 0..20 {
        let xt = &x[(s % t) * b * i..][..b * i];
        step_model.step(xt, &mut state, &mut out, &mut ws).unwrap();
        bits.extend(out.iter().map(|v| v.to_bits()));
    }
    bits
}

#[test]
fn shared_model_is_bit_identical_across_threads() {
    let (t, b, i) = (9, 5, 24);
    let x = Rng(9).vec(t * b * i, 1.0);
    for family in KernelFamily::available() {
        for cell in [Cell::Lstm, Cell::Gru] {
            let seq_model = Arc::new(
                model(cell, 40, i, 2, Direction::Bidirectional)
                    .with_kernel(family)
                    .unwrap(),
            );
            let step_model = Arc::new(
                model(cell, 40, i, 2, Direction::Forward)
                    .with_kernel(family)
                    .unwrap(),
            );
            let alone = work(&seq_model, &step_model, &x, t, b);
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (sm, st, x) = (seq_model.clone(), step_model.clone(), x.clone());
                    std::thread::spawn(move || {
                        (0..3).map(|_| work(&sm, &st, &x, t, b)).collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for got in h.join().unwrap() {
                    assert!(got == alone, "{family:?} {cell:?}: threads disagree");
                }
            }
        }
    }
}

/// Resident memory of this process in KiB (Linux), 0 elsewhere.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "10^7 streaming steps (seconds in release, minutes in debug)"]
fn soak_ten_million_streaming_steps() {
    let m = model(Cell::Lstm, 32, 16, 1, Direction::Forward);
    let mut state = m.new_state(1).unwrap();
    let mut out = vec![0.0; 32];
    let mut ws = Workspace::new();
    let x = Rng(1).vec(16 * 64, 1.0);
    let total = 10_000_000usize;
    let start = std::time::Instant::now();
    let mut first_rss = 0;
    for s in 0..total {
        m.step(&x[(s % 64) * 16..][..16], &mut state, &mut out, &mut ws)
            .unwrap();
        if s == 1000 {
            first_rss = rss_kib();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / total as f64;
    let last_rss = rss_kib();
    println!(
        "{}: {total} steps, {ns:.0} ns/step, RSS after 1000 steps {first_rss} KiB, after all {last_rss} KiB",
        m.kernel_name()
    );
    assert!(out.iter().all(|v| v.is_finite()));
    assert!(
        last_rss <= first_rss + 64,
        "memory grew: {first_rss} -> {last_rss} KiB"
    );
}
