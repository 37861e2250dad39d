//! Criterion benches: every kernel family this host runs, on every
//! standard shape (DESIGN.md §5). Throughput is time steps (x batch).
//! The scalar reference is slow at large H, so its sample count is small.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fusedrnn::shapes::STANDARD;
use fusedrnn::unfused::{Unfused, UnfusedWs};
use fusedrnn::{KernelFamily, Sequence, Workspace};

fn bench_shapes(c: &mut Criterion) {
    for shape in STANDARD {
        let mut group = c.benchmark_group(shape.name);
        group.throughput(Throughput::Elements((shape.steps * shape.batch) as u64));
        group.sample_size(10);
        group.measurement_time(std::time::Duration::from_secs(2));
        let x = shape.input();
        for family in KernelFamily::available() {
            let model = shape.model().with_kernel(family).expect("available");
            let mut state = model.new_state(shape.batch).unwrap();
            let mut ws = Workspace::new();
            if shape.streaming {
                let mut out = vec![0.0; shape.batch * model.output_features()];
                group.bench_function(BenchmarkId::new(family.name(), "step"), |b| {
                    b.iter(|| model.step(&x, &mut state, &mut out, &mut ws).expect("step"))
                });
            } else {
                let seq = Sequence::new(&x, shape.steps, shape.batch);
                let mut out = vec![0.0; x.len() / shape.hidden * model.output_features()];
                group.bench_function(BenchmarkId::new(family.name(), "sequence"), |b| {
                    b.iter(|| {
                        state.reset();
                        model.run(&seq, &mut state, &mut out, &mut ws).expect("run")
                    })
                });
            }
        }
        // The textbook baseline: matrixmultiply GEMMs and separate passes.
        if let Ok(u) = Unfused::new(&shape.model()) {
            let (t, b, h) = (shape.steps, shape.batch, shape.hidden);
            let (mut hs, mut cs, mut out) =
                (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; t * b * h]);
            let mut uws = UnfusedWs::default();
            group.bench_function(BenchmarkId::new("unfused", "sequence"), |bch| {
                bch.iter(|| {
                    u.run(&x, t, b, &mut hs, &mut cs, &mut out, &mut uws)
                        .expect("run")
                })
            });
        }
        group.finish();
    }
}

/// Many streams (`Streams::step` of N streams against N `Rnn::step`s) and
/// the thread team (`Team` of 2 against one thread), with the dispatched
/// kernel, on the shapes of issue 11's targets. Throughput: stream-steps
/// (streams) or time steps (team).
fn bench_streams_and_team(c: &mut Criterion) {
    use fusedrnn::shapes::Shape;
    use fusedrnn::{Streams, Team};
    for (name, n) in [
        ("lstm-h1024-b1", 16),
        ("lstm-h256-b1", 64),
        ("gru-h256-b1", 64),
    ] {
        let shape = Shape::by_name(name).expect("standard shape");
        let model = shape.model();
        let i = model.config().input_size;
        let hout = model.output_features();
        let mut group = c.benchmark_group(format!("{name}-streams{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(10);
        group.measurement_time(std::time::Duration::from_secs(2));
        let x: Vec<f32> = (0..n * i)
            .map(|k| ((k * 7919 % 2000) as f32 / 1000.0) - 1.0)
            .collect();
        let mut pool = Streams::new(&model, n).expect("pool");
        let ids: Vec<_> = (0..n).map(|_| pool.join().expect("capacity")).collect();
        let mut out = vec![0.0; n * hout];
        group.bench_function("together", |b| {
            b.iter(|| pool.step(&model, &ids, &x, &mut out).expect("step"))
        });
        let mut states: Vec<_> = (0..n).map(|_| model.new_state(1).unwrap()).collect();
        let mut ws = Workspace::new();
        group.bench_function("one_by_one", |b| {
            b.iter(|| {
                for (s, st) in states.iter_mut().enumerate() {
                    model
                        .step(&x[s * i..(s + 1) * i], st, &mut out[..hout], &mut ws)
                        .expect("step")
                }
            })
        });
        group.finish();
    }
    let mut team = Team::new(2).expect("team");
    for name in [
        "lstm-h512-b1",
        "lstm-h1024-b1",
        "lstm-h256-b64",
        "lstm-h64-b1",
    ] {
        let shape = Shape::by_name(name).expect("standard shape");
        let model = shape.model();
        let mut group = c.benchmark_group(format!("{name}-team"));
        group.throughput(Throughput::Elements((shape.steps * shape.batch) as u64));
        group.sample_size(10);
        group.measurement_time(std::time::Duration::from_secs(2));
        let x = shape.input();
        let seq = Sequence::new(&x, shape.steps, shape.batch);
        let mut state = model.new_state(shape.batch).unwrap();
        let mut out = vec![0.0; x.len() / shape.hidden * model.output_features()];
        let mut ws = Workspace::new();
        for threads in [1, 2] {
            group.bench_function(BenchmarkId::new("threads", threads), |b| {
                b.iter(|| {
                    state.reset();
                    if threads == 1 {
                        model.run(&seq, &mut state, &mut out, &mut ws)
                    } else {
                        team.run(&model, &seq, &mut state, &mut out, &mut ws)
                    }
                    .expect("run")
                })
            });
        }
        group.finish();
    }
}

/// Every weight format (f32, f16, bf16, int8) with the dispatched kernel,
/// at batch 1 and the streaming step, where the bytes of the weights bound
/// a step: ids `<shape>-weights/<format>`.
fn bench_weight_formats(c: &mut Criterion) {
    use fusedrnn::WeightFormat;
    for shape in STANDARD.iter().filter(|s| s.batch == 1 && s.hidden >= 256) {
        let mut group = c.benchmark_group(format!("{}-weights", shape.name));
        group.throughput(Throughput::Elements(shape.steps as u64));
        group.sample_size(10);
        group.measurement_time(std::time::Duration::from_secs(2));
        let x = shape.input();
        for &fmt in WeightFormat::ALL {
            let model = shape.model().with_weight_format(fmt).expect("f32 model");
            let mut state = model.new_state(1).unwrap();
            let mut ws = Workspace::new();
            let mut out = vec![0.0; shape.steps * model.output_features()];
            let seq = Sequence::new(&x, shape.steps, 1);
            group.bench_function(BenchmarkId::from_parameter(fmt.name()), |b| {
                b.iter(|| {
                    state.reset();
                    if shape.streaming {
                        model.step(&x, &mut state, &mut out, &mut ws)
                    } else {
                        model.run(&seq, &mut state, &mut out, &mut ws)
                    }
                    .expect("run")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(
    benches,
    bench_shapes,
    bench_streams_and_team,
    bench_weight_formats
);
criterion_main!(benches);
