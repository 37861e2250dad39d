//! fusedrnn's side of the comparison tooling (`benches/compare/run`).
//!
//! A long-lived process that `compare.py` drives over stdin, one command
//! per line, one answer line per command on stdout, so that every round of
//! the interleaved timing runs fusedrnn in the same process as the last
//! (weights packed once, caches as warm as the peers' sessions):
//!
//! ```text
//! load NAME FILE CELL T B STREAMING WEIGHTS   -> ok NAME KERNEL_NAME
//! dump NAME OUT                               -> ok NAME
//! time NAME SECONDS                           -> {"name": .., "ns_per_call": ..}
//! quit
//! ```
//!
//! `FILE` is a safetensors file written by `compare.py`: the PyTorch
//! `state_dict` of one `nn.LSTM`/`nn.GRU` (`weight_ih_l0`, ...), the input
//! `x` `[T, B, I]` and the initial states `h0` (and `c0`) `[1, B, H]`.
//! `STREAMING` is 1 for a shape timed as one `Rnn::step` per call (T = 1),
//! 0 for `Rnn::run` over all T steps. `WEIGHTS` is f32, bf16 or f16. The
//! kernel family is the dispatched one (`FUSEDRNN_KERNEL` overrides it).
//! `dump` writes the fast kernel's outputs `[T, B, H]` to `OUT.fast` and
//! the scalar reference's (f32 weights) to `OUT.ref`, raw little-endian f32.
//! `time` runs the call for at least `SECONDS` and 15 times and answers
//! the median time of one call.
//!
//! `--serve --threads N` (N > 1) runs every timed call on a
//! `fusedrnn::Team` of N threads (`Team::run`, `Team::step`); the reference
//! outputs of `dump` always come from one thread.
//!
//! Run as a bench target without `--serve` (as `cargo bench` does), it
//! prints what it is and exits.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use fusedrnn::import::pytorch::{from_state_dict, PytorchOptions};
use fusedrnn::import::safetensors::TensorFile;
use fusedrnn::shapes::median_ns;
use fusedrnn::{Cell, KernelFamily, Rnn, Sequence, State, Team, WeightFormat, Workspace};

struct Loaded {
    model: Rnn,
    reference: Rnn,
    x: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    t: usize,
    b: usize,
    streaming: bool,
    state: State,
    out: Vec<f32>,
    ws: Workspace,
}

impl Loaded {
    fn reset(state: &mut State, h0: &[f32], c0: &[f32]) {
        state.h_mut().copy_from_slice(h0);
        state.c_mut().copy_from_slice(c0);
    }

    fn call(&mut self, team: Option<&mut Team>) -> Result<(), String> {
        Self::reset(&mut self.state, &self.h0, &self.c0);
        let (m, st, out, ws) = (&self.model, &mut self.state, &mut self.out, &mut self.ws);
        let seq = Sequence::new(&self.x, self.t, self.b);
        match (self.streaming, team) {
            (true, None) => m.step(&self.x, st, out, ws),
            (true, Some(t)) => t.step(m, &self.x, st, out, ws),
            (false, None) => m.run(&seq, st, out, ws),
            (false, Some(t)) => t.run(m, &seq, st, out, ws),
        }
        .map_err(|e| e.to_string())
    }

