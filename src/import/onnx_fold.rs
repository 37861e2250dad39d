//! Constant folding of the small graphs exporters put between a model's
//! parameters and an RNN node's `W`, `R`, `B` or `P`.
//!
//! PyTorch's default exporter (`torch.onnx.export`, the dynamo exporter
//! since PyTorch 2.9, opset 18 and up) reorders the gate blocks of
//! `weight_ih_l0` and friends into ONNX's order with `Slice`, `Concat` and
//! `Unsqueeze` nodes, and leaves them in the graph whenever its own folding
//! skips them (tensors above its size limit: every model with H of about
//! 48 or more). Those are evaluated here from the initializers, so such a
//! file loads like one whose weights are initializers.
//!
//! Evaluated: `Identity`, `Constant`, `Slice`, `Concat`, `Unsqueeze`,
//! `Squeeze`, `Reshape`, `Transpose`, on f32 (any float initializer,
//! converted) and integer (INT64, INT32) values, with the ONNX semantics of
//! opset 1 to 23 (axes, starts and ends as attributes or inputs). A tensor
//! that needs anything else (another op, a graph input) is not constant:
//! [`Folder::eval`] gives `None` and the caller reports it missing.
//!
//! Bounds, for hostile files: every value is evaluated once (memoized); a
//! chain deeper than [`MAX_DEPTH`] or a cycle is an error; no value may hold
//! more elements than all initializers together, and all values together
//! at most [`WORK_FACTOR`] times that, so folding costs at most a few
//! passes over the file's own data. Every index is checked against its
//! dimension before use; products of dimensions are checked.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use super::onnx_file::{int_tensor, proto, tensor};
use super::Tensor;
use crate::error::{product, Error, Result};

/// Deepest chain of nodes a folded tensor may come through.
pub(super) const MAX_DEPTH: usize = 64;
/// All folded values together may hold this many times the elements of
/// all initializers.
pub(super) const WORK_FACTOR: usize = 8;

/// A value's elements.
#[derive(Debug, Clone)]
enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

/// A folded value: shape and elements (row-major).
#[derive(Debug, Clone)]
struct Val {
    shape: Vec<usize>,
    data: Data,
}

impl Val {
    fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    fn ints(&self, what: &str) -> Result<&[i64]> {
        match &self.data {
            Data::I(v) => Ok(v),
            Data::F(_) => Err(bad(format!("{what} is not an integer tensor"))),
        }
    }
}

fn bad(msg: String) -> Error {
    Error::Format(format!("constant folding: {msg}"))
}

/// The most elements one value built from a file's initializers may
/// hold: what all of them declare together (their dims, saturating; each
/// is checked against its data when decoded), and at least 64 Ki for
/// graphs of small constants.
pub(super) fn element_limit(initializers: &HashMap<String, proto::TensorProto>) -> usize {
    initializers
        .values()
        .map(|t| {
            t.dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))
                .unwrap_or(0)
        })
        .fold(0usize, usize::saturating_add)
        .max(1 << 16)
}

/// Evaluates the constant tensors of one graph (module docs).
pub(super) struct Folder<'a> {
    producer: HashMap<&'a str, &'a proto::NodeProto>,
    initializers: &'a HashMap<String, proto::TensorProto>,
    base: Option<&'a Path>,
    memo: HashMap<String, Option<Rc<Val>>>,
    /// Names being evaluated (a cycle revisits one).
    open: Vec<String>,
    /// Largest element count of one value.
    limit: usize,
    /// Elements all values may still hold.
    budget: usize,
}

