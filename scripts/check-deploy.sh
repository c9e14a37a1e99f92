#!/usr/bin/env bash
# Static checks of everything under deploy/ (no Docker engine, no cluster); tools from scripts/install-deps.sh
# (test, deploy), the Python checks in scripts/lib/deploy.py. One line per check, then the counts.
#   Dockerfile   hadolint + structure (multi-stage, --locked, non-root, HEALTHCHECK, bench stubs), .dockerignore
#   Compose      compose-spec + references resolved; promtool/amtool on its configs; Grafana provisioning
#   configs      `td-pz-exporter --config.check` on every TOML config (the crate's own validator, TD_PZ_BIN);
#                secrets, credentials and simulator URLs agree with the deployment around each file
#   Kubernetes   kustomize of base/ and every overlay; kubernetes-validate --strict; ServiceMonitor and
#                PrometheusRule against the prometheus-operator models; invariants (SHARD_COUNT == replicas,
#                selectors, security context, probes, resources, references); gen-prometheusrule.py --check
#   systemd      systemd-analyze verify (on a copy pointing at a stub binary), security --offline, hardening
#   scripts      shellcheck of scripts/*.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
scripts/install-deps.sh test deploy >/dev/null
VENV=${CHECK_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/td-pz-check-deploy}/venv
PY=$VENV/bin/python KUBECTL=$VENV/bin/kubectl
export PATH="$VENV/bin:$PATH"
PASSED=0 FAILED=0 SKIPPED=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass() { PASSED=$((PASSED + 1)); echo "ok    $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL  $1"; }
# check NAME COMMAND...: run it, keep its output for failures only.
check() {
  local name=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/      /' "$WORK/out"; fi
}
checks() { "$PY" scripts/lib/deploy.py "$@"; }

check "Dockerfile: hadolint" "$VENV/bin/hadolint" deploy/docker/Dockerfile
check "Dockerfile: structure, .dockerignore" checks dockerfile deploy/docker/Dockerfile .dockerignore
check "compose: compose-spec parse + references" checks compose deploy/compose/compose.yaml

mkdir -p "$WORK/prom"
sed "s|^\(\s*- \)/etc/prometheus/rules/\*\.yaml|\1$ROOT/alerts/td-pz-rules.yaml|" deploy/compose/prometheus.yml >"$WORK/prom/prometheus.yml"
check "compose: promtool check config (with alerts/td-pz-rules.yaml)" promtool check config "$WORK/prom/prometheus.yml"
check "compose: amtool check-config alertmanager.yml" amtool check-config deploy/compose/alertmanager.yml
check "compose: grafana provisioning, dashboards/*.json" checks grafana deploy/compose/grafana/provisioning dashboards
no_trailing_newline() { # the key would carry it
  local f
  for f in "$@"; do [[ -s $f && $(tail -c1 "$f" | od -An -tx1 | tr -d ' ') != 0a ]] || { echo "$f"; return 1; }; done
}
check "compose: secrets/*.example non-empty, no trailing newline" no_trailing_newline deploy/compose/secrets/*.example
check "configs: secrets, credentials and simulator URLs agree (compose, systemd)" checks tomls

BIN=${TD_PZ_BIN:-target/release/td-pz-exporter}
printf '%s' '1/0123456789abcdef0123456789abcdef01234567' >"$WORK/dummy_key"
for cfg in deploy/compose/td-pz-exporter.toml deploy/systemd/td-pz-exporter.toml \
  deploy/kubernetes/base/td-pz-exporter.toml deploy/kubernetes/overlays/*/td-pz-exporter.toml; do
  sed -E "s#^(\s*(api_key_file|token_file)\s*=\s*)\"[^\"]*\"#\1\"$WORK/dummy_key\"#" "$cfg" >"$WORK/cfg.toml"
  check "configs: td-pz-exporter --config.check $cfg" \
    env TD_API_KEY=1/0123 TD_P13N_TOKEN=1/1/0123456789abcdef0123456789abcdef \
    "$BIN" --config.check --config.file="$WORK/cfg.toml"
done
check "kubernetes: gen-prometheusrule.py --check" "$PY" deploy/kubernetes/gen-prometheusrule.py --check

for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  dir=${dir%/}
  label=${dir#deploy/kubernetes/}
  out="$WORK/${label//\//_}.yaml"
  if ! "$KUBECTL" kustomize "$dir" >"$out" 2>"$WORK/out"; then
    fail "kubernetes $label: kubectl kustomize"
    sed 's/^/      /' "$WORK/out"
    continue
  fi
  pass "kubernetes $label: kubectl kustomize ($(grep -c '^kind:' "$out") objects)"
  checks split "$out" "$out.builtin" "$out.crd" >/dev/null
  check "kubernetes $label: kubernetes-validate --strict (built-in kinds)" \
    kubernetes-validate --strict --quiet "$out.builtin"
  check "kubernetes $label: ServiceMonitor/PrometheusRule vs prometheus-operator models" checks crds "$out.crd"
  check "kubernetes $label: invariants (shards, selectors, security, probes, config)" checks invariants "$out" "$label"
done
check "kubernetes: secret.example.yaml matches what the StatefulSet reads" \
  checks secret-example deploy/kubernetes/base/secret.example.yaml "$WORK/base.yaml"
# verify needs the ExecStart binary to exist: point the unit (same file name, so the credential path holds)
# at a stub in a temp dir.
mkdir -p "$WORK/systemd"
printf '#!/bin/sh\nexit 0\n' >"$WORK/td-pz-exporter-stub"
chmod +x "$WORK/td-pz-exporter-stub"
sed "s|/usr/local/bin/td-pz-exporter|$WORK/td-pz-exporter-stub|g" deploy/systemd/td-pz-exporter.service \
  >"$WORK/systemd/td-pz-exporter.service"
verify_quiet() { # systemd-analyze verify exits 0 on some warnings: any output is a failure
  local out
  if ! out=$(systemd-analyze verify "$@" 2>&1) || [[ -n $out ]]; then echo "$out"; return 1; fi
}
check "systemd: systemd-analyze verify" verify_quiet "$WORK/systemd/td-pz-exporter.service"
check "systemd: systemd-analyze security --offline (exposure <= 2.0)" \
  systemd-analyze security --offline=yes --threshold=20 --no-pager "$WORK/systemd/td-pz-exporter.service"
unit_hardening() {
  local k rc=0
  for k in DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
    NoNewPrivileges=yes ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" SystemCallFilter=@system-service \
    MemoryDenyWriteExecute=yes CapabilityBoundingSet= LockPersonality=yes RestrictNamespaces=yes \
    "ExecReload=/bin/kill -HUP \$MAINPID" Restart=on-failure \
    LoadCredential=td_api_key:/etc/td-pz-exporter/td_api_key; do
    grep -qxF "$k" "$1" || { echo "missing: $k"; rc=1; }
  done
  return $rc
}
check "systemd: unit has the required hardening" unit_hardening deploy/systemd/td-pz-exporter.service

check "scripts/*.sh: shellcheck" shellcheck scripts/*.sh

echo "check-deploy: $PASSED passed, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
