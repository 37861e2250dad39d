//! The first thing to run: an LSTM and a GRU, each loaded from a PyTorch
//! `state_dict` saved with safetensors (two of the golden cases that ship in
//! tests/data/golden), run on their stored input with the kernel this CPU
//! dispatches to, and compared with PyTorch's own output and with the
//! scalar reference.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use std::path::Path;

use fusedrnn::import::pytorch::{load_safetensors, PytorchOptions};
use fusedrnn::import::safetensors::TensorFile;
use fusedrnn::import::TensorSource;
use fusedrnn::{Cell, KernelFamily, Sequence};

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    for (file, cell) in [
        ("pt-lstm-l2-init-h16-i16-b3-t7", Cell::Lstm),
        ("pt-gru-l2-bidir-init-h16-i16-b3-t7", Cell::Gru),
    ] {
        let path = dir.join(format!("{file}.safetensors"));
        let model = load_safetensors(&path, &PytorchOptions::new(cell))?;
        let cfg = model.config();
        let data = TensorFile::open(&path)?;
        let get = |n: &str| {
            data.tensor(n)
                .ok()
                .flatten()
                .ok_or(format!("{file}: no `{n}`"))
        };
        let x = get("x")?;
        let (t, b) = (x.shape[0], x.shape[1]);
        let mut init = model.new_state(b)?;
        init.h_mut().copy_from_slice(&get("h0")?.data);
        if cell == Cell::Lstm {
            init.c_mut().copy_from_slice(&get("c0")?.data);
        }
        let seq = Sequence::new(&x.data, t, b);
        let (y, state) = model.forward(&seq, Some(&init))?;
        let reference = model.clone().with_kernel(KernelFamily::Reference)?;
        let (y_ref, _) = reference.forward(&seq, Some(&init))?;

        println!(
            "{cell:?}: {} layer(s), {:?}, H={}, I={}, T={t}, B={b}; kernel {}",
            cfg.num_layers,
            cfg.direction,
            cfg.hidden_size,
            cfg.input_size,
            model.kernel_name()
        );
        let f = model.output_features();
        let last: Vec<String> = y[(t - 1) * b * f..][..6]
            .iter()
            .map(|v| format!("{v:+.5}"))
            .collect();
        println!("  output[T-1, 0, 0..6] = [{}]", last.join(", "));
        println!(
            "  max |output - PyTorch| = {:.2e}, max |h_n - PyTorch| = {:.2e}, max |output - reference| = {:.2e}",
            max_abs_diff(&y, &get("output")?.data),
            max_abs_diff(state.h(), &get("h_n")?.data),
            max_abs_diff(&y, &y_ref)
        );
    }
    Ok(())
}
