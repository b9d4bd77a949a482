#!/usr/bin/env python3
"""Prints hotlimit / governor per benchmark from criterion's saved estimates.

Run after `cargo bench --bench hot_path` (quick mode works too). Reads the median of every
`criterion/<group>/<function>[/<input>]/new/estimates.json` under `$CARGO_TARGET_DIR` (or
`target`; or the criterion folder given), pairs the `hotlimit` function of a group with its
peers for the same input (`governor`, and `governor_foldhash` where the group has it), and
lists the `floor` group after them.
"""

import json
import os
import pathlib
import sys

target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", "target"))
root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else target / "criterion"
medians = {}
for path in sorted(root.glob("**/new/estimates.json")):
    parts = path.relative_to(root).parts[:-2]
    if len(parts) < 2:
        continue
    group, function, rest = parts[0], parts[1], "/".join(parts[2:])
    with open(path) as f:
        medians[(group, rest, function)] = json.load(f)["median"]["point_estimate"]

if not medians:
    sys.exit(f"bench-ratios: no criterion estimates under {root}; run the benches first")

def key_order(item):
    (group, rest, _), _ = item
    return (group, int(rest) if rest.isdigit() else 0, rest)


print("| scenario | hotlimit ns | governor ns | ratio | governor (foldhash) ns | ratio |")
print("|---|---:|---:|---:|---:|---:|")
for (group, rest, function), ours in sorted(medians.items(), key=key_order):
    if function != "hotlimit" or (group, rest, "governor") not in medians:
        continue
    theirs = medians[(group, rest, "governor")]
    fold = medians.get((group, rest, "governor_foldhash"))
    fold_cells = f"{fold:.1f} | {ours / fold:.2f}" if fold else "- | -"
    name = f"{group} {rest}".strip()
    print(f"| {name} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | {fold_cells} |")

floors = [(f"{function} {rest}".strip(), ns) for (g, rest, function), ns in medians.items()
          if g == "floor"]
if floors:
    print()
    print("| floor | ns |")
    print("|---|---:|")
    for name, ns in sorted(floors):
        print(f"| {name} | {ns:.1f} |")
