#!/usr/bin/env python3
"""Writes `tests/data/golden/<case>.onnx` for every ONNX-layout golden case:
a single-node LSTM/GRU model (opset 14, layout 0) built with the `onnx`
helper API from the case's own W, R, B, P tensors and attributes (its
metadata), with X, sequence_lens, initial_h, initial_c as graph inputs
when the case has them. The conformance runner, given such a file, takes
weights and attributes from it and inputs and expected outputs from the
case file beside it (same stem).

Odd-numbered cases store their initializers in the typed fields
(`float_data`), the others in `raw_data`, so both encodings are covered.

    pip install onnx safetensors numpy
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
    print(f"wrote {made} .onnx files to {golden}")


if __name__ == "__main__":
    main()
