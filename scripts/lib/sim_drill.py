#!/usr/bin/env python3
"""Inject a drill of tests/e2e/drills.json into a running TD simulator (scripts/stack.sh --drill).

    python3 scripts/lib/sim_drill.py --sim=http://127.0.0.1:PORT NAME

NAME is a drill name (revoked_key, wrong_section, outage, slow), `all` (the four at once, as
scripts/e2e.sh runs them), `revoked_all` (`"revoked": true`: every request of every service answered 401,
the simulator's global revoked key) or `clear` (back to tests/e2e/baseline.json, no fault). The scenario
posted is always the baseline (which adds the e2e_* services to the simulator) plus the drill's faults: it
replaces whatever was injected before. Standard library only.
"""

import argparse
import json
import os
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    with open(os.path.join(ROOT, "tests", "e2e", "drills.json"), encoding="utf-8") as f:
        drills = {d["name"]: d for d in json.load(f)["drills"]}
    with open(os.path.join(ROOT, "tests", "e2e", "baseline.json"), encoding="utf-8") as f:
        baseline = json.load(f)
    names = sorted(drills) + ["all", "revoked_all", "clear"]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sim", required=True, help="the simulator's URL")
    ap.add_argument("name", choices=names)
    a = ap.parse_args()

    scenario = dict(baseline)
    if a.name == "all":
        scenario["faults"] = [f for d in drills.values() for f in d["faults"]]
        what = "all drills: " + ", ".join("%s (%s)" % (d["name"], d["service"]) for d in drills.values())
    elif a.name == "revoked_all":
        scenario["revoked"] = True
        what = "revoked key: every request of every service is answered 401"
    elif a.name == "clear":
        what = "cleared: the baseline scenario, no fault"
    else:
        d = drills[a.name]
        scenario["faults"] = d["faults"]
        what = "%s on %s: %s" % (d["name"], d["service"], d["title"])
    req = urllib.request.Request(a.sim.rstrip("/") + "/_sim/scenario", data=json.dumps(scenario).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
    print("drill: " + what)
    if a.name in drills:
        d = drills[a.name]
        def name(x):
            return x["alertname"] + ((" probe=" + x["probe"]) if x.get("probe") else "")
        print("  expect at the receiver: " + ", ".join(name(x) for x in d.get("arrive", [])))
        if d.get("inhibited"):
            print("  expect inhibited:      " + ", ".join("%s (by %s)" % (name(x), x["by"])
                                                         for x in d["inhibited"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
