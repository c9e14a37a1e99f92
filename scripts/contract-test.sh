#!/usr/bin/env bash
# The contract test (tests/contract/): holds the simulator's recorded exchanges to TD's OpenAPI
# documents with openapi-core, and holds its /public path to what td-js-sdk sends.
#
#   scripts/contract-test.sh [EXCHANGES.jsonl...]   # default target/contract/exchanges.jsonl
#
# 1. the self-tests (pytest): overlay, valid and one-defect fixtures, the replay against a stand-in;
# 2. td-js-sdk's fetchPersonalization captured under Node; it must equal the checked-in fixture;
# 3. when TD_PZ_BIN names the exporter binary: its simulator (scripts/lib/stack.py, recording to
#    target/contract/replay.jsonl) gets the captured request replayed to /public, which must answer 200;
# 4. contract_check.py on the recordings (made with TD_PZ_SIM_RECORD during cargo test and e2e).
# The OpenAPI copies are read from TD_PZ_SPEC_DIR (default ../shared/spec/openapi beside the repo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=tests/contract out=target/contract py=target/contract/venv/bin/python
say() { printf 'contract-test: %s\n' "$*" >&2; }
scripts/install-deps.sh test contract >/dev/null

"$py" -m pytest -q -p no:cacheprovider "$dir"
node "$dir/capture_public.js" "$out/public-request.json"
if ! diff -u "$dir/fixtures/public-request.json" "$out/public-request.json"; then
  say "td-js-sdk's request differs from $dir/fixtures/public-request.json (update the fixture on purpose)"
  exit 1
fi
rm -f "$out/replay.jsonl"
if [ -n "${TD_PZ_BIN:-}" ]; then
  # shellcheck disable=SC2016  # expanded by the inner shell, where stack.py sets them
  TD_PZ_SIM_RECORD="$PWD/$out/replay.jsonl" python3 scripts/lib/stack.py run -- \
    bash -c '"$0" tests/contract/replay_public.py "$SIM_URL" --key "$TD_API_KEY" --token "$TD_P13N_TOKEN"' "$py"
else
  say "TD_PZ_BIN is not set: the replay to a running simulator's /public path is skipped"
fi
[ $# -gt 0 ] || set -- "$out/exchanges.jsonl"
for f in "$@"; do
  [ -s "$f" ] || { say "no recording at $f (export TD_PZ_SIM_RECORD=$f while the tests run)"; exit 1; }
done
# The replay's own exchange, when the simulator recorded it, is checked too (allow-list p13n-public).
[ ! -s "$out/replay.jsonl" ] || set -- "$@" "$out/replay.jsonl"
"$py" "$dir/contract_check.py" "$@"
