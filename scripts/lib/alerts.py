#!/usr/bin/env python3
"""The Python steps of scripts/check-alerts.sh, and the test copy of alerts/alertmanager.yml.

    alerts.py test-config --url=URL --secrets=DIR [--fast=GROUP_WAIT]   the copy posting to the fakes at URL
    alerts.py test-profile FILE [N]   the --profile=test [--window-scale=N] rules: every for <= 15s, every
                                  keep_firing_for <= 15s (or, scaled by N, the window part / N plus
                                  the same margin in evaluations: 35m -> 80s), every group interval 5s
    alerts.py coverage            every alert has a firing and a silent promtool unit test
    alerts.py runbooks            docs/runbooks.md has a section per alert; annotations complete (summary,
                                  description, runbook_step, runbook_url, dashboard_url, status_url)
    alerts.py inhibitions         alerts/tests/alertmanager/inhibit.yaml against a real Alertmanager

The test copy keeps the real receivers, templates, route tree and inhibit rules, and points them at
scripts/lib/fakes.py: PagerDuty's `url:` URL/v2/enqueue with the routing key file DIR/pagerduty-routing-key,
Slack's api_url_file DIR/slack-webhook-url (URL/services/...), both written here; the template path is made
absolute. `--fast` sets every group_wait to GROUP_WAIT and every group_interval to 1s. Needs PyYAML.
"""

import datetime
import glob
import importlib.util
import os
import re
import sys

sys.dont_write_bytecode = True  # nothing written under scripts/
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "alerts", "td-pz-rules.yaml")
AM = os.path.join(ROOT, "alerts", "alertmanager.yml")
PD_ROUTING_KEY = "e2e0" * 8  # 32 characters, as an integration key; a test value, not a secret


def test_config(url, secrets, fast=None, src=AM):
    """The copy of SRC whose receivers post to scripts/lib/fakes.py at URL, with their secret files in SECRETS."""
    files = {"pagerduty-routing-key": PD_ROUTING_KEY, "slack-webhook-url": url + "/services/T0E2E/B0E2E/e2e"}
    for name, value in files.items():
        with open(os.path.join(secrets, name), "w") as f:
            f.write(value + "\n")
    with open(src) as f:
        text = f.read()
    out = re.sub(r"(?m)^(\s*(?:- )?)(routing_key_file|api_url_file): \S*/(\S+)$", lambda m: f"{m[1]}{m[2]}: "
                 f"{secrets}/{m[3]}" + (f"\n{' ' * len(m[1])}url: {url}/v2/enqueue" if m[2] == "routing_key_file" else ""), text)
    out = re.sub(r"(?m)^(  - )(\S+\.tmpl)$", lambda m: m[1] + os.path.join(os.path.dirname(src), m[2]), out)
    if fast:
        out = re.sub(r"(?m)^(\s*group_wait:\s*)\S+", r"\g<1>" + fast, out)
        out = re.sub(r"(?m)^(\s*group_interval:\s*)\S+", r"\g<1>1s", out)
    a, b = yaml.safe_load(text), yaml.safe_load(out)
    strip = lambda r: {k: ([strip(x) for x in v] if k == "routes" else v) for k, v in r.items()  # noqa: E731
                       if not (fast and k in ("group_wait", "group_interval"))}
    # Every integration of the copy posts to the fakes and reads a secret written here, or the test could page.
    elsewhere = [c for r in b["receivers"] for k, cs in r.items() if k.endswith("_configs") for c in cs
                 if not str(c.get("url", "")).startswith(url) and c.get("api_url_file") != f"{secrets}/slack-webhook-url"]
    if a.get("inhibit_rules") != b.get("inhibit_rules") or strip(a["route"]) != strip(b["route"]) or elsewhere \
            or [r["name"] for r in a["receivers"]] != [r["name"] for r in b["receivers"]]:
        raise SystemExit(f"alerts.py test-config: BUG: the copy changed more than where the receivers post {elsewhere}")
    return f"# TEST COPY of alerts/alertmanager.yml (scripts/lib/alerts.py): the receivers post to {url}\n" + out


def rules():
    with open(RULES) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def secs(d):
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", d))


