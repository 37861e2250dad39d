//! The memory-floor probe (`Rnn::stream_recurrent_weights`) reads every
//! packed recurrent weight exactly once, whatever the panel length: GRU
//! panels (G = 3), odd reduction lengths and projection panels leave
//! lengths that are not a multiple of the probe's unrolled group. Under
//! AddressSanitizer (`.ci/run`), a read past a panel fails this test; the
//! sum checks that no weight is skipped.

use fusedrnn::{Cell, Config, DirectionWeights, KernelFamily, Rnn};

fn model(cell: Cell, input: usize, hidden: usize, proj: usize) -> Rnn {
    let g = cell.gates();
    let hout = if proj > 0 { proj } else { hidden };
    let mut cfg = Config::new(cell, input, hidden);
    cfg.proj_size = proj;
    // Distinct, exactly representable weights (multiples of 2^-10), so the
    // sum in any order is exact.
    let v = |n: usize, salt: usize| -> Vec<f32> {
        (0..n)
            .map(|k| ((k * 37 + salt) % 211) as f32 / 1024.0 - 0.125)
            .collect()
    };
    let w = DirectionWeights {
        w: v(g * hidden * input, 1),
        r: v(g * hidden * hout, 2),
        wb: v(g * hidden, 3),
        rb: v(g * hidden, 4),
        peepholes: None,
        proj: (proj > 0).then(|| v(hout * hidden, 5)),
    };
    Rnn::new(cfg, vec![w]).unwrap()
}

#[test]
fn floor_probe_reads_every_recurrent_weight_once() {
    let shapes = [
        (Cell::Gru, 3, 5, 0),
        (Cell::Gru, 4, 33, 0),
        (Cell::Gru, 2, 17, 0),
        (Cell::Lstm, 3, 7, 0),
        (Cell::Lstm, 3, 9, 5),
        (Cell::Lstm, 5, 40, 3),
        (Cell::Gru, 1, 1, 0),
    ];
    for (cell, input, hidden, proj) in shapes {
        let m = model(cell, input, hidden, proj);
        let w = &m.weights()[0];
        let want: f64 =
            w.r.iter()
                .chain(w.proj.iter().flatten())
                .map(|&x| x as f64)
                .sum();
        for family in KernelFamily::available() {
            if family == KernelFamily::Reference {
                continue;
            }
            let fast = m.clone().with_kernel(family).unwrap();
            let got = fast.stream_recurrent_weights() as f64;
            // Every weight and every partial sum is a multiple of 2^-10 far
            // below 2^24 * 2^-10, so f32 sums are exact in any order.
            assert_eq!(
                got, want,
                "{family:?} {cell:?} I={input} H={hidden} proj={proj}"
            );
        }
    }
}
