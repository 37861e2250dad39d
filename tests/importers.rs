//! Every importer, checked against golden outputs: ONNX and PyTorch load
//! the files directly; Keras and the seed's concatenated form get a golden
//! case's weights converted into their layout (transposed, reordered,
//! biases merged) and must reproduce the same outputs. Tolerance 1e-5 as
//! in golden.rs.

mod common;
use common::*;

use fusedrnn::import::concat::{self, ConcatGate};
use fusedrnn::import::keras::{self, KerasActivations};
use fusedrnn::import::pytorch::{self, PytorchOptions};
use fusedrnn::import::{Tensor, TensorView};
use fusedrnn::{Cell, Sequence};

const TOL: f32 = 1e-5;

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut o = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            o[c * rows + r] = m[r * cols + c];
        }
    }
    o
}

fn blocks(v: &[f32], block: usize, order: &[usize]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&k| v[k * block..(k + 1) * block].to_vec())
        .collect()
}

fn view<'a>(shape: &'a [usize], data: &'a [f32]) -> TensorView<'a> {
    TensorView::new(shape, data).unwrap()
}

fn check_output(
    model: &fusedrnn::Rnn,
    f: &fusedrnn::import::safetensors::TensorFile,
    x: &str,
    init: Option<&str>,
    want: &str,
) {
    let x = t(f, x);
    let (tl, b) = (x.shape[0], x.shape[1]);
    let mut st = model.new_state(b).unwrap();
    if let Some(init) = init {
        st.h_mut().copy_from_slice(&t(f, init).data);
    }
    let (y, _) = model
        .forward(&Sequence::new(&x.data, tl, b), Some(&st))
        .unwrap();
    let err = max_abs_diff(&y, &t(f, want).data);
    assert!(err <= TOL, "max error {err}");
}

#[test]
fn pytorch_state_dict_with_prefix_loads() {
    let f = golden("pt-lstm-l2-init-h16-i16-b3-t7");
    let mut dict = std::collections::HashMap::new();
    for name in f.names() {
        if name.starts_with("weight") || name.starts_with("bias") {
            dict.insert(format!("rnn.{name}"), t(&f, name));
        }
    }
    dict.insert(
        "fc.weight".to_string(),
        Tensor::new(vec![2, 2], vec![0.0; 4]).unwrap(),
    );
    let opts = PytorchOptions {
        cell: Cell::Lstm,
        prefix: "rnn.".into(),
    };
    let model = pytorch::from_state_dict(&dict, &opts).unwrap();
    assert_eq!(model.config().num_layers, 2);
    assert_eq!(model.config().hidden_size, 16);
    let x = t(&f, "x");
    let mut st = model.new_state(3).unwrap();
    st.h_mut().copy_from_slice(&t(&f, "h0").data);
    st.c_mut().copy_from_slice(&t(&f, "c0").data);
    let (y, st) = model
        .forward(&Sequence::new(&x.data, 7, 3), Some(&st))
        .unwrap();
    assert!(max_abs_diff(&y, &t(&f, "output").data) <= TOL);
    assert!(max_abs_diff(st.h(), &t(&f, "h_n").data) <= TOL);
    assert!(max_abs_diff(st.c(), &t(&f, "c_n").data) <= TOL);
}

#[test]
fn pytorch_safetensors_file_loads_in_one_call() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden/pt-gru-l2-bidir-init-h16-i16-b3-t7.safetensors");
    let model = pytorch::load_safetensors(&p, &PytorchOptions::new(Cell::Gru)).unwrap();
    assert_eq!(model.config().num_layers, 2);
    assert_eq!(model.config().direction, fusedrnn::Direction::Bidirectional);
    let f = golden("pt-gru-l2-bidir-init-h16-i16-b3-t7");
    check_output(&model, &f, "x", Some("h0"), "output");
}

