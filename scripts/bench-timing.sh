#!/usr/bin/env bash
# Timing accuracy: the simulator answers after a fixed 50 ms; prints the distribution of
# (measured latency - 50 ms) of a few hundred probes (from /status.json), next to wrk's for the same
# request as the reference. See docs/performance.md.
#
#   scripts/bench-timing.sh [--rate=10] [--duration=40] [--wrk-seconds=20] [--out=FILE.json]
#
# Ends with "bench-timing: N passed, M failed"; exits 0 when the goal is missed, non-zero when the
# measurement failed.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
bench_deps wrk:wrk
bench_build
bench_locked python3 "$BENCH_ROOT/scripts/lib/bench_timing.py" "$@"
