# shellcheck shell=bash
# The local monitoring stack of scripts/e2e.sh and scripts/stack.sh, as bash functions (source this file).
#
#   TD simulator -> td-pz-exporter -> Prometheus (rules) -> Alertmanager -> webhook receiver (JSONL)
#
# Every process listens on its own free loopback port and keeps its state in $STACK_DIR, so nothing
# collides with daemons the Debian packages may have started on the default ports. Every process started
# is recorded in STACK_PIDS; stack_stop (call it from an EXIT trap) ends exactly those, by pid.
#
# Inputs (set before stack_start):
#   STACK_DIR        work directory (created)
#   STACK_RULES      "test" (scripts/gen-rules.py --profile=test: every for: <= 15s, groups every 5s)
#                    or "shipped" (alerts/td-pz-rules.yaml as it is)
#   STACK_AM         "fast" (test webhook config, --fast timings, group_wait $STACK_GROUP_WAIT)
#                    or "webhook" (test webhook config, the shipped timings)
#   STACK_GROUP_WAIT group_wait of the fast Alertmanager config (default 10s, see docs/e2e.md)
#   STACK_SCRAPE     scrape and evaluation interval of Prometheus (default 2s)
#   STACK_ECHO       1: the webhook receiver prints a line per notification
#   TD_PZ_BIN        the exporter binary (default target/release/td-pz-exporter)
# Outputs: SIM_URL EXPORTER_URL PROM_URL AM_URL HOOK_URL HOOK_LOG, written to $STACK_DIR/stack.env too.

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_PIDS=()
STACK_NAMES=()
# The simulator checks these like a real key and token; they are test values, not secrets.
STACK_API_KEY="1/e2e00000000000000000000000000000000000000"
STACK_P13N_TOKEN="1/2/e2e0123456789abcdef0123456789abc"

stack_log() { echo "[stack $(date +%H:%M:%S)] $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else stack_log "need root to run: $*"; return 1; fi
}

# Installs prometheus, prometheus-alertmanager and PyYAML when missing (apt-get update once first).
stack_deps() {
    local missing=()
    command -v prometheus >/dev/null || missing+=(prometheus)
    command -v promtool >/dev/null || missing+=(prometheus)
    if ! command -v prometheus-alertmanager >/dev/null && ! command -v alertmanager >/dev/null; then
        missing+=(prometheus-alertmanager)
    fi
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        # shellcheck disable=SC2207
        missing=($(printf '%s\n' "${missing[@]}" | sort -u))
        stack_log "installing ${missing[*]} (apt-get)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if command -v prometheus-alertmanager >/dev/null; then
        AM_BIN=$(command -v prometheus-alertmanager)
    else
        AM_BIN=$(command -v alertmanager)
    fi
    PROM_BIN=$(command -v prometheus)
}

# free_ports N: N distinct free loopback ports, held open together while picked.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# start_bg NAME LOGFILE CMD...: start CMD in the background, remember its pid.
start_bg() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    STACK_PIDS+=($!)
    STACK_NAMES+=("$name")
}

