#!/usr/bin/env bash
# Check the Grafana dashboards under dashboards/:
#   1. they are what scripts/gen-dashboards.py generates (gen-dashboards.py --check);
#   2. their structure: fixed unique uids, the template variables, and on every panel the ${datasource}
#      data source, a description, a unit (timeseries/stat/bargauge), non-empty targets with unique
#      refIds; runbook links name alerts of alerts/td-pz-rules.yaml and sections of docs/runbooks.md
#      (when those files exist);
#   3. every query (panel targets, annotations, the variables' selectors), with the variables filled in
#      by scripts/dashboard-queries.py, parses as PromQL: each is sent to a throwaway Prometheus with an
#      empty TSDB on a random loopback port; a 400 bad_data answer is a parse error.
# Prints "check-dashboards: N passed, M failed" last; exits 1 if anything failed.
#
# Usage: scripts/check-dashboards.sh          (needs python3 and prometheus; installs the Debian
#                                              prometheus package when it is missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp=$(mktemp -d)
prom_pid=
cleanup() {
    if [[ -n "$prom_pid" ]]; then
        kill "$prom_pid" 2>/dev/null || true
        wait "$prom_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

gen_ok=1
if ! python3 scripts/gen-dashboards.py --check; then
    gen_ok=0
fi

if ! command -v prometheus >/dev/null 2>&1; then
    echo "check-dashboards: prometheus not found, installing the Debian package" >&2
    sudo=
    if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Start a throwaway Prometheus (no scrape targets, empty TSDB) on a free loopback port.
cat >"$tmp/prometheus.yml" <<'EOF'
global:
  scrape_interval: 1m
EOF
prom_url=
for attempt in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    rm -rf "$tmp/data"
    prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
    prom_pid=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
            prom_url="http://127.0.0.1:$port"
            break
        fi
        if ! kill -0 "$prom_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    [[ -n "$prom_url" ]] && break
    kill "$prom_pid" 2>/dev/null || true
    wait "$prom_pid" 2>/dev/null || true
    prom_pid=
done
if [[ -z "$prom_url" ]]; then
    echo "check-dashboards: could not start prometheus:" >&2
    cat "$tmp/prometheus.log" >&2 || true
    echo "check-dashboards: 0 passed, 1 failed"
    exit 1
fi

GEN_OK=$gen_ok PROM_URL=$prom_url python3 - <<'PY'
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

FILES = {
    "dashboards/overview.json": "td-pz-overview",
    "dashboards/service-detail.json": "td-pz-service",
    "dashboards/exporter-health.json": "td-pz-exporter",
}
DS_UID = "${datasource}"
UNIT_TYPES = {"timeseries", "stat", "bargauge"}
QUERY_VARS = ("parent_segment", "pz_service", "probe")

passed = 0
failed = 0


def check(ok, what, why=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s%s" % (what, ": " + why if why else ""))


check(os.environ.get("GEN_OK") == "1", "gen-dashboards --check",
      "dashboards/ is not what scripts/gen-dashboards.py generates")

# Alert names and runbook sections, where those files exist.
alerts = None
if Path("alerts/td-pz-rules.yaml").exists():
    alerts = set(re.findall(r"^\s*-?\s*alert:\s*['\"]?(\w+)", Path("alerts/td-pz-rules.yaml").read_text(), re.M))
runbook_anchors = None
if Path("docs/runbooks.md").exists():
    runbook_anchors = set()
    for line in Path("docs/runbooks.md").read_text().splitlines():
        runbook_anchors.update(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", line))
        m = re.match(r"#+\s+(.*)", line)
        if m:
            # GitHub's anchor: lower case, punctuation dropped, spaces to dashes
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            runbook_anchors.add(text.replace(" ", "-"))
for what, found in (("alerts/td-pz-rules.yaml", alerts), ("docs/runbooks.md", runbook_anchors)):
    if found is None:
        print("note: %s not found, runbook links checked for form only" % what)


def ds_ok(ds):
    if isinstance(ds, dict):
        return ds.get("uid") == DS_UID
    return ds == DS_UID


def walk(panels):
    for p in panels or []:
        yield p
        yield from walk(p.get("panels"))


var_selectors = []  # (dashboard uid, variable, selector with variables)
uids = []
for path, want_uid in FILES.items():
    try:
        dash = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        check(False, path, str(e))
        continue
    uid = dash.get("uid")
    uids.append(uid)
    check(uid == want_uid, "%s uid" % path, "want %r, got %r" % (want_uid, uid))
    check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36,
          "%s schemaVersion" % path, "want >= 36, got %r" % dash.get("schemaVersion"))
    check(bool(dash.get("title")) and dash.get("id") is None, "%s title and id" % path,
          "needs a title and id null (importable)")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    v = variables.get("datasource", {})
    check(v.get("type") == "datasource" and v.get("query") == "prometheus",
          "%s variable datasource" % path, "want type datasource, query prometheus")
    for name in QUERY_VARS:
        v = variables.get(name)
        if v is None:
            check(False, "%s variable %s" % (path, name), "missing")
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "", re.S)
        problems = []
        if v.get("type") != "query":
            problems.append("type %r" % v.get("type"))
        if not (v.get("multi") and v.get("includeAll") and v.get("allValue") == ".*"):
            problems.append("want multi, includeAll and allValue .*")
        if not ds_ok(v.get("datasource")):
            problems.append("datasource is not ${datasource}")
        if not m or m.group(2) != name:
            problems.append("query %r is not label_values(..., %s)" % (q, name))
        else:
            var_selectors.append((uid, name, m.group(1)))
        check(not problems, "%s variable %s" % (path, name), "; ".join(problems))

    panel_ids = []
    for p in walk(dash.get("panels")):
        panel_ids.append(p.get("id"))
        if p.get("type") == "row":
            continue
        what = "%s panel %r" % (path, p.get("title"))
        problems = []
        if not p.get("title"):
            problems.append("no title")
        if not ds_ok(p.get("datasource")):
            problems.append("datasource is not ${datasource}")
        if not (p.get("description") or "").strip():
            problems.append("no description")
        if p.get("type") in UNIT_TYPES and not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append("no unit")
        targets = p.get("targets") or []
        if not targets:
            problems.append("no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append("refIds missing or repeated: %r" % refs)
        for t in targets:
            if not (t.get("expr") or "").strip():
                problems.append("target %s has no expr" % t.get("refId"))
            if "datasource" in t and not ds_ok(t["datasource"]):
                problems.append("target %s datasource is not ${datasource}" % t.get("refId"))
        g = p.get("gridPos", {})
        if not (0 <= g.get("x", -1) and g.get("w", 0) > 0 and g.get("x", 0) + g.get("w", 0) <= 24):
            problems.append("gridPos %r" % g)
        for link in p.get("links", []):
            m = re.fullmatch(r"\$\{runbook_url\}(?:#([a-z0-9-]+))?", link.get("url", ""))
            if not m:
                problems.append("link %r is not a runbook link" % link.get("url"))
                continue
            anchor = m.group(1)
            if anchor and alerts is not None and anchor not in {a.lower() for a in alerts}:
                problems.append("runbook link #%s: no such alert in alerts/td-pz-rules.yaml" % anchor)
            if anchor and runbook_anchors is not None and anchor not in runbook_anchors:
                problems.append("runbook link #%s: no such section in docs/runbooks.md" % anchor)
        check(not problems, what, "; ".join(problems))
    check(len(set(panel_ids)) == len(panel_ids) and None not in panel_ids, "%s panel ids" % path,
          "missing or repeated panel ids")
check(len(set(uids)) == len(uids), "dashboard uids unique", "%r" % uids)

# Every query, variables filled in by dashboard-queries.py (itself under test here).
out = subprocess.run([sys.executable, "scripts/dashboard-queries.py", "--annotations"],
                     capture_output=True, text=True)
check(out.returncode == 0, "dashboard-queries.py", out.stderr.strip())
queries = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
fill = {"$parent_segment": ".*", "$pz_service": ".*", "$probe": ".*"}
for uid, name, sel in var_selectors:
    for k, val in fill.items():
        sel = sel.replace(k, val)
    queries.append({"dashboard": uid, "panel": "variable %s" % name, "expr": sel})

prom = os.environ["PROM_URL"]
for q in queries:
    what = "%s / %s / %s" % (q["dashboard"], q["panel"], q.get("refId") or "-")
    body = urllib.parse.urlencode({"query": q["expr"]}).encode()
    try:
        with urllib.request.urlopen(prom + "/api/v1/query", data=body, timeout=10) as r:
            resp = json.load(r)
        check(resp.get("status") == "success", what, json.dumps(resp))
    except urllib.error.HTTPError as e:
        try:
            resp = json.load(e)
            why = "%s: %s" % (resp.get("errorType"), resp.get("error"))
        except ValueError:
            why = "HTTP %d" % e.code
        check(False, what, "%s\n     expr: %s" % (why, q["expr"]))
    except (OSError, ValueError) as e:
        check(False, what, str(e))
print("promql: %d expressions checked" % len(queries))
print("check-dashboards: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
