//! A hostile caller or file, class by class: every size that could
//! overflow, every buffer that could be short, every file that could lie
//! about itself gets a typed error (or, for NaN and infinity, IEEE
//! arithmetic), never a panic, an abort or undefined behaviour, on every
//! kernel family this host runs. (The plain shape and attribute errors are
//! in `errors.rs`.)

mod common;
use common::*;

use std::collections::HashMap;

use fusedrnn::conformance::parse_case;
use fusedrnn::import::onnx::{self, OnnxAttributes};
use fusedrnn::import::pytorch::{self, PytorchOptions};
use fusedrnn::import::{keras, Tensor, TensorView};
use fusedrnn::{
    Cell, Config, DirectionWeights, Error, KernelFamily, Layout, Rnn, Sequence, Workspace,
};

fn lstm(h: usize, i: usize) -> Rnn {
    random_lstm(h, i, 11)
}

fn families(m: &Rnn) -> Vec<Rnn> {
    KernelFamily::available()
        .into_iter()
        .map(|f| m.clone().with_kernel(f).unwrap())
        .collect()
}

/// A safetensors file whose header says whatever the test wants.
fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn sequence_length_whose_products_overflow() {
    // T = 2^60 with empty buffers: T*B*I wraps to 0 in unchecked code.
    for m in families(&lstm(32, 32)) {
        let mut st = m.new_state(1).unwrap();
        let seq = Sequence::new(&[], 1 << 60, 1);
        let e = m.run(&seq, &mut st, &mut [], &mut Workspace::new());
        assert!(
            matches!(e, Err(Error::TooLarge { .. } | Error::BufferLength { .. })),
            "{}: {e:?}",
            m.kernel_name()
        );
        let seq = Sequence::new(&[], usize::MAX, usize::MAX);
        let e = m.run(&seq, &mut st, &mut [], &mut Workspace::new());
        assert!(matches!(e, Err(Error::TooLarge { .. })), "{e:?}");
    }
}

#[test]
fn batch_sizes_whose_products_overflow() {
    let m = lstm(8, 4);
    for b in [1usize << 59, 1 << 60, usize::MAX] {
        let e = m.new_state(b);
        assert!(matches!(e, Err(Error::TooLarge { .. })), "{b}: {e:?}");
    }
    // Memory that cannot be had is an error too, not an abort: 2^40
    // entries of 8 floats is 32 TiB.
    assert!(matches!(m.new_state(1 << 40), Err(Error::TooLarge { .. })));
    for m in families(&m) {
        let mut st = m.new_state(2).unwrap();
        let seq = Sequence::new(&[], 0, 1 << 60);
        let e = m.run(&seq, &mut st, &mut [], &mut Workspace::new());
        assert!(e.is_err(), "{e:?}");
    }
}

#[test]
fn config_sizes_out_of_bounds() {
    let bad = [
        (usize::MAX / 2, 4),
        (4, usize::MAX / 2),
        (fusedrnn::config::MAX_SIZE + 1, 4),
        (1 << 30, 1 << 30),
    ];
    for (h, i) in bad {
        let cfg = Config::new(Cell::Gru, i, h);
        assert!(
            matches!(cfg.validate(), Err(Error::InvalidAttribute { .. })),
            "H={h} I={i}"
        );
        let w = DirectionWeights {
            w: vec![],
            r: vec![],
            wb: vec![],
            rb: vec![],
            peepholes: None,
            proj: None,
        };
        assert!(Rnn::new(cfg, vec![w]).is_err());
    }
    let mut cfg = Config::new(Cell::Lstm, 4, 8);
    cfg.num_layers = usize::MAX;
    assert!(cfg.validate().is_err());
    cfg.num_layers = 1;
    cfg.proj_size = usize::MAX;
    assert!(cfg.validate().is_err());
}

