#!/usr/bin/env bash
# Browser test of the status page: the simulator with one failing persona, the exporter on src/demo.toml
# with 2-second schedules (both started by scripts/lib/stack.py), and tests/browser/status-page.test.mjs
# in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core; no browser is downloaded).
#   scripts/browser-test.sh      # TD_PZ_BIN or target/release/td-pz-exporter; CHROMIUM=/path/to/chromium
# Screenshots: target/browser/status-page.png and target/browser/target-detail.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$PWD/target/browser
fail_target="probe/394649/product_recommendations/new_user"
expect="probe/394649/product_recommendations/vip,probe/394649/product_recommendations/new_user,\
probe/394649/product_recommendations/cart_abandoner,probe/394649/web_offers/returning,\
metrics/394649/product_recommendations,logs/394649/product_recommendations,\
metrics/394649/web_offers,logs/394649/web_offers"

if [ "${1:-}" != --in-stack ]; then
  scripts/install-deps.sh test browser >/dev/null
  mkdir -p "$out"
  rm -f "$out/status-page.png" "$out/target-detail.png"
  work=$(mktemp -d "${TMPDIR:-/tmp}/td-pz-browser.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo '{"faults":[{"service":"product_recommendations","user_id":"new_user_123","status":503}]}' >"$work/scenario.json"
  sed -e 's#^\(probe\|metrics\|logs\)_schedule = .*#\1_schedule = "*/2 * * * * *"#' \
    -e 's#^max_requests_per_second = .*#max_requests_per_second = 50#' src/demo.toml >"$work/config.toml"
  grep -q '{sim}' "$work/config.toml" || { echo "src/demo.toml has no {sim} placeholder any more" >&2; exit 1; }
  [ "$(grep -c '_schedule = "\*/2' "$work/config.toml")" = 3 ] || { echo "src/demo.toml: no schedules to speed up" >&2; exit 1; }
  T0_MS=$(date +%s%3N) WORK=$work exec python3 scripts/lib/stack.py run --scenario="$work/scenario.json" \
    --exporter-config="$work/config.toml" -- bash "$0" --in-stack
fi

# shellcheck disable=SC2153  # WORK, EXPORTER_URL, SIM_URL come from the environment
# In the stack: wait until every target has a result and the failing one has failed, then the browser.
for ((i = 0; ; i++)); do
  curl -fsS --max-time 2 "$EXPORTER_URL/status.json" -o "$WORK/status.json" 2>/dev/null &&
    EXPECT="$expect" FAIL="$fail_target" node -e '
      const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const by = new Map(s.targets.map((t) => [t.id, t]));
      process.exit(process.env.EXPECT.split(",").every((id) => by.get(id)?.recent?.length > 0)
        && by.get(process.env.FAIL)?.recent?.some((r) => !r.ok) ? 0 : 1);' "$WORK/status.json" && break
  [ "$i" -lt 300 ] || { echo "status.json shows no result for every target after 30 s: $(head -c 2000 "$WORK/status.json")" >&2; exit 1; }
  sleep 0.1
done
mkdir -p "$WORK/profile"
EXPECT_TARGETS="$expect" FAIL_TARGET="$fail_target" FAIL_REASON=unavailable FAIL_STATUS=503 \
  FAIL_REQUEST_URL="$SIM_URL/audiences/394649/personalization/product_recommendations" \
  SECRETS="$TD_API_KEY"$'\n'"$TD_P13N_TOKEN" OUT_DIR="$out" USER_DATA_DIR="$WORK/profile" \
  CHROMIUM="${CHROMIUM:-/usr/bin/chromium}" node tests/browser/status-page.test.mjs