# wait_http NAME URL PID [SECONDS]: until URL answers 2xx; fails early if the process died.
wait_http() {
    local name=$1 url=$2 pid=$3 limit=${4:-30} i=0
    while ! curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            stack_log "$name exited before it was ready; its log:"
            tail -n 30 "$STACK_DIR/$name.log" >&2 || true
            return 1
        fi
        i=$((i + 1))
        if [ "$i" -ge $((limit * 5)) ]; then
            stack_log "$name not ready at $url after ${limit}s; its log:"
            tail -n 30 "$STACK_DIR/$name.log" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

stack_start() {
    local rules=${STACK_RULES:-test} am=${STACK_AM:-fast} scrape=${STACK_SCRAPE:-2s}
    local group_wait=${STACK_GROUP_WAIT:-10s} bin=${TD_PZ_BIN:-$STACK_ROOT/target/release/td-pz-exporter}
    mkdir -p "$STACK_DIR"
    if [ ! -x "$bin" ]; then
        stack_log "no exporter binary at $bin (cargo build --release, or set TD_PZ_BIN)"
        return 1
    fi
    local sim_port exp_port prom_port am_port hook_port
    read -r sim_port exp_port prom_port am_port hook_port <<<"$(free_ports 5)"
    SIM_URL="http://127.0.0.1:$sim_port"
    EXPORTER_URL="http://127.0.0.1:$exp_port"
    PROM_URL="http://127.0.0.1:$prom_port"
    AM_URL="http://127.0.0.1:$am_port"
    HOOK_URL="http://127.0.0.1:$hook_port/hook"
    HOOK_LOG="$STACK_DIR/webhook.jsonl"
    : >"$HOOK_LOG"

    # --- configuration files ---------------------------------------------------------------------
    sed "s#{sim}#$SIM_URL#g" "$STACK_ROOT/tests/e2e/exporter.toml" >"$STACK_DIR/exporter.toml"
    if [ "$rules" = test ]; then
        python3 "$STACK_ROOT/scripts/gen-rules.py" --profile=test --out="$STACK_DIR/td-pz-rules.yaml" >/dev/null || return 1
    else
        cp "$STACK_ROOT/alerts/td-pz-rules.yaml" "$STACK_DIR/td-pz-rules.yaml"
    fi
    if [ "$am" = fast ]; then
        python3 "$STACK_ROOT/scripts/alertmanager-test-config.py" --url="$HOOK_URL" --fast \
            --out="$STACK_DIR/alertmanager.yml" 2>/dev/null || return 1
        # --fast sets group_wait 1s. Keep it above the rules' evaluation interval (5s in the test profile,
        # as the shipped 30s is above the shipped 30s), or an inhibited alert whose rule group happens to
        # be evaluated before its source's group is notified before the source exists (docs/e2e.md).
        sed -i "s/^\(\s*group_wait:\s*\)1s\b/\1$group_wait/" "$STACK_DIR/alertmanager.yml"
    else
        python3 "$STACK_ROOT/scripts/alertmanager-test-config.py" --url="$HOOK_URL" \
            --out="$STACK_DIR/alertmanager.yml" 2>/dev/null || return 1
    fi
    cat >"$STACK_DIR/prometheus.yml" <<EOF
# Made by scripts/lib/stack.sh for a local test stack. Rules: $rules profile.
global:
  scrape_interval: $scrape
  scrape_timeout: $scrape
  evaluation_interval: $scrape
rule_files:
  - $STACK_DIR/td-pz-rules.yaml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$am_port']
scrape_configs:
  - job_name: td-pz-exporter
    static_configs:
      - targets: ['127.0.0.1:$exp_port']
EOF
    promtool check config "$STACK_DIR/prometheus.yml" >"$STACK_DIR/promtool.log" 2>&1 ||
        { cat "$STACK_DIR/promtool.log" >&2; return 1; }
    amtool check-config "$STACK_DIR/alertmanager.yml" >"$STACK_DIR/amtool.log" 2>&1 ||
        { cat "$STACK_DIR/amtool.log" >&2; return 1; }

    # --- processes -------------------------------------------------------------------------------
    local echo_flag=()
    [ "${STACK_ECHO:-0}" = 1 ] && echo_flag=(--print)
    start_bg webhook "$STACK_DIR/webhook.log" \
        python3 -u "$STACK_ROOT/tests/e2e/webhook.py" --listen="127.0.0.1:$hook_port" --out="$HOOK_LOG" "${echo_flag[@]}"
    local hook_pid=$!
    start_bg simulator "$STACK_DIR/simulator.log" \
        "$bin" simulate --listen="127.0.0.1:$sim_port" --api-key="$STACK_API_KEY" \
        --p13n-token="$STACK_P13N_TOKEN" --scenario="$STACK_ROOT/tests/e2e/baseline.json"
    local sim_pid=$!
    start_bg alertmanager "$STACK_DIR/alertmanager.log" \
        "$AM_BIN" --config.file="$STACK_DIR/alertmanager.yml" --storage.path="$STACK_DIR/alertmanager-data" \
        --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= --log.level=warn
    local am_pid=$!
    wait_http simulator "$SIM_URL/_sim/stats" "$sim_pid" || return 1
    start_bg exporter "$STACK_DIR/exporter.log" \
        env TD_API_KEY="$STACK_API_KEY" TD_P13N_TOKEN="$STACK_P13N_TOKEN" \
        "$bin" --config.file="$STACK_DIR/exporter.toml" --web.listen-address="127.0.0.1:$exp_port"
    local exp_pid=$!
    start_bg prometheus "$STACK_DIR/prometheus.log" \
        "$PROM_BIN" --config.file="$STACK_DIR/prometheus.yml" --storage.tsdb.path="$STACK_DIR/prometheus-data" \
        --web.listen-address="127.0.0.1:$prom_port" --log.level=warn
    local prom_pid=$!
    wait_http webhook "http://127.0.0.1:$hook_port/" "$hook_pid" || return 1
    wait_http exporter "$EXPORTER_URL/-/ready" "$exp_pid" || return 1
    wait_http alertmanager "$AM_URL/-/ready" "$am_pid" || return 1
    wait_http prometheus "$PROM_URL/-/ready" "$prom_pid" 60 || return 1

    cat >"$STACK_DIR/stack.env" <<EOF
SIM_URL=$SIM_URL
EXPORTER_URL=$EXPORTER_URL
PROM_URL=$PROM_URL
AM_URL=$AM_URL
HOOK_URL=$HOOK_URL
HOOK_LOG=$HOOK_LOG
STACK_PID_LIST="${STACK_PIDS[*]}"
EOF
    stack_log "up: simulator $SIM_URL, exporter $EXPORTER_URL, prometheus $PROM_URL, alertmanager $AM_URL, webhook $HOOK_URL"
}

# Ends every process stack_start started (TERM, then KILL after 5s), by pid. Safe to call twice.
stack_stop() {
    local i pid n
    for i in "${!STACK_PIDS[@]}"; do
        pid=${STACK_PIDS[$i]}
        kill -TERM "$pid" 2>/dev/null || true
    done
    for i in "${!STACK_PIDS[@]}"; do
        pid=${STACK_PIDS[$i]}
        n=0
        while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            stack_log "${STACK_NAMES[$i]} (pid $pid) ignored TERM, killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    STACK_PIDS=()
    STACK_NAMES=()
}
