#!/usr/bin/env bash
# Load test: /metrics under 200 concurrent scrapers while the probes run (docs/reliability.md, "Load").
#
#   scripts/load.sh [--no-build] [--keep]
#
# Starts the TD simulator and the exporter on free loopback ports (LOAD_SERVICES services, LOAD_PROBES probes
# each on a 1-second schedule, metrics and logs pollers every 5 s), lets it warm up, then, holding
# /tmp/td-pz-measure.lock (flock) from start to stop so that no other measurement on this machine overlaps:
# scrapes /metrics, runs `wrk -t2 -c200 -d30s --timeout 10s --latency` on /metrics, scrapes again.
# (10 s is Prometheus' default scrape_timeout: a scrape slower than that counts as a wrk timeout error.)
# Asserts, from wrk's output and the two scrapes:
#   - zero wrk errors (connect/read/write/timeout socket errors and non-2xx answers);
#   - probes keep their schedule: the p99 of td_pz_scheduler_lateness_seconds{poller="probe"} over the window
#     (the histogram's increase between the scrapes, interpolated within buckets) is under 100 ms;
#   - no run skipped (td_pz_schedule_skipped_total unchanged), every scheduled probe ran (one round of slack);
#   - no "panicked" in the exporter's stderr.
# Prints requests/s and the scrape latency p50/p99 too; the last line is `load: N passed, M failed`, and the
# exit status is non-zero when any assertion failed.
#
# Env: TD_PZ_BIN (binary; skips the build), LOAD_SERVICES (50), LOAD_PROBES (2, at most 3), LOAD_SECONDS (30),
# LOAD_CONNECTIONS (200), LOAD_THREADS (2), LOAD_WARMUP (10 s), LOAD_WRK_TIMEOUT (10s),
# MEASURE_LOCK (/tmp/td-pz-measure.lock).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
LS_NAME=load
# shellcheck source=scripts/lib/loadsoak.sh
. "$ROOT/scripts/lib/loadsoak.sh"

keep=0
for arg in "$@"; do
    case "$arg" in
        --no-build) LS_BUILD=0 ;;
        --keep) keep=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "load: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

SERVICES=${LOAD_SERVICES:-50}
PROBES=${LOAD_PROBES:-2}
SECONDS_=${LOAD_SECONDS:-30}
CONNS=${LOAD_CONNECTIONS:-200}
THREADS=${LOAD_THREADS:-2}
[ "$THREADS" -le "$CONNS" ] || THREADS=$CONNS   # wrk needs a connection per thread at least
WARMUP=${LOAD_WARMUP:-10}
# A scrape that takes longer than this counts as a wrk error (timeout): Prometheus' default scrape_timeout.
WRK_TIMEOUT=${LOAD_WRK_TIMEOUT:-10s}

if ! command -v wrk >/dev/null; then
    ls_log "installing wrk (apt-get)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || {
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    }
fi
ls_build
# Everything from here on (start, warm-up, wrk, stop) holds the machine-wide measurement lock.
ls_under_lock "$0" "$@"
mkdir -p "$ROOT/target/load"
LS_DIR=$(mktemp -d "$ROOT/target/load/run.XXXXXX")
rc=1
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    ls_stop
    if [ "$rc" -eq 0 ] && [ "$keep" = 0 ]; then   # passed: keep the report and figures, drop the logs
        (cd "$LS_DIR" && find . -maxdepth 1 -type f ! -name report.txt ! -name wrk.txt ! -name before.prom ! -name after.prom ! -name exporter.toml ! -name cpu-before.json ! -name cpu-after.json -delete)
    fi
}
trap cleanup EXIT

ls_start "$SERVICES" "$PROBES" "* * * * * *" "*/5 * * * * *" "*/5 * * * * *"
ls_log "warming up ${WARMUP}s"
sleep "$WARMUP"

# The timed part (this whole script runs under the measurement lock, see ls_under_lock).
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) before: $(ls_machine)"
python3 "$MEASURE" cpusnap "$LS_DIR/cpu-before.json"
python3 "$MEASURE" scrape "$EXPORTER_URL/metrics" "$LS_DIR/before.prom"
wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_}s" --timeout "$WRK_TIMEOUT" --latency "$EXPORTER_URL/metrics" >"$LS_DIR/wrk.txt"
python3 "$MEASURE" scrape "$EXPORTER_URL/metrics" "$LS_DIR/after.prom"
hwm=$(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$EXPORTER_PID/status")
python3 "$MEASURE" cpusnap "$LS_DIR/cpu-after.json"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) after:  $(ls_machine)"
python3 "$MEASURE" cpureport "$LS_DIR/cpu-before.json" "$LS_DIR/cpu-after.json" --ours "$SIM_PID,$EXPORTER_PID"

echo "command: wrk -t$THREADS -c$CONNS -d${SECONDS_}s --timeout $WRK_TIMEOUT --latency $EXPORTER_URL/metrics"
echo "setup: $SERVICES services x $PROBES probes every second (+ metrics and logs pollers every 5 s), binary $TD_PZ_BIN"
sed -n '/Latency Distribution/,$p' "$LS_DIR/wrk.txt" | sed 's/^/  wrk| /'
echo "exporter peak RSS since its start (VmHWM): $hwm"
ls_stop
echo "files: $LS_DIR (the logs are deleted when every assertion passed, unless --keep)"
set +e
python3 "$MEASURE" load-report --before "$LS_DIR/before.prom" --after "$LS_DIR/after.prom" \
    --wrk "$LS_DIR/wrk.txt" --probe-jobs $((SERVICES * PROBES)) --stderr "$LS_DIR/exporter.stderr" |
    tee "$LS_DIR/report.txt"
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
