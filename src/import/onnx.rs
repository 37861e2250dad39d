//! ONNX `LSTM` / `GRU` operators (opset 14, `layout=0`): tensors `W`, `R`,
//! `B`, `P` and the attributes.
//!
//! ONNX gate order: LSTM `i, o, f, c`; GRU `z, r, h`. Weights are
//! `[D, G*H, In]` / `[D, G*H, H]`, `B` is `[D, 2*G*H]` = `[Wb ‖ Rb]`, `P` is
//! `[D, 3*H]` in the order `i, o, f`.
//!
//! `.onnx` files: [`load`] / [`from_bytes`] for a file with one LSTM or GRU
//! node, [`open`] / [`parse`] and [`OnnxFile::node`] / [`OnnxFile::rnn`]
//! to list and pick among several (see [`OnnxFile`] for what is accepted).

pub use super::onnx_file::{from_bytes, load, open, parse, NodeIo, OnnxFile, OnnxNode};
use super::{reorder_rows, TensorView};
use crate::builder::RnnBuilder;
use crate::config::{Activation, Activations, Cell, Config, Direction, GruReset};
use crate::error::{attr_err, Result};
use crate::model::Rnn;
use crate::weights::DirectionWeights;

/// ONNX LSTM block order `i, o, f, c` → canonical `i, f, g, o`.
pub const LSTM_ORDER: [usize; 4] = [0, 2, 3, 1];
/// ONNX GRU block order `z, r, h` → canonical `z, r, n`.
pub const GRU_ORDER: [usize; 3] = [0, 1, 2];

/// The attributes of an ONNX RNN node.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxAttributes {
    /// `direction`: forward, reverse or bidirectional.
    pub direction: Direction,
    /// `hidden_size`; when given it must agree with `R`.
    pub hidden_size: Option<usize>,
    /// `clip`, if set.
    pub clip: Option<f32>,
    /// `input_forget` (LSTM).
    pub input_forget: bool,
    /// `linear_before_reset` (GRU): true is reset after the matmul.
    pub linear_before_reset: bool,
    /// `activations` (names); empty for the defaults. LSTM takes 3 per
    /// direction (f, g, h), GRU 2 (f, g), forward first.
    pub activations: Vec<String>,
    /// `activation_alpha`, consumed in list order by functions that use it.
    pub activation_alpha: Vec<f32>,
    /// `activation_beta`, likewise.
    pub activation_beta: Vec<f32>,
}

impl Default for OnnxAttributes {
    fn default() -> Self {
        OnnxAttributes {
            direction: Direction::Forward,
            hidden_size: None,
            clip: None,
            input_forget: false,
            linear_before_reset: false,
            activations: Vec::new(),
            activation_alpha: Vec::new(),
            activation_beta: Vec::new(),
        }
    }
}

impl OnnxAttributes {
    /// Parses ONNX's `direction` string.
    pub fn parse_direction(s: &str) -> Result<Direction> {
        match s {
            "forward" => Ok(Direction::Forward),
            "reverse" => Ok(Direction::Reverse),
            "bidirectional" => Ok(Direction::Bidirectional),
            other => Err(attr_err("direction", format!("unknown value `{other}`"))),
        }
    }

    fn activation_sets(&self, cell: Cell, dirs: usize) -> Result<[Activations; 2]> {
        let mut sets = [Activations::default(); 2];
        if self.activations.is_empty() {
            if !self.activation_alpha.is_empty() || !self.activation_beta.is_empty() {
                return Err(attr_err("activation_alpha", "given without `activations`"));
            }
            return Ok(sets);
        }
        let per = match cell {
            Cell::Lstm => 3,
            Cell::Gru => 2,
        };
        if self.activations.len() != per * dirs {
            return Err(attr_err(
                "activations",
                format!(
                    "expected {} names ({per} per direction), got {}",
                    per * dirs,
                    self.activations.len()
                ),
            ));
        }
        let mut alphas = self.activation_alpha.iter().copied();
        let mut betas = self.activation_beta.iter().copied();
        let mut parsed = Vec::with_capacity(self.activations.len());
        for name in &self.activations {
            parsed.push(Activation::from_onnx(name, &mut alphas, &mut betas)?);
        }
        if alphas.next().is_some() || betas.next().is_some() {
            return Err(attr_err(
                "activation_alpha/beta",
                "more values than the activation functions use",
            ));
        }
        for (d, set) in sets.iter_mut().enumerate().take(dirs) {
            let f = &parsed[d * per..(d + 1) * per];
            set.f = f[0];
            set.g = f[1];
            if per == 3 {
                set.h = f[2];
            }
        }
        Ok(sets)
    }
}

