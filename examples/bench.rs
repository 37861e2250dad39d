//! Per-step latency of a kernel on a standard (or any named) shape, without criterion.
//!
//! ```text
//! cargo run --release --example bench -- --shape NAME|all [--kernel FAMILY|auto|unfused] [--weights f32|f16|bf16|int8] [--threads N] [--json]
//! cargo run --release --example bench -- --list-kernels
//! cargo run --release --example bench -- --peak
//! cargo run --release --example bench -- --shape NAME|all --decay [--kernel F] [--json]
//! cargo run --release --example bench -- --scaling [--kernel F] [--weights W] [--json]
//! cargo run --release --example bench -- --shape S --streams N [--threads T] [--kernel F] [--weights W] [--json]
//! cargo run --release --example bench -- --shape NAME|all --accuracy [--kernel F] [--weights W] [--json]
//! ```
//!
//! NAME is a standard shape (`fusedrnn::shapes::STANDARD`) or any name of
//! the same form, `lstm|gru-h<H>-b<B>` (I = H, T = 100) or
//! `lstm|gru-h<H>-step` (`fusedrnn::shapes::Shape::parse`).
//!
//! `--accuracy` prints how far each rounded weight format (f16, bf16,
//! int8; or only `--weights W`) moves the shape's outputs from the f32
//! model's: 100 steps on the standard input, `max_abs_diff` and
//! `mean_abs_diff` over all outputs (`fusedrnn::shapes::format_error`).
//!
//! `--threads N` runs the shape on a `fusedrnn::Team` of N threads (each
//! layer step split by hidden units; N = 1 is the plain single-threaded
//! call) and prints `"threads": N` with the usual fields.
//!
//! `--streams N` (S a `-b1` or `-step` shape: its cell and H, I = H) times
//! a `fusedrnn::Streams` pool of N streams stepped together, one frame
//! each (input projection included), against the same N streams stepped
//! one at a time with `Rnn::step`, in interleaved rounds (7, median of
//! each) of the same run: `ns_per_step` is one many-stream step of all N,
//! `ns_per_stream_step` that divided by N, `one_by_one_ns_per_stream_step`
//! the one-at-a-time time per stream, `gflops` counts all N streams.
//!
//! `--scaling` runs LSTMs (I = H, T = 100) at batch 1 for H = 32 to 2048 and
//! at H = 256 for B = 1 to 64, named like the standard shapes
//! (`lstm-h2048-b1`, `lstm-h256-b8`); `benches/compare/scaling.py` turns
//! its JSON into the README's table and chart.
//!
//! `ns_per_step` is the median over repeats (at least 15, and at least 0.3 s
//! in all) of one run divided by its time steps. `floor_ns` is the median
//! time, measured in the same run, to read the shape's packed recurrent
//! weights once with the same ISA (the auto-dispatched one for `unfused`
//! and `reference`), in the same weight format. `gflops` counts the input
//! and recurrent products. `--weights f16|bf16|int8` rounds the model's weight
//! matrices to that format (`Rnn::with_weight_format`). `peak_gflops` is
//! the host's FMA peak for the kernel's ISA (register-only FMA chains,
//! `fusedrnn::shapes::fma_peak_gflops`), measured once per run; `--peak`
//! prints it for every family the host runs.
//!
//! `--decay` measures whether latency depends on the data: the shape's
//! model with its biases set to 0, run on an all-zero input from states of
//! 1e-20, so every state decays toward zero through the range where
//! products and polynomial terms would be subnormal (slow on Intel cores),
//! timed interleaved (11 rounds, median) against the same model on the
//! standard input from zero states; it prints both and `decay_ratio`.

use std::process::ExitCode;

use fusedrnn::shapes::{median, median_ns, Shape, STANDARD};
use fusedrnn::unfused::{Unfused, UnfusedWs};
use fusedrnn::{KernelFamily, Rnn, Sequence, Streams, Team, WeightFormat, Workspace};

/// The minimum time per measurement.
const MIN_SECS: f64 = 0.3;

