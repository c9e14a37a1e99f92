#!/usr/bin/env bash
# Idle cost: RSS and CPU of the daemon with the demo configuration (src/demo.toml) over 60 s against a
# separate simulator, scraped every 15 s; then `td-pz-exporter demo` (simulator in process) for
# information. See docs/performance.md.
#
#   scripts/bench-idle.sh [--duration=60] [--no-demo] [--out=FILE.json]
#
# Ends with "bench-idle: N passed, M failed"; exits 0 when goals are missed, non-zero when the
# measurement failed.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
bench_build
bench_locked python3 "$BENCH_ROOT/scripts/lib/bench_idle.py" "$@"
