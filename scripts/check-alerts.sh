#!/usr/bin/env bash
# Check the alerting side of td-pz-exporter: rules, their unit tests, Alertmanager routing and
# inhibition, the runbooks, and (given a real scrape) the metric names the rules use.
#
#   scripts/check-alerts.sh
#   TD_PZ_METRICS_FILE=/tmp/scrape.txt scripts/check-alerts.sh   # also check metric names against a scrape
#
# Installs what is missing: promtool (apt: prometheus), amtool and alertmanager (apt:
# prometheus-alertmanager), PyYAML (pip, or apt python3-yaml). Runs every step even after a failure,
# then prints `check-alerts: N passed, M failed` and exits 1 if any step failed.
#
# Steps:
#   rules-generated      scripts/gen-rules.py --check (alerts/td-pz-rules.yaml matches its generator)
#   rules-valid          promtool check rules alerts/td-pz-rules.yaml
#   rules-test-profile   the --profile=test copy is valid, every `for:` <= 15s, every interval 5s
#   rules-unit-tests     promtool test rules alerts/tests/*.yaml
#   rules-coverage       every alert has a firing and a silent unit test (scripts/alert-test-coverage.py)
#   runbooks             docs/runbooks.md has a section per alert; every runbook_url points at one
#   am-config            amtool check-config alerts/alertmanager.yml
#   am-test-config       the webhook test copy (scripts/alertmanager-test-config.py) is valid and routes alike
#   am-routes            alerts/tests/routes.txt through amtool config routes test
#   am-routes-per-alert  every alert reaches the receiver of its severity (scripts/gen-rules.py --route-cases)
#   am-inhibitions       alerts/tests/alertmanager/inhibit.yaml against a real Alertmanager
#   metric-names         every metric the rules use is in $TD_PZ_METRICS_FILE (skipped when unset)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-alerts.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# --- dependencies -------------------------------------------------------------------------------------
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "check-alerts: need root to run: $*" >&2; return 1; fi
}
apt_install() {
    echo "check-alerts: installing $* (apt-get)" >&2
    as_root apt-get install -y "$@" || { as_root apt-get update && as_root apt-get install -y "$@"; }
}
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
if ! command -v amtool >/dev/null ||
   ! { command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; }; then
    missing+=(prometheus-alertmanager)
fi
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
if ! "$PY" -c 'import yaml' 2>/dev/null; then
    echo "check-alerts: installing PyYAML" >&2
    "$PY" -m pip install --quiet PyYAML 2>/dev/null || apt_install python3-yaml
    "$PY" -c 'import yaml' || { echo "check-alerts: PyYAML is not importable by $PY" >&2; exit 1; }
fi

# --- steps --------------------------------------------------------------------------------------------
rules_test_profile() {
    "$PY" scripts/gen-rules.py --profile=test --out="$TMP/td-pz-rules.test.yaml"
    promtool check rules "$TMP/td-pz-rules.test.yaml"
    "$PY" - "$TMP/td-pz-rules.test.yaml" <<'EOF'
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
def secs(d):
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", d))
bad = [g["name"] for g in doc["groups"] if g.get("interval") != "5s"]
bad += [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r and secs(r.get("for", "0s")) > 15]
if bad:
    sys.exit(f"test profile: not shortened: {bad}")
print("test profile: every for <= 15s, every group interval 5s")
EOF
}

