#!/usr/bin/env python3
"""Writes random golden cases in the committed cases' format
(`tests/data/GOLDEN_FORMAT.md`): ONNX-layout cases run by ONNX Runtime
(single node, opset 14, one thread; the `.onnx` model beside each case)
and PyTorch-layout cases run by `torch.nn.LSTM`/`GRU` (eval, inference
mode, one thread; beside each one without a projection its
`torch.onnx.export`, TorchScript or, with `--exporter dynamo`, PyTorch's
default exporter). Every attribute the format describes is drawn at
random: direction, bias, peepholes, clip, input_forget, both GRU variants,
initial states, sequence lengths (ONNX `sequence_lens`, PyTorch packed
sequences), every ONNX activation function with and without its
alpha/beta, layers, bidirectional stacks, proj_size, saturating scales,
and sizes from 1 up (H and I to 67, B to 6, T to 25; `--small`,
`--sizes`). `--like DIR` instead redraws the configurations of DIR's
cases with new data. A draw is kept only if the peer agrees with this
script's float64 evaluation of the equations and the draw is not
ill-conditioned (AGREE, SENSITIVITY below).

It is not part of `cargo test` (it needs onnxruntime and torch): it
tests the reference and every kernel on cases nobody chose by hand.

    pip install onnx onnxruntime torch safetensors numpy   # onnxscript for --exporter dynamo
    python3 tests/data/make_golden.py --out /tmp/rnd --count 300 --seed 7
    cargo run --release --example conformance -- /tmp/rnd
    cargo run --release --example conformance -- /tmp/rnd/*.onnx

The committed sets: `--out tests/data/generated --count 100 --seed 2026
--small` and `--out tests/data/dynamo --layout pytorch --exporter dynamo
--count 3 --seed 5 --small --sizes 48`. The same seed writes the same
draws (the peers' float results may move with their versions).
"""
import argparse
import os

import numpy as np

ACTS = {  # ONNX name -> (uses alpha, uses beta, range of alpha, range of beta)
    "Sigmoid": (False, False, None, None),
    "Tanh": (False, False, None, None),
    "Relu": (False, False, None, None),
    "Affine": (True, True, (0.2, 1.5), (-0.5, 0.5)),
    "LeakyRelu": (True, False, (0.01, 0.5), None),
    "ThresholdedRelu": (True, False, (-0.5, 1.0), None),
    "ScaledTanh": (True, True, (0.5, 2.0), (0.5, 2.0)),
    "HardSigmoid": (True, True, (0.1, 0.4), (0.3, 0.7)),
    "Elu": (True, False, (0.5, 1.5), None),
    "Softsign": (False, False, None, None),
    "Softplus": (False, False, None, None),
}
# A case is kept only if the peer's f32 outputs agree with the float64
# evaluation of the format's equations within this (the committed cases:
# 3.4e-6), so a kernel held to 1e-5 is held to the equations, not to a
# peer's rounding on an ill-conditioned draw (unbounded activations with
# saturating inputs reach outputs in the hundreds).
AGREE = 5e-6
# ... and only if rounding-sized nudges of its inputs and states move the
# float64 outputs by less than this (an LSTM with a Relu candidate and
# saturating weights can grow its cell to 20 and amplify one rounding to
# 1.4e-5; Softplus gates, above 1, amplify the cell's rounding each step).
SENSITIVITY = 2e-6
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 67]


USES = {"affine": (1, 1), "leakyrelu": (1, 0), "thresholdedrelu": (1, 0), "scaledtanh": (1, 1),
        "hardsigmoid": (1, 1), "elu": (1, 0)}  # which of alpha, beta a function takes
DEFAULTS = {"leakyrelu": (0.01, 0.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, 0.0)}  # others: 0, 0


def act(name, a, b):
    """The ONNX activation `name` with parameters a, b, in float64."""
    return {
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "tanh": np.tanh,
        "relu": lambda x: np.maximum(x, 0),
        "affine": lambda x: a * x + b,
        "leakyrelu": lambda x: np.where(x >= 0, x, a * x),
        "thresholdedrelu": lambda x: np.where(x > a, x, 0.0),
        "scaledtanh": lambda x: a * np.tanh(b * x),
        "hardsigmoid": lambda x: np.clip(a * x + b, 0, 1),
        "elu": lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)),
        "softsign": lambda x: x / (1 + np.abs(x)),
        "softplus": lambda x: np.logaddexp(0, x),
    }[name.lower()]


