//! A sequence classifier trained in PyTorch (`examples/train_digits.py`),
//! run by fusedrnn, and its PyTorch test-set outputs.
//!
//! Shared by the `digits` example and `tests/digits.rs`, so the test checks
//! exactly what the example prints.
//!
//! Files (written by `examples/train_digits.py`):
//! - `<model>.safetensors`: the PyTorch `state_dict` of a module with an
//!   `nn.LSTM` or `nn.GRU` named `rnn` and an `nn.Linear` named `fc`.
//!   The head reads the last layer's final hidden state (`h_n[-D:]`, the
//!   forward direction first), `[D*Hout]` -> `fc.weight` `[C, D*Hout]`,
//!   `fc.bias` `[C]` -> C logits. The cell type is read off the shapes.
//! - `test.safetensors`: `x` f32 `[N, T, I]` (batch-first, preprocessed),
//!   `label` int `[N]`, and per model `<model>.logits` f32 `[N, C]` and
//!   `<model>.pred` int `[N]` as PyTorch computed them.

use std::error::Error;
use std::path::{Path, PathBuf};

use fusedrnn::import::pytorch::{self, PytorchOptions};
use fusedrnn::import::safetensors::TensorFile;
use fusedrnn::{Cell, KernelFamily, Layout, Rnn, Sequence, State, Workspace};

/// Boxed error with a message naming the file.
pub type Res<T> = Result<T, Box<dyn Error>>;

/// Name prefix of the RNN's entries in the classifier's `state_dict`.
pub const RNN_PREFIX: &str = "rnn.";

/// The model files in `dir`: every `*.safetensors` but `test.safetensors`,
/// sorted by name.
pub fn model_files(dir: &Path) -> Res<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        let is_st = path.extension().is_some_and(|e| e == "safetensors");
        if is_st && path.file_stem().is_some_and(|s| s != "test") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// An RNN plus a linear head, with its own batch-1 state, workspace and
/// buffers so that [`Classifier::logits`] allocates nothing.
#[derive(Clone)]
pub struct Classifier {
    /// The file stem, e.g. `digits-lstm`.
    pub name: String,
    /// The recurrent part.
    pub rnn: Rnn,
    fc_w: Vec<f32>,
    fc_b: Vec<f32>,
    state: State,
    ws: Workspace,
    out: Vec<f32>,
    logits: Vec<f32>,
    batch_state: State,
    batch_out: Vec<f32>,
}

