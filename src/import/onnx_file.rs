//! `.onnx` files: the `ModelProto` messages an LSTM or GRU node needs,
//! decoded with `prost` (derive on the subset of `onnx.proto` below, field
//! numbers from the ONNX specification; no protoc at build time), and the
//! node's model built from its initializers and attributes.
//!
//! Accepted: graphs with one or more `LSTM`/`GRU` nodes (default ONNX
//! domain, `layout = 0`, any opset) whose `W`, `R` and optional `B`, `P`
//! are initializers of type FLOAT, FLOAT16, BFLOAT16 or DOUBLE (`raw_data`,
//! the typed fields, or external data), converted to f32, or are computed
//! from such initializers by `Slice`, `Concat`, `Unsqueeze`, `Squeeze`,
//! `Reshape`, `Transpose`, `Identity` and `Constant` nodes (folded when the
//! model is built: [`super::onnx_fold`]; PyTorch's default exporter writes
//! them). External data (`data_location = EXTERNAL`: PyTorch's default
//! exporter puts the weights in `<name>.onnx.data`) are read from the
//! model's folder when the file is opened by path ([`open`], [`load`]);
//! the location must be a relative path below that folder, and the range
//! inside the file. Each node loads as its own `Rnn`
//! ([`OnnxFile::rnn`]). Stacked nodes load as one multi-layer `Rnn`
//! ([`OnnxFile::stack`], and [`load`] when the file's RNN nodes form one
//! chain): node k+1's `X` must be node k's `Y` through only `Squeeze`,
//! `Unsqueeze`, `Transpose`, `Reshape` or `Identity` nodes (what
//! `torch.onnx.export` writes between the layers of an `nn.LSTM`/`nn.GRU`),
//! and every node must have the same op, hidden size, direction and
//! attributes (clip, activations, `input_forget`, `linear_before_reset`);
//! layer k+1's input size must be D*H. Refused with typed errors:
//! bytes that are not a valid protobuf or nest deeper than prost's limit
//! ([`Error::Format`]), external data when the model was given as bytes
//! ([`Error::Unsupported`]), external data outside the model's folder or
//! past its file's end ([`Error::Format`]), initializers that do not fill
//! their dims, negative dims ([`Error::Shape`], [`Error::Format`]),
//! missing initializers ([`Error::MissingTensor`]), malformed or oversized
//! constant graphs ([`Error::Format`], [`Error::TooLarge`]), attributes of
//! the wrong type or value ([`Error::InvalidAttribute`]); everything the
//! tensor importer [`super::onnx`] checks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use prost::Message;

use super::onnx::{self, OnnxAttributes};
use super::Tensor;
use crate::builder::RnnBuilder;
use crate::error::{attr_err, Error, Result};
use crate::model::Rnn;

/// The messages of `onnx.proto` (ONNX IR) that carry an RNN node; fields
/// not declared here are skipped when decoding.
pub(super) mod proto {
    /// `ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    /// `OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    /// `GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    /// `ValueInfoProto` (the name only).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
    }

    /// `NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
        #[prost(string, tag = "7")]
        pub domain: String,
    }

    /// `AttributeProto` (the scalar and list kinds an RNN node uses).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(float, repeated, tag = "7")]
        pub floats: Vec<f32>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        /// A tensor value (`Constant`'s `value`).
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorProto>,
        #[prost(bytes = "vec", repeated, tag = "9")]
        pub strings: Vec<Vec<u8>>,
        /// `AttributeType`: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7,
        /// STRINGS 8 (0 = unset, in files from old exporters).
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    /// `TensorProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        /// `DataType`: FLOAT 1, INT32 6, INT64 7, FLOAT16 10, DOUBLE 11,
        /// BFLOAT16 16.
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(int32, repeated, tag = "5")]
        pub int32_data: Vec<i32>,
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
        #[prost(double, repeated, tag = "10")]
        pub double_data: Vec<f64>,
        #[prost(message, repeated, tag = "13")]
        pub external_data: Vec<StringStringEntryProto>,
        /// `DataLocation`: DEFAULT 0, EXTERNAL 1.
        #[prost(int32, tag = "14")]
        pub data_location: i32,
    }

    /// `StringStringEntryProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

