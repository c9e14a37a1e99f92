#!/usr/bin/env bash
# Timing accuracy: the simulator answers 50 ms after a request reaches its socket; prints the
# distribution of (measured latency - 50 ms) of the exporter's probes (from /status.json), next to
# wrk's for the same request as the reference, measured in alternating rounds. See
# docs/performance.md.
#
#   scripts/bench-timing.sh [--rate=10] [--rounds=6] [--round-seconds=20] [--wrk-seconds=10]
#                           [--out=FILE.json]
#
# Ends with "bench-timing: N passed, M failed"; exits 0 when the goal is missed, non-zero when the
# measurement failed.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
bench_deps wrk:wrk
bench_build
bench_locked python3 "$BENCH_ROOT/scripts/lib/bench_timing.py" "$@"
