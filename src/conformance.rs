//! Golden case files (the format of `tests/data/GOLDEN_FORMAT.md`): load a
//! case, run it with a kernel family, and measure the error against the
//! outputs ONNX Runtime or PyTorch produced. Used by `cargo test` and by
//! the `conformance` example.

use std::collections::HashMap;
use std::path::Path;

use crate::config::{Cell, Direction};
use crate::error::{Error, Result};
use crate::family::KernelFamily;
use crate::import::onnx::{self, OnnxAttributes};
use crate::import::pytorch::{self, PytorchOptions};
use crate::import::safetensors::TensorFile;
use crate::import::{Tensor, TensorSource};
use crate::model::Rnn;
use crate::state::{Layout, Sequence, State, Workspace};

/// Which expected tensor a case compares against, in our output terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// ONNX `Y` `[T, D, B, H]` from our `[T, B, D*H]`.
    OnnxY,
    /// PyTorch `output` `[T, B, D*Hout]`, the same as ours.
    Output,
    /// Final `h` `[L*D, B, Hout]`.
    FinalH,
    /// Final `c` `[L*D, B, H]`.
    FinalC,
}

/// One loaded case, ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name (file stem).
    pub name: String,
    /// The model built from the file's weights by the ONNX or PyTorch importer.
    pub model: Rnn,
    input: Vec<f32>,
    seq_len: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
    initial: State,
    expected: Vec<(String, Target, Vec<f32>)>,
}

/// The outcome of running one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// Max abs error per expected tensor, by the file's tensor name.
    pub errors: Vec<(String, f32)>,
}

impl CaseResult {
    /// The largest error over all tensors; NaN if any output is NaN where
    /// the expected value is not (or the reverse).
    pub fn max_error(&self) -> f32 {
        self.errors.iter().map(|e| e.1).fold(0.0, |m, e| {
            if m.is_nan() || e.is_nan() {
                f32::NAN
            } else {
                m.max(e)
            }
        })
    }

    /// Whether every tensor is within `tol` (a NaN mismatch fails at any
    /// tolerance, `inf` included).
    pub fn passes(&self, tol: f32) -> bool {
        self.max_error() <= tol
    }
}

fn bad(path: &str, what: impl std::fmt::Display) -> Error {
    Error::Format(format!("{path}: {what}"))
}

struct Meta<'a> {
    map: &'a HashMap<String, String>,
    path: &'a str,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Result<&str> {
        self.map
            .get(key)
            .map(|s| s.as_str())
            .ok_or_else(|| bad(self.path, format!("metadata `{key}` missing")))
    }
    fn usize(&self, key: &str) -> Result<usize> {
        let s = self.get(key)?;
        s.trim().parse().map_err(|_| {
            bad(
                self.path,
                format!("metadata `{key}` = `{s}` is not a count"),
            )
        })
    }
    fn flag(&self, key: &str) -> Result<bool> {
        match self.map.get(key).map(|s| s.trim()) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(s) => Err(bad(
                self.path,
                format!("metadata `{key}` = `{s}` is not 0/1"),
            )),
        }
    }
    fn floats(&self, key: &str) -> Result<Vec<f32>> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(s) if s.trim().is_empty() => Ok(Vec::new()),
            Some(s) => s
                .split(',')
                .map(|v| {
                    v.trim().parse::<f32>().map_err(|_| {
                        bad(
                            self.path,
                            format!("metadata `{key}`: `{v}` is not a number"),
                        )
                    })
                })
                .collect(),
        }
    }
}

fn expect_shape(path: &str, name: &str, t: &Tensor, dims: &[usize]) -> Result<()> {
    if t.shape != dims {
        return Err(bad(
            path,
            format!("tensor `{name}` has shape {:?}, expected {dims:?}", t.shape),
        ));
    }
    Ok(())
}