/// The names an RNN node reads and writes (empty strings in the file, for
/// inputs and outputs not given, are `None`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeIo {
    /// `X` `[T, B, I]`: the graph input (or another node's output) to feed.
    pub x: Option<String>,
    /// `W`, `R`, `B` (initializers).
    pub w: Option<String>,
    /// See `w`.
    pub r: Option<String>,
    /// See `w`.
    pub b: Option<String>,
    /// `sequence_lens` `[B]` (i32).
    pub sequence_lens: Option<String>,
    /// `initial_h` `[D, B, H]`.
    pub initial_h: Option<String>,
    /// `initial_c` `[D, B, H]` (LSTM).
    pub initial_c: Option<String>,
    /// `P` (LSTM peepholes, an initializer).
    pub p: Option<String>,
    /// Outputs `Y` `[T, D, B, H]`, `Y_h`, `Y_c` `[D, B, H]`.
    pub y: Option<String>,
    /// See `y`.
    pub y_h: Option<String>,
    /// See `y`.
    pub y_c: Option<String>,
}

/// One `LSTM` or `GRU` node of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxNode {
    /// Position among the graph's nodes (all ops counted).
    pub index: usize,
    /// The node's name (may be empty).
    pub name: String,
    /// `"LSTM"` or `"GRU"`.
    pub op_type: String,
    /// What it reads and writes, so the caller can map its tensors.
    pub io: NodeIo,
    /// The attributes, parsed.
    pub attributes: OnnxAttributes,
}

/// A parsed `.onnx` file: its RNN nodes and its float initializers.
#[derive(Debug, Clone)]
pub struct OnnxFile {
    nodes: Vec<OnnxNode>,
    /// For each tensor name, the op type and first input of the node that
    /// produces it (to trace a layer's `X` back to the previous `Y`).
    producers: HashMap<String, (String, String)>,
    /// The graph's input names.
    pub graph_inputs: Vec<String>,
    initializers: HashMap<String, proto::TensorProto>,
    /// Every node of the graph (for the constant subgraphs exporters put
    /// in front of `W`, `R`, `B`, `P`: [`super::onnx_fold`]).
    graph_nodes: Vec<proto::NodeProto>,
    /// The folder external data locations are relative to (the model
    /// file's, when it was opened by path).
    base_dir: Option<PathBuf>,
}

fn format_err(msg: impl Into<String>) -> Error {
    Error::Format(msg.into())
}

/// An initializer's dims as sizes.
fn dims(t: &proto::TensorProto) -> Result<Vec<usize>> {
    let name = &t.name;
    let mut shape = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        shape.push(
            usize::try_from(d)
                .map_err(|_| format_err(format!("initializer `{name}` has dimension {d}")))?,
        );
    }
    Ok(shape)
}

/// Whether the initializer's data live in an external file.
fn is_external(t: &proto::TensorProto) -> bool {
    t.data_location == 1 || !t.external_data.is_empty()
}

