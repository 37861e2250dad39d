//! A simulated streaming service: `--streams S` users (64 by default) of
//! one model, each session sending a frame every `--frame-ms` (10 ms),
//! users leaving after a random session (0.3 to 2 s) and coming back after
//! a random gap (up to 100 ms), served in real time for `--seconds` per
//! mode by one loop that steps whatever frames have arrived:
//!
//! - `batched`: one `Streams::step` of every stream with a frame waiting
//!   (its oldest), on a `Team` of `--threads N` if N > 1;
//! - `one-by-one`: every waiting frame with its own `Rnn::step` (on the
//!   team's `Team::step` if N > 1), oldest first.
//!
//! Both modes serve the same seeded schedule of sessions and frames, twice:
//! in real time, for the p50/p99/max latency of a frame (from its arrival
//! to its output; the loop spins while nothing waits, so no scheduler
//! wake-up is counted), and saturated (every live stream always has a
//! frame waiting, for `--seconds` too), for the throughput: stream-steps
//! per second the loop sustains. Then the ratios batched / one-by-one.
//!
//! ```text
//! cargo run --release --example serve -- [--shape lstm-h256-b1] [--streams 64] [--threads 1]
//!     [--seconds 2] [--frame-ms 10] [--weights f32|bf16|f16] [--seed 1] [--json]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use fusedrnn::shapes::Shape;
use fusedrnn::{Rnn, State, StreamId, Streams, Team, WeightFormat, Workspace};

/// xorshift64: the schedule's and the frames' numbers.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One user's session: `[start, end)` and the phase of its frames.
#[derive(Clone, Copy)]
struct Session {
    start: Duration,
    end: Duration,
}

/// Every user's sessions over `secs` seconds.
fn schedule(users: usize, secs: f64, seed: u64) -> Vec<Vec<Session>> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..users)
        .map(|_| {
            let mut v = Vec::new();
            // Users start spread over the first 100 ms.
            let mut t = rng.unit() * 0.1;
            while t < secs {
                let len = 0.3 + 1.7 * rng.unit();
                v.push(Session {
                    start: Duration::from_secs_f64(t),
                    end: Duration::from_secs_f64((t + len).min(secs)),
                });
                t += len + 0.1 * rng.unit();
            }
            v
        })
        .collect()
}

/// What one mode measured.
struct Report {
    steps: usize,
    busy: Duration,
    wall: Duration,
    /// Frame latencies, in microseconds.
    lat: Vec<f64>,
}

impl Report {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.lat.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
}

/// A live session in the serving loop.
struct Live {
    user: usize,
    end: Duration,
    /// Arrival time of its next frame not yet served.
    next: Duration,
    frame: usize,
    id: Option<StreamId>,
    state: Option<State>,
}