impl<'a> Folder<'a> {
    pub(super) fn new(
        nodes: &'a [proto::NodeProto],
        initializers: &'a HashMap<String, proto::TensorProto>,
        base: Option<&'a Path>,
    ) -> Folder<'a> {
        let mut producer = HashMap::new();
        for n in nodes {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.entry(o.as_str()).or_insert(n);
            }
        }
        let limit = element_limit(initializers);
        Folder {
            producer,
            initializers,
            base,
            memo: HashMap::new(),
            open: Vec::new(),
            limit,
            budget: limit.saturating_mul(WORK_FACTOR),
        }
    }

    /// `name` as an f32 tensor if it is an initializer or a node output
    /// this module can fold; `None` if it is neither (a graph input, an op
    /// not folded here).
    ///
    /// # Errors
    /// [`Error::Format`] for a malformed constant graph (bad axes, shapes
    /// that do not agree, a cycle, a chain past [`MAX_DEPTH`]);
    /// [`Error::TooLarge`] past the element bounds; as the initializers'
    /// decoding.
    pub(super) fn eval(&mut self, name: &str) -> Result<Option<Tensor>> {
        Ok(match self.value(name)? {
            None => None,
            Some(v) => match &v.data {
                Data::F(d) => Some(Tensor {
                    shape: v.shape.clone(),
                    data: d.clone(),
                }),
                Data::I(_) => {
                    return Err(Error::Dtype {
                        name: name.to_string(),
                        found: "an integer tensor (a float tensor expected)".into(),
                    })
                }
            },
        })
    }

    fn value(&mut self, name: &str) -> Result<Option<Rc<Val>>> {
        if let Some(v) = self.memo.get(name) {
            return Ok(v.clone());
        }
        if self.open.iter().any(|n| n == name) {
            return Err(bad(format!("`{name}` depends on itself")));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(bad(format!(
                "`{name}` lies more than {MAX_DEPTH} nodes from the initializers"
            )));
        }
        self.open.push(name.to_string());
        let v = self.compute(name);
        self.open.pop();
        let v = v?.map(Rc::new);
        if let Some(v) = &v {
            let n = v.len();
            if n > self.limit || n > self.budget {
                return Err(Error::TooLarge {
                    what: format!(
                        "constant folding: `{name}` ({n} elements, past the file's own data)"
                    ),
                });
            }
            self.budget -= n;
        }
        self.memo.insert(name.to_string(), v.clone());
        Ok(v)
    }

    fn compute(&mut self, name: &str) -> Result<Option<Val>> {
        if let Some(t) = self.initializers.get(name) {
            return decode(t, self.base).map(Some);
        }
        let Some(&node) = self.producer.get(name) else {
            return Ok(None);
        };
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Ok(None);
        }
        let op = node.op_type.as_str();
        if !matches!(
            op,
            "Identity"
                | "Constant"
                | "Slice"
                | "Concat"
                | "Unsqueeze"
                | "Squeeze"
                | "Reshape"
                | "Transpose"
        ) {
            return Ok(None);
        }
        if op == "Constant" {
            return constant(node, self.base).map(Some);
        }
        // Every input (empty names are absent optional inputs).
        let mut ins: Vec<Option<Rc<Val>>> = Vec::with_capacity(node.input.len());
        for i in &node.input {
            if i.is_empty() {
                ins.push(None);
                continue;
            }
            match self.value(i)? {
                Some(v) => ins.push(Some(v)),
                None => return Ok(None),
            }
        }
        let what = format!("{op} node `{}`", node.name);
        let first = ins
            .first()
            .cloned()
            .flatten()
            .ok_or_else(|| bad(format!("{what} has no input")))?;
        let opt = |k: usize| ins.get(k).cloned().flatten();
        Ok(Some(match op {
            "Identity" => (*first).clone(),
            "Concat" => {
                let parts: Vec<Rc<Val>> = ins.iter().flatten().cloned().collect();
                concat(&parts, int_attr(node, "axis")?, &what)?
            }
            "Unsqueeze" => {
                let axes = axes(node, opt(1), &what)?.unwrap_or_default();
                unsqueeze(&first, &axes, &what)?
            }
            "Squeeze" => squeeze(&first, axes(node, opt(1), &what)?, &what)?,
            "Reshape" => {
                let shape = opt(1).ok_or_else(|| bad(format!("{what} has no shape")))?;
                let allow_zero = int_attr(node, "allowzero").unwrap_or(0) != 0;
                reshape(&first, shape.ints(&what)?, allow_zero, &what)?
            }
            "Transpose" => {
                let perm = attr(node, "perm").map(|a| a.ints.clone());
                transpose(&first, perm, &what)?
            }
            _ => slice(node, &first, &ins, &what)?,
        }))
    }
}

fn attr<'n>(node: &'n proto::NodeProto, name: &str) -> Option<&'n proto::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn int_attr(node: &proto::NodeProto, name: &str) -> Result<i64> {
    attr(node, name).map(|a| a.i).ok_or_else(|| {
        bad(format!(
            "{} node `{}` has no `{name}`",
            node.op_type, node.name
        ))
    })
}

