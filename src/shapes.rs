//! The standard benchmark shapes (batch 1 at H = 64..1024, batches of 16 and
//! 64, one streaming step), shared by the criterion
//! benches and the `bench` example so both measure the same thing.

use std::sync::{Mutex, PoisonError};

use crate::config::{Cell, Config};
use crate::error::{Error, Result};
use crate::model::Rnn;
use crate::weights::DirectionWeights;

/// One standard shape: cell, H (= I), batch B, time steps T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The shape's name, e.g. `lstm-h256-b1`.
    pub name: &'static str,
    /// LSTM or GRU.
    pub cell: Cell,
    /// Hidden size H; the input size I is the same.
    pub hidden: usize,
    /// Batch B.
    pub batch: usize,
    /// Time steps T (1 for a streaming step).
    pub steps: usize,
    /// True for a streaming step (`Rnn::step`) instead of a sequence run.
    pub streaming: bool,
}

const fn seq(name: &'static str, cell: Cell, hidden: usize, batch: usize) -> Shape {
    Shape {
        name,
        cell,
        hidden,
        batch,
        steps: 100,
        streaming: false,
    }
}

/// `name` as a `&'static str`: one copy per distinct name, owned by a
/// process-wide table (so it is never freed, and never unreachable).
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.push(n);
    n
}

/// The largest H [`Shape::parse`] accepts.
pub const MAX_PARSED_HIDDEN: usize = 4096;
/// The largest B [`Shape::parse`] accepts.
pub const MAX_PARSED_BATCH: usize = 4096;

/// Every standard shape.
pub const STANDARD: &[Shape] = &[
    seq("lstm-h64-b1", Cell::Lstm, 64, 1),
    seq("lstm-h128-b1", Cell::Lstm, 128, 1),
    seq("lstm-h256-b1", Cell::Lstm, 256, 1),
    seq("lstm-h512-b1", Cell::Lstm, 512, 1),
    seq("lstm-h1024-b1", Cell::Lstm, 1024, 1),
    seq("gru-h64-b1", Cell::Gru, 64, 1),
    seq("gru-h256-b1", Cell::Gru, 256, 1),
    seq("gru-h1024-b1", Cell::Gru, 1024, 1),
    seq("lstm-h256-b16", Cell::Lstm, 256, 16),
    seq("lstm-h256-b64", Cell::Lstm, 256, 64),
    Shape {
        name: "lstm-h512-step",
        cell: Cell::Lstm,
        hidden: 512,
        batch: 1,
        steps: 1,
        streaming: true,
    },
];

impl Shape {
    /// Looks a shape up by name.
    pub fn by_name(name: &str) -> Result<Shape> {
        STANDARD
            .iter()
            .copied()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::InvalidAttribute {
                name: "shape".into(),
                reason: format!("unknown shape `{name}`"),
            })
    }

    /// A standard shape by name, or any shape named like them:
    /// `lstm-h{H}-b{B}` / `gru-h{H}-b{B}` (I = H, T = 100 steps) and
    /// `lstm-h{H}-step` / `gru-h{H}-step` (one streaming step), with H in
    /// 1..=[`MAX_PARSED_HIDDEN`] and B in 1..=[`MAX_PARSED_BATCH`] (a
    /// tool's bounds: the model's W and R alone are 4 x G x H^2 bytes). A
    /// name outside the standard set is kept in a process-wide table to
    /// give the `&'static str` the shape holds (each distinct name once;
    /// meant for tools that parse their arguments, not for a hot path).
    ///
    /// # Errors
    /// [`Error::InvalidAttribute`] (`shape`) for any other name.
    pub fn parse(name: &str) -> Result<Shape> {
        if let Ok(s) = Shape::by_name(name) {
            return Ok(s);
        }
        let bad = || {
            Error::InvalidAttribute {
            name: "shape".into(),
            reason: format!(
                "unknown shape `{name}` (standard names, or lstm|gru-h<H>-b<B> / -h<H>-step with H <= {MAX_PARSED_HIDDEN}, B <= {MAX_PARSED_BATCH})"
            ),
        }
        };
        let mut parts = name.split('-');
        let cell = match parts.next() {
            Some("lstm") => Cell::Lstm,
            Some("gru") => Cell::Gru,
            _ => return Err(bad()),
        };
        let num = |p: Option<&str>, prefix: char, max: usize| {
            p.and_then(|p| p.strip_prefix(prefix))
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|&v| (1..=max).contains(&v))
        };
        let hidden = num(parts.next(), 'h', MAX_PARSED_HIDDEN).ok_or_else(bad)?;
        let last = parts.next();
        let (batch, steps, streaming) = if last == Some("step") {
            (1, 1, true)
        } else {
            (
                num(last, 'b', MAX_PARSED_BATCH).ok_or_else(bad)?,
                100,
                false,
            )
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Shape {
            name: intern(name),
            cell,
            hidden,
            batch,
            steps,
            streaming,
        })
    }

    /// A model of this shape with deterministic weights in
    /// `U(-1/sqrt(H), 1/sqrt(H))` (PyTorch's initialisation).
    pub fn model(&self) -> Rnn {
        let (h, g) = (self.hidden, self.cell.gates());
        let cfg = Config::new(self.cell, h, h);
        let scale = 1.0 / (h as f32).sqrt();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut v = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    ((rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
                })
                .collect()
        };
        let w = DirectionWeights {
            w: v(g * h * h),
            r: v(g * h * h),
            wb: v(g * h),
            rb: v(g * h),
            peepholes: None,
            proj: None,
        };
        Rnn::new(cfg, vec![w]).expect("standard shapes are valid")
    }

    /// A deterministic input `[T, B, I]` in `[-1, 1)`.
    pub fn input(&self) -> Vec<f32> {
        (0..self.steps * self.batch * self.hidden)
            .map(|k| ((k * 7919 % 2000) as f32 / 1000.0) - 1.0)
            .collect()
    }

    /// Multiply-adds of one time step for the whole batch: the input part
    /// and the recurrent part, `2 * G * H * (I + H) * B` flops.
    pub fn flops_per_step(&self) -> f64 {
        let g = self.cell.gates() as f64;
        let h = self.hidden as f64;
        2.0 * g * h * (2.0 * h) * self.batch as f64
    }
}

