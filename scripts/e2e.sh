#!/usr/bin/env bash
# The end-to-end test with real Prometheus and Alertmanager (docs/e2e.md): TD simulator -> exporter ->
# Prometheus (test-profile rules) -> Alertmanager (its PagerDuty and Slack receivers) -> local fakes of both.
#   scripts/e2e.sh [--keep] [--only=DRILL,...] [--no-resolve] [--timeout=SECONDS]
# Uses TD_PZ_BIN or target/release/td-pz-exporter (`make e2e` builds it first); see scripts/lib/e2e.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh test >/dev/null
exec python3 -u scripts/lib/e2e.py "$@"
