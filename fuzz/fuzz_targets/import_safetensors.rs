//! Arbitrary bytes into the safetensors reader, the PyTorch importer (and
//! its cell detection) and the golden-case parser: each returns a typed
//! error or a model, never a panic. A model that loads is also run on a
//! tiny input.
#![no_main]

use fusedrnn::import::pytorch::{from_safetensors_bytes, PytorchOptions};
use fusedrnn::{Cell, Sequence};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = fusedrnn::import::safetensors::TensorFile::parse(data) {
        let _ = fusedrnn::import::pytorch::detect_cell(&file, "");
    }
    for cell in [Cell::Lstm, Cell::Gru] {
        if let Ok(model) = from_safetensors_bytes(data, &PytorchOptions::new(cell)) {
            let cfg = model.config();
            // Keep the run small: the fuzzer is after panics, not big models.
            if cfg.input_size * cfg.hidden_size * cfg.num_layers <= 1 << 16 {
                let x = vec![0.5; 2 * cfg.input_size];
                let _ = model.forward(&Sequence::new(&x, 2, 1), None);
            }
        }
    }
    if let Ok(case) = fusedrnn::conformance::parse_case(data, "fuzz", "fuzz") {
        let cfg = case.model.config();
        if cfg.input_size * cfg.hidden_size * cfg.num_layers <= 1 << 16 {
            let _ = fusedrnn::conformance::run_case(&case, fusedrnn::KernelFamily::Reference);
        }
    }
});
