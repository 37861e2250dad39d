//! Every kind of bad input gets its typed error, never a panic.

mod common;
use common::*;

use std::collections::HashMap;

use fusedrnn::import::onnx::{self, OnnxAttributes};
use fusedrnn::import::pytorch::{self, PytorchOptions};
use fusedrnn::import::{Tensor, TensorView};
use fusedrnn::{
    Cell, Config, Direction, DirectionWeights, Error, KernelFamily, Layout, Rnn, Sequence,
    Workspace,
};

fn small_lstm(h: usize, i: usize) -> Rnn {
    random_lstm(h, i, 7)
}

fn pt_dict() -> HashMap<String, Tensor> {
    let f = golden("pt-lstm-l1-h8-i5-b2-t7");
    f.names()
        .iter()
        .filter(|n| n.contains("_l0"))
        .map(|n| (n.to_string(), t(&f, n)))
        .collect()
}

#[test]
fn wrong_tensor_shape() {
    let (w, r) = (vec![0.0; 4 * 8 * 5], vec![0.0; 4 * 8 * 8]);
    let attrs = OnnxAttributes::default();
    // W with 3 gate blocks instead of 4.
    let err = onnx::lstm(
        TensorView::new(&[1, 24, 5], &w[..120]).unwrap(),
        TensorView::new(&[1, 32, 8], &r).unwrap(),
        None,
        None,
        &attrs,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
    // Bias of the wrong length.
    let b = vec![0.0; 7];
    let err = onnx::lstm(
        TensorView::new(&[1, 32, 5], &w).unwrap(),
        TensorView::new(&[1, 32, 8], &r).unwrap(),
        Some(TensorView::new(&[1, 7], &b).unwrap()),
        None,
        &attrs,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
    // A PyTorch weight of the wrong shape.
    let mut d = pt_dict();
    d.insert(
        "weight_ih_l0".into(),
        Tensor::new(vec![31, 5], vec![0.0; 155]).unwrap(),
    );
    let m = pytorch::from_state_dict(&d, &PytorchOptions::new(Cell::Lstm));
    assert!(matches!(m, Err(Error::Shape { .. })), "{m:?}");
    // Data that do not fill the declared shape.
    assert!(matches!(
        TensorView::new(&[2, 3], &w[..5]),
        Err(Error::BufferLength { .. })
    ));
}

#[test]
fn missing_tensor() {
    let mut d = pt_dict();
    d.remove("weight_hh_l0");
    let m = pytorch::from_state_dict(&d, &PytorchOptions::new(Cell::Lstm));
    assert_eq!(m.unwrap_err(), Error::MissingTensor("weight_hh_l0".into()));
    let mut d = pt_dict();
    d.remove("bias_hh_l0");
    let m = pytorch::from_state_dict(&d, &PytorchOptions::new(Cell::Lstm));
    assert_eq!(m.unwrap_err(), Error::MissingTensor("bias_hh_l0".into()));
}

#[test]
fn wrong_dtype_in_safetensors_file() {
    use safetensors::tensor::{serialize, Dtype, TensorView as StView};
    let ints = vec![0u8; 32 * 8 * 4];
    let floats = vec![0u8; 32 * 5 * 4];
    let mut map = HashMap::new();
    map.insert(
        "weight_hh_l0".to_string(),
        StView::new(Dtype::I32, vec![32, 8], &ints).unwrap(),
    );
    map.insert(
        "weight_ih_l0".to_string(),
        StView::new(Dtype::F32, vec![32, 5], &floats).unwrap(),
    );
    let bytes = serialize(&map, &None).unwrap();
    let m = pytorch::from_safetensors_bytes(&bytes, &PytorchOptions::new(Cell::Lstm));
    assert!(
        matches!(m, Err(Error::Dtype { ref name, .. }) if name == "weight_hh_l0"),
        "{m:?}"
    );
    let u8s = vec![0u8; 32 * 8];
    let mut map = HashMap::new();
    map.insert(
        "weight_hh_l0".to_string(),
        StView::new(Dtype::U8, vec![32, 8], &u8s).unwrap(),
    );
    let bytes = serialize(&map, &None).unwrap();
    let m = pytorch::from_safetensors_bytes(&bytes, &PytorchOptions::new(Cell::Lstm));
    assert!(matches!(m, Err(Error::Dtype { .. })), "{m:?}");
}

#[test]
fn malformed_file_is_a_format_error() {
    for bytes in [
        &b""[..],
        b"garbage",
        &[8, 0, 0, 0, 0, 0, 0, 0, b'{', b'}'][..],
    ] {
        let m = pytorch::from_safetensors_bytes(bytes, &PytorchOptions::new(Cell::Lstm));
        assert!(matches!(m, Err(Error::Format(_))), "{m:?}");
    }
    let m = pytorch::load_safetensors(
        "/nonexistent/file.safetensors",
        &PytorchOptions::new(Cell::Gru),
    );
    assert!(matches!(m, Err(Error::Format(_))), "{m:?}");
}

#[test]
fn length_greater_than_t() {
    let m = small_lstm(4, 3);
    let x = vec![0.0; 5 * 2 * 3];
    let lengths = [5, 6];
    let seq = Sequence {
        lengths: Some(&lengths),
        ..Sequence::new(&x, 5, 2)
    };
    let err = m.forward(&seq, None).unwrap_err();
    assert_eq!(
        err,
        Error::LengthOutOfRange {
            index: 1,
            length: 6,
            seq_len: 5
        }
    );
    let short = [5];
    let seq = Sequence {
        lengths: Some(&short),
        ..Sequence::new(&x, 5, 2)
    };
    assert!(matches!(
        m.forward(&seq, None),
        Err(Error::BufferLength { .. })
    ));
}

#[test]
fn hidden_size_zero() {
    let cfg = Config::new(Cell::Gru, 3, 0);
    let w = DirectionWeights {
        w: vec![],
        r: vec![],
        wb: vec![],
        rb: vec![],
        peepholes: None,
        proj: None,
    };
    assert!(
        matches!(Rnn::new(cfg, vec![w]), Err(Error::InvalidAttribute { ref name, .. }) if name == "hidden_size")
    );
    let (w, r) = (vec![0.0; 0], vec![0.0; 0]);
    let e = onnx::gru(
        TensorView::new(&[1, 0, 3], &w).unwrap(),
        TensorView::new(&[1, 0, 0], &r).unwrap(),
        None,
        &OnnxAttributes::default(),
    );
    assert!(e.is_err());
}

#[test]
fn buffers_of_the_wrong_length() {
    let m = small_lstm(4, 3);
    let x = vec![0.0; 5 * 2 * 3];
    let mut st = m.new_state(2).unwrap();
    let mut ws = Workspace::new();
    let seq = Sequence::new(&x[1..], 5, 2);
    let mut out = vec![0.0; 5 * 2 * 4];
    assert!(
        matches!(m.run(&seq, &mut st, &mut out, &mut ws), Err(Error::BufferLength { ref what, .. }) if what == "input")
    );
    let seq = Sequence::new(&x, 5, 2);
    let mut short = vec![0.0; 5 * 2 * 4 - 1];
    assert!(
        matches!(m.run(&seq, &mut st, &mut short, &mut ws), Err(Error::BufferLength { ref what, .. }) if what == "output")
    );
    let mut st1 = m.new_state(1).unwrap();
    assert!(matches!(
        m.run(&seq, &mut st1, &mut out, &mut ws),
        Err(Error::BufferLength { .. })
    ));
    // A state made for another model.
    let mut other = small_lstm(5, 3).new_state(2).unwrap();
    assert!(matches!(
        m.run(&seq, &mut other, &mut out, &mut ws),
        Err(Error::BufferLength { .. })
    ));
    // Streaming step.
    let mut o = vec![0.0; 2 * 4];
    assert!(matches!(
        m.step(&x[..5], &mut st, &mut o, &mut ws),
        Err(Error::BufferLength { .. })
    ));
    assert!(matches!(
        m.step(&x[..6], &mut st, &mut o[..7], &mut ws),
        Err(Error::BufferLength { .. })
    ));
    let bm = Sequence {
        layout: Layout::BatchMajor,
        ..Sequence::new(&x[..29], 5, 2)
    };
    assert!(m.forward(&bm, None).is_err());
}

#[test]
fn bad_attribute_values() {
    let f = golden("onnx-lstm-fwd-h8-i5-b2-t7");
    let (w, r) = (t(&f, "W"), t(&f, "R"));
    let try_attrs = |attrs: OnnxAttributes| onnx::lstm(w.view(), r.view(), None, None, &attrs);
    let bad = |name: &str, e: fusedrnn::Result<Rnn>| match e {
        Err(Error::InvalidAttribute { name: n, .. }) if n.contains(name) => {}
        other => panic!("{name}: {other:?}"),
    };
    bad(
        "clip",
        try_attrs(OnnxAttributes {
            clip: Some(-1.0),
            ..Default::default()
        }),
    );
    bad(
        "clip",
        try_attrs(OnnxAttributes {
            clip: Some(f32::NAN),
            ..Default::default()
        }),
    );
    bad(
        "activations",
        try_attrs(OnnxAttributes {
            activations: vec!["Sigmoid".into(), "Tanh".into(), "Nope".into()],
            ..Default::default()
        }),
    );
    bad(
        "activations",
        try_attrs(OnnxAttributes {
            activations: vec!["Sigmoid".into()],
            ..Default::default()
        }),
    );
    bad(
        "activation_alpha",
        try_attrs(OnnxAttributes {
            activations: vec!["Sigmoid".into(), "Tanh".into(), "Tanh".into()],
            activation_alpha: vec![1.0],
            ..Default::default()
        }),
    );
    bad(
        "hidden_size",
        try_attrs(OnnxAttributes {
            hidden_size: Some(9),
            ..Default::default()
        }),
    );
    bad(
        "linear_before_reset",
        try_attrs(OnnxAttributes {
            linear_before_reset: true,
            ..Default::default()
        }),
    );
    assert!(OnnxAttributes::parse_direction("sideways").is_err());
    // Direction says 2 directions, the tensors hold one.
    let e = try_attrs(OnnxAttributes {
        direction: Direction::Bidirectional,
        ..Default::default()
    });
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
    // proj_size must be below hidden_size; GRU has no input_forget.
    let mut cfg = Config::new(Cell::Lstm, 3, 4);
    cfg.proj_size = 4;
    assert!(matches!(
        cfg.validate(),
        Err(Error::InvalidAttribute { .. })
    ));
    let mut cfg = Config::new(Cell::Gru, 3, 4);
    cfg.input_forget = true;
    assert!(matches!(
        cfg.validate(),
        Err(Error::InvalidAttribute { .. })
    ));
    let mut cfg = Config::new(Cell::Gru, 3, 4);
    cfg.num_layers = 0;
    assert!(matches!(
        cfg.validate(),
        Err(Error::InvalidAttribute { .. })
    ));
}

#[test]
fn unsupported_operations_and_kernels() {
    let f = golden("onnx-lstm-bidir-init-seqlens-h8-i5-b3-t7");
    let attrs = OnnxAttributes {
        direction: Direction::Bidirectional,
        ..Default::default()
    };
    let m = onnx::lstm(t(&f, "W").view(), t(&f, "R").view(), None, None, &attrs).unwrap();
    let mut st = m.new_state(1).unwrap();
    let mut out = vec![0.0; 8];
    let e = m.step(&[0.0; 5], &mut st, &mut out, &mut Workspace::new());
    assert!(matches!(e, Err(Error::Unsupported(_))), "{e:?}");
    assert!(matches!(
        KernelFamily::from_name("gpu"),
        Err(Error::UnknownName { .. })
    ));
    // One variant for every unknown name.
    assert!(matches!(
        fusedrnn::WeightFormat::from_name("f8"),
        Err(Error::UnknownName { .. })
    ));
}

#[test]
fn a_forced_family_never_falls_back() {
    assert_eq!(KernelFamily::resolve(None).unwrap(), KernelFamily::detect());
    assert_eq!(
        KernelFamily::resolve(Some(" ")).unwrap(),
        KernelFamily::detect()
    );
    for &f in KernelFamily::ALL {
        match KernelFamily::resolve(Some(f.name())) {
            Ok(got) => assert!(got == f && f.is_available()),
            Err(e) => {
                assert!(matches!(e, Error::KernelUnavailable(_)) && !f.is_available())
            }
        }
    }
    assert!(matches!(
        KernelFamily::resolve(Some("avx1024")),
        Err(Error::UnknownName { .. })
    ));
}