def onnx_acts(meta, d, op):
    """Per direction the (f, g[, h]) functions of an ONNX case, alpha and beta
    consumed in list order, ONNX Runtime's defaults when a list runs out."""
    per = 3 if op == "lstm" else 2
    names = meta["activations"].split(",") if "activations" in meta else ["Sigmoid", "Tanh", "Tanh"][:per] * d
    alphas = [float(v) for v in meta.get("activation_alpha", "").split(",") if v]
    betas = [float(v) for v in meta.get("activation_beta", "").split(",") if v]
    fs = []
    for n in names:
        a, b = DEFAULTS.get(n.lower(), (0.0, 0.0))
        ua, ub = USES.get(n.lower(), (0, 0))
        if ua and alphas:
            a = alphas.pop(0)
        if ub and betas:
            b = betas.pop(0)
        fs.append(act(n, a, b))
    return [fs[k * per:(k + 1) * per] for k in range(d)]


def lstm_step(x, h, c, w, r, bias, peep, fs, clip, input_forget, order, jit=None):
    """One LSTM step in float64; `order` names the gate blocks of w, r, bias
    (ONNX "iofc", PyTorch "ifgo"); `jit` nudges the gate sums by what an
    f32 dot product's rounding may do."""
    hs = c.shape[0]
    pre = rounding(jit, w @ x + r @ h + bias, 4)
    blk = {name: pre[k * hs:(k + 1) * hs] for k, name in enumerate(order)}
    blk["c"] = blk.get("c", blk.get("g"))
    cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    i = fs[0](cl(blk["i"] + peep[0] * c))
    f = 1 - i if input_forget else fs[0](cl(blk["f"] + peep[2] * c))
    c = f * c + i * fs[1](cl(blk["c"]))
    o = fs[0](cl(blk["o"] + peep[1] * c))
    return o * fs[2](c), c


def gru_step(x, h, w, r, wb, rb, fs, clip, lbr, order, jit=None):
    """One GRU step in float64; `order` names the gate blocks (ONNX "zrh",
    PyTorch "rzh"); `jit` as for `lstm_step`."""
    hs = h.shape[0]
    cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    k = {name: slice(j * hs, (j + 1) * hs) for j, name in enumerate(order)}
    wx = w @ x + wb
    z = fs[0](cl(rounding(jit, wx[k["z"]] + r[k["z"]] @ h + rb[k["z"]], 4)))
    rr = fs[0](cl(rounding(jit, wx[k["r"]] + r[k["r"]] @ h + rb[k["r"]], 4)))
    if lbr:
        n = fs[1](cl(rounding(jit, wx[k["h"]] + rr * (r[k["h"]] @ h + rb[k["h"]]), 4)))
    else:
        n = fs[1](cl(rounding(jit, wx[k["h"]] + r[k["h"]] @ (rr * h) + rb[k["h"]], 4)))
    return (1 - z) * n + z * h


def rounding(jit, v, ulps=1):
    """`v` with a random relative error of up to `ulps` f32 roundings
    (2^-24 each) when `jit` is a generator: what computing or storing it
    in f32 may do."""
    return v if jit is None else v * (1 + jit.uniform(-ulps * 2.0**-24, ulps * 2.0**-24, v.shape))


def onnx_f64(m, t, jit=None):
    """Y, Y_h (and Y_c) of an ONNX-layout case in float64, by the format's
    equations (with `jit`, the state is nudged as f32 storage may round it
    after every step)."""
    t = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in t.items()}
    op, hs, steps, batch = m["op"], int(m["hidden_size"]), int(m["seq_len"]), int(m["batch"])
    d = 2 if m["direction"] == "bidirectional" else 1
    g = 4 if op == "lstm" else 3
    clip = float(m["clip"]) if "clip" in m else None
    fns = onnx_acts(m, d, op)
    lens = t.get("sequence_lens", np.full(batch, steps))
    y = np.zeros((steps, d, batch, hs))
    yh, yc = np.zeros((d, batch, hs)), np.zeros((d, batch, hs))
    for di in range(d):
        rev = m["direction"] == "reverse" or di == 1
        w, r = t["W"][di], t["R"][di]
        bias = t["B"][di] if "B" in t else np.zeros(2 * g * hs)
        peep = t["P"][di].reshape(3, hs) if "P" in t else np.zeros((3, hs))
        for b in range(batch):
            h = t["initial_h"][di, b].copy() if "initial_h" in t else np.zeros(hs)
            c = t["initial_c"][di, b].copy() if "initial_c" in t else np.zeros(hs)
            n = int(lens[b])
            for s in range(n - 1, -1, -1) if rev else range(n):
                if op == "lstm":
                    h, c = lstm_step(t["X"][s, b], h, c, w, r, bias[:g * hs] + bias[g * hs:], peep,
                                     fns[di], clip, m.get("input_forget") == "1", "iofc", jit)
                else:
                    h = gru_step(t["X"][s, b], h, w, r, bias[:g * hs], bias[g * hs:], fns[di], clip,
                                 m["linear_before_reset"] == "1", "zrh", jit)
                h, c = rounding(jit, h), rounding(jit, c)
                y[s, di, b] = h
            yh[di, b], yc[di, b] = h, c
    return {"Y": y, "Y_h": yh, **({"Y_c": yc} if op == "lstm" else {})}


