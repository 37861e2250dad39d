//! Reading `.safetensors` files: every tensor converted once to f32 (from
//! F32, F64, F16 or BF16) or i64 (from I32 or I64); any other dtype is kept
//! as a name so that asking for it gives a typed [`Error::Dtype`].

use std::collections::HashMap;

use super::{Tensor, TensorSource};
use crate::error::{Error, Result};

/// The data of one tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq)]
enum Data {
    Float(Vec<f32>),
    Int(Vec<i64>),
    /// A dtype the getters do not convert (named by the tensor's dtype).
    Other,
}

/// A parsed safetensors file: named tensors and the string metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorFile {
    /// Name -> (shape, data, the dtype as the file spells it).
    tensors: HashMap<String, (Vec<usize>, Data, String)>,
    metadata: HashMap<String, String>,
}

fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes
        .chunks_exact(N)
        .map(|c| c.try_into().expect("chunks_exact yields N bytes"))
}

impl TensorFile {
    /// Reads and parses a file.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<TensorFile> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| Error::Format(format!("{}: {e}", path.display())))?;
        TensorFile::parse(&bytes)
    }

    /// Parses a file's bytes; any malformation is an [`Error::Format`].
    pub fn parse(bytes: &[u8]) -> Result<TensorFile> {
        use safetensors::Dtype;
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::Format(format!("safetensors: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Format(format!("safetensors: {e}")))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let dtype = format!("{:?}", view.dtype());
            let data = match view.dtype() {
                Dtype::F32 => Data::Float(chunks::<4>(raw).map(f32::from_le_bytes).collect()),
                Dtype::F64 => Data::Float(
                    chunks::<8>(raw)
                        .map(|b| f64::from_le_bytes(b) as f32)
                        .collect(),
                ),
                Dtype::F16 => Data::Float(
                    chunks::<2>(raw)
                        .map(|b| half::f16::from_le_bytes(b).to_f32())
                        .collect(),
                ),
                Dtype::BF16 => Data::Float(
                    chunks::<2>(raw)
                        .map(|b| half::bf16::from_le_bytes(b).to_f32())
                        .collect(),
                ),
                Dtype::I32 => Data::Int(
                    chunks::<4>(raw)
                        .map(|b| i32::from_le_bytes(b) as i64)
                        .collect(),
                ),
                Dtype::I64 => Data::Int(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
                _ => Data::Other,
            };
            let shape = view.shape().to_vec();
            let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let len = match &data {
                Data::Float(v) => Some(v.len()),
                Data::Int(v) => Some(v.len()),
                Data::Other => n,
            };
            if n != len {
                return Err(Error::Format(format!(
                    "tensor `{name}`: data do not fill its shape"
                )));
            }
            tensors.insert(name, (shape, data, dtype));
        }
        Ok(TensorFile { tensors, metadata })
    }

    /// The string metadata (`__metadata__`).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(|s| s.as_str()).collect();
        v.sort_unstable();
        v
    }

    /// The dtype of tensor `name` as the file spells it (`"F32"`, `"I64"`,
    /// ...), `None` if absent. The getters convert, so this is how a caller
    /// holds a file to the exact dtypes its format requires.
    pub fn dtype(&self, name: &str) -> Option<&str> {
        self.tensors.get(name).map(|t| t.2.as_str())
    }

    /// Whether a tensor of that name exists (any dtype).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A float tensor as f32; [`Error::MissingTensor`] or [`Error::Dtype`].
    pub fn f32(&self, name: &str) -> Result<Tensor> {
        self.tensor(name)?
            .ok_or_else(|| Error::MissingTensor(name.to_string()))
    }

    /// An integer tensor (I32 or I64) as `(shape, values)`, `Ok(None)` if
    /// absent, [`Error::Dtype`] for another dtype.
    pub fn i64(&self, name: &str) -> Result<Option<(Vec<usize>, Vec<i64>)>> {
        match self.tensors.get(name) {
            None => Ok(None),
            Some((shape, Data::Int(v), _)) => Ok(Some((shape.clone(), v.clone()))),
            Some((_, Data::Float(_), _)) => Err(Error::Dtype {
                name: name.to_string(),
                found: "float (an integer tensor was expected)".into(),
            }),
            Some((_, Data::Other, d)) => Err(Error::Dtype {
                name: name.to_string(),
                found: d.clone(),
            }),
        }
    }
}

impl TensorSource for TensorFile {
    fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        match self.tensors.get(name) {
            None => Ok(None),
            Some((shape, Data::Float(v), _)) => Ok(Some(Tensor {
                shape: shape.clone(),
                data: v.clone(),
            })),
            Some((_, Data::Int(_), _)) => Err(Error::Dtype {
                name: name.to_string(),
                found: "integer (a float tensor was expected)".into(),
            }),
            Some((_, Data::Other, d)) => Err(Error::Dtype {
                name: name.to_string(),
                found: d.clone(),
            }),
        }
    }
}