/// The cell type read off the shapes of every PyTorch golden file (the
/// name says which), projections included; typed errors otherwise.
#[test]
fn pytorch_detect_cell_from_shapes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let mut seen = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".safetensors") else {
            continue;
        };
        let want = if stem.starts_with("pt-lstm") {
            Cell::Lstm
        } else if stem.starts_with("pt-gru") {
            Cell::Gru
        } else {
            continue;
        };
        assert_eq!(
            pytorch::detect_cell(&golden(stem), "").unwrap(),
            want,
            "{stem}"
        );
        seen += 1;
    }
    assert!(seen >= 10);

    let mut sd = std::collections::HashMap::new();
    assert!(matches!(
        pytorch::detect_cell(&sd, ""),
        Err(fusedrnn::Error::MissingTensor(_))
    ));
    sd.insert(
        "weight_hh_l0".to_string(),
        Tensor::new(vec![10, 4], vec![0.0; 40]).unwrap(),
    );
    assert!(matches!(
        pytorch::detect_cell(&sd, ""),
        Err(fusedrnn::Error::Shape { .. })
    ));
    sd.insert(
        "weight_hh_l0".to_string(),
        Tensor::new(vec![0, 0], vec![]).unwrap(),
    );
    assert!(matches!(
        pytorch::detect_cell(&sd, ""),
        Err(fusedrnn::Error::Shape { .. })
    ));
}

#[test]
fn keras_lstm_from_converted_pytorch_weights() {
    // PyTorch i,f,g,o = Keras i,f,c,o; Keras is [in, out] with one bias.
    let f = golden("pt-lstm-l1-h8-i5-b2-t7");
    let (h, i) = (8, 5);
    let kernel = transpose(&t(&f, "weight_ih_l0").data, 4 * h, i);
    let rec = transpose(&t(&f, "weight_hh_l0").data, 4 * h, h);
    let bias: Vec<f32> = t(&f, "bias_ih_l0")
        .data
        .iter()
        .zip(&t(&f, "bias_hh_l0").data)
        .map(|(a, b)| a + b)
        .collect();
    let model = keras::lstm(
        view(&[i, 4 * h], &kernel),
        view(&[h, 4 * h], &rec),
        Some(view(&[4 * h], &bias)),
        KerasActivations::default(),
    )
    .unwrap();
    check_output(&model, &f, "x", None, "output");
}

#[test]
fn keras_gru_reset_after_from_converted_pytorch_weights() {
    // PyTorch r,z,n -> Keras z,r,h; bias [2, 3H] = [input, recurrent].
    let f = golden("pt-gru-l1-h8-i5-b2-t7");
    let (h, i) = (8, 5);
    let order = [1, 0, 2];
    let kernel = transpose(
        &blocks(&t(&f, "weight_ih_l0").data, h * i, &order),
        3 * h,
        i,
    );
    let rec = transpose(
        &blocks(&t(&f, "weight_hh_l0").data, h * h, &order),
        3 * h,
        h,
    );
    let mut bias = blocks(&t(&f, "bias_ih_l0").data, h, &order);
    bias.extend(blocks(&t(&f, "bias_hh_l0").data, h, &order));
    let model = keras::gru(
        view(&[i, 3 * h], &kernel),
        view(&[h, 3 * h], &rec),
        Some(view(&[2, 3 * h], &bias)),
        true,
        KerasActivations::default(),
    )
    .unwrap();
    check_output(&model, &f, "x", None, "output");
}

fn onnx_gru_lbr0() -> (fusedrnn::import::safetensors::TensorFile, usize, usize) {
    (golden("onnx-gru-fwd-lbr0-h8-i5-b2-t7"), 8, 5)
}

/// ONNX's Y is [T, D, B, H]; with D = 1 it is [T, B, H] like ours.
#[test]
fn keras_gru_reset_before_from_converted_onnx_weights() {
    // ONNX z,r,h = Keras z,r,h; with reset_after=False Keras has one bias,
    // and ONNX lbr=0 adds Rb_h unscaled, so the biases simply add.
    let (f, h, i) = onnx_gru_lbr0();
    let kernel = transpose(&t(&f, "W").data, 3 * h, i);
    let rec = transpose(&t(&f, "R").data, 3 * h, h);
    let b = t(&f, "B").data;
    let bias: Vec<f32> = (0..3 * h).map(|j| b[j] + b[3 * h + j]).collect();
    let model = keras::gru(
        view(&[i, 3 * h], &kernel),
        view(&[h, 3 * h], &rec),
        Some(view(&[3 * h], &bias)),
        false,
        KerasActivations::default(),
    )
    .unwrap();
    check_output(&model, &f, "X", None, "Y");
}

