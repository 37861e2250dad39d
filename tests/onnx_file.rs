//! `.onnx` files (`import::onnx::{load, from_bytes, parse}`): every
//! ONNX-layout golden case's `.onnx` file (tests/data/make_onnx.py) loads
//! to the same model as the case's tensors and passes its case; hostile
//! protobufs (truncated, wrong wire types, huge lengths, deep nesting,
//! missing initializers, mismatched shapes and attributes, external data)
//! give typed errors.

use std::path::PathBuf;

use fusedrnn::conformance::{load_case, load_case_onnx, run_case};
use fusedrnn::import::onnx;
use fusedrnn::{Error, KernelFamily};

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn onnx_files() -> Vec<PathBuf> {
    onnx_files_in(golden())
}

fn onnx_files_in(dir: PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_onnx_golden_file_loads_the_cases_model_and_passes() {
    let files = onnx_files();
    // One per ONNX-layout case (onnx helper API) and per PyTorch-layout
    // case without projection (torch.onnx.export: one node per layer).
    assert_eq!(files.len(), 35);
    for f in &files {
        check_onnx_file(f);
    }
}

/// The `.onnx` file of every generated case (tests/data/make_golden.py):
/// for the ONNX-layout cases the very model ONNX Runtime ran (random
/// attributes and activations included), for the PyTorch-layout ones
/// without projection PyTorch's export (up to 2 layers, bidirectional,
/// without bias).
#[test]
fn every_generated_onnx_file_loads_the_cases_model_and_passes() {
    let files =
        onnx_files_in(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/generated"));
    assert_eq!(files.len(), 89);
    for f in &files {
        check_onnx_file(f);
    }
}

/// `f` loads to the model of the case beside it (same configuration and
/// canonical weights, by file and by bytes) and passes the case on every
/// family this host runs.
fn check_onnx_file(f: &std::path::Path) {
    let (model, nodes) = onnx::load(f).unwrap();
    let node = &nodes[0];
    let case = load_case(&f.with_extension("safetensors")).unwrap();
    // The same canonical weights and configuration as the case's tensors.
    assert_eq!(model.config(), case.model.config(), "{}", f.display());
    assert_eq!(model.weights(), case.model.weights(), "{}", f.display());
    assert!(node.op_type == "LSTM" || node.op_type == "GRU");
    assert_eq!(nodes.len(), model.config().num_layers, "{}", f.display());
    let stem = f.file_stem().unwrap().to_string_lossy();
    if stem.starts_with("onnx-") || stem.contains("-onnx-") {
        assert_eq!(node.io.x.as_deref(), Some("X"));
        assert_eq!(node.io.y.as_deref(), Some("Y"));
    } else {
        assert_eq!(
            node.io.x.as_deref(),
            Some("x"),
            "PyTorch's export names its input"
        );
    }
    let bytes = std::fs::read(f).unwrap();
    assert_eq!(
        onnx::from_bytes(&bytes).unwrap().0.weights(),
        model.weights()
    );
    let case = load_case_onnx(f).unwrap();
    for family in KernelFamily::available() {
        let res = run_case(&case, family).unwrap();
        assert!(
            res.passes(1e-5),
            "{} {family:?}: {}",
            f.display(),
            res.max_error()
        );
    }
}

// ---- a minimal protobuf writer for hostile files

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_bytes(tag: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(tag << 3 | 2), out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn field_varint(tag: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(tag << 3), out);
    varint(v, out);
}

fn field_f32(tag: u32, v: f32, out: &mut Vec<u8>) {
    varint(u64::from(tag << 3 | 5), out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A FLOAT tensor with raw data.
fn tensor(name: &str, dims: &[i64], values: &[f32]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        field_varint(1, d as u64, &mut t);
    }
    field_varint(2, 1, &mut t);
    field_bytes(8, name.as_bytes(), &mut t);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    field_bytes(9, &raw, &mut t);
    t
}

fn attr_int(name: &str, v: i64) -> Vec<u8> {
    let mut a = Vec::new();
    field_bytes(1, name.as_bytes(), &mut a);
    field_varint(3, v as u64, &mut a);
    field_varint(20, 2, &mut a);
    a
}

fn attr_str(name: &str, v: &str) -> Vec<u8> {
    let mut a = Vec::new();
    field_bytes(1, name.as_bytes(), &mut a);
    field_bytes(4, v.as_bytes(), &mut a);
    field_varint(20, 3, &mut a);
    a
}

/// A model with one GRU node (H = 2, I = 3) and the given extra node
/// attributes and initializers (W, R by default).
fn gru_model(attrs: &[Vec<u8>], inits: Option<Vec<Vec<u8>>>) -> Vec<u8> {
    gru_model_n(1, attrs, inits)
}

/// [`gru_model`] with `n` GRU nodes, all reading `X` (not a stack).
fn gru_model_n(n: usize, attrs: &[Vec<u8>], inits: Option<Vec<Vec<u8>>>) -> Vec<u8> {
    let (h, i) = (2i64, 3i64);
    let w: Vec<f32> = (0..3 * h * i).map(|k| k as f32 * 0.01).collect();
    let r: Vec<f32> = (0..3 * h * h).map(|k| k as f32 * -0.02).collect();
    let inits = inits.unwrap_or_else(|| {
        vec![
            tensor("W", &[1, 3 * h, i], &w),
            tensor("R", &[1, 3 * h, h], &r),
        ]
    });
    let mut node = Vec::new();
    for s in ["X", "W", "R"] {
        field_bytes(1, s.as_bytes(), &mut node);
    }
    field_bytes(2, b"Y", &mut node);
    field_bytes(3, b"gru", &mut node);
    field_bytes(4, b"GRU", &mut node);
    field_bytes(5, &attr_int("hidden_size", h), &mut node);
    for a in attrs {
        field_bytes(5, a, &mut node);
    }
    let mut graph = Vec::new();
    for _ in 0..n {
        field_bytes(1, &node, &mut graph);
    }
    for t in &inits {
        field_bytes(5, t, &mut graph);
    }
    let mut model = Vec::new();
    field_varint(1, 8, &mut model);
    field_bytes(7, &graph, &mut model);
    model
}

#[test]
fn a_hand_written_model_loads() {
    let (m, node) =
        onnx::from_bytes(&gru_model(&[attr_int("linear_before_reset", 1)], None)).unwrap();
    assert_eq!((m.config().hidden_size, m.config().input_size), (2, 3));
    assert_eq!(node[0].name, "gru");
    assert!(node[0].attributes.linear_before_reset);
}

#[test]
fn hostile_protobufs_are_typed_errors() {
    let good = gru_model(&[], None);
    // Truncated at every length: an error (or, for a prefix that is itself
    // a complete message, a model or a typed error), never a panic.
    for n in 0..good.len() {
        match onnx::from_bytes(&good[..n]) {
            Ok(_) => {}
            Err(
                Error::Format(_)
                | Error::MissingTensor(_)
                | Error::InvalidAttribute { .. }
                | Error::Shape { .. },
            ) => {}
            Err(e) => panic!("prefix of {n} bytes: {e:?}"),
        }
    }
    assert!(matches!(
        onnx::from_bytes(&good[..good.len() - 3]),
        Err(Error::Format(_))
    ));
    // A wrong wire type for the graph (varint where a message belongs).
    let mut bad = Vec::new();
    field_varint(7, 5, &mut bad);
    assert!(matches!(onnx::from_bytes(&bad), Err(Error::Format(_))));
    // A declared length far past the end.
    let mut huge = Vec::new();
    varint(7 << 3 | 2, &mut huge);
    varint(1 << 62, &mut huge);
    huge.extend_from_slice(&[0; 16]);
    assert!(matches!(onnx::from_bytes(&huge), Err(Error::Format(_))));
    // Deep nesting: 100000 start-group tags in an unknown field.
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        varint(99 << 3 | 3, &mut deep);
    }
    assert!(matches!(onnx::from_bytes(&deep), Err(Error::Format(_))));
    // Deeply nested graphs inside attributes (tag 6 = `g`, not declared:
    // skipped as bytes, never recursed into).
    let mut nested = Vec::new();
    for _ in 0..2000 {
        let mut outer = Vec::new();
        field_bytes(6, &nested, &mut outer);
        nested = outer;
    }
    let mut at = attr_int("clip", 0);
    at.extend_from_slice(&nested);
    assert!(onnx::from_bytes(&gru_model(&[at], None)).is_err());
    // No graph; no RNN node.
    let mut no_graph = Vec::new();
    field_varint(1, 8, &mut no_graph);
    assert!(matches!(onnx::from_bytes(&no_graph), Err(Error::Format(_))));
    assert!(matches!(onnx::from_bytes(&[]), Err(Error::Format(_))));
}

#[test]
fn missing_and_mismatched_tensors_and_attributes_are_typed_errors() {
    let (h, i) = (2i64, 3i64);
    let w: Vec<f32> = vec![0.1; (3 * h * i) as usize];
    let r: Vec<f32> = vec![0.1; (3 * h * h) as usize];
    // R missing.
    let only_w = gru_model(&[], Some(vec![tensor("W", &[1, 3 * h, i], &w)]));
    assert!(matches!(
        onnx::from_bytes(&only_w),
        Err(Error::MissingTensor(_))
    ));
    // Raw data shorter than the dims say; huge and negative dims.
    let short = gru_model(
        &[],
        Some(vec![
            tensor("W", &[1, 3 * h, i], &w[..5]),
            tensor("R", &[1, 3 * h, h], &r),
        ]),
    );
    assert!(matches!(onnx::from_bytes(&short), Err(Error::Shape { .. })));
    let huge = gru_model(
        &[],
        Some(vec![
            tensor("W", &[1 << 40, 1 << 40, 1 << 40], &w),
            tensor("R", &[1, 3 * h, h], &r),
        ]),
    );
    assert!(matches!(
        onnx::from_bytes(&huge),
        Err(Error::TooLarge { .. })
    ));
    let neg = gru_model(
        &[],
        Some(vec![
            tensor("W", &[1, -6, i], &w),
            tensor("R", &[1, 3 * h, h], &r),
        ]),
    );
    assert!(matches!(onnx::from_bytes(&neg), Err(Error::Format(_))));
    // Shapes that do not fit each other.
    let wrong = gru_model(
        &[],
        Some(vec![
            tensor("W", &[1, 3 * h, i], &w),
            tensor("R", &[1, 3 * h + 3, h], &[0.0; 18]),
        ]),
    );
    assert!(matches!(onnx::from_bytes(&wrong), Err(Error::Shape { .. })));
    // Duplicate initializers.
    let dup = gru_model(
        &[],
        Some(vec![
            tensor("W", &[1, 3 * h, i], &w),
            tensor("W", &[1, 3 * h, i], &w),
            tensor("R", &[1, 3 * h, h], &r),
        ]),
    );
    assert!(matches!(onnx::from_bytes(&dup), Err(Error::Format(_))));
    // Attributes: wrong type, unknown, bad values, layout 1, hidden_size
    // disagreeing with R.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (attr_int("direction", 1), "direction"),
        (attr_str("direction", "sideways"), "direction"),
        (attr_int("input_forget", 1), "input_forget"),
        (attr_int("hidden_size", 5), "hidden_size"),
        (attr_int("hidden_size", -1), "hidden_size"),
        (attr_int("made_up", 1), "made_up"),
    ];
    for (a, name) in cases {
        match onnx::from_bytes(&gru_model(&[a], None)) {
            Err(Error::InvalidAttribute { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        onnx::from_bytes(&gru_model(&[attr_int("layout", 1)], None)),
        Err(Error::Unsupported(_))
    ));
    let mut clip = Vec::new();
    field_bytes(1, b"clip", &mut clip);
    field_f32(2, 3.0, &mut clip);
    field_varint(20, 1, &mut clip);
    assert_eq!(
        onnx::from_bytes(&gru_model(&[clip], None))
            .unwrap()
            .0
            .config()
            .clip,
        Some(3.0)
    );
    // External data.
    let mut ext = tensor("W", &[1, 3 * h, i], &w);
    field_varint(14, 1, &mut ext);
    let external = gru_model(&[], Some(vec![ext, tensor("R", &[1, 3 * h, h], &r)]));
    assert!(matches!(
        onnx::from_bytes(&external),
        Err(Error::Unsupported(_))
    ));
}

/// Two layers of a PyTorch export that do not stack (the second layer's
/// node edited to another hidden size) or two unrelated nodes: `load`
/// refuses, `node` + `rnn` still load each.
#[test]
fn nodes_that_do_not_stack_are_refused_as_one_model() {
    let path = golden().join("pt-lstm-l2-init-h16-i16-b3-t7.onnx");
    let file = onnx::open(&path).unwrap();
    assert_eq!(file.nodes().len(), 2);
    let (b, nodes) = file.stack(&file.nodes()[0]).unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(b.build().unwrap().config().num_layers, 2);
    // The second node alone is a one-layer model over H inputs.
    let second = file.rnn(&file.nodes()[1]).unwrap();
    assert_eq!(
        (second.config().num_layers, second.config().input_size),
        (1, 16)
    );
    // Two GRU nodes on the same X: not a chain.
    let two = gru_model_n(2, &[], None);
    assert_eq!(onnx::parse(&two).unwrap().nodes().len(), 2);
    match onnx::from_bytes(&two) {
        Err(Error::InvalidAttribute { name, .. }) => assert_eq!(name, "node"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn several_nodes_are_listed_and_picked() {
    let one = gru_model(&[], None);
    let file = onnx::parse(&one).unwrap();
    assert_eq!(file.nodes().len(), 1);
    assert_eq!(file.node("gru").unwrap().index, 0);
    assert_eq!(file.node("0").unwrap().name, "gru");
    match file.node("lstm") {
        Err(Error::InvalidAttribute { reason, .. }) => {
            assert!(reason.contains("`gru`"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let m = file.rnn(file.node("gru").unwrap()).unwrap();
    assert_eq!(m.config().hidden_size, 2);
}
