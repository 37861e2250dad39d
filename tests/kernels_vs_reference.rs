//! Every fast kernel family this host runs, against the scalar reference,
//! on random models and shapes (the property and its tolerance:
//! `props/mod.rs`), each run also on a team of 2 threads.

mod common;
mod props;
use common::Rng;
use props::{build, case, check, Case, ACTS};

use fusedrnn::{Activation, Activations, Cell, KernelFamily, Rnn, Sequence};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn every_kernel_matches_the_reference(c in case()) {
        check(&c, true)?;
    }

    /// Int8-dynamic on every family (the tolerance: `props::tolerance`):
    /// half the cases one step of one layer, held to the f32 5e-5.
    #[test]
    fn int8_dynamic_matches_the_reference(c in case(), one_step in any::<bool>()) {
        let mut c = c;
        c.format = fusedrnn::WeightFormat::Int8Dynamic;
        if one_step {
            c.t = 1;
            c.layers = 1;
        }
        check(&c, false)?;
    }
}

/// Sequences long and wide enough that the input projection runs in
/// several chunks of time steps (`driver.rs`: a projection over 2 MiB
/// runs in chunks of about 320 KiB; here 64 steps x 48 entries x 208 (GRU)
/// or 272 (LSTM) floats = 2.6 or 3.3 MB, eight chunks or more), in every
/// direction, with lengths (the reverse pass of each entry starts at its
/// own last step, so a chunk's rows are not one range of the input), both
/// layouts, two layers, every weight format, and on a team of 2: the same
/// numbers as the reference.
#[test]
fn chunked_projection_matches_the_reference() {
    use fusedrnn::{Direction, GruReset, WeightFormat};
    let formats = [
        WeightFormat::F32,
        WeightFormat::Bf16,
        WeightFormat::Int8,
        WeightFormat::Int8Dynamic,
    ];
    for (k, cell) in [Cell::Lstm, Cell::Gru].into_iter().enumerate() {
        for (d, direction) in [
            Direction::Forward,
            Direction::Reverse,
            Direction::Bidirectional,
        ]
        .into_iter()
        .enumerate()
        {
            let seed = 1000 + 10 * k as u64 + d as u64;
            let mut c = Case::plain(cell, 33, 9, 48, 64, seed);
            c.direction = direction;
            c.lengths = d != 0;
            c.batch_major = d == 1;
            c.layers = 1 + d % 2;
            c.peep = cell == Cell::Lstm && d == 2;
            c.reset = if d == 1 {
                GruReset::BeforeMatmul
            } else {
                GruReset::AfterMatmul
            };
            c.format = formats[(k + d) % formats.len()];
            check(&c, true).unwrap();
        }
    }
}

/// Blocks whose panels are walked in chunks on every ISA (AVX-512 chunks
/// blocks past 256 KiB, i.e. f32 K > 512 rows, when a pass has several
/// tiles; AVX2 8 KiB): H = 520 at batch 8, against the reference, also on
/// a team of 2.
#[test]
fn chunked_panels_match_the_reference() {
    use fusedrnn::{GruReset, WeightFormat};
    for (k, (cell, format)) in [
        (Cell::Lstm, WeightFormat::F32),
        (Cell::Gru, WeightFormat::Int8),
        (Cell::Lstm, WeightFormat::Bf16),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Case::plain(cell, 520, 16, 8, 3, 2000 + k as u64);
        c.format = format;
        c.reset = if k == 1 {
            GruReset::BeforeMatmul
        } else {
            GruReset::AfterMatmul
        };
        check(&c, true).unwrap();
    }
}

