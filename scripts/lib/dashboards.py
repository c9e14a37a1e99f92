#!/usr/bin/env python3
"""The dashboards' queries, and the check of scripts/check-dashboards.sh.

    dashboards.py queries [--var NAME=VALUE]...   every panel query as a JSON line, variables filled in
    dashboards.py check                           structure of dashboards/*.json; Grafana's schema (tsc, as
                                                  `{...} satisfies Dashboard`, tests/grafana-schema/), which
                                                  must also reject mutated copies; every query parsed by
                                                  a throwaway Prometheus (a 400 bad_data is a parse error)

Variables are filled in the way Grafana does for "All": $parent_segment, $pz_service and $probe become
`.*` unless given with --var; $__rate_interval=1m, $__interval=15s, $__range=5m. An unknown variable is
an error, so a typo cannot slip through as literal text.
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # nothing written under scripts/

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = {"overview.json": "td-pz-overview", "service-detail.json": "td-pz-service",
         "exporter-health.json": "td-pz-exporter"}
VARS = {"parent_segment": ".*", "pz_service": ".*", "probe": ".*", "__rate_interval": "1m", "__interval": "15s",
        "__interval_ms": "15000", "__range": "5m", "__range_s": "300", "__range_ms": "300000"}
VAR_RE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")
DS = "${datasource}"


def load(name):
    with open(os.path.join(ROOT, "dashboards", name), encoding="utf-8") as f:
        return json.load(f)


def fill(expr, values):
    def sub(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise SystemExit(f"dashboards: unknown variable ${name} in {expr}")
        return values[name]
    return VAR_RE.sub(sub, expr)


def walk(panels):
    for p in panels or []:
        yield p
        yield from walk(p.get("panels"))  # collapsed rows keep their panels inside


def queries(overrides=None, annotations=False):
    values = dict(VARS, **(overrides or {}))
    out = []
    for name in FILES:
        dash = load(name)
        for p in walk(dash.get("panels")):
            out += [{"dashboard": dash["uid"], "panel": fill(p.get("title", ""), values), "refId": t.get("refId", ""),
                     "expr": fill(t["expr"], values)} for t in p.get("targets") or [] if t.get("expr") and not t.get("hide")]
        if annotations:
            out += [{"dashboard": dash["uid"], "panel": "annotation: " + a.get("name", ""), "refId": "",
                     "expr": fill(a["target"]["expr"], values)} for a in dash.get("annotations", {}).get("list", [])
                    if a.get("target", {}).get("expr")]
    return out


def structure(check):
    """Fixed unique uids, the template variables, and on every panel the ${datasource} data source, a
    description, a unit, targets with unique refIds, and runbook links to alerts and runbook sections.
    Returns the variables' selectors as extra queries."""
    with open(os.path.join(ROOT, "alerts", "td-pz-rules.yaml")) as f:
        alerts = {a.lower() for a in re.findall(r"^\s*-?\s*alert:\s*['\"]?(\w+)", f.read(), re.M)}
    with open(os.path.join(ROOT, "docs", "runbooks.md")) as f:
        anchors = {re.sub(r"[^\w\- ]", "", m.strip().lower()).replace(" ", "-")
                   for m in re.findall(r"(?m)^#+\s+(.*)$", f.read())}
    ds_ok = lambda ds: (ds.get("uid") if isinstance(ds, dict) else ds) == DS  # noqa: E731
    extra = []
    for path, uid in FILES.items():
        dash = load(path)
        check(dash.get("uid") == uid, f"{path} uid", f"want {uid}, got {dash.get('uid')}")
        check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36, f"{path} schemaVersion")
        check(bool(dash.get("title")) and dash.get("id") is None, f"{path} title and id", "needs a title and id null")
        variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
        v = variables.get("datasource", {})
        check(v.get("type") == "datasource" and v.get("query") == "prometheus", f"{path} variable datasource")
        for name in ("parent_segment", "pz_service", "probe"):
            v = variables.get(name, {})
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "", re.S)
            check(v.get("type") == "query" and v.get("multi") and v.get("includeAll") and v.get("allValue") == ".*"
                  and ds_ok(v.get("datasource")) and m and m.group(2) == name, f"{path} variable {name}",
                  "want a multi, includeAll (.*) label_values query on ${datasource}")
            if m:
                extra.append({"dashboard": uid, "panel": "variable " + name, "refId": "", "expr": fill(m.group(1), VARS)})
        ids = []
        for p in walk(dash.get("panels")):
            ids.append(p.get("id"))
            if p.get("type") == "row":
                continue
            bad, targets = [], p.get("targets") or []
            refs = [t.get("refId") for t in targets]
            g = p.get("gridPos", {})
            bad += ["no title"] * (not p.get("title")) + ["datasource"] * (not ds_ok(p.get("datasource")))
            bad += ["no description"] * (not (p.get("description") or "").strip())
            bad += ["no unit"] * (p.get("type") in ("timeseries", "stat", "bargauge")
                                  and not p.get("fieldConfig", {}).get("defaults", {}).get("unit"))
            bad += [f"targets/refIds {refs}"] * (not targets or len(set(refs)) != len(refs) or not all(refs))
            bad += [f"target {t.get('refId')}" for t in targets if not (t.get("expr") or "").strip()
                    or ("datasource" in t and not ds_ok(t["datasource"]))]
            bad += [f"gridPos {g}"] * (not (0 <= g.get("x", -1) and g.get("w", 0) > 0 and g["x"] + g["w"] <= 24))
            for link in p.get("links", []):
                m = re.fullmatch(r"\$\{runbook_url\}(?:#([a-z0-9-]+))?", link.get("url", ""))
                if not m or (m.group(1) and (m.group(1) not in alerts or m.group(1) not in anchors)):
                    bad.append(f"link {link.get('url')}: not a runbook link to an alert and its section")
            check(not bad, f"{path} panel {p.get('title')!r}", "; ".join(bad))
        check(len(set(ids)) == len(ids) and None not in ids, f"{path} panel ids", "missing or repeated")
    return extra


