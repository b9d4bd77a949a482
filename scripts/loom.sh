#!/usr/bin/env bash
# Runs the loom model checks in loom-tests/ (release build, output shown).
#
# The cfg goes in RUSTFLAGS, which changes every crate's build, so the models build in their own
# target directory and never invalidate the normal one. Measured on the 2-core development
# machine: about 45 s from a cold target directory (mostly compiling), about 2 s warm; the
# models themselves explore about 26,000 executions in about 2 s. The run must stay under
# 5 minutes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/loom-tests"
RUSTFLAGS="--cfg hotlimit_loom" CARGO_TARGET_DIR="$repo/target/loom" \
    cargo test --release -- --nocapture