#[test]
fn file_shapes_whose_products_overflow() {
    // PyTorch: weight_hh of shape [0, 2^62] (no data) must not read as an
    // LSTM with 4 * 2^62 rows wrapped to 0.
    let header = r#"{"rnn.weight_hh_l0":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]},"rnn.weight_ih_l0":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}}"#;
    let bytes = raw_safetensors(header, &[]);
    let file = fusedrnn::import::safetensors::TensorFile::parse(&bytes).unwrap();
    assert!(matches!(
        pytorch::detect_cell(&file, "rnn."),
        Err(Error::Shape { .. })
    ));
    for cell in [Cell::Lstm, Cell::Gru] {
        let mut opts = PytorchOptions::new(cell);
        opts.prefix = "rnn.".into();
        assert!(pytorch::from_state_dict(&file, &opts).is_err());
    }
    // ONNX: R of [1, 0, 2^62].
    let (wsh, rsh) = ([1, 0, 1usize << 62], [1, 0, 1usize << 62]);
    let w = TensorView::new(&wsh, &[]).unwrap();
    let r = TensorView::new(&rsh, &[]).unwrap();
    assert!(onnx::lstm(w, r, None, None, &OnnxAttributes::default()).is_err());
    assert!(onnx::gru(w, r, None, &OnnxAttributes::default()).is_err());
    // Keras: kernels of [2^62, 0] and [0, 2^62].
    for (ksh, rsh) in [
        ([1usize << 62, 0], [0usize, 0]),
        ([0, 1 << 62], [1, 1 << 62]),
    ] {
        let k = TensorView::new(&ksh, &[]).unwrap();
        let rdata = vec![0.0; 0];
        if rsh.iter().product::<usize>() != 0 {
            // A tensor view cannot claim 2^62 elements without the data.
            assert!(TensorView::new(&rsh, &rdata).is_err());
            continue;
        }
        let r = TensorView::new(&rsh, &rdata).unwrap();
        assert!(keras::lstm(k, r, None, Default::default()).is_err());
        assert!(keras::gru(k, r, None, true, Default::default()).is_err());
    }
    // A tensor whose shape product overflows.
    let huge = [1usize << 40, 1 << 40];
    assert!(TensorView::new(&huge, &[]).is_err());
    assert!(Tensor::new(huge.to_vec(), vec![]).is_err());
}

#[test]
fn truncated_and_lying_files() {
    let good = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/golden/pt-lstm-l1-h8-i5-b2-t7.safetensors"
    ))
    .unwrap();
    let opts = PytorchOptions::new(Cell::Lstm);
    // Every truncation of a real file.
    for n in (0..good.len()).step_by(7) {
        let m = pytorch::from_safetensors_bytes(&good[..n], &opts);
        assert!(matches!(m, Err(Error::Format(_))), "{n}: {m:?}");
        assert!(parse_case(&good[..n], "t", "t").is_err());
    }
    // Header length past the end; offsets past the end; offsets that do
    // not match the shape.
    let mut past = good.clone();
    past[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(pytorch::from_safetensors_bytes(&past, &opts).is_err());
    for header in [
        r#"{"weight_hh_l0":{"dtype":"F32","shape":[32,8],"data_offsets":[0,1024000]}}"#,
        r#"{"weight_hh_l0":{"dtype":"F32","shape":[32,8],"data_offsets":[0,4]}}"#,
        r#"{"weight_hh_l0":{"dtype":"F32","shape":[32,8],"data_offsets":[8,0]}}"#,
        r#"{"weight_hh_l0":{"dtype":"F32","shape":[32,8]}}"#,
        r#"{"weight_hh_l0":"#,
    ] {
        let bytes = raw_safetensors(header, &[0u8; 1024]);
        let m = pytorch::from_safetensors_bytes(&bytes, &opts);
        assert!(matches!(m, Err(Error::Format(_))), "{header}: {m:?}");
    }
}

