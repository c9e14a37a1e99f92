#!/usr/bin/env python3
"""Generate the td-pz-exporter Grafana dashboards.

The three dashboards under dashboards/ are written by this script and by nothing else; edit the panels
here, run it, and commit the regenerated JSON together with this file.

    python3 scripts/gen-dashboards.py            # (re)write dashboards/*.json
    python3 scripts/gen-dashboards.py --check    # exit 1 if the checked-in files differ from the output

Metric, label and recording-rule names come from docs/metrics.md; alert names (for the runbook links)
from alerts/td-pz-rules.yaml. Every panel query must be valid PromQL once the template variables are
filled in, and must return at least one series on a healthy installation (scripts/dashboard-queries.py
prints them and the end-to-end test runs every one against Prometheus): where "nothing" is the healthy
answer, the query falls back to `or on() vector(0)`.

Standard library only (python3 >= 3.9).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "dashboards"

SCHEMA_VERSION = 39
JOB = "td-pz-exporter"  # the Prometheus job that scrapes the exporter
TAGS = ["td-pz", "treasure-data", "personalization"]

# Where docs/runbooks.md is published; links append "#<lowercased alert name>". The dashboards carry it
# in the hidden constant variable `runbook_url`, which can be changed in the dashboard settings after import.
DEFAULT_RUNBOOK_URL = "https://github.com/treasure-data-community/td-pz-exporter/blob/main/docs/runbooks.md"

# SLOs (keep in step with alerts/td-pz-rules.yaml and docs/runbooks.md).
AVAILABILITY_SLO = 0.995  # 99.5 % of probes pass
LATENCY_SLO_SECONDS = 0.5  # 99 % of completed probes under 0.5 s
LATENCY_SLO_TARGET = 0.99
TD_RATE_LIMIT_RPS = 100  # the source design's figure per personalization service (not a TD document)
TRAFFIC_WARN_RPS = 80  # TdPzTrafficNearRateLimit
ERROR_RATE_WARN = 0.05  # TdPzErrorRateHigh
ERROR_RATE_CRIT = 0.15  # TdPzErrorRateCritical
POLLER_STALE_SECONDS = 180  # TdPzPollerStale

DS = {"type": "prometheus", "uid": "${datasource}"}

# Label matchers filled by the template variables. Multi-value selections arrive as a regex `(a|b)`,
# "All" as `.*` (allValue), so every matcher is a regex match.
SVC = 'parent_segment=~"$parent_segment", pz_service=~"$pz_service"'
PROBE = SVC + ', probe=~"$probe"'
EXPORTER = 'job="%s"' % JOB


def runbook(alert: str) -> dict:
    return {
        "title": "Runbook: %s" % alert,
        "url": "${runbook_url}#%s" % alert.lower(),
        "targetBlank": True,
    }


# --------------------------------------------------------------------------------------------------
# Panel builders


class Layout:
    """Packs panels left to right into a 24-column grid, wrapping to a new line when full."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.line_height = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.newline()
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.line_height = max(self.line_height, h)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def take_id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i


def target(expr: str, legend: str = "__auto", ref: str = "A", instant: bool = False,
           table: bool = False) -> dict:
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "refId": ref,
    }
    if table:
        t["format"] = "table"
    return t


def targets(*specs) -> list:
    """specs: (expr, legend) pairs; refIds A, B, C, ..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(specs)]


def steps(*pairs) -> dict:
    """pairs: (value or None, color) in ascending order; the first must be the base (None)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}


GREEN_ONLY = steps((None, "green"))


def field_defaults(unit: str, thresholds: dict | None, minv=None, maxv=None, decimals=None,
                   mappings: list | None = None, custom: dict | None = None,
                   color_mode: str = "palette-classic") -> dict:
    d = {
        "color": {"mode": color_mode},
        "mappings": mappings or [],
        "thresholds": thresholds or GREEN_ONLY,
        "unit": unit,
    }
    if minv is not None:
        d["min"] = minv
    if maxv is not None:
        d["max"] = maxv
    if decimals is not None:
        d["decimals"] = decimals
    if custom is not None:
        d["custom"] = custom
    return d


def base_panel(lay: Layout, kind: str, title: str, description: str, w: int, h: int,
               tgts: list, links: list | None) -> dict:
    return {
        "id": lay.take_id(),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": lay.place(w, h),
        "links": links or [],
        "targets": tgts,
    }