/// The `bytes` bytes of an initializer stored in an external file
/// (`external_data`: `location`, relative to the model's folder `base`,
/// optional `offset` and `length`). The location must be a relative path
/// below `base` (no `..`, no root); the range must lie inside that file.
///
/// # Errors
/// [`Error::Unsupported`] without `base` (the model was given as bytes);
/// [`Error::Format`] for a bad location, a missing or short file, an
/// unreadable entry; [`Error::Shape`] if `length` is not `bytes`.
fn read_external(t: &proto::TensorProto, base: Option<&Path>, bytes: usize) -> Result<Vec<u8>> {
    let name = &t.name;
    let Some(base) = base else {
        return Err(Error::Unsupported(format!(
            "initializer `{name}` is stored in an external file; open the model by path \
             (onnx::open / onnx::load) so the file beside it can be read"
        )));
    };
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for e in &t.external_data {
        let num = |v: &str| {
            v.parse::<u64>().map_err(|_| {
                format_err(format!(
                    "initializer `{name}`: external data {} `{v}` is not a count",
                    e.key
                ))
            })
        };
        match e.key.as_str() {
            "location" => location = Some(e.value.as_str()),
            "offset" => offset = num(&e.value)?,
            "length" => length = Some(num(&e.value)?),
            _ => {}
        }
    }
    let location = location.filter(|l| !l.is_empty()).ok_or_else(|| {
        format_err(format!(
            "initializer `{name}`: external data without a location"
        ))
    })?;
    let rel = Path::new(location);
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format_err(format!(
            "initializer `{name}`: external data location `{location}` is not a relative path below the model's folder"
        )));
    }
    let want = u64::try_from(bytes).map_err(|_| Error::TooLarge {
        what: format!("initializer `{name}` ({bytes} bytes)"),
    })?;
    if let Some(l) = length {
        if l != want {
            return Err(Error::Shape {
                what: format!("initializer `{name}` (external data bytes)"),
                expected: vec![bytes],
                got: vec![usize::try_from(l).unwrap_or(usize::MAX)],
            });
        }
    }
    let path = base.join(rel);
    let io = |e: std::io::Error| format_err(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(&path).map_err(io)?;
    // Checked: the range lies in the file, so the buffer below is at most
    // the file's size.
    let end = offset.checked_add(want);
    if !meta.is_file() || end.is_none_or(|end| end > meta.len()) {
        return Err(format_err(format!(
            "initializer `{name}`: {bytes} bytes at offset {offset} are not inside {}",
            path.display()
        )));
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(bytes).map_err(|_| Error::TooLarge {
        what: format!("initializer `{name}` ({bytes} bytes)"),
    })?;
    buf.resize(bytes, 0);
    let mut f = std::fs::File::open(&path).map_err(io)?;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    f.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// An initializer's raw little-endian bytes: `raw_data`, or its external
/// file's range (`size` bytes per value).
fn raw<'t>(
    t: &'t proto::TensorProto,
    base: Option<&Path>,
    count: usize,
    size: usize,
) -> Result<Cow<'t, [u8]>> {
    if is_external(t) {
        let bytes = count.checked_mul(size).ok_or_else(|| Error::TooLarge {
            what: format!("initializer `{}`: {count} values", t.name),
        })?;
        return Ok(Cow::Owned(read_external(t, base, bytes)?));
    }
    Ok(Cow::Borrowed(&t.raw_data))
}

/// Decodes an integer initializer (INT64, INT32) with its dims (`base`:
/// the model's folder, for external data).
pub(super) fn int_tensor(
    t: &proto::TensorProto,
    base: Option<&Path>,
) -> Result<(Vec<usize>, Vec<i64>)> {
    let name = &t.name;
    let shape = dims(t)?;
    let count = crate::error::product(&format!("initializer `{name}`"), &shape)?;
    let size = match t.data_type {
        7 => 8,
        6 => 4,
        other => {
            return Err(Error::Dtype {
                name: name.clone(),
                found: format!("ONNX data_type {other} (INT64 or INT32 expected)"),
            })
        }
    };
    let raw = raw(t, base, count, size)?;
    let data: Vec<i64> = match t.data_type {
        7 | 6 if !raw.is_empty() => {
            check_raw(name, raw.len(), count, size)?;
            raw.chunks_exact(size)
                .map(|b| match b.len() {
                    8 => i64::from_le_bytes(b.try_into().expect("8 bytes")),
                    _ => i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
                })
                .collect()
        }
        7 => t.int64_data.clone(),
        _ => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
    };
    if data.len() != count {
        return Err(Error::Shape {
            what: format!("initializer `{name}` (values)"),
            expected: shape,
            got: vec![data.len()],
        });
    }
    Ok((shape, data))
}

