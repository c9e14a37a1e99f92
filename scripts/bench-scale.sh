#!/usr/bin/env bash
# docs/performance.md: 5,000 services on the default schedules for 5 minutes: CPU, RSS, lateness, /metrics
#   scripts/bench-scale.sh [--services=5000] [--duration=300] [--log-rate=0.05] [--out=FILE.json]
# Builds the shipped binary (the dist profile; BENCH_NO_BUILD=1 skips it), then benches/labs/scale.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench >/dev/null
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --profile "${BENCH_PROFILE:-dist}" --bin td-pz-exporter --quiet
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export TD_PZ_BIN=${TD_PZ_BIN:-$PWD/target/${BENCH_PROFILE:-dist}/td-pz-exporter}
exec cargo bench --locked --quiet --bench labs -- scale "$@"