#[test]
fn conformance_case_that_declares_a_huge_batch() {
    // T = 0 lets X be empty whatever B is; the case must be refused by
    // its expected tensors' shapes, before a state is sized from B.
    let header = r#"{"__metadata__":{"op":"gru","layout":"onnx","direction":"forward","hidden_size":"1","input_size":"1","seq_len":"0","batch":"100000000000","linear_before_reset":"1"},"W":{"dtype":"F32","shape":[1,3,1],"data_offsets":[0,12]},"R":{"dtype":"F32","shape":[1,3,1],"data_offsets":[12,24]},"X":{"dtype":"F32","shape":[0,100000000000,1],"data_offsets":[24,24]},"Y":{"dtype":"F32","shape":[0,1,100000000000,1],"data_offsets":[24,24]},"Y_h":{"dtype":"F32","shape":[1,1,1],"data_offsets":[24,28]}}"#;
    let bytes = raw_safetensors(header, &[0u8; 28]);
    let e = parse_case(&bytes, "huge", "huge");
    assert!(matches!(e, Err(Error::Format(_))), "{e:?}");
}

#[test]
fn conformance_case_with_a_tensor_in_the_wrong_dtype() {
    // The format says F32; an F64 `X` is a malformed case, not converted.
    let header = r#"{"__metadata__":{"op":"gru","layout":"onnx","direction":"forward","hidden_size":"1","input_size":"1","seq_len":"1","batch":"1","linear_before_reset":"1"},"W":{"dtype":"F32","shape":[1,3,1],"data_offsets":[0,12]},"R":{"dtype":"F32","shape":[1,3,1],"data_offsets":[12,24]},"X":{"dtype":"F64","shape":[1,1,1],"data_offsets":[24,32]},"Y":{"dtype":"F32","shape":[1,1,1,1],"data_offsets":[32,36]},"Y_h":{"dtype":"F32","shape":[1,1,1],"data_offsets":[36,40]}}"#;
    let bytes = raw_safetensors(header, &[0u8; 40]);
    let e = parse_case(&bytes, "f64", "f64");
    assert!(
        matches!(e, Err(Error::Format(ref m)) if m.contains("F64")),
        "{e:?}"
    );
    // The same case with an F32 `X` loads.
    let ok = header
        .replace(
            r#""dtype":"F64","shape":[1,1,1],"data_offsets":[24,32]"#,
            r#""dtype":"F32","shape":[1,1,1],"data_offsets":[24,28]"#,
        )
        .replace("[32,36]", "[28,32]")
        .replace("[36,40]", "[32,36]");
    assert!(parse_case(&raw_safetensors(&ok, &[0u8; 36]), "ok", "ok").is_ok());
}

#[test]
fn unknown_metadata_values_in_a_case() {
    let f = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/golden/onnx-lstm-fwd-h8-i5-b2-t7.safetensors"
    ))
    .unwrap();
    let file = fusedrnn::import::safetensors::TensorFile::parse(&f).unwrap();
    for (key, value) in [
        ("op", "rnn"),
        ("layout", "keras"),
        ("direction", "sideways"),
        ("batch", "-1"),
        ("seq_len", "1e3"),
        ("clip", "nan"),
        ("clip", "-1"),
        ("input_forget", "2"),
    ] {
        let mut meta = file.metadata().clone();
        meta.insert(key.to_string(), value.to_string());
        let names = file.names();
        let tensors: Vec<(String, Tensor)> = names
            .iter()
            .map(|n| (n.to_string(), file.tensor_any(n)))
            .collect();
        let bytes = write_case(&tensors, &meta, &file);
        let e = parse_case(&bytes, "m", "m");
        assert!(matches!(e, Err(Error::Format(_))), "{key}={value}: {e:?}");
    }
}