impl Classifier {
    /// Loads `<model>.safetensors`; the kernel family is the one this CPU
    /// dispatches to.
    pub fn load(path: &Path) -> Res<Classifier> {
        let ctx = |e: fusedrnn::Error| format!("{}: {e}", path.display());
        let file = TensorFile::open(path).map_err(ctx)?;
        let cell: Cell = pytorch::detect_cell(&file, RNN_PREFIX).map_err(ctx)?;
        let opts = PytorchOptions {
            cell,
            prefix: RNN_PREFIX.into(),
        };
        let rnn = pytorch::from_state_dict(&file, &opts).map_err(ctx)?;
        let w = file.f32("fc.weight").map_err(ctx)?;
        let b = file.f32("fc.bias").map_err(ctx)?;
        let feats = rnn.output_features();
        let classes = b.data.len();
        if b.shape.len() != 1 || w.shape != [classes, feats] {
            return Err(format!(
                "{}: fc.weight {:?} and fc.bias {:?} do not fit {feats} RNN features",
                path.display(),
                w.shape,
                b.shape
            )
            .into());
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let state = rnn.new_state(1)?;
        let batch_state = rnn.new_state(0)?;
        Ok(Classifier {
            name,
            rnn,
            fc_w: w.data,
            fc_b: b.data,
            state,
            ws: Workspace::new(),
            out: Vec::new(),
            logits: vec![0.0; classes],
            batch_state,
            batch_out: Vec::new(),
        })
    }

    /// The classifier from `<model>.onnx` beside `path` (`<model>.safetensors`):
    /// the RNN from the graph's LSTM/GRU node(s) (`import::onnx`; the
    /// 2-layer LSTM is two stacked nodes), the head from its `fc.weight`
    /// and `fc.bias` initializers. Written by `examples/train_digits.py
    /// --onnx` (`torch.onnx.export`).
    pub fn load_onnx(path: &Path) -> Res<Classifier> {
        let onnx_path = path.with_extension("onnx");
        let ctx = |e: fusedrnn::Error| format!("{}: {e}", onnx_path.display());
        let file = fusedrnn::import::onnx::open(&onnx_path).map_err(ctx)?;
        let (builder, _) = file.model_builder().map_err(ctx)?;
        let rnn = builder.build().map_err(ctx)?;
        let w = file.initializer("fc.weight").map_err(ctx)?;
        let b = file.initializer("fc.bias").map_err(ctx)?;
        let mut c = Classifier::load(path)?;
        if w.data.len() != c.fc_w.len() || b.data.len() != c.fc_b.len() {
            return Err(format!("{}: head of other sizes", onnx_path.display()).into());
        }
        c.state = rnn.new_state(1)?;
        c.batch_state = rnn.new_state(0)?;
        c.rnn = rnn;
        c.fc_w = w.data;
        c.fc_b = b.data;
        c.ws = Workspace::new();
        Ok(c)
    }

    /// The same classifier on another kernel family (`Reference` for the
    /// scalar oracle).
    pub fn with_kernel(&self, family: KernelFamily) -> Res<Classifier> {
        let mut c = self.clone();
        c.rnn = c.rnn.with_kernel(family)?;
        c.ws = Workspace::new();
        Ok(c)
    }

    /// The same classifier with its RNN's weight matrices in `format`
    /// (the linear head stays f32).
    pub fn with_weights(&self, format: fusedrnn::WeightFormat) -> Res<Classifier> {
        let mut c = self.clone();
        c.rnn = c.rnn.with_weight_format(format)?;
        c.ws = Workspace::new();
        Ok(c)
    }

    /// Number of classes (logits per sample).
    pub fn classes(&self) -> usize {
        self.fc_b.len()
    }

    /// The logits of one sample `x` `[T, I]` (batch 1, from a zero state).
    pub fn logits(&mut self, x: &[f32]) -> Res<&[f32]> {
        let input = self.rnn.config().input_size;
        if input == 0 || !x.len().is_multiple_of(input) {
            return Err(format!("sample of {} values is not [T, {input}]", x.len()).into());
        }
        let t = x.len() / input;
        let need = t * self.rnn.output_features();
        if self.out.len() != need {
            self.out.resize(need, 0.0);
        }
        self.state.reset();
        self.rnn.run(
            &Sequence::new(x, t, 1),
            &mut self.state,
            &mut self.out,
            &mut self.ws,
        )?;
        // State h is [L*D, 1, Hout]; the last D rows are the last layer's
        // directions in PyTorch's h_n order (forward, then reverse).
        let feats = self.rnn.output_features();
        let h = self.state.h();
        head(
            &self.fc_w,
            &self.fc_b,
            &h[h.len() - feats..],
            &mut self.logits,
        );
        Ok(&self.logits)
    }

    /// The logits `[N, C]` of a whole batch `x` `[N, T, I]` (batch-first)
    /// run as one batch: one call, the batched kernel tiles. Its buffers
    /// are kept for the next call of the same size (only `logits` is new).
    pub fn logits_batch(&mut self, x: &[f32], samples: usize) -> Res<Vec<f32>> {
        let input = self.rnn.config().input_size;
        if samples == 0 || input == 0 || !x.len().is_multiple_of(samples * input) {
            return Err(format!("{} values are not [{samples}, T, {input}]", x.len()).into());
        }
        let t = x.len() / (samples * input);
        let seq = Sequence {
            layout: Layout::BatchMajor,
            ..Sequence::new(x, t, samples)
        };
        if self.batch_state.batch() != samples {
            self.batch_state = self.rnn.new_state(samples)?;
        }
        self.batch_state.reset();
        self.batch_out
            .resize(t * samples * self.rnn.output_features(), 0.0);
        self.rnn.run(
            &seq,
            &mut self.batch_state,
            &mut self.batch_out,
            &mut self.ws,
        )?;
        // h is [L*D, N, Hout]: the last layer's directions are the last D
        // blocks of N rows; sample k's features are row k of each.
        let (feats, hout) = (self.rnn.output_features(), self.rnn.config().output_size());
        let dirs = feats / hout;
        let h = self.batch_state.h();
        let last = &h[h.len() - dirs * samples * hout..];
        let classes = self.classes();
        let mut logits = vec![0.0; samples * classes];
        let mut f = vec![0.0; feats];
        for k in 0..samples {
            for d in 0..dirs {
                f[d * hout..][..hout].copy_from_slice(&last[(d * samples + k) * hout..][..hout]);
            }
            head(
                &self.fc_w,
                &self.fc_b,
                &f,
                &mut logits[k * classes..][..classes],
            );
        }
        Ok(logits)
    }
}

/// The linear head: `out[c] = b[c] + w[c, :] . feats`, summed in f64.
fn head(w: &[f32], b: &[f32], feats: &[f32], out: &mut [f32]) {
    for (c, logit) in out.iter_mut().enumerate() {
        let row = &w[c * feats.len()..][..feats.len()];
        let dot: f64 = row
            .iter()
            .zip(feats)
            .map(|(&w, &v)| f64::from(w) * f64::from(v))
            .sum();
        *logit = (f64::from(b[c]) + dot) as f32;
    }
}

/// Index of the largest value, the first one on ties (as `torch.argmax`).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The test split and PyTorch's outputs on it.
pub struct TestSet {
    /// `[N, T, I]`, batch-first.
    pub x: Vec<f32>,
    /// `[N]`.
    pub labels: Vec<i64>,
    /// N.
    pub samples: usize,
    /// Values per sample, `T * I`.
    pub sample_len: usize,
    /// Steps per sample, T.
    pub seq_len: usize,
    file: TensorFile,
    path: PathBuf,
}

/// PyTorch's outputs for one model.
pub struct Expected {
    /// `[N, C]`.
    pub logits: Vec<f32>,
    /// `[N]`.
    pub pred: Vec<i64>,
}

impl TestSet {
    /// Loads `dir/test.safetensors`.
    pub fn load(dir: &Path) -> Res<TestSet> {
        let path = dir.join("test.safetensors");
        let ctx = |e: fusedrnn::Error| format!("{}: {e}", path.display());
        let file = TensorFile::open(&path).map_err(ctx)?;
        let x = file.f32("x").map_err(ctx)?;
        let (lshape, labels) = file
            .i64("label")
            .map_err(ctx)?
            .ok_or_else(|| format!("{}: no `label`", path.display()))?;
        let &[n, t, i] = x.shape.as_slice() else {
            return Err(format!("{}: x is {:?}, not [N, T, I]", path.display(), x.shape).into());
        };
        if lshape != [n] {
            return Err(format!("{}: label is {lshape:?}, not [{n}]", path.display()).into());
        }
        Ok(TestSet {
            x: x.data,
            labels,
            samples: n,
            sample_len: t * i,
            seq_len: t,
            file,
            path,
        })
    }

