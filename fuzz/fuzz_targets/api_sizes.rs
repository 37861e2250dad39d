//! The public run/step API with arbitrary sizes and buffer lengths: T and
//! B anywhere in `usize` (products that overflow), buffers of any short
//! length, lengths out of range, states of other batches. Each call gives
//! a typed error or a correct result (checked against the reference when
//! the sizes are small), never a crash.
#![no_main]

use fusedrnn::{Cell, Config, DirectionWeights, KernelFamily, Layout, Rnn, Sequence, Workspace};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    gru: bool,
    hidden: u8,
    input: u8,
    layers: u8,
    /// Sizes as the caller passes them: small or anywhere in usize.
    seq_len: Size,
    batch: Size,
    state_batch: Size,
    input_len: Size,
    output_len: Size,
    lengths: Option<Vec<u64>>,
    batch_major: bool,
    steps: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Small(u8),
    Any(u64),
    Pow2(u8),
}

impl Size {
    fn get(self) -> usize {
        match self {
            Size::Small(v) => v as usize % 9,
            Size::Any(v) => v as usize,
            Size::Pow2(k) => 1usize.checked_shl(k as u32 % 64).unwrap_or(0),
        }
    }
}

fuzz_target!(|inp: Input| {
    let cell = if inp.gru { Cell::Gru } else { Cell::Lstm };
    let (h, i) = (1 + inp.hidden as usize % 20, 1 + inp.input as usize % 12);
    let mut cfg = Config::new(cell, i, h);
    cfg.num_layers = 1 + inp.layers as usize % 2;
    let g = cell.gates();
    let w: Vec<DirectionWeights> = (0..cfg.num_layers)
        .map(|k| {
            let inp_k = cfg.layer_input_size(k);
            DirectionWeights {
                w: (0..g * h * inp_k)
                    .map(|n| ((n % 13) as f32 - 6.0) / 20.0)
                    .collect(),
                r: (0..g * h * h)
                    .map(|n| ((n % 7) as f32 - 3.0) / 10.0)
                    .collect(),
                wb: vec![0.1; g * h],
                rb: vec![-0.1; g * h],
                peepholes: None,
                proj: None,
            }
        })
        .collect();
    let model = Rnn::new(cfg, w).expect("valid model");
    let (t, b) = (inp.seq_len.get(), inp.batch.get());
    // Buffers are only ever small: the sizes claim, the buffers do not follow.
    let in_len = inp.input_len.get() % 4096;
    let out_len = inp.output_len.get() % 4096;
    let x: Vec<f32> = (0..in_len).map(|n| (n % 5) as f32 / 5.0).collect();
    let mut out = vec![f32::NAN; out_len];
    let lengths: Option<Vec<usize>> = inp
        .lengths
        .as_ref()
        .map(|l| l.iter().map(|&v| v as usize).collect());
    let seq = Sequence {
        input: &x,
        seq_len: t,
        batch: b,
        layout: if inp.batch_major {
            Layout::BatchMajor
        } else {
            Layout::SequenceMajor
        },
        lengths: lengths.as_deref(),
    };
    let Ok(mut state) = model.new_state(inp.state_batch.get() % 64) else {
        return;
    };
    let mut ws = Workspace::new();
    let ok = model.run(&seq, &mut state, &mut out, &mut ws).is_ok();
    if ok {
        // Small enough to have matched every check: it must be right.
        let reference = model.clone().with_kernel(KernelFamily::Reference).unwrap();
        let mut want_state = reference.new_state(b).unwrap();
        let mut want = vec![f32::NAN; out.len()];
        let mut init = state.clone();
        init.reset();
        let mut got_state = init.clone();
        let mut got = vec![f32::NAN; out.len()];
        model.run(&seq, &mut got_state, &mut got, &mut ws).unwrap();
        reference
            .run(&seq, &mut want_state, &mut want, &mut Workspace::new())
            .unwrap();
        for (a, w) in got
            .iter()
            .zip(&want)
            .chain(got_state.h().iter().zip(want_state.h()))
        {
            assert!((a - w).abs() <= 1e-4 * w.abs().max(1.0), "{a} vs {w}");
        }
    }
    let xs: Vec<f32> = x
        .iter()
        .copied()
        .take(in_len.min(i * state.batch()))
        .collect();
    let mut o = vec![0.0; (out_len % 256).min(state.batch() * h)];
    for _ in 0..inp.steps % 4 {
        let _ = model.step(&xs, &mut state, &mut o, &mut ws);
    }
});
