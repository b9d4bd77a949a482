#!/usr/bin/env bash
# Loopback load test of the example server, with the rate-limit layers and without them.
#
#   bash scripts/load-test.sh [ROUNDS] [SECONDS]     (defaults: 5 rounds of 5 s)
#
# Needs `wrk` (Debian: `apt-get install wrk`) and `taskset` (util-linux). The server runs on
# CPU 0 and wrk on CPU 1, so the load generator does not take the server's processor and the
# server's throughput is what one core of it serves. The set-ups take turns within each round,
# so a slow spell of a shared machine hits them alike; the median round is reported.
#
# - `no-limit`: `--no-limit`, the same routes without the layers (the baseline);
# - `fixed-headers`: `--fixed-headers`, no layers, but each response carries the five
#   rate-limit header fields, fixed: what sending the fields costs HTTP, limiter aside;
# - `allowed`: the layers, with a quota no run can exhaust: each request is checked, passes,
#   and carries the rate-limit header fields;
# - `allowed-no-headers`: the same with `--no-headers`;
# - `denied`: the layers at the default 100/min: after the first hundred, each request is
#   answered 429 by the layer, with its problem+json body and header fields.
set -euo pipefail

rounds=${1:-5}
seconds=${2:-5}
cd "$(dirname "$0")/.."

for tool in wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "load-test: $tool is needed" >&2; exit 2; }
done
if [ "$(nproc)" -lt 2 ]; then
    echo "load-test: two CPUs are needed (one for the server, one for wrk)" >&2
    exit 2
fi

cargo build --release --example server
server="${CARGO_TARGET_DIR:-target}/release/examples/server"
addr=127.0.0.1:3017
url="http://$addr/api/data"

# A server left behind would answer for the next set-up: stop ours on any way out, and refuse
# to start while something else holds the port.
pid=
for signal in INT:130 TERM:143 HUP:129; do
    trap "[ -n \"\$pid\" ] && kill \"\$pid\" 2>/dev/null; exit ${signal#*:}" "${signal%:*}"
done
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null' EXIT
if curl -s -o /dev/null "http://$addr/"; then
    echo "load-test: something already listens on $addr" >&2
    exit 2
fi

# One wrk run against the server started with "$@": its requests per second go to `rate`.
# It runs in this shell, not in a subshell, so that a failure or an interrupt ends the script
# and the traps see the server's pid.
run() {
    taskset -c 0 "$server" --addr "$addr" "$@" >/dev/null &
    pid=$!
    local ready=
    for _ in $(seq 100); do
        if curl -s -o /dev/null -H 'X-API-Key: alice' "$url"; then ready=1; break; fi
        sleep 0.05
    done
    if [ -z "$ready" ]; then
        echo "load-test: the server ($*) did not answer" >&2
        exit 1
    fi
    rate=$(taskset -c 1 wrk -t1 -c32 -d"${seconds}s" -H 'X-API-Key: alice' "$url" \
        | awk '/^Requests\/sec:/ { print $2 }')
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" || true
    pid=
    if [ -z "$rate" ] || ! awk -v r="$rate" 'BEGIN { exit !(r > 0) }'; then
        echo "load-test: wrk measured nothing against the server ($*)" >&2
        exit 1
    fi
}

declare -A results
open=100000000/s
names=(no-limit fixed-headers allowed allowed-no-headers denied)
for round in $(seq "$rounds"); do
    run --no-limit
    results[no-limit]+="$rate "
    run --fixed-headers --quota "$open"
    results[fixed-headers]+="$rate "
    run --quota "$open"
    results[allowed]+="$rate "
    run --quota "$open" --no-headers
    results[allowed-no-headers]+="$rate "
    run
    results[denied]+="$rate "
    echo "round $round of $rounds done" >&2
done

# The middle value; with an even count, the mean of the two middle ones.
median() {
    tr ' ' '\n' | grep . | sort -g \
        | awk '{ v[NR] = $1 } END { print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }'
}
base=$(echo "${results[no-limit]}" | median)
echo
fixed=$(echo "${results[fixed-headers]}" | median)
echo "| set-up | requests/s (median of $rounds x ${seconds}s) | of no-limit | of fixed-headers |"
echo "|---|---:|---:|---:|"
for name in "${names[@]}"; do
    value=$(echo "${results[$name]}" | median)
    awk -v n="$name" -v v="$value" -v b="$base" -v f="$fixed" \
        'BEGIN { printf "| %s | %.0f | %.1f%% | %.1f%% |\n", n, v, 100 * v / b, 100 * v / f }'
done
for name in "${names[@]}"; do
    echo "$name runs: ${results[$name]}"
done
