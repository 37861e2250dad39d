//! Public API behaviour: streaming steps equal the sequence run, both
//! layouts agree, padding and zero lengths, empty shapes, Send + Sync.

mod common;
use common::*;

use fusedrnn::import::pytorch::{self, PytorchOptions};
use fusedrnn::{Cell, Layout, Rnn, Sequence, WeightFormat, Workspace};

fn model(name: &str, cell: Cell) -> Rnn {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/golden/{name}.safetensors"));
    pytorch::load_safetensors(p, &PytorchOptions::new(cell)).unwrap()
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn model_is_send_and_sync() {
    assert_send_sync::<Rnn>();
    assert_send_sync::<fusedrnn::State>();
}

/// Stepping one time step at a time gives bit-identical numbers to the
/// sequence run, for every kernel the host runs, at batch sizes that use
/// whole-block tiles only (1, 3), half-block tiles (8, 13: AVX-512 tiles
/// 6 rows, AVX2 3) and remainders, with f32, 16-bit and int8 weights. The
/// sequence's input projection runs 9 * b rows: from b = 3 on, AVX2's
/// 6-row and AVX-512's 12-row gate-pair tiles (`project.rs`) and their
/// leftover rows in the step's tiles.
#[test]
fn streaming_steps_equal_the_sequence_run() {
    for (name, cell) in [
        ("pt-lstm-l2-init-h16-i16-b3-t7", Cell::Lstm),
        ("pt-gru-l1-h8-i5-b2-t7", Cell::Gru),
        ("pt-lstm-l1-proj3-init-h8-i5-b2-t7", Cell::Lstm),
        ("pt-gru-l1-init-saturating-h32-i16-b2-t20", Cell::Gru),
    ] {
        for (fam, b, format) in fusedrnn::KernelFamily::available()
            .into_iter()
            .flat_map(|f| [1, 3, 8, 10, 11, 13].map(|b| (f, b)))
            .flat_map(|(f, b)| {
                [
                    WeightFormat::F32,
                    WeightFormat::Bf16,
                    WeightFormat::F16,
                    WeightFormat::Int8,
                ]
                .map(|w| (f, b, w))
            })
        {
            let m = model(name, cell)
                .with_kernel(fam)
                .unwrap()
                .with_weight_format(format)
                .unwrap();
            let (tl, i) = (9, m.config().input_size);
            let x = Rng(3).vec(tl * b * i, 1.0);
            let mut init = m.new_state(b).unwrap();
            let hl = init.h().len();
            init.h_mut().copy_from_slice(&Rng(5).vec(hl, 1.0));
            let cl = init.c().len();
            init.c_mut().copy_from_slice(&Rng(6).vec(cl, 1.0));
            let (y, fin) = m.forward(&Sequence::new(&x, tl, b), Some(&init)).unwrap();
            let mut st = init.clone();
            let mut ws = Workspace::new();
            let hout = m.config().output_size();
            let mut out = vec![f32::NAN; b * hout];
            for s in 0..tl {
                m.step(&x[s * b * i..(s + 1) * b * i], &mut st, &mut out, &mut ws)
                    .unwrap();
                assert_eq!(
                    out,
                    &y[s * b * hout..(s + 1) * b * hout],
                    "{name} {fam:?} {format:?} b {b} step {s}"
                );
            }
            assert_eq!(st.h(), fin.h());
            assert_eq!(st.c(), fin.c());
        }
    }
}

#[test]
fn batch_major_equals_sequence_major() {
    let m = model("pt-gru-l2-bidir-init-h16-i16-b3-t7", Cell::Gru);
    let (tl, b, i, f) = (6, 3, 16, m.output_features());
    let x = Rng(11).vec(tl * b * i, 1.0);
    let mut xb = vec![0.0; x.len()];
    for s in 0..tl {
        for e in 0..b {
            xb[(e * tl + s) * i..][..i].copy_from_slice(&x[(s * b + e) * i..][..i]);
        }
    }
    let lengths = [6, 2, 4];
    let seq = Sequence {
        lengths: Some(&lengths),
        ..Sequence::new(&x, tl, b)
    };
    let (y, st) = m.forward(&seq, None).unwrap();
    let seqb = Sequence {
        layout: Layout::BatchMajor,
        input: &xb,
        ..seq
    };
    let (yb, stb) = m.forward(&seqb, None).unwrap();
    for s in 0..tl {
        for e in 0..b {
            assert_eq!(&yb[(e * tl + s) * f..][..f], &y[(s * b + e) * f..][..f]);
        }
    }
    assert_eq!(st, stb);
}

#[test]
fn padding_is_zero_and_zero_length_gives_zero_state() {
    let m = model("pt-lstm-l1-bidir-init-h32-i5-b2-t20", Cell::Lstm);
    let (tl, b, i, f) = (5, 3, 5, m.output_features());
    let x = Rng(2).vec(tl * b * i, 1.0);
    let lengths = [5, 0, 2];
    let mut init = m.new_state(b).unwrap();
    init.h_mut().fill(0.5);
    init.c_mut().fill(0.5);
    let seq = Sequence {
        lengths: Some(&lengths),
        ..Sequence::new(&x, tl, b)
    };
    let (y, st) = m.forward(&seq, Some(&init)).unwrap();
    for s in 0..tl {
        for (e, &len) in lengths.iter().enumerate() {
            let row = &y[(s * b + e) * f..][..f];
            if s >= len {
                assert!(row.iter().all(|&v| v == 0.0));
            } else {
                assert!(row.iter().all(|&v| v != 0.0 && v.is_finite()));
            }
        }
    }
    // Entry 1 (length 0) has zero final states, as ONNX Runtime gives.
    let h = 32;
    for d in 0..2 {
        assert!(st.h()[(d * b + 1) * h..][..h].iter().all(|&v| v == 0.0));
        assert!(st.c()[(d * b + 1) * h..][..h].iter().all(|&v| v == 0.0));
    }
    // Entry 2's reverse pass starts at its own last step: its output at
    // t = 0 equals a run over just its two steps.
    let x2: Vec<f32> = (0..2)
        .flat_map(|s| x[(s * b + 2) * i..][..i].to_vec())
        .collect();
    let mut init2 = m.new_state(1).unwrap();
    init2.h_mut().fill(0.5);
    init2.c_mut().fill(0.5);
    let (y2, _) = m.forward(&Sequence::new(&x2, 2, 1), Some(&init2)).unwrap();
    assert_eq!(&y2[..f], &y[2 * f..3 * f]);
}

#[test]
fn empty_sequences_and_batches() {
    let m = model("pt-gru-l1-h8-i5-b2-t7", Cell::Gru);
    let mut init = m.new_state(2).unwrap();
    init.h_mut().fill(0.25);
    let (y, st) = m.forward(&Sequence::new(&[], 0, 2), Some(&init)).unwrap();
    assert!(y.is_empty());
    assert_eq!(st, init);
    let (y, _) = m.forward(&Sequence::new(&[], 4, 0), None).unwrap();
    assert!(y.is_empty());
}

/// 16-bit and int8 weight storage: the matrices are rounded once, every
/// kernel (the reference included) computes with the rounded values,
/// kernel names say the format, and the model stays close to the f32 one
/// (bf16 keeps 8 significant bits, int8 a step of max|row|/127: outputs
/// here move by less than 2e-2).
#[test]
fn weight_formats_round_once_and_name_the_kernel() {
    use fusedrnn::WeightFormat;
    let name = "pt-lstm-l2-init-h16-i16-b3-t7";
    let f32_model = model(name, Cell::Lstm);
    let (tl, b, i) = (7, 3, f32_model.config().input_size);
    let x = Rng(21).vec(tl * b * i, 1.0);
    let seq = Sequence::new(&x, tl, b);
    let (y32, _) = f32_model.forward(&seq, None).unwrap();
    for fmt in [
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Int8,
        WeightFormat::Int8Dynamic,
    ] {
        let m = f32_model.clone().with_weight_format(fmt).unwrap();
        assert_eq!(m.weight_format(), fmt);
        // The stored matrices are the rounded ones, biases untouched.
        let (w0, r0) = (&f32_model.weights()[0], &m.weights()[0]);
        if fmt.is_int8() {
            // Row by row: q * s with q in -127..=127, error <= s / 2.
            let cols = w0.w.len() / w0.wb.len();
            let mut q = vec![0i8; cols];
            for (rq, r) in r0.w.chunks(cols).zip(w0.w.chunks(cols)) {
                let s = fusedrnn::quantize_row_int8(r, &mut q);
                let max = r.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                assert!(s >= max / 127.0 && s <= max / 127.0 * (1.0 + 1e-4));
                for ((&a, &b), &qi) in rq.iter().zip(r).zip(&q) {
                    assert_eq!(a, f32::from(qi) * s);
                    assert!((a - b).abs() <= s / 2.0);
                }
            }
        } else {
            assert!(r0.w.iter().zip(&w0.w).all(|(&a, &b)| a == fmt.round(b)));
        }
        assert_eq!(r0.wb, w0.wb);
        assert!(r0.w != w0.w, "{fmt:?} rounding changed nothing");
        // Rounding again to the same format is a no-op; to another, an error.
        assert_eq!(
            m.clone().with_weight_format(fmt).unwrap().weights(),
            m.weights()
        );
        let other = if fmt == WeightFormat::F16 {
            WeightFormat::Bf16
        } else {
            WeightFormat::F16
        };
        assert!(matches!(
            m.clone().with_weight_format(other),
            Err(fusedrnn::Error::Unsupported(_))
        ));
        let reference = m
            .clone()
            .with_kernel(fusedrnn::KernelFamily::Reference)
            .unwrap();
        let (yr, _) = reference.forward(&seq, None).unwrap();
        for fam in fusedrnn::KernelFamily::available() {
            let k = m.clone().with_kernel(fam).unwrap();
            if fam != fusedrnn::KernelFamily::Reference {
                assert!(k.kernel_name().contains(fmt.name()), "{}", k.kernel_name());
                let f32_bytes = f32_model
                    .clone()
                    .with_kernel(fam)
                    .unwrap()
                    .recurrent_weight_bytes();
                if fmt.is_int8() {
                    // A quarter, plus one f32 scale (int8-dynamic: and one
                    // i32 correction) per (padded) row.
                    let b = k.recurrent_weight_bytes();
                    // (K = 16 here: 8 bytes per row of 16 weights.)
                    let most = if fmt == WeightFormat::Int8 { 3 } else { 2 };
                    assert!(
                        b * 4 > f32_bytes && b * most < f32_bytes,
                        "{b} vs {f32_bytes}"
                    );
                } else {
                    assert_eq!(k.recurrent_weight_bytes() * 2, f32_bytes);
                }
            }
            let (y, _) = k.forward(&seq, None).unwrap();
            // Int8-dynamic: 7 steps of 2 layers, see props::tolerance.
            let tol = if fmt == WeightFormat::Int8Dynamic {
                0.1
            } else {
                5e-5
            };
            for (a, r) in y.iter().zip(&yr) {
                assert!(
                    (a - r).abs() <= tol * r.abs().max(1.0),
                    "{fam:?} {fmt:?}: {a} vs {r}"
                );
            }
        }
        let drift = yr
            .iter()
            .zip(&y32)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            drift > 0.0 && drift < 2e-2,
            "{fmt:?} moved outputs by {drift}"
        );
    }
    assert_eq!(WeightFormat::from_name("bf16").unwrap(), WeightFormat::Bf16);
    assert_eq!(WeightFormat::from_name("int8").unwrap(), WeightFormat::Int8);
    assert_eq!(
        WeightFormat::from_name("int8-dynamic").unwrap(),
        WeightFormat::Int8Dynamic
    );
    assert!(WeightFormat::from_name("int4").is_err());
}

