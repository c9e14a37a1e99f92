#!/usr/bin/env bash
# The e2e stack in the foreground, to look at by hand (docs/e2e.md); Ctrl-C stops it:
#   scripts/stack.sh [--fast] [--drill NAME]    start it (--fast: the test profile, alerts in seconds)
#   scripts/stack.sh --drill NAME               inject a drill into the stack already running
# State, logs and configs: target/e2e/stack. Uses TD_PZ_BIN or target/release/td-pz-exporter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh test >/dev/null
exec python3 -u scripts/lib/stack.py up "$@"
