#!/usr/bin/env bash
# Check the Grafana dashboards under dashboards/: they are what scripts/gen-dashboards.py generates; their
# structure (uids, template variables, data source, description, unit, refIds, runbook links on every
# panel); they satisfy Grafana's dashboard types (tsc over the pinned @grafana/schema, tests/grafana-schema/),
# which reject mutated copies; every query (panels, annotations, variables' selectors) parses as PromQL in
# a throwaway Prometheus (scripts/lib/dashboards.py). Prints "check-dashboards: N passed, M failed" last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh test dashboards >/dev/null
rc=0
python3 scripts/gen-dashboards.py --check || { rc=1; echo "FAIL dashboards/ is not what scripts/gen-dashboards.py generates"; }
python3 scripts/lib/dashboards.py check || rc=1
exit "$rc"