def timeseries(lay: Layout, title: str, description: str, tgts: list, unit: str, *, w: int = 12,
               h: int = 8, thresholds: dict | None = None, threshold_style: str = "off",
               stack: bool = False, minv=None, maxv=None, decimals=None, links=None,
               fill: int = 10, bars: bool = False, legend_table: bool = False) -> dict:
    p = base_panel(lay, "timeseries", title, description, w, h, tgts, links)
    custom = {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        "barAlignment": 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if stack and not bars else (100 if bars else fill),
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 4,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": threshold_style},
    }
    p["fieldConfig"] = {
        "defaults": field_defaults(unit, thresholds, minv, maxv, decimals, custom=custom),
        "overrides": [],
    }
    p["options"] = {
        "legend": {
            "calcs": ["lastNotNull", "max"] if legend_table else [],
            "displayMode": "table" if legend_table else "list",
            "placement": "bottom",
            "showLegend": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return p


def stat(lay: Layout, title: str, description: str, tgts: list, unit: str, *, w: int = 6,
         h: int = 5, thresholds: dict | None = None, mappings: list | None = None, minv=None,
         maxv=None, decimals=None, links=None, color_mode: str = "background",
         graph: bool = True) -> dict:
    p = base_panel(lay, "stat", title, description, w, h, tgts, links)
    p["fieldConfig"] = {
        "defaults": field_defaults(unit, thresholds, minv, maxv, decimals, mappings,
                                   color_mode="thresholds"),
        "overrides": [],
    }
    p["options"] = {
        "colorMode": color_mode,
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": "auto",
        "wideLayout": True,
    }
    return p


def bargauge(lay: Layout, title: str, description: str, tgts: list, unit: str, *, w: int = 12,
             h: int = 8, thresholds: dict | None = None, minv=None, maxv=None, decimals=None,
             links=None) -> dict:
    p = base_panel(lay, "bargauge", title, description, w, h, tgts, links)
    p["fieldConfig"] = {
        "defaults": field_defaults(unit, thresholds, minv, maxv, decimals, color_mode="thresholds"),
        "overrides": [],
    }
    p["options"] = {
        "displayMode": "gradient",
        "maxVizHeight": 300,
        "minVizHeight": 16,
        "minVizWidth": 8,
        "namePlacement": "auto",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "sizing": "auto",
        "valueMode": "color",
    }
    return p


def table(lay: Layout, title: str, description: str, expr: str, *, w: int = 12, h: int = 8,
          unit: str = "none", value_name: str = "Value", hide: list | None = None,
          thresholds: dict | None = None, mappings: list | None = None, links=None) -> dict:
    p = base_panel(lay, "table", title, description, w, h,
                   [target(expr, "__auto", "A", instant=True, table=True)], links)
    p["fieldConfig"] = {
        "defaults": field_defaults(unit, thresholds, mappings=mappings, color_mode="thresholds",
                                   custom={"align": "auto", "cellOptions": {"type": "auto"},
                                           "inspect": False}),
        "overrides": [],
    }
    p["options"] = {
        "cellHeight": "sm",
        "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
        "showHeader": True,
    }
    exclude = {"Time": True}
    for name in hide or []:
        exclude[name] = True
    p["transformations"] = [{
        "id": "organize",
        "options": {"excludeByName": exclude, "indexByName": {}, "renameByName": {"Value": value_name}},
    }]
    return p


def row(lay: Layout, title: str) -> dict:
    lay.newline()
    p = {
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": lay.y},
        "id": lay.take_id(),
        "panels": [],
        "title": title,
        "type": "row",
    }
    lay.y += 1
    return p


def value_map(pairs) -> list:
    """pairs: (value, text, color)."""
    return [{
        "type": "value",
        "options": {str(v): {"color": c, "index": i, "text": t} for i, (v, t, c) in enumerate(pairs)},
    }]


# --------------------------------------------------------------------------------------------------
# Dashboard scaffolding


def query_var(name: str, label: str, query: str, description: str) -> dict:
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DS,
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def templating(runbook_url: str) -> dict:
    return {"list": [
        {
            "current": {},
            "description": "The Prometheus that scrapes td-pz-exporter (job=\"%s\")." % JOB,
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        query_var("parent_segment", "Parent segment",
                  "label_values(td_pz_polls_total, parent_segment)",
                  "Parent segment id (empty for a p13n service configured without one)."),
        query_var("pz_service", "Service",
                  'label_values(td_pz_polls_total{parent_segment=~"$parent_segment"}, pz_service)',
                  "Personalization service name."),
        query_var("probe", "Probe",
                  'label_values(td_pz_probe_success{parent_segment=~"$parent_segment", '
                  'pz_service=~"$pz_service"}, probe)',
                  "Probe (persona) name from the exporter config; only probe panels use it."),
        {
            "current": {"selected": False, "text": runbook_url, "value": runbook_url},
            "description": "Base URL of docs/runbooks.md; runbook links append #<alert name, lowercased>.",
            "hide": 2,
            "label": "Runbook URL",
            "name": "runbook_url",
            "options": [{"selected": True, "text": runbook_url, "value": runbook_url}],
            "query": runbook_url,
            "skipUrlSync": False,
            "type": "constant",
        },
    ]}


def dashboard(uid: str, title: str, description: str, panels: list, runbook_url: str,
              annotations: list | None = None) -> dict:
    return {
        "annotations": {"list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
        ] + (annotations or [])},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["td-pz"],
                "targetBlank": False,
                "title": "TD personalization dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            },
            {
                "asDropdown": False,
                "icon": "doc",
                "includeVars": False,
                "keepTime": False,
                "tags": [],
                "targetBlank": True,
                "title": "Runbooks",
                "tooltip": "docs/runbooks.md: one section per TdPz* alert",
                "type": "link",
                "url": "${runbook_url}",
            },
        ],
        "liveNow": False,
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": templating(runbook_url),
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


ALERT_ANNOTATION = {
    "datasource": DS,
    "enable": True,
    "expr": 'ALERTS{alertstate="firing", alertname=~"TdPz.*", pz_service=~"$pz_service|"}',
    "hide": False,
    "iconColor": "red",
    "name": "Firing TdPz alerts",
    "step": "60s",
    "tagKeys": "alertname,severity,pz_service,probe",
    "textFormat": "",
    "titleFormat": "{{alertname}}",
    "useValueForTime": False,
}


# --------------------------------------------------------------------------------------------------
# Overview


def overview(runbook_url: str) -> dict:
    lay = Layout()
    av = AVAILABILITY_SLO
    panels = [row(lay, "SLOs")]
    panels.append(stat(
        lay, "Availability (5m)",
        "Share of probes that passed every check over the last 5 minutes, per service "
        "(recording rule pz_service:td_pz_probe_availability:ratio_rate5m). SLO: %.1f%%." % (av * 100),
        targets(("pz_service:td_pz_probe_availability:ratio_rate5m{%s}" % SVC, "{{pz_service}}")),
        "percentunit", w=8, decimals=2, minv=0, maxv=1,
        thresholds=steps((None, "red"), (0.99, "orange"), (av, "green")),
        links=[runbook("TdPzProbeFailing"), runbook("TdPzAvailabilityBudgetBurnFast")]))
    panels.append(bargauge(
        lay, "SLO error budget remaining (3d)",
        "Error budget left over the last 3 days, per service: 1 - (error ratio / budget). Availability "
        "budget is %.1f%% failed probes (SLO %.1f%%), latency budget is %d%% of probes over %gs. "
        "100%% = untouched, 0%% = spent, negative = overspent. Based on the recording rules "
        "pz_service:td_pz_probe_errors:ratio_rate3d and pz_service:td_pz_probe_slow:ratio_rate3d."
        % ((1 - av) * 100, av * 100, round((1 - LATENCY_SLO_TARGET) * 100), LATENCY_SLO_SECONDS),
        targets(
            ("1 - (pz_service:td_pz_probe_errors:ratio_rate3d{%s} / %g)" % (SVC, round(1 - av, 6)),
             "{{pz_service}} availability"),
            ("1 - (pz_service:td_pz_probe_slow:ratio_rate3d{%s} / %g)"
             % (SVC, round(1 - LATENCY_SLO_TARGET, 6)), "{{pz_service}} latency"),
        ),
        "percentunit", w=10, h=5, minv=0, maxv=1, decimals=1,
        thresholds=steps((None, "red"), (0.25, "orange"), (0.5, "green")),
        links=[runbook("TdPzAvailabilityBudgetBurnSlow"), runbook("TdPzLatencyBudgetBurnSlow")]))
    panels.append(stat(
        lay, "Firing TdPz alerts",
        "Number of TdPz* alerts firing now (ALERTS from Prometheus; 0 when none). The table below "
        "lists them; each alert has a runbook section in docs/runbooks.md.",
        targets(('count(ALERTS{alertstate="firing", alertname=~"TdPz.*", pz_service=~"$pz_service|"}) '
                 'or on() vector(0)', "firing")),
        "none", w=6, graph=False, decimals=0,
        thresholds=steps((None, "green"), (1, "red"))))

    panels.append(row(lay, "Availability and latency"))
    panels.append(timeseries(
        lay, "Probe availability (5m)",
        "Share of probes that passed over a sliding 5m window, per service. The dashed line is the "
        "%.1f%% SLO; dips below it burn error budget." % (av * 100),
        targets(("pz_service:td_pz_probe_availability:ratio_rate5m{%s}" % SVC, "{{pz_service}}")),
        "percentunit", maxv=1, decimals=2, threshold_style="dashed",
        thresholds=steps((None, "red"), (av, "transparent")),
        links=[runbook("TdPzProbeFailing"), runbook("TdPzAvailabilityBudgetBurnFast")]))
    panels.append(timeseries(
        lay, "TD-reported error rate (5m avg)",
        "error_rate reported by each service's metrics endpoint (ratio 0..1), averaged over 5m "
        "(recording rule pz_service:td_pz_service_error_rate:avg5m). Only services with a service_id "
        "in the config are polled. Lines: TdPzErrorRateHigh above %g%%, TdPzErrorRateCritical above "
        "%g%%." % (ERROR_RATE_WARN * 100, ERROR_RATE_CRIT * 100),
        targets(("pz_service:td_pz_service_error_rate:avg5m{%s}" % SVC, "{{pz_service}}")),
        "percentunit", minv=0, decimals=2, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (ERROR_RATE_WARN, "orange"),
                         (ERROR_RATE_CRIT, "red")),
        links=[runbook("TdPzErrorRateHigh"), runbook("TdPzErrorRateCritical")]))
    panels.append(timeseries(
        lay, "Probe latency p50 / p95 / p99 (5m)",
        "Client-side latency of completed probe requests, quantiles over 5m from the "
        "td_pz_probe_duration_seconds histogram (recording rules pz_service:td_pz_probe_duration_"
        "seconds:p50_5m/p95_5m/p99_5m). The dashed line is the %gs latency SLO threshold."
        % LATENCY_SLO_SECONDS,
        targets(
            ("pz_service:td_pz_probe_duration_seconds:p50_5m{%s}" % SVC, "{{pz_service}} p50"),
            ("pz_service:td_pz_probe_duration_seconds:p95_5m{%s}" % SVC, "{{pz_service}} p95"),
            ("pz_service:td_pz_probe_duration_seconds:p99_5m{%s}" % SVC, "{{pz_service}} p99"),
        ),
        "s", minv=0, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (LATENCY_SLO_SECONDS, "red")),
        links=[runbook("TdPzProbeLatencyHigh"), runbook("TdPzLatencyBudgetBurnFast")]))
    panels.append(timeseries(
        lay, "Probe failures by reason",
        "Failed probes per second by reason (the first check that failed: transport and status, then "
        "shape, then section, then outputs, then latency). On TD's p13n API the documented error code "
        "gives the reason: token_rejected, token_misconfigured, ip_not_allowed, invalid_event, "
        "origin_rejected (docs/runbooks.md has the table). Every reason is initialised at 0, so a flat "
        "zero line is the healthy picture.",
        targets(('sum by (reason) (rate(td_pz_probe_failures_total{%s}[$__rate_interval]))' % PROBE,
                 "{{reason}}")),
        "reqps", minv=0, stack=True, fill=60,
        links=[runbook("TdPzProbeFailing"), runbook("TdPzApiKeyRejected"),
               runbook("TdPzServiceNotFound"), runbook("TdPzServiceUnavailable"),
               runbook("TdPzRateLimited"), runbook("TdPzWrongSection"),
               runbook("TdPzMissingOutputs")]))

    panels.append(row(lay, "Sections"))
    share = timeseries(
        lay, "Section share (logs) - $pz_service",
        "Share of each section among the service's log entries over the exporter's "
        "section_share_window (td_pz_section_share; the shares of one service sum to 1), stacked. One "
        "panel per selected service. A section's share moving away from its usual level raises "
        "TdPzSectionShareDrift (over 20 points against a day ago); `fallback` or `__other__` above "
        "half of the traffic raises TdPzFallbackShareHigh.",
        targets(("avg by (pz_service, section) (td_pz_section_share{%s})" % SVC, "{{section}}")),
        "percentunit", w=24, h=8, minv=0, maxv=1, stack=True, legend_table=True,
        links=[runbook("TdPzSectionShareDrift"), runbook("TdPzFallbackShareHigh")])
    share["repeat"] = "pz_service"
    share["repeatDirection"] = "h"
    share["maxPerRow"] = 2
    panels.append(share)

    panels.append(row(lay, "Discovered in TD"))
    panels.append(table(
        lay, "Services TD lists, by coverage",
        "What the last discovery of each parent segment found in TD (td_pz_discovered_services): covered "
        "by a configured service (name or service_id), not covered (nobody probes it; "
        "TdPzServicesNotCovered after 30m), on the ignore list, or refused (an id or name that could not "
        "be a path segment). The names are on the exporter's status page.",
        'sum by (parent_segment, coverage) (td_pz_discovered_services{parent_segment=~"$parent_segment"})',
        w=24, h=6, value_name="Services", links=[runbook("TdPzServicesNotCovered")]))

    panels.append(row(lay, "Alerts"))
    panels.append(table(
        lay, "Firing TdPz alerts",
        "TdPz* alerts firing now, from Prometheus' ALERTS series (exporter-wide alerts have an empty "
        "service). A single row with value 0 and no labels means nothing is firing. Runbooks: "
        "docs/runbooks.md#<alert name in lower case>.",
        'sum by (alertname, severity, parent_segment, pz_service, probe) (ALERTS{alertstate="firing", '
        'alertname=~"TdPz.*", pz_service=~"$pz_service|"}) or on() vector(0)',
        w=24, h=7, value_name="Firing", links=[
            {"title": "Runbooks", "url": "${runbook_url}", "targetBlank": True}]))
    return dashboard(
        "td-pz-overview", "TD Personalization / Overview",
        "Every Treasure Data real-time personalization service at a glance: availability, TD error "
        "rate, probe latency, sections, failures, SLO budget and firing alerts.",
        panels, runbook_url, [ALERT_ANNOTATION])


