#!/usr/bin/env python3
"""Generate the td-pz-exporter Grafana dashboards.

The three dashboards under dashboards/ are written by this script and by nothing else; edit the panels
here, run it, and commit the regenerated JSON together with this file.

    python3 scripts/gen-dashboards.py            # (re)write dashboards/*.json
    python3 scripts/gen-dashboards.py --check    # exit 1 if the checked-in files differ from the output

Metric, label and recording-rule names come from docs/metrics.md; alert names (for the runbook links)
from alerts/td-pz-rules.yaml. Every panel query must be valid PromQL once the template variables are
filled in, and must return at least one series on a healthy installation (`scripts/lib/dashboards.py
queries` prints them, scripts/check-dashboards.sh parses every one): where "nothing" is the healthy
answer, the query falls back to `or on() vector(0)`.

Each dashboard is a list of panels in reading order: row(title) starts a new row, and the other builders
(stat, bar, ts, table) take the title, description, queries as (PromQL, legend) pairs and the unit, then
options. `alerts` names the alerts whose runbook sections the panel links to. Panels are packed left to
right into Grafana's 24-column grid in that order. Standard library only (python3 >= 3.9).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "dashboards"
JOB = "td-pz-exporter"  # the Prometheus job that scrapes the exporter

# Where docs/runbooks.md is published; links append "#<lowercased alert name>". The dashboards carry it
# in the hidden constant variable `runbook_url`, which can be changed in the dashboard settings after import.
DEFAULT_RUNBOOK_URL = "https://github.com/treasure-data-community/td-pz-exporter/blob/main/docs/runbooks.md"

# SLOs (keep in step with alerts/td-pz-rules.yaml and docs/runbooks.md).
AVAILABILITY_SLO = 0.995  # 99.5 % of probes pass
LATENCY_SLO_SECONDS = 0.5  # 99 % of completed probes under 0.5 s
LATENCY_SLO_TARGET = 0.99
AVAILABILITY_BUDGET = round(1 - AVAILABILITY_SLO, 6)  # the error budgets, as shares of probes
LATENCY_BUDGET = round(1 - LATENCY_SLO_TARGET, 6)
TD_RATE_LIMIT_RPS = 100  # the source design's figure per personalization service (not a TD document)
TRAFFIC_WARN_RPS = 80  # TdPzTrafficNearRateLimit
ERROR_RATE_WARN = 0.05  # TdPzErrorRateHigh
ERROR_RATE_CRIT = 0.15  # TdPzErrorRateCritical
POLLER_STALE_SECONDS = 180  # TdPzPollerStale
# The SLOs and alert thresholds as the dashed lines of time series panels.
AVAILABILITY_LINE = [(None, "red"), (AVAILABILITY_SLO, "transparent")]
LATENCY_LINE = [(None, "transparent"), (LATENCY_SLO_SECONDS, "red")]
ERROR_RATE_LINES = [(None, "transparent"), (ERROR_RATE_WARN, "orange"), (ERROR_RATE_CRIT, "red")]

DS = {"type": "prometheus", "uid": "${datasource}"}

# Label matchers filled by the template variables. Multi-value selections arrive as a regex `(a|b)`,
# "All" as `.*` (allValue), so every matcher is a regex match.
SVC = 'parent_segment=~"$parent_segment", pz_service=~"$pz_service"'
PROBE = SVC + ', probe=~"$probe"'
EXPORTER = 'job="%s"' % JOB
FIRING = 'ALERTS{alertstate="firing", alertname=~"TdPz.*", pz_service=~"$pz_service|"}'


# Panel builders. Key order matters: json.dumps keeps it, and --check compares bytes.
def runbook(alert: str) -> dict:
    return {"title": "Runbook: %s" % alert, "url": "${runbook_url}#%s" % alert.lower(), "targetBlank": True}


def target(expr: str, legend: str, ref: str, table: bool = False) -> dict:
    return {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend, "range": not table,
            "instant": table, "refId": ref, **({"format": "table"} if table else {})}


def quantiles(by: str, bucket: str, legend: str, qs=(0.5, 0.95, 0.99)) -> list:
    """One histogram_quantile query per quantile over 5m, legends "<legend> p50" etc."""
    return [("histogram_quantile(%g, sum by (%s, le) (rate(%s[5m])))" % (q, by, bucket),
             "%s p%d" % (legend, round(q * 100))) for q in qs]


def value_map(*triples) -> list:
    """triples: (value, text, color)."""
    return [{"type": "value",
             "options": {str(v): {"color": c, "index": i, "text": t} for i, (v, t, c) in enumerate(triples)}}]


def panel(kind: str, title: str, desc: str, specs: list, w: int, h: int, alerts: str, links: list | None,
          defaults: dict, options: dict, overrides: list | None = None) -> dict:
    """specs: (PromQL, legend) pairs, refIds A, B, ...; id and the grid's x, y are filled in by layout()."""
    tgts = [target(e, legend, chr(ord("A") + i), kind == "table") for i, (e, legend) in enumerate(specs)]
    return {"id": None, "type": kind, "title": title, "description": desc, "datasource": DS,
            "gridPos": {"h": h, "w": w}, "links": (links or []) + [runbook(a) for a in alerts.split()],
            "targets": tgts, "fieldConfig": {"defaults": defaults, "overrides": overrides or []}, "options": options}