/// An initializer as a value: floats converted to f32, integers to i64.
fn decode(t: &proto::TensorProto, base: Option<&Path>) -> Result<Val> {
    if matches!(t.data_type, 6 | 7) {
        let (shape, data) = int_tensor(t, base)?;
        return Ok(Val {
            shape,
            data: Data::I(data),
        });
    }
    let t = tensor(t, base)?;
    Ok(Val {
        shape: t.shape,
        data: Data::F(t.data),
    })
}

/// A `Constant` node's value (`value`, `value_float(s)`, `value_int(s)`).
fn constant(node: &proto::NodeProto, base: Option<&Path>) -> Result<Val> {
    for a in &node.attribute {
        match a.name.as_str() {
            "value" => {
                if let Some(t) = &a.t {
                    return decode(t, base);
                }
            }
            "value_float" => {
                return Ok(Val {
                    shape: vec![],
                    data: Data::F(vec![a.f]),
                })
            }
            "value_floats" => {
                return Ok(Val {
                    shape: vec![a.floats.len()],
                    data: Data::F(a.floats.clone()),
                })
            }
            "value_int" => {
                return Ok(Val {
                    shape: vec![],
                    data: Data::I(vec![a.i]),
                })
            }
            "value_ints" => {
                return Ok(Val {
                    shape: vec![a.ints.len()],
                    data: Data::I(a.ints.clone()),
                })
            }
            _ => {}
        }
    }
    Err(bad(format!(
        "Constant node `{}` has no value it can fold",
        node.name
    )))
}

/// `axis` (negative counts from the end) as an index below `rank`.
fn norm_axis(axis: i64, rank: usize, what: &str) -> Result<usize> {
    let r = i64::try_from(rank).map_err(|_| bad(format!("{what}: rank {rank}")))?;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(bad(format!("{what}: axis {axis} for rank {rank}")))
    }
}

/// The axes of `Unsqueeze`/`Squeeze`/`Slice`: input (opset 13+) or
/// attribute (older opsets); `None` when neither is given.
fn axes(node: &proto::NodeProto, input: Option<Rc<Val>>, what: &str) -> Result<Option<Vec<i64>>> {
    if let Some(v) = input {
        return Ok(Some(v.ints(what)?.to_vec()));
    }
    Ok(attr(node, "axes").map(|a| a.ints.clone()))
}

/// Strides of a row-major shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// The elements at the cross product of `idx` (one list of in-range
/// indices per axis), row-major.
fn gather<T: Copy>(src: &[T], shape: &[usize], idx: &[Vec<usize>]) -> Vec<T> {
    let st = strides(shape);
    let count: usize = idx.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return out;
    }
    let mut pos = vec![0usize; idx.len()];
    loop {
        let off: usize = pos
            .iter()
            .enumerate()
            .map(|(k, &p)| idx[k][p] * st[k])
            .sum();
        out.push(src[off]);
        // Odometer over the output index.
        let mut k = idx.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            pos[k] += 1;
            if pos[k] < idx[k].len() {
                break;
            }
            pos[k] = 0;
        }
    }
}

fn map_data(v: &Val, shape: Vec<usize>, f: impl Fn(&Data) -> Data) -> Val {
    Val {
        shape,
        data: f(&v.data),
    }
}

fn gather_val(v: &Val, idx: &[Vec<usize>]) -> Val {
    let shape = idx.iter().map(Vec::len).collect();
    map_data(v, shape, |d| match d {
        Data::F(x) => Data::F(gather(x, &v.shape, idx)),
        Data::I(x) => Data::I(gather(x, &v.shape, idx)),
    })
}

fn check_count(v: &Val, what: &str) -> Result<()> {
    if product(what, &v.shape)? != v.len() {
        return Err(bad(format!(
            "{what}: shape {:?} does not fit its data",
            v.shape
        )));
    }
    Ok(())
}

