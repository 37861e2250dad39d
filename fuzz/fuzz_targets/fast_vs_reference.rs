//! Every fast kernel this host runs against the scalar reference, on a
//! model and input decoded with `arbitrary` from the fuzzer's bytes, so a
//! few bytes already reach interesting shapes: cell, sizes at and around
//! lane boundaries (H up to 48, I up to 40, batch up to 13, T up to 6),
//! 1-2 layers, direction, GRU reset variant, peepholes, input_forget,
//! projection, clip, activations (Elu and Softplus included; bounded ones
//! for the gates), lengths,
//! layout and weight format. Values are drawn from a palette of ordinary
//! numbers, zeros, subnormals, huge inputs and states (1e15) and, when the input asks
//! for it, NaN and infinities.
//!
//! Checked: where the reference is NaN, the kernel is NaN, unless the
//! reference itself is not NaN there after rounding-sized changes of its
//! inputs (below); where the
//! reference is finite and the model and data have no NaN, infinity or
//! huge value in them, the kernel is within the property tests' tolerance (`5e-5 * max(1, |ref|)`,
//! reasoned in `tests/kernels_vs_reference.rs`), widened to 32x the model's
//! measured sensitivity to rounding-sized changes when that is larger (an
//! ill-conditioned model amplifies f32 rounding; the measurement runs only
//! when the plain tolerance fails, to keep the target fast). The same
//! nudged runs decide whether a NaN is a rounding accident: a product that
//! cancels to exactly 0 in one arithmetic and to 2e-11 in another (f64 or
//! separate multiply and add against FMA) times an infinite weight is NaN in
//! one and an infinity in the other, which a clip then makes finite
//! (`fuzz/seeds/fast_vs_reference/nan-rounding-zero-times-inf`,
//! described in `fuzz/regressions/README.md`); NaN arising that way is not
//! checked, every other NaN is. Any error from a run the decoder made valid
//! panics.
#![no_main]

use fusedrnn::{
    Activation, Activations, Cell, Config, Direction, DirectionWeights, GruReset, KernelFamily,
    Layout, Rnn, RnnBuilder, Sequence, State, WeightFormat, Workspace,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    gru: bool,
    hidden: u8,
    input: u8,
    batch: u8,
    steps: u8,
    two_layers: bool,
    direction: u8,
    reset_before: bool,
    input_forget: bool,
    peepholes: bool,
    proj: u8,
    clip: Option<u8>,
    acts: Option<[u8; 3]>,
    lengths: Option<Vec<u8>>,
    batch_major: bool,
    format: u8,
    specials: bool,
    /// Values, cycled through for every weight, input and state.
    values: Vec<(u8, i8)>,
}

/// Cycles through the decoded values.
struct Vals<'a> {
    vals: &'a [(u8, i8)],
    at: usize,
    specials: bool,
    /// Whether inputs and states may be huge.
    huge: bool,
}

impl Vals<'_> {
    /// The next value; `huge` allows 1e15 (inputs and states only: a
    /// product of two huge values could overflow f32 where the f64
    /// reference does not).
    fn next(&mut self, scale: f32, huge: bool) -> f32 {
        let Some(&(kind, v)) = self.vals.get(self.at % self.vals.len().max(1)) else {
            return 0.25 * scale;
        };
        self.at += 1;
        let x = v as f32 / 64.0;
        match kind % 32 {
            0 => 0.0,
            1 => x * 1e-40, // subnormal
            2 if huge => x * 1e15,
            3 if self.specials => f32::NAN,
            4 if self.specials => f32::INFINITY,
            5 if self.specials => f32::NEG_INFINITY,
            _ => x * scale,
        }
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next(scale, false)).collect()
    }
    fn data(&mut self, n: usize) -> Vec<f32> {
        let huge = self.huge;
        (0..n).map(|_| self.next(1.0, huge)).collect()
    }
}

/// Sizes weighted to the lane boundaries of 8 and 16 lanes.
fn size(b: u8, max: usize) -> usize {
    const EDGES: [usize; 12] = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 3];
    if b & 1 == 0 {
        EDGES[(b as usize >> 1) % EDGES.len()].min(max)
    } else {
        1 + (b as usize >> 1) % max
    }
}