/// `--accuracy`: each format's output error against the f32 model.
fn run_accuracy(
    shape: &Shape,
    kernel: &str,
    only: Option<WeightFormat>,
    json: bool,
) -> Result<(), String> {
    let family = match kernel {
        "auto" => KernelFamily::auto().map_err(|e| e.to_string())?,
        k => KernelFamily::from_name(k).map_err(|e| e.to_string())?,
    };
    let formats: Vec<WeightFormat> = match only {
        Some(f) => vec![f],
        None => WeightFormat::ALL
            .iter()
            .copied()
            .filter(|&f| f != WeightFormat::F32)
            .collect(),
    };
    for fmt in formats {
        let (max, mean) =
            fusedrnn::shapes::format_error(shape, fmt, family).map_err(|e| e.to_string())?;
        if json {
            println!(
                "{{\"shape\": \"{}\", \"kernel\": \"{}\", \"weights\": \"{}\", \"steps\": 100, \"max_abs_diff\": {max:.3e}, \"mean_abs_diff\": {mean:.3e}}}",
                shape.name,
                family.name(),
                fmt.name()
            );
        } else {
            println!(
                "{:<16} {:<5} against f32 over 100 steps: max |diff| {max:.2e}, mean {mean:.2e} ({})",
                shape.name,
                fmt.name(),
                family.name()
            );
        }
    }
    Ok(())
}

/// `--decay`: the zero-bias model on zero input from tiny states, against
/// the same model on the standard input, interleaved rounds.
fn run_decay(shape: &Shape, kernel: &str, json: bool) -> Result<(), String> {
    let mut model = shape.model();
    if kernel != "auto" {
        let fam = KernelFamily::from_name(kernel).map_err(|e| e.to_string())?;
        model = model.with_kernel(fam).map_err(|e| e.to_string())?;
    }
    let mut w = model.weights().to_vec();
    for d in &mut w {
        d.wb.fill(0.0);
        d.rb.fill(0.0);
    }
    let model = fusedrnn::Rnn::builder(model.config().clone(), w)
        .kernel(model.kernel_family())
        .build()
        .map_err(|e| e.to_string())?;
    let (t, b) = (shape.steps, shape.batch);
    let normal_x = shape.input();
    let zero_x = vec![0.0; normal_x.len()];
    let mut state = model.new_state(b).map_err(|e| e.to_string())?;
    let mut ws = Workspace::new();
    let mut out = vec![0.0; t * b * model.output_features()];
    let mut rounds = [Vec::new(), Vec::new()];
    for _ in 0..11 {
        for (k, (x, init)) in [(&normal_x, 0.0f32), (&zero_x, 1e-20)]
            .into_iter()
            .enumerate()
        {
            let ns = median_ns(MIN_SECS, || {
                state.h_mut().fill(init);
                state.c_mut().fill(init);
                if shape.streaming {
                    model.step(x, &mut state, &mut out, &mut ws).expect("step");
                } else {
                    let seq = Sequence::new(x, t, b);
                    model.run(&seq, &mut state, &mut out, &mut ws).expect("run");
                }
            });
            rounds[k].push(ns / t as f64);
        }
    }
    let [normal, decay] = rounds.each_mut().map(|r| median(r));
    if json {
        println!(
            "{{\"shape\": \"{}\", \"kernel\": \"{}\", \"kernel_name\": \"{}\", \"ns_per_step\": {normal:.1}, \"decay_ns_per_step\": {decay:.1}, \"decay_ratio\": {:.3}}}",
            shape.name,
            model.kernel_family().name(),
            model.kernel_name(),
            decay / normal
        );
    } else {
        println!(
            "{:<15} {:<24} normal {:>12.1} ns/step   decaying to zero {:>12.1} ns/step   ratio {:.3}",
            shape.name,
            model.kernel_name(),
            normal,
            decay,
            decay / normal
        );
    }
    Ok(())
}

