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

/// A tensor of ONNX `data_type` with raw data.
fn tensor_raw(name: &str, dims: &[i64], data_type: u64, raw: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        field_varint(1, d as u64, &mut t);
    }
    field_varint(2, data_type, &mut t);
    field_bytes(8, name.as_bytes(), &mut t);
    field_bytes(9, raw, &mut t);
    t
}

/// A FLOAT tensor with raw data.
fn tensor(name: &str, dims: &[i64], values: &[f32]) -> Vec<u8> {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_raw(name, dims, 1, &raw)
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

/// PyTorch's default exporter (`torch.onnx.export`, dynamo, opset 18+):
/// weights in `<name>.onnx.data` beside the model and reordered into ONNX's
/// gate order by Slice/Concat/Unsqueeze nodes (tests/data/make_golden.py
/// `--exporter dynamo`; H = 48, above the exporter's folding limit). Each
/// loads by path to the case's own model and passes it on every family;
/// from bytes alone the external data cannot be read: a typed error.
#[test]
fn pytorch_default_exports_with_external_data_and_folded_weights_load() {
    let files = onnx_files_in(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dynamo"));
    assert_eq!(files.len(), 3);
    for f in &files {
        let (model, nodes) = onnx::load(f).unwrap();
        let case = load_case(&f.with_extension("safetensors")).unwrap();
        assert_eq!(model.config(), case.model.config(), "{}", f.display());
        assert_eq!(model.weights(), case.model.weights(), "{}", f.display());
        assert_eq!(nodes.len(), model.config().num_layers);
        let case = load_case_onnx(f).unwrap();
        for family in KernelFamily::available() {
            let res = run_case(&case, family).unwrap();
            assert!(res.passes(1e-5), "{} {family:?}", f.display());
        }
        let bytes = std::fs::read(f).unwrap();
        assert!(matches!(
            onnx::from_bytes(&bytes),
            Err(Error::Unsupported(_))
        ));
    }
}

/// A node `op` with inputs, outputs and attributes.
fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    for s in inputs {
        field_bytes(1, s.as_bytes(), &mut n);
    }
    for s in outputs {
        field_bytes(2, s.as_bytes(), &mut n);
    }
    field_bytes(3, format!("{op}_{}", outputs[0]).as_bytes(), &mut n);
    field_bytes(4, op.as_bytes(), &mut n);
    for a in attrs {
        field_bytes(5, a, &mut n);
    }
    n
}

/// An INT64 tensor (raw data).
fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> Vec<u8> {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_raw(name, dims, 7, &raw)
}

fn attr_ints(name: &str, v: &[i64]) -> Vec<u8> {
    let mut a = Vec::new();
    field_bytes(1, name.as_bytes(), &mut a);
    for &x in v {
        field_varint(8, x as u64, &mut a);
    }
    field_varint(20, 7, &mut a);
    a
}

/// A model of the given nodes (a GRU node among them) and initializers.
fn graph_model(nodes: &[Vec<u8>], inits: &[Vec<u8>]) -> Vec<u8> {
    let mut graph = Vec::new();
    for n in nodes {
        field_bytes(1, n, &mut graph);
    }
    for t in inits {
        field_bytes(5, t, &mut graph);
    }
    let mut model = Vec::new();
    field_varint(1, 8, &mut model);
    field_bytes(7, &graph, &mut model);
    model
}

/// The GRU node of [`graph_model`] tests: H = 2, reading `W` and `R`.
fn gru_node(w: &str, r: &str) -> Vec<u8> {
    node("GRU", &["X", w, r], &["Y"], &[attr_int("hidden_size", 2)])
}

/// The gate blocks of `m` (`[3 * rows, cols]`) in the order `order`.
fn reorder(m: &[f32], rows_per_gate: usize, cols: usize, order: [usize; 3]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&g| m[g * rows_per_gate * cols..(g + 1) * rows_per_gate * cols].to_vec())
        .collect()
}

