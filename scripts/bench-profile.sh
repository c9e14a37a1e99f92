#!/usr/bin/env bash
# Where td-pz-exporter's CPU goes under a bench workload: perf record (cpu-clock, DWARF stacks) of the
# exporter process, then the share of samples per area (render, gather, encode, HTTP client, JSON,
# scheduler, tokio, malloc, kernel, ...) and the hottest functions. See docs/performance.md.
#
#   scripts/bench-profile.sh probe [--rate=20] [--seconds=60]
#   scripts/bench-profile.sh scale [--services=5000] [--seconds=60] [--no-scrape]
#   scripts/bench-profile.sh idle  [--seconds=60]
#
# For instruction-exact profiles of rendering, see the valgrind command in docs/performance.md.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
bench_deps perf:linux-perf
bench_build
ulimit -n 65536 2>/dev/null || true
bench_locked python3 "$BENCH_ROOT/scripts/lib/bench_profile.py" "$@"