/// The `--scaling` shapes: H = 32..2048 at batch 1, B = 1..64 at H = 256.
fn scaling_shapes() -> Vec<Shape> {
    let lstm = |hidden: usize, batch: usize| {
        Shape::parse(&format!("lstm-h{hidden}-b{batch}")).expect("a shape name in bounds")
    };
    let by_h = [32, 64, 128, 256, 512, 1024, 2048].map(|h| lstm(h, 1));
    let by_b = [2, 4, 8, 16, 32, 64].map(|b| lstm(256, b));
    by_h.into_iter().chain(by_b).collect()
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("bench: {msg}");
    eprintln!("usage: bench --shape NAME|all [--kernel FAMILY|auto|unfused] [--weights f32|f16|bf16|int8] [--threads N] [--streams N] [--decay] [--accuracy] [--json]");
    ExitCode::from(2)
}

/// The shape's model in `weights`, run by `kernel` (and the
/// auto-dispatched one, whose ISA reads the floor for the reference).
fn models(shape: &Shape, kernel: &str, weights: WeightFormat) -> Result<(Rnn, Rnn), String> {
    let auto = shape
        .model()
        .with_weight_format(weights)
        .map_err(|e| e.to_string())?;
    let model = match kernel {
        "auto" | "unfused" => auto.clone(),
        name => {
            let fam = KernelFamily::from_name(name).map_err(|e| e.to_string())?;
            auto.clone().with_kernel(fam).map_err(|e| e.to_string())?
        }
    };
    Ok((model, auto))
}

/// The memory floor of one step (`floor_ns`: reading the packed recurrent
/// weights once) with `model`'s ISA, or the auto-dispatched one's when
/// `model` packs nothing (the reference), and that model's family.
fn floor(model: &Rnn, auto: &Rnn) -> (f64, KernelFamily) {
    let m = if model.recurrent_weight_bytes() > 0 {
        model
    } else {
        auto
    };
    let ns = median_ns(MIN_SECS, || {
        std::hint::black_box(m.stream_recurrent_weights());
    });
    (ns, m.kernel_family())
}

/// The host's FMA peak for `family`, measured once per run.
fn peak_of(family: KernelFamily, peaks: &mut Vec<(KernelFamily, f64)>) -> Result<f64, String> {
    if let Some(p) = peaks.iter().find(|p| p.0 == family) {
        return Ok(p.1);
    }
    let p = fusedrnn::shapes::fma_peak_gflops(family).map_err(|e| e.to_string())?;
    peaks.push((family, p));
    Ok(p)
}

