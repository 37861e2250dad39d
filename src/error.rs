//! The one error type of the crate.

use std::fmt;

/// Everything that can go wrong when building or running a model.
///
/// Every bad input (a shape, a length, a file, an attribute) is reported
/// through this enum before any work is done; no public function panics on
/// user input.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A tensor or buffer has the wrong shape.
    Shape {
        /// Which tensor or buffer.
        what: String,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A flat buffer has the wrong number of elements.
    BufferLength {
        /// Which buffer.
        what: String,
        /// The number of elements expected.
        expected: usize,
        /// The number of elements given.
        got: usize,
    },
    /// A tensor that the model needs is not in the file or map.
    MissingTensor(String),
    /// A tensor has a dtype the importer cannot use.
    Dtype {
        /// The tensor's name.
        name: String,
        /// The dtype found (as the file spells it).
        found: String,
    },
    /// A configuration value or attribute is out of range or inconsistent.
    InvalidAttribute {
        /// The attribute's name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A per-entry sequence length is longer than the sequence.
    LengthOutOfRange {
        /// The batch entry.
        index: usize,
        /// Its length.
        length: usize,
        /// The sequence length T.
        seq_len: usize,
    },
    /// The operation is not defined for this model (for example a streaming
    /// step on a bidirectional model).
    Unsupported(String),
    /// A kernel was requested that this build or CPU cannot run.
    KernelUnavailable(String),
    /// A file could not be read or is not a valid safetensors file.
    Format(String),
    /// A size is too large: an element or byte count computed from the
    /// given sizes overflows `usize`, exceeds a documented bound, or memory
    /// for it could not be had.
    TooLarge {
        /// Which size.
        what: String,
    },
    /// A stream id that names no live stream of this [`crate::Streams`]
    /// pool: it has left, or it belongs to another pool.
    InvalidStream {
        /// The id's position in the call's list of ids.
        index: usize,
    },
    /// The same stream more than once in one many-stream step.
    DuplicateStream {
        /// The position of its second occurrence in the call's list of ids.
        index: usize,
    },
    /// A [`crate::Streams`] pool already holds as many streams as it was
    /// made for.
    PoolFull {
        /// The pool's capacity.
        capacity: usize,
    },
    /// A name (kernel family, weight format) that names nothing.
    UnknownName {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names that exist.
        known: Vec<&'static str>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape { what, expected, got } => {
                write!(f, "{what}: expected shape {expected:?}, got {got:?}")
            }
            Error::BufferLength { what, expected, got } => {
                write!(f, "{what}: expected {expected} elements, got {got}")
            }
            Error::MissingTensor(name) => write!(f, "missing tensor `{name}`"),
            Error::Dtype { name, found } => {
                write!(f, "tensor `{name}` has unsupported dtype {found}")
            }
            Error::InvalidAttribute { name, reason } => {
                write!(f, "invalid attribute `{name}`: {reason}")
            }
            Error::LengthOutOfRange {
                index,
                length,
                seq_len,
            } => write!(
                f,
                "sequence length {length} of batch entry {index} exceeds the sequence length {seq_len}"
            ),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::KernelUnavailable(what) => write!(f, "kernel unavailable: {what}"),
            Error::Format(what) => write!(f, "invalid file: {what}"),
            Error::TooLarge { what } => write!(f, "too large: {what}"),
            Error::InvalidStream { index } => {
                write!(f, "stream id {index} names no live stream of this pool")
            }
            Error::DuplicateStream { index } => {
                write!(f, "stream id {index} repeats a stream already in this step")
            }
            Error::PoolFull { capacity } => {
                write!(f, "the stream pool is full ({capacity} streams)")
            }
            Error::UnknownName { kind, name, known } => {
                write!(f, "unknown {kind} `{name}` (known: {})", known.join(", "))
            }
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Result<T, fusedrnn::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn attr_err(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidAttribute {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// The product of `dims`, or [`Error::TooLarge`] naming `what` if it
/// overflows: every element count built from a caller's or a file's sizes
/// goes through here.
pub(crate) fn product(what: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::TooLarge {
            what: format!("{what}: {dims:?} overflows"),
        })
}

/// Checks that a buffer of `got` elements has the `dims` product.
pub(crate) fn check_dims(what: &str, dims: &[usize], got: usize) -> Result<()> {
    check_len(what, product(what, dims)?, got)
}

pub(crate) fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::BufferLength {
            what: what.to_string(),
            expected,
            got,
        })
    }
}
