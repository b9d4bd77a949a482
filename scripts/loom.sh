#!/usr/bin/env bash
# Runs the loom model checks in loom-tests/ (release build, output shown).
#
# The cfg goes in RUSTFLAGS, which changes every crate's build, so the models build in their own
# target directory and never invalidate the normal one. Measured on the 2-core development
# machine: about 45 s of compiling from a cold target directory; the models and negative
# controls themselves explore about 350,000 executions in about 60 s. The run must stay under
# 5 minutes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/loom-tests"
RUSTFLAGS="--cfg hotlimit_loom" CARGO_TARGET_DIR="$repo/target/loom" \
    cargo test --release -- --nocapture
