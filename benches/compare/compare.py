#!/usr/bin/env python3
"""fusedrnn against ONNX Runtime, OpenVINO and PyTorch, side by side.

Run it through `benches/compare/run` (it makes the virtual environment and
builds fusedrnn's worker); see benches/compare/README.md.

For every standard shape (the bench tool's: cell, H = I, batch B, T = 100,
or one streaming step) it draws the weights of one `torch.nn.LSTM`/`GRU`
from a seeded generator (PyTorch's U(-1/sqrt(H), 1/sqrt(H))), an input in
U(-1, 1) and initial states in U(-0.5, 0.5), and gives the same numbers to
every system:
  - fusedrnn: the PyTorch state_dict in a safetensors file, loaded by
    `import::pytorch` in a long-lived worker process (`worker.rs`), f32 and
    bf16 weights, the kernel the host dispatches;
  - ONNX Runtime and OpenVINO: a single-node ONNX model (W, R, B as
    initializers; X, initial_h, initial_c as inputs), `intra_op` threads
    = the phase's thread count, f32 inference precision;
  - PyTorch: the module itself, `torch.set_num_threads(n)`, inference mode.
Before timing, every system's output Y ([T, B, H]) is compared with
fusedrnn's scalar reference (max abs difference, printed and recorded).

Timing is interleaved: each round runs every system on a shape back to
back (the order rotated by one system per round), each system for at least
`--seconds` and 15 calls; the per-system figure is the median over rounds
of the per-round medians, divided by T (us per time step, the whole batch).
One phase per thread count runs in its own process: at 1 thread the
process and the worker are pinned to one core (the peers' thread pools
with it); at 2 threads they may use both, and fusedrnn's worker runs its
calls on a `Team` of 2 (tract stays on one thread).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import zlib

import numpy as np

SHAPES = [
    # name, cell, H, B, T, streaming (the bench tool's standard shapes)
    ("lstm-h64-b1", "lstm", 64, 1, 100, False),
    ("lstm-h128-b1", "lstm", 128, 1, 100, False),
    ("lstm-h256-b1", "lstm", 256, 1, 100, False),
    ("lstm-h512-b1", "lstm", 512, 1, 100, False),
    ("lstm-h1024-b1", "lstm", 1024, 1, 100, False),
    ("gru-h64-b1", "gru", 64, 1, 100, False),
    ("gru-h256-b1", "gru", 256, 1, 100, False),
    ("gru-h1024-b1", "gru", 1024, 1, 100, False),
    ("lstm-h256-b16", "lstm", 256, 16, 100, False),
    ("lstm-h256-b64", "lstm", 256, 64, 100, False),
    ("lstm-h512-step", "lstm", 512, 1, 1, True),
]

FUSED = ["fusedrnn", "fusedrnn-bf16", "fusedrnn-int8", "fusedrnn-int8dyn"]
# fusedrnn's two int8 formats: int8 weights with f32 activations, and
# int8-dynamic (activations quantized per vector and step, integer products).
INT8_FUSED = ["fusedrnn-int8", "fusedrnn-int8dyn"]
PEERS = ["onnxruntime", "openvino", "pytorch"]
# Peers with int8 weights (dynamic quantization: activations quantized per
# call, integer products): ONNX Runtime's DynamicQuantizeLSTM (LSTM only;
# quantize_dynamic leaves a GRU node in f32) and PyTorch's dynamically
# quantized nn.LSTM / nn.GRU. Not counted as the "fastest peer" of the f32
# table; compared with fusedrnn int8 in the int8 table.
INT8_PEERS = ["onnxruntime-int8", "pytorch-int8"]
RUST_PEERS = ["tract"]
LABEL = {
    "fusedrnn": "fusedrnn f32",
    "fusedrnn-bf16": "fusedrnn bf16",
    "fusedrnn-int8": "fusedrnn int8",
    "fusedrnn-int8dyn": "fusedrnn int8-dynamic",
    "onnxruntime-int8": "ONNX Runtime int8",
    "pytorch-int8": "PyTorch int8",
    "onnxruntime": "ONNX Runtime",
    "openvino": "OpenVINO",
    "pytorch": "PyTorch",
    "tract": "tract",
}


# ---------------------------------------------------------------- models


def make_weights(name, cell, h, b, t):
    """The seeded tensors of one shape, PyTorch layout."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    g = 4 if cell == "lstm" else 3
    k = 1.0 / np.sqrt(h)
    u = lambda *s: rng.uniform(-k, k, size=s).astype(np.float32)
    w = {
        "weight_ih_l0": u(g * h, h),
        "weight_hh_l0": u(g * h, h),
        "bias_ih_l0": u(g * h),
        "bias_hh_l0": u(g * h),
        "x": rng.uniform(-1, 1, size=(t, b, h)).astype(np.float32),
        "h0": rng.uniform(-0.5, 0.5, size=(1, b, h)).astype(np.float32),
    }
    if cell == "lstm":
        w["c0"] = rng.uniform(-0.5, 0.5, size=(1, b, h)).astype(np.float32)
    return w


