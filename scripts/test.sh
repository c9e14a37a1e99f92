#!/usr/bin/env bash
# The test command (`.ci/run` runs exactly this; `make` lists the single tasks). Installs what the tests
# need, then runs everything: fmt, clippy (warnings denied), unit and integration tests, the
# promtool/amtool checks, dashboard and deployment checks, the browser test of the status page, the
# end-to-end test against real Prometheus and Alertmanager, the contract test and a short fuzzing run
# (in the background beside the later stages, as the end-to-end test mostly waits). One release build is
# shared by every stage but fuzzing. The work tree must be as clean at the end as at the start.
# TD_PZ_KEEP_GOING=1 runs every stage even after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never PYTHONDONTWRITEBYTECODE=1 TD_PZ_BIN="$PWD/target/release/td-pz-exporter"
start=$(date +%s) passed=0 failed=0 report=()
summary() {
  echo; echo "=== summary ($(($(date +%s) - start))s)"
  printf '%s\n' "${report[@]}"
  echo "test.sh: $passed passed, $failed failed"
}
stage() {
  local name=$1 t0
  shift
  t0=$(date +%s)
  echo; echo "=== $name"
  if "$@"; then
    passed=$((passed + 1)) report+=("ok    $name ($(($(date +%s) - t0))s)")
  else
    failed=$((failed + 1)) report+=("FAIL  $name ($(($(date +%s) - t0))s)")
    if [ "${TD_PZ_KEEP_GOING:-0}" != 1 ]; then
      summary
      [ -n "${fuzz_pid:-}" ] && kill "$fuzz_pid" 2>/dev/null
      exit 1
    fi
  fi
}
status_before=$(git status --porcelain 2>/dev/null || true)
clean_tree() {
  local now
  now=$(git status --porcelain 2>/dev/null || true)
  [ "$now" = "$status_before" ] || { echo "the test command changed the work tree:"; diff <(echo "$status_before") <(echo "$now"); }
}
join_fuzz() {
  local rc=0
  wait "$fuzz_pid" || rc=$?
  cat target/fuzz.log
  return "$rc"
}

stage "install dependencies" scripts/install-deps.sh test browser contract dashboards deploy fuzz
stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy (warnings denied)" cargo clippy --release --all-targets --locked -- -D warnings
# Every simulator of the suite (in-process, `simulate`, the demo) appends what it was asked and answered
# here; the contract stage validates it against TD's OpenAPI documents.
mkdir -p target/contract
export TD_PZ_SIM_RECORD="$PWD/target/contract/exchanges.jsonl"
: >"$TD_PZ_SIM_RECORD"
stage "cargo test (unit and integration)" cargo test --release --locked
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz.sh >target/fuzz.log 2>&1 &
fuzz_pid=$!
stage "alert rules: promtool, amtool, routes, inhibitions" scripts/check-alerts.sh
stage "dashboards" scripts/check-dashboards.sh
stage "deployment files" scripts/check-deploy.sh
stage "status page in headless Chromium" scripts/browser-test.sh
stage "end to end: simulator, exporter, Prometheus, Alertmanager, PagerDuty and Slack fakes" scripts/e2e.sh
stage "contract: requests and answers vs TD's OpenAPI (openapi-core), td-js-sdk vs /public" scripts/contract-test.sh "$TD_PZ_SIM_RECORD"
stage "fuzzing (cargo fuzz, response and config parsers; 30 s a target)" join_fuzz
stage "the work tree is left as it was (git status --porcelain)" clean_tree
summary
[ "$failed" = 0 ]