def field_defaults(unit: str, color: str, th=None, mappings=None, minv=None, maxv=None, decimals=None,
                   custom=None) -> dict:
    """th: (value, color) pairs in ascending order, the first the base (value None)."""
    d = {"color": {"mode": color}, "mappings": mappings or [],
         "thresholds": {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in th or [(None, "green")]]},
         "unit": unit, "min": minv, "max": maxv, "decimals": decimals, "custom": custom}
    return {k: v for k, v in d.items() if v is not None}  # min, max, decimals, custom only where given


REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}
TS_CUSTOM = {"axisBorderShow": False, "axisCenteredZero": False, "axisColorMode": "text", "axisLabel": "",
             "axisPlacement": "auto", "barAlignment": 0, "drawStyle": "line", "fillOpacity": 10, "gradientMode": "none",
             "hideFrom": {"legend": False, "tooltip": False, "viz": False}, "insertNulls": False,
             "lineInterpolation": "linear", "lineWidth": 1, "pointSize": 4, "scaleDistribution": {"type": "linear"},
             "showPoints": "never", "spanNulls": False, "stacking": {"group": "A", "mode": "none"},
             "thresholdsStyle": {"mode": "off"}}


def ts(title, desc, specs, unit, *, w=12, h=8, th=None, dashed=None, stack=False, legend_table=False,
       minv=None, maxv=None, decimals=None, alerts="", overrides=None) -> dict:
    """A time series. dashed: thresholds drawn as dashed lines (th: thresholds only for colour)."""
    custom = {**TS_CUSTOM, "fillOpacity": 80 if stack else 10,
              "stacking": {"group": "A", "mode": "normal" if stack else "none"},
              "thresholdsStyle": {"mode": "dashed" if dashed else "off"}}
    return panel("timeseries", title, desc, specs, w, h, alerts, None,
                 field_defaults(unit, "palette-classic", dashed or th, None, minv, maxv, decimals, custom),
                 {"legend": {"calcs": ["lastNotNull", "max"] if legend_table else [],
                             "displayMode": "table" if legend_table else "list",
                             "placement": "bottom", "showLegend": True},
                  "tooltip": {"mode": "multi", "sort": "desc"}}, overrides)


def stat(title, desc, specs, unit, *, w=6, h=5, th=None, ok=None, mappings=None, minv=None, maxv=None,
         decimals=0, graph=False, color="background", alerts="") -> dict:
    """A stat. ok=(good, bad): the value 1 reads `good` on green, 0 reads `bad` on red."""
    if ok:
        mappings, th = value_map((1, ok[0], "green"), (0, ok[1], "red")), [(None, "red"), (1, "green")]
    return panel("stat", title, desc, specs, w, h, alerts, None,
                 field_defaults(unit, "thresholds", th, mappings, minv, maxv, decimals),
                 {"colorMode": color, "graphMode": "area" if graph else "none", "justifyMode": "auto",
                  "orientation": "auto", "percentChangeColorMode": "standard", "reduceOptions": REDUCE,
                  "showPercentChange": False, "textMode": "auto", "wideLayout": True})


def bar(title, desc, specs, unit, *, w=12, h=8, th=None, minv=None, maxv=None, decimals=None, alerts="") -> dict:
    """A horizontal bar gauge."""
    return panel("bargauge", title, desc, specs, w, h, alerts, None,
                 field_defaults(unit, "thresholds", th, None, minv, maxv, decimals),
                 {"displayMode": "gradient", "maxVizHeight": 300, "minVizHeight": 16, "minVizWidth": 8,
                  "namePlacement": "auto", "orientation": "horizontal", "reduceOptions": REDUCE,
                  "showUnfilled": True, "sizing": "auto", "valueMode": "color"})


def table(title, desc, expr, *, w=12, h=8, value_name="Value", hide=(), alerts="", links=None) -> dict:
    """An instant query as a table; hide: columns to drop besides Time."""
    p = panel("table", title, desc, [(expr, "__auto")], w, h, alerts, links,
              field_defaults("none", "thresholds", custom={"align": "auto", "cellOptions": {"type": "auto"},
                                                           "inspect": False}),
              {"cellHeight": "sm", "footer": {"countRows": False, "fields": [], "reducer": ["sum"],
                                              "show": False}, "frameIndex": 0, "showHeader": True})
    p["transformations"] = [{"id": "organize", "options": {
        "excludeByName": dict.fromkeys(["Time", *hide], True), "indexByName": {},
        "renameByName": {"Value": value_name}}}]
    return p


def row(title: str) -> dict:
    return {"collapsed": False, "gridPos": {"h": 1, "w": 24}, "id": None, "panels": [], "title": title, "type": "row"}