/// The seed's per-gate matrix `[(H+I), H]` over `[h, x]`.
fn concat_gate(w: &[f32], r: &[f32], gate: usize, h: usize, i: usize, sign: f32) -> Vec<f32> {
    let mut m = vec![0.0; (h + i) * h];
    for j in 0..h {
        for k in 0..h {
            m[k * h + j] = sign * r[(gate * h + j) * h + k];
        }
        for k in 0..i {
            m[(h + k) * h + j] = sign * w[(gate * h + j) * i + k];
        }
    }
    m
}

#[test]
fn concat_lstm_from_converted_pytorch_weights() {
    let f = golden("pt-lstm-l1-h8-i5-b2-t7");
    let (h, i) = (8, 5);
    let (w, r) = (t(&f, "weight_ih_l0").data, t(&f, "weight_hh_l0").data);
    let b: Vec<f32> = t(&f, "bias_ih_l0")
        .data
        .iter()
        .zip(&t(&f, "bias_hh_l0").data)
        .map(|(a, b)| a + b)
        .collect();
    // PyTorch blocks i=0, f=1, g=2, o=3; the seed order is f, i, c, o.
    let mats: Vec<Vec<f32>> = [1, 0, 2, 3]
        .iter()
        .map(|&g| concat_gate(&w, &r, g, h, i, 1.0))
        .collect();
    let gate = |k: usize, g: usize| ConcatGate {
        weight: &mats[k],
        bias: &b[g * h..(g + 1) * h],
    };
    let model = concat::lstm([gate(0, 1), gate(1, 0), gate(2, 2), gate(3, 3)], h, i).unwrap();
    check_output(&model, &f, "x", None, "output");
}

#[test]
fn concat_gru_from_converted_onnx_weights() {
    // The seed's update gate is 1 - z: its weights and bias are ONNX's negated.
    let (f, h, i) = onnx_gru_lbr0();
    let (w, r, bb) = (t(&f, "W").data, t(&f, "R").data, t(&f, "B").data);
    let bias = |g: usize, s: f32| -> Vec<f32> {
        (0..h)
            .map(|j| s * (bb[g * h + j] + bb[3 * h + g * h + j]))
            .collect()
    };
    let (mz, mr, mh) = (
        concat_gate(&w, &r, 0, h, i, -1.0),
        concat_gate(&w, &r, 1, h, i, 1.0),
        concat_gate(&w, &r, 2, h, i, 1.0),
    );
    let (bz, br, bh) = (bias(0, -1.0), bias(1, 1.0), bias(2, 1.0));
    let model = concat::gru(
        [
            ConcatGate {
                weight: &mr,
                bias: &br,
            },
            ConcatGate {
                weight: &mz,
                bias: &bz,
            },
            ConcatGate {
                weight: &mh,
                bias: &bh,
            },
        ],
        h,
        i,
    )
    .unwrap();
    check_output(&model, &f, "X", None, "Y");
}