def test_profile(path, scale="1"):
    """keep_firing_for: capped at 15s, or with --window-scale=N the shipped one / N (it outlasts the scaled windows)."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    keep, n = {r["alert"]: secs(r["keep_firing_for"]) for r in rules() if "keep_firing_for" in r}, int(scale)
    spec = importlib.util.spec_from_file_location("gen_rules", os.path.join(ROOT, "scripts", "gen-rules.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    want = lambda a: (gen.scaled_keep_firing(keep[a], n) if a in keep else 0) if n > 1 else min(keep.get(a, 0), 15)  # noqa: E731
    bad = [g["name"] for g in doc["groups"] if g.get("interval") != "5s"]
    bad += [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r
            and (secs(r.get("for", "0s")) > 15 or secs(r.get("keep_firing_for", "0s")) != want(r["alert"]))]
    print(f"test profile (window scale {n}): every for <= 15s, keep_firing_for " + ("/ %d (margin in evaluations)" % n if n > 1 else "<= 15s")
          + ", every group interval 5s" if not bad else f"not shortened: {bad}")
    return bad


def coverage():
    """Each alert needs a firing case (checking its summary) and a silent one; tests may name no
    alert the rules lack (promtool would pass those silently, as an unknown alert never fires)."""
    alerts = [r["alert"] for r in rules() if "alert" in r]
    firing, silent, bad = {n: 0 for n in alerts}, {n: 0 for n in alerts}, []
    for path in sorted(glob.glob(os.path.join(ROOT, "alerts", "tests", "*.yaml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        for t in doc.get("tests", []):
            for c in t.get("alert_rule_test") or []:
                name, exp = c["alertname"], c.get("exp_alerts") or []
                if name not in firing:
                    bad.append(f"{path}: alert {name} is not in the rules")
                elif exp:
                    firing[name] += 1
                    bad += [f"{path}: firing case of {name} at {c['eval_time']} checks no summary"
                            for e in exp if not e.get("exp_annotations", {}).get("summary")]
                else:
                    silent[name] += 1
    bad += [f"alert {n} has no firing case" for n in alerts if not firing[n]]
    bad += [f"alert {n} has no silent case" for n in alerts if not silent[n]]
    print(f"coverage: {len(alerts)} alerts, each with firing and silent cases" if not bad else "")
    return bad


def runbooks():
    with open(os.path.join(ROOT, "docs", "runbooks.md")) as f:
        headings = set(re.findall(r"(?m)^## (\S+)\s*$", f.read()))
    base = "https://github.com/treasure-data-community/td-pz-exporter/blob/main/docs/runbooks.md#"
    bad = []
    for r in rules():
        if "alert" not in r:
            continue
        a, name = r["annotations"], r["alert"]
        if name not in headings:
            bad.append(f"docs/runbooks.md has no '## {name}' section")
        if a.get("runbook_url") != base + name.lower():
            bad.append(f"{name}: runbook_url {a.get('runbook_url')}")
        keys = ("summary", "description", "runbook_step", "dashboard_url", "status_url")
        bad += [f"{name}: no {k} annotation" for k in keys if not a.get(k)]
        if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            bad.append(f"{name}: severity {r.get('labels', {}).get('severity')}")
    print(f"runbooks: a section and complete annotations for each of the {len(headings)} alerts" if not bad else "")
    return bad


def inhibitions():
    """Posts each case's alerts (static labels from the rules) to a real Alertmanager running the test copy,
    reads back which are inhibited, then resolves them before the next case."""
    from stack import Stack, free_port, http
    static = {r["alert"]: r.get("labels", {}) for r in rules() if "alert" in r}
    with open(os.path.join(ROOT, "alerts", "tests", "alertmanager", "inhibit.yaml")) as f:
        cases = yaml.safe_load(f)["cases"]
    st = Stack()
    with open(os.path.join(st.work, "am.yml"), "w") as f:
        f.write(test_config(f"http://127.0.0.1:{free_port()}", st.work))
    base = st.alertmanager(f.name)
    now = lambda d: (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=d)).isoformat()  # noqa: E731
    listing = lambda: http(base + "/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true")  # noqa: E731
    key, bad = lambda labels: tuple(sorted(labels.items())), []  # noqa: E731
    for case in cases:
        specs = [dict(a) for a in case["alerts"]]
        errors = [f"unknown alert {a['alertname']}" for a in specs if a["alertname"] not in static]
        posted, expected = [], {}
        for spec in [a for a in specs if a["alertname"] in static]:
            want = spec.pop("expect")
            labels = {k: str(v) for k, v in {**static[spec["alertname"]], **spec}.items()}
            posted.append({"labels": labels, "startsAt": now(-60), "endsAt": now(3600)})
            expected[key(labels)] = want
        http(base + "/api/v2/alerts", posted)
        deadline = time.time() + 10  # the inhibitor learns of new alerts asynchronously
        while True:
            got = {key(a["labels"]): "inhibited" if a["status"]["inhibitedBy"] else "active" for a in listing()}
            got = {k: v for k, v in got.items() if k in expected}
            if got == expected or time.time() > deadline:
                break
            time.sleep(0.3)
        errors += [f"{dict(k)}: expected {w}, got {got.get(k, 'missing')}" for k, w in expected.items() if got.get(k) != w]
        print(f"{'FAIL' if errors else 'ok  '}  {case['name']}" + "".join(f"\n        {e}" for e in errors))
        bad += errors
        http(base + "/api/v2/alerts", [dict(p, endsAt=now(-1)) for p in posted])
        deadline = time.time() + 10
        while listing():
            if time.time() > deadline:
                return bad + ["alerts did not resolve"]
            time.sleep(0.2)
    st.stop()
    return bad


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "test-config":
        opts = dict(a[2:].split("=", 1) for a in args)
        sys.stdout.write(test_config(opts["url"], opts["secrets"], opts.get("fast")))
        return 0
    bad = {"test-profile": test_profile, "coverage": coverage, "runbooks": runbooks,
           "inhibitions": inhibitions}[cmd](*args)
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