/// Decodes a float initializer to f32 with its dims (`base`: the model's
/// folder, for external data).
pub(super) fn tensor(t: &proto::TensorProto, base: Option<&Path>) -> Result<Tensor> {
    let name = &t.name;
    let shape = dims(t)?;
    let count = crate::error::product(&format!("initializer `{name}`"), &shape)?;
    let size = match t.data_type {
        1 => 4,
        11 => 8,
        10 | 16 => 2,
        other => {
            return Err(Error::Dtype {
                name: name.clone(),
                found: format!(
                    "ONNX data_type {other} (FLOAT, FLOAT16, BFLOAT16 or DOUBLE expected)"
                ),
            })
        }
    };
    let raw = raw(t, base, count, size)?;
    let data: Vec<f32> = match t.data_type {
        1 if !raw.is_empty() => {
            check_raw(name, raw.len(), count, 4)?;
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        1 => t.float_data.clone(),
        11 if !raw.is_empty() => {
            check_raw(name, raw.len(), count, 8)?;
            raw.chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect()
        }
        11 => t.double_data.iter().map(|&v| v as f32).collect(),
        10 | 16 => {
            let bits: Vec<u16> = if raw.is_empty() {
                // The typed field holds each 16-bit value in an int32.
                t.int32_data.iter().map(|&v| v as u16).collect()
            } else {
                check_raw(name, raw.len(), count, 2)?;
                raw.chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect()
            };
            if t.data_type == 10 {
                bits.iter()
                    .map(|&b| half::f16::from_bits(b).to_f32())
                    .collect()
            } else {
                bits.iter()
                    .map(|&b| half::bf16::from_bits(b).to_f32())
                    .collect()
            }
        }
        other => {
            return Err(Error::Dtype {
                name: name.clone(),
                found: format!(
                    "ONNX data_type {other} (FLOAT, FLOAT16, BFLOAT16 or DOUBLE expected)"
                ),
            })
        }
    };
    if data.len() != count {
        return Err(Error::Shape {
            what: format!("initializer `{name}` (values)"),
            expected: shape,
            got: vec![data.len()],
        });
    }
    Ok(Tensor { shape, data })
}

fn check_raw(name: &str, bytes: usize, count: usize, size: usize) -> Result<()> {
    if Some(bytes) != count.checked_mul(size) {
        return Err(Error::Shape {
            what: format!("initializer `{name}` (raw_data of {bytes} bytes, {size} per value)"),
            expected: vec![count],
            got: vec![bytes / size],
        });
    }
    Ok(())
}

/// An attribute's type, read off `type` or, when unset, off its contents.
fn attr_kind(a: &proto::AttributeProto) -> i32 {
    if a.r#type != 0 {
        return a.r#type;
    }
    if !a.strings.is_empty() {
        8
    } else if !a.floats.is_empty() {
        6
    } else if !a.ints.is_empty() {
        7
    } else if !a.s.is_empty() {
        3
    } else if a.i != 0 {
        2
    } else {
        1
    }
}

fn want(a: &proto::AttributeProto, kind: i32, what: &str) -> Result<()> {
    if attr_kind(a) != kind {
        return Err(attr_err(
            &a.name,
            format!("must be {what} (attribute type {})", attr_kind(a)),
        ));
    }
    Ok(())
}

fn utf8(name: &str, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| attr_err(name, "is not UTF-8"))
}

fn attributes(node: &proto::NodeProto) -> Result<OnnxAttributes> {
    let mut a = OnnxAttributes::default();
    let lstm = node.op_type == "LSTM";
    for at in &node.attribute {
        let n = at.name.as_str();
        match n {
            "direction" => {
                want(at, 3, "a string")?;
                a.direction = OnnxAttributes::parse_direction(&utf8(n, &at.s)?)?;
            }
            "hidden_size" => {
                want(at, 2, "an int")?;
                a.hidden_size = Some(
                    usize::try_from(at.i)
                        .ok()
                        .filter(|&h| h > 0)
                        .ok_or_else(|| attr_err(n, format!("{} is not a positive size", at.i)))?,
                );
            }
            "clip" => {
                want(at, 1, "a float")?;
                a.clip = Some(at.f);
            }
            "input_forget" if lstm => {
                want(at, 2, "an int")?;
                a.input_forget = at.i != 0;
            }
            "linear_before_reset" if !lstm => {
                want(at, 2, "an int")?;
                a.linear_before_reset = at.i != 0;
            }
            "layout" => {
                want(at, 2, "an int")?;
                if at.i != 0 {
                    return Err(Error::Unsupported(format!(
                        "{} layout = {} (batch-first tensors): only layout 0",
                        node.op_type, at.i
                    )));
                }
            }
            "activations" => {
                want(at, 8, "a list of strings")?;
                a.activations = at
                    .strings
                    .iter()
                    .map(|s| utf8(n, s))
                    .collect::<Result<_>>()?;
            }
            "activation_alpha" => {
                want(at, 6, "a list of floats")?;
                a.activation_alpha = at.floats.clone();
            }
            "activation_beta" => {
                want(at, 6, "a list of floats")?;
                a.activation_beta = at.floats.clone();
            }
            other => {
                return Err(attr_err(
                    other,
                    format!("is not an attribute of {}", node.op_type),
                ))
            }
        }
    }
    Ok(a)
}

