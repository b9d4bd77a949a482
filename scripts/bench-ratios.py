#!/usr/bin/env python3
"""Prints hotlimit / governor per benchmark from criterion's saved estimates.

Run after `cargo bench --bench hot_path` (quick mode works too). Reads the median of every
`target/criterion/<group>/<function>[/<input>]/new/estimates.json` and pairs the `hotlimit`
function of a group with its `governor` peer for the same input.
"""

import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
medians = {}
for path in sorted(root.glob("**/new/estimates.json")):
    parts = path.relative_to(root).parts[:-2]
    if len(parts) < 2:
        continue
    group, function, rest = parts[0], parts[1], "/".join(parts[2:])
    with open(path) as f:
        medians[(group, rest, function)] = json.load(f)["median"]["point_estimate"]

print(f"| {'scenario':<28} | {'hotlimit ns':>11} | {'governor ns':>11} | {'ratio':>6} |")
print(f"|{'-' * 30}|{'-' * 13}:|{'-' * 13}:|{'-' * 7}:|")
for (group, rest, function), ours in sorted(medians.items()):
    if function != "hotlimit":
        continue
    theirs = medians.get((group, rest, "governor"))
    if theirs is None:
        continue
    name = f"{group} {rest}".strip()
    print(f"| {name:<28} | {ours:>11.1f} | {theirs:>11.1f} | {ours / theirs:>6.2f} |")
