//! States and inputs that decay toward zero. The fast kernels take values
//! below 2^-63 in magnitude as 0 (so no FMA ever sees a subnormal operand
//! or result, which is ~100x slower on Intel cores; the timing is
//! `bench --decay`, not a test). What a test can check: on every fast
//! family the host runs, the outputs and final states hold no subnormal,
//! they stay within the property tests' tolerance of the reference (which
//! keeps the exact tiny values), NaN still propagates, and a streaming step
//! equals the sequence run bit for bit.

mod common;

use common::Rng;
use fusedrnn::{
    Cell, Config, DirectionWeights, GruReset, KernelFamily, Rnn, Sequence, State, Workspace,
};

/// A zero-bias model: on zero input its states decay toward zero.
fn model(cell: Cell, reset: GruReset, proj: usize, h: usize, i: usize, seed: u64) -> Rnn {
    let g = cell.gates();
    let mut r = Rng(seed);
    let hout = if proj > 0 { proj } else { h };
    let w = DirectionWeights {
        w: r.vec(g * h * i, 0.3),
        r: r.vec(g * h * hout, 0.3),
        wb: vec![0.0; g * h],
        rb: vec![0.0; g * h],
        peepholes: (cell == Cell::Lstm).then(|| r.vec(3 * h, 0.3)),
        proj: (proj > 0).then(|| r.vec(hout * h, 0.3)),
    };
    let mut cfg = Config::new(cell, i, h);
    cfg.gru_reset = reset;
    cfg.proj_size = proj;
    cfg.num_layers = 1;
    Rnn::new(cfg, vec![w]).unwrap()
}

fn models() -> Vec<(String, Rnn)> {
    let mut v = Vec::new();
    for (k, &h) in [16usize, 37, 64].iter().enumerate() {
        let seed = 11 + k as u64;
        v.push((
            format!("lstm h{h}"),
            model(Cell::Lstm, GruReset::AfterMatmul, 0, h, 9, seed),
        ));
        v.push((
            format!("lstmp h{h}"),
            model(Cell::Lstm, GruReset::AfterMatmul, 7, h, 9, seed),
        ));
        v.push((
            format!("gru-after h{h}"),
            model(Cell::Gru, GruReset::AfterMatmul, 0, h, 9, seed),
        ));
        v.push((
            format!("gru-before h{h}"),
            model(Cell::Gru, GruReset::BeforeMatmul, 0, h, 9, seed),
        ));
    }
    v
}

fn fill(state: &mut State, v: f32) {
    state.h_mut().fill(v);
    state.c_mut().fill(v);
}

/// Runs `m` over `x` from states `init`; returns outputs and final state.
fn run(m: &Rnn, x: &[f32], t: usize, b: usize, init: f32) -> (Vec<f32>, State) {
    let mut st = m.new_state(b).unwrap();
    fill(&mut st, init);
    let mut out = vec![f32::NAN; t * b * m.output_features()];
    m.run(
        &Sequence::new(x, t, b),
        &mut st,
        &mut out,
        &mut Workspace::new(),
    )
    .unwrap();
    (out, st)
}

fn check(name: &str, fam: KernelFamily, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(!g.is_subnormal(), "{name} {fam:?}: subnormal {g:e} at {k}");
        // The property tests' tolerance (tests/kernels_vs_reference.rs);
        // flushing changes a value by at most 2^-63.
        assert!(
            (g - w).abs() <= 5e-5 * w.abs().max(1.0),
            "{name} {fam:?}: {g:e} vs reference {w:e} at {k}"
        );
    }
}

#[test]
fn decaying_states_have_no_subnormals_and_match_the_reference() {
    let (t, b) = (60, 3);
    for (name, m) in models() {
        let reference = m.clone().with_kernel(KernelFamily::Reference).unwrap();
        let i = m.config().input_size;
        // Zero input, and an input whose entries are tiny or subnormal.
        let mut r = Rng(5);
        let tiny: Vec<f32> = (0..t * b * i)
            .map(|k| r.f32(1.0) * [1e-39, 1e-25, 1e-20, 0.0][k % 4])
            .collect();
        for (x, init) in [
            (vec![0.0; t * b * i], 1e-20f32),
            (vec![0.0; t * b * i], 1e-39),
            (tiny, 1e-30),
        ] {
            let (want, want_st) = run(&reference, &x, t, b, init);
            for fam in KernelFamily::available() {
                if fam == KernelFamily::Reference {
                    continue;
                }
                let fast = m.clone().with_kernel(fam).unwrap();
                let (got, got_st) = run(&fast, &x, t, b, init);
                check(&name, fam, &got, &want);
                check(&name, fam, got_st.h(), want_st.h());
                check(&name, fam, got_st.c(), want_st.c());
                // The streaming step computes the same numbers.
                let mut st = fast.new_state(b).unwrap();
                fill(&mut st, init);
                let (mut ws, width) = (Workspace::new(), b * fast.output_features());
                let mut step_out = vec![0.0; width];
                for s in 0..t {
                    fast.step(
                        &x[s * b * i..(s + 1) * b * i],
                        &mut st,
                        &mut step_out,
                        &mut ws,
                    )
                    .unwrap();
                    assert_eq!(
                        step_out[..].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        got[s * width..(s + 1) * width]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect::<Vec<_>>(),
                        "{name} {fam:?}: step {s} differs from the sequence run"
                    );
                }
            }
        }
    }
}

#[test]
fn nan_and_infinity_are_not_flushed() {
    let (t, b) = (4, 2);
    for (name, m) in models() {
        let i = m.config().input_size;
        for fam in KernelFamily::available() {
            let fast = m.clone().with_kernel(fam).unwrap();
            let mut x = vec![0.0; t * b * i];
            x[0] = f32::NAN;
            let (out, _) = run(&fast, &x, t, b, 1e-30);
            let w = fast.output_features();
            assert!(
                out[..w].iter().any(|v| v.is_nan()),
                "{name} {fam:?}: NaN input lost"
            );
            assert!(
                out[w..b * w].iter().all(|v| !v.is_nan()),
                "{name} {fam:?}: NaN leaked to row 1"
            );
            let (out, st) = run(&fast, &vec![0.0; t * b * i], t, b, f32::INFINITY);
            assert!(
                out.iter().chain(st.h()).any(|v| !v.is_finite()),
                "{name} {fam:?}: infinite state lost"
            );
        }
    }
}