/// Weights computed from initializers as PyTorch's exporter writes them
/// (`W = Unsqueeze(Concat(Slice(src, z), Slice(src, r), Slice(src, h)))`
/// from PyTorch's r, z, n blocks; Slice with negative starts and ends
/// clamped past the end) and through Reshape, Transpose, Identity and
/// Constant: the model equals the one whose W and R are initializers.
#[test]
fn weights_computed_by_shape_ops_are_folded() {
    let (h, i) = (2usize, 3usize);
    let w: Vec<f32> = (0..3 * h * i).map(|k| k as f32 * 0.01 - 0.05).collect();
    let r: Vec<f32> = (0..3 * h * h).map(|k| k as f32 * -0.02 + 0.03).collect();
    let direct = onnx::from_bytes(&graph_model(
        &[gru_node("W", "R")],
        &[
            tensor("W", &[1, 3 * h as i64, i as i64], &w),
            tensor("R", &[1, 3 * h as i64, h as i64], &r),
        ],
    ))
    .unwrap()
    .0;
    // W: the source in r, z, n order, its blocks sliced back to z, r, h.
    let src = reorder(&w, h, i, [1, 0, 2]);
    // R: stored transposed and flat; Transpose then Reshape to [1, 3H, H].
    let rt: Vec<f32> = (0..h)
        .flat_map(|c| (0..3 * h).map(move |row| (row, c)))
        .map(|(row, c)| r[row * h + c])
        .collect();
    let (hh, ii) = (h as i64, i as i64);
    let nodes = vec![
        node("Slice", &["src", "s0", "e0", "ax"], &["z"], &[]),
        node("Slice", &["src", "s1", "e1", "ax"], &["r"], &[]),
        node("Slice", &["src", "s2", "e2", "ax"], &["n"], &[]),
        node("Concat", &["z", "r", "n"], &["cat"], &[attr_int("axis", 0)]),
        node("Unsqueeze", &["cat", "ax"], &["W1"], &[]),
        node("Identity", &["W1"], &["W2"], &[]),
        node("Transpose", &["rt"], &["r2"], &[attr_ints("perm", &[1, 0])]),
        node(
            "Constant",
            &[],
            &["shape"],
            &[{
                let mut a = Vec::new();
                field_bytes(1, b"value", &mut a);
                field_bytes(5, &tensor_i64("c", &[3], &[1, -1, hh]), &mut a);
                field_varint(20, 4, &mut a);
                a
            }],
        ),
        node("Reshape", &["r2", "shape"], &["R1"], &[]),
        gru_node("W2", "R1"),
    ];
    let inits = vec![
        tensor("src", &[3 * hh, ii], &src),
        tensor("rt", &[hh, 3 * hh], &rt),
        tensor_i64("ax", &[1], &[0]),
        tensor_i64("s0", &[1], &[hh]),
        tensor_i64("e0", &[1], &[2 * hh]),
        tensor_i64("s1", &[1], &[-3 * hh]),
        tensor_i64("e1", &[1], &[-2 * hh]),
        tensor_i64("s2", &[1], &[2 * hh]),
        tensor_i64("e2", &[1], &[i64::MAX]),
    ];
    let folded = onnx::from_bytes(&graph_model(&nodes, &inits)).unwrap().0;
    assert_eq!(folded.config(), direct.config());
    assert_eq!(folded.weights(), direct.weights());
}

