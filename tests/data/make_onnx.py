#!/usr/bin/env python3
"""Writes `tests/data/golden/<case>.onnx` for every golden case but those
with an LSTM projection (ONNX's LSTM has none).

ONNX-layout cases:
a single-node LSTM/GRU model (opset 14, layout 0) built with the `onnx`
helper API from the case's own W, R, B, P tensors and attributes (its
metadata), with X, sequence_lens, initial_h, initial_c as graph inputs
when the case has them. The conformance runner, given such a file, takes
weights and attributes from it and inputs and expected outputs from the
case file beside it (same stem).

Odd-numbered cases store their initializers in the typed fields
(`float_data`), the others in `raw_data`, so both encodings are covered.

PyTorch-layout cases: `torch.onnx.export` (TorchScript exporter, opset 14)
of the `nn.LSTM`/`nn.GRU` with the case's state_dict: one node per layer
(both directions in one node), the layers chained through Squeeze or
Transpose + Reshape, the initial states sliced per layer, as PyTorch
writes them; fusedrnn loads such a file as one multi-layer model.

    pip install onnx safetensors numpy torch
    python3 tests/data/make_onnx.py
"""
import glob
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors import safe_open

here = os.path.dirname(os.path.abspath(__file__))
golden = os.path.join(here, "golden")


def initializer(name, arr, raw):
    if raw:
        return numpy_helper.from_array(arr.astype(np.float32), name)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.astype(np.float32).ravel().tolist())


def main():
    made = 0
    for k, path in enumerate(sorted(glob.glob(os.path.join(golden, "onnx-*.safetensors")))):
        case = os.path.basename(path)[: -len(".safetensors")]
        with safe_open(path, "numpy") as f:
            meta = f.metadata()
            t = {n: f.get_tensor(n) for n in f.keys()}
        op = meta["op"].upper()
        fl = TensorProto.FLOAT
        inits = [initializer("W", t["W"], k % 2 == 0), initializer("R", t["R"], k % 2 == 0)]
        node_in = ["X", "W", "R"]
        inputs = [helper.make_tensor_value_info("X", fl, list(t["X"].shape))]
        for name in ["B", "sequence_lens", "initial_h", "initial_c", "P"]:
            if op == "GRU" and name in ("initial_c", "P"):
                continue
            if name in t:
                if name in ("B", "P"):
                    inits.append(initializer(name, t[name], k % 2 == 0))
                else:
                    dt = TensorProto.INT32 if name == "sequence_lens" else fl
                    inputs.append(helper.make_tensor_value_info(name, dt, list(t[name].shape)))
                node_in.append(name)
            else:
                node_in.append("")
        while node_in and node_in[-1] == "":
            node_in.pop()
        attrs = {"hidden_size": int(meta["hidden_size"]), "direction": meta["direction"]}
        if "clip" in meta:
            attrs["clip"] = float(meta["clip"])
        if op == "LSTM":
            attrs["input_forget"] = int(meta.get("input_forget", "0"))
        else:
            attrs["linear_before_reset"] = int(meta.get("linear_before_reset", "0"))
        if "activations" in meta:
            attrs["activations"] = meta["activations"].split(",")
        for key in ("activation_alpha", "activation_beta"):
            if key in meta:
                attrs[key] = [float(v) for v in meta[key].split(",")]
        outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
        node = helper.make_node(op, node_in, outs, name=f"{op.lower()}_0", **attrs)
        outputs = [helper.make_tensor_value_info(o, fl, list(t[o].shape)) for o in outs]
        graph = helper.make_graph([node], case, inputs, outputs, inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="fusedrnn make_onnx.py")
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(golden, case + ".onnx"))
        made += 1
    made += export_pytorch_cases()
    print(f"wrote {made} .onnx files to {golden}")


def export_pytorch_cases():
    import warnings

    import torch

    made = 0
    for path in sorted(glob.glob(os.path.join(golden, "pt-*.safetensors"))):
        case = os.path.basename(path)[: -len(".safetensors")]
        with safe_open(path, "numpy") as f:
            meta = f.metadata()
            t = {n: f.get_tensor(n) for n in f.keys()}
        if int(meta["proj_size"]) > 0:
            continue
        cls = torch.nn.LSTM if meta["op"] == "lstm" else torch.nn.GRU
        m = cls(
            int(meta["input_size"]),
            int(meta["hidden_size"]),
            num_layers=int(meta["num_layers"]),
            bias=meta["bias"] == "1",
            bidirectional=meta["bidirectional"] == "1",
        ).eval()
        m.load_state_dict({k: torch.from_numpy(t[k]) for k in m.state_dict()})
        d = 2 if m.bidirectional else 1
        b = int(meta["batch"])
        x = torch.from_numpy(t["x"])
        h0 = torch.zeros(m.num_layers * d, b, m.hidden_size)
        args = (x, (h0, h0.clone())) if cls is torch.nn.LSTM else (x, h0)
        names = ["x", "h0", "c0"] if cls is torch.nn.LSTM else ["x", "h0"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, args, os.path.join(golden, case + ".onnx"), input_names=names,
                              output_names=["output"], opset_version=14, dynamo=False)
        made += 1
    return made


if __name__ == "__main__":
    main()