fn activation(b: u8) -> Activation {
    match b % 8 {
        0 => Activation::Sigmoid,
        1 => Activation::Tanh,
        2 => Activation::Elu { alpha: 0.7 },
        3 => Activation::Softplus,
        4 => Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        5 => Activation::Softsign,
        6 => Activation::ScaledTanh {
            alpha: 1.5,
            beta: 0.5,
        },
        _ => Activation::LeakyRelu { alpha: 0.1 },
    }
}

/// A gate function with values in [-1, 1].
fn bounded_gate(b: u8) -> Activation {
    match b % 4 {
        0 => Activation::Sigmoid,
        1 => Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        2 => Activation::Tanh,
        _ => Activation::Softsign,
    }
}

thread_local! {
    /// One workspace for every run of the target: it grows to the largest
    /// shape once instead of allocating on every run.
    static WS: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::new());
}

fn run(model: &Rnn, seq: &Sequence<'_>, init: &State) -> (Vec<f32>, State) {
    let mut out = vec![f32::NAN; seq.seq_len * seq.batch * model.output_features()];
    let mut state = init.clone();
    WS.with(|ws| {
        model
            .run(seq, &mut state, &mut out, &mut ws.borrow_mut())
            .expect("the decoder makes valid runs")
    });
    (out, state)
}