/// Hostile constant graphs: typed errors, never a panic, a hang or an
/// allocation past the file's own data.
#[test]
fn hostile_constant_graphs_are_typed_errors() {
    let (h, i) = (2i64, 3i64);
    let w: Vec<f32> = vec![0.1; (3 * h * i) as usize];
    let r = tensor("R", &[1, 3 * h, h], &vec![0.1; (3 * h * h) as usize]);
    let load = |nodes: Vec<Vec<u8>>, inits: Vec<Vec<u8>>| {
        let mut inits = inits;
        inits.push(r.clone());
        let mut nodes = nodes;
        nodes.push(gru_node("W", "R"));
        onnx::from_bytes(&graph_model(&nodes, &inits))
    };
    let format = |res: Result<_, Error>| matches!(res, Err(Error::Format(_)));
    // A cycle.
    assert!(format(load(
        vec![
            node("Identity", &["A"], &["W"], &[]),
            node("Identity", &["W"], &["A"], &[]),
        ],
        vec![]
    )));
    // A chain deeper than the bound.
    let mut chain = vec![node("Identity", &["w0"], &["W"], &[])];
    for k in 0..100 {
        chain.push(node(
            "Identity",
            &[&format!("w{}", k + 1)],
            &[&format!("w{k}")],
            &[],
        ));
    }
    let deep = load(chain, vec![tensor("w100", &[1, 3 * h, i], &w)]);
    assert!(format(deep));
    // Doubling by Concat past the file's data: TooLarge, not an
    // allocation of 2^40 floats.
    let mut grow = vec![node(
        "Concat",
        &["g0", "g0"],
        &["g1"],
        &[attr_int("axis", 0)],
    )];
    for k in 1..40 {
        let (a, b) = (format!("g{k}"), format!("g{}", k + 1));
        grow.push(node("Concat", &[&a, &a], &[&b], &[attr_int("axis", 0)]));
    }
    grow.push(node("Identity", &["g40"], &["W"], &[]));
    assert!(matches!(
        load(grow, vec![tensor("g0", &[1, 3 * h, i], &w)]),
        Err(Error::TooLarge { .. })
    ));
    // Bad axes, step 0, a shape that does not fit, concat of mismatched
    // shapes, integers where floats belong, a missing axis attribute.
    let src = tensor("src", &[1, 3 * h, i], &w);
    let ints = |name: &str, v: &[i64]| tensor_i64(name, &[v.len() as i64], v);
    // (nodes, initializers) of each case.
    type Graph = (Vec<Vec<u8>>, Vec<Vec<u8>>);
    let cases: Vec<Graph> = vec![
        (
            vec![node("Unsqueeze", &["src", "ax"], &["W"], &[])],
            vec![src.clone(), ints("ax", &[7])],
        ),
        (
            vec![node("Slice", &["src", "s", "e", "ax", "st"], &["W"], &[])],
            vec![
                src.clone(),
                ints("s", &[0]),
                ints("e", &[1]),
                ints("ax", &[0]),
                ints("st", &[0]),
            ],
        ),
        (
            vec![node("Slice", &["src", "s", "e", "ax"], &["W"], &[])],
            vec![
                src.clone(),
                ints("s", &[0, 0]),
                ints("e", &[1]),
                ints("ax", &[0]),
            ],
        ),
        (
            vec![node("Reshape", &["src", "sh"], &["W"], &[])],
            vec![src.clone(), ints("sh", &[5, -1])],
        ),
        (
            vec![node("Reshape", &["src", "sh"], &["W"], &[])],
            vec![src.clone(), ints("sh", &[-1, -1])],
        ),
        (
            vec![node(
                "Concat",
                &["src", "o"],
                &["W"],
                &[attr_int("axis", 1)],
            )],
            vec![src.clone(), tensor("o", &[2, 3 * h, i], &[0.0; 36])],
        ),
        (
            vec![node("Concat", &["src", "src"], &["W"], &[])],
            vec![src.clone()],
        ),
        (
            vec![node(
                "Transpose",
                &["src"],
                &["W"],
                &[attr_ints("perm", &[0, 0, 1])],
            )],
            vec![src.clone()],
        ),
        (
            vec![node("Squeeze", &["src", "ax"], &["W"], &[])],
            vec![src.clone(), ints("ax", &[1])],
        ),
    ];
    // A backward slice of an empty axis is empty (no clamp to [0, -1]),
    // and the empty W then misfits the node.
    let empty = load(
        vec![node("Slice", &["z", "s", "e", "ax", "st"], &["W"], &[])],
        vec![
            tensor("z", &[0, 3 * h, i], &[]),
            ints("s", &[-1]),
            ints("e", &[i64::MIN]),
            ints("ax", &[0]),
            ints("st", &[-1]),
        ],
    );
    assert!(matches!(empty, Err(Error::Shape { .. })), "{empty:?}");
    // An empty tensor may declare any dimensions: slicing it must not
    // build index lists as long as they (2^40 here).
    let vast = load(
        vec![node("Slice", &["z", "s", "e", "ax"], &["W"], &[])],
        vec![
            tensor("z", &[1 << 40, 0], &[]),
            ints("s", &[1]),
            ints("e", &[i64::MAX]),
            ints("ax", &[0]),
        ],
    );
    assert!(matches!(vast, Err(Error::Shape { .. })), "{vast:?}");
    for (k, (nodes, inits)) in cases.into_iter().enumerate() {
        let res = load(nodes, inits);
        assert!(format(res.clone()), "case {k}: {res:?}");
    }
    // Integers where W belongs; an op not folded (a graph input stays
    // missing).
    assert!(matches!(
        load(
            vec![node("Identity", &["k"], &["W"], &[])],
            vec![tensor_i64("k", &[1, 3 * h, i], &[1; 18])]
        ),
        Err(Error::Dtype { .. })
    ));
    assert!(matches!(
        load(vec![node("Relu", &["src"], &["W"], &[])], vec![src.clone()]),
        Err(Error::MissingTensor(_))
    ));
}