def onnx_model(cell, h, w):
    """A single LSTM/GRU node with PyTorch's numbers in ONNX's gate order."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # PyTorch LSTM i,f,g,o -> ONNX i,o,f,c; GRU r,z,n -> ONNX z,r,h.
    order = [0, 3, 1, 2] if cell == "lstm" else [1, 0, 2]

    def reorder(m):
        blocks = np.split(m, len(order), axis=0)
        return np.concatenate([blocks[i] for i in order], axis=0)

    W = reorder(w["weight_ih_l0"])[None]
    R = reorder(w["weight_hh_l0"])[None]
    B = np.concatenate([reorder(w["bias_ih_l0"]), reorder(w["bias_hh_l0"])])[None]
    inits = [
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(R, "R"),
        numpy_helper.from_array(B, "B"),
    ]
    fl = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("X", fl, ["T", "B", h]),
        helper.make_tensor_value_info("initial_h", fl, [1, "B", h]),
    ]
    node_in = ["X", "W", "R", "B", "", "initial_h"]
    outs = ["Y", "Y_h"]
    attrs = {"hidden_size": h}
    if cell == "lstm":
        inputs.append(helper.make_tensor_value_info("initial_c", fl, [1, "B", h]))
        node_in.append("initial_c")
        outs.append("Y_c")
        op = "LSTM"
    else:
        attrs["linear_before_reset"] = 1
        op = "GRU"
    node = helper.make_node(op, node_in, outs, **attrs)
    dims = {"Y": ["T", 1, "B", h], "Y_h": [1, "B", h], "Y_c": [1, "B", h]}
    outputs = [helper.make_tensor_value_info(o, fl, dims[o]) for o in outs]
    graph = helper.make_graph([node], f"{cell}_h{h}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- systems


class Fused:
    """fusedrnn in the worker process (one name per model and format)."""

    def __init__(self, worker, key, path, cell, b, t, streaming, weights):
        self.worker, self.key = worker, key
        ans = worker.ask(f"load {key} {path} {cell} {t} {b} {int(streaming)} {weights}")
        self.kernel = ans.split()[-1]

    def outputs(self, prefix):
        self.worker.ask(f"dump {self.key} {prefix}")
        return np.fromfile(prefix + ".fast", dtype="<f4"), np.fromfile(prefix + ".ref", dtype="<f4")

    def time(self, seconds):
        return json.loads(self.worker.ask(f"time {self.key} {seconds}"))["ns_per_call"]


class Worker:
    def __init__(self, path, *extra):
        self.p = subprocess.Popen(
            [path, "--serve", *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        if not ans or ans.startswith("error"):
            raise RuntimeError(f"worker: `{line}` -> `{ans}`")
        return ans

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait()


def median_call(fn, seconds):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < 15 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times))


class OnnxRuntime:
    def __init__(self, onnx_path, feeds, threads):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.feeds = feeds
        self.version = ort.__version__

    def run(self):
        return self.s.run(["Y"], self.feeds)[0]

    def outputs(self):
        return self.run()

    def time(self, seconds):
        return median_call(self.run, seconds)


class OpenVino:
    def __init__(self, onnx_path, feeds, threads):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(onnx_path)
        cfg = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        self.c = core.compile_model(model, "CPU", cfg)
        self.req = self.c.create_infer_request()
        self.feeds = feeds
        self.y = self.c.output("Y")
        self.version = ov.get_version().split("-")[0]

    def run(self):
        self.req.infer(self.feeds)

    def outputs(self):
        self.run()
        return self.req.get_tensor(self.y).data.copy()

    def time(self, seconds):
        return median_call(self.run, seconds)


class Torch:
    def __init__(self, cell, h, w, threads, int8=False):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        self.m = cls(h, h).eval()
        sd = {k: torch.from_numpy(w[k]) for k in self.m.state_dict()}
        self.m.load_state_dict(sd)
        if int8:
            # Dynamic quantization replaces child modules: wrap, then unwrap.
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.m = torch.ao.quantization.quantize_dynamic(
                    torch.nn.Sequential(self.m), {cls}, dtype=torch.qint8
                )[0]
        self.x = torch.from_numpy(w["x"])
        h0 = torch.from_numpy(w["h0"])
        self.s = (h0, torch.from_numpy(w["c0"])) if cell == "lstm" else h0
        self.version = torch.__version__.split("+")[0]

    def run(self):
        with self.torch.inference_mode():
            return self.m(self.x, self.s)[0]

    def outputs(self):
        return self.run().numpy()

    def time(self, seconds):
        return median_call(self.run, seconds)


class RustPeer:
    """tract (benches/compare/rust-peers), same protocol as the worker."""

    def __init__(self, worker, key, onnx_path, feeds_path, streaming, version):
        self.worker, self.key, self.version = worker, key, version
        # The dump goes beside the model (the run's --out), not into the
        # current directory.
        self.dump = os.path.join(os.path.dirname(onnx_path), f"{key}.out")
        self.worker.ask(f"load {key} {onnx_path} {feeds_path} {int(streaming)}")

    def outputs(self):
        out = self.dump
        self.worker.ask(f"dump {self.key} {out}")
        return np.fromfile(out, dtype="<f4")

    def time(self, seconds):
        return json.loads(self.worker.ask(f"time {self.key} {seconds}"))["ns_per_call"]


def ort_int8(onnx_path):
    """The model quantized by ONNX Runtime's own tool (LSTM -> DynamicQuantizeLSTM)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = onnx_path.replace(".onnx", ".int8.onnx")
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(onnx_path, out, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
    return out


# ---------------------------------------------------------------- a phase


def cpu_info():
    """The first CPU's model name and the ISA flags that matter here."""
    model, flags = None, set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    isa = [f for f in ("avx512f", "avx512_bf16", "avx512_fp16", "avx2", "fma", "f16c") if f in flags]
    return model, isa


def phase(args):
    """Every shape at one thread count; JSON lines on stdout."""
    threads = args.phase
    if threads == 1:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    import onnx
    from safetensors.numpy import save_file

    work = os.path.join(args.out, "models")
    os.makedirs(work, exist_ok=True)
    # fusedrnn runs on a Team of the phase's thread count (none at 1).
    worker = Worker(args.worker, "--threads", str(threads))
    rust = Worker(args.rust_worker) if args.rust_worker else None
    shapes = [s for s in SHAPES if args.shapes == "all" or s[0] in args.shapes.split(",")]
    systems = {}
    for name, cell, h, b, t, streaming in shapes:
        w = make_weights(name, cell, h, b, t)
        st = os.path.join(work, name + ".safetensors")
        save_file(w, st)
        onnx_path = os.path.join(work, name + ".onnx")
        onnx.save(onnx_model(cell, h, w), onnx_path)
        feeds = {"X": w["x"], "initial_h": w["h0"]}
        if cell == "lstm":
            feeds["initial_c"] = w["c0"]
        sys_ = {}
        for key, fmt in (("fusedrnn", "f32"), ("fusedrnn-bf16", "bf16"), ("fusedrnn-int8", "int8"),
                         ("fusedrnn-int8dyn", "int8-dynamic")):
            sys_[key] = Fused(worker, f"{name}/{fmt}", st, cell, b, t, streaming, fmt)
        sys_["onnxruntime"] = OnnxRuntime(onnx_path, feeds, threads)
        sys_["openvino"] = OpenVino(onnx_path, feeds, threads)
        sys_["pytorch"] = Torch(cell, h, w, threads)
        if cell == "lstm":
            sys_["onnxruntime-int8"] = OnnxRuntime(ort_int8(onnx_path), feeds, threads)
        sys_["pytorch-int8"] = Torch(cell, h, w, threads, int8=True)
        if rust:
            fp = os.path.join(work, name + ".feeds.safetensors")
            save_file(feeds, fp)
            sys_["tract"] = RustPeer(rust, name, onnx_path, fp, streaming, args.tract_version)
        # Agreement with fusedrnn's scalar reference.
        fast, ref = sys_["fusedrnn"].outputs(os.path.join(work, name + ".f32"))
        # (max, mean) of |Y - reference| over the T x B x H outputs: the max
        # is one output's worst case and swings between seeds; the mean is
        # the stable measure of a quantization scheme's error.
        err = lambda y: (float(np.max(np.abs(y - ref))), float(np.mean(np.abs(y.astype(np.float64) - ref))))
        errs = {"fusedrnn": err(fast)}
        for key, fmt in (("fusedrnn-bf16", "bf16"), ("fusedrnn-int8", "int8"), ("fusedrnn-int8dyn", "int8-dynamic")):
            y, _ = sys_[key].outputs(os.path.join(work, f"{name}.{fmt}"))
            errs[key] = err(y)
        for key, s in sys_.items():
            if key not in errs:
                y = np.asarray(s.outputs(), dtype=np.float32).reshape(-1)
                if y.shape != ref.shape:
                    raise RuntimeError(f"{name}: {key} gave {y.shape} outputs, the reference {ref.shape}")
                errs[key] = err(y)
        diffs = {k: v[0] for k, v in errs.items()}
        print(
            f"# {name} ({threads} thread{'s' if threads > 1 else ''}): max |Y - reference|: "
            + ", ".join(f"{LABEL[k]} {v:.2e}" for k, v in diffs.items()),
            file=sys.stderr,
            flush=True,
        )
        systems[name] = (sys_, errs, t)
    # Interleaved rounds.
    times = {(n, k): [] for n, (s, _, _) in systems.items() for k in s}
    for r in range(args.rounds):
        for name, (sys_, _, t) in systems.items():
            keys = list(sys_)
            keys = keys[r % len(keys):] + keys[: r % len(keys)]
            for key in keys:
                times[(name, key)].append(sys_[key].time(args.seconds) / 1000.0 / t)
        print(f"# round {r + 1}/{args.rounds} done ({threads} threads)", file=sys.stderr, flush=True)
    model, isa = cpu_info()
    for name, (sys_, errs, t) in systems.items():
        for key, s in sys_.items():
            rounds = times[(name, key)]
            version = getattr(s, "version", None) or args.fused_version
            rec = {
                "shape": name,
                "threads": threads,
                "system": key,
                "version": version,
                # tract runs one thread; fusedrnn a team of the phase's count.
                "system_threads": 1 if key in RUST_PEERS else threads,
                "us_per_step": float(np.median(rounds)),
                "rounds_us": [round(v, 3) for v in rounds],
                "max_abs_diff": errs[key][0],
                "mean_abs_diff": errs[key][1],
                "cpu": model,
                "isa": isa,
            }
            if key in FUSED:
                rec["kernel"] = s.kernel
            print(json.dumps(rec), flush=True)
    worker.close()
    if rust:
        rust.close()


# ---------------------------------------------------------------- report


def table(recs):
    systems = [s for s in FUSED + PEERS + RUST_PEERS if any(r["system"] == s for r in recs)]
    peers = [s for s in systems if s not in FUSED]
    ratios = [f for f in FUSED if f in systems]
    head = (["shape", "threads"] + [LABEL[s] for s in systems] + ["fastest peer"]
            + [LABEL[f].replace("fusedrnn ", "") + " ratio" for f in ratios] + ["bf16 max err"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {}
    for r in recs:
        by.setdefault((r["shape"], r["threads"]), {})[r["system"]] = r
    order = [s[0] for s in SHAPES]
    for (shape, thr) in sorted(by, key=lambda k: (k[1], order.index(k[0]))):
        row = by[(shape, thr)]
        cells = [shape, str(thr)]
        for s in systems:
            cells.append(f"{row[s]['us_per_step']:.2f}" if s in row else "-")
        best = min((s for s in peers if s in row), key=lambda s: row[s]["us_per_step"])
        bt = row[best]["us_per_step"]
        cells.append(f"{LABEL[best]} {bt:.2f}")
        for f in ratios:
            cells.append(f"**{bt / row[f]['us_per_step']:.2f}x**" if f in row else "-")
        cells.append(f"{row['fusedrnn-bf16']['max_abs_diff']:.1e}" if "fusedrnn-bf16" in row else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def int8_table(recs):
    """fusedrnn's int8 formats against the int8 peers, the fastest f32 peer
    and fusedrnn bf16, with every int8 system's max |Y - f32 reference|."""
    mine_all = [s for s in INT8_FUSED if any(r["system"] == s for r in recs)]
    if not mine_all:
        return ""
    by = {}
    for r in recs:
        by.setdefault((r["shape"], r["threads"]), {})[r["system"]] = r
    q = [s for s in INT8_PEERS if any(r["system"] == s for r in recs)]
    short = {s: LABEL[s].replace("fusedrnn ", "") for s in mine_all}
    head = (["shape", "threads"] + [LABEL[s] for s in mine_all] + ["fusedrnn bf16"] + [LABEL[s] for s in q]
            + ["fastest f32 peer", "fastest int8 peer"]
            + [f"{short[s]} / {what}" for s in mine_all for what in ("f32 peer", "own bf16", "int8 peer")]
            + [f"max err {LABEL[s]}" for s in mine_all + q]
            + [f"mean err {LABEL[s]}" for s in mine_all + q])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = [s[0] for s in SHAPES]
    f32_peers = PEERS + RUST_PEERS
    for (shape, thr) in sorted(by, key=lambda k: (k[1], order.index(k[0]))):
        row = by[(shape, thr)]
        if not any(s in row for s in mine_all):
            continue
        us = lambda s: row[s]["us_per_step"]
        cells = [shape, str(thr)]
        cells += [f"{us(s):.2f}" if s in row else "-" for s in mine_all]
        cells.append(f"{us('fusedrnn-bf16'):.2f}" if "fusedrnn-bf16" in row else "-")
        cells += [f"{us(s):.2f}" if s in row else "-" for s in q]
        best = min((s for s in f32_peers if s in row), key=us)
        cells.append(f"{LABEL[best]} {us(best):.2f}")
        qbest = [s for s in q if s in row]
        b8 = min(qbest, key=us) if qbest else None
        cells.append(f"{LABEL[b8]} {us(b8):.2f}" if b8 else "-")
        for s in mine_all:
            if s not in row:
                cells += ["-", "-", "-"]
                continue
            mine = us(s)
            cells.append(f"**{us(best) / mine:.2f}x**")
            cells.append(f"**{us('fusedrnn-bf16') / mine:.2f}x**" if "fusedrnn-bf16" in row else "-")
            cells.append(f"**{us(b8) / mine:.2f}x**" if b8 else "-")
        cells += [f"{row[s]['max_abs_diff']:.1e}" if s in row else "-" for s in mine_all + q]
        cells += [f"{row[s]['mean_abs_diff']:.2e}" if "mean_abs_diff" in row.get(s, {}) else "-"
                  for s in mine_all + q]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def svg_chart(recs, title):
    """Horizontal bars: each system's time per step relative to fusedrnn f32."""
    colors = {"fusedrnn": "#1b7837", "fusedrnn-bf16": "#7fbf7b", "fusedrnn-int8": "#c2e699", "fusedrnn-int8dyn": "#d9f0a3",
              "onnxruntime": "#2166ac", "onnxruntime-int8": "#92c5de", "openvino": "#b2182b",
              "pytorch": "#ef8a62", "pytorch-int8": "#fddbc7", "tract": "#762a83"}
    rows = {}
    for r in recs:
        rows.setdefault((r["threads"], r["shape"]), {})[r["system"]] = r["us_per_step"]
    order = [s[0] for s in SHAPES]
    keys = sorted(rows, key=lambda k: (k[0], order.index(k[1])))
    systems = [s for s in FUSED + PEERS + INT8_PEERS + RUST_PEERS if any(s in rows[k] for k in keys)]
    bar, gap, left, width = 9, 10, 190, 520
    vmax = max(rows[k][s] / rows[k]["fusedrnn"] for k in keys for s in rows[k])
    vmax = max(2.0, min(vmax, 6.0))
    height = 60 + len(keys) * (len(systems) * bar + gap) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 160}" height="{height}" font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="18" font-size="13" font-weight="bold">{title}</text>',
           '<text x="10" y="34">time per step relative to fusedrnn f32 (shorter is faster; 1.0 = fusedrnn f32)</text>']
    y = 50
    for k in keys:
        out.append(f'<text x="{left - 8}" y="{y + len(systems) * bar / 2 + 4}" text-anchor="end">{k[1]} ({k[0]}t)</text>')
        for s in systems:
            if s in rows[k]:
                v = rows[k][s] / rows[k]["fusedrnn"]
                wpx = min(v, vmax) / vmax * width
                out.append(f'<rect x="{left}" y="{y}" width="{wpx:.1f}" height="{bar - 1}" fill="{colors[s]}"/>')
                out.append(f'<text x="{left + wpx + 3:.1f}" y="{y + bar - 1}" font-size="8">{v:.2f}</text>')
            y += bar
        y += gap
    x1 = left + 1.0 / vmax * width
    out.append(f'<line x1="{x1:.1f}" y1="44" x2="{x1:.1f}" y2="{y}" stroke="black" stroke-dasharray="3,3"/>')
    for i, s in enumerate(systems):
        out.append(f'<rect x="{left + width + 20}" y="{50 + i * 16}" width="10" height="10" fill="{colors[s]}"/>')
        out.append(f'<text x="{left + width + 34}" y="{59 + i * 16}">{LABEL[s]}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="all", help="comma-separated standard shapes, or all")
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    ap.add_argument("--seconds", type=float, default=0.3, help="minimum time per system per round")
    ap.add_argument("--out", default="target/compare", help="output directory")
    ap.add_argument("--worker", required=True, help="fusedrnn's compare worker binary")
    ap.add_argument("--rust-worker", help="the tract worker binary (benches/compare/run --rust-peers)")
    ap.add_argument("--tract-version", default="")
    ap.add_argument("--fused-version", default="")
    ap.add_argument("--phase", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rounds < 3:
        ap.error("--rounds must be at least 3")
    if args.phase:
        phase(args)
        return
    os.makedirs(args.out, exist_ok=True)
    recs = []
    for thr in [int(t) for t in args.threads.split(",")]:
        cmd = [sys.executable, __file__, "--phase", str(thr)] + [a for a in sys.argv[1:]]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(p.returncode)
        recs += [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    model, isa = cpu_info()
    kernel = next((r["kernel"] for r in recs if r["system"] == "fusedrnn"), "?")
    versions = {r["system"]: r["version"] for r in recs}
    head = (f"CPU: {model} ({', '.join(isa)}); fusedrnn kernel {kernel}; "
            + ", ".join(f"{LABEL[s]} {v}" for s, v in versions.items() if s not in FUSED)
            + f"; median of {args.rounds} interleaved rounds, us per time step"
            + " (whole batch); ratio = fastest peer / fusedrnn (> 1: fusedrnn faster);"
            + " at 2 threads fusedrnn runs a Team of 2, the peers 2 intra-op threads, tract one")
    md = head + "\n\n" + table(recs) + "\n"
    t8 = int8_table(recs)
    if t8:
        md += ("\nint8 weights (ratios: the other system's time / fusedrnn's int8 format's; max err / mean err: "
               "max / mean of |Y - f32 reference| over the T x B x H outputs):\n\n" + t8 + "\n")
    print(md)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "results.jsonl"), "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(args.out, "chart.svg"), "w") as f:
        f.write(svg_chart(recs, f"fusedrnn vs peers on {model} ({kernel})"))
    print(f"wrote {args.out}/table.md, results.jsonl, chart.svg", file=sys.stderr)


if __name__ == "__main__":
    main()