    /// Sample `k`, `[T, I]`.
    pub fn sample(&self, k: usize) -> &[f32] {
        &self.x[k * self.sample_len..][..self.sample_len]
    }

    /// PyTorch's logits and predictions for `model` with `classes` classes.
    pub fn expected(&self, model: &str, classes: usize) -> Res<Expected> {
        let p = self.path.display();
        let name = format!("{model}.logits");
        let logits = self.file.f32(&name).map_err(|e| format!("{p}: {e}"))?;
        if logits.shape != [self.samples, classes] {
            return Err(format!(
                "{p}: {name} is {:?}, not [{}, {classes}]",
                logits.shape, self.samples
            )
            .into());
        }
        let name = format!("{model}.pred");
        let (shape, pred) = self
            .file
            .i64(&name)
            .map_err(|e| format!("{p}: {e}"))?
            .ok_or_else(|| format!("{p}: no `{name}`"))?;
        if shape != [self.samples] {
            return Err(format!("{p}: {name} is {shape:?}, not [{}]", self.samples).into());
        }
        Ok(Expected {
            logits: logits.data,
            pred,
        })
    }
}

/// How a classifier did on the test set, compared with PyTorch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Test samples, N.
    pub samples: usize,
    /// Predictions equal to the label.
    pub correct: usize,
    /// Predictions equal to PyTorch's, K.
    pub identical: usize,
    /// Largest |logit - PyTorch's logit| over all samples and classes
    /// (infinite if any logit is NaN).
    pub max_logit_diff: f32,
}

impl Report {
    /// Accuracy in percent.
    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.samples.max(1) as f64
    }

    /// The line the example prints, in the form scripts parse.
    pub fn line(&self, model: &str) -> String {
        format!(
            "{model}: accuracy {:.2}% on {} test samples; predictions identical to PyTorch: {}/{}; max logit difference {:.2e}",
            self.accuracy(),
            self.samples,
            self.identical,
            self.samples,
            self.max_logit_diff
        )
    }
}

/// Runs every test sample through `clf` (batch 1) and compares with PyTorch.
pub fn evaluate(clf: &mut Classifier, test: &TestSet) -> Res<Report> {
    let exp = test.expected(&clf.name, clf.classes())?;
    let classes = clf.classes();
    let mut report = Report {
        samples: test.samples,
        correct: 0,
        identical: 0,
        max_logit_diff: 0.0,
    };
    for k in 0..test.samples {
        let logits = clf.logits(test.sample(k))?;
        let want = &exp.logits[k * classes..][..classes];
        for (a, b) in logits.iter().zip(want) {
            let d = (a - b).abs();
            report.max_logit_diff = if d.is_nan() {
                f32::INFINITY
            } else {
                report.max_logit_diff.max(d)
            };
        }
        let pred = argmax(logits) as i64;
        report.correct += usize::from(pred == test.labels[k]);
        report.identical += usize::from(pred == exp.pred[k]);
    }
    Ok(report)
}