fn lengths(
    path: &str,
    file: &TensorFile,
    name: &str,
    batch: usize,
    t: usize,
) -> Result<Option<Vec<usize>>> {
    let Some((shape, vals)) = file.i64(name).map_err(|e| bad(path, e))? else {
        return Ok(None);
    };
    if shape != [batch] {
        return Err(bad(
            path,
            format!("`{name}` has shape {shape:?}, expected [{batch}]"),
        ));
    }
    vals.iter()
        .map(|&v| {
            usize::try_from(v)
                .ok()
                .filter(|&v| v <= t)
                .ok_or_else(|| bad(path, format!("`{name}` value {v} is outside 0..={t}")))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Loads a case file; every problem is an [`Error::Format`] naming the file.
pub fn load_case(path: &Path) -> Result<Case> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| bad(&p, e))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_case(&bytes, &name, &p)
}

/// A case whose model comes from an `.onnx` file: `path` is `name.onnx`,
/// and the case file `name.safetensors` beside it gives the inputs and the
/// expected outputs (its weight tensors are ignored). The `.onnx` file's
/// model ([`crate::import::onnx::load`]: one LSTM/GRU node, or stacked
/// nodes) gives the weights and attributes; its sizes must be the case's.
///
/// # Errors
/// As for [`load_case`] (the case file) and
/// [`crate::import::onnx::load`]; [`Error::Shape`] if the node's sizes
/// differ from the case's.
pub fn load_case_onnx(path: &Path) -> Result<Case> {
    let mut case = load_case(&path.with_extension("safetensors"))?;
    let (model, _) = crate::import::onnx::load(path)?;
    let (a, b) = (model.config(), case.model.config());
    let dims = |c: &crate::Config| {
        vec![
            c.input_size,
            c.hidden_size,
            c.num_directions(),
            c.num_layers,
        ]
    };
    if dims(a) != dims(b) || a.cell != b.cell {
        return Err(Error::Shape {
            what: format!(
                "{}: model (input, hidden, directions) against its case file",
                path.display()
            ),
            expected: dims(b),
            got: dims(a),
        });
    }
    case.model = model;
    Ok(case)
}

/// The tensor names of one layout, and the dtypes the format requires.
struct Names {
    x: &'static str,
    h0: &'static str,
    c0: &'static str,
    /// The expected output and how it maps to ours.
    y: (&'static str, Target),
    hn: &'static str,
    cn: &'static str,
    lengths: &'static str,
    /// The dtype of the lengths tensor (`I32` for ONNX, `I64` for PyTorch).
    lengths_dtype: &'static str,
}

const ONNX: Names = Names {
    x: "X",
    h0: "initial_h",
    c0: "initial_c",
    y: ("Y", Target::OnnxY),
    hn: "Y_h",
    cn: "Y_c",
    lengths: "sequence_lens",
    lengths_dtype: "I32",
};

const PYTORCH: Names = Names {
    x: "x",
    h0: "h0",
    c0: "c0",
    y: ("output", Target::Output),
    hn: "h_n",
    cn: "c_n",
    lengths: "lengths",
    lengths_dtype: "I64",
};

/// Parses a case from a file's bytes; `name` is the case name and `p` the
/// path shown in error messages. Every tensor must have the dtype and
/// shape `tests/data/GOLDEN_FORMAT.md` gives; all of them are checked
/// before anything is sized from the metadata.
pub fn parse_case(bytes: &[u8], name: &str, p: &str) -> Result<Case> {
    let file = TensorFile::parse(bytes).map_err(|e| bad(p, e))?;
    let meta = Meta {
        map: file.metadata(),
        path: p,
    };
    let cell = match meta.get("op")? {
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        other => return Err(bad(p, format!("unknown op `{other}`"))),
    };
    let (hidden, input) = (meta.usize("hidden_size")?, meta.usize("input_size")?);
    let (model, names) = match meta.get("layout")? {
        "onnx" => (onnx_model(&file, &meta, cell, p)?, &ONNX),
        "pytorch" => {
            let model = pytorch::from_state_dict(&file, &PytorchOptions::new(cell))
                .map_err(|e| bad(p, e))?;
            let cfg = model.config();
            let bidir = cfg.direction == Direction::Bidirectional;
            if cfg.num_layers != meta.usize("num_layers")?
                || bidir != meta.flag("bidirectional")?
                || cfg.proj_size != meta.usize("proj_size")?
            {
                return Err(bad(p, "the weights disagree with the metadata"));
            }
            (model, &PYTORCH)
        }
        other => return Err(bad(p, format!("unknown layout `{other}`"))),
    };
    let cfg = model.config();
    if cfg.hidden_size != hidden || cfg.input_size != input {
        return Err(bad(p, "the weights disagree with hidden_size/input_size"));
    }
    for t in file.names() {
        let want = if t == names.lengths {
            names.lengths_dtype
        } else {
            "F32"
        };
        if file.dtype(t) != Some(want) {
            return Err(bad(
                p,
                format!(
                    "tensor `{t}` is {:?}, the format says {want}",
                    file.dtype(t)
                ),
            ));
        }
    }
    let (t, b) = (meta.usize("seq_len")?, meta.usize("batch")?);
    let dims = |v: &[usize]| -> Result<Vec<usize>> {
        // Checked: the metadata are the file's to choose.
        v.iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .map(|_| v.to_vec())
            .ok_or_else(|| bad(p, format!("shape {v:?} overflows")))
    };
    let (ld, hout, feat) = (
        cfg.num_layers * cfg.num_directions(),
        cfg.output_size(),
        model.output_features(),
    );
    let get = |n: &str, shape: Vec<usize>| -> Result<Option<Vec<f32>>> {
        match file.tensor(n).map_err(|e| bad(p, e))? {
            None => Ok(None),
            Some(x) => {
                expect_shape(p, n, &x, &shape)?;
                Ok(Some(x.data))
            }
        }
    };
    let need = |n: &str, shape: Vec<usize>| -> Result<Vec<f32>> {
        get(n, shape)?.ok_or_else(|| bad(p, format!("tensor `{n}` missing")))
    };
    let x = need(names.x, dims(&[t, b, input])?)?;
    let y_dims = match names.y.1 {
        Target::OnnxY => dims(&[t, ld, b, hout])?,
        _ => dims(&[t, b, feat])?,
    };
    let mut expected = vec![
        (names.y.0.to_string(), names.y.1, need(names.y.0, y_dims)?),
        (
            names.hn.to_string(),
            Target::FinalH,
            need(names.hn, dims(&[ld, b, hout])?)?,
        ),
    ];
    if cell == Cell::Lstm {
        let cn = need(names.cn, dims(&[ld, b, hidden])?)?;
        expected.push((names.cn.to_string(), Target::FinalC, cn));
    }
    let h0 = get(names.h0, dims(&[ld, b, hout])?)?;
    let c0 = get(names.c0, dims(&[ld, b, hidden])?)?;
    if c0.is_some() && cell != Cell::Lstm {
        return Err(bad(p, format!("`{}` on a GRU", names.c0)));
    }
    let lengths = lengths(p, &file, names.lengths, b, t)?;
    // Every size is now backed by tensor data in the file (`h_n` holds
    // L*D*B*Hout floats), so the state below is no larger than the file.
    let mut initial = model.new_state(b).map_err(|e| bad(p, e))?;
    if let Some(h0) = h0 {
        initial.h_mut().copy_from_slice(&h0);
    }
    if let Some(c0) = c0 {
        initial.c_mut().copy_from_slice(&c0);
    }
    Ok(Case {
        name: name.to_string(),
        model,
        input: x,
        seq_len: t,
        batch: b,
        lengths,
        initial,
        expected,
    })
}

/// The model of an ONNX-layout case: attributes from the metadata,
/// weights from `W`, `R`, `B`, `P`.
fn onnx_model(file: &TensorFile, meta: &Meta<'_>, cell: Cell, p: &str) -> Result<Rnn> {
    let mut attrs = OnnxAttributes {
        direction: OnnxAttributes::parse_direction(meta.get("direction")?)
            .map_err(|e| bad(p, e))?,
        hidden_size: Some(meta.usize("hidden_size")?),
        input_forget: meta.flag("input_forget")?,
        linear_before_reset: meta.flag("linear_before_reset")?,
        ..OnnxAttributes::default()
    };
    if let Some(c) = meta.map.get("clip") {
        attrs.clip = Some(
            c.trim()
                .parse()
                .map_err(|_| bad(p, format!("clip `{c}` is not a number")))?,
        );
    }
    if let Some(a) = meta.map.get("activations") {
        attrs.activations = a.split(',').map(|s| s.trim().to_string()).collect();
    }
    attrs.activation_alpha = meta.floats("activation_alpha")?;
    attrs.activation_beta = meta.floats("activation_beta")?;
    let f32t = |n: &str| file.f32(n).map_err(|e| bad(p, e));
    let opt = |n: &str| file.tensor(n).map_err(|e| bad(p, e));
    let (w, r, bias) = (f32t("W")?, f32t("R")?, opt("B")?);
    match cell {
        Cell::Lstm => {
            let pp = opt("P")?;
            onnx::lstm(
                w.view(),
                r.view(),
                bias.as_ref().map(|x| x.view()),
                pp.as_ref().map(|x| x.view()),
                &attrs,
            )
        }
        Cell::Gru => onnx::gru(w.view(), r.view(), bias.as_ref().map(|x| x.view()), &attrs),
    }
    .map_err(|e| bad(p, e))
}

/// Max abs difference; NaN if a NaN stands on one side only (NaN on both
/// sides agrees), so that no tolerance accepts it.
fn max_abs_diff(got: &[f32], want: &[f32]) -> f32 {
    got.iter().zip(want).fold(0.0f32, |m, (&a, &b)| {
        if m.is_nan() || a.is_nan() != b.is_nan() {
            return f32::NAN;
        }
        if a.is_nan() {
            m
        } else {
            m.max((a - b).abs())
        }
    })
}

/// How [`run_case_with`] runs a case.
#[derive(Debug)]
pub enum RunMode<'a> {
    /// [`Rnn::run`] on the calling thread.
    Run,
    /// [`crate::Team::run`] on this team.
    Team(&'a mut crate::Team),
    /// A forward model's batch entries as the streams of a
    /// [`crate::Streams`] pool (each joining with its initial state),
    /// stepped together one time step at a time (entry `b` only while
    /// `t < lengths[b]`), on the team if one is given; other models run as
    /// in [`RunMode::Run`] (or on the team).
    Streams(Option<&'a mut crate::Team>),
}

/// Runs a case with kernel family `family` and compares every output.
pub fn run_case(case: &Case, family: KernelFamily) -> Result<CaseResult> {
    run_case_with(case, family, RunMode::Run)
}

/// A forward case's batch entries stepped as streams of a pool: the
/// output `[T, B, Hout]` (0 past an entry's length) and the final state.
fn run_as_streams(
    case: &Case,
    model: &Rnn,
    mut team: Option<&mut crate::Team>,
) -> Result<(Vec<f32>, State)> {
    let cfg = model.config();
    let (t_len, b, l) = (case.seq_len, case.batch, cfg.num_layers);
    let (hs, hout, inp) = (cfg.hidden_size, cfg.output_size(), cfg.input_size);
    let lstm = cfg.cell == Cell::Lstm;
    let mut pool = crate::Streams::new(model, b.max(1))?;
    let mut ids = Vec::with_capacity(b);
    for e in 0..b {
        let mut st = model.new_state(1)?;
        for k in 0..l {
            st.h[k * hout..(k + 1) * hout]
                .copy_from_slice(&case.initial.h[(k * b + e) * hout..][..hout]);
            if lstm {
                st.c[k * hs..(k + 1) * hs]
                    .copy_from_slice(&case.initial.c[(k * b + e) * hs..][..hs]);
            }
        }
        ids.push(pool.join_with(&st)?);
    }
    let len = |e: usize| case.lengths.as_ref().map_or(t_len, |v| v[e]);
    let mut out = vec![0.0; t_len * b * hout];
    let (mut x, mut y, mut step_ids) = (Vec::new(), Vec::new(), Vec::new());
    for t in 0..t_len {
        x.clear();
        step_ids.clear();
        for e in (0..b).filter(|&e| t < len(e)) {
            x.extend_from_slice(&case.input[(t * b + e) * inp..][..inp]);
            step_ids.push(ids[e]);
        }
        y.clear();
        y.resize(step_ids.len() * hout, f32::NAN);
        match team.as_deref_mut() {
            Some(tm) => tm.step_streams(model, &mut pool, &step_ids, &x, &mut y)?,
            None => pool.step(model, &step_ids, &x, &mut y)?,
        }
        for (j, e) in (0..b).filter(|&e| t < len(e)).enumerate() {
            out[(t * b + e) * hout..][..hout].copy_from_slice(&y[j * hout..(j + 1) * hout]);
        }
    }
    let mut state = model.new_state(b)?;
    for (e, &id) in ids.iter().enumerate() {
        // An explicit length of 0 ends with a zero state (as `run`).
        if case.lengths.is_some() && len(e) == 0 {
            continue;
        }
        let st = pool.state(id)?;
        for k in 0..l {
            state.h[(k * b + e) * hout..][..hout].copy_from_slice(&st.h[k * hout..(k + 1) * hout]);
            if lstm {
                state.c[(k * b + e) * hs..][..hs].copy_from_slice(&st.c[k * hs..(k + 1) * hs]);
            }
        }
    }
    if t_len == 0 && case.lengths.is_none() {
        state = case.initial.clone();
    }
    Ok((out, state))
}

/// Runs a case with kernel family `family` in `mode` and compares every
/// output.
pub fn run_case_with(case: &Case, family: KernelFamily, mode: RunMode<'_>) -> Result<CaseResult> {
    let model = case.model.clone().with_kernel(family)?;
    let seq = Sequence {
        input: &case.input,
        seq_len: case.seq_len,
        batch: case.batch,
        layout: Layout::SequenceMajor,
        lengths: case.lengths.as_deref(),
    };
    let forward = model.config().direction == Direction::Forward;
    let mut state = case.initial.clone();
    let mut out = vec![f32::NAN; case.seq_len * case.batch * model.output_features()];
    match mode {
        RunMode::Streams(team) if forward => (out, state) = run_as_streams(case, &model, team)?,
        RunMode::Team(team) | RunMode::Streams(Some(team)) => {
            team.run(&model, &seq, &mut state, &mut out, &mut Workspace::new())?
        }
        RunMode::Run | RunMode::Streams(None) => {
            model.run(&seq, &mut state, &mut out, &mut Workspace::new())?
        }
    }
    let cfg = model.config();
    let (t, b, d, hout) = (
        case.seq_len,
        case.batch,
        cfg.num_directions(),
        cfg.output_size(),
    );
    let errors = case
        .expected
        .iter()
        .map(|(name, target, want)| {
            let err = match target {
                Target::Output => max_abs_diff(&out, want),
                Target::FinalH => max_abs_diff(state.h(), want),
                Target::FinalC => max_abs_diff(state.c(), want),
                Target::OnnxY => {
                    // Y[t, d, b, j] = out[t, b, d*H + j]
                    let mut y = vec![0.0; out.len()];
                    for ti in 0..t {
                        for di in 0..d {
                            for bi in 0..b {
                                let src = &out[(ti * b + bi) * d * hout + di * hout..][..hout];
                                y[((ti * d + di) * b + bi) * hout..][..hout].copy_from_slice(src);
                            }
                        }
                    }
                    max_abs_diff(&y, want)
                }
            };
            (name.clone(), err)
        })
        .collect();
    Ok(CaseResult { errors })
}
