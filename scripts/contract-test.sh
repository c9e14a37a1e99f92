#!/usr/bin/env bash
# The contract test (tests/contract/): holds the simulator's recorded exchanges to TD's OpenAPI
# documents with openapi-core, and holds its /public path to what td-js-sdk sends.
#
#   scripts/contract-test.sh [EXCHANGES.jsonl...]   # default target/contract/exchanges.jsonl
#
# 1. a venv in target/contract/venv with tests/contract/requirements.txt, and `npm ci` there;
# 2. the self-tests (pytest): overlay, valid and one-defect fixtures, the replay against a stand-in;
# 3. td-js-sdk's fetchPersonalization captured under Node; it must equal the checked-in fixture;
# 4. when TD_PZ_BIN names the exporter binary: its simulator started on loopback (recording to
#    target/contract/replay.jsonl) and the captured request replayed to /public, which must answer 200;
# 5. contract_check.py on the recordings (made with TD_PZ_SIM_RECORD during cargo test and e2e).
# The OpenAPI copies are read from TD_PZ_SPEC_DIR (default ../shared/spec/openapi beside the repo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=tests/contract
out=target/contract
venv=$out/venv
py=$venv/bin/python
mkdir -p "$out"
say() { printf 'contract-test: %s\n' "$*" >&2; }

# ---- 1. dependencies (installed again only when their pins change) ------------------------------
if ! cmp -s "$dir/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
  say "installing $dir/requirements.txt into $venv"
  python3 -m venv "$venv"
  "$py" -m pip install -q --disable-pip-version-check -r "$dir/requirements.txt"
  cp "$dir/requirements.txt" "$venv/requirements.txt"
fi
if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.ci" 2>/dev/null; then
  say "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.ci"
fi

# ---- 2. self-tests -------------------------------------------------------------------------------
"$py" -m pytest -q -p no:cacheprovider "$dir"

# ---- 3. td-js-sdk's request ----------------------------------------------------------------------
node "$dir/capture_public.js" "$out/public-request.json"
if ! diff -u "$dir/fixtures/public-request.json" "$out/public-request.json"; then
  say "td-js-sdk's request differs from $dir/fixtures/public-request.json (update the fixture on purpose)"
  exit 1
fi

# ---- 4. the simulator's /public path accepts it ----------------------------------------------------
rm -f "$out/replay.jsonl"
if [ -n "${TD_PZ_BIN:-}" ]; then
  key=contract-test-key
  token=1/2/0123456789abcdef0123456789abcdef
  log=$out/sim.log
  TD_PZ_SIM_RECORD="$out/replay.jsonl" "$TD_PZ_BIN" simulate --listen 127.0.0.1:0 --api-key "$key" --p13n-token "$token" >"$log" 2>&1 &
  sim=$!
  trap 'kill "$sim" 2>/dev/null || true' EXIT
  url=""
  for _ in $(seq 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { say "the simulator did not start:"; cat "$log" >&2; exit 1; }
  "$py" "$dir/replay_public.py" "$url" --key "$key" --token "$token"
  kill "$sim"
  wait "$sim" 2>/dev/null || true
  trap - EXIT
else
  say "TD_PZ_BIN is not set: the replay to a running simulator's /public path is skipped"
fi

# ---- 5. the recordings -----------------------------------------------------------------------------
[ $# -gt 0 ] || set -- "$out/exchanges.jsonl"
for f in "$@"; do
  [ -s "$f" ] || { say "no recording at $f (export TD_PZ_SIM_RECORD=$f while the tests run)"; exit 1; }
done
# The replay's own exchange, when the simulator recorded it, is checked too (allow-list p13n-public).
[ ! -s "$out/replay.jsonl" ] || set -- "$@" "$out/replay.jsonl"
"$py" "$dir/contract_check.py" "$@"