fn slice(node: &proto::NodeProto, x: &Val, ins: &[Option<Rc<Val>>], what: &str) -> Result<Val> {
    check_count(x, what)?;
    let rank = x.shape.len();
    let list = |k: usize, name: &str| -> Result<Option<Vec<i64>>> {
        match ins.get(k).cloned().flatten() {
            Some(v) => Ok(Some(v.ints(what)?.to_vec())),
            None if ins.len() > 1 => Ok(None),
            None => Ok(attr(node, name).map(|a| a.ints.clone())),
        }
    };
    let starts = list(1, "starts")?.ok_or_else(|| bad(format!("{what} has no starts")))?;
    let ends = list(2, "ends")?.ok_or_else(|| bad(format!("{what} has no ends")))?;
    let axes = match list(3, "axes")? {
        Some(a) => a,
        None => (0..starts.len() as i64).collect(),
    };
    let steps = ins
        .get(4)
        .cloned()
        .flatten()
        .map(|v| v.ints(what).map(<[i64]>::to_vec))
        .transpose()?
        .unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(bad(format!(
            "{what}: starts, ends, axes and steps differ in length"
        )));
    }
    // Per axis (start, step, count) of the elements kept; the index lists
    // are built only for a non-empty input, whose every dimension is at
    // most its element count (an empty one may declare any dimensions).
    let mut keep: Vec<(i64, i64, usize)> = x.shape.iter().map(|&d| (0, 1, d)).collect();
    let mut seen = vec![false; rank];
    for k in 0..starts.len() {
        let a = norm_axis(axes[k], rank, what)?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(bad(format!("{what}: axis {} repeated", axes[k])));
        }
        let dim = i64::try_from(x.shape[a]).map_err(|_| bad(format!("{what}: dimension")))?;
        let step = steps[k];
        if step == 0 {
            return Err(bad(format!("{what}: step 0")));
        }
        if dim == 0 {
            keep[a] = (0, 1, 0);
            continue;
        }
        // ONNX: negative starts and ends count from the end; then both are
        // clamped, to [0, dim] going forward, [-1, dim - 1] going back.
        let fix = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (mut s, mut e) = (fix(starts[k]), fix(ends[k]));
        if step > 0 {
            s = s.clamp(0, dim);
            e = e.clamp(0, dim);
        } else {
            s = s.clamp(0, dim - 1);
            e = e.clamp(-1, dim - 1);
        }
        // The count of s, s + step, .. before e, in i128 (no overflow for
        // any step); at most dim.
        let (span, stride) = if step > 0 {
            (i128::from(e) - i128::from(s), i128::from(step))
        } else {
            (i128::from(s) - i128::from(e), -i128::from(step))
        };
        let count = if span > 0 { (span - 1) / stride + 1 } else { 0 };
        keep[a] = (s, step, usize::try_from(count).unwrap_or(0));
    }
    if x.len() == 0 {
        return Ok(Val {
            shape: keep.iter().map(|k| k.2).collect(),
            data: x.data.clone(),
        });
    }
    let idx: Vec<Vec<usize>> = keep
        .iter()
        .map(|&(s, step, n)| {
            (0..n)
                .map(|j| (i128::from(s) + j as i128 * i128::from(step)) as usize)
                .collect()
        })
        .collect();
    Ok(gather_val(x, &idx))
}

fn concat(parts: &[Rc<Val>], axis: i64, what: &str) -> Result<Val> {
    let first = parts
        .first()
        .ok_or_else(|| bad(format!("{what} has no inputs")))?;
    let rank = first.shape.len();
    let a = norm_axis(axis, rank, what)?;
    let mut shape = first.shape.clone();
    shape[a] = 0;
    for p in parts {
        check_count(p, what)?;
        let agree = p.shape.len() == rank
            && (0..rank).all(|k| k == a || p.shape[k] == first.shape[k])
            && std::mem::discriminant(&p.data) == std::mem::discriminant(&first.data);
        if !agree {
            return Err(bad(format!(
                "{what}: inputs of shapes {:?} and {:?} do not concatenate on axis {a}",
                first.shape, p.shape
            )));
        }
        shape[a] = shape[a]
            .checked_add(p.shape[a])
            .ok_or_else(|| bad(format!("{what}: size")))?;
    }
    let outer: usize = first.shape[..a].iter().product();
    let chunk = |p: &Val| -> usize { p.shape[a..].iter().product() };
    macro_rules! join {
        ($variant:ident) => {{
            let mut out = Vec::new();
            for o in 0..outer {
                for p in parts {
                    let Data::$variant(d) = &p.data else {
                        unreachable!("checked: same kind")
                    };
                    let c = chunk(p);
                    out.extend_from_slice(&d[o * c..(o + 1) * c]);
                }
            }
            Data::$variant(out)
        }};
    }
    let data = match &first.data {
        Data::F(_) => join!(F),
        Data::I(_) => join!(I),
    };
    Ok(Val { shape, data })
}

