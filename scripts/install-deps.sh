#!/usr/bin/env bash
# Installs what the tests need and is not on the machine yet: one `apt-get update`, then one
# `apt-get install -y` of whatever is missing. Safe to run again (it installs nothing twice).
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have promtool || need+=(prometheus)
have amtool || need+=(prometheus-alertmanager)
have chromium || need+=(chromium)
have shellcheck || need+=(shellcheck)
have systemd-analyze || need+=(systemd)
have node || need+=(nodejs)
have npm || need+=(npm)
have python3 || need+=(python3)
have curl || need+=(curl)
have openssl || need+=(openssl)
if [ "${TD_PZ_BENCH:-0}" = 1 ]; then
  have wrk || need+=(wrk)
  have prometheus-blackbox-exporter || [ -x /usr/bin/prometheus-blackbox-exporter ] || need+=(prometheus-blackbox-exporter)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's prometheus packages start their daemons on the default ports where systemd runs;
# the tests use their own ports, so those are left alone.
echo "install-deps: ok ($(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3); $(amtool --version 2>&1 | head -1 | cut -d' ' -f1-3))"
