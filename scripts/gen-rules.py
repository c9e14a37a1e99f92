#!/usr/bin/env python3
"""Generate the Prometheus recording and alerting rules of td-pz-exporter.

    python3 scripts/gen-rules.py                      # (re)write alerts/td-pz-rules.yaml
    python3 scripts/gen-rules.py --check              # exit 1 with a diff if the checked-in file is stale
    python3 scripts/gen-rules.py --profile=test --out=/tmp/td-pz-rules.test.yaml
    python3 scripts/gen-rules.py --profile=test --window-scale=60 --out=...  # burn windows / 60 as well
    python3 scripts/gen-rules.py --route-cases        # one amtool routing case per alert (check-alerts.sh)
    python3 scripts/gen-rules.py --list-alerts        # the alert names, one a line

alerts/td-pz-rules.yaml is what users load into Prometheus. Never edit it by hand: change the
constants below (every threshold and SLO target lives here, nowhere else) and run this script. Each
alert's runbook_step annotation is the **Do** paragraph of its section of docs/runbooks.md: edit it there.

Profiles:
  default  the production rules: alerts/td-pz-rules.yaml.
  test     the same rules, expressions and thresholds, for the end-to-end test only: every `for:` and
           `keep_firing_for:` is capped at TEST_FOR_CAP (15s) and every rule group is evaluated every
           TEST_GROUP_INTERVAL (5s), so an alert fires within seconds of the fault the simulator injects. Never
           load it in production. Nothing else differs (see docs/runbooks.md, "Test profile").

Only the Python 3 standard library is used, so the e2e test can call this script anywhere.
"""

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

# =====================================================================================================
# Thresholds and SLO targets: the one place to change them.
# =====================================================================================================

# The Prometheus job that scrapes the exporter (`up{job=...}`). Change it if you scrape under another name.
JOB = "td-pz-exporter"

# Availability SLO: 99.5% of synthetic probes pass every check (status, shape, section, outputs, latency),
# measured from td_pz_probes_total and td_pz_probe_successes_total (both created at zero with the probe).
AVAILABILITY_SLO = 0.995

# Latency SLO: 99% of completed probes finish in under 0.5 s (client side). The threshold must be a bucket
# boundary of td_pz_probe_duration_seconds (the exporter has 0.25, 0.5 and 1 s), spelled as in `le`.
LATENCY_SLO = 0.99
LATENCY_SLO_BUCKET = "0.5"

# TdPzProbeLatencyHigh: the 5m p95 of probe latency above this many seconds.
PROBE_P95_THRESHOLD_SECONDS = 0.5

# TD-reported error ratio (td_pz_service_error_rate, 0..1).
ERROR_RATE_WARNING = 0.05   # TdPzErrorRateHigh (warning)
ERROR_RATE_CRITICAL = 0.15  # TdPzErrorRateCritical (critical)

# TdPzFallbackShareHigh: share of section "fallback" or "__other__" among logged responses.
FALLBACK_SECTIONS = ["fallback", "__other__"]
FALLBACK_SHARE_THRESHOLD = 0.5

# TdPzSectionShareDrift: absolute change of a section's 5m average share against the same time a day ago.
SECTION_DRIFT_THRESHOLD = 0.2
SECTION_DRIFT_OFFSET = "1d"

# The source design's figure (seed document, not a TD document): 100 requests/s per personalization
# service; warn at 80% of it. TD publishes other limits for RT 2.0: decisioning 8,000 events/s per
# account, ingestion 2,000 events/s (TD_LIMITS_URL).
TD_LIMITS_URL = ("https://docs.treasuredata.com/products/customer-data-platform/real-time/"
                 "real-time-2-0-system-performance-limitations-and-expected-behavior")
TD_RATE_LIMIT_RPS = 100
TD_RATE_LIMIT_WARNING_RATIO = 0.8

# TdPzPollerStale: a poller's last success older than this (3 intervals of the default 1-minute metrics
# schedule; the probe and logs pollers run every 30 s). Also the exporter uptime needed before it can fire,
# so a freshly started exporter whose first polls are still pending stays quiet.
POLLER_STALE_SECONDS = 180
STALE_POLLERS = ["probe", "metrics", "logs"]

# Multi-window, multi-burn-rate alerts (Google SRE workbook, chapter 5, for a 30-day SLO window):
# (burn rate, long window, short window). Fast = page, slow = ticket.
BURN_FAST = [(14.4, "1h", "5m"), (6, "6h", "30m")]
BURN_SLOW = [(3, "1d", "2h"), (1, "3d", "6h")]
SLO_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]