/// How far a weight format moves a shape's outputs: the shape's model (its
/// cell, H = I, batch B) run for 100 steps on [`Shape::input`] from zero
/// states, in `format` and in f32, both on `family`; returns the max and
/// the mean of `|y_format - y_f32|` over every output (`[100, B, H]`).
/// (The f32 fast kernels are within ~1e-6 of the scalar reference here, so
/// this is the format's own error.) A `-step` shape is measured as 100
/// steps of its model.
///
/// # Errors
/// [`Error::KernelUnavailable`] if this host cannot run `family`.
pub fn format_error(
    shape: &Shape,
    format: crate::WeightFormat,
    family: crate::KernelFamily,
) -> Result<(f32, f32)> {
    let seq_shape = Shape {
        steps: 100,
        streaming: false,
        ..*shape
    };
    let x = seq_shape.input();
    let run = |m: Rnn| -> Result<Vec<f32>> {
        let seq = crate::Sequence::new(&x, seq_shape.steps, seq_shape.batch);
        Ok(m.forward(&seq, None)?.0)
    };
    let base = shape.model().with_kernel(family)?;
    let y32 = run(base.clone())?;
    let y = run(base.with_weight_format(format)?)?;
    let (mut max, mut sum) = (0.0f32, 0.0f64);
    for (a, b) in y.iter().zip(&y32) {
        let d = (a - b).abs();
        max = if d.is_nan() {
            f32::INFINITY
        } else {
            max.max(d)
        };
        sum += f64::from(d);
    }
    Ok((max, (sum / y.len().max(1) as f64) as f32))
}

/// The host's FMA peak for one kernel family's ISA, in GFLOP/s of one core:
/// twelve independent chains of vector FMAs kept in registers (no memory
/// traffic), the best of 7 timed runs of about 0.8 GFLOP each at 16 lanes.
/// The bound the batched kernels are measured against (`bench --peak`).
///
/// # Errors
/// [`Error::KernelUnavailable`] if this host cannot run the family.
pub fn fma_peak_gflops(family: crate::KernelFamily) -> Result<f64> {
    let token = crate::kernels::entries::Token(crate::family::select(family)?);
    let iters = 2_000_000;
    std::hint::black_box(token.fma_chains(iters / 10));
    let mut best = 0.0f64;
    for _ in 0..7 {
        let t0 = std::time::Instant::now();
        let (flops, sum) = token.fma_chains(std::hint::black_box(iters));
        std::hint::black_box(sum);
        best = best.max(flops / t0.elapsed().as_nanos().max(1) as f64);
    }
    Ok(best)
}

/// The median of `v` (the upper one for an even length; NaN sorts last).
///
/// # Panics
/// If `v` is empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The benchmark tools' timing rule: one warm-up call of `f`, then calls
/// until at least 15 were timed and `min_secs` have passed (at most 10^6),
/// and the median time of one call in nanoseconds.
pub fn median_ns(min_secs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = std::time::Instant::now();
    while (times.len() < 15 || start.elapsed().as_secs_f64() < min_secs) && times.len() < 1_000_000
    {
        let t0 = std::time::Instant::now();
        f();
        times.push(t0.elapsed().as_nanos() as f64);
    }
    median(&mut times)
}
