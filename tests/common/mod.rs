//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use fusedrnn::import::safetensors::TensorFile;
use fusedrnn::import::{Tensor, TensorSource};

pub fn golden(name: &str) -> TensorFile {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(format!("{name}.safetensors"));
    TensorFile::open(p).expect("golden file")
}

pub fn t(f: &TensorFile, name: &str) -> Tensor {
    f.tensor(name).expect("dtype").expect(name)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A deterministic pseudo-random f32 in [-scale, scale) (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn f32(&mut self, scale: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32(scale)).collect()
    }
}

/// A one-layer forward LSTM (H hidden, I inputs) with weights in
/// [-0.5, 0.5) from `seed`.
pub fn random_lstm(h: usize, i: usize, seed: u64) -> fusedrnn::Rnn {
    use fusedrnn::{Cell, Config, DirectionWeights, Rnn};
    let mut r = Rng(seed);
    let w = DirectionWeights {
        w: r.vec(4 * h * i, 0.5),
        r: r.vec(4 * h * h, 0.5),
        wb: r.vec(4 * h, 0.5),
        rb: r.vec(4 * h, 0.5),
        peepholes: None,
        proj: None,
    };
    Rnn::new(Config::new(Cell::Lstm, i, h), vec![w]).unwrap()
}