# Cause alerts (TdPzApiKeyRejected, TdPzServiceNotFound, TdPzServiceUnavailable) page when one target (a
# probe, or a poller) of a service failed CAUSE_MIN_FAILURES times in a row, the latest for one of their
# reasons (td_pz_probe_consecutive_failures, td_pz_poll_consecutive_failures): with the default 30 s probe
# schedule the third failure comes 60 s after the first, so a sustained cause pages about 2 minutes after it
# starts (scrape and evaluation delays included), and one or two failures never page. Counted per target,
# so one bad moment seen by every probe of a service counts once.
CAUSE_MIN_FAILURES = 3
# The reasons of each cause (src/reason.rs). TD's p13n 5xx codes (9999, 1001-1005, 2001, 2002, 2011, 2012,
# 2014, 2021, 3013) are `server_error`, a plain 503 is `unavailable`: both are an outage of the service.
CAUSE_REASONS = {
    "TdPzApiKeyRejected": ["unauthorized", "forbidden", "token_rejected", "token_misconfigured"],
    "TdPzServiceNotFound": ["not_found"],
    "TdPzServiceUnavailable": ["unavailable", "server_error"],
}
# `for:` of each alert, in seconds, by rule group (exporter, api, probes, service, slo).
FOR = {
    "TdPzExporterDown": 90, "TdPzExporterAbsent": 120, "TdPzPollerStale": 60, "TdPzConfigReloadFailed": 60,
    "TdPzScheduleSkipping": 60,
    "TdPzServicesNotCovered": 1800, "TdPzApiKeyRejected": 0, "TdPzServiceNotFound": 0, "TdPzServiceUnavailable": 0,
    "TdPzRateLimited": 300,
    "TdPzProbeFailing": 300, "TdPzWrongSection": 300, "TdPzMissingOutputs": 300, "TdPzProbeLatencyHigh": 600,
    "TdPzErrorRateHigh": 600, "TdPzErrorRateCritical": 300, "TdPzFallbackShareHigh": 900,
    "TdPzSectionShareDrift": 1800, "TdPzTrafficNearRateLimit": 600,
    "TdPzAvailabilityBudgetBurnFast": 120, "TdPzAvailabilityBudgetBurnSlow": 900,
    "TdPzLatencyBudgetBurnFast": 120, "TdPzLatencyBudgetBurnSlow": 900,
}

# Evaluation interval of the rule groups.
RECORDING_INTERVAL = "30s"
ALERT_INTERVAL = "30s"

# The test profile (end-to-end test only).
TEST_FOR_CAP = 15
TEST_GROUP_INTERVAL = "5s"

# Links put into every alert.
RUNBOOK_BASE = "https://github.com/treasure-data-community/td-pz-exporter/blob/main/docs/runbooks.md"
GRAFANA_URL = "http://localhost:3000"
DASHBOARD_OVERVIEW = GRAFANA_URL + "/d/td-pz-overview"
DASHBOARD_SERVICE = (GRAFANA_URL + "/d/td-pz-service?var-pz_service={{ $labels.pz_service }}"
                     "&var-parent_segment={{ $labels.parent_segment }}")

# Where a person opens the exporter's status page: the address Prometheus scrapes (the `instance` label). Change
# it when the exporter serves TLS (https://{instance}) or is reached through a proxy (docs/runbooks.md).
EXPORTER_URL = "http://{instance}"

# Which Alertmanager receiver each severity must reach (alerts/alertmanager.yml; checked by --route-cases).
RECEIVER_FOR_SEVERITY = {"critical": "pager", "warning": "chat", "info": "email-or-nothing"}

# =====================================================================================================

SVC = "parent_segment, pz_service"
INST_SVC = "job, instance, parent_segment, pz_service"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "alerts", "td-pz-rules.yaml")


def num(x):
    """A number as PromQL and people write it: 0.005, 14.4, 80."""
    return format(round(x, 10), "g")


def pct(x):
    return num(x * 100) + "%"


def dur(seconds):
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:  # 0 stays "0s"
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


AVAILABILITY_BUDGET = round(1 - AVAILABILITY_SLO, 10)
LATENCY_BUDGET = round(1 - LATENCY_SLO, 10)
RATE_WARNING_RPS = round(TD_RATE_LIMIT_RPS * TD_RATE_LIMIT_WARNING_RATIO, 10)