def pytorch_f64(m, t, jit=None):
    """output, h_n (and c_n) of a PyTorch-layout case in float64 (`jit` as
    for `onnx_f64`)."""
    t = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in t.items()}
    op, hs, steps, batch = m["op"], int(m["hidden_size"]), int(m["seq_len"]), int(m["batch"])
    layers, d, proj = int(m["num_layers"]), 2 if m["bidirectional"] == "1" else 1, int(m["proj_size"])
    hout = proj or hs
    g = 4 if op == "lstm" else 3
    lens = t.get("lengths", np.full(batch, steps))
    fns = [np.tanh] * 3
    fns[0] = act("sigmoid", 0, 0)
    x = t["x"]
    hn, cn = np.zeros((layers * d, batch, hout)), np.zeros((layers * d, batch, hs))
    for layer in range(layers):
        out = np.zeros((steps, batch, d * hout))
        for di in range(d):
            sfx = f"_l{layer}" + ("_reverse" if di else "")
            w, r = t["weight_ih" + sfx], t["weight_hh" + sfx]
            bi = t.get("bias_ih" + sfx, np.zeros(g * hs))
            bh = t.get("bias_hh" + sfx, np.zeros(g * hs))
            for b in range(batch):
                li = layer * d + di
                h = t["h0"][li, b].copy() if "h0" in t else np.zeros(hout)
                c = t["c0"][li, b].copy() if "c0" in t else np.zeros(hs)
                n = int(lens[b])
                for s in range(n - 1, -1, -1) if di else range(n):
                    if op == "lstm":
                        h, c = lstm_step(x[s, b], h, c, w, r, bi + bh, np.zeros((3, hs)), fns, None,
                                         False, "ifgo", jit)
                        if proj:
                            h = t["weight_hr" + sfx] @ h
                    else:
                        h = gru_step(x[s, b], h, w, r, bi, bh, fns, None, True, "rzh", jit)
                    h, c = rounding(jit, h), rounding(jit, c)
                    out[s, b, di * hout:(di + 1) * hout] = h
                hn[li, b], cn[li, b] = h, c
        x = out
    return {"output": x, "h_n": hn, **({"c_n": cn} if op == "lstm" else {})}


def agrees(got, want):
    """Largest difference between a peer's f32 outputs and the float64 ones."""
    return max(float(np.abs(got[k].astype(np.float64) - want[k]).max(initial=0.0)) for k in want)


def well_posed(peer, f64, meta, tens):
    """A case is kept if the peer's f32 outputs are within AGREE of the
    float64 evaluation `f64(meta, tens)` and three float64 runs with every
    float tensor nudged by up to one f32 rounding (relative 2^-24, seeded),
    every gate sum by up to 4 and the state after every step by up to 1,
    stay within SENSITIVITY of it:
    there 1e-5 holds an f32 implementation to the equations, not to the
    luck of its rounding."""
    if not all(np.isfinite(v).all() for v in peer.values()):
        return False
    want = f64(meta, tens)
    if agrees(peer, want) > AGREE:
        return False
    rng = np.random.default_rng(0)
    for _ in range(3):
        nudged = {k: v.astype(np.float64) * (1 + rng.uniform(-2.0**-24, 2.0**-24, v.shape))
                  if v.dtype == np.float32 else v for k, v in tens.items()}
        if agrees(f64(meta, nudged, rng), want) > SENSITIVITY:
            return False
    return True


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def f32str(v):
    """A decimal that parses to exactly the f32 `v` (shortest repr of the f32)."""
    return repr(float(np.float32(v)))


