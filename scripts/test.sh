#!/usr/bin/env bash
# The whole test suite: unit, integration, end-to-end and doc tests of every feature, then the
# loom model checks. Run from anywhere in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features
bash scripts/loom.sh
