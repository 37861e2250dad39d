//! Per-step latency of a kernel on a standard shape, without criterion.
//!
//! ```text
//! cargo run --release --example bench -- --shape NAME|all [--kernel FAMILY|auto|unfused] [--weights f32|f16|bf16] [--threads N] [--json]
//! cargo run --release --example bench -- --list-kernels
//! cargo run --release --example bench -- --peak
//! cargo run --release --example bench -- --shape NAME|all --decay [--kernel F] [--json]
//! cargo run --release --example bench -- --scaling [--kernel F] [--weights W] [--json]
//! ```
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
//! and recurrent products. `--weights f16|bf16` rounds the model's weight
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
use fusedrnn::{KernelFamily, Sequence, WeightFormat, Workspace};

/// The minimum time per measurement.
const MIN_SECS: f64 = 0.3;

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
    let lstm = |hidden: usize, batch: usize| Shape {
        name: Box::leak(format!("lstm-h{hidden}-b{batch}").into_boxed_str()),
        cell: fusedrnn::Cell::Lstm,
        hidden,
        batch,
        steps: 100,
        streaming: false,
    };
    let by_h = [32, 64, 128, 256, 512, 1024, 2048].map(|h| lstm(h, 1));
    let by_b = [2, 4, 8, 16, 32, 64].map(|b| lstm(256, b));
    by_h.into_iter().chain(by_b).collect()
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("bench: {msg}");
    eprintln!("usage: bench --shape NAME|all [--kernel FAMILY|auto|unfused] [--weights f32|f16|bf16] [--threads N] [--decay] [--json]");
    ExitCode::from(2)
}

fn run_shape(
    shape: &Shape,
    kernel: &str,
    weights: WeightFormat,
    json: bool,
    peaks: &mut Vec<(KernelFamily, f64)>,
) -> Result<(), String> {
    if kernel == "unfused" && weights != WeightFormat::F32 {
        return Err("the unfused baseline runs f32 weights only".into());
    }
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
            model.step(&x, &mut state, &mut out, &mut ws).expect("step")
        });
        (model.kernel_name().to_string(), ns)
    } else {
        let seq = Sequence::new(&x, t, b);
        let mut out = vec![0.0; t * b * model.output_features()];
        let ns = median_ns(MIN_SECS, || {
            state.reset();
            model.run(&seq, &mut state, &mut out, &mut ws).expect("run")
        });
        (model.kernel_name().to_string(), ns)
    };
    let floor_model = if model.recurrent_weight_bytes() > 0 {
        &model
    } else {
        &auto
    };
    let floor_ns = median_ns(MIN_SECS, || {
        std::hint::black_box(floor_model.stream_recurrent_weights());
    });
    let ns_per_step = total_ns / t as f64;
    let gflops = shape.flops_per_step() / ns_per_step;
    let peak_family = floor_model.kernel_family();
    let peak = match peaks.iter().find(|p| p.0 == peak_family) {
        Some(p) => p.1,
        None => {
            let p = fusedrnn::shapes::fma_peak_gflops(peak_family).map_err(|e| e.to_string())?;
            peaks.push((peak_family, p));
            p
        }
    };
    let family = if kernel == "unfused" {
        "unfused".to_string()
    } else {
        model.kernel_family().name().to_string()
    };
    if json {
        println!(
            "{{\"shape\": \"{}\", \"kernel\": \"{family}\", \"kernel_name\": \"{name}\", \"weights\": \"{}\", \"threads\": 1, \"ns_per_step\": {ns_per_step:.1}, \"gflops\": {gflops:.2}, \"peak_gflops\": {peak:.1}, \"floor_ns\": {floor_ns:.1}}}",
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
    let mut decay = false;
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
                Some(n) => match Shape::by_name(n) {
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
                Some(Ok(w)) => weights = w,
                Some(Err(e)) => return usage(&e.to_string()),
                None => return usage("--weights needs a type"),
            },
            "--threads" => match args.next().as_deref() {
                Some("1") => {}
                Some(n) => {
                    return usage(&format!(
                        "--threads {n}: only single-threaded runs are supported so far"
                    ))
                }
                None => return usage("--threads needs a count"),
            },
            "--json" => json = true,
            "--scaling" => shapes.extend(scaling_shapes()),
            "--decay" => decay = true,
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    if shapes.is_empty() {
        return usage("no --shape given");
    }
    let mut peaks = Vec::new();
    for s in &shapes {
        let r = if decay {
            run_decay(s, &kernel, json)
        } else {
            run_shape(s, &kernel, weights, json, &mut peaks)
        };
        if let Err(e) = r {
            eprintln!("bench: {}: {e}", s.name);
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
