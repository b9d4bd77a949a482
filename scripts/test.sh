#!/usr/bin/env bash
# The whole test suite: unit, property, integration, end-to-end, Redis and doc tests of every
# feature, then the loom model checks. Run from anywhere in the repository.
#
# The Redis tests start their own `redis-server` and skip with a message when there is none on
# PATH, unless HOTLIMIT_REQUIRE_REDIS=1 (set by .ci/run), which makes them fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

{
    cargo test --workspace --all-features
    bash scripts/loom.sh
} 2>&1 | tee "$log"

# One line for the whole run, summed over every test binary above.
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