/// ONNX activations whose `activation_alpha`/`activation_beta` are absent
/// or run out take ONNX Runtime's defaults (probed function by function
/// against ONNX Runtime 1.32): LeakyRelu 0.01, HardSigmoid 0.2 and 0.5,
/// Elu 1; every other parameter 0, so `Affine` and `ScaledTanh` give 0 and
/// `ThresholdedRelu` cuts at 0. The lists are consumed in the order of the
/// functions, each taking only what it uses. (The generated golden cases
/// check the same end to end: tests/data/generated.)
#[test]
fn onnx_activation_parameters_default_as_onnx_runtime() {
    use fusedrnn::Activation as A;
    let parse = |name: &str, alphas: &[f32], betas: &[f32]| {
        A::from_onnx(
            name,
            &mut alphas.iter().copied(),
            &mut betas.iter().copied(),
        )
        .unwrap()
    };
    let none: &[f32] = &[];
    assert_eq!(
        parse("Affine", none, none),
        A::Affine {
            alpha: 0.0,
            beta: 0.0
        }
    );
    assert_eq!(
        parse("Affine", &[0.5], none),
        A::Affine {
            alpha: 0.5,
            beta: 0.0
        }
    );
    assert_eq!(
        parse("ScaledTanh", none, none),
        A::ScaledTanh {
            alpha: 0.0,
            beta: 0.0
        }
    );
    assert_eq!(
        parse("thresholdedrelu", none, none),
        A::ThresholdedRelu { alpha: 0.0 }
    );
    assert_eq!(parse("LeakyRelu", none, none), A::LeakyRelu { alpha: 0.01 });
    assert_eq!(
        parse("HardSigmoid", none, none),
        A::HardSigmoid {
            alpha: 0.2,
            beta: 0.5
        }
    );
    assert_eq!(
        parse("HardSigmoid", &[0.3], none),
        A::HardSigmoid {
            alpha: 0.3,
            beta: 0.5
        }
    );
    assert_eq!(parse("Elu", none, none), A::Elu { alpha: 1.0 });
    assert_eq!(parse("Elu", &[1.5], &[2.0]), A::Elu { alpha: 1.5 });
}

/// A Keras 3 activation name as a function (`hard_sigmoid` is
/// relu6(x + 3) / 6 in Keras 3: slope 1/6, not Keras 2's 0.2).
fn keras_activation(name: &str) -> fusedrnn::Activation {
    use fusedrnn::Activation as A;
    match name {
        "tanh" => A::Tanh,
        "sigmoid" => A::Sigmoid,
        "relu" => A::Relu,
        "softsign" => A::Softsign,
        "hard_sigmoid" => A::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        other => panic!("no mapping for Keras activation {other}"),
    }
}

/// Real Keras layers (tests/data/make_keras.py: Keras 3.15 on its torch
/// backend, both GRU variants, with and without bias, four activation
/// pairs) through `import::keras` on every family this host runs, batch-
/// major as Keras lays them out: Keras's own outputs within 1e-5 (the
/// other tests here convert PyTorch and ONNX weights into Keras's layout
/// by our reading of it; these hold the importer to Keras itself).
#[test]
fn keras_layers_match_keras_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keras");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 24);
    let mut failures = Vec::new();
    for path in files {
        let f = fusedrnn::import::safetensors::TensorFile::open(&path).unwrap();
        let meta = f.metadata();
        let acts = KerasActivations {
            activation: keras_activation(&meta["activation"]),
            recurrent_activation: keras_activation(&meta["recurrent_activation"]),
        };
        let (kernel, rec, x, want) = (
            t(&f, "kernel"),
            t(&f, "recurrent_kernel"),
            t(&f, "x"),
            t(&f, "y"),
        );
        let bias = f.contains("bias").then(|| t(&f, "bias"));
        let bias = bias.as_ref().map(|b| view(&b.shape, &b.data));
        let (kv, rv) = (
            view(&kernel.shape, &kernel.data),
            view(&rec.shape, &rec.data),
        );
        let model = match meta["cell"].as_str() {
            "lstm" => keras::lstm(kv, rv, bias, acts),
            _ => keras::gru(kv, rv, bias, meta["reset_after"] == "1", acts),
        }
        .unwrap();
        let (b, tl) = (x.shape[0], x.shape[1]);
        let seq = Sequence {
            layout: fusedrnn::Layout::BatchMajor,
            ..Sequence::new(&x.data, tl, b)
        };
        // Every family this host runs, the reference among them.
        for family in fusedrnn::KernelFamily::available() {
            let m = model.clone().with_kernel(family).unwrap();
            let (y, _) = m.forward(&seq, None).unwrap();
            let err = max_abs_diff(&y, &want.data);
            if err.is_nan() || err > TOL {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                failures.push(format!("{name} {family:?}: max error {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}
