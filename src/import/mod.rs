//! Importers: each framework's tensors, in its own gate order and
//! orientation, to canonical [`DirectionWeights`](crate::DirectionWeights).
//!
//! | source | LSTM order | GRU order | orientation | module |
//! |---|---|---|---|---|
//! | ONNX | i o f c | z r h | `[out, in]` | [`onnx`] |
//! | PyTorch | i f g o | r z n | `[out, in]` | [`pytorch`] |
//! | Keras | i f c o | z r h | `[in, out]` | [`keras`] |
//! | seed (concat) | f i c o | r z h | `[(H+I), out]` over `[h, x]` | [`mod@concat`] |
//!
//! Canonical order (what kernels see): LSTM `i f g o`, GRU `z r n`.

pub mod concat;
pub mod keras;
pub mod onnx;
mod onnx_file;
mod onnx_fold;
pub mod pytorch;
pub mod safetensors;

use std::collections::HashMap;

use crate::error::{Error, Result};

/// An owned f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` elements.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor; a typed error when `data` does not fill `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor> {
        TensorView::new(&shape, &data)?;
        Ok(Tensor { shape, data })
    }

    /// A borrowed view.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            shape: &self.shape,
            data: &self.data,
        }
    }
}

/// A borrowed f32 tensor, row-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorView<'a> {
    /// Dimensions, outermost first.
    pub shape: &'a [usize],
    /// `shape.iter().product()` elements.
    pub data: &'a [f32],
}

impl<'a> TensorView<'a> {
    /// A view; a typed error when `data` does not fill `shape`.
    pub fn new(shape: &'a [usize], data: &'a [f32]) -> Result<TensorView<'a>> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::Format("tensor shape overflows".into()))?;
        if n != data.len() {
            return Err(Error::BufferLength {
                what: "tensor data".into(),
                expected: n,
                got: data.len(),
            });
        }
        Ok(TensorView { shape, data })
    }

    /// Checks the shape exactly (and that the data fill it).
    pub(crate) fn expect(&self, what: &str, dims: &[usize]) -> Result<()> {
        let n: Option<usize> = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if self.shape != dims || Some(self.data.len()) != n {
            return Err(Error::Shape {
                what: what.to_string(),
                expected: dims.to_vec(),
                got: self.shape.to_vec(),
            });
        }
        Ok(())
    }

    /// Checks the rank and returns the dimensions.
    pub(crate) fn dims<const N: usize>(&self, what: &str) -> Result<[usize; N]> {
        let dims: [usize; N] = self.shape.try_into().map_err(|_| Error::Shape {
            what: format!("{what} (rank {N})"),
            expected: vec![],
            got: self.shape.to_vec(),
        })?;
        self.expect(what, &dims)?;
        Ok(dims)
    }
}

/// Anything that hands out named tensors: a `HashMap<String, Tensor>`
/// (a PyTorch `state_dict`) or a loaded safetensors file.
pub trait TensorSource {
    /// The tensor named `name` as f32, `Ok(None)` if absent, a typed error if
    /// present with a dtype that is not a float.
    fn tensor(&self, name: &str) -> Result<Option<Tensor>>;
}

impl TensorSource for HashMap<String, Tensor> {
    fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        Ok(self.get(name).cloned())
    }
}

/// Copies the gate blocks of `src` (`gates` blocks of `rows_per_gate` rows
/// of `cols` columns) so that canonical block `k` is source block `order[k]`.
pub(crate) fn reorder_rows(
    src: &[f32],
    rows_per_gate: usize,
    cols: usize,
    order: &[usize],
) -> Vec<f32> {
    let block = rows_per_gate * cols;
    let mut out = Vec::with_capacity(src.len());
    for &k in order {
        out.extend_from_slice(&src[k * block..(k + 1) * block]);
    }
    out
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = src[r * cols + c];
        }
    }
    out
}