#[allow(clippy::too_many_arguments)]
fn serve(
    model: &Rnn,
    sessions: &[Vec<Session>],
    secs: f64,
    frame: Duration,
    batched: bool,
    team: &mut Option<Team>,
    frames: &[f32],
) -> Report {
    let (i, hout) = (model.config().input_size, model.output_features());
    let users = sessions.len();
    let mut pool = Streams::new(model, users).expect("pool");
    let mut ws = Workspace::new();
    let mut next_session = vec![0usize; users];
    let mut live: Vec<Live> = Vec::with_capacity(users);
    let mut ids = Vec::with_capacity(users);
    let mut arrivals = Vec::with_capacity(users);
    let mut x = vec![0.0f32; users * i];
    let mut out = vec![0.0f32; users * hout];
    let mut rep = Report {
        steps: 0,
        busy: Duration::ZERO,
        wall: Duration::ZERO,
        lat: Vec::new(),
    };
    let frame_of = |user: usize, k: usize| {
        let at = ((user * 7919 + k * 104_729) * i) % (frames.len() - i);
        &frames[at..at + i]
    };
    let end = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    loop {
        let now = t0.elapsed();
        if now >= end {
            break;
        }
        // Sessions that ended leave; sessions that began join.
        live.retain(|s| {
            if s.end <= now {
                if let Some(id) = s.id {
                    pool.leave(id).expect("live id");
                }
                false
            } else {
                true
            }
        });
        for (u, ss) in sessions.iter().enumerate() {
            if let Some(s) = ss.get(next_session[u]) {
                if s.start <= now {
                    next_session[u] += 1;
                    live.push(Live {
                        user: u,
                        end: s.end,
                        next: s.start,
                        frame: 0,
                        id: batched.then(|| pool.join().expect("capacity")),
                        state: (!batched).then(|| model.new_state(1).expect("state")),
                    });
                }
            }
        }
        // The frames that have arrived.
        ids.clear();
        arrivals.clear();
        if batched {
            for s in live.iter_mut().filter(|s| s.next <= now) {
                x[ids.len() * i..(ids.len() + 1) * i].copy_from_slice(frame_of(s.user, s.frame));
                ids.push(s.id.expect("batched session"));
                arrivals.push(s.next);
                s.next += frame;
                s.frame += 1;
            }
            if !ids.is_empty() {
                let n = ids.len();
                let b0 = Instant::now();
                match team {
                    Some(t) => {
                        t.step_streams(model, &mut pool, &ids, &x[..n * i], &mut out[..n * hout])
                    }
                    None => pool.step(model, &ids, &x[..n * i], &mut out[..n * hout]),
                }
                .expect("step");
                let done = t0.elapsed();
                rep.busy += b0.elapsed();
                std::hint::black_box(&out);
                rep.steps += n;
                rep.lat
                    .extend(arrivals.iter().map(|a| (done - *a).as_secs_f64() * 1e6));
                continue;
            }
        } else {
            // Oldest waiting frame first, one step each.
            let mut order: Vec<usize> = (0..live.len()).filter(|&k| live[k].next <= now).collect();
            order.sort_by_key(|&k| live[k].next);
            for k in order {
                let s = &mut live[k];
                let b0 = Instant::now();
                let st = s.state.as_mut().expect("one-by-one session");
                let xs = frame_of(s.user, s.frame);
                match team {
                    Some(t) => t.step(model, xs, st, &mut out[..hout], &mut ws),
                    None => model.step(xs, st, &mut out[..hout], &mut ws),
                }
                .expect("step");
                let done = t0.elapsed();
                rep.busy += b0.elapsed();
                rep.steps += 1;
                rep.lat.push((done - s.next).as_secs_f64() * 1e6);
                s.next += frame;
                s.frame += 1;
                arrivals.push(s.next);
            }
            if !arrivals.is_empty() {
                continue;
            }
        }
        // Nothing waiting: spin until the next frame or session start (a
        // sleep would add the scheduler's wake-up delay to every latency).
        let next = live
            .iter()
            .map(|s| s.next.min(s.end))
            .chain(
                sessions
                    .iter()
                    .enumerate()
                    .filter_map(|(u, ss)| ss.get(next_session[u]).map(|s| s.start)),
            )
            .min()
            .unwrap_or(end)
            .min(end);
        while t0.elapsed() < next {
            std::hint::spin_loop();
        }
    }
    rep.wall = t0.elapsed();
    rep
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("serve: {msg}");
    eprintln!("usage: serve [--shape NAME] [--streams S] [--threads N] [--seconds X] [--frame-ms F] [--weights f32|bf16|f16] [--seed K] [--json]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut shape = "lstm-h256-b1".to_string();
    let (mut users, mut threads, mut secs, mut frame_ms, mut seed) =
        (64usize, 1usize, 2.0f64, 10.0f64, 1u64);
    let mut weights = WeightFormat::F32;
    let mut json = false;
    while let Some(a) = args.next() {
        let v = match a.as_str() {
            "--json" => {
                json = true;
                continue;
            }
            _ => args.next(),
        };
        let Some(v) = v else {
            return usage(&format!("{a} needs a value"));
        };
        let ok = match a.as_str() {
            "--shape" => {
                shape = v.clone();
                true
            }
            "--streams" => v.parse().map(|n| users = n).is_ok() && users > 0,
            "--threads" => v.parse().map(|n| threads = n).is_ok() && threads > 0,
            "--seconds" => v.parse().map(|n| secs = n).is_ok() && secs > 0.0,
            "--frame-ms" => v.parse().map(|n| frame_ms = n).is_ok() && frame_ms > 0.0,
            "--seed" => v.parse().map(|n| seed = n).is_ok(),
            "--weights" => match WeightFormat::from_name(&v) {
                Ok(w) => {
                    weights = w;
                    true
                }
                Err(_) => false,
            },
            _ => return usage(&format!("unknown argument {a}")),
        };
        if !ok {
            return usage(&format!("bad value for {a}: {v}"));
        }
    }
    let sh = match Shape::parse(&shape) {
        Ok(s) if s.batch == 1 => s,
        Ok(_) => return usage("--shape needs a batch-1 shape (its cell and H, I = H)"),
        Err(e) => return usage(&e.to_string()),
    };
    let model = match sh.model().with_weight_format(weights) {
        Ok(m) => m,
        Err(e) => return usage(&e.to_string()),
    };
    let mut team = match threads {
        1 => None,
        n => match Team::new(n) {
            Ok(t) => Some(t),
            Err(e) => return usage(&e.to_string()),
        },
    };
    let sessions = schedule(users, secs, seed);
    let mut rng = Rng(seed | 1);
    let frames: Vec<f32> = (0..65_536)
        .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
        .collect();
    let frame = Duration::from_secs_f64(frame_ms / 1e3);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    if !json {
        println!(
            "serve: {} ({}), {users} users, {frame_ms} ms frames, {secs} s per mode, {threads} thread(s), {cpu}",
            sh.name,
            model.kernel_name()
        );
    }
    // Warm-up, then the two modes on the same schedule: in real time, and
    // saturated (frames of 0 ms: every live stream always has one waiting).
    let _ = serve(&model, &sessions, 0.2, frame, true, &mut team, &frames);
    let batched = serve(&model, &sessions, secs, frame, true, &mut team, &frames);
    let single = serve(&model, &sessions, secs, frame, false, &mut team, &frames);
    let sat_b = serve(
        &model,
        &sessions,
        secs,
        Duration::ZERO,
        true,
        &mut team,
        &frames,
    );
    let sat_s = serve(
        &model,
        &sessions,
        secs,
        Duration::ZERO,
        false,
        &mut team,
        &frames,
    );
    let tput = |r: &Report| r.steps as f64 / r.wall.as_secs_f64();
    for (name, r, sat) in [
        ("batched", &batched, &sat_b),
        ("one-by-one", &single, &sat_s),
    ] {
        if json {
            println!(
                "{{\"mode\": \"{name}\", \"shape\": \"{}\", \"kernel_name\": \"{}\", \"streams\": {users}, \"threads\": {threads}, \"stream_steps\": {}, \"seconds\": {:.3}, \"busy_seconds\": {:.4}, \"stream_steps_per_second\": {:.0}, \"p50_us\": {:.1}, \"p99_us\": {:.1}, \"max_us\": {:.1}, \"cpu\": \"{cpu}\"}}",
                sh.name,
                model.kernel_name(),
                r.steps,
                r.wall.as_secs_f64(),
                r.busy.as_secs_f64(),
                tput(sat),
                r.pct(0.5),
                r.pct(0.99),
                r.pct(1.0)
            );
        } else {
            println!(
                "{name:<11} real time: {:>7} stream-steps in {:.2} s (busy {:>5.1}%), frame latency p50 {:>8.1} us, p99 {:>8.1} us, max {:>8.1} us; saturated: {:>9.0} stream-steps/s",
                r.steps,
                r.wall.as_secs_f64(),
                100.0 * r.busy.as_secs_f64() / r.wall.as_secs_f64(),
                r.pct(0.5),
                r.pct(0.99),
                r.pct(1.0),
                tput(sat)
            );
        }
    }
    let (cap, p99) = (
        tput(&sat_b) / tput(&sat_s),
        batched.pct(0.99) / single.pct(0.99),
    );
    if json {
        println!("{{\"throughput_ratio\": {cap:.2}, \"p99_ratio\": {p99:.2}}}");
    } else {
        println!("batched / one-by-one: throughput {cap:.2}x, p99 latency {p99:.2}x");
    }
    ExitCode::SUCCESS
}
