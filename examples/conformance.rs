//! Runs golden case files and reports agreement.
//!
//! ```text
//! cargo run --release --example conformance -- [--kernel NAME] [--tol X] [--threads N] [--streams] [--weights FORMAT] PATH...
//! cargo run --release --example conformance -- --list-kernels
//! ```
//!
//! `--threads N` runs every case on a `fusedrnn::Team` of N threads that
//! splits every layer step, however small; `--streams` steps a forward
//! case's batch entries as the streams of a `fusedrnn::Streams` pool, one
//! time step at a time (on the team with `--threads`; other cases run
//! whole).
//!
//! `--weights f16|bf16|int8` rounds each case's weight matrices to that
//! format (`Rnn::with_weight_format`) before running it against the same
//! expected outputs (ONNX Runtime's and PyTorch's, in f32): the check is
//! then the format's documented error, and the default `--tol` becomes
//! the format's bound over the golden cases (`format_tolerance`).
//!
//! PATH may also be an `.onnx` file `name.onnx`: its single LSTM/GRU node
//! gives the weights and attributes, and the case file `name.safetensors`
//! beside it the inputs and the expected outputs (its weight tensors are
//! ignored); one line per `.onnx` file, the same summary line. Folders
//! give their `.safetensors` cases only.
//!
//! PATH is a case file or a folder of `.safetensors` cases. One line per
//! case (`name ok|FAIL max_abs_err`), then `N passed, M failed`. Exit 0 if
//! all passed, 1 if any failed, 2 if a file is not a valid case, no case
//! file was found, or the arguments are wrong.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fusedrnn::conformance::{load_case, load_case_onnx, run_case_with, RunMode};
use fusedrnn::{KernelFamily, Team, WeightFormat};

/// The default tolerance with `--weights`: about twice the worst output
/// error the format's rounding causes on the golden cases' configurations.
/// Measured on every family over the 37 committed cases and 20 re-draws of
/// them (`tests/data/make_golden.py --like tests/data/golden --seed N`: the
/// same configurations with new weights and inputs, 740 cases): worst f16
/// 9.0e-3, bf16 6.5e-2, int8 1.44e-1, int8-dynamic 2.37e-1 (the committed
/// cases alone: 4.0e-3, 4.6e-2, 1.1e-1, 1.6e-1, which an earlier, tighter
/// default was fitted to). The worst are the `saturating` cases, whose
/// large weights and inputs put pre-activations in the tens: a weight's
/// rounding (int8: up to max|row|/254; bf16 2^-9 relative) times a large
/// input moves the units that are not saturated. Every other case stays
/// within 6e-3 (int8), 3e-3 (bf16). f32: the kernels' own 1e-5.
fn format_tolerance(f: WeightFormat) -> f32 {
    match f {
        WeightFormat::F32 => 1e-5,
        WeightFormat::F16 => 2e-2,
        WeightFormat::Bf16 => 1.5e-1,
        WeightFormat::Int8 => 3e-1,
        WeightFormat::Int8Dynamic => 5e-1,
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("conformance: {msg}");
    eprintln!("usage: conformance [--kernel NAME] [--tol X] [--threads N] [--streams] [--weights FORMAT] PATH... | --list-kernels");
    ExitCode::from(2)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        found.sort();
        out.extend(found);
        Ok(())
    } else {
        out.push(path.to_path_buf());
        Ok(())
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut family = KernelFamily::detect();
    let mut tol = None::<f32>;
    let mut weights = WeightFormat::F32;
    let mut paths = Vec::new();
    let (mut team, mut streams) = (None::<Team>, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--list-kernels" => {
                for f in KernelFamily::available() {
                    println!("{}", f.name());
                }
                return ExitCode::SUCCESS;
            }
            "--kernel" => {
                let Some(name) = args.next() else {
                    return usage("--kernel needs a name");
                };
                family = match KernelFamily::from_name(&name) {
                    Ok(f) if f.is_available() => f,
                    Ok(f) => {
                        return usage(&format!(
                            "kernel `{}` is not available on this host",
                            f.name()
                        ))
                    }
                    Err(e) => return usage(&e.to_string()),
                };
            }
            "--tol" => match args.next().and_then(|v| v.parse::<f32>().ok()) {
                // NaN fails `v >= 0.0`; inf is allowed, but a NaN output
                // fails every tolerance (`CaseResult::passes`).
                Some(v) if v >= 0.0 => tol = Some(v),
                _ => return usage("--tol needs a non-negative number"),
            },
            "--threads" => match args.next().and_then(|v| v.parse::<usize>().ok()) {
                Some(1) => team = None,
                Some(n) => match Team::new(n) {
                    Ok(mut t) => {
                        t.set_min_split_fmas(0);
                        team = Some(t);
                    }
                    Err(e) => return usage(&e.to_string()),
                },
                None => return usage("--threads needs a count"),
            },
            "--streams" => streams = true,
            "--weights" => match args.next().map(|w| WeightFormat::from_name(&w)) {
                Some(Ok(w)) => weights = w,
                Some(Err(e)) => return usage(&e.to_string()),
                None => return usage("--weights needs a format name"),
            },
            s if s.starts_with("--") => return usage(&format!("unknown option {s}")),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        return usage("no case files given");
    }
    let tol = tol.unwrap_or(format_tolerance(weights));
    let mut files = Vec::new();
    for p in &paths {
        if let Err(e) = collect(p, &mut files) {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    // A folder with no case files proves nothing: it is an error, not a pass.
    let mut invalid = files.is_empty();
    if invalid {
        eprintln!("conformance: no case files found");
    }
    for f in &files {
        let onnx = f.extension().is_some_and(|e| e == "onnx");
        let loaded = if onnx {
            load_case_onnx(f)
        } else {
            load_case(f)
        };
        let case = match loaded.and_then(|mut c| {
            c.model = c.model.with_weight_format(weights)?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("conformance: {e}");
                invalid = true;
                continue;
            }
        };
        let mode = match (streams, team.as_mut()) {
            (true, t) => RunMode::Streams(t),
            (false, Some(t)) => RunMode::Team(t),
            (false, None) => RunMode::Run,
        };
        match run_case_with(&case, family, mode) {
            Ok(res) => {
                let err = res.max_error();
                let ok = res.passes(tol);
                println!(
                    "{} {} {:.3e}",
                    case.name,
                    if ok { "ok" } else { "FAIL" },
                    err
                );
                if ok {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            Err(e) => {
                eprintln!("conformance: {}: {e}", f.display());
                invalid = true;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if invalid {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
