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

criterion_group!(benches, bench_shapes);
criterion_main!(benches);
