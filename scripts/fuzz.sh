#!/usr/bin/env bash
# A short fuzzing run of every cargo-fuzz target (fuzz/): the cdp and p13n personalization
# answers, the management metrics and logs answers, and the configuration parser.
#
#   scripts/fuzz.sh                      # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=10 scripts/fuzz.sh      # shorter
#   FUZZ_TARGETS="config mgmt_logs" scripts/fuzz.sh
#   FUZZ_FRESH=1 scripts/fuzz.sh         # start from the seeds only, forgetting earlier runs
#
# It skips (exit 0) only when rustup lists no nightly toolchain: libFuzzer needs nightly. It
# installs cargo-fuzz when missing. The tracked seeds (fuzz/seeds/<target>/) are copied into a
# scratch corpus under target/fuzz/ that grows from run to run and is never committed; crash
# inputs land in target/fuzz/artifacts/<target>/. Any crash, timeout or out-of-memory fails the
# run, and its input's path is printed. The last line is `fuzz: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-cdp_response p13n_response mgmt_metrics mgmt_logs config}
work=$root/target/fuzz

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: no nightly toolchain (cargo-fuzz needs one: rustup toolchain install nightly)"
  exit 0
fi
scripts/install-deps.sh fuzz
# cargo fuzz has no --locked: check fuzz/Cargo.lock first, so that the run never rewrites it.
if ! cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz: fuzz/Cargo.lock is out of date: cargo +nightly update -p td-pz-exporter --manifest-path fuzz/Cargo.toml, and commit it"
  exit 1
fi

t0=$(date +%s)
echo "fuzz: building the targets (nightly, release, ASan)"
cargo +nightly fuzz build
build_s=$(($(date +%s) - t0))
echo "fuzz: built in ${build_s}s"

dict_of() {
  case $1 in
    config) echo "$root/fuzz/dicts/toml.dict" ;;
    *) echo "$root/fuzz/dicts/json.dict" ;;
  esac
}

passed=0
failed=0
report=()
for t in $targets; do
  corpus=$work/corpus/$t
  artifacts=$work/artifacts/$t
  log=$work/logs/$t.log
  [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp -R "$root/fuzz/seeds/$t/." "$corpus/"
  echo
  echo "=== $t (${seconds}s, corpus $(find "$corpus" -type f | wc -l) inputs)"
  s0=$(date +%s)
  rc=0
  cargo +nightly fuzz run "$t" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -dict="$(dict_of "$t")" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - s0))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  size=$(find "$corpus" -type f | wc -l)
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  summary="$t: ${took}s, ${execs:-?} execs (${rate:-?}/s), coverage ${cov:-?}, corpus $size"
  if [ "$rc" = 0 ] && [ -z "$crashes" ]; then
    passed=$((passed + 1))
    report+=("ok    $summary")
    echo "ok: $summary"
  else
    failed=$((failed + 1))
    report+=("FAIL  $summary")
    echo "FAIL: $t (exit $rc); the fuzzer's output is in $log"
    grep -E -m 4 "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || true
    grep -A1 -m 1 "panicked at" "$log" | tail -n +2 || true
    grep -E -m 1 "at \./src/" "$log" | sed 's/^ */first frame in src\/: /' || true
    if [ -n "$crashes" ]; then
      for c in $crashes; do
        echo "crash input: $c"
        echo "  reproduce: cargo +nightly fuzz run $t $c"
      done
    else
      echo "crash input: none written; the end of $log:"
      tail -n 5 "$log"
    fi
  fi
done

echo
echo "=== fuzz summary (build ${build_s}s, total $(($(date +%s) - t0))s)"
printf '%s\n' "${report[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
