#!/usr/bin/env python3
"""Draws ns per keyed check against the number of keys, from criterion's saved estimates.

Run after `cargo bench --bench hot_path`; writes docs/keyed-scaling.svg (or the path given).
Reads `$CARGO_TARGET_DIR/criterion` when that variable is set, else `target/criterion`.
One line per limiter of the `keyed_allowed` group, key counts on a logarithmic axis.
"""

import json
import math
import os
import pathlib
import sys

target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", "target"))
root = target / "criterion" / "keyed_allowed"
out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/keyed-scaling.svg")
colors = {"hotlimit": "#d62728", "governor": "#1f77b4", "governor_foldhash": "#7f7f7f"}
labels = {
    "hotlimit": "hotlimit",
    "governor": "governor 0.10 (default hasher)",
    "governor_foldhash": "governor 0.10 (foldhash, as hotlimit)",
}

series = {}
for name in colors:
    points = []
    for path in sorted((root / name).glob("*/new/estimates.json")):
        keys = int(path.parts[-3])
        with open(path) as f:
            points.append((keys, json.load(f)["median"]["point_estimate"]))
    if points:
        series[name] = sorted(points)
if not series:
    sys.exit(f"no estimates under {root}: run `cargo bench --bench hot_path` first")

width, height, left, right, top, bottom = 720, 420, 70, 20, 40, 60
xs = [k for points in series.values() for k, _ in points]
ys = [v for points in series.values() for _, v in points]
x_lo, x_hi = math.log10(min(xs)), math.log10(max(xs))
y_hi = max(ys) * 1.1


def px(keys):
    return left + (math.log10(keys) - x_lo) / (x_hi - x_lo) * (width - left - right)


def py(ns):
    return height - bottom - ns / y_hi * (height - top - bottom)


svg = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
    'font-family="sans-serif" font-size="12">',
    f'<rect width="{width}" height="{height}" fill="white"/>',
    f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">'
    "keyed check, allowed: ns per call against keys in the limiter (lower is better)</text>",
]
for exp in range(int(x_lo), int(x_hi) + 1):
    x = px(10**exp)
    svg.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{height - bottom}" stroke="#eee"/>')
    svg.append(f'<text x="{x}" y="{height - bottom + 18}" text-anchor="middle">10^{exp}</text>')
step = 10 ** math.floor(math.log10(y_hi / 4))
tick = 0.0
while tick <= y_hi:
    y = py(tick)
    svg.append(f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" stroke="#eee"/>')
    svg.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{tick:g}</text>')
    tick += step * (1 if y_hi / step < 10 else 2)
svg.append(f'<text x="{width / 2}" y="{height - 20}" text-anchor="middle">keys</text>')
svg.append(f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" '
           'text-anchor="middle">ns per check</text>')
for i, (name, points) in enumerate(series.items()):
    path = " ".join(f"{px(k):.1f},{py(v):.1f}" for k, v in points)
    svg.append(f'<polyline points="{path}" fill="none" stroke="{colors[name]}" stroke-width="2"/>')
    for k, v in points:
        svg.append(f'<circle cx="{px(k):.1f}" cy="{py(v):.1f}" r="3" fill="{colors[name]}"/>')
    y = top + 10 + 16 * i
    svg.append(f'<line x1="{left + 10}" y1="{y}" x2="{left + 30}" y2="{y}" '
               f'stroke="{colors[name]}" stroke-width="2"/>')
    svg.append(f'<text x="{left + 36}" y="{y + 4}">{labels[name]}</text>')
svg.append("</svg>")

out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("\n".join(svg) + "\n")
print(f"wrote {out}")
