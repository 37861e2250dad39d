//! PyTorch `nn.LSTM` / `nn.GRU` `state_dict` tensors.
//!
//! Names: `weight_ih_l{k}` `[G*H, In]`, `weight_hh_l{k}` `[G*H, Hout]`,
//! `bias_ih_l{k}`, `bias_hh_l{k}` `[G*H]`, `weight_hr_l{k}` `[proj, H]`, each
//! with suffix `_reverse` for the reverse direction. Gate order: LSTM
//! `i, f, g, o` (canonical already); GRU `r, z, n` (reordered to `z, r, n`).
//! PyTorch's GRU applies the reset after the matmul.
//!
//! Sizes, layer count, direction, bias and `proj_size` are read off the
//! tensors; only the cell type (and a name prefix, for an RNN inside a
//! larger module such as `"rnn."`) is configuration, and [`detect_cell`]
//! reads the cell type off the tensor shapes when the file does not say it.

use super::{reorder_rows, TensorSource};
use crate::builder::RnnBuilder;
use crate::config::{Cell, Config, Direction, GruReset};
use crate::error::{Error, Result};
use crate::model::Rnn;
use crate::weights::DirectionWeights;

/// PyTorch LSTM order `i, f, g, o` → canonical `i, f, g, o`.
pub const LSTM_ORDER: [usize; 4] = [0, 1, 2, 3];
/// PyTorch GRU order `r, z, n` → canonical `z, r, n`.
pub const GRU_ORDER: [usize; 3] = [1, 0, 2];

/// What cannot be read off a `state_dict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PytorchOptions {
    /// `nn.LSTM` or `nn.GRU`.
    pub cell: Cell,
    /// Prefix of the RNN's entries, e.g. `"rnn."` for `model.rnn`; `""`
    /// for the module's own `state_dict`.
    pub prefix: String,
}

impl PytorchOptions {
    /// Options for a cell with no prefix.
    pub fn new(cell: Cell) -> PytorchOptions {
        PytorchOptions {
            cell,
            prefix: String::new(),
        }
    }
}

fn req(src: &dyn TensorSource, name: &str) -> Result<super::Tensor> {
    src.tensor(name)?
        .ok_or_else(|| Error::MissingTensor(name.to_string()))
}

/// Reads the cell type off a `state_dict`, for files that do not say it:
/// `{prefix}weight_hh_l0` is `[4*H, Hout]` for `nn.LSTM` and `[3*H, H]` for
/// `nn.GRU`; a `{prefix}weight_hr_l0` (projection, `proj_size > 0`) exists
/// only for an LSTM. [`Error::MissingTensor`] if there is no
/// `weight_hh_l0`, [`Error::Shape`] if its shape fits neither cell.
///
/// ```
/// use std::collections::HashMap;
/// use fusedrnn::import::{pytorch, Tensor};
/// use fusedrnn::Cell;
///
/// let mut sd = HashMap::new();
/// sd.insert("rnn.weight_hh_l0".to_string(), Tensor::new(vec![12, 4], vec![0.0; 48])?);
/// assert_eq!(pytorch::detect_cell(&sd, "rnn.")?, Cell::Gru); // 3 gates x H = 4
/// # Ok::<(), fusedrnn::Error>(())
/// ```
pub fn detect_cell(src: &dyn TensorSource, prefix: &str) -> Result<Cell> {
    if src.tensor(&format!("{prefix}weight_hr_l0"))?.is_some() {
        return Ok(Cell::Lstm);
    }
    let hh0 = req(src, &format!("{prefix}weight_hh_l0"))?;
    let [gh, h] = hh0.view().dims::<2>("weight_hh_l0")?;
    // Checked: the shape is the file's (a `[0, 2^62]` tensor has no data).
    match (gh, h) {
        (gh, h) if h > 0 && Some(gh) == h.checked_mul(4) => Ok(Cell::Lstm),
        (gh, h) if h > 0 && Some(gh) == h.checked_mul(3) => Ok(Cell::Gru),
        _ => Err(Error::Shape {
            what: "weight_hh_l0 (rows must be 4 x hidden_size for LSTM or 3 x hidden_size for GRU)"
                .into(),
            expected: vec![h.max(1).saturating_mul(4), h.max(1)],
            got: hh0.shape.clone(),
        }),
    }
}

/// Builds the model from a `state_dict` (any [`TensorSource`]), for the
/// fastest kernel family and f32 weights.
///
/// # Errors
/// [`Error::MissingTensor`], [`Error::Shape`], [`Error::Dtype`] for tensors
/// that are absent, misshapen or not floats; as [`RnnBuilder::build`].
pub fn from_state_dict(src: &dyn TensorSource, opts: &PytorchOptions) -> Result<Rnn> {
    builder_from_state_dict(src, opts)?.build()
}

