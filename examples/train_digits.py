#!/usr/bin/env python3
"""Train the two digits classifiers that `cargo run --release --example digits` runs.

Data: the handwritten digits set that ships inside scikit-learn
(`sklearn.datasets.load_digits`, 1797 images of 8x8 pixels, values 0..16; no
download). Each image is read as a sequence of T = 8 rows of I = 8 pixels,
scaled to [0, 1] (pixel / 16). Split: `train_test_split(test_size=0.25,
random_state=0, stratify=labels)`, so 450 test samples.

Models (`Classifier` below): an RNN over the 8 rows, then one `nn.Linear` on
the last layer's final hidden state (`h_n`, the forward direction first, then
the reverse one for a bidirectional RNN) giving 10 logits.

- `digits-lstm`: `nn.LSTM(8, 64, num_layers=2)`
- `digits-gru`:  `nn.GRU(8, 64, bidirectional=True)`

Written to `--out` (default `tests/data/digits` beside this script's crate):

- `<model>.safetensors`: the classifier's `state_dict` as PyTorch names it
  (`rnn.weight_ih_l0`, ..., `fc.weight` [10, D*H], `fc.bias` [10]), saved with
  `safetensors.torch.save_file`; string metadata says how it was trained.
- `test.safetensors`: `x` f32 [N, 8, 8] (batch-first, already scaled),
  `label` i64 [N], and for every model `<model>.logits` f32 [N, 10] and
  `<model>.pred` i64 [N] (argmax of the logits), computed by PyTorch in f32.

Runs on CPU in well under a minute (one thread, fixed seeds, deterministic
algorithms), so a retrain gives the same files on the same PyTorch build:

    pip install torch scikit-learn safetensors numpy
    python3 examples/train_digits.py

`--time` instead times PyTorch on the committed files the way the example
times fusedrnn (per sample, batch 1, one thread), for a side-by-side figure.
"""

import argparse
import os
import time

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

SEED = 0
ROWS = 8
PIXELS = 8
CLASSES = 10


class Classifier(nn.Module):
    """RNN over the image rows, then a linear layer on the final hidden state."""

    def __init__(self, cell, hidden, num_layers, bidirectional):
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(
            PIXELS,
            hidden,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self.dirs = 2 if bidirectional else 1
        self.fc = nn.Linear(self.dirs * hidden, CLASSES)

    def forward(self, x):
        _, h_n = self.rnn(x)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        # h_n is [num_layers * dirs, N, H]; the last layer's entries, forward first.
        feats = torch.cat([h_n[-self.dirs + d] for d in range(self.dirs)], dim=1)
        return self.fc(feats)


MODELS = {
    "digits-lstm": dict(cell="lstm", hidden=64, num_layers=2, bidirectional=False),
    "digits-gru": dict(cell="gru", hidden=64, num_layers=1, bidirectional=True),
}


def train(name, spec, x_train, y_train, epochs, log):
    torch.manual_seed(SEED)
    model = Classifier(**spec)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    n = x_train.shape[0]
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, 32):
            idx = perm[start : start + 32]
            opt.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        sched.step()
        if log and (epoch + 1) % 10 == 0:
            print(f"  {name} epoch {epoch + 1}: train loss {total / n:.4f}")
    model.eval()
    return model