def save(path, tensors, meta):
    """A safetensors file, byte-reproducible as the format asks: metadata
    keys sorted, tensors in data order (as given), header padded with
    spaces to a multiple of 8."""
    import json
    import struct

    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}
    header, blobs, off = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def onnx_choices(rng, cfg):
    """A random ONNX-layout configuration."""
    op = pick(rng, ["lstm", "gru"])
    direction = pick(rng, ["forward", "reverse", "bidirectional"])
    d = 2 if direction == "bidirectional" else 1
    c = {"op": op, "direction": direction, "h": pick(rng, cfg.sizes), "i": pick(rng, cfg.sizes),
         "b": int(rng.integers(1, 7)), "t": int(rng.integers(1, cfg.max_t + 1)),
         "has_b": rng.random() < 0.8, "has_p": op == "lstm" and rng.random() < 0.35,
         "has_lens": rng.random() < 0.35, "sat": rng.random() < cfg.saturating,
         "input_forget": op == "lstm" and rng.random() < 0.2, "lbr": op == "gru" and rng.random() < 0.5,
         "clip": pick(rng, [0.25, 0.5, 1.0, 2.0, 3.5, 8.0]) if rng.random() < 0.25 else None,
         "acts": None}
    # An LSTM may get either initial state alone (ONNX's inputs are
    # independent; the absent one is zeros).
    has_init = rng.random() < 0.5
    c["init_h"] = has_init and (op == "gru" or rng.random() < 0.8)
    c["init_c"] = has_init and op == "lstm" and (not c["init_h"] or rng.random() < 0.8)
    if rng.random() < 0.35:
        names, alpha, beta = [], [], []
        with_params = rng.random() < 0.5
        for _ in range(d * (3 if op == "lstm" else 2)):
            name = pick(rng, list(ACTS))
            names.append(name)
            ua, ub, ra, rb = ACTS[name]
            if with_params and ua:
                alpha.append(float(np.float32(round(rng.uniform(*ra), 3))))
            if with_params and ub:
                beta.append(float(np.float32(round(rng.uniform(*rb), 3))))
        c["acts"] = (names, alpha, beta)
    return c


def onnx_choices_like(meta, names):
    """The configuration of a given ONNX-layout case (its metadata and the
    names of its tensors), for new data drawn the same way."""
    floats = lambda key: [float(v) for v in meta[key].split(",")] if key in meta else []  # noqa: E731
    return {"op": meta["op"], "direction": meta["direction"], "h": int(meta["hidden_size"]),
            "i": int(meta["input_size"]), "b": int(meta["batch"]), "t": int(meta["seq_len"]),
            "has_b": "B" in names, "has_p": "P" in names, "has_lens": "sequence_lens" in names,
            "sat": meta["saturating"] == "1", "input_forget": meta.get("input_forget") == "1",
            "lbr": meta.get("linear_before_reset") == "1",
            "clip": float(meta["clip"]) if "clip" in meta else None,
            "init_h": "initial_h" in names, "init_c": "initial_c" in names,
            "acts": (meta["activations"].split(","), floats("activation_alpha"), floats("activation_beta"))
            if "activations" in meta else None}