def layout(panels: list) -> list:
    """Numbers the panels and packs them left to right, wrapping when a line is full; a row is 24 wide."""
    x = y = line_height = 0
    for i, p in enumerate(panels, 1):
        pos = p["gridPos"]
        if x + pos["w"] > 24:
            x, y, line_height = 0, y + line_height, 0
        pos.update(x=x, y=y)
        p["id"] = i
        x, line_height = x + pos["w"], max(line_height, pos["h"])
    return panels


# Dashboard scaffolding: template variables, links, annotations.
def query_var(name: str, label: str, query: str, description: str) -> dict:
    return {"allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DS, "definition": query, "description": description, "hide": 0,
            "includeAll": True, "label": label, "multi": True, "name": name, "options": [],
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query"}


def templating(runbook_url: str) -> dict:
    url = {"selected": False, "text": runbook_url, "value": runbook_url}
    return {"list": [
        {"description": "The Prometheus that scrapes td-pz-exporter (job=\"%s\")." % JOB,
         "hide": 0, "includeAll": False, "label": "Data source", "multi": False, "name": "datasource",
         "options": [], "query": "prometheus", "refresh": 1, "regex": "", "skipUrlSync": False, "type": "datasource"},
        query_var("parent_segment", "Parent segment", "label_values(td_pz_schedule_skipped_total, parent_segment)",
                  "Parent segment id (empty for a p13n service configured without one)."),
        query_var("pz_service", "Service",
                  'label_values(td_pz_schedule_skipped_total{parent_segment=~"$parent_segment"}, pz_service)',
                  "Personalization service name."),
        query_var("probe", "Probe", 'label_values(td_pz_probe_success{%s}, probe)' % SVC,
                  "Probe (persona) name from the exporter config; only probe panels use it."),
        {"current": url, "description": "Base URL of docs/runbooks.md; runbook links append #<alert name, lowercased>.",
         "hide": 2, "label": "Runbook URL", "name": "runbook_url", "options": [{**url, "selected": True}],
         "query": runbook_url, "skipUrlSync": False, "type": "constant"}]}


ALERT_ANNOTATION = {"datasource": DS, "enable": True, "hide": False, "iconColor": "red", "name": "Firing TdPz alerts",
                    "tagKeys": "alertname,severity,pz_service,probe", "textFormat": "", "titleFormat": "{{alertname}}",
                    "target": {"expr": FIRING, "interval": "60s", "refId": "Anno"}, "useValueForTime": False}


def dashboard(uid: str, title: str, description: str, panels: list, runbook_url: str, annotations: list) -> dict:
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
               "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}
    links = [{"asDropdown": False, "icon": "external link", "includeVars": True, "keepTime": True, "tags": ["td-pz"],
              "targetBlank": False, "title": "TD personalization dashboards", "tooltip": "", "type": "dashboards",
              "url": ""},
             {"asDropdown": False, "icon": "doc", "includeVars": False, "keepTime": False, "tags": [],
              "targetBlank": True, "title": "Runbooks", "tooltip": "docs/runbooks.md: one section per TdPz* alert",
              "type": "link", "url": "${runbook_url}"}]
    return {"annotations": {"list": [builtin, *annotations]}, "description": description,
            "editable": True, "fiscalYearStartMonth": 0, "graphTooltip": 1, "id": None, "links": links,
            "liveNow": False, "panels": layout(panels), "refresh": "30s", "schemaVersion": 39,
            "tags": ["td-pz", "treasure-data", "personalization"], "templating": templating(runbook_url),
            "time": {"from": "now-6h", "to": "now"}, "timepicker": {}, "timezone": "browser",
            "title": title, "uid": uid, "version": 1, "weekStart": ""}


# Overview
def overview() -> list:
    return [
        row("SLOs"),
        stat("Availability (5m)", "Share of probes that passed every check over the last 5 minutes, per "
             "service (recording rule pz_service:td_pz_probe_availability:ratio_rate5m). SLO: %.1f%%."
             % (AVAILABILITY_SLO * 100),
             [("pz_service:td_pz_probe_availability:ratio_rate5m{%s}" % SVC, "{{pz_service}}")],
             "percentunit", w=8, decimals=2, minv=0, maxv=1, graph=True,
             th=[(None, "red"), (0.99, "orange"), (AVAILABILITY_SLO, "green")],
             alerts="TdPzProbeFailing TdPzAvailabilityBudgetBurnFast"),
        bar("SLO error budget remaining (3d)", "Error budget left over the last 3 days, per service: 1 - "
            "(error ratio / budget). Availability budget is %.1f%% failed probes (SLO %.1f%%), latency "
            "budget is %d%% of probes over %gs. 100%% = untouched, 0%% = spent, negative = overspent. Based "
            "on the recording rules pz_service:td_pz_probe_errors:ratio_rate3d and "
            "pz_service:td_pz_probe_slow:ratio_rate3d." % (AVAILABILITY_BUDGET * 100, AVAILABILITY_SLO * 100,
                                                           round(LATENCY_BUDGET * 100), LATENCY_SLO_SECONDS),
            [("1 - (pz_service:td_pz_probe_errors:ratio_rate3d{%s} / %g)" % (SVC, AVAILABILITY_BUDGET),
              "{{pz_service}} availability"),
             ("1 - (pz_service:td_pz_probe_slow:ratio_rate3d{%s} / %g)" % (SVC, LATENCY_BUDGET),
              "{{pz_service}} latency")], "percentunit", w=10, h=5, minv=0, maxv=1, decimals=1,
            th=[(None, "red"), (0.25, "orange"), (0.5, "green")],
            alerts="TdPzAvailabilityBudgetBurnSlow TdPzLatencyBudgetBurnSlow"),
        stat("Firing TdPz alerts", "Number of TdPz* alerts firing now (ALERTS from Prometheus; 0 when none). "
             "The table below lists them; each alert has a runbook section in docs/runbooks.md.",
             [("count(%s) or on() vector(0)" % FIRING, "firing")], "none", th=[(None, "green"), (1, "red")]),

        row("Availability and latency"),
        ts("Probe availability (5m)", "Share of probes that passed over a sliding 5m window, per service. "
           "The dashed line is the %.1f%% SLO; dips below it burn error budget." % (AVAILABILITY_SLO * 100),
           [("pz_service:td_pz_probe_availability:ratio_rate5m{%s}" % SVC, "{{pz_service}}")],
           "percentunit", maxv=1, decimals=2, dashed=AVAILABILITY_LINE,
           alerts="TdPzProbeFailing TdPzAvailabilityBudgetBurnFast"),
        ts("TD-reported error rate (5m avg)", "error_rate reported by each service's metrics endpoint (ratio "
           "0..1), averaged over 5m (recording rule pz_service:td_pz_service_error_rate:avg5m). Only "
           "services with a service_id in the config are polled. Lines: TdPzErrorRateHigh above %g%%, "
           "TdPzErrorRateCritical above %g%%." % (ERROR_RATE_WARN * 100, ERROR_RATE_CRIT * 100),
           [("pz_service:td_pz_service_error_rate:avg5m{%s}" % SVC, "{{pz_service}}")],
           "percentunit", minv=0, decimals=2, dashed=ERROR_RATE_LINES,
           alerts="TdPzErrorRateHigh TdPzErrorRateCritical"),
        ts("Probe latency p50 / p95 / p99 (5m)", "Client-side latency of completed probe requests, quantiles "
           "over 5m from the td_pz_probe_duration_seconds histogram (recording rules "
           "pz_service:td_pz_probe_duration_seconds:p50_5m/p95_5m/p99_5m). The dashed line is the %gs "
           "latency SLO threshold." % LATENCY_SLO_SECONDS,
           [("pz_service:td_pz_probe_duration_seconds:%s_5m{%s}" % (q, SVC), "{{pz_service}} %s" % q)
            for q in ("p50", "p95", "p99")], "s", minv=0, dashed=LATENCY_LINE,
           alerts="TdPzProbeLatencyHigh TdPzLatencyBudgetBurnFast"),
        ts("Probe failures by reason", "Failed probes per second by reason (the first check that failed: "
           "transport and status, then shape, then section, then outputs, then latency). On TD's p13n API "
           "the documented error code gives the reason: token_rejected, token_misconfigured, ip_not_allowed, "
           "invalid_event, origin_rejected (docs/runbooks.md has the table). A reason appears with its first "
           "failure, so a flat zero line is the healthy picture.",
           [("sum by (reason) (rate(td_pz_probe_failures_total{%s}[$__rate_interval])) or on() vector(0)" % PROBE,
             "{{reason}}")], "reqps", minv=0, stack=True,
           alerts="TdPzProbeFailing TdPzApiKeyRejected TdPzServiceNotFound TdPzServiceUnavailable "
                  "TdPzRateLimited TdPzWrongSection TdPzMissingOutputs"),

        row("Sections"),
        {**ts("Section share (logs) - $pz_service", "Share of each section among the service's log entries "
              "over the exporter's section_share_window (td_pz_section_share; the shares of one service sum "
              "to 1), stacked. One panel per selected service. A section's share moving away from its usual "
              "level raises TdPzSectionShareDrift (over 20 points against a day ago); `fallback` or "
              "`__other__` above half of the traffic raises TdPzFallbackShareHigh.",
              [("avg by (pz_service, section) (td_pz_section_share{%s})" % SVC, "{{section}}")],
              "percentunit", w=24, minv=0, maxv=1, stack=True, legend_table=True,
              alerts="TdPzSectionShareDrift TdPzFallbackShareHigh"),
         "repeat": "pz_service", "repeatDirection": "h", "maxPerRow": 2},

        row("Discovered in TD"),
        table("Services TD lists, by coverage", "What the last discovery of each parent segment found in TD "
              "(td_pz_discovered_services): covered by a configured service (name or service_id), not covered (nobody "
              "probes it; TdPzServicesNotCovered after 30m), on the ignore list, or refused (an id or name that could "
              "not be a path segment). The names are on the exporter's status page.",
              "sum by (parent_segment, coverage) "
              '(td_pz_discovered_services{parent_segment=~"$parent_segment"})',
              w=24, h=6, value_name="Services", alerts="TdPzServicesNotCovered"),

        row("Alerts"),
        table("Firing TdPz alerts", "TdPz* alerts firing now, from Prometheus' ALERTS series (exporter-wide "
              "alerts have an empty service). A single row with value 0 and no labels means nothing is "
              "firing. Runbooks: docs/runbooks.md#<alert name in lower case>.",
              "sum by (alertname, severity, parent_segment, pz_service, probe) (%s) or on() vector(0)"
              % FIRING, w=24, h=7, value_name="Firing",
              links=[{"title": "Runbooks", "url": "${runbook_url}", "targetBlank": True}]),
    ]


# Service detail
def service_detail() -> list:
    by_probe = "{{pz_service}} / {{probe}}"
    return [
        row("Probes (per persona)"),
        stat("Last probe result", "td_pz_probe_success: 1 (PASS) if the last probe of each persona passed "
             "every check (status, shape, section, outputs, latency), else 0 (FAIL).",
             [("td_pz_probe_success{%s}" % PROBE, by_probe)],
             "none", w=12, ok=("PASS", "FAIL"), alerts="TdPzProbeFailing"),
        stat("Last HTTP status", "td_pz_probe_http_status_code: HTTP status of each persona's last probe; 0 "
             "when no response came (timeout, connection or TLS error).",
             [("td_pz_probe_http_status_code{%s}" % PROBE, by_probe)],
             "none", w=12, mappings=value_map((0, "no response", "red")),
             th=[(None, "red"), (200, "green"), (300, "orange"), (400, "red")],
             alerts="TdPzApiKeyRejected TdPzServiceNotFound TdPzServiceUnavailable TdPzRateLimited"),
        ts("Probe success ratio (5m)", "Share of each persona's probes that passed over a sliding 5m window: passed "
           "probes / probes (td_pz_probe_successes_total, td_pz_probes_total). The dashed line is the %.1f%% "
           "availability SLO." % (AVAILABILITY_SLO * 100),
           [("sum by (pz_service, probe) (rate(td_pz_probe_successes_total{%s}[5m])) / "
             "sum by (pz_service, probe) (rate(td_pz_probes_total{%s}[5m]))" % (PROBE, PROBE), by_probe)],
           "percentunit", maxv=1, decimals=2, dashed=AVAILABILITY_LINE, alerts="TdPzProbeFailing"),
        ts("Probe failures by reason", "Failed probes per second, per persona and reason (a reason appears "
           "with its first failure; a flat zero when there was none).",
           [("sum by (pz_service, probe, reason) (rate(td_pz_probe_failures_total{%s}[$__rate_interval]))"
             " or on() vector(0)" % PROBE, "{{probe}} {{reason}}")],
           "reqps", minv=0, stack=True, alerts="TdPzProbeFailing TdPzWrongSection TdPzMissingOutputs"),
        ts("Last probe: client latency vs TD processing time", "Client-side latency of each persona's last probe "
           "(td_pz_probe_last_duration_seconds; a gap means no response) against the processing_time_ms TD reported in "
           "that response (td_pz_probe_server_processing_seconds, cdp services only). A wide gap is network or TLS "
           "time, not TD. The dashed line is the %gs latency SLO threshold." % LATENCY_SLO_SECONDS,
           [("td_pz_probe_last_duration_seconds{%s}" % PROBE, "{{probe}} client"),
            ("td_pz_probe_server_processing_seconds{%s}" % PROBE, "{{probe}} TD processing")],
           "s", minv=0, dashed=LATENCY_LINE, alerts="TdPzProbeLatencyHigh"),
        ts("Probe latency quantiles (5m)", "p50 / p95 / p99 of client-side probe latency per persona, from "
           "the td_pz_probe_duration_seconds histogram over 5m (completed requests only).",
           quantiles("pz_service, probe", "td_pz_probe_duration_seconds_bucket{%s}" % PROBE, "{{probe}}"),
           "s", minv=0, dashed=LATENCY_LINE, alerts="TdPzProbeLatencyHigh TdPzLatencyBudgetBurnFast"),

        row("Sections"),
        ts("Section share from logs", "Share of each section among the service's log entries over the "
           "section_share_window (td_pz_section_share), stacked; per service the shares sum to 1.",
           [("avg by (pz_service, section) (td_pz_section_share{%s})" % SVC, "{{pz_service}} {{section}}")],
           "percentunit", minv=0, stack=True, legend_table=True, alerts="TdPzSectionShareDrift TdPzFallbackShareHigh"),
        ts("Sections served to probes", "How many personas got each section on their last probe "
           "(td_pz_probe_section_info), stacked. A persona moving to another section shows as a step; "
           "compare with its expect_section.",
           [("count by (pz_service, section) (td_pz_probe_section_info{%s})" % PROBE,
             "{{pz_service}} {{section}}")], "short", minv=0, stack=True, decimals=0, alerts="TdPzWrongSection"),
        table("Last section per persona", "The section each persona got on its last probe (td_pz_probe_section_info, "
              "one row per persona). Compare with the persona's expect_section in the exporter config.",
              "td_pz_probe_section_info{%s}" % PROBE,
              hide=["__name__", "job", "instance", "Value"], alerts="TdPzWrongSection"),
        stat("Section matches expect_section", "td_pz_probe_section_match per persona: 1 (match) when the "
             "last probe's section equals the configured expect_section, 0 (mismatch) otherwise. Only "
             "personas with expect_section appear.",
             [("td_pz_probe_section_match{%s}" % PROBE, by_probe)],
             "none", w=12, h=8, ok=("match", "mismatch"), alerts="TdPzWrongSection"),

        row("Logs and TD API calls"),
        ts("Log volume by section", "Log entries per second seen by the logs poller, per section "
           "(td_pz_log_entries_total); sections beyond max_sections count as __other__.",
           [("sum by (pz_service, section) (rate(td_pz_log_entries_total{%s}[$__rate_interval]))" % SVC,
             "{{pz_service}} {{section}}")], "reqps", minv=0, stack=True),
        ts("Log errors and slow entries", "Log entries with an error status or field per second "
           "(td_pz_log_errors_total, left axis) and the share of log entries whose processing_time_ms is over 100 ms, "
           "TD's published p95 (td_pz_log_slow_entries_total / td_pz_log_entries_total, 5m, right axis).",
           [("sum by (pz_service) (rate(td_pz_log_errors_total{%s}[$__rate_interval]))" % SVC,
             "{{pz_service}} errors/s"),
            ("sum by (pz_service) (rate(td_pz_log_slow_entries_total{%s}[5m])) / "
             "sum by (pz_service) (rate(td_pz_log_entries_total{%s}[5m]))" % (SVC, SVC),
             "{{pz_service}} over 100 ms")], "reqps", minv=0, alerts="TdPzErrorRateHigh",
           # The second query is a share: give it its own unit and axis.
           overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                       "properties": [{"id": "unit", "value": "percentunit"},
                                      {"id": "custom.axisPlacement", "value": "right"}]}]),
        ts("TD API calls by endpoint and code", "Requests this exporter sent to TD per second "
           "(td_pz_api_requests_total), by endpoint (personalize, personalize_test, p13n, metrics, logs, "
           "discovery) and HTTP code (`error` = no response).",
           [("sum by (pz_service, endpoint, code) (rate(td_pz_api_requests_total{%s}[$__rate_interval]))"
             % SVC, "{{pz_service}} {{endpoint}} {{code}}")], "reqps", minv=0, stack=True,
           alerts="TdPzApiKeyRejected TdPzServiceNotFound TdPzServiceUnavailable"),
        ts("Rate-limit hits (HTTP 429)", "Responses with HTTP 429 from TD per second, by endpoint (0 when "
           "there were none), and probes that failed as rate_limited. The exporter honours Retry-After; "
           "persistent 429s mean the service's own traffic, or the account's (TD publishes 8,000 decisioning "
           "and 2,000 ingested events/s per account), is at its limit.",
           [('sum by (pz_service, endpoint) (rate(td_pz_api_requests_total{%s, code="429"}'
             '[$__rate_interval])) or on() vector(0)' % SVC, "{{pz_service}} {{endpoint}} 429"),
            ('sum by (pz_service, probe) (rate(td_pz_probe_failures_total{%s, reason="rate_limited"}'
             '[$__rate_interval])) or on() vector(0)' % PROBE, "{{pz_service}} {{probe}} rate_limited")],
           "reqps", minv=0, th=[(None, "transparent"), (0.001, "red")],
           alerts="TdPzRateLimited TdPzTrafficNearRateLimit"),

        row("TD-reported service metrics"),
        ts("TD-reported request rate", "requests_per_second from the service's metrics endpoint "
           "(td_pz_service_metric{field=\"requests_per_second\"}): the service's whole traffic, not only "
           "probes. The source design's figure (not a TD document) is %d requests/s per service (red line); "
           "TdPzTrafficNearRateLimit fires above %d (orange line)." % (TD_RATE_LIMIT_RPS, TRAFFIC_WARN_RPS),
           [('td_pz_service_metric{%s, field="requests_per_second"}' % SVC, "{{pz_service}}")],
           "reqps", minv=0, dashed=[(None, "transparent"), (TRAFFIC_WARN_RPS, "orange"), (TD_RATE_LIMIT_RPS, "red")],
           alerts="TdPzTrafficNearRateLimit"),
        ts("TD-reported error rate", "error_rate from the service's metrics endpoint "
           "(td_pz_service_error_rate, ratio 0..1). Lines: TdPzErrorRateHigh above %g%%, "
           "TdPzErrorRateCritical above %g%%." % (ERROR_RATE_WARN * 100, ERROR_RATE_CRIT * 100),
           [("td_pz_service_error_rate{%s}" % SVC, "{{pz_service}}")], "percentunit", minv=0, decimals=2,
           dashed=ERROR_RATE_LINES, alerts="TdPzErrorRateHigh TdPzErrorRateCritical"),
        ts("TD-reported latency", "p50 / p95 / p99 and mean latency from the service's metrics endpoint "
           "(td_pz_service_latency_seconds, label stat), i.e. TD's view of its own processing time.",
           [("td_pz_service_latency_seconds{%s}" % SVC, "{{pz_service}} {{stat}}")], "s", minv=0),
        table("TD-reported metrics (all fields)", "Every other numeric field of the metrics endpoint's "
              "response (td_pz_service_metric, label field = dotted path, e.g. cache.hit_ratio, "
              "total_requests, error_count). Fields TD stops sending disappear here too.",
              "td_pz_service_metric{%s}" % SVC, value_name="value", hide=["__name__", "job", "instance"]),
    ]


