#!/usr/bin/env python3
"""The end-to-end test (scripts/e2e.sh): starts the e2e stack (scripts/lib/stack.py) and asserts, in order:
  1. healthy data: every probe passes, the recording rules and td_pz_section_share exist for every service
  2. every dashboard query returns at least one series, with the template variables at `.*` and at
     pz_service=product_recommendations
  3. the drills of tests/e2e/drills.json, all at once on their own services: fired in Prometheus, shown in
     the overview's alert table, delivered to the right receiver with the right labels; inhibited alerts
     fired, suppressed in Alertmanager and not delivered; then each drill is cleared
  4. every alert of step 3 resolves in Prometheus, and every delivered one is delivered again as resolved
  5. nothing else was delivered, nothing ever fired for the healthy services, inhibited alerts never arrived
Prints a report and `e2e: N passed, M failed`; exits 1 if anything failed.

    e2e.py [--keep] [--only=DRILL,...] [--no-resolve] [--timeout=SECONDS]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import dashboards
from stack import ROOT, Stack, http

# alerts/alertmanager.yml routes by severity; scripts/check-alerts.sh proves the mapping with amtool.
RECEIVER = {"critical": "pager", "warning": "chat", "info": "email-or-nothing"}
CONTROL_SERVICES = ["product_recommendations", "web_offers"]
POLL = 1.0
SETTLE = 12.0
FALLBACK = " or on() vector(0)"
T0 = time.time()


def stamp():
    return "%6.1fs" % (time.time() - T0)


# --- HTTP ---------------------------------------------------------------------------------------------

class Urls:
    """What the checks read of the running stack."""

    def __init__(self, st):
        self.sim, self.exporter, self.prom = st.urls["simulator"], st.urls["exporter"], st.urls["prometheus"]
        self.am, self.hook_log, self.work = st.urls["alertmanager"], st.hook_log, st.work

    def query(self, expr):
        url = self.prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            r = http(url)
        except urllib.error.HTTPError as e:
            return None, "HTTP %d: %s" % (e.code, e.read().decode("utf-8", "replace")[:300])
        except (urllib.error.URLError, OSError) as e:
            return None, str(e)
        if r.get("status") != "success":
            return None, r.get("error", str(r))
        return r["data"]["result"], None

    def value(self, expr):
        res, err = self.query(expr)
        if err or not res:
            return None
        return float(res[0]["value"][1])

    def prom_alerts(self):
        try:
            return http(self.prom + "/api/v1/alerts")["data"]["alerts"]
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            return []

    def am_alerts(self):
        try:
            return http(self.am + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")
        except (urllib.error.URLError, OSError, ValueError):
            return []

    def notifications(self):
        """Every alert of every webhook call: dicts with t, receiver (query param), body_receiver, status,
        group_status, labels."""
        out = []
        try:
            with open(self.hook_log, encoding="utf-8") as f:
                lines = f.readlines()
        except OSError:
            return out
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            body = e.get("body") or {}
            for a in body.get("alerts") or []:
                out.append({"t": e.get("t"), "receiver": e.get("receiver"),
                            "body_receiver": body.get("receiver"), "status": a.get("status"),
                            "group_status": body.get("status"), "labels": a.get("labels") or {}})
        return out

    def scenario(self, body):
        return http(self.sim + "/_sim/scenario", body)

    def metrics_text(self):
        with urllib.request.urlopen(self.exporter + "/metrics", timeout=10) as r:
            return r.read().decode("utf-8", "replace")


# --- results ------------------------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed, self.failed, self.failures = 0, 0, []
        self.summary = []  # (ok, line) for the report

    def note(self, ok, line):
        self.summary.append((ok, line))

    def ok(self, what, detail=""):
        self.passed += 1
        print("ok    %s%s" % (what, (": " + detail) if detail else ""), flush=True)

    def fail(self, what, detail=""):
        self.failed += 1
        self.failures.append(what)
        print("FAIL  %s%s" % (what, (": " + detail) if detail else ""), flush=True)

    def check(self, cond, what, detail=""):
        (self.ok if cond else self.fail)(what, detail)
        return cond


def matches(labels, want):
    return all(labels.get(k) == v for k, v in want.items())


def fmt_labels(labels, keys=("alertname", "severity", "pz_service", "parent_segment", "probe", "slo")):
    return "{" + ", ".join("%s=%s" % (k, labels[k]) for k in keys if labels.get(k)) + "}"


# --- diagnostics --------------------------------------------------------------------------------------

def diagnose(st, service=None, why=""):
    print("---- diagnostics%s ----" % ((" (" + why + ")") if why else ""))
    alerts = [a for a in st.prom_alerts() if service is None or a["labels"].get("pz_service") == service]
    print("Prometheus alerts%s:" % ((" of " + service) if service else ""))
    for a in alerts[:40]:
        print("  %-8s %s since %s" % (a["state"], fmt_labels(a["labels"]), a.get("activeAt", "?")))
    if not alerts:
        print("  (none)")
    am = [a for a in st.am_alerts() if service is None or a["labels"].get("pz_service") == service]
    print("Alertmanager alerts:")
    for a in am[:40]:
        s = a.get("status", {})
        print("  %-10s %s inhibitedBy=%s" % (s.get("state"), fmt_labels(a["labels"]), s.get("inhibitedBy")))
    if not am:
        print("  (none)")
    notes = st.notifications()
    print("last webhook notifications (%d in all):" % len(notes))
    for n in notes[-8:]:
        print("  receiver=%s %s %s" % (n["receiver"], n["status"], fmt_labels(n["labels"])))
    try:
        text = st.metrics_text()
        keep = [l for l in text.splitlines()
                if not l.startswith("#") and (service is None or 'pz_service="%s"' % service in l)
                and (l.startswith(("td_pz_probe_success", "td_pz_probe_http_status_code",
                                   "td_pz_probe_section_match", "td_pz_probe_last_duration_seconds"))
                     or (("_failures_total" in l) and not l.endswith(" 0")))]
        print("exporter /metrics excerpt:")
        for l in keep[:40]:
            print("  " + l)
    except OSError as e:
        print("exporter /metrics: %s" % e)
    try:
        print("simulator scenario: %s" % json.dumps(http(st.sim + "/_sim/scenario"))[:600])
    except OSError as e:
        print("simulator scenario: %s" % e)
    print("---- end of diagnostics ----", flush=True)


# --- steps --------------------------------------------------------------------------------------------

def expected_counts():
    """Services and probes of tests/e2e/exporter.toml."""
    import tomllib
    with open(os.path.join(ROOT, "tests", "e2e", "exporter.toml"), "rb") as f:
        cfg = tomllib.load(f)
    services = cfg["service"]
    return (len(services), sum(len(s.get("probe", [])) for s in services),
            sum(1 for s in services if s.get("service_id")))


def wait_healthy(st, res, timeout):
    n_services, n_probes, n_managed = expected_counts()
    checks = [
        ("every probe reports and passes (td_pz_probe_success == 1)",
         "count(td_pz_probe_success == 1)", n_probes),
        ("the 5m availability recording rule exists for every service",
         "count(pz_service:td_pz_probe_availability:ratio_rate5m == 1)", n_services),
        ("td_pz_section_share exists for every service with a service_id",
         "count(count by (pz_service) (td_pz_section_share))", n_managed),
        ("td_pz_service_error_rate exists for every service with a service_id",
         "count(td_pz_service_error_rate)", n_managed),
    ]
    deadline = time.time() + timeout
    pending = list(checks)
    while True:
        pending = [c for c in pending if st.value(c[1]) != c[2]]
        if not pending or time.time() > deadline:
            break
        time.sleep(POLL)
    for name, expr, want in checks:
        if (name, expr, want) in pending:
            res.fail("healthy: " + name, "%s = %s, want %s after %ds" % (expr, st.value(expr), want, timeout))
        else:
            res.ok("healthy: " + name, "%s = %d" % (expr, want))
    if pending:
        diagnose(st, why="no healthy data")
    return not pending


def dashboard_queries(var_sets):
    out = []
    for vs in var_sets:
        for q in dashboards.queries(vs):
            q["vars"] = ", ".join("%s=%s" % kv for kv in vs.items()) or "all=.*"
            out.append(q)
    return out


def check_dashboards(st, res, grace):
    var_sets = [{}, {"pz_service": "product_recommendations"}]
    queries = dashboard_queries(var_sets)
    print("\n== dashboard queries (%d: %d per variable set) ==" % (len(queries), len(queries) // len(var_sets)))
    deadline = time.time() + grace
    todo = list(range(len(queries)))
    outcome = {}
    while todo:
        left = []
        for i in todo:
            r, err = st.query(queries[i]["expr"])
            outcome[i] = (r, err)
            if err is None and r:
                continue
            if err is not None and "bad_data" in err:
                continue  # a parse error does not go away by waiting
            left.append(i)
        todo = left
        if not todo or time.time() > deadline:
            break
        time.sleep(POLL)
    fallback_only = []
    for i, q in enumerate(queries):
        r, err = outcome[i]
        what = "dashboard %s / %s [%s] (%s)" % (q["dashboard"], q["panel"], q["refId"], q["vars"])
        q["ok"], q["series"], q["fallback"] = bool(r) and not err, len(r or []), False
        if err:
            res.fail(what, "error: %s; expr: %s" % (err, q["expr"]))
        elif not r:
            res.fail(what, "no series after %ds; expr: %s" % (grace, q["expr"]))
        else:
            detail = "%d series" % len(r)
            # `X or on() vector(0)` always answers: say when only the fallback did (a flat zero by design)
            if q["expr"].endswith(FALLBACK):
                inner, _ = st.query(q["expr"][: -len(FALLBACK)])
                if not inner:
                    detail += " (only its `or on() vector(0)` fallback: zero by design until the first event)"
                    fallback_only.append(what)
                    q["fallback"] = True
            res.ok(what, detail)
    return queries, fallback_only


# --- drills -------------------------------------------------------------------------------------------

def rule_severities():
    """alertname -> severity, from the shipped rules (PyYAML-free: the generated file is regular)."""
    sev, name = {}, None
    with open(os.path.join(ROOT, "alerts", "td-pz-rules.yaml"), encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("- alert:"):
                name = s.split(":", 1)[1].strip()
            elif s.startswith("severity:") and name:
                sev[name] = s.split(":", 1)[1].strip()
                name = None
    return sev


class Expect:
    """One alert a drill expects: to arrive, or to be inhibited."""

    def __init__(self, drill, spec, kind, severities):
        self.drill, self.kind = drill, kind
        self.alertname = spec["alertname"]
        self.by = spec.get("by")
        self.resolves = spec.get("resolves", True)
        self.late = []  # (inhibited) deliveries after its source had resolved
        self.want = {"alertname": self.alertname, "pz_service": drill["service"]}
        if spec.get("probe"):
            self.want["probe"] = spec["probe"]
        self.severity = severities.get(self.alertname)
        self.receiver = RECEIVER.get(self.severity)
        self.fired_at = self.arrived_at = self.suppressed_at = self.table_at = None
        self.resolved_prom_at = self.resolved_hook_at = None
        self.done = False
        self.notes = []

    @property
    def name(self):
        extra = (" probe=" + self.want["probe"]) if "probe" in self.want else ""
        return "%s{pz_service=%s%s}" % (self.alertname, self.want["pz_service"], extra)


def run_drills(st, res, drills, baseline, timeout, severities, queries):
    print("\n== drills (all at once, each on its own service) ==")
    table = [q for q in queries if q["dashboard"] == "td-pz-overview" and q["panel"] == "Firing TdPz alerts"
             and "sum by" in q["expr"] and q["vars"] == "all=.*"]
    stat = [q for q in queries if q["dashboard"] == "td-pz-overview" and q["panel"] == "Firing TdPz alerts"
            and q["expr"].startswith("count(") and q["vars"] == "all=.*"]
    stat_max = 0.0
    active = {}

    def post():
        faults = [f for d in drills if d["name"] in active for f in d["faults"]]
        st.scenario(dict(baseline, faults=faults))

    for d in drills:
        d["expects"] = ([Expect(d, s, "arrive", severities) for s in d.get("arrive", [])]
                        + [Expect(d, s, "inhibited", severities) for s in d.get("inhibited", [])])
        active[d["name"]] = True
        post()
        d["injected_at"] = time.time()
        d["cleared_at"] = None
        d["status"] = "running"
        print("%s inject %-13s %s: %s" % (stamp(), d["name"], d["title"], json.dumps(d["faults"])), flush=True)

    # An inhibited alert counts as not delivered once it has been firing for longer than Alertmanager's
    # group_wait (10s in the test config): by then it would have been sent. The whole log is checked
    # again at the end of the run.
    settle = SETTLE
    while any(d["status"] == "running" for d in drills):
        prom = [a for a in st.prom_alerts() if a["state"] == "firing"]
        am = st.am_alerts()
        by_fp = {a.get("fingerprint"): a.get("labels", {}) for a in am}
        notes = st.notifications()
        table_rows = []
        for q in table:
            r, _ = st.query(q["expr"])
            table_rows += [x["metric"] for x in (r or [])]
        for q in stat:
            stat_max = max(stat_max, st.value(q["expr"]) or 0.0)
        now = time.time()
        for d in drills:
            if d["status"] != "running":
                continue
            for e in d["expects"]:
                if e.fired_at is None and any(matches(a["labels"], e.want) for a in prom):
                    e.fired_at = now
                    print("%s   %-13s fired in Prometheus: %s" % (stamp(), d["name"], e.name), flush=True)
                got = [n for n in notes if n["status"] == "firing" and matches(n["labels"], e.want)]
                if e.kind == "arrive":
                    if e.table_at is None and any(matches(r, e.want) for r in table_rows):
                        e.table_at = now
                    if e.arrived_at is None and got:
                        e.arrived_at = now
                        e.first_note = got[0]
                        print("%s   %-13s arrived at receiver=%s: %s" % (stamp(), d["name"], got[0]["receiver"],
                                                                       fmt_labels(got[0]["labels"])), flush=True)
                    e.done = e.fired_at is not None and e.arrived_at is not None and e.table_at is not None
                else:
                    if got and not e.notes:
                        e.notes.append("delivered to %s although it should be inhibited by %s"
                                       % (got[0]["receiver"], e.by))
                    # suppressed, and by the expected source: inhibitedBy holds the sources' fingerprints
                    sup = [a for a in am if matches(a["labels"], e.want)
                           and a.get("status", {}).get("state") == "suppressed"
                           and any(matches(by_fp.get(fp, {}), {"alertname": e.by, "pz_service": d["service"]})
                                   for fp in a["status"].get("inhibitedBy") or [])]
                    if e.suppressed_at is None and sup:
                        e.suppressed_at = now
                        print("%s   %-13s suppressed in Alertmanager: %s" % (stamp(), d["name"], e.name), flush=True)
                    e.done = (e.fired_at is not None and e.suppressed_at is not None
                              and now - e.fired_at >= settle) or bool(e.notes)
            if all(e.done for e in d["expects"]):
                d["status"] = "done"
            elif now - d["injected_at"] > timeout:
                d["status"] = "timeout"
            if d["status"] != "running":
                report_drill(st, res, d, timeout)
                active.pop(d["name"], None)
                post()
                d["cleared_at"] = time.time()
                print("%s clear  %-13s (its faults removed from the scenario)" % (stamp(), d["name"]), flush=True)
        time.sleep(POLL)
    st.scenario(baseline)
    n_arrive = len({(e.alertname, e.want["pz_service"]) for d in drills for e in d["expects"] if e.kind == "arrive"})
    if stat:
        res.check(stat_max >= n_arrive, "the overview's 'Firing TdPz alerts' stat counted the drills' alerts",
                  "max %d during the drills, %d alert names x services expected at least" % (stat_max, n_arrive))


def report_drill(st, res, d, timeout):
    print("-- drill %s: %s" % (d["name"], d["title"]))
    bad = False
    for e in d["expects"]:
        p = "drill %s: %s" % (d["name"], e.name)
        if e.kind == "arrive":
            bad |= not res.check(e.fired_at is not None, p + " fires in Prometheus",
                                 "after %.0fs" % (e.fired_at - d["injected_at"]) if e.fired_at else
                                 "not firing after %ds" % timeout)
            bad |= not res.check(e.table_at is not None, p + " is listed by the overview's 'Firing TdPz alerts' table")
            if e.arrived_at is None:
                res.fail(p + " arrives at the webhook", "nothing after %ds" % timeout)
                bad = True
                continue
            n = e.first_note
            res.ok(p + " arrives at the webhook", "after %.0fs" % (e.arrived_at - d["injected_at"]))
            bad |= not res.check(n["receiver"] == e.receiver and n["body_receiver"] == e.receiver,
                                 p + " goes to receiver %s (severity %s)" % (e.receiver, e.severity),
                                 "got ?receiver=%s, body receiver %s" % (n["receiver"], n["body_receiver"]))
            lab = n["labels"]
            want = {"alertname": e.alertname, "severity": e.severity, "pz_service": d["service"],
                    "parent_segment": d["parent_segment"]}
            want.update(e.want)
            bad |= not res.check(matches(lab, want), p + " has the labels " + fmt_labels(want), fmt_labels(lab))
        else:
            bad |= not res.check(e.fired_at is not None, p + " fires in Prometheus (inhibition target)",
                                 "after %.0fs" % (e.fired_at - d["injected_at"]) if e.fired_at else
                                 "not firing after %ds" % timeout)
            bad |= not res.check(e.suppressed_at is not None,
                                 p + " is suppressed in Alertmanager, inhibitedBy %s" % e.by)
            bad |= not res.check(not e.notes, p + " does not arrive (inhibited by %s)" % e.by, "; ".join(e.notes))
    if bad:
        diagnose(st, d["service"], "drill %s" % d["name"])


def wait_resolved(st, res, drills, timeout):
    print("\n== resolution (scenario back to the baseline; the rules' 5m windows must empty) ==")
    expects = [e for d in drills for e in d["expects"] if e.fired_at is not None and e.resolves]
    deadline = max(d["cleared_at"] for d in drills) + timeout
    last_print = 0
    while True:
        now = time.time()
        live = [a for a in st.prom_alerts() if a["state"] in ("firing", "pending")]
        notes = st.notifications()
        for e in expects:
            if e.resolved_prom_at is None and not any(matches(a["labels"], e.want) for a in live):
                e.resolved_prom_at = now
                print("%s   resolved in Prometheus: %s" % (stamp(), e.name), flush=True)
            if e.kind == "arrive" and e.arrived_at and e.resolved_hook_at is None:
                if any(n["status"] == "resolved" and matches(n["labels"], e.want) for n in notes):
                    e.resolved_hook_at = now
                    print("%s   resolved notification at the webhook: %s" % (stamp(), e.name), flush=True)
        waiting = [e for e in expects if e.resolved_prom_at is None
                   or (e.kind == "arrive" and e.arrived_at and e.resolved_hook_at is None)]
        if not waiting or now > deadline:
            break
        if now - last_print >= 30:
            last_print = now
            print("%s   waiting for %d alert(s) to resolve (up to %.0fs more): %s" % (
                stamp(), len(waiting), deadline - now, ", ".join(e.name for e in waiting)), flush=True)
        time.sleep(POLL)
    # whatever the resolutions set off (a group flush is 1s away) is delivered within a few seconds
    settle_until = time.time() + 5
    while time.time() < settle_until:
        time.sleep(POLL)
    live = {json.dumps(a["labels"], sort_keys=True): a for a in st.prom_alerts() if a["state"] == "firing"}
    for d in drills:
        for e in d["expects"]:
            if e.fired_at is None:
                continue
            p = "drill %s: %s" % (d["name"], e.name)
            cleared = d["cleared_at"]
            if not e.resolves:
                still = any(matches(json.loads(k), e.want) for k in live)
                e.resolved_prom_at = None if still else time.time()
                print("info  %s: %s at the end (not asserted: an SLO burn-rate alert's long windows hold the "
                      "whole run)" % (p, "still firing" if still else "resolved"))
                continue
            res.check(e.resolved_prom_at is not None, p + " resolves in Prometheus",
                      "%.0fs after the clear" % (e.resolved_prom_at - cleared) if e.resolved_prom_at else
                      "still firing %ds after the clear" % timeout)
            if e.kind == "arrive" and e.arrived_at:
                res.check(e.resolved_hook_at is not None, p + " arrives as resolved at the webhook",
                          "%.0fs after the clear" % (e.resolved_hook_at - cleared) if e.resolved_hook_at else
                          "no resolved notification %ds after the clear" % timeout)
    if any(e.resolved_prom_at is None or (e.kind == "arrive" and e.arrived_at and e.resolved_hook_at is None)
           for e in expects if e.resolves):
        diagnose(st, why="alerts did not resolve")


def source_end(st, d, e, notes):
    """When the inhibition source of `e` stopped firing (webhook resolved or Prometheus), or None."""
    ends = []
    for src in d["expects"]:
        if src.alertname != e.by:
            continue
        if src.resolved_prom_at:
            ends.append(src.resolved_prom_at)
        ends += [n["t"] for n in notes if n["status"] == "resolved" and matches(n["labels"], src.want)]
    return min(ends) if ends else None


def final_checks(st, res, drills, ran_all):
    print("\n== whole run ==")
    notes = st.notifications()
    late_ok = []
    for d in drills:
        for e in d["expects"]:
            if e.kind != "inhibited":
                continue
            end = source_end(st, d, e, notes)
            got = [n for n in notes if matches(n["labels"], e.want)]
            early = [n for n in got if end is None or n["t"] < end - 2]
            e.late = [n for n in got if n not in early]
            late_ok += e.late
            ok = res.check(not early, "drill %s: %s never reached the webhook while %s was firing"
                           % (d["name"], e.name, e.by),
                           "; ".join("%s at %s" % (n["status"], n["receiver"]) for n in early[:3]))
            res.note(ok, "inhibition %s -> %s (%s): %s" % (
                e.by, e.alertname + ((" probe=" + e.want["probe"]) if "probe" in e.want else ""), d["service"],
                "held" if ok else "BROKEN, delivered while the source fired"))
            if e.late:
                print("info  drill %s: %s was delivered (%s) %.0fs after %s resolved: the burn-rate alert "
                      "outlives its inhibition source" % (d["name"], e.name, e.late[0]["receiver"],
                                                          e.late[0]["t"] - end, e.by))
    expected = [e for d in drills for e in d["expects"] if e.kind == "arrive"]
    unexpected = [n for n in notes if n not in late_ok and not any(matches(n["labels"], e.want) for e in expected)]
    if ran_all:
        ok = not unexpected
        res.note(ok, "notifications: %d received, %s" % (len(notes), "all expected" if ok else
                                                           "%d unexpected" % len(unexpected)))
        res.check(not unexpected, "every notification received (%d) is one a drill expects" % len(notes),
                  ("unexpected: " + "; ".join(sorted({"%s %s at %s" % (n["status"], fmt_labels(n["labels"]),
                                                                        n["receiver"]) for n in unexpected})))
                  if unexpected else "")
    ctl = "|".join(CONTROL_SERVICES)
    r, err = st.query('count by (alertname, pz_service) (count_over_time(ALERTS{pz_service=~"%s"}[1h]))' % ctl)
    ok = res.check(err is None and not r, "no alert ever fired or was pending for the healthy services (%s)"
                   % ", ".join(CONTROL_SERVICES), err or "; ".join(fmt_labels(x["metric"]) for x in (r or [])))
    res.note(ok, "control services %s: %s" % (", ".join(CONTROL_SERVICES),
                                              "no alert ever pending or firing" if ok else "ALERTS found"))
    # TD refuses no probe of the stack outside injected faults: no drill injects a 400, so any of
    # these reasons means a request TD's documents would refuse (p13n codes 3000-3009).
    refused = "token_rejected|token_misconfigured|ip_not_allowed|invalid_event|origin_rejected|bad_request"
    seen, err1 = st.query('count(td_pz_probe_failures_total{reason=~"%s"})' % refused)
    r, err2 = st.query('sum by (pz_service, probe, reason) (increase(td_pz_probe_failures_total{reason=~"%s"}[1h])) > 0'
                       % refused)
    res.check(err1 is None and err2 is None and bool(seen) and not r,
              "no probe was refused by the simulator as TD would (%s)" % refused,
              err1 or err2 or ("no such series" if not seen else "; ".join(fmt_labels(x["metric"]) for x in r)))
    bad = [n for n in notes if n["receiver"] != n["body_receiver"]
           or RECEIVER.get(n["labels"].get("severity")) != n["receiver"]]
    res.check(not bad, "every notification (%d) went to the receiver of its severity" % len(notes),
              "; ".join("%s at %s" % (fmt_labels(n["labels"]), n["receiver"]) for n in bad[:5]))


def report(res, drills, queries, fallback_only, started, resolved_phase):
    print("\n================ e2e report ================")
    if queries:
        n = len(queries)
        half = n // 2
        print("dashboard queries: %d checked (%d panel queries x 2 variable sets); series with "
              "pz_service=.* / pz_service=product_recommendations:" % (n, half))
        for i in range(half):
            a, b = queries[i], queries[i + half]
            def cell(q):
                if not q.get("ok"):
                    return "FAIL"
                return "%d%s" % (q["series"], "*" if q["fallback"] else "")
            print("   %-5s %-5s %s / %s [%s]" % (cell(a), cell(b), a["dashboard"], a["panel"], a["refId"]))
        if fallback_only:
            print("   (*: only the query's `or on() vector(0)` fallback answered: a flat zero by design while "
                  "healthy)")
    for d in drills:
        print("drill %-13s %s" % (d["name"], d["title"]))
        for e in d["expects"]:
            def t(x, base):
                return ("%3.0fs" % (x - base)) if x else "  - "
            inj, clr = d["injected_at"], d.get("cleared_at") or time.time()
            if not resolved_phase:
                resolved = "skipped"
            elif not e.resolves:
                resolved = "not asserted (burn rate), %s" % ("still firing" if e.resolved_prom_at is None
                                                              else "resolved")
            elif e.kind == "arrive":
                resolved = "%s/%s" % (t(e.resolved_prom_at, clr), t(e.resolved_hook_at, clr))
            else:
                resolved = t(e.resolved_prom_at, clr)
            if e.kind == "arrive":
                print("   %-60s fired %s  arrived %s at %-6s  resolved %s" % (
                    e.name, t(e.fired_at, inj), t(e.arrived_at, inj),
                    (e.first_note["receiver"] if e.arrived_at else "-"), resolved))
            else:
                print("   %-60s fired %s  INHIBITED by %s: suppressed %s, %s  resolved %s" % (
                    e.name, t(e.fired_at, inj), e.by, t(e.suppressed_at, inj),
                    "delivered only after its source resolved" if e.late else "never delivered", resolved))
    print("(fired/arrived/suppressed: seconds after the injection; resolved: seconds after the clear, "
          "Prometheus/webhook)")
    for ok, line in res.summary:
        print("%s %s" % ("ok  " if ok else "FAIL", line))
    print("total time: %.0fs since scripts/e2e.sh started (the checks after the stack was up: %.0fs)"
          % (time.time() - started, time.time() - T0))
    if res.failures:
        print("failed assertions:")
        for f in res.failures:
            print("  - " + f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep target/e2e/run.* even when everything passed")
    ap.add_argument("--timeout", type=float, default=90, help="per wait for firing/arrival (s)")
    ap.add_argument("--resolve-timeout", type=float, default=420, help="after the last clear (s)")
    ap.add_argument("--only", default="", help="comma-separated drill names (default: all)")
    ap.add_argument("--no-resolve", action="store_true", help="skip the resolution phase (quick iteration)")
    a = ap.parse_args()
    started = T0
    os.makedirs(os.path.join(ROOT, "target", "e2e"), exist_ok=True)
    stack = Stack(tempfile.mkdtemp(prefix="run.", dir=os.path.join(ROOT, "target", "e2e")))
    stack.e2e(fast=True)
    st = Urls(stack)
    res = Results()
    with open(os.path.join(ROOT, "tests", "e2e", "drills.json"), encoding="utf-8") as f:
        drills = json.load(f)["drills"]
    with open(os.path.join(ROOT, "tests", "e2e", "baseline.json"), encoding="utf-8") as f:
        baseline = json.load(f)
    if a.only:
        names = a.only.split(",")
        unknown = set(names) - {d["name"] for d in drills}
        if unknown:
            ap.error("unknown drill(s): %s" % ", ".join(sorted(unknown)))
        drills = [d for d in drills if d["name"] in names]
    severities = rule_severities()

    print("== healthy data ==")
    queries, fallback_only = [], []
    for d in drills:
        d.setdefault("expects", [])
        d.setdefault("injected_at", time.time())
    try:
        run_all(st, res, a, drills, baseline, severities, queries, fallback_only)
    except Exception:  # report what was checked, and the crash as a failure
        import traceback
        res.fail("the checks themselves crashed", traceback.format_exc().strip().replace("\n", "\n      "))
    report(res, drills, queries, fallback_only, started, not a.no_resolve)
    print("e2e: %d passed, %d failed" % (res.passed, res.failed))
    stack.stop()
    if res.failed == 0 and not a.keep:
        shutil.rmtree(stack.work)
    else:
        print("e2e: logs, configs, webhook.jsonl and the Prometheus TSDB are in %s" % stack.work)
    return 0 if res.failed == 0 else 1


def run_all(st, res, a, drills, baseline, severities, queries, fallback_only):
    # One refused request (404), so that td_pz_bad_requests_total (exporter health dashboard, "Refused
    # requests") has a series, and a rate over two scrapes by the time the dashboards are checked.
    try:
        http(st.exporter + "/e2e-no-such-page")
    except urllib.error.HTTPError:
        pass
    if wait_healthy(st, res, a.timeout):
        q, f = check_dashboards(st, res, 30)
        queries += q
        fallback_only += f
        run_drills(st, res, drills, baseline, a.timeout, severities, queries)
        if not a.no_resolve:
            wait_resolved(st, res, drills, a.resolve_timeout)
            final_checks(st, res, drills, ran_all=not a.only)


if __name__ == "__main__":
    sys.exit(main())