def onnx_case(rng, idx, out, c, like=None):
    """Draws the data of configuration `c`, runs it in ONNX Runtime and
    writes the case (named after `like` when it replays a given case)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    op, direction, h, i, b, t = c["op"], c["direction"], c["h"], c["i"], c["b"], c["t"]
    has_b, has_p, has_lens, sat = c["has_b"], c["has_p"], c["has_lens"], c["sat"]
    init_h, init_c = c["init_h"], c["init_c"]
    g = 4 if op == "lstm" else 3
    d = 2 if direction == "bidirectional" else 1
    meta = {"op": op, "layout": "onnx", "hidden_size": str(h), "input_size": str(i),
            "seq_len": str(t), "batch": str(b), "direction": direction, "opset": "14",
            "saturating": "1" if sat else "0"}
    attrs = {"hidden_size": h, "direction": direction}
    if op == "lstm":
        meta["input_forget"] = "1" if c["input_forget"] else "0"
        attrs["input_forget"] = int(c["input_forget"])
    else:
        meta["linear_before_reset"] = "1" if c["lbr"] else "0"
        attrs["linear_before_reset"] = int(c["lbr"])
    if c["clip"] is not None:
        meta["clip"] = f32str(c["clip"])
        attrs["clip"] = float(c["clip"])
    if c["acts"] is not None:
        names, alpha, beta = c["acts"]
        meta["activations"] = ",".join(names)
        attrs["activations"] = names
        if alpha:
            meta["activation_alpha"] = ",".join(f32str(v) for v in alpha)
            attrs["activation_alpha"] = alpha
        if beta:
            meta["activation_beta"] = ",".join(f32str(v) for v in beta)
            attrs["activation_beta"] = beta
    lim = 1.0 / np.sqrt(h)
    ws = 3.0 if sat else 1.0
    tens = {
        "W": rng.uniform(-lim, lim, (d, g * h, i)) * ws,
        "R": rng.uniform(-lim, lim, (d, g * h, h)) * ws,
    }
    if has_b:
        tens["B"] = rng.uniform(-lim, lim, (d, 2 * g * h)) * ws
    if has_p:
        tens["P"] = rng.uniform(-lim, lim, (d, 3 * h)) * ws
    tens = {k: v.astype(np.float32) for k, v in tens.items()}
    feeds = {"X": (rng.standard_normal((t, b, i)) * (8.0 if sat else 1.0)).astype(np.float32)}
    if init_h:
        feeds["initial_h"] = rng.standard_normal((d, b, h)).astype(np.float32)
    if init_c:
        feeds["initial_c"] = rng.standard_normal((d, b, h)).astype(np.float32)
    if has_lens:
        lens = rng.integers(1, t + 1, b).astype(np.int32)
        feeds["sequence_lens"] = lens
    fl = TensorProto.FLOAT
    node_in, inputs, inits = ["X", "W", "R"], [], []
    inputs.append(helper.make_tensor_value_info("X", fl, list(feeds["X"].shape)))
    inits += [numpy_helper.from_array(tens["W"], "W"), numpy_helper.from_array(tens["R"], "R")]
    for name in ["B", "sequence_lens", "initial_h", "initial_c", "P"]:
        if op == "gru" and name in ("initial_c", "P"):
            continue
        if name in tens:
            inits.append(numpy_helper.from_array(tens[name], name))
            node_in.append(name)
        elif name in feeds:
            dt = TensorProto.INT32 if name == "sequence_lens" else fl
            inputs.append(helper.make_tensor_value_info(name, dt, list(feeds[name].shape)))
            node_in.append(name)
        else:
            node_in.append("")
    while node_in[-1] == "":
        node_in.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "lstm" else [])
    node = helper.make_node(op.upper(), node_in, outs, name=f"{op}_0", **attrs)
    shapes = {"Y": [t, d, b, h], "Y_h": [d, b, h], "Y_c": [d, b, h]}
    outputs = [helper.make_tensor_value_info(o, fl, shapes[o]) for o in outs]
    parts = [op, {"forward": "fwd", "reverse": "rev", "bidirectional": "bidir"}[direction]]
    if op == "gru":
        parts.append("lbr" + meta["linear_before_reset"])
    parts += [p for p, on in [("nobias", not has_b), ("init", init_h), ("initc", init_c and not init_h),
                              ("seqlens", has_lens),
                              ("peephole", has_p), ("inputforget", meta.get("input_forget") == "1"),
                              ("clip", "clip" in meta), ("acts", "activations" in meta),
                              ("saturating", sat)] if on]
    case = like or f"rnd{idx:04d}-onnx-" + "-".join(parts) + f"-h{h}-i{i}-b{b}-t{t}"
    meta["case"] = case
    graph = helper.make_graph([node], case, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)],
                              producer_name="fusedrnn make_golden.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    res = dict(zip(outs, sess.run(outs, feeds)))
    meta["source"] = f"onnxruntime {ort.__version__}"
    if not well_posed(res, onnx_f64, meta, {**tens, **feeds}):
        return None
    onnx.save(model, os.path.join(out, case + ".onnx"))
    save(os.path.join(out, case + ".safetensors"), {**tens, **feeds, **res}, meta)
    return case


def pytorch_choices(rng, cfg):
    """A random PyTorch-layout configuration."""
    op = pick(rng, ["lstm", "gru"])
    h = pick(rng, cfg.sizes)
    return {"op": op, "h": h, "i": pick(rng, cfg.sizes), "b": int(rng.integers(1, 7)),
            "t": int(rng.integers(1, cfg.max_t + 1)), "layers": int(rng.integers(1, cfg.max_layers + 1)),
            "bidir": rng.random() < 0.4, "bias": rng.random() < 0.8,
            "proj": int(rng.integers(1, h)) if op == "lstm" and h > 1 and rng.random() < 0.3 else 0,
            "has_init": rng.random() < 0.5, "has_lens": rng.random() < 0.35,
            "sat": rng.random() < cfg.saturating}


def pytorch_choices_like(meta, names):
    """The configuration of a given PyTorch-layout case."""
    return {"op": meta["op"], "h": int(meta["hidden_size"]), "i": int(meta["input_size"]),
            "b": int(meta["batch"]), "t": int(meta["seq_len"]), "layers": int(meta["num_layers"]),
            "bidir": meta["bidirectional"] == "1", "bias": meta["bias"] == "1",
            "proj": int(meta["proj_size"]), "has_init": "h0" in names, "has_lens": "lengths" in names,
            "sat": meta["saturating"] == "1"}


def pytorch_case(rng, idx, out, c, like=None, exporter="torchscript"):
    """Draws the data of configuration `c`, runs it in PyTorch and writes
    the case (named after `like` when it replays a given case)."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    op, h, i, b, t, layers = c["op"], c["h"], c["i"], c["b"], c["t"], c["layers"]
    bidir, bias, proj, has_init, has_lens, sat = (c["bidir"], c["bias"], c["proj"], c["has_init"],
                                                  c["has_lens"], c["sat"])
    cls = torch.nn.LSTM if op == "lstm" else torch.nn.GRU
    kw = {"proj_size": proj} if op == "lstm" else {}
    m = cls(i, h, num_layers=layers, bias=bias, bidirectional=bidir, **kw).eval()
    lim = 1.0 / np.sqrt(h)
    sd = {}
    for k, v in m.state_dict().items():
        sd[k] = (rng.uniform(-lim, lim, tuple(v.shape)) * (3.0 if sat else 1.0)).astype(np.float32)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    d = 2 if bidir else 1
    hout = proj or h
    x = (rng.standard_normal((t, b, i)) * (8.0 if sat else 1.0)).astype(np.float32)
    tens = dict(sd)
    tens["x"] = x
    state = None
    if has_init:
        h0 = rng.standard_normal((layers * d, b, hout)).astype(np.float32)
        tens["h0"] = h0
        if op == "lstm":
            c0 = rng.standard_normal((layers * d, b, h)).astype(np.float32)
            tens["c0"] = c0
            state = (torch.from_numpy(h0), torch.from_numpy(c0))
        else:
            state = torch.from_numpy(h0)
    lens = None
    if has_lens:
        lens = rng.integers(1, t + 1, b).astype(np.int64)
        tens["lengths"] = lens
    torch.set_num_threads(1)
    with torch.inference_mode():
        xin = torch.from_numpy(x)
        if lens is not None:
            xin = pack_padded_sequence(xin, torch.from_numpy(lens), enforce_sorted=False)
        y, st = m(xin, state)
        if lens is not None:
            y, _ = pad_packed_sequence(y, padding_value=0.0, total_length=t)
    tens["output"] = y.numpy()
    if op == "lstm":
        tens["h_n"], tens["c_n"] = st[0].numpy(), st[1].numpy()
    else:
        tens["h_n"] = st.numpy()
    parts = [op, f"l{layers}"] + [p for p, on in [("bidir", bidir), ("nobias", not bias),
                                                  (f"proj{proj}", proj > 0), ("init", has_init),
                                                  ("packed", has_lens), ("saturating", sat)] if on]
    case = like or f"rnd{idx:04d}-pt-" + "-".join(parts) + f"-h{h}-i{i}-b{b}-t{t}"
    meta = {"op": op, "layout": "pytorch", "hidden_size": str(h), "input_size": str(i),
            "seq_len": str(t), "batch": str(b), "num_layers": str(layers),
            "bidirectional": "1" if bidir else "0", "proj_size": str(proj),
            "bias": "1" if bias else "0", "saturating": "1" if sat else "0", "case": case,
            "source": f"torch {torch.__version__}"}
    peer = {k: tens[k] for k in ("output", "h_n", "c_n") if k in tens}
    inputs = {k: v for k, v in tens.items() if k not in peer}
    if not well_posed(peer, pytorch_f64, meta, inputs):
        return None
    save(os.path.join(out, case + ".safetensors"), tens, meta)
    if not proj:
        export_onnx(m, op, layers * d, b, hs=h, path=os.path.join(out, case + ".onnx"), exporter=exporter)
    return case


