#!/usr/bin/env bash
# The same HTTP POST probe run by td-pz-exporter on its schedules and by Debian's
# prometheus-blackbox-exporter driven at the same rate, and the same request sent by wrk (the floor):
# CPU seconds per 1,000 probes, peak RSS, and the ratios. See docs/performance.md.
#
#   scripts/bench-vs-blackbox.sh [--rate=20] [--duration=60] [--wrk-seconds=30] [--out=FILE.json]
#
# Ends with "bench-vs-blackbox: N passed, M failed" (goals met / missed); exits 0 when the goals are
# missed, non-zero when the measurement itself failed.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
bench_deps wrk:wrk prometheus-blackbox-exporter:prometheus-blackbox-exporter
bench_build
bench_locked python3 "$BENCH_ROOT/scripts/lib/bench_vs_blackbox.py" "$@"
