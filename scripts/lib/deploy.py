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
bad = problems.append  # bad(message): one problem found


def done():
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


# ---- TOML configuration: keys and values are checked by `td-pz-exporter --config.check` (the crate's
# own validator); here only what the deployment around each file must agree with.

def check_toml(label, text, expect):
    cfg = tomllib.loads(text)
    td, services = cfg.get("td", {}), cfg.get("service", [])
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
    path, text = Path(path), Path(path).read_text()
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
        by_alias = {**{(f.alias or n): n for n, f in fields.items()}, **{n: n for n in fields}}
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
    docs, by = load_docs(rendered), {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)
    if len(by.get("StatefulSet", [])) != 1:
        bad(f"{label}: expected one StatefulSet, got {len(by.get('StatefulSet', []))}")
        done()
    (sts,) = by["StatefulSet"]
    ns, spec = sts["metadata"].get("namespace"), sts["spec"]
    pod_labels, pod = spec["template"]["metadata"]["labels"], spec["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "td-pz-exporter"]
    env, args = {e["name"]: e for e in c.get("env", [])}, c.get("args", [])
    svcs = {s["metadata"]["name"]: s for s in by.get("Service", [])}
    sc, psc, res = c.get("securityContext", {}), pod.get("securityContext", {}), c.get("resources", {})
    arg = lambda name: next((a.split("=", 1)[1] for a in args if a.startswith(name + "=")), None)  # noqa: E731
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    rules = [(d["metadata"].get("namespace") == ns, f"{d['kind']}/{d['metadata']['name']} is not in namespace {ns}")
             for d in docs if d["kind"] != "Namespace"]
    rules += [(ns in [n["metadata"]["name"] for n in by.get("Namespace", [])], f"the Namespace {ns} is not in the output"),
              (match(spec["selector"].get("matchLabels"), pod_labels), "StatefulSet selector does not match its pods"),
              (env.get("SHARD_COUNT", {}).get("value") == str(spec.get("replicas")), "SHARD_COUNT != spec.replicas"),
              (env.get("SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
               "SHARD_INDEX must come from fieldRef metadata.name"),
              (svcs.get(spec.get("serviceName"), {}).get("spec", {}).get("clusterIP") == "None",
               f"serviceName {spec.get('serviceName')!r} is not a headless Service of the output"),
              (sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true"),
              (sc.get("runAsNonRoot") or psc.get("runAsNonRoot"), "runAsNonRoot must be true"),
              (sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false"),
              (sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities must drop ALL"),
              ((sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
               "seccompProfile must be RuntimeDefault"),
              (c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/-/healthy", "livenessProbe must GET /-/healthy"),
              (c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/-/ready", "readinessProbe must GET /-/ready"),
              (res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"),
               "resources need requests cpu+memory and a memory limit"),
              (not arg("--web.listen-address") or arg("--web.listen-address").endswith(f":{ports.get('http-metrics')}"),
               f"--web.listen-address does not match containerPort {ports.get('http-metrics')}"),
              (not pod.get("serviceAccountName") or pod["serviceAccountName"] in
               [s["metadata"]["name"] for s in by.get("ServiceAccount", [])], "serviceAccountName is not in the output")]
    rules += [(match(s["spec"].get("selector"), pod_labels), f"Service {s['metadata']['name']} selects no pod") for s in svcs.values()]
    rules += [(match(p["spec"]["selector"].get("matchLabels"), pod_labels), "PodDisruptionBudget selects no pod")
              for p in by.get("PodDisruptionBudget", [])]
    for p in by.get("NetworkPolicy", []):
        ports_of = lambda way: sorted({pt.get("port") for r in p["spec"].get(way, []) for pt in r.get("ports", [])})  # noqa: E731
        rules += [(match(p["spec"]["podSelector"].get("matchLabels"), pod_labels), "NetworkPolicy selects no pod"),
                  (ports_of("ingress") == [9899], f"NetworkPolicy ingress ports {ports_of('ingress')}, expected [9899]"),
                  (ports_of("egress") == [53, 443], f"NetworkPolicy egress ports {ports_of('egress')}, expected [53, 443]")]
    # ServiceMonitor: exactly one Service (else every target is scraped twice), its port, job td-pz-exporter.
    for sm in by.get("ServiceMonitor", []):
        hit = [s for s in svcs.values() if match(sm["spec"]["selector"].get("matchLabels", {}), s["metadata"].get("labels", {}))]
        rules.append((len(hit) == 1, f"ServiceMonitor selects {len(hit)} Services, want exactly 1"))
        for s in hit:
            rules += [(s["metadata"].get("labels", {}).get(sm["spec"].get("jobLabel")) == "td-pz-exporter",
                       "ServiceMonitor jobLabel does not give job=td-pz-exporter")]
            rules += [(ep.get("port") in {p.get("name") for p in s["spec"]["ports"]}, f"ServiceMonitor port {ep.get('port')!r} "
                       f"is not a port of Service {s['metadata']['name']}") for ep in sm["spec"]["endpoints"]]
    rules += [(e["valueFrom"]["secretKeyRef"]["name"] == "td-pz-exporter", f"env {e['name']} reads another Secret than "
               "td-pz-exporter (the one secret.example.yaml documents)") for e in env.values()
              if e.get("valueFrom", {}).get("secretKeyRef")]
    # The config file: mounted from a ConfigMap of the output, key = --config.file's basename.
    cfg = Path(arg("--config.file") or "/")
    mount = next((m["name"] for m in c.get("volumeMounts", []) if Path(m["mountPath"]) == cfg.parent), None)
    vol = next((v for v in pod.get("volumes", []) if v["name"] == mount), {})
    cm = next((m for m in by.get("ConfigMap", []) if m["metadata"]["name"] == vol.get("configMap", {}).get("name")), {})
    text = cm.get("data", {}).get(cfg.name)
    rules.append((text is not None, f"--config.file {cfg} is no key of a ConfigMap mounted at {cfg.parent}"))
    for ok, msg in rules:
        if not ok:
            bad(f"{label}: {msg}")
    if text is not None:
        td = tomllib.loads(text).get("td", {})
        if "api_key_env" in td and td["api_key_env"] not in env:
            bad(f"{label}: api_key_env {td['api_key_env']!r} is not set in the container")
        check_toml(f"{label}: ConfigMap {cm['metadata']['name']}", text, {"token_envs": set(env), "token_files": set()})
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
    import fnmatch
    text = Path(path).read_text()
    instr = [(line.split()[0].upper(), line) for line in re.sub(r"\\\n", " ", text).splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    of = lambda kind: [line for i, line in instr if i == kind]  # noqa: E731
    benches = re.findall(r'\[\[bench\]\]\s*name\s*=\s*"([^"]+)"', (Path(path).parents[2] / "Cargo.toml").read_text())
    users = [line.split()[1].split(":")[0] for line in of("USER")]
    rules = [(len(of("FROM")) >= 2, "not multi-stage"),
             (any("cargo build --profile dist --locked" in line for line in of("RUN")), "no `cargo build --profile dist --locked`"),
             (sum("cargo build" in line for line in of("RUN")) >= 2, "no separate dependency-caching build layer"),
             (users and users[-1] not in ("root", "0"), "the final stage must set a non-root USER"),
             (any("/-/healthy" in line for line in of("HEALTHCHECK")), "no HEALTHCHECK querying /-/healthy"),
             (of("ENTRYPOINT") and any(line.startswith("EXPOSE 9899") for line in of("EXPOSE")), "no ENTRYPOINT or EXPOSE 9899")]
    # Cargo.toml's benches need stubs, or the dependency layer's cargo build fails.
    rules += [("benches/$b.rs" in text and b in text, f"Cargo.toml's bench {b!r} has no stub") for b in benches]
    for ok, msg in rules:
        if not ok:
            bad(f"Dockerfile: {msg}")
    # .dockerignore: target and .git out; every COPY source (from the context) in.
    ign = [x.strip().rstrip("/") for x in Path(dockerignore).read_text().splitlines() if x.strip() and not x.startswith("#")]
    for need in ("target", ".git"):
        if not any(p in (need, f"**/{need}") for p in ign):
            bad(f".dockerignore: {need} is not excluded")
    for src in [src.rstrip("/") for line in of("COPY") if "--from=" not in line for src in line.split()[1:-1]]:
        if not (ROOT / src).exists():
            bad(f"Dockerfile: COPY source {src} does not exist")
        bad_ign = [p for p in ign if not p.startswith("!") and (fnmatch.fnmatch(src, p) or src.startswith(p + "/"))]
        if bad_ign:
            bad(f".dockerignore: {bad_ign} exclude COPY source {src}")
    done()


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    globals()["cmd_" + cmd.replace("-", "_")](*args)
