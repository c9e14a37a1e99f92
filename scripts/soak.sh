#!/usr/bin/env bash
# Soak test: many services on 1-second schedules against a simulator whose faults keep changing
# (docs/reliability.md, "Soak").
#
#   scripts/soak.sh [--no-build] [--keep]
#   SOAK_SECONDS=120 scripts/soak.sh          # a shorter run
#
# Starts the TD simulator and the exporter on free loopback ports: SOAK_SERVICES services, each with one probe,
# a metrics poller and a logs poller, all on "* * * * * *" (every second). While it runs, the scenario changes
# every SOAK_PHASE seconds (POST /_sim/scenario), cycling through: no fault, 503 for a third of the services,
# 429 with Retry-After: 2 for a third, hangs for a tenth, malformed JSON for a third, 50 MiB bodies for 5
# services, the key revoked. Two quiet windows of SOAK_SETTLE seconds without faults are the points compared:
# the baseline right after the warm-up (the first 20% of the run) and the end of the run.
# Samples every SOAK_SAMPLE seconds, SOAK_OFFSET (0.8) s into a wall-clock second (every job fires on whole
# seconds, so the runs in flight rise and fall within each second; 0.8 s is after that burst): RSS, open fds (/proc/PID/fd), threads, CPU, td_pz_scheduler_runs_in_flight,
# td_pz_scheduler_jobs, probes/s, skipped runs/s, fire lateness p99, and the simulator's RSS, fds and CPU;
# prints them as a table (also written to samples.csv) and asserts:
#   - the exporter is alive at the end and its stderr has no "panicked";
#   - every sample scraped /metrics;
#   - no task leak: runs in flight never above the jobs, the 4th quarter's peak not above the 3rd quarter's
#     by more than 10% of the jobs, and back to the baseline's level (x1.5, or + 2% of the jobs) after the
#     final settle;
#   - RSS growth from the baseline to the end under 10%;
#   - open fds flat: the end within max(10, 10%) of the baseline.
# The whole run holds /tmp/td-pz-measure.lock (flock), so no other measurement on this machine overlaps it.
# The last line is `soak: N passed, M failed`; the exit status is non-zero when any assertion failed.
#
# Env: TD_PZ_BIN (binary; skips the build), SOAK_SECONDS (600), SOAK_SERVICES (1000), SOAK_PHASE (5),
# SOAK_SAMPLE (5), SOAK_OFFSET (0.8), SOAK_SETTLE (30, at most 10% of the run but at least 10 s), MEASURE_LOCK.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
LS_NAME=soak
# shellcheck source=scripts/lib/loadsoak.sh
. "$ROOT/scripts/lib/loadsoak.sh"

keep=0
for arg in "$@"; do
    case "$arg" in
        --no-build) LS_BUILD=0 ;;
        --keep) keep=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "soak: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

SOAK_SECONDS=${SOAK_SECONDS:-600}
SERVICES=${SOAK_SERVICES:-1000}
PHASE=${SOAK_PHASE:-5}
SAMPLE=${SOAK_SAMPLE:-5}
SETTLE=${SOAK_SETTLE:-30}
OFFSET=${SOAK_OFFSET:-0.8}

ls_build
ls_under_lock "$0" "$@"
mkdir -p "$ROOT/target/soak"
LS_DIR=$(mktemp -d "$ROOT/target/soak/run.XXXXXX")
rc=1
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    ls_stop
    if [ "$rc" -eq 0 ] && [ "$keep" = 0 ]; then   # passed: keep the report and figures, drop the logs
        (cd "$LS_DIR" && find . -maxdepth 1 -type f ! -name report.txt ! -name samples.csv ! -name exporter.toml ! -name scenario.json ! -name cpu-before.json ! -name cpu-after.json -delete)
    fi
}
trap cleanup EXIT

echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) before: $(ls_machine)"
ls_start "$SERVICES" 1 "* * * * * *" "* * * * * *" "* * * * * *"
python3 "$MEASURE" cpusnap "$LS_DIR/cpu-before.json"
set +e
python3 "$MEASURE" soak --exporter "$EXPORTER_URL" --sim "$SIM_URL" --pid "$EXPORTER_PID" --sim-pid "$SIM_PID" \
    --services "$SERVICES" --seconds "$SOAK_SECONDS" --sample "$SAMPLE" --phase "$PHASE" --settle "$SETTLE" --offset "$OFFSET" \
    --stderr "$LS_DIR/exporter.stderr" --csv "$LS_DIR/samples.csv" | tee "$LS_DIR/report.txt"
rc=${PIPESTATUS[0]}
set -e
python3 "$MEASURE" cpusnap "$LS_DIR/cpu-after.json"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) after:  $(ls_machine)"
python3 "$MEASURE" cpureport "$LS_DIR/cpu-before.json" "$LS_DIR/cpu-after.json" --ours "$SIM_PID,$EXPORTER_PID"
echo "setup: $SERVICES services x (1 probe + metrics + logs pollers) every second, binary $TD_PZ_BIN"
echo "exporter stderr: $(wc -l <"$LS_DIR/exporter.stderr") lines; files: $LS_DIR (the logs are deleted when every assertion passed, unless --keep)"
sed -n '/^$/,$p' "$LS_DIR/report.txt"   # the assertions again, after the table, so they end the output
exit "$rc"
