//! tract's side of `benches/compare/run --rust-peers`: the worker protocol
//! of `benches/compare/worker.rs`, on the ONNX files `compare.py` writes.
//!
//! ```text
//! load NAME MODEL.onnx FEEDS.safetensors STREAMING  -> ok NAME
//! dump NAME OUT                                      -> ok NAME (Y as raw f32)
//! time NAME SECONDS                                  -> {"name": .., "ns_per_call": ..}
//! ```
//!
//! FEEDS holds `X` `[T, B, I]`, `initial_h` and (LSTM) `initial_c`
//! `[1, B, H]`; the model is optimized for exactly those shapes.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use anyhow::{bail, Context};
use tract_onnx::prelude::*;

type Plan = TypedRunnableModel<TypedModel>;

struct Loaded {
    plan: Plan,
    inputs: TVec<TValue>,
}

fn tensor(st: &safetensors::SafeTensors, name: &str) -> TractResult<Tensor> {
    let t = st.tensor(name)?;
    let data: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(tract_ndarray::ArrayD::from_shape_vec(t.shape().to_vec(), data)?.into())
}

fn load(args: &[&str]) -> TractResult<Loaded> {
    let [model, feeds, _streaming] = args else {
        bail!("load NAME MODEL FEEDS STREAMING");
    };
    let bytes = std::fs::read(feeds)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut names = vec!["X", "initial_h"];
    if st.names().iter().any(|n| *n == "initial_c") {
        names.push("initial_c");
    }
    let tensors: Vec<Tensor> = names
        .iter()
        .map(|n| tensor(&st, n))
        .collect::<TractResult<_>>()?;
    let mut m = tract_onnx::onnx().model_for_path(model)?;
    for (i, t) in tensors.iter().enumerate() {
        m = m.with_input_fact(i, f32::fact(t.shape()).into())?;
    }
    // Only Y: the states are outputs the others skip too.
    let y = m.find_outlet_label("Y").map(|o| vec![o]);
    if let Some(y) = y {
        m.set_output_outlets(&y)?;
    } else {
        m.set_output_outlets(&m.output_outlets()?[..1].to_vec())?;
    }
    let plan = m.into_optimized()?.into_runnable()?;
    Ok(Loaded {
        plan,
        inputs: tensors.into_iter().map(|t| t.into()).collect(),
    })
}

fn command(models: &mut HashMap<String, Loaded>, line: &str) -> TractResult<String> {
    let args: Vec<&str> = line.split_whitespace().collect();
    let (Some(&cmd), Some(&name)) = (args.first(), args.get(1)) else {
        bail!("bad command `{line}`");
    };
    match cmd {
        "load" => {
            let l = load(&args[2..])?;
            models.insert(name.to_string(), l);
            Ok(format!("ok {name}"))
        }
        "dump" => {
            let l = models.get(name).context("not loaded")?;
            let out = l.plan.run(l.inputs.clone())?;
            let y = out[0].as_slice::<f32>()?;
            let bytes: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(args.get(2).context("dump NAME OUT")?, bytes)?;
            Ok(format!("ok {name}"))
        }
        "time" => {
            let l = models.get(name).context("not loaded")?;
            let secs: f64 = args.get(2).context("time NAME SECONDS")?.parse()?;
            l.plan.run(l.inputs.clone())?;
            let mut times = Vec::new();
            let start = Instant::now();
            while times.len() < 15 || start.elapsed().as_secs_f64() < secs {
                let t0 = Instant::now();
                let out = l.plan.run(l.inputs.clone())?;
                times.push(t0.elapsed().as_nanos() as f64);
                drop(out);
            }
            times.sort_by(|a, b| a.total_cmp(b));
            Ok(format!(
                "{{\"name\": \"{name}\", \"ns_per_call\": {:.1}}}",
                times[times.len() / 2]
            ))
        }
        other => bail!("unknown command {other}"),
    }
}

fn main() {
    let mut models = HashMap::new();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "quit" {
            break;
        }
        let answer = command(&mut models, &line).unwrap_or_else(|e| format!("error {e:#}"));
        if writeln!(stdout, "{answer}").and_then(|_| stdout.flush()).is_err() {
            break;
        }
    }
}