/// Writes tensors back with the dtypes the case had (lengths stay ints).
fn write_case(
    tensors: &[(String, Tensor)],
    meta: &HashMap<String, String>,
    file: &fusedrnn::import::safetensors::TensorFile,
) -> Vec<u8> {
    use safetensors::tensor::{serialize, Dtype, TensorView as StView};
    let bufs: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| match file.i64(n) {
            Ok(Some((shape, v))) => (
                n.clone(),
                shape,
                Dtype::I32,
                v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
            ),
            _ => (
                n.clone(),
                t.shape.clone(),
                Dtype::F32,
                t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let map: HashMap<String, StView<'_>> = bufs
        .iter()
        .map(|(n, s, d, b)| (n.clone(), StView::new(*d, s.clone(), b).unwrap()))
        .collect();
    serialize(&map, &Some(meta.clone())).unwrap()
}

trait AnyTensor {
    fn tensor_any(&self, n: &str) -> Tensor;
}

impl AnyTensor for fusedrnn::import::safetensors::TensorFile {
    fn tensor_any(&self, n: &str) -> Tensor {
        use fusedrnn::import::TensorSource;
        match self.tensor(n) {
            Ok(Some(t)) => t,
            _ => Tensor::new(vec![0], vec![]).unwrap(),
        }
    }
}

#[test]
fn lengths_out_of_range_and_zero_sizes() {
    for m in families(&lstm(8, 4)) {
        let mut ws = Workspace::new();
        // Zero batch and zero steps: nothing runs, nothing fails.
        let mut st = m.new_state(0).unwrap();
        m.run(&Sequence::new(&[], 5, 0), &mut st, &mut [], &mut ws)
            .unwrap();
        // A huge T with no batch entries has nothing to run (and must not
        // loop T times over nothing).
        m.run(
            &Sequence::new(&[], usize::MAX, 0),
            &mut st,
            &mut [],
            &mut ws,
        )
        .unwrap();
        let mut st = m.new_state(2).unwrap();
        st.h_mut().fill(0.25);
        let before = st.clone();
        m.run(&Sequence::new(&[], 0, 2), &mut st, &mut [], &mut ws)
            .unwrap();
        assert_eq!(st, before);
        let mut out = vec![0.0; 0];
        m.step(&[], &mut m.new_state(0).unwrap(), &mut out, &mut ws)
            .unwrap();
        // Lengths past T, and a lengths slice of the wrong size.
        let x = vec![0.0; 3 * 2 * 4];
        let mut out = vec![0.0; 3 * 2 * 8];
        for lengths in [&[4usize, 1][..], &[usize::MAX, 0], &[1], &[1, 1, 1]] {
            let seq = Sequence {
                lengths: Some(lengths),
                layout: Layout::BatchMajor,
                ..Sequence::new(&x, 3, 2)
            };
            let e = m.run(&seq, &mut st, &mut out, &mut ws);
            assert!(
                matches!(
                    e,
                    Err(Error::LengthOutOfRange { .. } | Error::BufferLength { .. })
                ),
                "{lengths:?}: {e:?}"
            );
        }
    }
}

#[test]
fn states_of_the_wrong_shape_or_another_model() {
    let (a, b) = (lstm(8, 4), lstm(6, 4));
    let mut ws = Workspace::new();
    let mut st_b = b.new_state(1).unwrap();
    let mut out = vec![0.0; 8];
    // Another model's state of another size: a typed error.
    let e = a.step(&[0.0; 4], &mut st_b, &mut out, &mut ws);
    assert!(matches!(e, Err(Error::BufferLength { .. })), "{e:?}");
    // A state of the same sizes from another model is accepted (states are
    // plain numbers; pairing them with models is the caller's part).
    let c = lstm(8, 4);
    let mut st_c = c.new_state(1).unwrap();
    a.step(&[0.0; 4], &mut st_c, &mut out, &mut ws).unwrap();
    // A state for another batch size.
    let mut st2 = a.new_state(2).unwrap();
    let x = vec![0.0; 4];
    let e = a.run(&Sequence::new(&x, 1, 1), &mut st2, &mut out, &mut ws);
    assert!(matches!(e, Err(Error::BufferLength { .. })), "{e:?}");
}

#[test]
fn nan_and_infinity_propagate_as_ieee_arithmetic() {
    let (h, i, t) = (8, 4, 3);
    let base = lstm(h, i);
    let mut w = base.weights()[0].clone();
    w.r[5] = f32::NAN; // row 5 = gate i, unit 5
    w.w[0] = f32::INFINITY; // row 0 = gate i, unit 0, input 0
    let m = Rnn::new(base.config().clone(), vec![w]).unwrap();
    let mut x = Rng(3).vec(t * i, 1.0);
    x[i + 1] = f32::NEG_INFINITY;
    let seq = Sequence::new(&x, t, 1);
    let reference = m.clone().with_kernel(KernelFamily::Reference).unwrap();
    let (want, want_st) = reference.forward(&seq, None).unwrap();
    assert!(want.iter().any(|v| v.is_nan()), "the case must reach NaN");
    for m in families(&m) {
        let (got, st) = m.forward(&seq, None).unwrap();
        for (k, (&a, &b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.is_nan(), b.is_nan(), "{} y[{k}]", m.kernel_name());
            if !a.is_nan() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{}",
                    m.kernel_name()
                );
            }
        }
        assert_eq!(
            st.h().iter().map(|v| v.is_nan()).collect::<Vec<_>>(),
            want_st.h().iter().map(|v| v.is_nan()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn infinite_cell_state_without_peepholes_is_not_nan() {
    // Without peepholes, c never reaches the gates: an infinite c must
    // stay infinite (the reference once added `0 * c`, which is NaN).
    let m = lstm(8, 4);
    let x = vec![0.5; 4];
    let mut init = m.new_state(1).unwrap();
    init.c_mut().fill(f32::INFINITY);
    for m in families(&m) {
        let (_, st) = m.forward(&Sequence::new(&x, 1, 1), Some(&init)).unwrap();
        assert!(
            st.c().iter().all(|v| v.is_infinite()),
            "{}: {:?}",
            m.kernel_name(),
            st.c()
        );
    }
}

#[test]
fn infinite_gru_update_gate_gives_nan_like_the_reference() {
    // An unbounded gate function lets z be infinite: (1 - z) n + z h is
    // then NaN, in every kernel as in the reference (and ONNX).
    use fusedrnn::{Activation, Activations, GruReset};
    for reset in [GruReset::AfterMatmul, GruReset::BeforeMatmul] {
        let (h, i) = (9, 3);
        let mut cfg = Config::new(Cell::Gru, i, h);
        cfg.gru_reset = reset;
        cfg.activations = [Activations {
            f: Activation::LeakyRelu { alpha: 0.1 },
            g: Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            h: Activation::Tanh,
        }; 2];
        let inf = f32::INFINITY;
        let w = DirectionWeights {
            w: vec![inf; 3 * h * i],
            r: vec![inf; 3 * h * h],
            wb: vec![inf; 3 * h],
            rb: vec![inf; 3 * h],
            peepholes: None,
            proj: None,
        };
        let m = Rnn::new(cfg, vec![w]).unwrap();
        let x = vec![inf; 2 * i];
        let mut init = m.new_state(1).unwrap();
        init.h_mut().fill(inf);
        let seq = Sequence::new(&x, 2, 1);
        let reference = m.clone().with_kernel(KernelFamily::Reference).unwrap();
        let (want, _) = reference.forward(&seq, Some(&init)).unwrap();
        for m in families(&m) {
            let (got, _) = m.forward(&seq, Some(&init)).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert_eq!(
                    a.is_nan(),
                    b.is_nan(),
                    "{} {reset:?}: {a} vs {b}",
                    m.kernel_name()
                );
            }
        }
    }
}