/// `--streams N`: a pool of N streams stepped together against the same
/// streams stepped one by one, interleaved rounds.
fn run_streams(
    shape: &Shape,
    kernel: &str,
    weights: WeightFormat,
    n: usize,
    team: Option<&mut Team>,
    json: bool,
    peaks: &mut Vec<(KernelFamily, f64)>,
) -> Result<(), String> {
    if shape.batch != 1 || kernel == "unfused" {
        return Err("--streams needs a batch-1 shape and a fused kernel".into());
    }
    let (model, auto) = models(shape, kernel, weights)?;
    let (i, hout) = (model.config().input_size, model.output_features());
    let mut pool = Streams::new(&model, n).map_err(|e| e.to_string())?;
    let ids: Vec<_> = (0..n).map(|_| pool.join().expect("capacity n")).collect();
    // Stream s's frame: the shape's input shifted by s, so no two agree.
    let base = shape.input();
    let x: Vec<f32> = (0..n * i).map(|k| base[(k + k / i) % base.len()]).collect();
    let mut out = vec![0.0; n * hout];
    let mut states: Vec<_> = (0..n).map(|_| model.new_state(1).unwrap()).collect();
    let mut ws = Workspace::new();
    let mut one = vec![0.0; hout];
    let threads = team.as_ref().map_or(1, |t| t.threads());
    let mut team = team;
    let (mut together, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        together.push(median_ns(MIN_SECS / 3.0, || match team.as_deref_mut() {
            Some(t) => t
                .step_streams(&model, &mut pool, &ids, &x, &mut out)
                .expect("step"),
            None => pool.step(&model, &ids, &x, &mut out).expect("step"),
        }));
        alone.push(median_ns(MIN_SECS / 3.0, || {
            for (s, st) in states.iter_mut().enumerate() {
                model
                    .step(&x[s * i..(s + 1) * i], st, &mut one, &mut ws)
                    .expect("step");
            }
        }));
    }
    let (ns, alone_ns) = (median(&mut together), median(&mut alone));
    let (floor_ns, floor_family) = floor(&model, &auto);
    let gflops = shape.flops_per_step() * n as f64 / ns;
    let peak = peak_of(floor_family, peaks)?;
    let (per, alone_per) = (ns / n as f64, alone_ns / n as f64);
    if json {
        println!(
            "{{\"shape\": \"{}\", \"kernel\": \"{}\", \"kernel_name\": \"{}\", \"weights\": \"{}\", \"threads\": {threads}, \"streams\": {n}, \"ns_per_step\": {ns:.1}, \"ns_per_stream_step\": {per:.1}, \"one_by_one_ns_per_stream_step\": {alone_per:.1}, \"speedup\": {:.2}, \"gflops\": {gflops:.2}, \"peak_gflops\": {peak:.1}, \"floor_ns\": {floor_ns:.1}}}",
            shape.name,
            model.kernel_family().name(),
            model.kernel_name(),
            weights.name(),
            alone_per / per
        );
    } else {
        println!(
            "{:<15} {:<24} {n:>4} streams, {threads} thread(s): {per:>10.1} ns per stream-step together, {alone_per:>10.1} one by one ({:.2}x); {gflops:.2} GFLOP/s ({:.0}% of peak)",
            shape.name,
            model.kernel_name(),
            alone_per / per,
            100.0 * gflops / peak
        );
    }
    Ok(())
}

