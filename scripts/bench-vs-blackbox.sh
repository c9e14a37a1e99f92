#!/usr/bin/env bash
# docs/performance.md: the same HTTP POST probe by td-pz-exporter and by blackbox_exporter, wrk as the floor
#   scripts/bench-vs-blackbox.sh [--rate=20] [--duration=60] [--wrk-seconds=30] [--out=FILE.json]
# Builds the shipped binary (the dist profile; BENCH_NO_BUILD=1 skips it), then scripts/lib/bench.py vs-blackbox.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench >/dev/null
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --profile "${BENCH_PROFILE:-dist}" --bin td-pz-exporter --quiet
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 scripts/lib/bench.py vs-blackbox "$@"
