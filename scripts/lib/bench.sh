# shellcheck shell=bash
# Shared by scripts/bench-*.sh (source this file): dependencies, the build of the shipped binary (the
# `dist` profile: release with fat LTO, as deploy/docker/Dockerfile builds it; BENCH_PROFILE=release for a
# quicker build), and the measurement lock that keeps timed runs from overlapping with other
# measurements on this machine.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_LOCK=${BENCH_LOCK:-/tmp/td-pz-measure.lock}
BENCH_PROFILE=${BENCH_PROFILE:-dist}
export TD_PZ_BIN=${TD_PZ_BIN:-$BENCH_ROOT/target/$BENCH_PROFILE/td-pz-exporter}

bench_log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# bench_deps CMD:PACKAGE ...: installs the Debian packages whose command is missing.
bench_deps() {
    local missing=() spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    bench_log "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
        { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; }
}

bench_build() {
    if [ -n "${BENCH_NO_BUILD:-}" ]; then return 0; fi
    bench_log "cargo build --profile $BENCH_PROFILE"
    (cd "$BENCH_ROOT" && cargo build --profile "$BENCH_PROFILE" --bin td-pz-exporter --quiet)
}

# bench_locked CMD...: runs CMD holding the measurement lock (waits for it).
bench_locked() {
    bench_log "waiting for $BENCH_LOCK; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    flock "$BENCH_LOCK" "$@"
}