fn run_shape(
    shape: &Shape,
    kernel: &str,
    weights: WeightFormat,
    mut team: Option<&mut Team>,
    json: bool,
    peaks: &mut Vec<(KernelFamily, f64)>,
) -> Result<(), String> {
    if kernel == "unfused" && (weights != WeightFormat::F32 || team.is_some()) {
        return Err("the unfused baseline runs f32 weights on one thread only".into());
    }
    let (model, auto) = models(shape, kernel, weights)?;
    let threads = team.as_ref().map_or(1, |t| t.threads());
    let x = shape.input();
    let (t, b) = (shape.steps, shape.batch);
    let mut state = model.new_state(b).unwrap();
    let mut ws = Workspace::new();
    let (name, total_ns) = if kernel == "unfused" {
        let u = Unfused::new(&model).map_err(|e| e.to_string())?;
        let h = shape.hidden;
        let (mut hs, mut cs, mut out) = (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; t * b * h]);
        let mut uws = UnfusedWs::default();
        let ns = median_ns(MIN_SECS, || {
            u.run(&x, t, b, &mut hs, &mut cs, &mut out, &mut uws)
                .expect("run")
        });
        ("unfused".to_string(), ns)
    } else if shape.streaming {
        let mut out = vec![0.0; b * model.output_features()];
        let ns = median_ns(MIN_SECS, || {
            match team.as_deref_mut() {
                Some(t) => t.step(&model, &x, &mut state, &mut out, &mut ws),
                None => model.step(&x, &mut state, &mut out, &mut ws),
            }
            .expect("step")
        });
        (model.kernel_name().to_string(), ns)
    } else {
        let seq = Sequence::new(&x, t, b);
        let mut out = vec![0.0; t * b * model.output_features()];
        let ns = median_ns(MIN_SECS, || {
            state.reset();
            match team.as_deref_mut() {
                Some(t) => t.run(&model, &seq, &mut state, &mut out, &mut ws),
                None => model.run(&seq, &mut state, &mut out, &mut ws),
            }
            .expect("run")
        });
        (model.kernel_name().to_string(), ns)
    };
    let (floor_ns, floor_family) = floor(&model, &auto);
    let ns_per_step = total_ns / t as f64;
    let gflops = shape.flops_per_step() / ns_per_step;
    let peak = peak_of(floor_family, peaks)?;
    let family = if kernel == "unfused" {
        "unfused".to_string()
    } else {
        model.kernel_family().name().to_string()
    };
    if json {
        println!(
            "{{\"shape\": \"{}\", \"kernel\": \"{family}\", \"kernel_name\": \"{name}\", \"weights\": \"{}\", \"threads\": {threads}, \"ns_per_step\": {ns_per_step:.1}, \"gflops\": {gflops:.2}, \"peak_gflops\": {peak:.1}, \"floor_ns\": {floor_ns:.1}}}",
            shape.name,
            weights.name()
        );
    } else {
        println!(
            "{:<15} {:<24} {:>12.1} ns/step {:>8.2} GFLOP/s ({:>3.0}% of peak)   floor {:>10.1} ns   ({:.2}x floor)",
            shape.name,
            name,
            ns_per_step,
            gflops,
            100.0 * gflops / peak,
            floor_ns,
            ns_per_step / floor_ns
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut shapes, mut kernel, mut json) = (Vec::new(), "auto".to_string(), false);
    let mut weights = WeightFormat::F32;
    let (mut decay, mut accuracy, mut weights_given) = (false, false, false);
    let (mut threads, mut streams) = (1usize, 0usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--list-kernels" => {
                for f in KernelFamily::available() {
                    println!("{}", f.name());
                }
                return ExitCode::SUCCESS;
            }
            "--peak" => {
                for f in KernelFamily::available() {
                    match fusedrnn::shapes::fma_peak_gflops(f) {
                        Ok(p) => println!("{:<10} {p:>8.1} GFLOP/s FMA peak (one core)", f.name()),
                        Err(e) => return usage(&e.to_string()),
                    }
                }
                return ExitCode::SUCCESS;
            }
            "--shape" => match args.next().as_deref() {
                Some("all") => shapes.extend_from_slice(STANDARD),
                Some(n) => match Shape::parse(n) {
                    Ok(s) => shapes.push(s),
                    Err(e) => return usage(&e.to_string()),
                },
                None => return usage("--shape needs a name"),
            },
            "--kernel" => match args.next() {
                Some(k) => kernel = k,
                None => return usage("--kernel needs a name"),
            },
            "--weights" => match args.next().map(|w| WeightFormat::from_name(&w)) {
                Some(Ok(w)) => {
                    weights = w;
                    weights_given = true;
                }
                Some(Err(e)) => return usage(&e.to_string()),
                None => return usage("--weights needs a type"),
            },
            "--threads" => match args.next().map(|n| n.parse::<usize>()) {
                Some(Ok(n)) if n >= 1 => threads = n,
                _ => return usage("--threads needs a count of at least 1"),
            },
            "--streams" => match args.next().map(|n| n.parse::<usize>()) {
                Some(Ok(n)) if n >= 1 => streams = n,
                _ => return usage("--streams needs a count of at least 1"),
            },
            "--json" => json = true,
            "--scaling" => shapes.extend(scaling_shapes()),
            "--decay" => decay = true,
            "--accuracy" => accuracy = true,
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    if shapes.is_empty() {
        return usage("no --shape given");
    }
    let mut peaks = Vec::new();
    // A team only when asked for more than one thread.
    let mut team = match threads {
        1 => None,
        n => match Team::new(n) {
            Ok(t) => Some(t),
            Err(e) => return usage(&e.to_string()),
        },
    };
    for s in &shapes {
        let r = if accuracy {
            run_accuracy(s, &kernel, weights_given.then_some(weights), json)
        } else if decay {
            run_decay(s, &kernel, json)
        } else if streams > 0 {
            run_streams(
                s,
                &kernel,
                weights,
                streams,
                team.as_mut(),
                json,
                &mut peaks,
            )
        } else {
            run_shape(s, &kernel, weights, team.as_mut(), json, &mut peaks)
        };
        if let Err(e) = r {
            eprintln!("bench: {}: {e}", s.name);
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