/// Passes that stream more weights per step than L2 keeps (over 2 MiB,
/// `step::FAR_BYTES`) run their one-row f32 products with prefetches ahead.
/// At batch 1: LSTM H = 400 (`R` 2.7 MB) and GRU H = 480 (2.8 MB) against
/// the reference, and bit for bit against a team of 2 (each thread's share
/// under 2 MiB: no prefetches); a streaming step at H = I = 300 (`W` and
/// `R` 1.5 MB each, 3 MB together: prefetched) bit for bit against the same
/// model's `run` (the projection first, then `R` alone: not prefetched).
#[test]
fn far_panels_match_the_reference() {
    use fusedrnn::{State, Workspace};
    for (k, cell) in [Cell::Lstm, Cell::Gru].into_iter().enumerate() {
        let c = Case::plain(cell, [400, 480][k], 24, 1, 3, 3000 + k as u64);
        check(&c, true).unwrap();
    }
    for cell in [Cell::Lstm, Cell::Gru] {
        let m = build(&Case::plain(cell, 300, 300, 1, 4, 3100));
        for family in KernelFamily::available() {
            let m = m.clone().with_kernel(family).unwrap();
            let (t, i, h) = (4, 300, m.config().output_size());
            let x = Rng(7).vec(t * i, 1.0);
            let mut init: State = m.new_state(1).unwrap();
            init.h_mut().copy_from_slice(&Rng(8).vec(h, 1.0));
            let mut run_state = init.clone();
            let mut y = vec![f32::NAN; t * h];
            let mut ws = Workspace::new();
            m.run(&Sequence::new(&x, t, 1), &mut run_state, &mut y, &mut ws)
                .unwrap();
            let (mut st, mut out) = (init.clone(), vec![f32::NAN; h]);
            for s in 0..t {
                m.step(&x[s * i..][..i], &mut st, &mut out, &mut ws)
                    .unwrap();
                assert!(
                    out.iter()
                        .map(|v| v.to_bits())
                        .eq(y[s * h..][..h].iter().map(|v| v.to_bits())),
                    "{} step {s}: the streaming step differs from run",
                    m.kernel_name()
                );
            }
            assert!(st == run_state, "{}: final state", m.kernel_name());
        }
    }
}

/// ThresholdedRelu (discontinuous at alpha) on a fixed seed: one layer,
/// so no jump can be carried into another layer; the kernels are
/// deterministic, so the case gives the same numbers on every run of an ISA.
#[test]
fn thresholded_relu_matches_the_reference() {
    let mut acts = ACTS[4];
    acts.h = Activation::ThresholdedRelu { alpha: 0.2 };
    for cell in [Cell::Lstm, Cell::Gru] {
        let c = Case::plain(cell, 37, 11, 3, 5, 77);
        let model = build(&c);
        let mut cfg = model.config().clone();
        cfg.activations = [Activations {
            g: Activation::ThresholdedRelu { alpha: 0.2 },
            ..acts
        }; 2];
        let model = Rnn::new(cfg, model.weights().to_vec()).unwrap();
        let x = Rng(5).vec(c.t * c.b * c.i, 2.0);
        let seq = Sequence::new(&x, c.t, c.b);
        let reference = model.clone().with_kernel(KernelFamily::Reference).unwrap();
        let (want, _) = reference.forward(&seq, None).unwrap();
        for f in KernelFamily::available() {
            let (got, _) = model
                .clone()
                .with_kernel(f)
                .unwrap()
                .forward(&seq, None)
                .unwrap();
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 5e-5 * b.abs().max(1.0),
                    "{f:?} {cell:?} y[{k}]: {a} vs {b}"
                );
            }
        }
    }
}

/// Forcing a family this CPU lacks is a typed error, never a silent
/// fallback; and on x86_64 hosts with the features, the ISA kernels must be
/// in the list (so the property test above cannot skip them silently).
#[test]
fn forced_families_are_checked() {
    for f in KernelFamily::ALL {
        let m = build(&Case::plain(Cell::Gru, 5, 3, 1, 1, 1));
        match m.with_kernel(*f) {
            Ok(m) => assert!(m.kernel_name().contains(f.name())),
            Err(e) => {
                assert!(matches!(e, fusedrnn::Error::KernelUnavailable(_)) && !f.is_available())
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("FUSEDRNN_EXPECT_AVX512").is_some() {
            assert!(
                KernelFamily::Avx512.is_available(),
                "FUSEDRNN_EXPECT_AVX512 set but AVX-512 is not detected"
            );
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            assert!(KernelFamily::available().contains(&KernelFamily::Avx2));
        }
    }
}
