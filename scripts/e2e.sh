#!/usr/bin/env bash
# Full-stack end-to-end test of td-pz-exporter, with real Prometheus and Alertmanager:
#
#   TD simulator -> exporter -> Prometheus (test-profile rules) -> Alertmanager (test webhook config)
#     -> on-call receiver (a local webhook writing JSONL)
#
#   scripts/e2e.sh [--no-build] [--keep] [--only=DRILL,...] [--no-resolve] [--timeout=SECONDS]
#
#   --no-build      do not run `cargo build --release` first (TD_PZ_BIN also skips it)
#   --keep          keep the work directory (target/e2e/run.*) even when everything passed
#   --only=A,B      run only these drills (revoked_key, wrong_section, outage, slow)
#   --no-resolve    skip waiting for the alerts to resolve (~5 min: the rules' 5m windows); quick iteration
#                   only, the full run needs it
#   --timeout=S     per wait for healthy data / an alert to fire and arrive (default 90)
#
# Env: TD_PZ_BIN (exporter binary, default target/release/td-pz-exporter).
# Asserts, in order (see docs/e2e.md): healthy data; every dashboard query returns series; every metric name
# the rules use is exported; four fault drills fire, reach the right receiver with the right labels, and
# inhibit what alerts/alertmanager.yml says; every alert resolves after the clear; nothing unexpected was
# delivered. Prints a report and `e2e: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/stack.sh
. "$ROOT/scripts/lib/stack.sh"

build=1 keep=0 checks_args=()
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --keep) keep=1 ;;
        --only=*|--timeout=*) checks_args+=("$arg") ;;
        --no-resolve) checks_args+=("$arg") ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "e2e: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

started=$(date +%s)
if [ -z "${TD_PZ_BIN:-}" ] && [ "$build" = 1 ]; then
    echo "e2e: cargo build --release" >&2
    cargo build --release --quiet
fi
export TD_PZ_BIN=${TD_PZ_BIN:-$ROOT/target/release/td-pz-exporter}
stack_deps

mkdir -p "$ROOT/target/e2e"
STACK_DIR=$(mktemp -d "$ROOT/target/e2e/run.XXXXXX")
STACK_RULES=test STACK_AM=fast
rc=1
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    stack_stop
    if [ "$rc" -eq 0 ] && [ "$keep" = 0 ]; then
        rm -rf "$STACK_DIR"
    else
        echo "e2e: logs, configs, webhook.jsonl and the Prometheus TSDB are in $STACK_DIR" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stack_start
test_started=$(date +%s)
set +e
python3 -u "$ROOT/scripts/lib/e2e_checks.py" --env="$STACK_DIR/stack.env" --work="$STACK_DIR" \
    --started="$started" "${checks_args[@]}"
rc=$?
set -e
echo "e2e: stack up and checks took $(( $(date +%s) - test_started ))s (build and start included: $(( $(date +%s) - started ))s)" >&2
exit "$rc"
