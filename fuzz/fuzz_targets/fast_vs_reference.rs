//! Every fast kernel this host runs against the scalar reference on a
//! model and input decoded from the fuzzer's bytes: cell, sizes (H up to
//! 70, I up to 40, batch up to 16, T up to 7, 1-2 layers), direction, GRU
//! reset variant, peepholes, input_forget, projection, clip, lengths,
//! layout and weight format (f32, f16, bf16) from the first bytes; weights
//! and inputs from the rest. A difference beyond the property tests'
//! tolerance (`5e-5 * max(1, |ref|)`, reasoned in
//! `tests/kernels_vs_reference.rs`), widened to 8x the model's measured
//! sensitivity to rounding-sized changes (three nudges of up to K ulp, K
//! the longest sum) when that is larger, panics, as does any error from a run the decoder made
//! valid.
#![no_main]

use fusedrnn::{
    Cell, Config, Direction, DirectionWeights, GruReset, KernelFamily, Layout, Rnn, Sequence,
    WeightFormat, Workspace,
};
use libfuzzer_sys::fuzz_target;

/// Cycles through the data bytes as values in [-2, 2).
struct Vals<'a> {
    data: &'a [u8],
    at: usize,
}

impl Vals<'_> {
    fn next(&mut self) -> f32 {
        if self.data.is_empty() {
            return 0.25;
        }
        let b = self.data[self.at % self.data.len()];
        self.at += 1;
        (b as i8) as f32 / 64.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, rest) = data.split_at(9);
    let cell = if head[0] & 1 == 0 {
        Cell::Lstm
    } else {
        Cell::Gru
    };
    let lstm = cell == Cell::Lstm;
    let h = 1 + head[1] as usize % 70;
    let i = 1 + head[2] as usize % 40;
    let b = 1 + head[3] as usize % 16;
    let t = head[4] as usize % 8;
    let mut cfg = Config::new(cell, i, h);
    cfg.num_layers = 1 + (head[5] & 1) as usize;
    cfg.direction = match (head[0] >> 1) % 3 {
        0 => Direction::Forward,
        1 => Direction::Reverse,
        _ => Direction::Bidirectional,
    };
    cfg.gru_reset = if head[0] & 8 == 0 {
        GruReset::AfterMatmul
    } else {
        GruReset::BeforeMatmul
    };
    cfg.input_forget = lstm && head[0] & 16 != 0;
    let peep = lstm && head[0] & 32 != 0;
    cfg.proj_size = if lstm && h > 1 && head[5] & 2 != 0 {
        1 + (head[5] >> 2) as usize % (h - 1)
    } else {
        0
    };
    cfg.clip = (head[6] & 1 != 0).then(|| 0.5 + (head[6] >> 1) as f32 / 32.0);
    let with_lengths = head[0] & 64 != 0;
    let batch_major = head[0] & 128 != 0;

    let mut v = Vals { data: rest, at: 0 };
    let (g, hout) = (cell.gates(), cfg.output_size());
    let weights = (0..cfg.num_layers * cfg.num_directions())
        .map(|idx| {
            let inp = cfg.layer_input_size(idx / cfg.num_directions());
            DirectionWeights {
                w: v.vec(g * h * inp, 1.0 / (inp as f32).sqrt()),
                r: v.vec(g * h * hout, 1.0 / (hout as f32).sqrt()),
                wb: v.vec(g * h, 0.5),
                rb: v.vec(g * h, 0.5),
                peepholes: peep.then(|| v.vec(3 * h, 0.5)),
                proj: (cfg.proj_size > 0).then(|| v.vec(hout * h, 1.0 / (h as f32).sqrt())),
            }
        })
        .collect();
    let format = match head[8] % 3 {
        0 => WeightFormat::F32,
        1 => WeightFormat::F16,
        _ => WeightFormat::Bf16,
    };
    let model = Rnn::new(cfg, weights)
        .and_then(|m| m.with_weight_format(format))
        .expect("the decoder builds valid models");
    let x = v.vec(t * b * i, 1.0);
    let lengths: Vec<usize> = (0..b)
        .map(|k| head[7].rotate_left(k as u32) as usize % (t + 1))
        .collect();
    let seq = Sequence {
        input: &x,
        seq_len: t,
        batch: b,
        layout: if batch_major {
            Layout::BatchMajor
        } else {
            Layout::SequenceMajor
        },
        lengths: with_lengths.then_some(&lengths[..]),
    };
    let mut init = model.new_state(b).unwrap();
    let n = init.h().len();
    init.h_mut().copy_from_slice(&v.vec(n, 1.0));
    let n = init.c().len();
    init.c_mut().copy_from_slice(&v.vec(n, 1.0));

    let reference = model.clone().with_kernel(KernelFamily::Reference).unwrap();
    let (want, want_state) = reference.forward(&seq, Some(&init)).unwrap();
    // How much this model amplifies f32 rounding: the reference again with
    // every weight, bias, input and initial state moved by up to K ulp,
    // K the longest sum of the model (the worst-case backward error of a
    // K-term f32 sum is about K ulp per term). Decoded weights can be far
    // worse conditioned than the property tests' random ones (a 4-byte
    // pattern repeated through every matrix); the bound grows with the
    // measured sensitivity instead of flagging rounding as a bug.
    let k_max = (i.max(h) + hout.max(h)) as f32;
    let nudge = |v: &[f32], salt: usize| -> Vec<f32> {
        v.iter()
            .enumerate()
            .map(|(k, &x)| {
                let step = ((k * 7 + salt * 5) % 9) as f32 / 4.0 - 1.0; // in [-1, 1]
                x * (1.0 + step * k_max * 2.0f32.powi(-24))
            })
            .collect()
    };
    // Three different nudges; the largest change they cause is the measure.
    let mut sensitivity = 0.0f32;
    for pass in 0..3 {
        let salt = 8 * pass;
        let nudged_weights = model
            .weights()
            .iter()
            .enumerate()
            .map(|(d, w)| DirectionWeights {
                w: nudge(&w.w, salt + d),
                r: nudge(&w.r, salt + d + 1),
                wb: nudge(&w.wb, salt + d + 2),
                rb: nudge(&w.rb, salt + d + 3),
                peepholes: w.peepholes.as_ref().map(|p| nudge(p, salt + d + 4)),
                proj: w.proj.as_ref().map(|p| nudge(p, salt + d + 5)),
            })
            .collect();
        let nudged = Rnn::new(model.config().clone(), nudged_weights)
            .and_then(|m| m.with_kernel(KernelFamily::Reference))
            .expect("same shapes");
        let xn = nudge(&x, salt + 6);
        let mut init_n = init.clone();
        let hn = nudge(init.h(), salt + 7);
        init_n.h_mut().copy_from_slice(&hn);
        let cn = nudge(init.c(), salt + 8);
        init_n.c_mut().copy_from_slice(&cn);
        let (alt, _) = nudged
            .forward(&Sequence { input: &xn, ..seq }, Some(&init_n))
            .unwrap();
        for (a, w) in alt.iter().zip(&want) {
            sensitivity = sensitivity.max((a - w).abs() / w.abs().max(1.0));
        }
    }
    let rel_tol = 5e-5f32.max(8.0 * sensitivity);
    for family in KernelFamily::available() {
        if family == KernelFamily::Reference {
            continue;
        }
        let fast = model.clone().with_kernel(family).unwrap();
        let mut out = vec![f32::NAN; want.len()];
        let mut state = init.clone();
        fast.run(&seq, &mut state, &mut out, &mut Workspace::new())
            .unwrap();
        for (what, got, want) in [
            ("output", &out[..], &want[..]),
            ("h", state.h(), want_state.h()),
            ("c", state.c(), want_state.c()),
        ] {
            for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= rel_tol * w.abs().max(1.0),
                    "{} {what}[{k}]: {g} vs reference {w} (tol {rel_tol:e}); t {t} b {b} {:?}",
                    fast.kernel_name(),
                    model.config()
                );
            }
        }
    }
});
