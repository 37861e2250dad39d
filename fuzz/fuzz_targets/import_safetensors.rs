//! Arbitrary bytes into the safetensors reader and every importer on the
//! tensors it finds: PyTorch (and its cell detection), ONNX (`W`, `R`, `B`,
//! `P` with each direction and reset variant), Keras (`kernel`,
//! `recurrent_kernel`, `bias`). Each returns a typed error or a model,
//! never a panic; a model that loads is run on a tiny input.
#![no_main]

use fusedrnn::import::onnx::{self, OnnxAttributes};
use fusedrnn::import::pytorch::{detect_cell, from_state_dict, PytorchOptions};
use fusedrnn::import::safetensors::TensorFile;
use fusedrnn::import::{keras, Tensor, TensorSource};
use fusedrnn::{Cell, Direction, Rnn, Sequence};
use libfuzzer_sys::fuzz_target;

/// Runs a small loaded model two steps (the fuzzer is after panics, not
/// big models).
fn try_run(model: fusedrnn::Result<Rnn>) {
    if let Ok(model) = model {
        let cfg = model.config();
        if cfg.input_size * cfg.hidden_size * cfg.num_layers <= 1 << 16 {
            let x = vec![0.5; 2 * cfg.input_size];
            let _ = model.forward(&Sequence::new(&x, 2, 1), None);
        }
    }
}

fn get(file: &TensorFile, name: &str) -> Option<Tensor> {
    file.tensor(name).ok().flatten()
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = TensorFile::parse(data) else {
        return;
    };
    let _ = detect_cell(&file, "");
    for cell in [Cell::Lstm, Cell::Gru] {
        try_run(from_state_dict(&file, &PytorchOptions::new(cell)));
    }
    if let (Some(w), Some(r)) = (get(&file, "W"), get(&file, "R")) {
        let (b, p) = (get(&file, "B"), get(&file, "P"));
        for direction in [Direction::Forward, Direction::Bidirectional] {
            for lbr in [false, true] {
                let attrs = OnnxAttributes {
                    direction,
                    linear_before_reset: lbr,
                    ..OnnxAttributes::default()
                };
                let bv = b.as_ref().map(|t| t.view());
                try_run(onnx::gru(w.view(), r.view(), bv, &attrs));
                if !lbr {
                    let pv = p.as_ref().map(|t| t.view());
                    try_run(onnx::lstm(w.view(), r.view(), bv, pv, &attrs));
                }
            }
        }
    }
    if let (Some(k), Some(r)) = (get(&file, "kernel"), get(&file, "recurrent_kernel")) {
        let b = get(&file, "bias");
        let bv = b.as_ref().map(|t| t.view());
        try_run(keras::lstm(k.view(), r.view(), bv, Default::default()));
        for reset_after in [false, true] {
            try_run(keras::gru(
                k.view(),
                r.view(),
                bv,
                reset_after,
                Default::default(),
            ));
        }
    }
});