fn build(
    cell: Cell,
    w: TensorView<'_>,
    r: TensorView<'_>,
    b: Option<TensorView<'_>>,
    p: Option<TensorView<'_>>,
    attrs: &OnnxAttributes,
) -> Result<RnnBuilder> {
    let g = cell.gates();
    let dirs = attrs.direction.count();
    let [wd, gh, input] = w.dims::<3>("W")?;
    let [_, _, hidden] = r.dims::<3>("R")?;
    // Checked: the shapes are the file's. Once `R` is `[D, G*H, H]` its
    // data bound H, and `Config::validate` below bounds I.
    if hidden == 0 || Some(gh) != hidden.checked_mul(g) {
        return Err(crate::Error::Shape {
            what: "R".into(),
            expected: vec![dirs, hidden.max(1).saturating_mul(g), hidden.max(1)],
            got: r.shape.to_vec(),
        });
    }
    if let Some(hs) = attrs.hidden_size {
        if hs != hidden {
            return Err(attr_err(
                "hidden_size",
                format!("{hs} disagrees with R's {hidden}"),
            ));
        }
    }
    if wd != dirs {
        return Err(crate::Error::Shape {
            what: "W (first dimension is the number of directions)".into(),
            expected: vec![dirs, gh, input],
            got: w.shape.to_vec(),
        });
    }
    r.expect("R", &[dirs, gh, hidden])?;
    Config::new(cell, input, hidden).validate()?;
    if let Some(b) = b {
        b.expect("B", &[dirs, 2 * gh])?;
    }
    if let Some(p) = p {
        if cell != Cell::Lstm {
            return Err(attr_err("P", "peepholes are an LSTM input"));
        }
        p.expect("P", &[dirs, 3 * hidden])?;
    }
    let order: &[usize] = match cell {
        Cell::Lstm => &LSTM_ORDER,
        Cell::Gru => &GRU_ORDER,
    };
    let mut cfg = Config::new(cell, input, hidden);
    cfg.direction = attrs.direction;
    cfg.clip = attrs.clip;
    cfg.input_forget = attrs.input_forget;
    if cell == Cell::Lstm && attrs.linear_before_reset {
        return Err(attr_err("linear_before_reset", "is a GRU attribute"));
    }
    // An LSTM keeps `Config::new`'s value (the field means nothing there),
    // so an LSTM from ONNX and one from PyTorch have equal configurations.
    if cell == Cell::Gru {
        cfg.gru_reset = if attrs.linear_before_reset {
            GruReset::AfterMatmul
        } else {
            GruReset::BeforeMatmul
        };
    }
    cfg.activations = attrs.activation_sets(cell, dirs)?;
    let mut weights = Vec::with_capacity(dirs);
    for d in 0..dirs {
        let wdat = &w.data[d * gh * input..(d + 1) * gh * input];
        let rdat = &r.data[d * gh * hidden..(d + 1) * gh * hidden];
        let (wb, rb) = match b {
            Some(b) => {
                let bd = &b.data[d * 2 * gh..(d + 1) * 2 * gh];
                (
                    reorder_rows(&bd[..gh], hidden, 1, order),
                    reorder_rows(&bd[gh..], hidden, 1, order),
                )
            }
            None => (vec![0.0; gh], vec![0.0; gh]),
        };
        let peepholes = p.map(|p| {
            let pd = &p.data[d * 3 * hidden..(d + 1) * 3 * hidden];
            // ONNX i, o, f → canonical i, f, o.
            reorder_rows(pd, hidden, 1, &[0, 2, 1])
        });
        weights.push(DirectionWeights {
            w: reorder_rows(wdat, hidden, input, order),
            r: reorder_rows(rdat, hidden, hidden, order),
            wb,
            rb,
            peepholes,
            proj: None,
        });
    }
    Ok(RnnBuilder::new(cfg, weights))
}

/// Builds an LSTM from ONNX tensors: `w` `[D, 4H, I]`, `r` `[D, 4H, H]`,
/// optional `b` `[D, 8H]` and `p` `[D, 3H]`, gate order `i, o, f, c`.
///
/// # Errors
/// [`crate::Error::Shape`] for misshapen tensors,
/// [`crate::Error::InvalidAttribute`] for bad attributes; as
/// [`RnnBuilder::build`].
pub fn lstm(
    w: TensorView<'_>,
    r: TensorView<'_>,
    b: Option<TensorView<'_>>,
    p: Option<TensorView<'_>>,
    attrs: &OnnxAttributes,
) -> Result<Rnn> {
    lstm_builder(w, r, b, p, attrs)?.build()
}

/// [`lstm`] as an [`RnnBuilder`]: choose the kernel family and weight
/// format before the weights are packed.
///
/// # Errors
/// As for [`lstm`], except those of packing.
pub fn lstm_builder(
    w: TensorView<'_>,
    r: TensorView<'_>,
    b: Option<TensorView<'_>>,
    p: Option<TensorView<'_>>,
    attrs: &OnnxAttributes,
) -> Result<RnnBuilder> {
    build(Cell::Lstm, w, r, b, p, attrs)
}

/// Builds a GRU from ONNX tensors: `w` `[D, 3H, I]`, `r` `[D, 3H, H]`,
/// optional `b` `[D, 6H]`, gate order `z, r, h`; `linear_before_reset`
/// picks the reset placement.
///
/// # Errors
/// As for [`lstm`].
pub fn gru(
    w: TensorView<'_>,
    r: TensorView<'_>,
    b: Option<TensorView<'_>>,
    attrs: &OnnxAttributes,
) -> Result<Rnn> {
    gru_builder(w, r, b, attrs)?.build()
}

/// [`gru`] as an [`RnnBuilder`].
///
/// # Errors
/// As for [`gru`], except those of packing.
pub fn gru_builder(
    w: TensorView<'_>,
    r: TensorView<'_>,
    b: Option<TensorView<'_>>,
    attrs: &OnnxAttributes,
) -> Result<RnnBuilder> {
    if attrs.input_forget {
        return Err(attr_err("input_forget", "is an LSTM attribute"));
    }
    build(Cell::Gru, w, r, b, None, attrs)
}