    fn outputs(&self, model: &Rnn) -> Result<Vec<f32>, String> {
        let mut state = model.new_state(self.b).map_err(|e| e.to_string())?;
        Self::reset(&mut state, &self.h0, &self.c0);
        let mut out = vec![0.0; self.out.len()];
        let seq = Sequence::new(&self.x, self.t, self.b);
        model
            .run(&seq, &mut state, &mut out, &mut Workspace::new())
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

fn load(args: &[&str]) -> Result<Loaded, String> {
    let [_, file, cell, t, b, streaming, weights] = args else {
        return Err("load NAME FILE CELL T B STREAMING WEIGHTS".into());
    };
    let cell = match *cell {
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        other => return Err(format!("unknown cell {other}")),
    };
    let num = |s: &str| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
    let (t, b, streaming) = (num(t)?, num(b)?, *streaming == "1");
    let tf = TensorFile::open(file).map_err(|e| e.to_string())?;
    let f32s = |name: &str| -> Result<Vec<f32>, String> {
        Ok(tf.f32(name).map_err(|e| e.to_string())?.data)
    };
    let reference = from_state_dict(&tf, &PytorchOptions::new(cell))
        .map_err(|e| e.to_string())?
        .with_kernel(KernelFamily::Reference)
        .map_err(|e| e.to_string())?;
    let format = WeightFormat::from_name(weights).map_err(|e| e.to_string())?;
    let model = from_state_dict(&tf, &PytorchOptions::new(cell))
        .and_then(|m| m.with_weight_format(format))
        .map_err(|e| e.to_string())?;
    let (x, h0) = (f32s("x")?, f32s("h0")?);
    let c0 = if cell == Cell::Lstm {
        f32s("c0")?
    } else {
        Vec::new()
    };
    let state = model.new_state(b).map_err(|e| e.to_string())?;
    if state.h().len() != h0.len() || state.c().len() != c0.len() {
        return Err("h0/c0 do not fit the model".into());
    }
    let out = vec![0.0; t * b * model.output_features()];
    Ok(Loaded {
        model,
        reference,
        x,
        h0,
        c0,
        t,
        b,
        streaming,
        state,
        out,
        ws: Workspace::new(),
    })
}

fn write_f32(path: &str, v: &[f32]) -> Result<(), String> {
    std::fs::write(path, le_bytes(v)).map_err(|e| format!("{path}: {e}"))
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// The median time of one call (the bench tool's rule,
/// [`fusedrnn::shapes::median_ns`]); the first error stops the timing.
fn time(l: &mut Loaded, seconds: f64, mut team: Option<&mut Team>) -> Result<f64, String> {
    l.call(team.as_deref_mut())?;
    let mut err = None;
    let ns = median_ns(seconds, || {
        if err.is_none() {
            err = l.call(team.as_deref_mut()).err();
        }
    });
    err.map_or(Ok(ns), Err)
}

fn command(
    models: &mut HashMap<String, Loaded>,
    team: Option<&mut Team>,
    line: &str,
) -> Result<String, String> {
    let args: Vec<&str> = line.split_whitespace().collect();
    let (Some(&cmd), Some(&name)) = (args.first(), args.get(1)) else {
        return Err(format!("bad command `{line}`"));
    };
    match cmd {
        "load" => {
            let l = load(&args[1..])?;
            let kernel = l.model.kernel_name().to_string();
            models.insert(name.to_string(), l);
            Ok(format!("ok {name} {kernel}"))
        }
        "dump" => {
            let l = models.get(name).ok_or("not loaded")?;
            let out = args.get(2).ok_or("dump NAME OUT")?;
            write_f32(&format!("{out}.fast"), &l.outputs(&l.model)?)?;
            write_f32(&format!("{out}.ref"), &l.outputs(&l.reference)?)?;
            Ok(format!("ok {name}"))
        }
        "time" => {
            let l = models.get_mut(name).ok_or("not loaded")?;
            let secs: f64 = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .ok_or("time NAME SECONDS")?;
            let ns = time(l, secs, team)?;
            Ok(format!(
                "{{\"name\": \"{name}\", \"ns_per_call\": {ns:.1}}}"
            ))
        }
        other => Err(format!("unknown command {other}")),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--serve") {
        println!("compare worker: driven by benches/compare/run (see benches/compare/README.md); nothing to do");
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(1), |n| n.parse::<usize>());
    let mut team = match threads {
        Ok(1) => None,
        Ok(n) => match Team::new(n) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("compare worker: {e}");
                std::process::exit(2);
            }
        },
        Err(e) => {
            eprintln!("compare worker: --threads: {e}");
            std::process::exit(2);
        }
    };
    let mut models = HashMap::new();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "quit" {
            break;
        }
        let answer =
            command(&mut models, team.as_mut(), &line).unwrap_or_else(|e| format!("error {e}"));
        if writeln!(stdout, "{answer}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
}