/// A FLOAT tensor whose data live in an external file.
fn tensor_external(name: &str, dims: &[i64], entries: &[(&str, &str)]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        field_varint(1, d as u64, &mut t);
    }
    field_varint(2, 1, &mut t);
    field_bytes(8, name.as_bytes(), &mut t);
    for (k, v) in entries {
        let mut e = Vec::new();
        field_bytes(1, k.as_bytes(), &mut e);
        field_bytes(2, v.as_bytes(), &mut e);
        field_bytes(13, &e, &mut t);
    }
    field_varint(14, 1, &mut t);
    t
}

/// External data: read from the file beside the model at its offset;
/// locations outside the model's folder, ranges past the file's end, a
/// `length` that disagrees with the dims and missing files are typed
/// errors.
#[test]
fn external_data_is_read_beside_the_model_and_checked() {
    let (h, i) = (2i64, 3i64);
    let w: Vec<f32> = (0..3 * h * i).map(|k| k as f32 * 0.01).collect();
    let r = tensor("R", &[1, 3 * h, h], &vec![0.1; (3 * h * h) as usize]);
    let dir = std::env::temp_dir().join(format!("fusedrnn-ext-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    // 8 bytes of padding, then W.
    let mut data = vec![0xAAu8; 8];
    data.extend(w.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.join("sub/w.bin"), &data).unwrap();
    let bytes = (w.len() * 4).to_string();
    let write = |entries: &[(&str, &str)]| {
        let m = graph_model(
            &[gru_node("W", "R")],
            &[tensor_external("W", &[1, 3 * h, i], entries), r.clone()],
        );
        let p = dir.join("model.onnx");
        std::fs::write(&p, m).unwrap();
        onnx::load(&p)
    };
    let (m, _) = write(&[
        ("location", "sub/w.bin"),
        ("offset", "8"),
        ("length", &bytes),
    ])
    .unwrap();
    let direct = onnx::from_bytes(&graph_model(
        &[gru_node("W", "R")],
        &[tensor("W", &[1, 3 * h, i], &w), r.clone()],
    ))
    .unwrap()
    .0;
    assert_eq!(m.weights(), direct.weights());
    let format = |res: fusedrnn::Result<_>| matches!(res, Err(Error::Format(_)));
    assert!(format(write(&[("location", "../w.bin")])));
    assert!(format(write(&[("location", "/etc/passwd")])));
    assert!(format(write(&[("location", "")])));
    assert!(format(write(&[("offset", "8")])));
    assert!(format(write(&[("location", "sub/w.bin"), ("offset", "9")])));
    assert!(format(write(&[
        ("location", "sub/w.bin"),
        ("offset", "18446744073709551615")
    ])));
    assert!(format(write(&[
        ("location", "sub/w.bin"),
        ("offset", "-1")
    ])));
    assert!(format(write(&[("location", "sub/missing.bin")])));
    assert!(format(write(&[("location", "sub")])));
    assert!(matches!(
        write(&[("location", "sub/w.bin"), ("offset", "8"), ("length", "4")]),
        Err(Error::Shape { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Layers that share one initializer decode it once per layer: allowed up
/// to 8 times the file's initializers, then a typed error, so a small file
/// of many stacked nodes cannot fill memory with copies of one tensor.
#[test]
fn stacked_layers_sharing_weights_are_bounded() {
    let h = 64i64;
    let w = tensor("W", &[1, 3 * h, h], &vec![0.01; (3 * h * h) as usize]);
    let r = tensor("R", &[1, 3 * h, h], &vec![0.02; (3 * h * h) as usize]);
    let stack = |layers: usize| {
        let nodes: Vec<Vec<u8>> = (0..layers)
            .map(|k| {
                let (x, y) = (format!("y{k}"), format!("y{}", k + 1));
                node("GRU", &[&x, "W", "R"], &[&y], &[attr_int("hidden_size", h)])
            })
            .collect();
        onnx::from_bytes(&graph_model(&nodes, &[w.clone(), r.clone()]))
    };
    let (m, nodes) = stack(4).unwrap();
    assert_eq!((m.config().num_layers, nodes.len()), (4, 4));
    assert!(matches!(stack(40), Err(Error::TooLarge { .. })));
}