def time_pytorch(out, rounds=15):
    """Per-sample latency of PyTorch on the committed files (batch 1, one thread).

    The same measurement as the `digits` example's: every test sample run
    alone (`torch.inference_mode`), median over `rounds` passes.
    """
    from safetensors.torch import load_file

    test = load_file(os.path.join(out, "test.safetensors"))
    x = test["x"]
    for name, spec in MODELS.items():
        model = Classifier(**spec)
        model.load_state_dict(load_file(os.path.join(out, f"{name}.safetensors")))
        model.eval()
        times = []
        with torch.inference_mode():
            for k in range(x.shape[0]):  # warm-up
                model(x[k : k + 1])
            for _ in range(rounds):
                for k in range(x.shape[0]):
                    t0 = time.perf_counter()
                    model(x[k : k + 1])
                    times.append((time.perf_counter() - t0) * 1e6)
            t0 = time.perf_counter()
            for _ in range(rounds):
                model(x)
            batch_us = (time.perf_counter() - t0) * 1e6 / rounds / x.shape[0]
        times.sort()
        print(
            f"{name}: PyTorch {torch.__version__} per-sample latency (batch 1, median of "
            f"{len(times)}): {times[len(times) // 2]:.2f} us; whole test set as one batch: "
            f"{batch_us:.2f} us per sample"
        )


def export_onnx(out):
    """Each trained classifier as an ONNX graph (the RNN as one node per
    layer, the head as Gemm), for `cargo run --release --example digits --
    --onnx`."""
    import warnings

    from safetensors.torch import load_file

    for name, spec in MODELS.items():
        model = Classifier(spec["cell"], spec["hidden"], spec["num_layers"], spec["bidirectional"]).eval()
        model.load_state_dict(load_file(os.path.join(out, f"{name}.safetensors")))
        x = torch.zeros(1, ROWS, PIXELS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), os.path.join(out, f"{name}.onnx"), input_names=["x"],
                              output_names=["logits"], opset_version=14, dynamo=False)
        print(f"wrote {name}.onnx")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "digits"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument(
        "--onnx",
        action="store_true",
        help="do not train: export the files in --out to <model>.onnx (torch.onnx.export, opset 14)",
    )
    ap.add_argument(
        "--time",
        action="store_true",
        help="do not train: time PyTorch on the files in --out, as the digits example times fusedrnn",
    )
    args = ap.parse_args()

    torch.set_num_threads(1)
    if args.onnx:
        export_onnx(args.out)
        return
    if args.time:
        time_pytorch(args.out)
        return
    # scikit-learn only for training (--onnx and --time do not need it).
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # [1797, 8, 8]
    labels = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=0.25, random_state=SEED, stratify=labels
    )
    x_train, y_train = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    x_test, y_test = torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(y_te)

    os.makedirs(args.out, exist_ok=True)
    test = {"x": x_test.contiguous(), "label": y_test.contiguous()}
    for name, spec in MODELS.items():
        t0 = time.time()
        model = train(name, spec, x_train, y_train, args.epochs, not args.quiet)
        with torch.no_grad():
            logits = model(x_test).contiguous()
        pred = logits.argmax(dim=1)
        acc = (pred == y_test).float().mean().item() * 100
        top2 = logits.topk(2, dim=1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
        test[f"{name}.logits"] = logits
        test[f"{name}.pred"] = pred.contiguous()
        meta = {
            "model": name,
            "cell": spec["cell"],
            "hidden_size": str(spec["hidden"]),
            "num_layers": str(spec["num_layers"]),
            "bidirectional": str(spec["bidirectional"]).lower(),
            "head": "fc(cat(h_n[-D:])) -> 10 logits",
            "input": "sklearn load_digits, 8 rows of 8 pixels, pixel/16, batch_first",
            "epochs": str(args.epochs),
            "seed": str(SEED),
            "torch": torch.__version__,
            "test_accuracy_percent": f"{acc:.2f}",
        }
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(args.out, f"{name}.safetensors"), metadata=meta)
        print(
            f"{name}: test accuracy {acc:.2f}% on {len(y_test)} samples; "
            f"smallest top-1 logit margin {margin:.2e}; trained in {time.time() - t0:.1f} s"
        )
    save_file(
        test,
        os.path.join(args.out, "test.safetensors"),
        metadata={
            "split": "train_test_split(test_size=0.25, random_state=0, stratify=labels)",
            "x": "[N, 8, 8] f32, rows of pixel/16, batch-first",
            "models": ",".join(MODELS),
        },
    )


if __name__ == "__main__":
    main()
