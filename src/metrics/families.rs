//! The per-service families of `/metrics`: for each, its [`catalog`] entry (name, help, type) and
//! how one service's [`Service`] state is written as text. [`super::store::Store::render`] walks
//! them in name order. No name or help text is spelled here.

use super::catalog;
use super::store::*;
use super::text::{self, Value};
use crate::poller::Poller;

/// How much text a render gathers before handing it on, when streaming.
pub const FLUSH_AT: usize = 256 * 1024;

pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: &'static str,
    pub(super) write: Write,
}

type Write = fn(&Service, &'static str, &mut Vec<u8>, &mut Vec<u8>);

impl Family {
    /// The family `desc` of the catalog, written by `write`.
    const fn from(desc: catalog::Family, write: Write) -> Family {
        Family {
            name: desc.name,
            help: desc.help,
            kind: desc.kind.as_str(),
            write,
        }
    }
}

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
    Family::from(catalog::API_REQUESTS, |s, name, l, out| {
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
    }),
    Family::from(catalog::LOG_ENTRIES, |s, name, l, out| {
        let it = s.logs.entries.iter().map(|(k, v)| (k.as_str(), *v));
        by_label(s, name, l, out, "section", it, Value::Uint);
    }),
    Family::from(catalog::LOG_ERRORS, |s, name, l, out| {
        service_gauge(s, name, l, out, s.logs.errors.map(Value::Uint))
    }),
    Family::from(catalog::LOG_LAST_ENTRY, |s, name, l, out| {
        service_gauge(s, name, l, out, s.logs.last_entry.map(Value::Float))
    }),
    Family::from(catalog::LOG_SLOW_ENTRIES, |s, name, l, out| {
        service_gauge(s, name, l, out, s.logs.slow.map(Value::Uint))
    }),
    Family::from(catalog::POLL_CONSECUTIVE_FAILURES, |s, name, l, out| {
        for p in Poller::ALL {
            if let Some(k) = s.pollers[p as usize].as_ref().and_then(|ps| ps.streak) {
                let labels = [("poller", p.as_label()), ("reason", k.reason.as_label())];
                service_labels(l, s, &labels);
                text::sample(out, name, l, Value::Uint(k.count));
            }
        }
    }),
    Family::from(catalog::POLL_FAILURES, |s, name, l, out| {
        for p in Poller::ALL {
            let Some(ps) = &s.pollers[p as usize] else {
                continue;
            };
            for (r, n) in ps.failures.each() {
                service_labels(l, s, &[("poller", p.as_label()), ("reason", r.as_label())]);
                text::sample(out, name, l, Value::Uint(n));
            }
        }
    }),
    Family::from(catalog::POLL_LAST_SUCCESS, |s, name, l, out| {
        poller_series(s, name, l, out, |p| p.last_success.map(Value::Float))
    }),
    Family::from(catalog::POLLS, |s, name, l, out| {
        poller_series(s, name, l, out, |p| p.polls.map(Value::Uint))
    }),
    Family::from(catalog::PROBE_CONSECUTIVE_FAILURES, |s, name, l, out| {
        for (p, probe) in &s.probes {
            if let Some(k) = probe.streak {
                service_labels(l, s, &[("probe", p), ("reason", k.reason.as_label())]);
                text::sample(out, name, l, Value::Uint(k.count));
            }
        }
    }),
    Family::from(catalog::PROBE_DURATION, |s, name, l, out| {
        for (p, probe) in &s.probes {
            if let Some(h) = &probe.duration {
                service_labels(l, s, &[("probe", p)]);
                h.write(out, name, &PROBE_BUCKETS, l);
            }
        }
    }),
    Family::from(catalog::PROBE_FAILURES, |s, name, l, out| {
        for (p, probe) in &s.probes {
            for (r, n) in probe.failures.each() {
                service_labels(l, s, &[("probe", p), ("reason", r.as_label())]);
                text::sample(out, name, l, Value::Uint(n));
            }
        }
    }),
    Family::from(catalog::PROBE_HTTP_STATUS, |s, name, l, out| {
        probe_gauge(s, name, l, out, |p| p.status)
    }),
    Family::from(catalog::PROBE_LAST_DURATION, |s, name, l, out| {
        probe_gauge(s, name, l, out, |p| p.last_duration)
    }),
    Family::from(catalog::PROBE_SECTION_INFO, |s, name, l, out| {
        for (p, probe) in &s.probes {
            if let Some(section) = &probe.section {
                service_labels(l, s, &[("probe", p), ("section", section)]);
                text::sample(out, name, l, Value::Uint(1));
            }
        }
    }),
    Family::from(catalog::PROBE_SECTION_MATCH, |s, name, l, out| {
        probe_gauge(s, name, l, out, |p| {
            p.section_match.map(|m| if m { 1.0 } else { 0.0 })
        })
    }),
    Family::from(catalog::PROBE_SERVER_PROCESSING, |s, name, l, out| {
        probe_gauge(s, name, l, out, |p| p.server_processing)
    }),
    Family::from(catalog::PROBE_SUCCESS, |s, name, l, out| {
        probe_gauge(s, name, l, out, |p| p.success)
    }),
    Family::from(catalog::PROBE_SUCCESSES, |s, name, l, out| {
        for (p, probe) in &s.probes {
            service_labels(l, s, &[("probe", p)]);
            text::sample(out, name, l, Value::Uint(probe.successes));
        }
    }),
    Family::from(catalog::PROBES, |s, name, l, out| {
        for (p, probe) in &s.probes {
            service_labels(l, s, &[("probe", p)]);
            text::sample(out, name, l, Value::Uint(probe.total));
        }
    }),
    Family::from(catalog::SCHEDULE_SKIPPED, |s, name, l, out| {
        poller_series(s, name, l, out, |p| Some(Value::Uint(p.skipped)))
    }),
    Family::from(catalog::SECTION_SHARE, |s, name, l, out| {
        let it = s.logs.shares.iter().map(|(k, v)| (k.as_str(), *v));
        by_label(s, name, l, out, "section", it, Value::Float);
    }),
    Family::from(catalog::SECTIONS_OVERFLOW, |s, name, l, out| {
        service_gauge(s, name, l, out, s.logs.overflow.map(Value::Uint))
    }),
    Family::from(catalog::SERVICE_ERROR_RATE, |s, name, l, out| {
        service_gauge(s, name, l, out, s.error_rate.map(Value::Float))
    }),
    Family::from(catalog::SERVICE_LATENCY, |s, name, l, out| {
        let it = s.latency.iter().map(|(k, v)| (k.as_str(), *v));
        by_label(s, name, l, out, "stat", it, Value::Float);
    }),
    Family::from(catalog::SERVICE_METRIC, |s, name, l, out| {
        let it = s.fields.iter().map(|(k, v)| (k.as_str(), *v));
        by_label(s, name, l, out, "field", it, Value::Float);
    }),
];
