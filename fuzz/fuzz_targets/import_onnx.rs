//! Arbitrary bytes as an `.onnx` file: parsing, listing the RNN nodes and
//! building each node's model must give a model or a typed error, never a
//! panic, a hang or an out-of-memory (seeds: the golden `.onnx` files).
#![no_main]

use fusedrnn::import::onnx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = onnx::from_bytes(data);
    if let Ok(file) = onnx::parse(data) {
        for node in file.nodes().to_vec() {
            if let Ok(model) = file.rnn(&node) {
                // A built model runs: one step of zeros (forward models).
                let cfg = model.config();
                if cfg.num_directions() == 1 && cfg.input_size <= 4096 {
                    let mut st = model.new_state(1).unwrap();
                    let x = vec![0.0f32; cfg.input_size];
                    let mut y = vec![0.0f32; cfg.output_size()];
                    let mut ws = fusedrnn::Workspace::new();
                    let _ = model.step(&x, &mut st, &mut y, &mut ws);
                }
            }
        }
    }
});
