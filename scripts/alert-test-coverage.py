#!/usr/bin/env python3
"""Check that the promtool unit tests cover every alert, both ways.

    python3 scripts/alert-test-coverage.py [--rules=alerts/td-pz-rules.yaml] [--tests=alerts/tests]

Fails (exit 1) when an alert has no firing case (a non-empty exp_alerts, each with exp_annotations) or no
silent case (exp_alerts: []), or when a test names an alert the rules do not have (promtool would pass
such a test silently, since an unknown alert never fires). Also lists the recording rules no
promql_expr_test evaluates (a note, not a failure). Needs PyYAML.
"""

import argparse
import glob
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", default=os.path.join(ROOT, "alerts", "td-pz-rules.yaml"))
    ap.add_argument("--tests", default=os.path.join(ROOT, "alerts", "tests"))
    a = ap.parse_args()

    with open(a.rules, encoding="utf-8") as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    alerts = [r["alert"] for r in rules if "alert" in r]
    records = [r["record"] for r in rules if "record" in r]

    firing = {n: [] for n in alerts}
    silent = {n: [] for n in alerts}
    exprs = []
    problems = []
    files = sorted(glob.glob(os.path.join(a.tests, "*.yaml")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        where = os.path.relpath(path, ROOT)
        for t in doc.get("tests", []):
            for e in t.get("promql_expr_test", []) or []:
                exprs.append(e["expr"])
            for c in t.get("alert_rule_test", []) or []:
                name = c["alertname"]
                if name not in firing:
                    problems.append(f"{where}: alert {name} is not in {os.path.relpath(a.rules, ROOT)}")
                    continue
                exp = c.get("exp_alerts") or []
                if exp:
                    firing[name].append(where)
                    for e in exp:
                        if not e.get("exp_annotations", {}).get("summary"):
                            problems.append(f"{where}: firing case of {name} at {c['eval_time']} checks no summary")
                else:
                    silent[name].append(where)
    for n in alerts:
        if not firing[n]:
            problems.append(f"alert {n} has no firing case")
        if not silent[n]:
            problems.append(f"alert {n} has no silent case")

    untested = [r for r in records if not any(re.search(re.escape(r) + r"\b", e) or
                                              re.fullmatch(_regex_of(e), r) for e in exprs)]
    for n in alerts:
        print(f"  {n:34} firing: {len(firing[n])}  silent: {len(silent[n])}")
    if untested:
        print(f"  note: recording rules no promql_expr_test evaluates: {', '.join(untested)}")
    if problems:
        for p in problems:
            print(f"alert-test-coverage: {p}", file=sys.stderr)
        return 1
    print(f"alert-test-coverage: every one of the {len(alerts)} alerts has firing and silent cases "
          f"({len(files)} test files)")
    return 0


def _regex_of(expr):
    """The regex of a `{__name__=~"..."}` selector, or one that matches nothing."""
    m = re.search(r'__name__\s*=~\s*"([^"]*)"', expr)
    return m.group(1) if m else r"(?!)"


if __name__ == "__main__":
    sys.exit(main())