fn unsqueeze(x: &Val, axes: &[i64], what: &str) -> Result<Val> {
    let rank = x
        .shape
        .len()
        .checked_add(axes.len())
        .ok_or_else(|| bad(format!("{what}: rank")))?;
    let mut ones = vec![false; rank];
    for &ax in axes {
        let a = norm_axis(ax, rank, what)?;
        if std::mem::replace(&mut ones[a], true) {
            return Err(bad(format!("{what}: axis {ax} repeated")));
        }
    }
    let mut rest = x.shape.iter();
    let shape = ones
        .iter()
        .map(|&one| if one { 1 } else { *rest.next().unwrap_or(&1) })
        .collect();
    Ok(Val {
        shape,
        data: x.data.clone(),
    })
}

fn squeeze(x: &Val, axes: Option<Vec<i64>>, what: &str) -> Result<Val> {
    let rank = x.shape.len();
    let drop: Vec<bool> = match axes {
        None => x.shape.iter().map(|&d| d == 1).collect(),
        Some(axes) => {
            let mut drop = vec![false; rank];
            for ax in axes {
                let a = norm_axis(ax, rank, what)?;
                if x.shape[a] != 1 {
                    return Err(bad(format!(
                        "{what}: axis {ax} has size {}, not 1",
                        x.shape[a]
                    )));
                }
                drop[a] = true;
            }
            drop
        }
    };
    let shape = x
        .shape
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(&s, _)| s)
        .collect();
    Ok(Val {
        shape,
        data: x.data.clone(),
    })
}

fn reshape(x: &Val, to: &[i64], allow_zero: bool, what: &str) -> Result<Val> {
    check_count(x, what)?;
    let mut shape = Vec::with_capacity(to.len());
    let mut infer = None;
    for (k, &d) in to.iter().enumerate() {
        shape.push(match d {
            -1 if infer.is_none() => {
                infer = Some(k);
                1
            }
            0 if !allow_zero => *x
                .shape
                .get(k)
                .ok_or_else(|| bad(format!("{what}: 0 at axis {k} past the input's rank")))?,
            d if d >= 0 => usize::try_from(d).map_err(|_| bad(format!("{what}: size {d}")))?,
            d => return Err(bad(format!("{what}: size {d}"))),
        });
    }
    let known = product(what, &shape)?;
    if let Some(k) = infer {
        if known == 0 || !x.len().is_multiple_of(known) {
            return Err(bad(format!(
                "{what}: {:?} does not fit {} elements",
                to,
                x.len()
            )));
        }
        shape[k] = x.len() / known;
    }
    if product(what, &shape)? != x.len() {
        return Err(bad(format!(
            "{what}: {:?} does not fit {} elements",
            to,
            x.len()
        )));
    }
    Ok(Val {
        shape,
        data: x.data.clone(),
    })
}

fn transpose(x: &Val, perm: Option<Vec<i64>>, what: &str) -> Result<Val> {
    check_count(x, what)?;
    let rank = x.shape.len();
    let perm: Vec<usize> = match perm {
        None => (0..rank).rev().collect(),
        Some(p) => {
            let mut seen = vec![false; rank];
            let mut out = Vec::with_capacity(rank);
            for ax in &p {
                let a = norm_axis(*ax, rank, what)?;
                if std::mem::replace(&mut seen[a], true) {
                    return Err(bad(format!("{what}: perm {p:?}")));
                }
                out.push(a);
            }
            if out.len() != rank {
                return Err(bad(format!("{what}: perm {p:?} for rank {rank}")));
            }
            out
        }
    };
    // Output element (i_0, ..) is input element with index i_k on axis
    // perm[k]: gather from the input viewed with permuted strides.
    let st = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|&a| x.shape[a]).collect();
    let pst: Vec<usize> = perm.iter().map(|&a| st[a]).collect();
    let count = x.len();
    let offsets = {
        let mut offs = Vec::with_capacity(count);
        let mut pos = vec![0usize; rank];
        for _ in 0..count {
            offs.push(pos.iter().zip(&pst).map(|(p, s)| p * s).sum::<usize>());
            for k in (0..rank).rev() {
                pos[k] += 1;
                if pos[k] < shape[k] {
                    break;
                }
                pos[k] = 0;
            }
        }
        offs
    };
    Ok(map_data(x, shape, |d| match d {
        Data::F(v) => Data::F(offsets.iter().map(|&o| v[o]).collect()),
        Data::I(v) => Data::I(offsets.iter().map(|&o| v[o]).collect()),
    }))
}
