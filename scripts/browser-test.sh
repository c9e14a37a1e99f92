#!/usr/bin/env bash
# Browser test of the status page: the simulator with one failing persona, the exporter on a
# fast schedule, and tests/browser/status-page.test.mjs in headless Chromium (Debian's
# /usr/bin/chromium driven by playwright-core; no browser is downloaded).
#
#   scripts/browser-test.sh            # uses target/release/td-pz-exporter (built if missing)
#   TD_PZ_BIN=/path/to/bin scripts/browser-test.sh
#   CHROMIUM=/path/to/chromium scripts/browser-test.sh
#
# Screenshots: target/browser/status-page.png and target/browser/target-detail.png.
# Logs of the simulator and exporter: target/browser/{sim,exporter}.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
t0=$(date +%s)
t0_ms=$(date +%s%3N)

out="$root/target/browser"
mkdir -p "$out"
rm -f "$out/status-page.png" "$out/target-detail.png"
work=$(mktemp -d "${TMPDIR:-/tmp}/td-pz-browser.XXXXXX")

pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf 'browser-test: %s\n' "$*" >&2; }
die() {
  say "$*"
  for f in sim exporter; do
    if [ -s "$out/$f.log" ]; then
      say "last lines of $out/$f.log:"
      tail -n 20 "$out/$f.log" >&2
    fi
  done
  exit 1
}

# ---- tools --------------------------------------------------------------------------------
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  say "installing chromium (apt-get)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  chromium=/usr/bin/chromium
fi
[ -x "$chromium" ] || die "no chromium at $chromium"
command -v node >/dev/null || die "node is needed (20 or newer)"
command -v npm >/dev/null || die "npm is needed"
command -v curl >/dev/null || die "curl is needed"

# npm ci only when node_modules is missing or was installed from another lock file.
bdir="$root/tests/browser"
lock_sum=$(sha256sum "$bdir/package-lock.json" | cut -d' ' -f1)
stamp="$bdir/node_modules/.installed-from-lock"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ] || [ ! -d "$bdir/node_modules/playwright-core" ]; then
  say "npm ci in tests/browser"
  (cd "$bdir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  echo "$lock_sum" >"$stamp"
fi

bin=${TD_PZ_BIN:-$root/target/release/td-pz-exporter}
if [ ! -x "$bin" ]; then
  [ -z "${TD_PZ_BIN:-}" ] || die "TD_PZ_BIN=$bin is not an executable"
  say "building $bin"
  cargo build --release --quiet
fi

# ---- ports, secrets, scenario, config -----------------------------------------------------
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
sim_port=$(free_port)
exp_port=$(free_port)
while [ "$exp_port" = "$sim_port" ]; do exp_port=$(free_port); done
sim_url="http://127.0.0.1:$sim_port"
exp_url="http://127.0.0.1:$exp_port"

# Recognisable values, to find them if they ever leak into a page.
export TD_API_KEY="1/e2eSECRETkey0123456789"
export TD_P13N_TOKEN="1/2/e2e5ec3e70123456789abcdef0abcdef"

fail_target="probe/394649/product_recommendations/new_user"
cat >"$work/scenario.json" <<'EOF'
{"faults":[{"service":"product_recommendations","user_id":"new_user_123","status":503}]}
EOF

# src/demo.toml on a 2-second schedule, pointed at this simulator.
sed -e "s#{sim}#$sim_url#g" \
  -e 's#^probe_schedule = .*#probe_schedule = "*/2 * * * * *"#' \
  -e 's#^metrics_schedule = .*#metrics_schedule = "*/2 * * * * *"#' \
  -e 's#^logs_schedule = .*#logs_schedule = "*/2 * * * * *"#' \
  -e 's#^max_requests_per_second = .*#max_requests_per_second = 50#' \
  "$root/src/demo.toml" >"$work/config.toml"
grep -q "$sim_url" "$work/config.toml" || die "src/demo.toml has no {sim} placeholder any more"
grep -q '^probe_schedule = "\*/2' "$work/config.toml" || die "src/demo.toml has no probe_schedule to speed up"

# ---- start ---------------------------------------------------------------------------------
"$bin" simulate --listen="127.0.0.1:$sim_port" --api-key="$TD_API_KEY" \
  --p13n-token="$TD_P13N_TOKEN" --scenario="$work/scenario.json" >"$out/sim.log" 2>&1 &
pids+=($!)

wait_http() { # url what seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || die "$2 exited early"
    done
    sleep 0.1
  done
  die "$2 did not answer $1 within $3 s"
}
wait_http "$sim_url/_sim/stats" simulator 15

"$bin" --config.file="$work/config.toml" --web.listen-address="127.0.0.1:$exp_port" \
  --log.level=info >"$out/exporter.log" 2>&1 &
pids+=($!)
wait_http "$exp_url/-/ready" exporter 15

# Every target has a result, and the failing one has failed.
expect="probe/394649/product_recommendations/vip,probe/394649/product_recommendations/new_user,\
probe/394649/product_recommendations/cart_abandoner,probe/394649/web_offers/returning,\
metrics/394649/product_recommendations,logs/394649/product_recommendations,\
metrics/394649/web_offers,logs/394649/web_offers"
ready=""
for ((i = 0; i < 300; i++)); do
  if curl -fsS --max-time 2 "$exp_url/status.json" -o "$work/status.json" 2>/dev/null &&
    EXPECT="$expect" FAIL="$fail_target" node -e '
      const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const by = new Map(s.targets.map((t) => [t.id, t]));
      const ok = process.env.EXPECT.split(",").every((id) => by.get(id)?.recent?.length > 0)
        && by.get(process.env.FAIL)?.recent?.some((r) => !r.ok);
      process.exit(ok ? 0 : 1);' "$work/status.json"; then
    ready=1
    break
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "a process exited early"
  done
  sleep 0.1
done
[ -n "$ready" ] || die "status.json did not show a result for every target within 30 s: $(head -c 2000 "$work/status.json" 2>/dev/null)"
say "results for every target after $(($(date +%s) - t0)) s; running the browser"

# ---- the browser ---------------------------------------------------------------------------
mkdir -p "$work/profile"
set +e
EXPORTER_URL="$exp_url" SIM_URL="$sim_url" EXPECT_TARGETS="$expect" \
  FAIL_TARGET="$fail_target" FAIL_REASON=unavailable FAIL_STATUS=503 \
  FAIL_REQUEST_URL="$sim_url/audiences/394649/personalization/product_recommendations" \
  SECRETS="$TD_API_KEY"$'\n'"$TD_P13N_TOKEN" OUT_DIR="$out" USER_DATA_DIR="$work/profile" \
  CHROMIUM="$chromium" T0_MS="$t0_ms" node "$bdir/status-page.test.mjs" &
node_pid=$!
pids+=("$node_pid")
wait "$node_pid" # interruptible, unlike a foreground child: INT/TERM reach cleanup at once
rc=$?
set -e
exit "$rc"
