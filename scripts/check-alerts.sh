#!/usr/bin/env bash
# Check the alerting side: rules, their unit tests, Alertmanager routing and inhibition, the runbooks.
# Runs every step even after a failure, then prints `check-alerts: N passed, M failed`.
#
#   rules-generated      scripts/gen-rules.py --check (alerts/td-pz-rules.yaml matches its generator)
#   rules-valid          promtool check rules alerts/td-pz-rules.yaml
#   rules-test-profile   the --profile=test copies (plain, and --window-scale=60 as the e2e uses) are valid,
#                        every `for:` <= 15s, `keep_firing_for:` <= 15s (scaled: 35m -> 80s), every interval 5s
#   rules-unit-tests     promtool test rules alerts/tests/*.yaml
#   rules-coverage       every alert has a firing and a silent unit test
#   runbooks             docs/runbooks.md has a section per alert; every runbook_url points at one
#   am-config            amtool check-config alerts/alertmanager.yml (and its template alerts/td-pz.tmpl)
#   am-test-config       the test copy (scripts/lib/alerts.py test-config: the real receivers and template,
#                        posting to the local fakes) is valid and routes alike
#   am-routes            alerts/tests/routes.txt through amtool config routes test
#   am-routes-per-alert  every alert reaches the receiver of its severity (scripts/gen-rules.py --route-cases)
#   am-inhibitions       alerts/tests/alertmanager/inhibit.yaml against a real Alertmanager
# (That every metric name the rules use is one the crate describes is tests/metric_names.rs, in cargo test.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh test >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-alerts.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
alerts() { python3 scripts/lib/alerts.py "$@"; }

rules_test_profile() {
    for scale in 1 60; do
        python3 scripts/gen-rules.py --profile=test --window-scale=$scale --out="$TMP/td-pz-rules.test-$scale.yaml"
        promtool check rules "$TMP/td-pz-rules.test-$scale.yaml"
        alerts test-profile "$TMP/td-pz-rules.test-$scale.yaml" $scale
    done
}
am_test_config() {
    alerts test-config --url=http://127.0.0.1:9 --secrets="$TMP" >"$TMP/am-test.yml"
    amtool check-config "$TMP/am-test.yml"
    grep -q "url: http://127.0.0.1:9/v2/enqueue" "$TMP/am-test.yml"
    if grep -v "^\s*#" "$TMP/am-test.yml" | grep -q /etc/alertmanager; then
        echo "the test copy still reads the production secret files" >&2; return 1
    fi
    routes_from_file alerts/tests/routes.txt "$TMP/am-test.yml"
}
# routes_from_file CASES CONFIG: each non-comment line `receivers label=value...`
routes_from_file() {
    local n=0 bad=0 expected labels out
    while read -r expected labels; do
        case "$expected" in ''|'#'*) continue ;; esac
        n=$((n + 1))
        # shellcheck disable=SC2086  # labels are whitespace-separated on purpose
        if ! out=$(amtool config routes test --config.file="$2" --verify.receivers="$expected" $labels 2>/dev/null); then
            echo "route: {$labels} -> $out, expected $expected" >&2
            bad=$((bad + 1))
        fi
    done <"$1"
    echo "$n routing cases, $bad wrong ($2)"
    [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}
am_routes_per_alert() {
    python3 scripts/gen-rules.py --route-cases >"$TMP/route-cases.txt"
    routes_from_file "$TMP/route-cases.txt" alerts/alertmanager.yml
}

passed=0 failed=0
run() {
    local name=$1 rc=0
    shift
    echo; echo "==> $name"
    ( set -euo pipefail; "$@" ) || rc=$?
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); echo "ok: $name"
    else failed=$((failed + 1)); echo "FAILED: $name (exit $rc)" >&2; fi
}
run rules-generated      python3 scripts/gen-rules.py --check
run rules-valid          promtool check rules alerts/td-pz-rules.yaml
run rules-test-profile   rules_test_profile
run rules-unit-tests     promtool test rules alerts/tests/*.yaml
run rules-coverage       alerts coverage
run runbooks             alerts runbooks
run am-config            amtool check-config alerts/alertmanager.yml
run am-test-config       am_test_config
run am-routes            routes_from_file alerts/tests/routes.txt alerts/alertmanager.yml
run am-routes-per-alert  am_routes_per_alert
run am-inhibitions       alerts inhibitions
echo
echo "check-alerts: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