fn io(node: &proto::NodeProto) -> NodeIo {
    let at = |v: &Vec<String>, k: usize| v.get(k).filter(|s| !s.is_empty()).cloned();
    let (i, o) = (&node.input, &node.output);
    let lstm = node.op_type == "LSTM";
    NodeIo {
        x: at(i, 0),
        w: at(i, 1),
        r: at(i, 2),
        b: at(i, 3),
        sequence_lens: at(i, 4),
        initial_h: at(i, 5),
        initial_c: if lstm { at(i, 6) } else { None },
        p: if lstm { at(i, 7) } else { None },
        y: at(o, 0),
        y_h: at(o, 1),
        y_c: if lstm { at(o, 2) } else { None },
    }
}

/// Parses a `.onnx` file's bytes.
///
/// # Errors
/// [`Error::Format`] if the bytes are not a `ModelProto` (truncated, wrong
/// wire types, lengths past the end, nesting past prost's recursion limit)
/// or have no graph; [`Error::Unsupported`] for a node of another domain
/// or a `layout` other than 0; [`Error::InvalidAttribute`] for attributes
/// of the wrong type or value. Initializers are decoded when a node is
/// built, not here.
pub fn parse(bytes: &[u8]) -> Result<OnnxFile> {
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| format_err(format!("not an ONNX model: {e}")))?;
    let graph = model
        .graph
        .ok_or_else(|| format_err("the ONNX model has no graph"))?;
    let mut nodes = Vec::new();
    let mut producers = HashMap::new();
    for node in &graph.node {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            let first = node.input.first().cloned().unwrap_or_default();
            producers.insert(out.clone(), (node.op_type.clone(), first));
        }
    }
    for (index, node) in graph.node.iter().enumerate() {
        if node.op_type != "LSTM" && node.op_type != "GRU" {
            continue;
        }
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(Error::Unsupported(format!(
                "{} node of domain `{}`",
                node.op_type, node.domain
            )));
        }
        nodes.push(OnnxNode {
            index,
            name: node.name.clone(),
            op_type: node.op_type.clone(),
            io: io(node),
            attributes: attributes(node)?,
        });
    }
    let mut initializers = HashMap::new();
    for t in graph.initializer {
        if initializers.contains_key(&t.name) {
            return Err(format_err(format!(
                "initializer `{}` appears twice",
                t.name
            )));
        }
        initializers.insert(t.name.clone(), t);
    }
    Ok(OnnxFile {
        nodes,
        producers,
        graph_inputs: graph.input.into_iter().map(|v| v.name).collect(),
        initializers,
        graph_nodes: graph.node,
        base_dir: None,
    })
}

/// Reads and parses a `.onnx` file.
///
/// # Errors
/// [`Error::Format`] if it cannot be read; as [`parse`].
pub fn open(path: impl AsRef<std::path::Path>) -> Result<OnnxFile> {
    let p = path.as_ref();
    let bytes = std::fs::read(p).map_err(|e| format_err(format!("{}: {e}", p.display())))?;
    let mut file = parse(&bytes)?;
    file.base_dir = Some(p.parent().map_or_else(PathBuf::new, Path::to_path_buf));
    Ok(file)
}

/// Loads a file's model: its only RNN node, or its RNN nodes stacked when
/// they form one chain (module docs), with the nodes' descriptions (first
/// layer first) so the caller can map its tensors.
///
/// # Errors
/// [`Error::InvalidAttribute`] (`node`) if the file has no RNN node, or
/// several that are not one chain (list them with [`OnnxFile::nodes`] and
/// pick with [`OnnxFile::rnn`] / [`OnnxFile::stack`]); as [`open`] and
/// [`OnnxFile::stack`].
pub fn load(path: impl AsRef<std::path::Path>) -> Result<(Rnn, Vec<OnnxNode>)> {
    open(path)?.only()
}

/// [`load`] from bytes.
///
/// # Errors
/// As for [`load`].
pub fn from_bytes(bytes: &[u8]) -> Result<(Rnn, Vec<OnnxNode>)> {
    parse(bytes)?.only()
}

impl OnnxFile {
    /// The `LSTM`/`GRU` nodes, in graph order.
    pub fn nodes(&self) -> &[OnnxNode] {
        &self.nodes
    }

    /// Initializer `name` as f32 (any of the float types; e.g. a
    /// classifier head's weights beside the RNN).
    ///
    /// # Errors
    /// [`Error::MissingTensor`] if there is none of that name; as the
    /// initializers' decoding (module docs).
    pub fn initializer(&self, name: &str) -> Result<Tensor> {
        let t = self
            .initializers
            .get(name)
            .ok_or_else(|| Error::MissingTensor(format!("initializer `{name}`")))?;
        tensor(t, self.base_dir.as_deref())
    }