rules_unit_tests() {
    promtool test rules alerts/tests/*.yaml
}

runbooks() {
    "$PY" - <<'EOF'
import re, sys, yaml
doc = yaml.safe_load(open("alerts/td-pz-rules.yaml"))
headings = set(re.findall(r"(?m)^## (\S+)\s*$", open("docs/runbooks.md").read()))
base = "https://github.com/treasure-data-community/td-pz-exporter/blob/main/docs/runbooks.md#"
bad = []
for g in doc["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        a = r["annotations"]
        if r["alert"] not in headings:
            bad.append(f"docs/runbooks.md has no '## {r['alert']}' section")
        if a.get("runbook_url") != base + r["alert"].lower():
            bad.append(f"{r['alert']}: runbook_url {a.get('runbook_url')}")
        for k in ("summary", "description", "dashboard_url"):
            if not a.get(k):
                bad.append(f"{r['alert']}: no {k} annotation")
        if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            bad.append(f"{r['alert']}: severity {r.get('labels', {}).get('severity')}")
if bad:
    sys.exit("\n".join(bad))
print(f"runbooks: a section and complete annotations for each of the {len(headings)} alerts")
EOF
}

am_test_config() {
    "$PY" scripts/alertmanager-test-config.py --url=http://127.0.0.1:9/hook --out="$TMP/am-test.yml"
    amtool check-config "$TMP/am-test.yml"
    grep -q "url: 'http://127.0.0.1:9/hook?receiver=pager'" "$TMP/am-test.yml"
    if grep -qE 'pagerduty_configs|slack_configs|_file:' "$TMP/am-test.yml"; then
        echo "the test copy still has real receivers or secret files" >&2; return 1
    fi
    # routing is the same as the real config's
    routes_from_file alerts/tests/routes.txt "$TMP/am-test.yml"
}

# routes_from_file CASES CONFIG: each non-comment line `receivers label=value...`
routes_from_file() {
    local cases=$1 config=$2 n=0 bad=0 expected labels
    while read -r expected labels; do
        case "$expected" in ''|'#'*) continue ;; esac
        n=$((n + 1))
        # shellcheck disable=SC2086  # labels are whitespace-separated on purpose
        if ! out=$(amtool config routes test --config.file="$config" --verify.receivers="$expected" $labels 2>/dev/null); then
            echo "route: {$labels} -> $out, expected $expected" >&2
            bad=$((bad + 1))
        fi
    done < "$cases"
    echo "$n routing cases, $bad wrong ($config)"
    [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}

am_routes_per_alert() {
    "$PY" scripts/gen-rules.py --route-cases > "$TMP/route-cases.txt"
    routes_from_file "$TMP/route-cases.txt" alerts/alertmanager.yml
}

metric_names() {
    if [ ! -s "$TD_PZ_METRICS_FILE" ]; then
        echo "TD_PZ_METRICS_FILE=$TD_PZ_METRICS_FILE is missing or empty" >&2; return 1
    fi
    "$PY" scripts/rule-metric-names.py --metrics="$TD_PZ_METRICS_FILE"
}

# --- runner -------------------------------------------------------------------------------------------
passed=0
failed=0
failures=()
run() {
    local name=$1 rc
    shift
    echo
    echo "==> $name"
    set +e
    ( set -euo pipefail; "$@" )
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAILED: $name (exit $rc)" >&2
    fi
}

run rules-generated      "$PY" scripts/gen-rules.py --check
run rules-valid          promtool check rules alerts/td-pz-rules.yaml
run rules-test-profile   rules_test_profile
run rules-unit-tests     rules_unit_tests
run rules-coverage       "$PY" scripts/alert-test-coverage.py
run runbooks             runbooks
run am-config            amtool check-config alerts/alertmanager.yml
run am-test-config       am_test_config
run am-routes            routes_from_file alerts/tests/routes.txt alerts/alertmanager.yml
run am-routes-per-alert  am_routes_per_alert
run am-inhibitions       "$PY" scripts/test-inhibitions.py
skipped=""
if [ -n "${TD_PZ_METRICS_FILE:-}" ]; then
    run metric-names     metric_names
else
    skipped=" (metric-names skipped: set TD_PZ_METRICS_FILE to a /metrics scrape of the exporter)"
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "check-alerts: FAILED steps: ${failures[*]}" >&2
fi
echo "check-alerts: $passed passed, $failed failed$skipped"
[ "$failed" -eq 0 ]