/// Reads a `state_dict` into an [`RnnBuilder`], so the caller can choose
/// the kernel family and weight format before the weights are packed.
///
/// # Errors
/// As for [`from_state_dict`], except those of packing.
pub fn builder_from_state_dict(
    src: &dyn TensorSource,
    opts: &PytorchOptions,
) -> Result<RnnBuilder> {
    let pre = &opts.prefix;
    let cell = opts.cell;
    let g = cell.gates();
    let hh0 = req(src, &format!("{pre}weight_hh_l0"))?;
    let [gh, hout] = hh0.view().dims::<2>("weight_hh_l0")?;
    if gh == 0 || gh % g != 0 {
        return Err(Error::Shape {
            what: "weight_hh_l0 (rows must be gates x hidden_size)".into(),
            expected: vec![hout.max(1).saturating_mul(g), hout],
            got: hh0.shape.clone(),
        });
    }
    let hidden = gh / g;
    let ih0 = req(src, &format!("{pre}weight_ih_l0"))?;
    let [_, input] = ih0.view().dims::<2>("weight_ih_l0")?;
    let mut num_layers = 1;
    while src
        .tensor(&format!("{pre}weight_ih_l{num_layers}"))?
        .is_some()
    {
        num_layers += 1;
    }
    let bidir = src.tensor(&format!("{pre}weight_ih_l0_reverse"))?.is_some();
    let has_bias = src.tensor(&format!("{pre}bias_ih_l0"))?.is_some();
    let proj_size = match src.tensor(&format!("{pre}weight_hr_l0"))? {
        Some(t) => t.view().dims::<2>("weight_hr_l0")?[0],
        None => 0,
    };
    let mut cfg = Config::new(cell, input, hidden);
    cfg.num_layers = num_layers;
    cfg.direction = if bidir {
        Direction::Bidirectional
    } else {
        Direction::Forward
    };
    cfg.proj_size = proj_size;
    cfg.gru_reset = GruReset::AfterMatmul;
    if proj_size == 0 && hout != hidden {
        return Err(Error::Shape {
            what: "weight_hh_l0".into(),
            expected: vec![gh, hidden],
            got: hh0.shape.clone(),
        });
    }
    cfg.validate()?;
    let order: &[usize] = match cell {
        Cell::Lstm => &LSTM_ORDER,
        Cell::Gru => &GRU_ORDER,
    };
    let mut weights = Vec::new();
    for k in 0..num_layers {
        let in_k = cfg.layer_input_size(k);
        for d in 0..cfg.num_directions() {
            let sfx = if d == 1 { "_reverse" } else { "" };
            let name = |base: &str| format!("{pre}{base}_l{k}{sfx}");
            let w = req(src, &name("weight_ih"))?;
            w.view().expect(&name("weight_ih"), &[gh, in_k])?;
            let r = req(src, &name("weight_hh"))?;
            r.view()
                .expect(&name("weight_hh"), &[gh, cfg.output_size()])?;
            let (wb, rb) = if has_bias {
                let bi = req(src, &name("bias_ih"))?;
                bi.view().expect(&name("bias_ih"), &[gh])?;
                let bh = req(src, &name("bias_hh"))?;
                bh.view().expect(&name("bias_hh"), &[gh])?;
                (
                    reorder_rows(&bi.data, hidden, 1, order),
                    reorder_rows(&bh.data, hidden, 1, order),
                )
            } else {
                (vec![0.0; gh], vec![0.0; gh])
            };
            let proj = if proj_size > 0 {
                let p = req(src, &name("weight_hr"))?;
                p.view().expect(&name("weight_hr"), &[proj_size, hidden])?;
                Some(p.data)
            } else {
                None
            };
            weights.push(DirectionWeights {
                w: reorder_rows(&w.data, hidden, in_k, order),
                r: reorder_rows(&r.data, hidden, cfg.output_size(), order),
                wb,
                rb,
                peepholes: None,
                proj,
            });
        }
    }
    Ok(RnnBuilder::new(cfg, weights))
}

/// Loads a PyTorch `state_dict` saved with safetensors
/// (`safetensors.torch.save_file(model.state_dict(), path)`) in one call.
pub fn load_safetensors(path: impl AsRef<std::path::Path>, opts: &PytorchOptions) -> Result<Rnn> {
    let file = super::safetensors::TensorFile::open(path)?;
    from_state_dict(&file, opts)
}

/// Same as [`load_safetensors`] from the file's bytes.
pub fn from_safetensors_bytes(bytes: &[u8], opts: &PytorchOptions) -> Result<Rnn> {
    let file = super::safetensors::TensorFile::parse(bytes)?;
    from_state_dict(&file, opts)
}
