#!/usr/bin/env python3
"""Writes `tests/data/keras/*.safetensors`: Keras 3 `LSTM` and `GRU`
layers (both `reset_after` variants, with and without bias, the default
and other `activation` / `recurrent_activation` pairs, among them
`hard_sigmoid`, which Keras 3 defines as relu6(x + 3) / 6) with random
weights, run on a random batch-major input by Keras itself (torch
backend), so that `fusedrnn::import::keras` is held to Keras's own
outputs rather than to our reading of its layout.

One file per layer: `kernel` [I, G*H], `recurrent_kernel` [H, G*H],
`bias` ([G*H], or [2, 3H] for a GRU with reset_after) when the layer has
one, exactly as `layer.get_weights()` returns them; `x` [B, T, I] and the
expected `y` [B, T, H] (`return_sequences=True`). Metadata: `cell`
(`lstm`|`gru`), `reset_after` (`0`/`1`, GRU), `use_bias`, `activation`,
`recurrent_activation`, `source` (`keras <version> (<backend>)`).

    pip install keras torch safetensors numpy
    python3 tests/data/make_keras.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
ACTS = [("tanh", "sigmoid"), ("tanh", "hard_sigmoid"), ("relu", "sigmoid"), ("softsign", "hard_sigmoid")]


def main():
    os.makedirs(here, exist_ok=True)
    rng = np.random.default_rng(2026)
    made = 0
    for cell in ["lstm", "gru"]:
        for reset_after in [True, False] if cell == "gru" else [False]:
            for use_bias in [True, False]:
                for act, ract in ACTS:
                    h, i = int(rng.integers(1, 24)), int(rng.integers(1, 24))
                    b, t = int(rng.integers(1, 5)), int(rng.integers(1, 12))
                    kw = dict(return_sequences=True, use_bias=use_bias, activation=act,
                              recurrent_activation=ract)
                    if cell == "gru":
                        layer = keras.layers.GRU(h, reset_after=reset_after, **kw)
                    else:
                        layer = keras.layers.LSTM(h, **kw)
                    layer.build((b, t, i))
                    lim = 1.0 / np.sqrt(h)
                    ws = [rng.uniform(-lim, lim, w.shape).astype(np.float32) for w in layer.get_weights()]
                    layer.set_weights(ws)
                    x = rng.standard_normal((b, t, i)).astype(np.float32)
                    y = keras.ops.convert_to_numpy(layer(x)).astype(np.float32)
                    tens = {"kernel": ws[0], "recurrent_kernel": ws[1], "x": x, "y": y}
                    if use_bias:
                        tens["bias"] = ws[2]
                    variant = ("-reset-after" if reset_after else "-reset-before") if cell == "gru" else ""
                    name = (f"keras-{cell}{variant}{'' if use_bias else '-nobias'}-{act}-{ract}"
                            f"-h{h}-i{i}-b{b}-t{t}")
                    meta = {"cell": cell, "reset_after": str(int(reset_after)), "use_bias": str(int(use_bias)),
                            "activation": act, "recurrent_activation": ract,
                            "source": f"keras {keras.__version__} ({keras.backend.backend()})"}
                    # C order: Keras's torch backend returns y as a permuted view.
                    tens = {k: np.ascontiguousarray(v) for k, v in tens.items()}
                    save_file(tens, os.path.join(here, name + ".safetensors"), metadata=meta)
                    made += 1
    print(f"wrote {made} cases to {here}")


if __name__ == "__main__":
    main()