/// Shape names beyond the standard set parse to their cell, H, B and
/// steps; malformed or out-of-bounds names are typed errors.
#[test]
fn shape_names_parse() {
    use fusedrnn::shapes::{Shape, STANDARD};
    for s in STANDARD {
        assert_eq!(Shape::parse(s.name).unwrap(), *s);
    }
    let g = Shape::parse("gru-h96-b3").unwrap();
    assert_eq!(
        (g.cell, g.hidden, g.batch, g.steps, g.streaming),
        (fusedrnn::Cell::Gru, 96, 3, 100, false)
    );
    let l = Shape::parse("lstm-h300-step").unwrap();
    assert_eq!(
        (l.cell, l.hidden, l.batch, l.steps, l.streaming),
        (fusedrnn::Cell::Lstm, 300, 1, 1, true)
    );
    assert_eq!(g.model().config().input_size, 96);
    for bad in [
        "",
        "rnn-h64-b1",
        "lstm-64-b1",
        "lstm-h0-b1",
        "lstm-h64-b0",
        "lstm-h64",
        "lstm-h64-b1-x",
        "lstm-h+64-b1",
        "lstm-h64-b-1",
        "lstm-h4097-b1",
        "lstm-h64-b4097",
        "gru-h99999999999999999999-b1",
    ] {
        assert!(
            matches!(
                Shape::parse(bad),
                Err(fusedrnn::Error::InvalidAttribute { .. })
            ),
            "{bad}"
        );
    }
}
