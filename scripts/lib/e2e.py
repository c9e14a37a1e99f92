#!/usr/bin/env python3
"""The end-to-end test (scripts/e2e.sh; docs/e2e.md): starts the e2e stack (scripts/lib/stack.py) and asserts
  1. healthy data: every probe passes, the recording rules and td_pz_section_share exist for every service
  2. every dashboard query returns a series, with the variables at `.*` and at pz_service=product_recommendations
  3. the drills of tests/e2e/drills.json, all at once on their own services: fired in Prometheus, shown in the
     overview's alert table, delivered to the right receiver with the right labels; inhibited alerts fired,
     suppressed in Alertmanager by their source and not delivered; then each drill is cleared
  4. every alert of step 3 resolves in Prometheus, and every delivered one arrives again as resolved
  5. nothing else was delivered, nothing ever fired for the healthy services, no probe was refused as TD
     would refuse it, inhibited alerts never arrived while their source fired, nor at the pager after it
Prints `ok`/`FAIL` per assertion, a report, and `e2e: N passed, M failed`; exits 1 if anything failed.

    e2e.py [--keep] [--only=DRILL,...] [--no-resolve] [--timeout=SECONDS] [--resolve-timeout=SECONDS]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
import traceback

sys.dont_write_bytecode = True  # nothing written under scripts/
import dashboards  # noqa: E402
from stack import ROOT, Stack, http, query  # noqa: E402

RECEIVER = {"critical": "pager", "warning": "chat", "info": "email-or-nothing"}  # alerts/alertmanager.yml
CONTROL_SERVICES = ["product_recommendations", "web_offers"]
POLL, SETTLE, FALLBACK, T0 = 1.0, 12.0, " or on() vector(0)", time.time()


def say(msg):
    print("%6.1fs %s" % (time.time() - T0, msg), flush=True)


def matches(labels, want):
    return all(labels.get(k) == v for k, v in want.items())


def fmt(labels, keys=("alertname", "severity", "pz_service", "parent_segment", "probe", "slo")):
    return "{" + ", ".join("%s=%s" % (k, labels[k]) for k in keys if labels.get(k)) + "}"


class Env:
    """The running stack as the checks read it."""

    def __init__(self, st):
        self.st, self.u = st, st.urls

    def query(self, expr):
        return query(self.u["prometheus"], expr)

    def value(self, expr):
        res, err = self.query(expr)
        return None if err or not res else float(res[0]["value"][1])

    def get(self, url, default):
        try:
            return http(url)
        except (OSError, ValueError):
            return default

    def prom_alerts(self):
        return self.get(self.u["prometheus"] + "/api/v1/alerts", {}).get("data", {}).get("alerts", [])

    def am_alerts(self):
        return self.get(self.u["alertmanager"] + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true", [])

    def notifications(self):
        """Every alert of every webhook call: t, receiver (query), body_receiver, status, labels."""
        out = []
        with open(self.st.hook_log, encoding="utf-8") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                body = e.get("body") or {}
                out += [{"t": e.get("t"), "receiver": e.get("receiver"), "body_receiver": body.get("receiver"),
                         "status": a.get("status"), "labels": a.get("labels") or {}} for a in body.get("alerts") or []]
        return out

    def scenario(self, body):
        return http(self.u["simulator"] + "/_sim/scenario", body)


class Results:
    def __init__(self):
        self.passed, self.failures, self.summary = 0, [], []  # summary: (ok, line) for the report

    def check(self, ok, what, detail=""):
        print("%s  %s%s" % ("ok  " if ok else "FAIL", what, (": " + detail) if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
        return ok


def diagnose(env, service=None, why=""):
    mine = lambda a: service is None or a["labels"].get("pz_service") == service  # noqa: E731
    print("---- diagnostics (%s) ----\nPrometheus alerts:" % why)
    for a in [a for a in env.prom_alerts() if mine(a)][:40]:
        print("  %-8s %s since %s" % (a["state"], fmt(a["labels"]), a.get("activeAt", "?")))
    print("Alertmanager alerts:")
    for a in [a for a in env.am_alerts() if mine(a)][:40]:
        print("  %-10s %s inhibitedBy=%s" % (a["status"].get("state"), fmt(a["labels"]), a["status"].get("inhibitedBy")))
    notes = env.notifications()
    print("last webhook notifications (%d in all):" % len(notes))
    for n in notes[-8:]:
        print("  receiver=%s %s %s" % (n["receiver"], n["status"], fmt(n["labels"])))
    text = env.get(env.u["exporter"] + "/metrics", "")
    print("exporter /metrics excerpt:\n" + "\n".join("  " + line for line in [
        line for line in text.splitlines() if not line.startswith("#") and (service is None or service in line)
        and (line.startswith(("td_pz_probe_success", "td_pz_probe_http_status_code", "td_pz_probe_section_match"))
             or ("_failures_total" in line and not line.endswith(" 0")))][:40]))
    scenario = json.dumps(env.get(env.u["simulator"] + "/_sim/scenario", ""))[:600]
    print("simulator scenario: %s\n---- end of diagnostics ----" % scenario, flush=True)


def wait_healthy(env, res, timeout):
    with open(os.path.join(ROOT, "tests", "e2e", "exporter.toml"), "rb") as f:
        services = tomllib.load(f)["service"]
    managed = sum(1 for s in services if s.get("service_id"))
    checks = [("every probe reports and passes (td_pz_probe_success == 1)", "count(td_pz_probe_success == 1)",
               sum(len(s.get("probe", [])) for s in services)),
              ("the 5m availability recording rule exists for every service",
               "count(pz_service:td_pz_probe_availability:ratio_rate5m == 1)", len(services)),
              ("td_pz_section_share exists for every service with a service_id",
               "count(count by (pz_service) (td_pz_section_share))", managed),
              ("td_pz_service_error_rate exists for every service with a service_id", "count(td_pz_service_error_rate)", managed)]
    deadline, pending = time.time() + timeout, list(checks)
    while pending and time.time() <= deadline:
        pending = [c for c in pending if env.value(c[1]) != c[2]]
        time.sleep(POLL if pending else 0)
    for c in checks:
        res.check(c not in pending, "healthy: " + c[0], "%s = %s, want %s" % (c[1], env.value(c[1]), c[2]))
    if pending:
        diagnose(env, why="no healthy data")
    return not pending


def check_dashboards(env, res, grace):
    queries = [dict(q, vars=", ".join("%s=%s" % kv for kv in vs.items()) or "all=.*")
               for vs in ({}, {"pz_service": "product_recommendations"}) for q in dashboards.queries(vs)]
    print("\n== dashboard queries (%d, two variable sets) ==" % len(queries))
    deadline, todo, outcome = time.time() + grace, list(range(len(queries))), {}
    while todo:
        for i in todo:
            outcome[i] = env.query(queries[i]["expr"])
        # a parse error (bad_data) does not go away by waiting
        todo = [i for i in todo if not outcome[i][0] and not (outcome[i][1] and "bad_data" in outcome[i][1])]
        if not todo or time.time() > deadline:
            break
        time.sleep(POLL)
    for i, q in enumerate(queries):
        r, err = outcome[i]
        q["ok"], q["series"] = bool(r) and not err, len(r or [])
        # `X or on() vector(0)` always answers: say when only the fallback did (a flat zero by design)
        q["fallback"] = bool(r) and q["expr"].endswith(FALLBACK) and not env.query(q["expr"][:-len(FALLBACK)])[0]
        res.check(q["ok"], "dashboard %s / %s [%s] (%s)" % (q["dashboard"], q["panel"], q["refId"], q["vars"]),
                  ("%d series" % len(r) + (" (only its fallback: zero by design until the first event)" if q["fallback"] else ""))
                  if q["ok"] else "%s; expr: %s" % (err or "no series after %ds" % grace, q["expr"]))
    return queries


class Expect:
    """One alert a drill expects: to arrive, or to be inhibited (by `by`)."""

    def __init__(self, drill, spec, kind, severities):
        self.kind, self.alertname, self.by = kind, spec["alertname"], spec.get("by")
        self.want = dict({"alertname": self.alertname, "pz_service": drill["service"]},
                         **({"probe": spec["probe"]} if spec.get("probe") else {}))
        self.severity = severities.get(self.alertname)
        self.receiver = RECEIVER.get(self.severity)
        self.fired_at = self.arrived_at = self.suppressed_at = self.table_at = None
        self.resolved_prom_at = self.resolved_hook_at = self.first_note = None
        self.done, self.notes, self.late = False, [], []  # late: (inhibited) deliveries after the source resolved
        self.name = "%s{pz_service=%s%s}" % (self.alertname, drill["service"],
                                             (" probe=" + spec["probe"]) if spec.get("probe") else "")


def run_drills(env, res, drills, baseline, timeout, severities, queries):
    print("\n== drills (all at once, each on its own service) ==")
    firing = [q for q in queries if q["dashboard"] == "td-pz-overview" and q["panel"] == "Firing TdPz alerts"
              and q["vars"] == "all=.*"]
    table = [q for q in firing if "sum by" in q["expr"]]
    stat = [q for q in firing if q["expr"].startswith("count(")]
    stat_max, active = 0.0, set()
    post = lambda: env.scenario(dict(baseline, faults=[f for d in drills if d["name"] in active for f in d["faults"]]))  # noqa: E731
    for d in drills:
        d["expects"] = ([Expect(d, s, "arrive", severities) for s in d.get("arrive", [])]
                        + [Expect(d, s, "inhibited", severities) for s in d.get("inhibited", [])])
        active.add(d["name"])
        post()
        d.update(injected_at=time.time(), cleared_at=None, status="running")
        say("inject %-13s %s: %s" % (d["name"], d["title"], json.dumps(d["faults"])))
    # An inhibited alert counts as not delivered once it has been firing longer than group_wait (10s): by
    # then it would have been sent. The whole log is checked again at the end of the run.
    while any(d["status"] == "running" for d in drills):
        prom = [a for a in env.prom_alerts() if a["state"] == "firing"]
        am, notes = env.am_alerts(), env.notifications()
        by_fp = {a.get("fingerprint"): a.get("labels", {}) for a in am}
        rows = [x["metric"] for q in table for x in (env.query(q["expr"])[0] or [])]
        stat_max = max([stat_max] + [env.value(q["expr"]) or 0.0 for q in stat])
        now = time.time()
        for d in [d for d in drills if d["status"] == "running"]:
            for e in d["expects"]:
                if e.fired_at is None and any(matches(a["labels"], e.want) for a in prom):
                    e.fired_at = now
                    say("  %-13s fired in Prometheus: %s" % (d["name"], e.name))
                got = [n for n in notes if n["status"] == "firing" and matches(n["labels"], e.want)]
                if e.kind == "arrive":
                    if e.table_at is None and any(matches(r, e.want) for r in rows):
                        e.table_at = now
                    if e.arrived_at is None and got:
                        e.arrived_at, e.first_note = now, got[0]
                        say("  %-13s arrived at receiver=%s: %s" % (d["name"], got[0]["receiver"], fmt(got[0]["labels"])))
                    e.done = None not in (e.fired_at, e.arrived_at, e.table_at)
                    continue
                if got and not e.notes:
                    e.notes.append("delivered to %s although %s should inhibit it" % (got[0]["receiver"], e.by))
                # suppressed, and by the expected source: inhibitedBy holds the sources' fingerprints
                if e.suppressed_at is None and any(
                        matches(a["labels"], e.want) and a["status"].get("state") == "suppressed"
                        and any(matches(by_fp.get(fp, {}), {"alertname": e.by, "pz_service": d["service"]})
                                for fp in a["status"].get("inhibitedBy") or []) for a in am):
                    e.suppressed_at = now
                    say("  %-13s suppressed in Alertmanager: %s" % (d["name"], e.name))
                e.done = bool(e.notes) or (None not in (e.suppressed_at, e.fired_at) and now - e.fired_at >= SETTLE)
            if all(e.done for e in d["expects"]) or now - d["injected_at"] > timeout:
                d["status"] = "done"
                report_drill(env, res, d, timeout)
                active.discard(d["name"])
                post()
                d["cleared_at"] = time.time()
                say("clear  %-13s (its faults removed from the scenario)" % d["name"])
        time.sleep(POLL)
    env.scenario(baseline)
    n_arrive = len({(e.alertname, e.want["pz_service"]) for d in drills for e in d["expects"] if e.kind == "arrive"})
    if stat:
        res.check(stat_max >= n_arrive, "the overview's 'Firing TdPz alerts' stat counted the drills' alerts",
                  "max %d during the drills, %d alert names x services expected at least" % (stat_max, n_arrive))


def report_drill(env, res, d, timeout):
    print("-- drill %s: %s" % (d["name"], d["title"]))
    after = lambda t: "after %.0fs" % (t - d["injected_at"]) if t else "not after %ds" % timeout  # noqa: E731
    ok = True
    for e in d["expects"]:
        p = "drill %s: %s" % (d["name"], e.name)
        if e.kind == "arrive":
            ok &= res.check(e.fired_at is not None, p + " fires in Prometheus", after(e.fired_at))
            ok &= res.check(e.table_at is not None, p + " is listed by the overview's 'Firing TdPz alerts' table")
            ok &= res.check(e.arrived_at is not None, p + " arrives at the webhook", after(e.arrived_at))
            if e.arrived_at:
                n = e.first_note
                ok &= res.check(n["receiver"] == e.receiver == n["body_receiver"],
                                p + " goes to receiver %s (severity %s)" % (e.receiver, e.severity),
                                "got ?receiver=%s, body receiver %s" % (n["receiver"], n["body_receiver"]))
                want = dict({"alertname": e.alertname, "severity": e.severity, "pz_service": d["service"],
                             "parent_segment": d["parent_segment"]}, **e.want)
                ok &= res.check(matches(n["labels"], want), p + " has the labels " + fmt(want), fmt(n["labels"]))
        else:
            ok &= res.check(e.fired_at is not None, p + " fires in Prometheus (inhibition target)", after(e.fired_at))
            ok &= res.check(e.suppressed_at is not None, p + " is suppressed in Alertmanager, inhibitedBy %s" % e.by)
            ok &= res.check(not e.notes, p + " does not arrive (inhibited by %s)" % e.by, "; ".join(e.notes))
    if not ok:
        diagnose(env, d["service"], "drill %s" % d["name"])


def wait_resolved(env, res, drills, timeout):
    print("\n== resolution (scenario back to the baseline; the rules' 5m windows must empty) ==")
    expects = [e for d in drills for e in d["expects"] if e.fired_at is not None]
    deadline, last_print = max(d["cleared_at"] for d in drills) + timeout, 0
    waiting = lambda: [e for e in expects if e.resolved_prom_at is None  # noqa: E731
                       or (e.kind == "arrive" and e.arrived_at and e.resolved_hook_at is None)]
    while waiting() and time.time() <= deadline:
        now, notes = time.time(), env.notifications()
        live = [a for a in env.prom_alerts() if a["state"] in ("firing", "pending")]
        for e in expects:
            if e.resolved_prom_at is None and not any(matches(a["labels"], e.want) for a in live):
                e.resolved_prom_at = now
                say("  resolved in Prometheus: %s" % e.name)
            if e.kind == "arrive" and e.arrived_at and e.resolved_hook_at is None and any(
                    n["status"] == "resolved" and matches(n["labels"], e.want) for n in notes):
                e.resolved_hook_at = now
                say("  resolved notification at the webhook: %s" % e.name)
        if now - last_print >= 30:
            last_print = now
            say("  waiting for %d alert(s) to resolve: %s" % (len(waiting()), ", ".join(e.name for e in waiting())))
        time.sleep(POLL)
    time.sleep(5)  # whatever the resolutions set off (a group flush is 1s away) is delivered within seconds
    for d in drills:
        for e in [e for e in d["expects"] if e.fired_at is not None]:
            p, since = "drill %s: %s" % (d["name"], e.name), lambda t: "%.0fs after the clear" % (t - d["cleared_at"])  # noqa: E731
            res.check(e.resolved_prom_at is not None, p + " resolves in Prometheus",
                      since(e.resolved_prom_at) if e.resolved_prom_at else "still firing %ds after the clear" % timeout)
            if e.kind == "arrive" and e.arrived_at:
                res.check(e.resolved_hook_at is not None, p + " arrives as resolved at the webhook",
                          since(e.resolved_hook_at) if e.resolved_hook_at else "none %ds after the clear" % timeout)
    if waiting():
        diagnose(env, why="alerts did not resolve")


def final_checks(env, res, drills, ran_all):
    print("\n== whole run ==")
    notes, late_ok = env.notifications(), []
    for d in drills:
        for e in [e for e in d["expects"] if e.kind == "inhibited"]:
            # when the inhibition source stopped firing (webhook resolved, or Prometheus)
            ends = [t for src in d["expects"] if src.alertname == e.by for t in [src.resolved_prom_at] + [
                n["t"] for n in notes if n["status"] == "resolved" and matches(n["labels"], src.want)] if t]
            end = min(ends) if ends else None
            got = [n for n in notes if matches(n["labels"], e.want)]
            early = [n for n in got if end is None or n["t"] < end - 2]
            e.late = [n for n in got if n not in early]
            late_ok += e.late
            ok = res.check(not early, "drill %s: %s never reached the webhook while %s was firing" % (d["name"], e.name, e.by),
                           "; ".join("%s at %s" % (n["status"], n["receiver"]) for n in early[:3]))
            res.summary.append((ok, "inhibition %s -> %s (%s): %s" % (e.by, e.name, d["service"], "held" if ok else "BROKEN")))
            if e.receiver == "pager":  # a page after its cause (burn-rate pages: keep_firing_for on the cause)
                res.check(not e.late, "drill %s: %s is not paged after %s resolved" % (d["name"], e.name, e.by),
                          "; ".join("%s %.0fs after" % (n["status"], n["t"] - end) for n in e.late))
            elif e.late:
                print("info  drill %s: %s was delivered to %s %.0fs after %s resolved: it outlives its inhibition "
                      "source (a slow burn keeps its longer windows)" % (d["name"], e.name, e.late[0]["receiver"],
                                                                         e.late[0]["t"] - end, e.by))
    expected = [e.want for d in drills for e in d["expects"] if e.kind == "arrive"]
    unexpected = [n for n in notes if n not in late_ok and not any(matches(n["labels"], w) for w in expected)]
    if ran_all:
        ok = res.check(not unexpected, "every notification received (%d) is one a drill expects" % len(notes),
                       "unexpected: " + "; ".join(sorted({"%s %s at %s" % (n["status"], fmt(n["labels"]), n["receiver"])
                                                          for n in unexpected})))
        res.summary.append((ok, "notifications: %d received, %d unexpected" % (len(notes), len(unexpected))))
    r, err = env.query('count by (alertname, pz_service) (count_over_time(ALERTS{pz_service=~"%s"}[1h]))'
                       % "|".join(CONTROL_SERVICES))
    ok = res.check(err is None and not r, "no alert ever fired or was pending for the healthy services (%s)"
                   % ", ".join(CONTROL_SERVICES), err or "; ".join(fmt(x["metric"]) for x in (r or [])))
    res.summary.append((ok, "control services: %s" % ("no alert ever pending or firing" if ok else "ALERTS found")))
    # No drill injects a 400: any of these reasons is a request TD's documents would refuse (p13n 3000-3009).
    refused = "token_rejected|token_misconfigured|ip_not_allowed|invalid_event|origin_rejected|bad_request"
    seen, err1 = env.query('count(td_pz_probe_failures_total{reason=~"%s"})' % refused)
    r, err2 = env.query('sum by (pz_service, probe, reason) (increase(td_pz_probe_failures_total{reason=~"%s"}[1h])) > 0'
                        % refused)
    res.check(not (err1 or err2) and bool(seen) and not r, "no probe was refused by the simulator as TD would (%s)" % refused,
              err1 or err2 or ("no such series" if not seen else "; ".join(fmt(x["metric"]) for x in r)))
    bad = [n for n in notes if n["receiver"] != n["body_receiver"] or RECEIVER.get(n["labels"].get("severity")) != n["receiver"]]
    res.check(not bad, "every notification (%d) went to the receiver of its severity" % len(notes),
              "; ".join("%s at %s" % (fmt(n["labels"]), n["receiver"]) for n in bad[:5]))


def report(res, drills, queries, resolved_phase):
    print("\n================ e2e report ================")
    half = len(queries) // 2
    cell = lambda q: ("%d%s" % (q["series"], "*" if q["fallback"] else "")) if q.get("ok") else "FAIL"  # noqa: E731
    print("dashboard queries: series with pz_service=.* / pz_service=product_recommendations (*: only the "
          "`or on() vector(0)` fallback, a flat zero by design while healthy):")
    for a, b in zip(queries[:half], queries[half:]):
        print("   %-5s %-5s %s / %s [%s]" % (cell(a), cell(b), a["dashboard"], a["panel"], a["refId"]))
    t = lambda x, base: ("%3.0fs" % (x - base)) if x else "  - "  # noqa: E731
    for d in drills:
        print("drill %-13s %s" % (d["name"], d["title"]))
        for e in d.get("expects", []):
            clr = d.get("cleared_at") or time.time()
            resolved = ("skipped" if not resolved_phase
                        else t(e.resolved_prom_at, clr) + ("/" + t(e.resolved_hook_at, clr)) * (e.kind == "arrive"))
            print("   %-60s fired %s  " % (e.name, t(e.fired_at, d["injected_at"])) + (
                "arrived %s at %-6s" % (t(e.arrived_at, d["injected_at"]), (e.first_note or {}).get("receiver", "-")) if e.kind == "arrive" else
                "INHIBITED by %s: suppressed %s" % (e.by, t(e.suppressed_at, d["injected_at"]))) + "  resolved " + resolved)
    print("(fired/arrived/suppressed: seconds after the injection; resolved: after the clear, Prometheus/webhook)")
    for ok, line in res.summary:
        print("%s %s" % ("ok  " if ok else "FAIL", line))
    print("total time: %.0fs" % (time.time() - T0) + "".join("\n  - failed: " + f for f in res.failures))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep target/e2e/run.* even when everything passed")
    ap.add_argument("--timeout", type=float, default=90, help="per wait for firing/arrival (s)")
    ap.add_argument("--resolve-timeout", type=float, default=420, help="after the last clear (s)")
    ap.add_argument("--only", default="", help="comma-separated drill names (default: all)")
    ap.add_argument("--no-resolve", action="store_true", help="skip the resolution phase (quick iteration)")
    a = ap.parse_args()
    with open(os.path.join(ROOT, "tests", "e2e", "drills.json")) as f:
        drills = json.load(f)["drills"]
    with open(os.path.join(ROOT, "tests", "e2e", "baseline.json")) as f:
        baseline = json.load(f)
    if a.only:
        if set(a.only.split(",")) - {d["name"] for d in drills}:
            ap.error("unknown drill in %s" % a.only)
        drills = [d for d in drills if d["name"] in a.only.split(",")]
    with open(os.path.join(ROOT, "alerts", "td-pz-rules.yaml")) as f:  # the generated file is regular
        lines = [line.strip() for line in f]
    severities = {lines[i].split(":", 1)[1].strip(): next(
        s.split(":", 1)[1].strip() for s in lines[i:] if s.startswith("severity:"))
        for i in range(len(lines)) if lines[i].startswith("- alert:")}
    os.makedirs(os.path.join(ROOT, "target", "e2e"), exist_ok=True)
    st = Stack(tempfile.mkdtemp(prefix="run.", dir=os.path.join(ROOT, "target", "e2e")))
    st.e2e(fast=True)
    env, res, queries = Env(st), Results(), []
    print("== healthy data ==")
    try:
        # One refused request (404), so that td_pz_bad_requests_total has a series for the dashboards.
        env.get(env.u["exporter"] + "/e2e-no-such-page", None)
        if wait_healthy(env, res, a.timeout):
            queries = check_dashboards(env, res, 30)
            run_drills(env, res, drills, baseline, a.timeout, severities, queries)
            if not a.no_resolve:
                wait_resolved(env, res, drills, a.resolve_timeout)
                final_checks(env, res, drills, ran_all=not a.only)
    except Exception:  # report what was checked, and the crash as a failure
        res.check(False, "the checks themselves crashed", traceback.format_exc().strip().replace("\n", "\n      "))
    report(res, drills, queries, not a.no_resolve)
    print("e2e: %d passed, %d failed" % (res.passed, len(res.failures)))
    st.stop()
    if res.failures or a.keep:
        print("e2e: logs, configs, webhook.jsonl and the Prometheus TSDB are in %s" % st.work)
    else:
        shutil.rmtree(st.work)
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
