#!/usr/bin/env bash
# Run the local monitoring stack of the end-to-end test in the foreground, to look at it by hand:
#
#   TD simulator -> td-pz-exporter -> Prometheus -> Alertmanager -> a local webhook (printed here)
#
#   scripts/stack.sh [--fast] [--drill NAME] [--no-build]   start it; Ctrl-C stops everything
#   scripts/stack.sh --drill NAME                           inject a drill into the stack already running
#                                                           (from another terminal)
#
#   --fast        the test profile: rules with every `for:` capped at 15s and groups evaluated every 5s,
#                 Alertmanager group_wait 10s / group_interval 1s, scrapes every 2s. Without it, the shipped
#                 rules and the shipped Alertmanager timings (group_wait 30s, group_interval 5m), scrapes
#                 every 5s: alerts take their real `for:` (1 to 15 minutes) to fire.
#   --drill NAME  revoked_key | wrong_section | outage | slow (tests/e2e/drills.json, each on its e2e_*
#                 service), all (the four at once), revoked_all (the simulator's global revoked key: 401 for
#                 every service), clear (no fault). When starting, injected once the exporter is ready.
#   --no-build    do not run `cargo build --release` first (TD_PZ_BIN also skips it)
#
# Every receiver of alerts/alertmanager.yml is replaced by the local webhook (?receiver=pager|chat|
# email-or-nothing); each notification is printed here and appended to target/e2e/stack/webhook.jsonl.
# State, logs and configs: target/e2e/stack (wiped at each start). Ports: free loopback ports.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/stack.sh
. "$ROOT/scripts/lib/stack.sh"

fast=0 drill="" build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --fast) fast=1 ;;
        --drill=*) drill=${1#--drill=} ;;
        --drill) [ $# -ge 2 ] || { echo "stack: --drill needs a NAME" >&2; exit 2; }; drill=$2; shift ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "stack: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

STACK_DIR="$ROOT/target/e2e/stack"

# A stack already running? Then --drill talks to it, and starting a second one is refused.
running=0
if [ -f "$STACK_DIR/stack.env" ]; then
    # shellcheck disable=SC1091
    . "$STACK_DIR/stack.env"
    for pid in ${STACK_PID_LIST:-}; do
        if kill -0 "$pid" 2>/dev/null; then running=1; fi
    done
fi
if [ "$running" = 1 ]; then
    if [ -n "$drill" ]; then
        python3 "$ROOT/scripts/lib/sim_drill.py" --sim="$SIM_URL" "$drill"
        echo "watch: $PROM_URL/alerts  $AM_URL/#/alerts"
        exit 0
    fi
    echo "stack: a stack is already running from $STACK_DIR (simulator $SIM_URL); stop it with Ctrl-C first," \
         "or inject a drill into it with --drill NAME" >&2
    exit 1
fi

if [ -z "${TD_PZ_BIN:-}" ] && [ "$build" = 1 ]; then
    echo "stack: cargo build --release" >&2
    cargo build --release --quiet
fi
export TD_PZ_BIN=${TD_PZ_BIN:-$ROOT/target/release/td-pz-exporter}
stack_deps

rm -rf "$STACK_DIR"
mkdir -p "$STACK_DIR"
if [ "$fast" = 1 ]; then
    STACK_RULES=test STACK_AM=fast STACK_SCRAPE=2s
else
    STACK_RULES=shipped STACK_AM=webhook STACK_SCRAPE=5s
fi
STACK_ECHO=1
trap 'stack_stop; rm -f "$STACK_DIR/stack.env"; echo "stack: stopped" >&2' EXIT
trap 'exit 130' INT TERM

stack_start
# Show the webhook receiver's lines (one per notification) on this terminal.
tail -n +1 -F "$STACK_DIR/webhook.log" 2>/dev/null &
STACK_PIDS+=($!)
STACK_NAMES+=(webhook-tail)

cat <<EOF

  td-pz-exporter local stack ($([ "$fast" = 1 ] && echo "test profile: for <= 15s" || echo "shipped rules and timings"))

  Prometheus UI     $PROM_URL/alerts   (graph: $PROM_URL/graph, rules: $PROM_URL/rules)
  Alertmanager UI   $AM_URL/#/alerts
  exporter          $EXPORTER_URL/   (metrics: $EXPORTER_URL/metrics, $EXPORTER_URL/status.json)
  TD simulator      $SIM_URL/_sim/stats   (scenario: POST $SIM_URL/_sim/scenario)
  webhook           $HOOK_URL  -> $HOOK_LOG

  drills, from another terminal:  scripts/stack.sh --drill revoked_key|wrong_section|outage|slow|all|revoked_all|clear
  Grafana: import dashboards/*.json with a Prometheus data source at $PROM_URL
  Ctrl-C stops every process started here.

EOF

if [ -n "$drill" ]; then
    python3 "$ROOT/scripts/lib/sim_drill.py" --sim="$SIM_URL" "$drill"
fi

# Foreground until Ctrl-C, or until a process of the stack dies.
while true; do
    for i in "${!STACK_PIDS[@]}"; do
        if ! kill -0 "${STACK_PIDS[$i]}" 2>/dev/null; then
            echo "stack: ${STACK_NAMES[$i]} exited; its log: $STACK_DIR/${STACK_NAMES[$i]}.log" >&2
            tail -n 20 "$STACK_DIR/${STACK_NAMES[$i]}.log" >&2 2>/dev/null || true
            exit 1
        fi
    done
    sleep 1
done
