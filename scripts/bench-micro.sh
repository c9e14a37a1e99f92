#!/usr/bin/env bash
# The criterion benches (benches/render.rs, parse.rs, schedule.rs): /metrics rendering with 1k, 10k and
# 100k series against serving the same bytes from a static buffer (in process and over loopback HTTP),
# parsing each TD response type, and the scheduler's next-fire computation. See docs/performance.md.
#
#   scripts/bench-micro.sh [--out=FILE.json] [-- criterion args, e.g. a filter: -- scrape]
#
# About 3 minutes. Ends with "bench-micro: N passed, M failed"; exits 0 when goals are missed,
# non-zero when the measurement failed.
set -euo pipefail
. "$(dirname "$0")/lib/bench.sh"
# In-process benches: no daemon binary is run or needed.
export BENCH_NO_BINARY=1
out=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out=*) out=("${1#--out=}"); shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
cd "$BENCH_ROOT"
bench_log "cargo bench --no-run"
cargo bench --quiet --bench render --bench parse --bench schedule --no-run 2>/dev/null
# Stale results of other sizes would be mixed in: start from none.
rm -rf target/criterion/scrape target/criterion/http target/criterion/parse target/criterion/schedule
run() {
    python3 -c 'import sys; sys.path.insert(0, "scripts/lib"); import benchlib as B; c = B.quiet_machine(); B.log(f"load average {B.loadavg()}; others use {c:.2f} cores")'
    cargo bench --quiet --bench render --bench parse --bench schedule -- "$@"
}
bench_locked bash -c "$(declare -f run); run \"\$@\"" run "$@" >&2
python3 scripts/lib/bench_micro_report.py "${out[@]}"