fuzz_target!(|inp: Input| {
    let cell = if inp.gru { Cell::Gru } else { Cell::Lstm };
    let lstm = cell == Cell::Lstm;
    let (h, i) = (size(inp.hidden, 48), size(inp.input, 40));
    let (mut b, mut t) = (size(inp.batch, 13), inp.steps as usize % 7);
    let mut cfg = Config::new(cell, i, h);
    cfg.num_layers = 1 + inp.two_layers as usize;
    cfg.direction = match inp.direction % 3 {
        0 => Direction::Forward,
        1 => Direction::Reverse,
        _ => Direction::Bidirectional,
    };
    // At most ~60k multiply-adds per run (fewer batch entries, then fewer
    // steps), so the scalar f64 reference keeps the target above 500
    // executions per second under AddressSanitizer (big shapes add nothing
    // the lane-boundary sizes do not already reach).
    let per = cfg.num_layers * cfg.num_directions() * cell.gates() * h * (i + h);
    while b > 1 && t * b * per > 60_000 {
        b /= 2;
    }
    while t > 1 && t * b * per > 60_000 {
        t -= 1;
    }
    cfg.gru_reset = if inp.reset_before {
        GruReset::BeforeMatmul
    } else {
        GruReset::AfterMatmul
    };
    cfg.input_forget = lstm && inp.input_forget;
    cfg.proj_size = if lstm && h > 1 && inp.proj & 1 == 1 {
        1 + (inp.proj >> 1) as usize % (h - 1)
    } else {
        0
    };
    cfg.clip = inp.clip.map(|c| 0.5 + c as f32 / 32.0);
    if let Some([f, g, hh]) = inp.acts {
        // Gates get bounded functions: with an unbounded one (z or f
        // above 1) the state update is an unstable linear recurrence that
        // amplifies f32 rounding without bound (an all-Softplus GRU did,
        // beyond any tolerance), which no trained model uses. Candidate and
        // cell output draw from all eight.
        let set = Activations {
            f: bounded_gate(f),
            g: activation(g),
            h: activation(hh),
        };
        cfg.activations = [set; 2];
    }
    let mut v = Vals {
        vals: &inp.values,
        at: 0,
        specials: inp.specials,
        huge: inp.acts.is_none(),
    };
    let (g, hout) = (cell.gates(), cfg.output_size());
    let weights: Vec<DirectionWeights> = (0..cfg.num_layers * cfg.num_directions())
        .map(|idx| {
            let k = cfg.layer_input_size(idx / cfg.num_directions());
            DirectionWeights {
                w: v.vec(g * h * k, 1.0 / (k as f32).sqrt()),
                r: v.vec(g * h * hout, 1.0 / (hout as f32).sqrt()),
                wb: v.vec(g * h, 0.5),
                rb: v.vec(g * h, 0.5),
                peepholes: (lstm && inp.peepholes).then(|| v.vec(3 * h, 0.5)),
                proj: (cfg.proj_size > 0).then(|| v.vec(hout * h, 1.0 / (h as f32).sqrt())),
            }
        })
        .collect();
    let format = WeightFormat::ALL[inp.format as usize % WeightFormat::ALL.len()];
    let cfg_layers = cfg.num_layers;
    let model = RnnBuilder::new(cfg, weights)
        .kernel(KernelFamily::Reference)
        .weight_format(format)
        .build()
        .expect("the decoder builds valid models");
    // Huge inputs only with the default (bounded) activations: through an
    // unbounded gate function (f > 1) they grow ill-conditioned states the
    // rounding-sensitivity measure does not capture.
    let x = v.data(t * b * i);
    let lengths: Option<Vec<usize>> = inp.lengths.as_ref().map(|l| {
        (0..b)
            .map(|k| l.get(k).map_or(t, |&n| n as usize % (t + 1)))
            .collect()
    });
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
    let mut init = model.new_state(b).unwrap();
    let n = init.h().len();
    init.h_mut().copy_from_slice(&v.data(n));
    let n = init.c().len();
    init.c_mut().copy_from_slice(&v.data(n));
    let finite_model = model.weights().iter().all(|w| {
        w.w.iter()
            .chain(&w.r)
            .chain(&w.wb)
            .chain(&w.rb)
            .chain(w.peepholes.iter().flatten())
            .chain(w.proj.iter().flatten())
            .all(|v| v.is_finite())
    }) && x
        .iter()
        .chain(init.h())
        .chain(init.c())
        .all(|v| v.is_finite());
    // Huge inputs or states (1e15) are there to find overflow and NaN
    // bugs; with them, f32 cancellation (input_forget's `1 - i` at a
    // saturated i, times a 1e15 cell state) is legitimately far from the
    // f64 reference, so only the NaN rule is checked.
    let well_scaled = finite_model
        && x.iter()
            .chain(init.h())
            .chain(init.c())
            .all(|v| v.abs() <= 1e6);

    // Int8-dynamic quantizes vectors the kernels computed (the previous h,
    // a lower layer's output); a value within f32 rounding of a
    // quantization boundary may round to neighbouring levels in a kernel
    // and in the reference, a legitimate difference of one level times a
    // weight (tests/props: `tolerance`). One step of one layer quantizes
    // only given vectors, identically, so it is held to the tolerance;
    // longer runs to the NaN rule.
    let comparable = format != WeightFormat::Int8Dynamic || (t <= 1 && cfg_layers == 1);
    let well_scaled = well_scaled && comparable;
    let (want, want_state) = run(&model, &seq, &init);
    let mut rel_tol = 5e-5f32;
    // The reference on rounding-sized nudges of its inputs, run only when a
    // kernel fails the plain checks.
    let mut nudged: Option<Vec<(Vec<f32>, State)>> = None;
    for family in KernelFamily::available() {
        if family == KernelFamily::Reference {
            continue;
        }
        let fast = model.clone().with_kernel(family).unwrap();
        let (out, state) = run(&fast, &seq, &init);
        let (got, wanted) = (parts(&out, &state), parts(&want, &want_state));
        let worst = |tol: f32, nudged: Option<&[(Vec<f32>, State)]>| {
            (0..3).find_map(|p| {
                let (what, got, want) = (PARTS[p], got[p], wanted[p]);
                got.iter().zip(want).enumerate().find_map(|(k, (&g, &w))| {
                    let bad = if w.is_nan() {
                        // A NaN some nudged reference run does not have is
                        // decided by rounding; every other NaN must stay.
                        let fragile = nudged.is_some_and(|runs| {
                            runs.iter().any(|(o, st)| !parts(o, st)[p][k].is_nan())
                        });
                        !g.is_nan() && !fragile
                    } else {
                        well_scaled && w.is_finite() && !((g - w).abs() <= tol * w.abs().max(1.0))
                    };
                    bad.then(|| format!("{what}[{k}]: {g} vs reference {w}"))
                })
            })
        };
        if nudged.is_none() && worst(rel_tol, None).is_some() {
            let runs = nudged_runs(&model, &seq, &init);
            // 32x: the nudges estimate the amplification of rounding, not
            // bound it; an LSTM with identical weights, LeakyRelu gates and
            // input_forget (|1 - i| > 1 amplifies c every step) differed by
            // 11x its measured sensitivity. A wrong lane or gate is off by
            // O(1) and still fails.
            rel_tol = rel_tol.max(32.0 * sensitivity(&runs, &want, &want_state));
            nudged = Some(runs);
        }
        if let Some(msg) = worst(rel_tol, nudged.as_deref()) {
            panic!(
                "{}: {msg} (tol {rel_tol:e}); t {t} b {b} {:?}",
                fast.kernel_name(),
                model.config()
            );
        }
    }
});