def seconds_of(d):
    """ "30m" -> 1800: a duration as the constants above spell it."""
    return int(d[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[d[-1]]


# The cause alerts keep firing this long after their condition clears (`keep_firing_for`), so that the
# burn-rate alerts they inhibit (alerts/alertmanager.yml) stay inhibited while the failures drain from the
# fast burn's short windows: the longest short window of BURN_FAST, plus 5 minutes so that the burn alert
# ends minutes, not one evaluation, before its source (their groups are evaluated at different offsets)
# (docs/runbooks.md, "Burn-rate timing"). The slow burns (tickets) keep their longer tails: the budget
# really was spent.
CAUSE_KEEP_FIRING_MARGIN_SECONDS = 300
CAUSE_KEEP_FIRING_SECONDS = max(seconds_of(short) for _, _, short in BURN_FAST) + CAUSE_KEEP_FIRING_MARGIN_SECONDS
KEEP_FIRING_FOR = {name: CAUSE_KEEP_FIRING_SECONDS for name in CAUSE_REASONS}


def scaled_keep_firing(secs, window_scale):
    """keep_firing_for in the --window-scale copy: the window part divided with the burn windows, the margin kept
    as the same number of evaluations (10 of 30s -> 10 of 5s), since it guards against evaluation offsets."""
    margin = CAUSE_KEEP_FIRING_MARGIN_SECONDS * seconds_of(TEST_GROUP_INTERVAL) // seconds_of(ALERT_INTERVAL)
    return (secs - CAUSE_KEEP_FIRING_MARGIN_SECONDS) // window_scale + margin


# ----------------------------------------------------------------------------------------- recording rules

def recording_rules(window_scale=1):
    """`window_scale` (test profile only) divides the range of each SLO window; the names keep the window."""
    ranges = [(w, w if window_scale == 1 else dur(seconds_of(w) // window_scale)) for w in SLO_WINDOWS]
    rules = [(f"pz_service:td_pz_probe_errors:ratio_rate{w}",
              f"1 - (\n"
              f"  sum by ({SVC}) (rate(td_pz_probe_successes_total[{r}]))\n"
              f"  /\n"
              f"  sum by ({SVC}) (rate(td_pz_probes_total[{r}]))\n"
              f")") for w, r in ranges]
    rules += [(f"pz_service:td_pz_probe_slow:ratio_rate{w}",
               f"(\n"
               f"  sum by ({SVC}) (rate(td_pz_probe_duration_seconds_count[{r}]))\n"
               f"  -\n"
               f"  sum by ({SVC}) (rate(td_pz_probe_duration_seconds_bucket{{le=\"{LATENCY_SLO_BUCKET}\"}}[{r}]))\n"
               f")\n"
               f"/\n"
               f"sum by ({SVC}) (rate(td_pz_probe_duration_seconds_count[{r}]))") for w, r in ranges]
    rules.append(("pz_service:td_pz_probe_availability:ratio_rate5m", "1 - pz_service:td_pz_probe_errors:ratio_rate5m"))
    rules += [(f"pz_service:td_pz_probe_duration_seconds:{name}_5m",
               f"histogram_quantile({q}, sum by ({SVC}, le) (rate(td_pz_probe_duration_seconds_bucket[5m])))")
              for q, name in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))]
    rules += [("pz_service:td_pz_service_error_rate:avg5m",
               f"avg by ({SVC}) (avg_over_time(td_pz_service_error_rate[5m]))"),
              ("pz_service_section:td_pz_section_share:avg5m",
               f"avg by ({SVC}, section) (avg_over_time(td_pz_section_share[5m]))")]
    return [{"record": record, "expr": expr} for record, expr in rules]


# ------------------------------------------------------------------------------------------------- alerts

def runbook_step(name):
    """What to do first: the **Do** paragraph of the alert's section of docs/runbooks.md, on one line."""
    runbooks = Path(ROOT, "docs", "runbooks.md").read_text(encoding="utf-8")
    m = re.search(r"(?ms)^## %s\n(?:(?!^## ).)*?^\*\*Do\*\*: (.*?)(?:\n\n|\Z)" % name, runbooks)
    if not m:
        raise SystemExit(f"gen-rules: docs/runbooks.md has no '**Do**:' paragraph in its section '## {name}'")
    step = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", " ".join(m[1].split()))  # [text](link) -> text
    return step[:1].upper() + step[1:]


# The status page of the target to look at first (its last exchange, with TD's error code): the alert's probe, else
# the service's first failing probe, else its first probe; the exporter's front page for an alert without a service.
PROBE_OF_ALERT = ('{{ $q := printf "td_pz_probe_success{parent_segment=%q,pz_service=%q,probe=~%q}" '
                  '$labels.parent_segment $labels.pz_service (or $labels.probe ".+") }}')
STATUS_URL = (PROBE_OF_ALERT + '{{ with or (printf "%s == 0" $q | query) ($q | query) }}'
              '{{ with . | sortByLabel "probe" | first }}' + EXPORTER_URL.format(instance='{{ label "instance" . }}')
              + '/target?id={{ printf "probe/%s/%s/%s" (label "parent_segment" .) (label "pz_service" .) '
              '(label "probe" .) | urlquery }}{{ end }}{{ else }}{{ with $labels.instance }}'
              + EXPORTER_URL.format(instance="{{ . }}") + "/{{ end }}{{ end }}")


def alert(name, expr, severity, summary, description, dashboard=DASHBOARD_SERVICE, extra_labels=None):
    rule = {"alert": name, "expr": expr, "for": FOR[name]}
    if name in KEEP_FIRING_FOR:
        rule["keep_firing_for"] = KEEP_FIRING_FOR[name]
    return {**rule, "labels": {"severity": severity, **(extra_labels or {})},
            "annotations": {"summary": summary, "description": description, "runbook_step": runbook_step(name),
                            "runbook_url": f"{RUNBOOK_BASE}#{name.lower()}", "dashboard_url": dashboard,
                            "status_url": STATUS_URL}}


def cause_failures(name):
    """The longest run of failures of one target (a probe, or a poller) of a service whose latest failure
    has a reason of cause `name`, where that is at least CAUSE_MIN_FAILURES."""
    m = f'reason=~"{"|".join(CAUSE_REASONS[name])}"'
    return (f"max by ({INST_SVC}) (\n"
            f"  td_pz_probe_consecutive_failures{{{m}}}\n"
            f"  or\n"
            f"  td_pz_poll_consecutive_failures{{{m}}}\n"
            f") >= {CAUSE_MIN_FAILURES}")


CAUSE_AFTER = (" After the fix this alert keeps firing while the failures drain from the fast burn-rate windows, "
               "so the burn-rate pages they caused stay inhibited.")


def cause_count(what):
    """ "A probe or poller of <service> failed 4 times in a row, the last refused (it pages at 3)" """
    return ("A probe or poller of " + WHERE + " failed {{ $value | humanize }} times in a row, the last "
            + f"{what} (it pages at {CAUSE_MIN_FAILURES})")


def failures_increase(reason_matcher):
    """`sum by (...) (increase(M{reason...}[5m])) > 0`, or-ed over the probe and poll failure counters."""
    return "\nor\n".join(f"sum by ({INST_SVC}) (increase({m}{{reason{reason_matcher}}}[5m])) > 0"
                         for m in ("td_pz_probe_failures_total", "td_pz_poll_failures_total"))


# "product_recommendations (parent segment 394649)"; just the service name where parent_segment is empty
# (a p13n service configured without one: the exporter's empty label is no label in Prometheus).
WHERE = "{{ $labels.pz_service }}{{ with $labels.parent_segment }} (parent segment {{ . }}){{ end }}"


def exporter_alerts():
    return [
        alert("TdPzExporterDown", f'up{{job="{JOB}"}} == 0', "critical",
              "td-pz-exporter {{ $labels.instance }} is down",
              "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}). Nothing this exporter "
              "measures is current; the alerts that depend on it are inhibited until it is back.",
              dashboard=DASHBOARD_OVERVIEW),
        alert("TdPzExporterAbsent", f'absent(up{{job="{JOB}"}})', "critical",
              f'No target of job "{JOB}" is scraped',
              f'Prometheus has no target for job="{JOB}": the scrape configuration or service discovery lost '
              "the exporter, so no personalization service is monitored.", dashboard=DASHBOARD_OVERVIEW),
        alert("TdPzPollerStale",
              (f'(time() - td_pz_poll_last_success_timestamp_seconds{{poller=~"{"|".join(STALE_POLLERS)}"}}) > {POLLER_STALE_SECONDS}\n'
               f"and on (job, instance)\n"
               f"(time() - process_start_time_seconds) > {POLLER_STALE_SECONDS}"),
              "warning",
              "The {{ $labels.poller }} poller of {{ $labels.pz_service }} has not succeeded for {{ $value | humanizeDuration }}",
              "The last successful {{ $labels.poller }} poll of " + WHERE + " on {{ $labels.instance }} was "
              "{{ $value | humanizeDuration }} ago (threshold " + dur(POLLER_STALE_SECONDS) + ", 3 intervals of "
              "the default schedules). Its metrics are stale.", dashboard=DASHBOARD_OVERVIEW),
        alert("TdPzConfigReloadFailed", "td_pz_config_last_reload_successful == 0", "warning",
              "td-pz-exporter {{ $labels.instance }} failed to reload its configuration",
              "The last reload (SIGHUP or POST /-/reload) of {{ $labels.instance }} failed; it keeps running with "
              "the previous configuration. Run td-pz-exporter --config.check to see every problem with its line.",
              dashboard=DASHBOARD_OVERVIEW),
        alert("TdPzScheduleSkipping", "increase(td_pz_schedule_skipped_total[10m]) > 0", "info",
              "{{ $labels.poller }} runs of {{ $labels.pz_service }} are being skipped",
              "{{ $value | humanize }} scheduled {{ $labels.poller }} runs of " + WHERE + " were skipped in the "
              "last 10m because the previous run was still going. The schedule is tighter than one run takes "
              "(slow responses, retries, timeouts).", dashboard=DASHBOARD_OVERVIEW),
    ]


def api_alerts():
    return [
        alert("TdPzServicesNotCovered", 'td_pz_discovered_services{coverage="not_covered"} > 0', "info",
              "{{ $value | humanize }} personalization services of parent segment {{ $labels.parent_segment }} "
              "are not monitored",
              "Discovery on {{ $labels.instance }} lists {{ $value | humanize }} real-time personalization "
              "services of parent segment {{ $labels.parent_segment }} that no configured service covers (by name "
              "or service_id). Their names are on the exporter status page under \"Discovered in TD\": add "
              "them to the configuration with probes, or to the parent segment's ignore list.",
              dashboard=DASHBOARD_OVERVIEW),
        alert("TdPzApiKeyRejected", cause_failures("TdPzApiKeyRejected"), "critical",
              "TD rejects the API key or token used for {{ $labels.pz_service }}",
              cause_count("refused") + ": 401/403 (the API key) or, on p13n, TD's token codes "
              "(3000-3003, 3006: token_rejected; 2015, 3010-3012: token_misconfigured). The key or token was "
              "rotated or revoked, or lacks access; the TD code is on the target's status page." + CAUSE_AFTER),
        alert("TdPzServiceNotFound", cause_failures("TdPzServiceNotFound"), "critical",
              "TD does not know personalization service {{ $labels.pz_service }} (404)",
              cause_count("answered 404 Not Found") + ". Verify the service name and the parent "
              "segment id; the service may have been deleted or renamed." + CAUSE_AFTER),
        alert("TdPzServiceUnavailable", cause_failures("TdPzServiceUnavailable"), "critical",
              "Personalization service {{ $labels.pz_service }} is unavailable (503 or TD server errors)",
              cause_count("answered 503 Service Unavailable or a TD server error (other 5xx; on p13n TD's "
                          "codes 9999, 1001-1005, 2001, 2002, 2011, 2012, 2014, 2021, 3013)")
              + ". Check the RT configuration status of the parent segment, then TD's status." + CAUSE_AFTER),
        alert("TdPzRateLimited",
              failures_increase('="rate_limited"') + "\nor\n"
              + f'sum by ({INST_SVC}) (increase(td_pz_api_requests_total{{code="429"}}[5m])) > 0', "warning",
              "TD rate-limits requests for {{ $labels.pz_service }} (429)",
              "{{ $value | humanize }} requests for " + WHERE + " were answered 429 Too Many Requests in the "
              "last 5m (on p13n: TD's codes 2003, Kinesis limit, or 2013, Lambda concurrency). The exporter "
              "backs off, but the service or the account may be at its limit: TD publishes 8,000 decisioning "
              "and 2,000 ingested events/s per account."),
    ]


def probe_alerts():
    status_of_probe = ('{{ with printf "td_pz_probe_http_status_code{parent_segment=%q,pz_service=%q,probe=%q}" '
                       "$labels.parent_segment $labels.pz_service $labels.probe | query }}"
                       "{{ . | first | value }}{{ else }}unknown{{ end }}")
    section_of_probe = ('{{ with printf "td_pz_probe_section_info{parent_segment=%q,pz_service=%q,probe=%q}" '
                        "$labels.parent_segment $labels.pz_service $labels.probe | query }}"
                        '{{ . | first | label "section" }}{{ else }}unknown{{ end }}')
    return [
        alert("TdPzProbeFailing", "td_pz_probe_success == 0", "warning",
              "Probe {{ $labels.probe }} of {{ $labels.pz_service }} is failing",
              "The synthetic probe {{ $labels.probe }} against " + WHERE + " keeps failing a check (last HTTP status "
              + status_of_probe + "). The reason is on the exporter status page and in td_pz_probe_failures_total."),
        alert("TdPzWrongSection",
              ("td_pz_probe_section_match == 0\n"
               "and on (job, instance, parent_segment, pz_service, probe)\n"
               "td_pz_probe_http_status_code == 200"),
              "warning",
              "Probe {{ $labels.probe }} of {{ $labels.pz_service }} gets the wrong section",
              "The persona of probe {{ $labels.probe }} against " + WHERE + " is served section \"" + section_of_probe
              + "\" instead of its expect_section. Segment rules, section order or the persona's attributes changed."),
        alert("TdPzMissingOutputs",
              f'sum by ({INST_SVC}, probe) (increase(td_pz_probe_failures_total{{reason="missing_output"}}[10m])) > 0',
              "warning",
              "Probe {{ $labels.probe }} of {{ $labels.pz_service }} gets responses without expected outputs",
              "{{ $value | humanize }} responses to probe {{ $labels.probe }} against " + WHERE + " in the last "
              "10m lacked an output listed in expect_outputs. An output or attribute was removed from the "
              "service, or the persona no longer qualifies for it."),
        alert("TdPzProbeLatencyHigh",
              f"pz_service:td_pz_probe_duration_seconds:p95_5m > {num(PROBE_P95_THRESHOLD_SECONDS)}", "warning",
              "p95 probe latency of {{ $labels.pz_service }} is {{ $value | humanizeDuration }}",
              "The 95th percentile of probe latency against " + WHERE + " over 5m is {{ $value | humanizeDuration }}, "
              f"above {num(PROBE_P95_THRESHOLD_SECONDS)}s (latency SLO: {pct(LATENCY_SLO)} of probes under "
              f"{LATENCY_SLO_BUCKET}s). Compare td_pz_probe_server_processing_seconds to tell TD processing from "
              "network time."),
    ]


def service_alerts():
    fallback = "|".join(FALLBACK_SECTIONS)
    share_now = ('{{ with printf "pz_service_section:td_pz_section_share:avg5m{parent_segment=%q,pz_service=%q,section=%q}" '
                 "$labels.parent_segment $labels.pz_service $labels.section | query }}"
                 "{{ . | first | value | humanizePercentage }}{{ else }}unknown{{ end }}")
    return [
        alert("TdPzErrorRateHigh", f"td_pz_service_error_rate > {num(ERROR_RATE_WARNING)}", "warning",
              "TD reports {{ $value | humanizePercentage }} errors for {{ $labels.pz_service }}",
              "The error_rate TD reports for " + WHERE + " is {{ $value | humanizePercentage }}, above "
              f"{pct(ERROR_RATE_WARNING)}. Real users get errors or fallback content."),
        alert("TdPzErrorRateCritical", f"td_pz_service_error_rate > {num(ERROR_RATE_CRITICAL)}", "critical",
              "TD reports {{ $value | humanizePercentage }} errors for {{ $labels.pz_service }}",
              "The error_rate TD reports for " + WHERE + " is {{ $value | humanizePercentage }}, above "
              f"{pct(ERROR_RATE_CRITICAL)}. A large part of real users get errors or fallback content."),
        alert("TdPzFallbackShareHigh",
              f'td_pz_section_share{{section=~"{fallback}"}} > {num(FALLBACK_SHARE_THRESHOLD)}', "warning",
              "Section {{ $labels.section }} gets {{ $value | humanizePercentage }} of {{ $labels.pz_service }} responses",
              "{{ $value | humanizePercentage }} of the logged responses of " + WHERE + " in the last "
              "section_share_window were in section {{ $labels.section }} (threshold "
              f"{pct(FALLBACK_SHARE_THRESHOLD)}). Users fall through to default content."),
        alert("TdPzSectionShareDrift",
              (f"abs(\n"
               f"  pz_service_section:td_pz_section_share:avg5m\n"
               f"  -\n"
               f"  pz_service_section:td_pz_section_share:avg5m offset {SECTION_DRIFT_OFFSET}\n"
               f") > {num(SECTION_DRIFT_THRESHOLD)}"),
              "info",
              "The share of section {{ $labels.section }} of {{ $labels.pz_service }} moved by {{ $value | humanizePercentage }} in "
              + SECTION_DRIFT_OFFSET,
              "The 5m share of section {{ $labels.section }} among responses of " + WHERE + " is now "
              + share_now + ", {{ $value | humanizePercentage }} away from " + SECTION_DRIFT_OFFSET + " ago "
              f"(threshold {pct(SECTION_DRIFT_THRESHOLD)}). Expected after a segment or campaign change; "
              "otherwise check segment refreshes and RT attributes."),
        alert("TdPzTrafficNearRateLimit",
              f'td_pz_service_metric{{field="requests_per_second"}} > {num(RATE_WARNING_RPS)}', "warning",
              "{{ $labels.pz_service }} serves {{ $value | humanize }} requests/s, near the source design's "
              f"{TD_RATE_LIMIT_RPS}/s",
              "The metrics endpoint reports {{ $value | humanize }} requests/s for " + WHERE + ", over "
              f"{pct(TD_RATE_LIMIT_WARNING_RATIO)} of the source design's {TD_RATE_LIMIT_RPS} requests/s per "
              "service (not a TD document; TD publishes account-wide limits). Above it clients may get 429."),
    ]


def burn_expr(ratio, budget, pairs):
    return "\nor\n".join(f"(\n"
                         f"  pz_service:{ratio}:ratio_rate{long_w} > ({num(factor)} * {num(budget)})\n"
                         f"  and\n"
                         f"  pz_service:{ratio}:ratio_rate{short_w} > ({num(factor)} * {num(budget)})\n"
                         f")" for factor, long_w, short_w in pairs)


def burn_text(pairs):
    return ", or ".join(f"{num(f)}x over {lw} and {sw}" for f, lw, sw in pairs)


def slo_alerts():
    out = []
    for kind, ratio, budget, slo_text, what in (
        ("Availability", "td_pz_probe_errors", AVAILABILITY_BUDGET,
         f"{pct(AVAILABILITY_SLO)} of probes pass", "Failed probes are"),
        ("Latency", "td_pz_probe_slow", LATENCY_BUDGET,
         f"{pct(LATENCY_SLO)} of probes under {LATENCY_SLO_BUCKET}s", "Probes slower than " + LATENCY_SLO_BUCKET + "s are"),
    ):
        for speed, pairs, severity in (("Fast", BURN_FAST, "critical"), ("Slow", BURN_SLOW, "warning")):
            out.append(alert(
                f"TdPz{kind}BudgetBurn{speed}", burn_expr(ratio, budget, pairs), severity,
                f"{{{{ $labels.pz_service }}}} is burning its {kind.lower()} error budget {'fast' if speed == 'Fast' else 'steadily'}",
                what + " {{ $value | humanizePercentage }} of the probes of " + WHERE + " over the long window. "
                f"The error budget of the SLO ({slo_text}) burns faster than the sustainable rate by at least "
                f"{burn_text(pairs)}.", extra_labels={"slo": kind.lower()}))
    return out


def groups(profile, window_scale=1):
    gs = [{"name": "td-pz-recording", "interval": RECORDING_INTERVAL, "rules": recording_rules(window_scale)}]
    gs += [{"name": name, "interval": ALERT_INTERVAL, "rules": rules()} for name, rules in (
        ("td-pz-exporter", exporter_alerts), ("td-pz-api", api_alerts), ("td-pz-probes", probe_alerts),
        ("td-pz-service", service_alerts), ("td-pz-slo", slo_alerts))]
    names = [r["alert"] for g in gs for r in g["rules"] if "alert" in r]
    assert sorted(names) == sorted(FOR), "FOR must list exactly the alerts"
    for g in gs:
        if profile == "test":
            g["interval"] = TEST_GROUP_INTERVAL
        for r in g["rules"]:
            for key in [k for k in ("for", "keep_firing_for") if k in r]:
                secs = min(r[key], TEST_FOR_CAP) if profile == "test" else r[key]
                if key == "keep_firing_for" and window_scale > 1:
                    # scaled with the burn windows it must outlast, not capped
                    secs = scaled_keep_firing(r[key], window_scale)
                r[key] = dur(secs)
    return gs


# --------------------------------------------------------------------------------------------------- YAML
# A tiny emitter, so that the script needs nothing beyond the standard library and the output stays
# readable: multi-line expressions as literal blocks, everything else plain or single-quoted.

PLAIN_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-")


def scalar(s, indent):
    s = str(s)
    if "\n" in s:
        return "|-\n" + "\n".join(" " * indent + line if line else "" for line in s.split("\n"))
    if s and set(s) <= PLAIN_OK and not s[0] in "-:" and s.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "~"):
        try:
            float(s)
        except ValueError:
            return s
    return "'" + s.replace("'", "''") + "'"


def emit(profile, window_scale=1):
    head = HEADER_TEST if profile == "test" else HEADER
    if window_scale > 1:
        head = (f"# WINDOWS SCALED: the SLO windows of the recording rules are divided by {window_scale} (the names keep\n"
                f"# the unscaled window); keep_firing_for is scaled with them instead of capped. End-to-end test only.\n") + head
    out = [head, "groups:"]
    for g in groups(profile, window_scale):
        out += [f"  - name: {scalar(g['name'], 0)}", f"    interval: {g['interval']}", "    rules:"]
        for r in g["rules"]:
            keys = [k for k in ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations") if k in r]
            for i, key in enumerate(keys):
                lead = "        " if i else "      - "
                if isinstance(r[key], dict):
                    out += [f"{lead}{key}:"] + [f"          {k}: {scalar(v, 12)}" for k, v in r[key].items()]
                else:
                    out.append(f"{lead}{key}: {scalar(r[key], 10)}")
    return "\n".join(out) + "\n"


HEADER = f"""\
# Recording and alerting rules of td-pz-exporter.
#
# GENERATED by scripts/gen-rules.py: do not edit; change the constants at the top of that script and run
#   python3 scripts/gen-rules.py            (writes this file)
#   python3 scripts/gen-rules.py --check    (what CI runs: fails with a diff when this file is stale)
# Unit tests: alerts/tests/*.yaml (promtool test rules); everything: scripts/check-alerts.sh.
# Runbooks: docs/runbooks.md, one section per alert (annotation runbook_url).
#
# Load it in prometheus.yml (`rule_files: [td-pz-rules.yaml]`) and scrape the exporter as job="{JOB}".
#
# SLOs (30-day window, measured by the synthetic probes):
#   availability  {pct(AVAILABILITY_SLO)} of probes pass every check        (error budget {num(AVAILABILITY_BUDGET)})
#   latency       {pct(LATENCY_SLO)} of completed probes under {LATENCY_SLO_BUCKET}s (bucket le="{LATENCY_SLO_BUCKET}", budget {num(LATENCY_BUDGET)})
#   burn-rate alerts (Google SRE workbook): fast/page {burn_text(BURN_FAST)};
#                                           slow/ticket {burn_text(BURN_SLOW)}
# Thresholds:
#   cause pages            {CAUSE_MIN_FAILURES} failures in a row of one probe or poller (key rejected, 404, 503/5xx); they
#                          keep firing {dur(CAUSE_KEEP_FIRING_SECONDS)} after, so the fast burn-rate pages they inhibit drain first
#   TD error_rate          warning > {pct(ERROR_RATE_WARNING)}, critical > {pct(ERROR_RATE_CRITICAL)}
#   probe latency p95      > {num(PROBE_P95_THRESHOLD_SECONDS)}s
#   fallback share         section=~"{'|'.join(FALLBACK_SECTIONS)}" > {pct(FALLBACK_SHARE_THRESHOLD)}
#   section share drift    > {pct(SECTION_DRIFT_THRESHOLD)} (absolute) against offset {SECTION_DRIFT_OFFSET}
#   traffic                > {num(RATE_WARNING_RPS)} requests/s ({pct(TD_RATE_LIMIT_WARNING_RATIO)} of TD's {TD_RATE_LIMIT_RPS}/s per service)
#   poller stale           last success older than {dur(POLLER_STALE_SECONDS)} (pollers {', '.join(STALE_POLLERS)})
#
# Test profile: `python3 scripts/gen-rules.py --profile=test --out=PATH` writes the same rules with every
# `for:` and `keep_firing_for:` capped at {TEST_FOR_CAP}s and every group evaluated every {TEST_GROUP_INTERVAL}, for the
# end-to-end test only."""
HEADER_TEST = ("# TEST PROFILE: every `for:` and `keep_firing_for:` capped at %ds, groups evaluated every %s. For\n"
               "# the end-to-end test only; never load this in production. Users load alerts/td-pz-rules.yaml.\n#\n"
               % (TEST_FOR_CAP, TEST_GROUP_INTERVAL)) + HEADER


# ---------------------------------------------------------------------------------------------------- CLI

def alert_rules():
    """The alerting rules of the default profile, in file order."""
    return [r for g in groups("default") for r in g["rules"] if "alert" in r]


def route_cases():
    """One line per alert: `<receiver> <label>=<value>...`, for `amtool config routes test`."""
    lines = []
    for r in alert_rules():
        labels = {"alertname": r["alert"], **r["labels"],
                  "parent_segment": "394649", "pz_service": "product_recommendations"}
        lines.append(RECEIVER_FOR_SEVERITY[r["labels"]["severity"]] + " "
                     + " ".join(f"{k}={v}" for k, v in labels.items()))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", choices=["default", "test"], default="default")
    ap.add_argument("--out", help=f"output file, '-' for stdout (default {os.path.relpath(DEFAULT_OUT, ROOT)})")
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 with a diff if different")
    ap.add_argument("--route-cases", action="store_true", help="print one amtool routing case per alert")
    ap.add_argument("--list-alerts", action="store_true", help="print the alert names")
    ap.add_argument("--window-scale", type=int, default=1, metavar="N",
                    help="test profile only: divide the SLO windows of the recording rules by N, and the window "
                         "part of the cause alerts' keep_firing_for with them, its margin kept as 10 evaluations "
                         "(60: 1h -> 1m, 35m -> 30s + 50s), so that an end-to-end test sees a burn-rate alert "
                         "drain while its cause still fires")
    a = ap.parse_args()
    if a.window_scale != 1 and (a.profile != "test" or a.window_scale < 1
                                or any(seconds_of(w) % a.window_scale for w in SLO_WINDOWS)):
        ap.error("--window-scale needs --profile=test and must divide every SLO window's seconds")

    if a.route_cases:
        sys.stdout.write(route_cases())
        return 0
    if a.list_alerts:
        print("\n".join(r["alert"] for r in alert_rules()))
        return 0

    text = emit(a.profile, a.window_scale)
    out = a.out or DEFAULT_OUT
    if a.check:
        if out == "-":
            ap.error("--check needs a file")
        current = Path(out).read_text(encoding="utf-8") if os.path.exists(out) else ""
        if current != text:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True),
                fromfile=f"{out} (checked in)", tofile=f"{out} (generated, profile {a.profile})"))
            print(f"gen-rules: {out} is stale; run: python3 scripts/gen-rules.py"
                  + (f" --profile={a.profile}" if a.profile != "default" else "")
                  + (f" --out={a.out}" if a.out else ""), file=sys.stderr)
            return 1
        print(f"gen-rules: {out} is up to date")
        return 0
    if out == "-":
        sys.stdout.write(text)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        print(f"gen-rules: wrote {out} (profile {a.profile})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