# Exporter health
def exporter_health() -> list:
    return [
        row("Exporter"),
        stat("Exporter up", "Whether Prometheus could scrape td-pz-exporter (up{job=\"%s\"}) per instance."
             % JOB, [("up{%s}" % EXPORTER, "{{instance}}")],
             "none", w=4, ok=("UP", "DOWN"), alerts="TdPzExporterDown TdPzExporterAbsent"),
        stat("Config loaded", "td_pz_config_last_reload_successful: 1 (OK) if the last load or reload of the "
             "configuration succeeded; on a failed reload the exporter keeps running with the previous configuration.",
             [("td_pz_config_last_reload_successful", "{{instance}}")],
             "none", w=4, ok=("OK", "FAILED"), alerts="TdPzConfigReloadFailed"),
        stat("Since last successful config load",
             "time() - td_pz_config_last_reload_success_timestamp_seconds: age of the configuration in use.",
             [("time() - td_pz_config_last_reload_success_timestamp_seconds", "{{instance}}")],
             "s", w=4, color="value", alerts="TdPzConfigReloadFailed"),
        stat("Uptime", "Time since the exporter process started (time() - process_start_time_seconds).",
             [("time() - process_start_time_seconds{%s}" % EXPORTER, "{{instance}}")],
             "s", w=4, color="value", th=[(None, "orange"), (600, "green")]),
        table("Build info", "td_pz_exporter_build_info: the version and revision of each running exporter.",
              "td_pz_exporter_build_info", w=8, h=5, hide=["__name__", "Value"]),

        row("Polls and schedule"),
        ts("Poll duration p50 / p95 / p99 by poller (5m)", "Time one poll took (all its requests, retries "
           "included), per poller, from the td_pz_poll_duration_seconds histogram (by poller, across "
           "services: it has no service label). A poll near its schedule interval leads to skipped runs.",
           quantiles("poller", "td_pz_poll_duration_seconds_bucket", "{{poller}}"),
           "s", minv=0, alerts="TdPzScheduleSkipping"),
        ts("Poll failures by poller and reason", "Failed polls per second (td_pz_poll_failures_total) by "
           "poller and reason; a reason appears with its first failure.",
           [("sum by (poller, reason) (rate(td_pz_poll_failures_total{%s}[$__rate_interval])) or on() vector(0)" % SVC,
             "{{poller}} {{reason}}")], "reqps", minv=0, stack=True, alerts="TdPzProbeFailing TdPzApiKeyRejected"),
        bar("Since last successful poll", "time() - td_pz_poll_last_success_timestamp_seconds per service "
            "and poller. Probes run every 30s and metrics every minute by default; TdPzPollerStale fires "
            "when the probe, metrics or logs poller has not succeeded for %ds (red)." % POLLER_STALE_SECONDS,
            [("time() - td_pz_poll_last_success_timestamp_seconds{%s}" % SVC, "{{pz_service}} {{poller}}")],
            "s", decimals=0, minv=0, maxv=900, alerts="TdPzPollerStale",
            th=[(None, "green"), (POLLER_STALE_SECONDS / 2, "orange"), (POLLER_STALE_SECONDS, "red")]),
        ts("Polls and skipped runs", "Polls run per second by poller (td_pz_polls_total; probes: td_pz_probes_total) "
           "and runs skipped because the previous run of the same job was still going (td_pz_schedule_skipped_total, "
           "red). Skips mean a job takes longer than its schedule interval.",
           [("sum by (poller) (rate(td_pz_polls_total{%s}[$__rate_interval])) or label_replace(sum "
             "(rate(td_pz_probes_total{%s}[$__rate_interval])), \"poller\", \"probe\", \"\", \"\")"
             % (SVC, SVC), "{{poller}} polls"),
            ("sum by (poller) (rate(td_pz_schedule_skipped_total{%s}[$__rate_interval]))" % SVC,
             "{{poller}} skipped")], "ops", minv=0, alerts="TdPzScheduleSkipping",
           overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                       "properties": [{"id": "color", "value": {"fixedColor": "red", "mode": "fixed"}}]}]),
        ts("Scheduler lateness p50 / p99 (5m)", "How late jobs started against their cron time, jitter "
           "excluded (td_pz_scheduler_lateness_seconds). Growing lateness means the exporter is starved of "
           "CPU or its runtime is blocked.",
           quantiles("poller", "td_pz_scheduler_lateness_seconds_bucket", "{{poller}}", (0.5, 0.99)),
           "s", minv=0, dashed=[(None, "transparent"), (1, "orange")], alerts="TdPzScheduleSkipping"),

        row("Scrape cost and process"),
        ts("Scrape duration", "How long Prometheus took to scrape the exporter "
           "(scrape_duration_seconds{job=\"%s\"})." % JOB,
           [("scrape_duration_seconds{%s}" % EXPORTER, "{{instance}}")],
           "s", minv=0, dashed=[(None, "transparent"), (1, "orange")], alerts="TdPzExporterDown"),
        ts("Samples per scrape", "Samples the exporter exposes per scrape (scrape_samples_scraped) and new "
           "series in the last scrape (scrape_series_added). Growth tracks services x probes x reasons and "
           "sections (capped by max_sections).",
           [("scrape_samples_scraped{%s}" % EXPORTER, "{{instance}} samples"),
            ("scrape_series_added{%s}" % EXPORTER, "{{instance}} new series")], "short", minv=0),
        ts("Resident memory", "Resident memory of the exporter process (process_resident_memory_bytes).",
           [("process_resident_memory_bytes{%s}" % EXPORTER, "{{instance}}")], "bytes", minv=0),
        ts("CPU", "CPU used by the exporter process (rate of process_cpu_seconds_total); 100% = one core.",
           [("rate(process_cpu_seconds_total{%s}[$__rate_interval])" % EXPORTER, "{{instance}}")],
           "percentunit", minv=0),
        ts("Open file descriptors", "Open file descriptors of the exporter process against its limit "
           "(process_open_fds, process_max_fds): a leak of connections shows here first.",
           [("process_open_fds{%s}" % EXPORTER, "{{instance}} open"),
            ("process_max_fds{%s}" % EXPORTER, "{{instance}} max")], "short", minv=0),
        ts("Refused requests and section overflow", "HTTP requests to the exporter it refused, by reason "
           "(td_pz_bad_requests_total: method, not_found, unauthorized), and log entries folded into "
           "section=\"__other__\" by the max_sections cap (td_pz_sections_overflow_total). Both 0 when healthy.",
           [("sum by (reason) (rate(td_pz_bad_requests_total[$__rate_interval])) or on() vector(0)",
             "refused {{reason}}"),
            ("sum by (pz_service) (rate(td_pz_sections_overflow_total{%s}[$__rate_interval])) "
             "or on() vector(0)" % SVC, "overflow {{pz_service}}")], "reqps", minv=0),
    ]


