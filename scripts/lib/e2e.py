#!/usr/bin/env python3
"""The end-to-end test (scripts/e2e.sh; docs/e2e.md): starts the e2e stack (scripts/lib/stack.py) and asserts
  1. healthy data: every probe passes, the recording rules and td_pz_section_share exist for every service
  2. every dashboard query returns a series, with the variables at `.*` and at pz_service=product_recommendations
  3. the drills of tests/e2e/drills.json, all at once on their own services: fired in Prometheus, shown in the
     overview's alert table, delivered to the right receiver with the right labels; inhibited alerts fired,
     suppressed in Alertmanager by their source and not delivered; then each drill is cleared. The panels
     that were only their `or on() vector(0)` fallback while healthy (failures, alerts) show the drills' data
  4. every alert of step 3 resolves in Prometheus, and every delivered one arrives again as resolved
  5. nothing else was delivered, nothing ever fired for the healthy services, no probe was refused as TD
     would refuse it, inhibited alerts never arrived while their source fired, nor at the pager after it
Prints `ok`/`FAIL` per assertion, a report, and `e2e: N passed, M failed`; exits 1 if anything failed.

    e2e.py [--keep] [--only=DRILL,...] [--no-resolve] [--timeout=SECONDS] [--resolve-timeout=SECONDS]
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
import traceback
import urllib.error
import urllib.parse

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
        self.st, self.u, self.skip = st, st.urls, 0

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

    def records(self):
        """What the fakes received after their self-check: t, api, code, errors, body."""
        with open(self.st.notes_log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.endswith("\n")][self.skip:]

    def notifications(self):
        """Every alert of every notification: t, receiver (pager: PagerDuty, chat: Slack), status, labels (the
        `Labels (status): ...` line of each alert, alerts/td-pz.tmpl), rec (the request)."""
        out = []
        for r in self.records():
            b = r["body"] if isinstance(r["body"], dict) else {}
            text = "\n".join([a.get("text") or "" for a in b.get("attachments") or []]
                             + list(((b.get("payload") or {}).get("custom_details") or {}).values()))
            out += [{"t": r["t"], "receiver": {"pagerduty": "pager", "slack": "chat"}[r["api"]], "status": status,
                     "labels": dict(kv.split("=", 1) for kv in pairs.split(", ")), "rec": r}
                    for status, pairs in re.findall(r"Labels \((firing|resolved)\): ([^\n`]+)", text)]
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
    print("last notifications (%d in all):" % len(notes))
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
    # The panels that only had their `or on() vector(0)` while healthy (failures, alerts) show the drills
    quiet, shown = [q for q in queries if q.get("fallback") and q["vars"] == "all=.*"], set()
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
        shown |= {i for i, q in enumerate(quiet) if i not in shown and env.query(q["expr"][:-len(FALLBACK)])[0]}
        now = time.time()
        for d in [d for d in drills if d["status"] == "running"]:
            for e in d["expects"]:
                if e.fired_at is None and any(matches(a["labels"], e.want) for a in prom):
                    e.fired_at, e.ann = now, next(a["annotations"] for a in prom if matches(a["labels"], e.want))
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
    for i, q in enumerate(quiet):
        res.check(i in shown, "dashboard %s / %s [%s] showed the drills' data, not only its fallback"
                  % (q["dashboard"], q["panel"], q["refId"]), "expr: " + q["expr"])
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
            ok &= res.check(e.arrived_at is not None, p + " arrives at its receiver", after(e.arrived_at))
            if e.arrived_at:
                n = e.first_note
                ok &= res.check(n["receiver"] == e.receiver, p + " goes to receiver %s (severity %s)" % (
                    e.receiver, e.severity), "got %s" % n["receiver"])
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
                say("  resolved notification at the receiver: %s" % e.name)
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
                res.check(e.resolved_hook_at is not None, p + " arrives as resolved at its receiver",
                          since(e.resolved_hook_at) if e.resolved_hook_at else "none %ds after the clear" % timeout)
    if waiting():
        diagnose(env, why="alerts did not resolve")


def check_fakes(env, res):
    """The fakes refuse what PagerDuty and Slack refuse, or they could accept anything: one bad payload each."""
    bad_event = {"routing_key": "e2e", "event_action": "page", "payload": {"summary": "x" * 1025}}  # 6 errors
    for name, path, body, want in (("PagerDuty", "/v2/enqueue", bad_event, 6),
                                   ("Slack", "/services/T0E2E/B0E2E/e2e", {"attachments": []}, "no_text")):
        try:
            code, answer = 200, http(env.u["fakes"] + path, body)
        except urllib.error.HTTPError as e:
            code, answer = e.code, e.read().decode()
        got = len(json.loads(answer)["errors"]) if code == 400 and name == "PagerDuty" else answer
        res.check(code == 400 and got == want, "the %s fake refuses an invalid payload" % name, "%d %s" % (code, answer))
    env.skip = len(env.records())


def check_payloads(env, res, drills):
    """What PagerDuty and Slack were sent: every request accepted, every trigger resolved under its dedup_key,
    and for each delivered alert the fields a person reads (alerts/td-pz.tmpl)."""
    print("\n== PagerDuty and Slack payloads ==")
    recs, notes = env.records(), env.notifications()
    pd = [r["body"] for r in recs if r["api"] == "pagerduty"]
    res.check(pd and all(r["code"] in (200, 202) for r in recs), "the fakes accepted every notification (%d PagerDuty "
              "events, %d Slack messages)" % (len(pd), len(recs) - len(pd)), "; ".join(str(r) for r in recs if r["code"] > 202))
    left = {b["dedup_key"] for b in pd if b["event_action"] == "trigger"} - {
        b["dedup_key"] for b in pd if b["event_action"] == "resolve"}
    res.check(not left, "every PagerDuty trigger was resolved under its dedup_key", " ".join(left))
    for d, e in [(d, e) for d in drills for e in d["expects"] if e.kind == "arrive" and e.arrived_at]:
        bodies = lambda s, want: [n["rec"]["body"] for n in notes if n["status"] == s  # noqa: E731
                                  and n["receiver"] == e.receiver and matches(n["labels"], want)] or [{}]
        # the first message with the alert, and its group's last (group_by has no probe: a persona resolved
        # while another still fails is listed in a [FIRING] message, the group's end is [RESOLVED])
        group = {k: v for k, v in e.want.items() if k != "probe"}
        fired, done = bodies("firing", e.want)[0], bodies("resolved", group)[-1]
        title = lambda t: t.startswith("[FIRING:") and all(x in t for x in e.want.values())  # noqa: E731
        page = env.u["exporter"] + "/target?id=" + urllib.parse.quote("probe/%s/%s/%s" % (
            d["parent_segment"], d["service"], e.want.get("probe", "")), safe="")
        status = lambda urls: any(u.startswith(page) and d["service"] in env.get(u, "") for u in urls)  # noqa: E731
        if e.receiver == "pager":
            p, links = fired.get("payload") or {}, [x["href"] for x in fired.get("links") or []]
            fields = {"summary": title(p.get("summary", "")), "severity": p.get("severity") == "critical",
                      "do_now (the runbook step)": (p.get("custom_details") or {}).get("do_now") == e.ann["runbook_step"],
                      "links (runbook, dashboard, status page)": links[:2] == [e.ann["runbook_url"], e.ann["dashboard_url"]]
                      and status(links[2:])}
        else:
            a, r = [(x.get("attachments") or [{}])[0] for x in (fired, done)]
            fields = {"title and its runbook link": title(a.get("title", "")) and a.get("title_link") == e.ann["runbook_url"],
                      "text (the runbook step, runbook, dashboard and status page links)": "*Do now:* %s\n<%s|Runbook> · <%s|"
                      "Dashboard>" % (e.ann["runbook_step"], e.ann["runbook_url"], e.ann["dashboard_url"]) in a.get("text", "")
                      and status(re.findall(r"<([^|>]+)\|Status page>", a.get("text", ""))),
                      "the resolved message": r.get("title", "").startswith("[RESOLVED]") and r.get("color") == "good"}
        bad = [k for k, ok in fields.items() if not ok]
        res.check(not bad, "drill %s: %s: %s: %s" % (d["name"], e.name, "PagerDuty" if e.receiver == "pager" else "Slack",
                                                      ", ".join(fields)), bad and "wrong: " + ", ".join(bad))


def final_checks(env, res, drills, ran_all):
    print("\n== whole run ==")
    notes, late_ok = env.notifications(), []
    for d in drills:
        for e in [e for e in d["expects"] if e.kind == "inhibited"]:
            # when the inhibition source stopped firing (resolved at the receiver, or in Prometheus)
            ends = [t for src in d["expects"] if src.alertname == e.by for t in [src.resolved_prom_at] + [
                n["t"] for n in notes if n["status"] == "resolved" and matches(n["labels"], src.want)] if t]
            end = min(ends) if ends else None
            got = [n for n in notes if matches(n["labels"], e.want)]
            early = [n for n in got if end is None or n["t"] < end - 2]
            e.late = [n for n in got if n not in early]
            late_ok += e.late
            ok = res.check(not early, "drill %s: %s never reached a receiver while %s was firing" % (d["name"], e.name, e.by),
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
    # A stall of the whole machine (Prometheus missing its own 2 s scrapes too) makes every job skip runs, and
    # TdPzScheduleSkipping say so for every service: that is the exporter telling the truth, not a drill leaking.
    ups, _ = env.query('up{job="td-pz-exporter"}[1h]')
    times = sorted(float(t) for x in ups or [] for t, _ in x["values"])
    stall = max([b - a for a, b in zip(times, times[1:])] or [0.0])
    if r and stall > 6 and all(x["metric"]["alertname"] == "TdPzScheduleSkipping" for x in r):
        say("  the machine stalled: no scrape for %.0f s; TdPzScheduleSkipping for %s is that stall's" % (
            stall, ", ".join(x["metric"]["pz_service"] for x in r)))
        r = []
    ok = res.check(err is None and not r, "no alert ever fired or was pending for the healthy services (%s)"
                   % ", ".join(CONTROL_SERVICES), err or "; ".join(fmt(x["metric"]) for x in (r or [])))
    res.summary.append((ok, "control services: %s" % ("no alert ever pending or firing" if ok else "ALERTS found")))
    # No drill injects a 400: any of these reasons is a request TD's documents would refuse (p13n 3000-3009).
    refused = "token_rejected|token_misconfigured|ip_not_allowed|invalid_event|origin_rejected|bad_request"
    # A reason's series appears with its first failure (issue 18): none may exist, while probes did pass.
    seen, err1 = env.query('count(td_pz_probe_successes_total > 0)')
    r, err2 = env.query('count by (pz_service, probe, reason) (td_pz_probe_failures_total{reason=~"%s"})' % refused)
    res.check(not (err1 or err2) and bool(seen) and not r, "no probe was refused by the simulator as TD would (%s)" % refused,
              err1 or err2 or ("no probe passed" if not seen else "; ".join(fmt(x["metric"]) for x in r)))
    bad = [n for n in notes if RECEIVER.get(n["labels"].get("severity")) != n["receiver"]]
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
    print("(fired/arrived/suppressed: seconds after the injection; resolved: after the clear, Prometheus/receiver)")
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
        check_fakes(env, res)
        # One refused request (404), so that td_pz_bad_requests_total has a series for the dashboards.
        env.get(env.u["exporter"] + "/e2e-no-such-page", None)
        if wait_healthy(env, res, a.timeout):
            queries = check_dashboards(env, res, 30)
            run_drills(env, res, drills, baseline, a.timeout, severities, queries)
            if not a.no_resolve:
                wait_resolved(env, res, drills, a.resolve_timeout)
                check_payloads(env, res, drills)
                final_checks(env, res, drills, ran_all=not a.only)
    except Exception:  # report what was checked, and the crash as a failure
        res.check(False, "the checks themselves crashed", traceback.format_exc().strip().replace("\n", "\n      "))
    report(res, drills, queries, not a.no_resolve)
    print("e2e: %d passed, %d failed" % (res.passed, len(res.failures)))
    st.stop()
    if res.failures or a.keep:
        print("e2e: logs, configs, notifications.jsonl and the Prometheus TSDB are in %s" % st.work)
    else:
        shutil.rmtree(st.work)
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
