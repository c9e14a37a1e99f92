# shellcheck shell=bash
# Shared parts of scripts/load.sh and scripts/soak.sh (source this file): the simulator and the exporter
# on free loopback ports, the measurement lock, cleanup by pid. (scripts/lib/bench.sh is the benchmarks'.)
#
# Inputs: LS_DIR (work directory), LS_NAME (log prefix), TD_PZ_BIN (default target/release/td-pz-exporter).
# Outputs: SIM_URL SIM_PID EXPORTER_URL EXPORTER_PID.

LS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LS_PIDS=()
MEASURE="$LS_ROOT/scripts/lib/measure.py"
# Serialises timed measurements with the other benchmarks run on this machine (see docs/reliability.md).
MEASURE_LOCK=${MEASURE_LOCK:-/tmp/td-pz-measure.lock}
# The simulator checks this like a real key; a test value, not a secret. Passed through the environment.
export TD_API_KEY="1/loadsoak000000000000000000000000000000000"

ls_log() { echo "[${LS_NAME:-loadsoak} $(date +%H:%M:%S)] $*" >&2; }

# ls_build: cargo build --release unless TD_PZ_BIN is set or LS_BUILD=0.
ls_build() {
    if [ -z "${TD_PZ_BIN:-}" ] && [ "${LS_BUILD:-1}" = 1 ]; then
        ls_log "cargo build --release"
        (cd "$LS_ROOT" && cargo build --release --quiet)
    fi
    export TD_PZ_BIN=${TD_PZ_BIN:-$LS_ROOT/target/release/td-pz-exporter}
    [ -x "$TD_PZ_BIN" ] || { ls_log "no exporter binary at $TD_PZ_BIN"; return 1; }
}

# ls_under_lock SCRIPT ARGS...: re-runs SCRIPT under the measurement lock (once), so that the whole run, from
# starting the processes to stopping them, never overlaps another measurement on this machine.
ls_under_lock() {
    if [ -z "${LS_LOCKED:-}" ]; then
        ls_log "waiting for $MEASURE_LOCK"
        # -o: the processes started under the lock do not inherit its descriptor, so one left running could
        # never keep the lock held.
        LS_LOCKED=1 exec flock -o "$MEASURE_LOCK" "$@"
    fi
}

ls_free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ls_wait URL SECONDS: until URL answers 200.
ls_wait() {
    local url=$1 deadline=$(( $(date +%s) + $2 ))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { ls_log "timed out waiting for $url"; return 1; }
        sleep 0.2
    done
}

# ls_start SERVICES PROBES PROBE_SCHEDULE METRICS_SCHEDULE LOGS_SCHEDULE: simulator + exporter.
ls_start() {
    local services=$1 probes=$2 psched=$3 msched=$4 lsched=$5 sim_port exp_port
    read -r sim_port exp_port <<<"$(ls_free_ports 2)"
    SIM_URL="http://127.0.0.1:$sim_port"
    EXPORTER_URL="http://127.0.0.1:$exp_port"
    python3 "$MEASURE" scenario --services "$services" none >"$LS_DIR/scenario.json"
    "$TD_PZ_BIN" simulate --listen="127.0.0.1:$sim_port" --scenario="$LS_DIR/scenario.json" \
        >"$LS_DIR/simulator.log" 2>&1 &
    SIM_PID=$!
    LS_PIDS+=("$SIM_PID")
    ls_wait "$SIM_URL/_sim/scenario" 20
    python3 "$MEASURE" gen-config --out "$LS_DIR/exporter.toml" --sim "$SIM_URL" --services "$services" \
        --probes "$probes" --probe-schedule "$psched" --metrics-schedule "$msched" --logs-schedule "$lsched"
    "$TD_PZ_BIN" --config.file="$LS_DIR/exporter.toml" --web.listen-address="127.0.0.1:$exp_port" \
        --log.level="${LS_LOG_LEVEL:-info}" >"$LS_DIR/exporter.stdout" 2>"$LS_DIR/exporter.stderr" &
    EXPORTER_PID=$!
    LS_PIDS+=("$EXPORTER_PID")
    ls_wait "$EXPORTER_URL/-/ready" 60
    ls_log "simulator $SIM_URL (pid $SIM_PID), exporter $EXPORTER_URL (pid $EXPORTER_PID), $services services"
}

# ls_stop: SIGTERM to every process started here (by pid), SIGKILL after 15 s.
ls_stop() {
    local pid
    for pid in "${LS_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${LS_PIDS[@]}"; do
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    LS_PIDS=()
}

# ls_machine: cores and load average.
ls_machine() {
    echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
}