DASHBOARDS = [  # file, uid, title, description, panels, annotations
    ("overview.json", "td-pz-overview", "TD Personalization / Overview",
     "Every Treasure Data real-time personalization service at a glance: availability, TD error rate, "
     "probe latency, sections, failures, SLO budget and firing alerts.", overview, [ALERT_ANNOTATION]),
    ("service-detail.json", "td-pz-service", "TD Personalization / Service detail",
     "One personalization service in depth: per-persona probes, sections from logs and probes, log "
     "volume, TD API calls and TD-reported metrics. Pick the service and probes above.",
     service_detail, [ALERT_ANNOTATION]),
    ("exporter-health.json", "td-pz-exporter", "TD Personalization / Exporter health",
     "td-pz-exporter itself: polls, schedule, configuration, scrape cost and the process.", exporter_health, []),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if dashboards/*.json differ from the generated output")
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="default: %(default)s")
    ap.add_argument("--runbook-url", default=DEFAULT_RUNBOOK_URL,
                    help="base URL of docs/runbooks.md (default: %(default)s); --check compares against the same value")
    args = ap.parse_args()

    stale = []
    for name, uid, title, description, panels, board_annotations in DASHBOARDS:
        path = args.out_dir / name
        board = dashboard(uid, title, description, panels(), args.runbook_url, board_annotations)
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                stale.append(name)
                diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), str(path),
                                                 "generated", lineterm="", n=1))
                shown = diff[:40] + (["..."] if len(diff) > 40 else [])
                print("\n".join("  " + line for line in shown), file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print("wrote %s" % path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)
    if stale:
        print("gen-dashboards: out of date: %s; run python3 scripts/gen-dashboards.py"
              % ", ".join(stale), file=sys.stderr)
        return 1
    if args.check:
        print("gen-dashboards: %d dashboards up to date" % len(DASHBOARDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