def export_onnx(m, op, states, batch, hs, path, exporter):
    """The module as PyTorch exports it. `torchscript` (as
    tests/data/make_onnx.py does): opset 14, one node per layer, layers
    chained by Squeeze or Transpose + Reshape, initial states sliced per
    layer. `dynamo` (`torch.onnx.export`'s default since PyTorch 2.9, needs
    onnxscript): opset 18+, the weights in `<name>.onnx.data` beside the
    model, and, above its folding limit, reordered into ONNX's gate order by
    Slice/Concat/Unsqueeze nodes in the graph."""
    import contextlib
    import io
    import warnings

    import torch

    x = torch.zeros(1, batch, m.input_size)
    h0 = torch.zeros(states, batch, hs)
    args = (x, (h0, h0.clone())) if op == "lstm" else (x, h0)
    names = ["x", "h0", "c0"] if op == "lstm" else ["x", "h0"]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(m, args, path, input_names=names, output_names=["output"], dynamo=True,
                              external_data=True, verbose=False)
        else:
            torch.onnx.export(m, args, path, input_names=names, output_names=["output"], opset_version=14,
                              dynamo=False)


def main():
    global AGREE, SENSITIVITY
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder to write the cases into")
    ap.add_argument("--count", type=int, default=200, help="cases to write")
    ap.add_argument("--seed", type=int, default=1, help="NumPy seed of the draws")
    ap.add_argument("--saturating", type=float, default=0.15, help="share of saturating cases")
    ap.add_argument("--layout", choices=["both", "onnx", "pytorch"], default="both")
    ap.add_argument("--small", action="store_true",
                    help="H and I to 17, T to 12, 2 layers (small files, for committing)")
    ap.add_argument("--sizes", dest="size_list", help="comma-separated H and I to draw from (default: 1 to 67)")
    ap.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                    help="how PyTorch-layout cases are exported to .onnx")
    ap.add_argument("--like", metavar="DIR",
                    help="instead of random configurations, those of the cases in DIR with new data")
    ap.add_argument("--agree", type=float, default=AGREE,
                    help="largest peer-vs-float64 difference of a kept case")
    ap.add_argument("--sensitivity", type=float, default=SENSITIVITY,
                    help="largest move of a kept case's float64 outputs under rounding-sized nudges")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    made = 0
    AGREE, SENSITIVITY = a.agree, a.sensitivity
    a.sizes = [v for v in SIZES if v <= 17] if a.small else SIZES
    if a.size_list:
        a.sizes = [int(v) for v in a.size_list.split(",")]
    a.max_t, a.max_layers = (12, 2) if a.small else (25, 3)
    if a.like:
        # Every given case's configuration with new data (seeded by the
        # case's name): the given set again, as another seed would draw it.
        import glob
        import zlib

        from safetensors import safe_open

        given = sorted(glob.glob(os.path.join(a.like, "*.safetensors")))
        a.count = len(given)
        for path in given:
            with safe_open(path, "numpy") as f:
                meta, names = f.metadata(), set(f.keys())
            name = meta["case"]
            rng = np.random.default_rng([a.seed, zlib.crc32(name.encode())])
            if meta["layout"] == "onnx":
                made += onnx_case(rng, 0, a.out, onnx_choices_like(meta, names), like=name) is not None
            else:
                made += pytorch_case(rng, 0, a.out, pytorch_choices_like(meta, names), like=name,
                                     exporter=a.exporter) is not None
    for idx in range(0 if a.like else a.count):
        # One generator per case: a case's draws do not depend on the others'.
        rng = np.random.default_rng([a.seed, idx])
        if (a.layout if a.layout != "both" else pick(rng, ["onnx", "pytorch"])) == "onnx":
            made += onnx_case(rng, idx, a.out, onnx_choices(rng, a)) is not None
        else:
            made += pytorch_case(rng, idx, a.out, pytorch_choices(rng, a), exporter=a.exporter) is not None
    print(f"wrote {made} cases to {a.out} ({a.count - made} draws left out: not finite, or the "
          f"peer's f32 outputs more than {AGREE:g} from float64, or rounding moves them more than "
          f"{SENSITIVITY:g})")


if __name__ == "__main__":
    main()