# --------------------------------------------------------------------------------------------------
# Service detail


def service_detail(runbook_url: str) -> dict:
    lay = Layout()
    panels = [row(lay, "Probes (per persona)")]
    panels.append(stat(
        lay, "Last probe result",
        "td_pz_probe_success: 1 (PASS) if the last probe of each persona passed every check "
        "(status, shape, section, outputs, latency), else 0 (FAIL).",
        targets(("td_pz_probe_success{%s}" % PROBE, "{{pz_service}} / {{probe}}")),
        "none", w=12, h=5, graph=False, decimals=0,
        mappings=value_map([(1, "PASS", "green"), (0, "FAIL", "red")]),
        thresholds=steps((None, "red"), (1, "green")),
        links=[runbook("TdPzProbeFailing")]))
    panels.append(stat(
        lay, "Last HTTP status",
        "td_pz_probe_http_status_code: HTTP status of each persona's last probe; 0 when no response "
        "came (timeout, connection or TLS error).",
        targets(("td_pz_probe_http_status_code{%s}" % PROBE, "{{pz_service}} / {{probe}}")),
        "none", w=12, h=5, graph=False, decimals=0,
        mappings=value_map([(0, "no response", "red")]),
        thresholds=steps((None, "red"), (200, "green"), (300, "orange"), (400, "red")),
        links=[runbook("TdPzApiKeyRejected"), runbook("TdPzServiceNotFound"),
               runbook("TdPzServiceUnavailable"), runbook("TdPzRateLimited")]))
    panels.append(timeseries(
        lay, "Probe success ratio (5m)",
        "Share of each persona's probes that passed over a sliding 5m window: 1 - failures / probes. "
        "The dashed line is the %.1f%% availability SLO." % (AVAILABILITY_SLO * 100),
        targets((
            "1 - (sum by (pz_service, probe) (rate(td_pz_probe_failures_total{%s}[5m])) / "
            "sum by (pz_service, probe) (rate(td_pz_probes_total{%s}[5m])))" % (PROBE, PROBE),
            "{{pz_service}} / {{probe}}")),
        "percentunit", maxv=1, decimals=2, threshold_style="dashed",
        thresholds=steps((None, "red"), (AVAILABILITY_SLO, "transparent")),
        links=[runbook("TdPzProbeFailing")]))
    panels.append(timeseries(
        lay, "Probe failures by reason",
        "Failed probes per second, per persona and reason (initialised at 0 for every reason).",
        targets(('sum by (pz_service, probe, reason) (rate(td_pz_probe_failures_total{%s}'
                 '[$__rate_interval]))' % PROBE, "{{probe}} {{reason}}")),
        "reqps", minv=0, stack=True, fill=60,
        links=[runbook("TdPzProbeFailing"), runbook("TdPzWrongSection"),
               runbook("TdPzMissingOutputs")]))
    panels.append(timeseries(
        lay, "Last probe: client latency vs TD processing time",
        "Client-side latency of each persona's last probe (td_pz_probe_last_duration_seconds; a gap "
        "means no response) against the processing_time_ms TD reported in that response "
        "(td_pz_probe_server_processing_seconds, cdp services only). A wide gap is network or TLS "
        "time, not TD. The dashed line is the %gs latency SLO threshold." % LATENCY_SLO_SECONDS,
        targets(
            ("td_pz_probe_last_duration_seconds{%s}" % PROBE, "{{probe}} client"),
            ("td_pz_probe_server_processing_seconds{%s}" % PROBE, "{{probe}} TD processing"),
        ),
        "s", minv=0, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (LATENCY_SLO_SECONDS, "red")),
        links=[runbook("TdPzProbeLatencyHigh")]))
    panels.append(timeseries(
        lay, "Probe latency quantiles (5m)",
        "p50 / p95 / p99 of client-side probe latency per persona, from the "
        "td_pz_probe_duration_seconds histogram over 5m (completed requests only).",
        targets(*[(
            "histogram_quantile(%s, sum by (pz_service, probe, le) "
            "(rate(td_pz_probe_duration_seconds_bucket{%s}[5m])))" % (q, PROBE),
            "{{probe}} p%s" % q[2:].ljust(2, "0")) for q in ("0.5", "0.95", "0.99")]),
        "s", minv=0, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (LATENCY_SLO_SECONDS, "red")),
        links=[runbook("TdPzProbeLatencyHigh"), runbook("TdPzLatencyBudgetBurnFast")]))

    panels.append(row(lay, "Sections"))
    panels.append(timeseries(
        lay, "Section share from logs",
        "Share of each section among the service's log entries over the section_share_window "
        "(td_pz_section_share), stacked; per service the shares sum to 1.",
        targets(("avg by (pz_service, section) (td_pz_section_share{%s})" % SVC,
                 "{{pz_service}} {{section}}")),
        "percentunit", minv=0, stack=True, legend_table=True,
        links=[runbook("TdPzSectionShareDrift"), runbook("TdPzFallbackShareHigh")]))
    panels.append(timeseries(
        lay, "Sections served to probes",
        "How many personas got each section on their last probe (td_pz_probe_section_info), stacked. "
        "A persona moving to another section shows as a step; compare with its expect_section.",
        targets(("count by (pz_service, section) (td_pz_probe_section_info{%s})" % PROBE,
                 "{{pz_service}} {{section}}")),
        "short", minv=0, stack=True, decimals=0,
        links=[runbook("TdPzWrongSection")]))
    panels.append(table(
        lay, "Last section per persona",
        "The section each persona got on its last probe (td_pz_probe_section_info, one row per "
        "persona). Compare with the persona's expect_section in the exporter config.",
        "td_pz_probe_section_info{%s}" % PROBE, w=12, h=8,
        hide=["__name__", "job", "instance", "Value"], links=[runbook("TdPzWrongSection")]))
    panels.append(stat(
        lay, "Section matches expect_section",
        "td_pz_probe_section_match per persona: 1 (match) when the last probe's section equals the "
        "configured expect_section, 0 (mismatch) otherwise. Only personas with expect_section appear.",
        targets(("td_pz_probe_section_match{%s}" % PROBE, "{{pz_service}} / {{probe}}")),
        "none", w=12, h=8, graph=False, decimals=0,
        mappings=value_map([(1, "match", "green"), (0, "mismatch", "red")]),
        thresholds=steps((None, "red"), (1, "green")),
        links=[runbook("TdPzWrongSection")]))

    panels.append(row(lay, "Logs and TD API calls"))
    panels.append(timeseries(
        lay, "Log volume by section",
        "Log entries per second seen by the logs poller, per section (td_pz_log_entries_total); "
        "sections beyond max_sections count as __other__.",
        targets(("sum by (pz_service, section) (rate(td_pz_log_entries_total{%s}[$__rate_interval]))"
                 % SVC, "{{pz_service}} {{section}}")),
        "reqps", minv=0, stack=True, fill=60))
    panels.append(timeseries(
        lay, "Log errors and processing time",
        "Log entries with an error status or field per second (td_pz_log_errors_total, left axis) and "
        "the p95 of the processing_time_ms reported in log entries (td_pz_log_processing_seconds).",
        targets(
            ("sum by (pz_service) (rate(td_pz_log_errors_total{%s}[$__rate_interval]))" % SVC,
             "{{pz_service}} errors/s"),
            ("histogram_quantile(0.95, sum by (pz_service, le) "
             "(rate(td_pz_log_processing_seconds_bucket{%s}[5m])))" % SVC,
             "{{pz_service}} p95 processing"),
        ),
        "reqps", minv=0, links=[runbook("TdPzErrorRateHigh")]))
    # The second query is in seconds: give it its own unit and axis.
    panels[-1]["fieldConfig"]["overrides"] = [{
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [{"id": "unit", "value": "s"},
                       {"id": "custom.axisPlacement", "value": "right"}],
    }]
    panels.append(timeseries(
        lay, "TD API calls by endpoint and code",
        "Requests this exporter sent to TD per second (td_pz_api_requests_total), by endpoint "
        "(personalize, personalize_test, p13n, metrics, logs, discovery) and HTTP code (`error` = no "
        "response).",
        targets(("sum by (pz_service, endpoint, code) (rate(td_pz_api_requests_total{%s}"
                 "[$__rate_interval]))" % SVC, "{{pz_service}} {{endpoint}} {{code}}")),
        "reqps", minv=0, stack=True, fill=60,
        links=[runbook("TdPzApiKeyRejected"), runbook("TdPzServiceNotFound"),
               runbook("TdPzServiceUnavailable")]))
    panels.append(timeseries(
        lay, "Rate-limit hits (HTTP 429)",
        "Responses with HTTP 429 from TD per second, by endpoint (0 when there were none), and probes "
        "that failed as rate_limited. The exporter honours Retry-After; persistent 429s mean the "
        "service's own traffic, or the account's (TD publishes 8,000 decisioning and 2,000 ingested "
        "events/s per account), is at its limit.",
        targets(
            ('sum by (pz_service, endpoint) (rate(td_pz_api_requests_total{%s, code="429"}'
             '[$__rate_interval])) or on() vector(0)' % SVC, "{{pz_service}} {{endpoint}} 429"),
            ('sum by (pz_service, probe) (rate(td_pz_probe_failures_total{%s, reason="rate_limited"}'
             '[$__rate_interval]))' % PROBE, "{{pz_service}} {{probe}} rate_limited"),
        ),
        "reqps", minv=0, thresholds=steps((None, "transparent"), (0.001, "red")),
        links=[runbook("TdPzRateLimited"), runbook("TdPzTrafficNearRateLimit")]))

    panels.append(row(lay, "TD-reported service metrics"))
    panels.append(timeseries(
        lay, "TD-reported request rate",
        "requests_per_second from the service's metrics endpoint (td_pz_service_metric"
        "{field=\"requests_per_second\"}): the service's whole traffic, not only probes. The source "
        "design's figure (not a TD document) is %d requests/s per service (red line); TdPzTrafficNearRateLimit fires "
        "above %d (orange line)." % (TD_RATE_LIMIT_RPS, TRAFFIC_WARN_RPS),
        targets(('td_pz_service_metric{%s, field="requests_per_second"}' % SVC, "{{pz_service}}")),
        "reqps", minv=0, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (TRAFFIC_WARN_RPS, "orange"),
                         (TD_RATE_LIMIT_RPS, "red")),
        links=[runbook("TdPzTrafficNearRateLimit")]))
    panels.append(timeseries(
        lay, "TD-reported error rate",
        "error_rate from the service's metrics endpoint (td_pz_service_error_rate, ratio 0..1). Lines: "
        "TdPzErrorRateHigh above %g%%, TdPzErrorRateCritical above %g%%."
        % (ERROR_RATE_WARN * 100, ERROR_RATE_CRIT * 100),
        targets(("td_pz_service_error_rate{%s}" % SVC, "{{pz_service}}")),
        "percentunit", minv=0, decimals=2, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (ERROR_RATE_WARN, "orange"),
                         (ERROR_RATE_CRIT, "red")),
        links=[runbook("TdPzErrorRateHigh"), runbook("TdPzErrorRateCritical")]))
    panels.append(timeseries(
        lay, "TD-reported latency",
        "p50 / p95 / p99 and mean latency from the service's metrics endpoint "
        "(td_pz_service_latency_seconds, label stat), i.e. TD's view of its own processing time.",
        targets(("td_pz_service_latency_seconds{%s}" % SVC, "{{pz_service}} {{stat}}")),
        "s", minv=0))
    panels.append(table(
        lay, "TD-reported metrics (all fields)",
        "Every other numeric field of the metrics endpoint's response (td_pz_service_metric, label "
        "field = dotted path, e.g. cache.hit_ratio, total_requests, error_count). Fields TD stops "
        "sending disappear here too.",
        "td_pz_service_metric{%s}" % SVC, w=12, h=8, value_name="value",
        hide=["__name__", "job", "instance"]))
    return dashboard(
        "td-pz-service", "TD Personalization / Service detail",
        "One personalization service in depth: per-persona probes, sections from logs and probes, "
        "log volume, TD API calls and TD-reported metrics. Pick the service and probes above.",
        panels, runbook_url, [ALERT_ANNOTATION])


