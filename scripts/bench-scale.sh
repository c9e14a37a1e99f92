#!/usr/bin/env bash
# Scale: 5,000 services (a probe every 30 s, metrics every 60 s, logs every 30 s, all with service_id)
# for 5 minutes against the simulator: CPU share, RSS, scheduler lateness p50/p99, skipped runs,
# /metrics size and scrape time. See docs/performance.md.
#
#   scripts/bench-scale.sh [--services=5000] [--duration=300] [--log-rate=0.05] [--out=FILE.json]
#
# Takes about duration + 2 minutes. Ends with "bench-scale: N passed, M failed"; exits 0 when goals
# are missed, non-zero when the measurement failed.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
bench_build
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bench_locked python3 "$BENCH_ROOT/scripts/lib/bench_scale.py" "$@"
