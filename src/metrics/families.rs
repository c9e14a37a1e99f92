//! The per-service families of `/metrics`: for each, its name, help, type and how one service's
//! [`Service`] state is written as text. [`super::store::Store::render`] walks them in name order.

use super::store::*;
use super::text::{self, Value};
use crate::poller::Poller;

/// How much text a render gathers before handing it on, when streaming.
pub const FLUSH_AT: usize = 256 * 1024;

pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: &'static str,
    pub(super) write: fn(&Service, &'static str, &mut Vec<u8>, &mut Vec<u8>),
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";
const HISTOGRAM: &str = "histogram";

/// `parent_segment`, `pz_service` and the extra labels, in alphabetical order of name.
fn service_labels(buf: &mut Vec<u8>, s: &Service, extra: &[(&str, &str)]) {
    buf.clear();
    let mut all: [(&str, &str); 5] = [("", ""); 5];
    all[0] = ("parent_segment", &s.ps);
    all[1] = ("pz_service", &s.svc);
    let n = 2 + extra.len();
    all[2..n].copy_from_slice(extra);
    all[..n].sort_unstable_by_key(|(k, _)| *k);
    for (i, (k, v)) in all[..n].iter().enumerate() {
        text::label(buf, i == 0, k, v);
    }
}

fn probe_gauge(
    s: &Service,
    name: &'static str,
    l: &mut Vec<u8>,
    out: &mut Vec<u8>,
    get: fn(&Probe) -> Option<f64>,
) {
    for (p, probe) in &s.probes {
        if let Some(v) = get(probe) {
            service_labels(l, s, &[("probe", p)]);
            text::sample(out, name, l, Value::Float(v));
        }
    }
}

fn poller_series(
    s: &Service,
    name: &'static str,
    l: &mut Vec<u8>,
    out: &mut Vec<u8>,
    get: fn(&PollerSeries) -> Option<Value>,
) {
    for p in Poller::ALL {
        if let Some(v) = s.pollers[p as usize].as_ref().and_then(get) {
            service_labels(l, s, &[("poller", p.as_label())]);
            text::sample(out, name, l, v);
        }
    }
}

fn service_gauge(
    s: &Service,
    name: &'static str,
    l: &mut Vec<u8>,
    out: &mut Vec<u8>,
    v: Option<Value>,
) {
    if let Some(v) = v {
        service_labels(l, s, &[]);
        text::sample(out, name, l, v);
    }
}

fn by_label<'a, V: Copy>(
    s: &Service,
    name: &'static str,
    l: &mut Vec<u8>,
    out: &mut Vec<u8>,
    label: &str,
    values: impl Iterator<Item = (&'a str, V)>,
    value: fn(V) -> Value,
) {
    for (k, v) in values {
        service_labels(l, s, &[(label, k)]);
        text::sample(out, name, l, value(v));
    }
}

/// Every per-service family, in name order.
pub(super) const FAMILIES: &[Family] = &[
    Family {
        name: "td_pz_api_requests_total",
        help: "Requests to TD by endpoint and HTTP status (code=\"error\" when no response came).",
        kind: COUNTER,
        write: |s, name, l, out| {
            let mut code = String::new();
            for ((endpoint, status), n) in s.api.iter() {
                code.clear();
                match status {
                    Some(c) => code.push_str(&c.to_string()),
                    None => code.push_str("error"),
                }
                service_labels(l, s, &[("code", &code), ("endpoint", endpoint.as_label())]);
                text::sample(out, name, l, Value::Uint(*n));
            }
        },
    },
    Family {
        name: "td_pz_log_entries_total",
        help: "Log entries seen, each counted once.",
        kind: COUNTER,
        write: |s, name, l, out| {
            let it = s.logs.entries.iter().map(|(k, v)| (k.as_str(), *v));
            by_label(s, name, l, out, "section", it, Value::Uint);
        },
    },
    Family {
        name: "td_pz_log_errors_total",
        help: "Log entries with an error status or an error field.",
        kind: COUNTER,
        write: |s, name, l, out| service_gauge(s, name, l, out, s.logs.errors.map(Value::Uint)),
    },
    Family {
        name: "td_pz_log_last_entry_timestamp_seconds",
        help: "Timestamp of the newest log entry seen.",
        kind: GAUGE,
        write: |s, name, l, out| {
            service_gauge(s, name, l, out, s.logs.last_entry.map(Value::Float))
        },
    },
    Family {
        name: "td_pz_log_processing_seconds",
        help: "processing_time_ms of log entries, in seconds.",
        kind: HISTOGRAM,
        write: |s, name, l, out| {
            if let Some(h) = &s.logs.processing {
                service_labels(l, s, &[]);
                h.write(out, name, &LOG_PROCESSING_BUCKETS, l);
            }
        },
    },
    Family {
        name: "td_pz_poll_failures_total",
        help: "Failed polls by reason.",
        kind: COUNTER,
        write: |s, name, l, out| {
            for p in Poller::ALL {
                let Some(ps) = &s.pollers[p as usize] else {
                    continue;
                };
                for (r, n) in ps.failures.each() {
                    service_labels(l, s, &[("poller", p.as_label()), ("reason", r.as_label())]);
                    text::sample(out, name, l, Value::Uint(n));
                }
            }
        },
    },
    Family {
        name: "td_pz_poll_last_success_timestamp_seconds",
        help: "Unix time of the last successful poll.",
        kind: GAUGE,
        write: |s, name, l, out| {
            poller_series(s, name, l, out, |p| p.last_success.map(Value::Float))
        },
    },
    Family {
        name: "td_pz_polls_total",
        help: "Polls run.",
        kind: COUNTER,
        write: |s, name, l, out| poller_series(s, name, l, out, |p| Some(Value::Uint(p.polls))),
    },
    Family {
        name: "td_pz_probe_duration_seconds",
        help: "Client-side latency of completed probe requests.",
        kind: HISTOGRAM,
        write: |s, name, l, out| {
            for (p, probe) in &s.probes {
                if let Some(h) = &probe.duration {
                    service_labels(l, s, &[("probe", p)]);
                    h.write(out, name, &PROBE_BUCKETS, l);
                }
            }
        },
    },
    Family {
        name: "td_pz_probe_failures_total",
        help: "Failed probes by reason.",
        kind: COUNTER,
        write: |s, name, l, out| {
            for (p, probe) in &s.probes {
                for (r, n) in probe.failures.each() {
                    service_labels(l, s, &[("probe", p), ("reason", r.as_label())]);
                    text::sample(out, name, l, Value::Uint(n));
                }
            }
        },
    },
    Family {
        name: "td_pz_probe_http_status_code",
        help: "HTTP status of the last probe (0 when no response).",
        kind: GAUGE,
        write: |s, name, l, out| probe_gauge(s, name, l, out, |p| p.status),
    },
    Family {
        name: "td_pz_probe_last_duration_seconds",
        help: "Latency of the last probe (NaN when it got no response).",
        kind: GAUGE,
        write: |s, name, l, out| probe_gauge(s, name, l, out, |p| p.last_duration),
    },
    Family {
        name: "td_pz_probe_section_info",
        help: "The section the last probe got (value always 1).",
        kind: GAUGE,
        write: |s, name, l, out| {
            for (p, probe) in &s.probes {
                if let Some(section) = &probe.section {
                    service_labels(l, s, &[("probe", p), ("section", section)]);
                    text::sample(out, name, l, Value::Uint(1));
                }
            }
        },
    },
    Family {
        name: "td_pz_probe_section_match",
        help: "1 if the last probe's section equals expect_section.",
        kind: GAUGE,
        write: |s, name, l, out| {
            probe_gauge(s, name, l, out, |p| {
                p.section_match.map(|m| if m { 1.0 } else { 0.0 })
            })
        },
    },
    Family {
        name: "td_pz_probe_server_processing_seconds",
        help: "processing_time_ms of the last probe response, in seconds.",
        kind: GAUGE,
        write: |s, name, l, out| probe_gauge(s, name, l, out, |p| p.server_processing),
    },
    Family {
        name: "td_pz_probe_success",
        help: "1 if the last probe passed every check, else 0.",
        kind: GAUGE,
        write: |s, name, l, out| probe_gauge(s, name, l, out, |p| p.success),
    },
    Family {
        name: "td_pz_probes_total",
        help: "Probes run.",
        kind: COUNTER,
        write: |s, name, l, out| {
            for (p, probe) in &s.probes {
                service_labels(l, s, &[("probe", p)]);
                text::sample(out, name, l, Value::Uint(probe.total));
            }
        },
    },
    Family {
        name: "td_pz_schedule_skipped_total",
        help: "Runs skipped: the previous run of the same job was still going, or the scheduler fell more than a period behind.",
        kind: COUNTER,
        write: |s, name, l, out| poller_series(s, name, l, out, |p| Some(Value::Uint(p.skipped))),
    },
    Family {
        name: "td_pz_section_share",
        help: "Share of each section among log entries in the section share window.",
        kind: GAUGE,
        write: |s, name, l, out| {
            let it = s.logs.shares.iter().map(|(k, v)| (k.as_str(), *v));
            by_label(s, name, l, out, "section", it, Value::Float);
        },
    },
    Family {
        name: "td_pz_sections_overflow_total",
        help: "Log entries counted as section=\"__other__\" by the section cap.",
        kind: COUNTER,
        write: |s, name, l, out| service_gauge(s, name, l, out, s.logs.overflow.map(Value::Uint)),
    },
    Family {
        name: "td_pz_service_error_rate",
        help: "error_rate from the service metrics endpoint, as a ratio 0..1.",
        kind: GAUGE,
        write: |s, name, l, out| service_gauge(s, name, l, out, s.error_rate.map(Value::Float)),
    },
    Family {
        name: "td_pz_service_latency_seconds",
        // `stat`, not `quantile`: that label is reserved for summaries, and promtool refuses
        // it on a gauge.
        help: "Latency reported by the service metrics endpoint, in seconds, by stat (p50, p95, p99, avg).",
        kind: GAUGE,
        write: |s, name, l, out| {
            let it = s.latency.iter().map(|(k, v)| (k.as_str(), *v));
            by_label(s, name, l, out, "stat", it, Value::Float);
        },
    },
    Family {
        name: "td_pz_service_metric",
        help: "Other numeric fields of the service metrics endpoint, by dotted path.",
        kind: GAUGE,
        write: |s, name, l, out| {
            let it = s.fields.iter().map(|(k, v)| (k.as_str(), *v));
            by_label(s, name, l, out, "field", it, Value::Float);
        },
    },
];
