#!/usr/bin/env bash
# A short fuzzing run of every cargo-fuzz target (fuzz/): the cdp and p13n personalization answers, the
# management metrics and logs answers, and the configuration parser.
#
#   scripts/fuzz.sh                      # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_TARGETS="config mgmt_logs" scripts/fuzz.sh
#   FUZZ_FRESH=1 scripts/fuzz.sh         # start from the seeds only, forgetting earlier runs
#
# Skips (exit 0) only when rustup lists no nightly toolchain. The tracked seeds (fuzz/seeds/<target>/) are
# copied into a corpus under target/fuzz/ that grows from run to run; crash inputs land in
# target/fuzz/artifacts/<target>/. Any crash, timeout or out-of-memory fails the run and prints its input.
# fuzz/Cargo.lock is used as it is (checked like --locked). The last line is `fuzz: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD work=$PWD/target/fuzz seconds=${FUZZ_SECONDS:-60}
export CARGO_TERM_COLOR=never
if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: no nightly toolchain (cargo-fuzz needs one: rustup toolchain install nightly)"
  exit 0
fi
scripts/install-deps.sh fuzz
if ! cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz: fuzz/Cargo.lock is out of date: cargo +nightly update -p td-pz-exporter --manifest-path fuzz/Cargo.toml, and commit it"
  exit 1
fi
t0=$(date +%s)
cargo +nightly fuzz build
build_s=$(($(date +%s) - t0))
passed=0 failed=0 report=()
for t in ${FUZZ_TARGETS:-cdp_response p13n_response mgmt_metrics mgmt_logs config}; do
  corpus=$work/corpus/$t artifacts=$work/artifacts/$t log=$work/logs/$t.log
  [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp -R "$root/fuzz/seeds/$t/." "$corpus/"
  dict=$root/fuzz/dicts/json.dict
  [ "$t" = config ] && dict=$root/fuzz/dicts/toml.dict
  echo; echo "=== $t (${seconds}s, corpus $(find "$corpus" -type f | wc -l) inputs)"
  s0=$(date +%s) rc=0
  cargo +nightly fuzz run "$t" "$corpus" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -dict="$dict" -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  summary="$t: $(($(date +%s) - s0))s, $(stat number_of_executed_units) execs ($(stat average_exec_per_sec)/s),\
 coverage $(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2), corpus $(find "$corpus" -type f | wc -l)"
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \))
  if [ "$rc" = 0 ] && [ -z "$crashes" ]; then
    passed=$((passed + 1)) report+=("ok    $summary")
    echo "ok: $summary"
  else
    failed=$((failed + 1)) report+=("FAIL  $summary")
    echo "FAIL: $t (exit $rc); the fuzzer's output is in $log"
    grep -E -m 4 "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|at \./src/" "$log" || tail -n 5 "$log"
    for c in $crashes; do echo "crash input: $c (reproduce: cargo +nightly fuzz run $t $c)"; done
  fi
done
echo; echo "=== fuzz summary (build ${build_s}s, total $(($(date +%s) - t0))s)"
printf '%s\n' "${report[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