def schema(check):
    """Each dashboard type-checked by tsc as `{...} satisfies Dashboard`, the type of tests/grafana-schema/
    dashboard.ts over the pinned @grafana/schema (installed by `install-deps.sh dashboards`); and copies of
    the overview with one defect each, which tsc must reject."""
    lib = os.path.join(ROOT, "target", "grafana-schema")
    gen = os.path.join(lib, "gen")
    shutil.rmtree(gen, ignore_errors=True)
    os.makedirs(gen)
    shutil.copy(os.path.join(ROOT, "tests", "grafana-schema", "dashboard.ts"), gen)
    with open(os.path.join(lib, "node_modules", "@grafana", "schema", "package.json")) as f:
        version = json.load(f)["version"]
    first = lambda d, kind: next(p for p in walk(d["panels"]) if p["type"] == kind)  # noqa: E731
    bad = {"a panel property Grafana does not know": lambda d: first(d, "timeseries").update(colour="red"),
           'gridPos.h as a string ("8")': lambda d: first(d, "timeseries")["gridPos"].update(h="8"),
           "a misspelt color mode": lambda d: first(d, "stat")["fieldConfig"]["defaults"]["color"].update(
               mode="palette-clasic"),
           "an unknown time series option": lambda d: first(d, "timeseries")["options"].update(legends={}),
           "a misspelt annotation field": lambda d: d["annotations"]["list"][-1].update(titleFromat="")}
    cases = {name[:-5]: load(name) for name in FILES}
    for i, mutate in enumerate(bad.values()):
        cases[f"bad{i}"] = load("overview.json")
        mutate(cases[f"bad{i}"])
    for stem, dash in cases.items():
        with open(os.path.join(gen, stem + ".ts"), "w", encoding="utf-8") as f:
            f.write("import type { Dashboard } from './dashboard';\n\nexport default %s satisfies Dashboard;\n"
                    % json.dumps(dash, indent=2, ensure_ascii=False))
    ts = {stem: os.path.relpath(os.path.join(gen, stem + ".ts"), ROOT) for stem in cases}
    tsc = [os.path.join(lib, "node_modules", ".bin", "tsc"), "--noEmit", "--strict", "--skipLibCheck",
           "--target", "es2022", "--module", "commonjs", *ts.values()]
    out = subprocess.run(tsc, cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    errors = {stem: [line for line in out if line.startswith(path + "(")] for stem, path in ts.items()}

    def say(ok, what, why=""):  # one line per assertion, ok or FAIL
        if ok:
            print(f"ok   {what}")
        check(ok, what, why)
    for name in FILES:
        e = errors[name[:-5]]
        say(not e, f"schema: {name} satisfies Dashboard (@grafana/schema {version})", "\n     ".join(e))
    for i, what in enumerate(bad):
        say(bool(errors[f"bad{i}"]), f"schema: tsc rejects overview.json with {what}")
    stray = [line for line in out if line[:1] not in ("", " ") and not any(line in e for e in errors.values())]
    say(not stray, "schema: no other tsc error", "\n     ".join(stray))


def main():
    if sys.argv[1] == "queries":
        over = dict(a.split("=", 1)[1].split("=", 1) for a in sys.argv[2:] if a.startswith("--var="))
        for q in queries(over, "--annotations" in sys.argv):
            print(json.dumps(q, ensure_ascii=False))
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from stack import Stack, query
    counts = [0, 0]

    def check(ok, what, why=""):
        counts[not ok] += 1
        if not ok:
            print(f"FAIL {what}: {why}")
    extra = structure(check)
    schema(check)
    st = Stack()
    prom = st.prometheus()
    todo = queries(annotations=True) + extra
    for q in todo:
        err = query(prom, q["expr"])[1]
        check(err is None, f"{q['dashboard']} / {q['panel']} / {q['refId'] or '-'}", f"{err}\n     expr: {q['expr']}")
    st.stop()
    print(f"promql: {len(todo)} expressions checked")
    print(f"check-dashboards: {counts[0]} passed, {counts[1]} failed")
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())