/// How much the model amplifies f32 rounding: the largest relative change
/// of the output or final states in the [`nudged_runs`] from the
/// reference's own.
fn sensitivity(runs: &[(Vec<f32>, State)], want: &[f32], want_state: &State) -> f32 {
    let wanted = parts(want, want_state);
    let mut worst = 0.0f32;
    for (alt, alt_state) in runs {
        for (alt, want) in parts(alt, alt_state).iter().zip(&wanted) {
            for (a, w) in alt.iter().zip(*want) {
                worst = worst.max((a - w).abs() / w.abs().max(1.0));
            }
        }
    }
    worst
}

/// The names of what [`parts`] returns.
const PARTS: [&str; 3] = ["output", "h", "c"];

/// A run's results as compared: the output, the final h and the final c.
fn parts<'a>(out: &'a [f32], state: &'a State) -> [&'a [f32]; 3] {
    [out, state.h(), state.c()]
}

/// The reference's output and final state when every weight, bias, input
/// and initial state moves by up to K ulp (K the longest sum, the
/// worst-case backward error of a K-term f32 sum), three different ways.
fn nudged_runs(model: &Rnn, seq: &Sequence<'_>, init: &State) -> Vec<(Vec<f32>, State)> {
    let cfg = model.config();
    let k_max =
        (cfg.input_size.max(cfg.hidden_size) + cfg.output_size().max(cfg.hidden_size)) as f32;
    let nudge = |v: &[f32], salt: usize| -> Vec<f32> {
        v.iter()
            .enumerate()
            .map(|(k, &x)| {
                let step = ((k * 7 + salt * 5) % 9) as f32 / 4.0 - 1.0; // in [-1, 1]
                x * (1.0 + step * k_max * 2.0f32.powi(-24))
            })
            .collect()
    };
    // The weights are the model's rounded ones, exact in f32, and every
    // format's reference computes with them as an f32 model does, so the
    // nudges are built in f32 (in a 16-bit or int8 format they would round
    // away again); except int8-dynamic, whose reference also quantizes the
    // vectors (a NaN in one makes its whole product NaN, which the NaN rule
    // must still see).
    let format = match model.weight_format() {
        WeightFormat::Int8Dynamic => WeightFormat::Int8Dynamic,
        _ => WeightFormat::F32,
    };
    (0..3)
        .map(|pass| {
            let salt = 8 * pass;
            let weights = model
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
            let nudged = RnnBuilder::new(cfg.clone(), weights)
                .kernel(KernelFamily::Reference)
                .weight_format(format)
                .build()
                .expect("same shapes");
            let xn = nudge(seq.input, salt + 6);
            let mut init_n = init.clone();
            let hn = nudge(init.h(), salt + 7);
            init_n.h_mut().copy_from_slice(&hn);
            let cn = nudge(init.c(), salt + 8);
            init_n.c_mut().copy_from_slice(&cn);
            run(&nudged, &Sequence { input: &xn, ..*seq }, &init_n)
        })
        .collect()
}