# --------------------------------------------------------------------------------------------------
# Exporter health


def exporter_health(runbook_url: str) -> dict:
    lay = Layout()
    panels = [row(lay, "Exporter")]
    panels.append(stat(
        lay, "Exporter up",
        "Whether Prometheus could scrape td-pz-exporter (up{job=\"%s\"}) per instance." % JOB,
        targets(('up{%s}' % EXPORTER, "{{instance}}")),
        "none", w=4, h=5, graph=False, decimals=0,
        mappings=value_map([(1, "UP", "green"), (0, "DOWN", "red")]),
        thresholds=steps((None, "red"), (1, "green")),
        links=[runbook("TdPzExporterDown"), runbook("TdPzExporterAbsent")]))
    panels.append(stat(
        lay, "Config loaded",
        "td_pz_config_last_reload_successful: 1 (OK) if the last load or reload of the configuration "
        "succeeded; on a failed reload the exporter keeps running with the previous configuration.",
        targets(("td_pz_config_last_reload_successful", "{{instance}}")),
        "none", w=4, h=5, graph=False, decimals=0,
        mappings=value_map([(1, "OK", "green"), (0, "FAILED", "red")]),
        thresholds=steps((None, "red"), (1, "green")),
        links=[runbook("TdPzConfigReloadFailed")]))
    panels.append(stat(
        lay, "Since last successful config load",
        "time() - td_pz_config_last_reload_success_timestamp_seconds: age of the configuration in use.",
        targets(("time() - td_pz_config_last_reload_success_timestamp_seconds", "{{instance}}")),
        "s", w=4, h=5, graph=False, decimals=0, color_mode="value",
        links=[runbook("TdPzConfigReloadFailed")]))
    panels.append(stat(
        lay, "Uptime",
        "Time since the exporter process started (time() - process_start_time_seconds).",
        targets(("time() - process_start_time_seconds{%s}" % EXPORTER, "{{instance}}")),
        "s", w=4, h=5, graph=False, decimals=0, color_mode="value",
        thresholds=steps((None, "orange"), (600, "green"))))
    panels.append(table(
        lay, "Build info",
        "td_pz_exporter_build_info: the version and revision of each running exporter.",
        "td_pz_exporter_build_info", w=8, h=5, hide=["__name__", "Value"]))

    panels.append(row(lay, "Polls and schedule"))
    panels.append(timeseries(
        lay, "Poll duration p50 / p95 / p99 by poller (5m)",
        "Time one poll took (all its requests, retries included), per poller, from the "
        "td_pz_poll_duration_seconds histogram (by poller, across services: it has no service label). A poll near its schedule interval leads to skipped "
        "runs.",
        targets(*[(
            "histogram_quantile(%s, sum by (poller, le) "
            "(rate(td_pz_poll_duration_seconds_bucket[5m])))" % q,
            "{{poller}} p%s" % q[2:].ljust(2, "0")) for q in ("0.5", "0.95", "0.99")]),
        "s", minv=0, links=[runbook("TdPzScheduleSkipping")]))
    panels.append(timeseries(
        lay, "Poll failures by poller and reason",
        "Failed polls per second (td_pz_poll_failures_total) by poller and reason; initialised at 0.",
        targets(("sum by (poller, reason) (rate(td_pz_poll_failures_total{%s}[$__rate_interval]))"
                 % SVC, "{{poller}} {{reason}}")),
        "reqps", minv=0, stack=True, fill=60,
        links=[runbook("TdPzProbeFailing"), runbook("TdPzApiKeyRejected")]))
    panels.append(bargauge(
        lay, "Since last successful poll",
        "time() - td_pz_poll_last_success_timestamp_seconds per service and poller. Probes run every "
        "30s and metrics every minute by default; TdPzPollerStale fires when the probe, metrics or "
        "logs poller has not succeeded for %ds (red)." % POLLER_STALE_SECONDS,
        targets(("time() - td_pz_poll_last_success_timestamp_seconds{%s}" % SVC,
                 "{{pz_service}} {{poller}}")),
        "s", decimals=0, minv=0, maxv=900,
        thresholds=steps((None, "green"), (POLLER_STALE_SECONDS / 2, "orange"),
                         (POLLER_STALE_SECONDS, "red")),
        links=[runbook("TdPzPollerStale")]))
    panels.append(timeseries(
        lay, "Polls and skipped runs",
        "Polls run per second by poller (td_pz_polls_total) and runs skipped because the previous run "
        "of the same job was still going (td_pz_schedule_skipped_total, red). Skips mean a job takes "
        "longer than its schedule interval.",
        targets(
            ("sum by (poller) (rate(td_pz_polls_total{%s}[$__rate_interval]))" % SVC,
             "{{poller}} polls"),
            ("sum by (poller) (rate(td_pz_schedule_skipped_total{%s}[$__rate_interval]))" % SVC,
             "{{poller}} skipped"),
        ),
        "ops", minv=0, links=[runbook("TdPzScheduleSkipping")]))
    panels[-1]["fieldConfig"]["overrides"] = [{
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [{"id": "color", "value": {"fixedColor": "red", "mode": "fixed"}}],
    }]
    panels.append(timeseries(
        lay, "Scheduler lateness p50 / p99 (5m)",
        "How late jobs started against their cron time, jitter excluded (td_pz_scheduler_lateness_"
        "seconds). Growing lateness means the exporter is starved of CPU or its runtime is blocked.",
        targets(*[(
            "histogram_quantile(%s, sum by (poller, le) "
            "(rate(td_pz_scheduler_lateness_seconds_bucket[5m])))" % q,
            "{{poller}} p%s" % q[2:].ljust(2, "0")) for q in ("0.5", "0.99")]),
        "s", minv=0, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (1, "orange")),
        links=[runbook("TdPzScheduleSkipping")]))

    panels.append(row(lay, "Scrape cost and process"))
    panels.append(timeseries(
        lay, "Scrape duration",
        "How long Prometheus took to scrape the exporter (scrape_duration_seconds{job=\"%s\"})." % JOB,
        targets(('scrape_duration_seconds{%s}' % EXPORTER, "{{instance}}")),
        "s", minv=0, threshold_style="dashed",
        thresholds=steps((None, "transparent"), (1, "orange")),
        links=[runbook("TdPzExporterDown")]))
    panels.append(timeseries(
        lay, "Samples per scrape",
        "Samples the exporter exposes per scrape (scrape_samples_scraped) and new series in the last "
        "scrape (scrape_series_added). Growth tracks services x probes x reasons and sections (capped "
        "by max_sections).",
        targets(
            ('scrape_samples_scraped{%s}' % EXPORTER, "{{instance}} samples"),
            ('scrape_series_added{%s}' % EXPORTER, "{{instance}} new series"),
        ),
        "short", minv=0))
    panels.append(timeseries(
        lay, "Resident memory",
        "Resident memory of the exporter process (process_resident_memory_bytes).",
        targets(('process_resident_memory_bytes{%s}' % EXPORTER, "{{instance}}")),
        "bytes", minv=0))
    panels.append(timeseries(
        lay, "CPU",
        "CPU used by the exporter process (rate of process_cpu_seconds_total); 100% = one core.",
        targets(('rate(process_cpu_seconds_total{%s}[$__rate_interval])' % EXPORTER, "{{instance}}")),
        "percentunit", minv=0))
    panels.append(timeseries(
        lay, "Open file descriptors",
        "Open file descriptors of the exporter process against its limit (process_open_fds, "
        "process_max_fds): a leak of connections shows here first.",
        targets(
            ('process_open_fds{%s}' % EXPORTER, "{{instance}} open"),
            ('process_max_fds{%s}' % EXPORTER, "{{instance}} max"),
        ),
        "short", minv=0))
    panels.append(timeseries(
        lay, "Refused requests and section overflow",
        "HTTP requests to the exporter it refused, by reason (td_pz_bad_requests_total: method, "
        "not_found, unauthorized), and log entries folded into section=\"__other__\" by the "
        "max_sections cap (td_pz_sections_overflow_total). Both 0 when healthy.",
        targets(
            ("sum by (reason) (rate(td_pz_bad_requests_total[$__rate_interval])) or on() vector(0)",
             "refused {{reason}}"),
            ("sum by (pz_service) (rate(td_pz_sections_overflow_total{%s}[$__rate_interval])) "
             "or on() vector(0)" % SVC, "overflow {{pz_service}}"),
        ),
        "reqps", minv=0))
    return dashboard(
        "td-pz-exporter", "TD Personalization / Exporter health",
        "td-pz-exporter itself: polls, schedule, configuration, scrape cost and the process.",
        panels, runbook_url)


# --------------------------------------------------------------------------------------------------

DASHBOARDS = [
    ("overview.json", overview),
    ("service-detail.json", service_detail),
    ("exporter-health.json", exporter_health),
]


def render(builder, runbook_url: str) -> str:
    return json.dumps(builder(runbook_url), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if dashboards/*.json differ from the generated output")
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="default: %(default)s")
    ap.add_argument("--runbook-url", default=DEFAULT_RUNBOOK_URL,
                    help="base URL of docs/runbooks.md (default: %(default)s); --check compares "
                    "against the same value")
    args = ap.parse_args()

    stale = []
    for name, builder in DASHBOARDS:
        path = args.out_dir / name
        text = render(builder, args.runbook_url)
        if args.check:
            try:
                current = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                current = ""
            if current != text:
                stale.append(name)
                diff = difflib.unified_diff(current.splitlines(), text.splitlines(),
                                            str(path), "generated", lineterm="", n=1)
                for i, line in enumerate(diff):
                    if i >= 40:
                        print("  ...", file=sys.stderr)
                        break
                    print("  " + line, file=sys.stderr)
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
