#!/usr/bin/env python3
"""Scaling of fusedrnn's step time with H and with B, next to the floor.

    python3 benches/compare/scaling.py [--kernel FAMILY] [--weights f32|bf16|f16] [--out DIR]

Runs `cargo run --release --example bench -- --scaling --json` (pinned to
one core with taskset when there is one): LSTMs with I = H and T = 100 at
batch 1 for H = 32 to 2048, and at H = 256 for B = 1 to 64. Prints a
markdown table (us per step, the floor = one read of the packed recurrent
weights, GFLOP/s and the share of the host's FMA peak) and writes it with
an SVG chart (two log-log panels) to DIR (default target/scaling). Only the
Python standard library is needed.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys


def run(args):
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "bench", "--", "--scaling", "--json"]
    cmd += ["--kernel", args.kernel, "--weights", args.weights]
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:
        # Build first (unpinned), then run pinned.
        subprocess.run(cmd[:6] + ["--", "--list-kernels"], check=True, stdout=subprocess.DEVNULL)
        cmd = ["taskset", "-c", str(os.cpu_count() - 1)] + cmd
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def parse(name):
    _, h, b = name.split("-")
    return int(h[1:]), int(b[1:])


def table(recs):
    lines = [
        "| shape | H | B | us per step | floor (us) | x floor | GFLOP/s | % of FMA peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        h, b = parse(r["shape"])
        us, floor = r["ns_per_step"] / 1000, r["floor_ns"] / 1000
        lines.append(
            f"| {r['shape']} | {h} | {b} | {us:.2f} | {floor:.2f} | {us / floor:.2f} | "
            f"{r['gflops']:.1f} | {100 * r['gflops'] / r['peak_gflops']:.0f}% |"
        )
    return "\n".join(lines)


def panel(x0, y0, w, h, pts, xlabel, title):
    """A log-log panel: step time and floor against x."""
    xs = [p[0] for p in pts]
    ys = [v for p in pts for v in p[1:]]
    lx0, lx1 = math.log2(min(xs)), math.log2(max(xs))
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    X = lambda v: x0 + (math.log2(v) - lx0) / (lx1 - lx0) * w
    Y = lambda v: y0 + h - (math.log10(v) - ly0) / (ly1 - ly0) * h
    out = [f'<text x="{x0}" y="{y0 - 8}" font-weight="bold">{title}</text>',
           f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for d in range(ly0, ly1 + 1):
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{Y(10 ** d):.1f}" y2="{Y(10 ** d):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 4}" y="{Y(10 ** d) + 4:.1f}" text-anchor="end">{10 ** d:g}</text>')
    for v in xs:
        out.append(f'<text x="{X(v):.1f}" y="{y0 + h + 14}" text-anchor="middle">{v}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 30}" text-anchor="middle">{xlabel}</text>')
    for k, (color, dash) in enumerate((("#1b7837", ""), ("#999999", ' stroke-dasharray="4,3"'))):
        path = " ".join(f"{'M' if i == 0 else 'L'}{X(p[0]):.1f},{Y(p[1 + k]):.1f}" for i, p in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for p in pts:
            out.append(f'<circle cx="{X(p[0]):.1f}" cy="{Y(p[1 + k]):.1f}" r="2.5" fill="{color}"/>')
    return out


def svg(recs, title):
    by_h = [(parse(r["shape"])[0], r["ns_per_step"] / 1000, r["floor_ns"] / 1000)
            for r in recs if parse(r["shape"])[1] == 1]
    by_b = [(parse(r["shape"])[1], r["ns_per_step"] / 1000, r["floor_ns"] / 1000)
            for r in recs if parse(r["shape"])[0] == 256]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="860" height="400" font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="18" font-size="13" font-weight="bold">{title}</text>',
           '<text x="10" y="34">us per step (green) and the floor, one read of the packed recurrent weights (grey, dashed); log-log</text>']
    out += panel(60, 70, 340, 260, sorted(by_h), "H (batch 1, I = H, T = 100)", "against H")
    out += panel(490, 70, 340, 260, sorted(by_b), "B (H = 256)", "against B")
    out.append("</svg>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", default="auto")
    ap.add_argument("--weights", default="f32")
    ap.add_argument("--out", default="target/scaling")
    args = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    recs = run(args)
    if not recs:
        sys.exit("scaling: the bench tool printed nothing")
    kernel = recs[0]["kernel_name"]
    head = (f"CPU: {cpu_model()}; kernel {kernel} ({args.weights} weights); FMA peak "
            f"{recs[0]['peak_gflops']:.0f} GFLOP/s; median of >= 15 runs per shape")
    md = head + "\n\n" + table(recs) + "\n"
    print(md)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scaling.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "scaling.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    with open(os.path.join(args.out, "scaling.svg"), "w") as f:
        f.write(svg(recs, f"fusedrnn LSTM step time on {cpu_model()} ({kernel})"))
    print(f"wrote {args.out}/scaling.md, scaling.jsonl, scaling.svg", file=sys.stderr)


if __name__ == "__main__":
    main()