    /// The node named `name` (or, for a number, the `k`-th RNN node).
    ///
    /// # Errors
    /// [`Error::InvalidAttribute`] (`node`) naming the nodes there are.
    pub fn node(&self, name: &str) -> Result<&OnnxNode> {
        let by_index = name.parse::<usize>().ok().and_then(|k| self.nodes.get(k));
        by_index
            .or_else(|| self.nodes.iter().find(|n| n.name == name))
            .ok_or_else(|| {
                let names: Vec<String> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(k, n)| format!("{k}: `{}` ({})", n.name, n.op_type))
                    .collect();
                attr_err(
                    "node",
                    format!("no RNN node `{name}`; the file has [{}]", names.join(", ")),
                )
            })
    }

    fn only(self) -> Result<(Rnn, Vec<OnnxNode>)> {
        let (builder, nodes) = self.model_builder()?;
        Ok((builder.build()?, nodes))
    }

    /// What [`load`] builds, as an [`RnnBuilder`] (choose the kernel family
    /// and weight format before packing): the only RNN node, or the file's
    /// RNN nodes stacked when they form one chain.
    ///
    /// # Errors
    /// As for [`load`], except those of packing.
    pub fn model_builder(&self) -> Result<(RnnBuilder, Vec<OnnxNode>)> {
        let Some(first) = self.nodes.first() else {
            return Err(attr_err("node", "the file has no LSTM or GRU node"));
        };
        let chain = self.chain(first);
        if chain.len() != self.nodes.len() {
            return Err(attr_err(
                "node",
                format!(
                    "the file has {} LSTM/GRU nodes that are not one stack; choose with OnnxFile::node",
                    self.nodes.len()
                ),
            ));
        }
        self.stack(first)
    }

    /// The RNN node whose `X` is `node`'s `Y` through shape-only ops.
    fn next_layer(&self, node: &OnnxNode) -> Option<&OnnxNode> {
        let y = node.io.y.as_ref()?;
        self.nodes.iter().find(|n| {
            let mut t = match &n.io.x {
                Some(x) => x.clone(),
                None => return false,
            };
            // Bounded walk: at most as many hops as there are tensors.
            for _ in 0..=self.producers.len() {
                if &t == y {
                    return true;
                }
                match self.producers.get(&t) {
                    Some((op, first))
                        if matches!(
                            op.as_str(),
                            "Squeeze" | "Unsqueeze" | "Transpose" | "Reshape" | "Identity"
                        ) =>
                    {
                        t = first.clone()
                    }
                    _ => return false,
                }
            }
            false
        })
    }

    /// `first` and the nodes stacked on it, in layer order.
    fn chain<'a>(&'a self, first: &'a OnnxNode) -> Vec<&'a OnnxNode> {
        let mut chain = vec![first];
        while let Some(next) = self.next_layer(chain[chain.len() - 1]) {
            if chain.iter().any(|n| n.index == next.index) || chain.len() > self.nodes.len() {
                break;
            }
            chain.push(next);
        }
        chain
    }

    /// `first` and the RNN nodes stacked on it (module docs) as one
    /// multi-layer model, with the nodes (first layer first).
    ///
    /// # Errors
    /// [`Error::InvalidAttribute`] if the layers differ in op, hidden size,
    /// direction or attributes; [`Error::Shape`] if a layer's input is not
    /// the previous layer's output; as [`OnnxFile::builder`].
    pub fn stack(&self, first: &OnnxNode) -> Result<(RnnBuilder, Vec<OnnxNode>)> {
        let chain = self.chain(first);
        // Layers may share initializers; decoded, all of them together may
        // hold at most WORK_FACTOR times what the file's initializers
        // declare, so a small file cannot make many nodes decode one large
        // tensor into memory again and again.
        let budget = super::onnx_fold::element_limit(&self.initializers)
            .saturating_mul(super::onnx_fold::WORK_FACTOR);
        let mut decoded = 0usize;
        let mut count = |w: &[crate::weights::DirectionWeights]| -> Result<()> {
            for d in w {
                decoded = [&d.w, &d.r, &d.wb, &d.rb]
                    .into_iter()
                    .chain(d.peepholes.as_ref())
                    .chain(d.proj.as_ref())
                    .fold(decoded, |a, v| a.saturating_add(v.len()));
            }
            if decoded > budget {
                return Err(Error::TooLarge {
                    what: format!(
                        "the stacked layers' weights ({decoded} values decoded, more than {} times the file's initializers)",
                        super::onnx_fold::WORK_FACTOR
                    ),
                });
            }
            Ok(())
        };
        let (mut cfg, mut weights) = self.builder(first)?.into_parts();
        count(&weights)?;
        for (k, node) in chain.iter().enumerate().skip(1) {
            let (c, w) = self.builder(node)?.into_parts();
            count(&w)?;
            let same = c.cell == cfg.cell
                && c.hidden_size == cfg.hidden_size
                && c.direction == cfg.direction
                && c.clip == cfg.clip
                && c.input_forget == cfg.input_forget
                && c.gru_reset == cfg.gru_reset
                && c.activations == cfg.activations;
            if !same {
                return Err(attr_err(
                    "node",
                    format!(
                        "layer {k} (`{}`) differs from layer 0 in op, hidden size, direction or attributes",
                        node.name
                    ),
                ));
            }
            let want = cfg.num_directions() * cfg.hidden_size;
            if c.input_size != want {
                return Err(Error::Shape {
                    what: format!("layer {k} input (`{}`'s W)", node.name),
                    expected: vec![want],
                    got: vec![c.input_size],
                });
            }
            weights.extend(w);
        }
        cfg.num_layers = chain.len();
        Ok((
            RnnBuilder::new(cfg, weights),
            chain.into_iter().cloned().collect(),
        ))
    }

    /// `node`'s input `name` (`which` of W, R, B, P): an initializer, or
    /// a tensor the graph computes from initializers with the shape ops
    /// [`super::onnx_fold`] evaluates.
    fn init(&self, node: &OnnxNode, which: &str, name: &Option<String>) -> Result<Option<Tensor>> {
        let Some(n) = name else {
            return Ok(None);
        };
        let base = self.base_dir.as_deref();
        if let Some(t) = self.initializers.get(n) {
            return Ok(Some(tensor(t, base)?));
        }
        let mut folder = super::onnx_fold::Folder::new(&self.graph_nodes, &self.initializers, base);
        match folder.eval(n)? {
            Some(t) => Ok(Some(t)),
            None => Err(Error::MissingTensor(format!(
                "initializer `{n}` ({which} of {} node `{}`; neither an initializer nor computed from initializers by Slice/Concat/Unsqueeze/Squeeze/Reshape/Transpose/Identity/Constant: graph inputs are not supported for weights)",
                node.op_type, node.name
            ))),
        }
    }

    /// `node`'s model as an [`RnnBuilder`] (choose the kernel family and
    /// weight format before packing).
    ///
    /// # Errors
    /// [`Error::MissingTensor`] if `W` or `R` is absent or not an
    /// initializer; as the initializers' decoding (module docs) and
    /// [`onnx::lstm_builder`] / [`onnx::gru_builder`].
    pub fn builder(&self, node: &OnnxNode) -> Result<RnnBuilder> {
        let need = |which: &str, n: &Option<String>| -> Result<Tensor> {
            self.init(node, which, n)?.ok_or_else(|| {
                Error::MissingTensor(format!("{which} of {} node `{}`", node.op_type, node.name))
            })
        };
        let w = need("W", &node.io.w)?;
        let r = need("R", &node.io.r)?;
        let b = self.init(node, "B", &node.io.b)?;
        let p = self.init(node, "P", &node.io.p)?;
        if node.op_type == "LSTM" {
            onnx::lstm_builder(
                w.view(),
                r.view(),
                b.as_ref().map(Tensor::view),
                p.as_ref().map(Tensor::view),
                &node.attributes,
            )
        } else {
            onnx::gru_builder(
                w.view(),
                r.view(),
                b.as_ref().map(Tensor::view),
                &node.attributes,
            )
        }
    }

    /// `node`'s model, with the kernel this CPU dispatches and f32 weights.
    ///
    /// # Errors
    /// As for [`OnnxFile::builder`] and [`RnnBuilder::build`].
    pub fn rnn(&self, node: &OnnxNode) -> Result<Rnn> {
        self.builder(node)?.build()
    }
}
