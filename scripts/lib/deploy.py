#!/usr/bin/env python3
"""The Python checks of scripts/check-deploy.sh: `deploy.py CMD ARGS...` prints its problems, exits 1 if any.
Needs the tools `install-deps.sh deploy` puts in a venv."""
import json
import os
import re
import sys
import tomllib
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


# ---- TOML configuration: keys and values are checked by `td-pz-exporter --config.check` (the crate's
# own validator); here only what the deployment around each file must agree with.

def check_toml(label, text, expect):
    td, services = tomllib.loads(text).get("td", {}), tomllib.loads(text).get("service", [])
    for k, v in expect.items():
        if k == "simulator":
            for u in ("personalization_url", "p13n_url", "cdp_api_url"):
                if td.get(u) != v:
                    bad(f"{label}: [td] {u} should be {v} (the simulator)")
            if td.get("allow_insecure_http") is not True:
                bad(f"{label}: [td] allow_insecure_http = true is needed to reach the simulator over http")
        elif k in ("token_files", "token_envs"):
            key = k[:-1]
            for s in services:
                if key in s and s[key] not in v:
                    bad(f"{label}: {key} {s[key]!r} is not provided by the deployment ({sorted(v)})")
        elif td.get(k) != v:
            bad(f"{label}: [td] {k} = {td.get(k)!r}, expected {v!r}")


def cmd_tomls():
    d = ROOT / "deploy"
    check_toml("deploy/compose/td-pz-exporter.toml", (d / "compose/td-pz-exporter.toml").read_text(),
               {"simulator": "http://simulator:9898", "api_key_file": "/run/secrets/td_api_key",
                "token_files": {"/run/secrets/td_p13n_token"}})
    # The systemd config reads its key and tokens from credentials the unit loads (some commented out).
    unit, sysd = (d / "systemd/td-pz-exporter.service").read_text(), (d / "systemd/td-pz-exporter.toml").read_text()
    cred = r"^/run/credentials/td-pz-exporter\.service/(.+)$"
    for pattern, creds in ((r"^\s*api_key_file\s*=\s*\"([^\"]+)\"", re.findall(r"^LoadCredential=([^:\s]+):", unit, re.M)),
                           (r"^#?\s*token_file\s*=\s*\"([^\"]+)\"", re.findall(r"^#?LoadCredential=([^:\s]+):", unit, re.M))):
        for path in re.findall(pattern, sysd, re.M):
            m = re.match(cred, path)
            if not m or m.group(1) not in creds:
                bad(f"deploy/systemd/td-pz-exporter.toml: {path!r} is no LoadCredential ({creds}) of the unit")
    done()


def cmd_compose(path):
    """compose-spec's parser (unknown keys, bad values), then every reference resolved."""
    from compose_spec import PyCompose
    path = Path(path)
    text = path.read_text()
    try:
        PyCompose.from_yaml(text)
    except Exception as e:  # the parser raises ValueError with the location
        bad(f"{path}: {e}")
        done()
    c, base = yaml.safe_load(text), path.parent
    services = c.get("services", {})
    env = lambda m: os.environ.get(m.group(1)) or m.group(3) or ""  # noqa: E731

    def exists(rel, what, svc):
        if not (base / re.sub(r"\$\{([A-Za-z_]\w*)(:?-([^}]*))?\}", env, rel)).exists():
            bad(f"{path}: {svc}: {what} {rel} does not exist")
    for name, s in services.items():
        bad_deps = [x for x in (s.get("depends_on") or {}) if x not in services]
        bad_refs = [f"{kind[:-1]} {ref if isinstance(ref, str) else ref.get('source')}" for kind in ("secrets", "configs")
                    for ref in s.get(kind) or [] if (ref if isinstance(ref, str) else ref.get("source")) not in (c.get(kind) or {})]
        for msg in [f"depends_on unknown service {x}" for x in bad_deps] + [f"{r} is not defined at top level" for r in bad_refs]:
            bad(f"{path}: {name}: {msg}")
        for v in s.get("volumes") or []:
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
        if "image" not in s and "build" not in s or ":" not in s.get("image", ":").split("/")[-1]:
            bad(f"{path}: {name}: neither an image with a pinned tag nor a build")
    for kind in ("secrets", "configs"):
        for n, d in (c.get(kind) or {}).items():
            if "file" in d:
                exists(d["file"], f"{kind[:-1]} file", n)
    # The exporter's Prometheus job must be td-pz-exporter and scrape the exporter service.
    jobs = {j["job_name"]: j for j in yaml.safe_load((base / "prometheus.yml").read_text()).get("scrape_configs", [])}
    targets = [t for sc in jobs.get("td-pz-exporter", {}).get("static_configs", []) for t in sc.get("targets", [])]
    if not any(t.split(":")[0] in services for t in targets):
        bad(f"prometheus.yml: no job td-pz-exporter whose targets name a Compose service ({targets})")
    done()


def cmd_grafana(prov_dir, dashboards_dir):
    for f in sorted(Path(prov_dir).rglob("*.y*ml")):
        d = yaml.safe_load(f.read_text())
        if d.get("apiVersion") != 1:
            bad(f"{f}: apiVersion must be 1")
        bad_ds = [ds for ds in d.get("datasources", []) if not {"name", "type", "url"} <= set(ds)]
        bad_pr = [p for p in d.get("providers", []) if p.get("type") != "file" or "path" not in p.get("options", {})]
        for x in bad_ds + bad_pr:
            bad(f"{f}: datasource needs name, type, url; provider needs type file and options.path: {x}")
    for f in sorted(Path(dashboards_dir).glob("*.json")):
        try:
            j = json.loads(f.read_text())
        except ValueError as e:
            bad(f"{f}: not JSON: {e}")
            continue
        if "panels" not in j or "__inputs" in j:
            bad(f"{f}: no panels, or __inputs (exported for sharing: file provisioning does not resolve them)")
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
    spec, tmpl = sts["spec"], sts["spec"]["template"]
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
    for p in by.get("PodDisruptionBudget", []):
        if not match(p["spec"]["selector"].get("matchLabels"), pod_labels):
            bad(f"{label}: PodDisruptionBudget selector does not match the pods")
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
    sc, psc, res = c.get("securityContext", {}), pod.get("securityContext", {}), c.get("resources", {})
    for ok, msg in ((sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true"),
                    (sc.get("runAsNonRoot") or psc.get("runAsNonRoot"), "runAsNonRoot must be true"),
                    (sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false"),
                    (sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities must drop ALL"),
                    ((sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                     "seccompProfile must be RuntimeDefault"),
                    (c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/-/healthy",
                     "livenessProbe must GET /-/healthy"),
                    (c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/-/ready",
                     "readinessProbe must GET /-/ready"),
                    (res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
                     and res.get("limits", {}).get("memory"), "resources need requests cpu+memory and a memory limit")):
        if not ok:
            bad(f"{label}: {msg}")
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
