//! The per-service series: compact state per service, written straight to the text format.
//!
//! At thousands of services these families are nearly all of `/metrics` (about 90 series a
//! service). In the `prometheus` crate each series costs ~0.7 KiB (label pairs per child, two
//! histogram shards) plus a full copy per scrape in `gather()`; here a service is one struct of
//! plain numbers behind its own mutex (a few hundred bytes per probe), and a render walks it
//! once per family. Removing a service is removing its entry: nothing can be left behind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::text::{self, Histogram, Value};
use super::{Endpoint, Poller};
use crate::reason::Reason;

pub const PROBE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
pub const LOG_PROCESSING_BUCKETS: [f64; 7] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

const REASONS: usize = Reason::ALL.len();

/// Counters by reason; a bit per reason says whether its series exists (created at zero up
/// front, or on first use).
#[derive(Debug, Default)]
pub struct ByReason {
    present: u32,
    counts: [u64; REASONS],
}

impl ByReason {
    pub fn create(&mut self, r: Reason) {
        self.present |= 1 << r as usize;
    }

    pub fn inc(&mut self, r: Reason) {
        self.create(r);
        self.counts[r as usize] += 1;
    }

    fn each(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .filter(|r| self.present & (1 << **r as usize) != 0)
            .map(|r| (*r, self.counts[*r as usize]))
    }
}

#[derive(Debug, Default)]
pub struct Probe {
    pub total: u64,
    pub failures: ByReason,
    pub success: Option<f64>,
    pub duration: Option<Box<Histogram<11>>>,
    pub last_duration: Option<f64>,
    pub server_processing: Option<f64>,
    pub status: Option<f64>,
    pub section_match: Option<bool>,
    pub section: Option<String>,
}

#[derive(Debug, Default)]
pub struct PollerSeries {
    pub polls: u64,
    pub skipped: u64,
    pub failures: ByReason,
    pub last_success: Option<f64>,
}

#[derive(Debug, Default)]
pub struct LogSeries {
    pub entries: SmallMap<String, u64>,
    pub shares: SmallMap<String, f64>,
    pub last_entry: Option<f64>,
    pub errors: Option<u64>,
    pub overflow: Option<u64>,
    pub processing: Option<Box<Histogram<7>>>,
}

/// A map of a few entries kept as a sorted Vec: a B-tree allocates a node of 11 slots for the
/// first entry, and a service's maps hold a handful (its endpoints and codes, stats, sections).
#[derive(Debug)]
pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, k: &Q) -> Result<usize, usize>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.0.binary_search_by(|(x, _)| x.borrow().cmp(k))
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.find(k).ok().map(|i| &mut self.0[i].1)
    }

    pub fn insert(&mut self, k: K, v: V) {
        match self.find(&k) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (k, v)),
        }
    }

    pub fn entry_or_default(&mut self, k: K) -> &mut V
    where
        V: Default,
    {
        let i = match self.find(&k) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (k, V::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Self {
        let mut m = SmallMap::default();
        for (k, v) in it {
            m.insert(k, v);
        }
        m
    }
}

/// Every series of one service.
#[derive(Debug)]
pub struct Service {
    ps: String,
    svc: String,
    /// By name; a Vec, as a service has a few probes and a B-tree node would hold 11.
    pub probes: Vec<(String, Probe)>,
    pub pollers: [Option<PollerSeries>; 4],
    pub api: SmallMap<(Endpoint, Option<u16>), u64>,
    pub error_rate: Option<f64>,
    pub fields: SmallMap<String, f64>,
    pub latency: SmallMap<String, f64>,
    pub logs: LogSeries,
}

impl Service {
    fn new(ps: &str, svc: &str) -> Self {
        Service {
            ps: ps.to_string(),
            svc: svc.to_string(),
            probes: Vec::new(),
            pollers: Default::default(),
            api: SmallMap::default(),
            error_rate: None,
            fields: SmallMap::default(),
            latency: SmallMap::default(),
            logs: LogSeries::default(),
        }
    }

    /// The series of a probe, created on first use.
    pub fn probe(&mut self, name: &str) -> &mut Probe {
        let i = match self.probes.binary_search_by(|(p, _)| p.as_str().cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.probes.insert(i, (name.to_string(), Probe::default()));
                i
            }
        };
        &mut self.probes[i].1
    }

    pub fn poller(&mut self, p: Poller) -> &mut PollerSeries {
        self.pollers[p as usize].get_or_insert_with(Default::default)
    }
}

type Key = (String, String);

/// The services and their series.
#[derive(Default)]
pub struct Store {
    services: RwLock<BTreeMap<Key, Arc<Mutex<Service>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Runs `f` on the series of a service, creating it on first use.
    pub fn with<R>(&self, ps: &str, svc: &str, f: impl FnOnce(&mut Service) -> R) -> R {
        let found = {
            let map = self.services.read().unwrap_or_else(|e| e.into_inner());
            map.get(&(ps.to_string(), svc.to_string())).cloned()
        };
        let entry = match found {
            Some(e) => e,
            None => {
                let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
                map.entry((ps.to_string(), svc.to_string()))
                    .or_insert_with(|| Arc::new(Mutex::new(Service::new(ps, svc))))
                    .clone()
            }
        };
        let mut s = lock(&entry);
        f(&mut s)
    }

    pub fn remove(&self, ps: &str, svc: &str) {
        let mut map = self.services.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&(ps.to_string(), svc.to_string()));
    }

    pub fn keys(&self) -> Vec<Key> {
        let map = self.services.read().unwrap_or_else(|e| e.into_inner());
        map.keys().cloned().collect()
    }

    /// Appends every family with at least one series, services in (parent segment, name)
    /// order. `flush` is called whenever `out` holds more than [`FLUSH_AT`] bytes and at the end;
    /// it may drain `out` (to stream into a compressor) or leave it (to build the whole text).
    pub fn render(&self, out: &mut Vec<u8>, flush: &mut dyn FnMut(&mut Vec<u8>)) {
        let services: Vec<Arc<Mutex<Service>>> = {
            let map = self.services.read().unwrap_or_else(|e| e.into_inner());
            map.values().cloned().collect()
        };
        let mut labels = Vec::with_capacity(256);
        for family in FAMILIES {
            let start = out.len();
            text::header(out, family.name, family.help, family.kind);
            let header_end = out.len();
            let mut wrote = false;
            for s in &services {
                (family.write)(&lock(s), family.name, &mut labels, out);
                if out.len() > header_end {
                    wrote = true;
                    if out.len() >= FLUSH_AT {
                        flush(out);
                    }
                }
            }
            if !wrote {
                out.truncate(start);
            }
        }
        flush(out);
    }
}

/// How much text a render gathers before handing it on, when streaming.
pub const FLUSH_AT: usize = 256 * 1024;

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    write: fn(&Service, &'static str, &mut Vec<u8>, &mut Vec<u8>),
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
const FAMILIES: &[Family] = &[
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_bits() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, p) in Poller::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
        }
    }

    #[test]
    fn small_maps_stay_sorted() {
        let mut m: SmallMap<String, u64> = [("b".to_string(), 2), ("a".to_string(), 1)]
            .into_iter()
            .collect();
        m.insert("c".into(), 3);
        m.insert("a".into(), 10);
        *m.entry_or_default("0".into()) += 5;
        *m.get_mut("b").unwrap() += 1;
        let got: Vec<(&str, u64)> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, [("0", 5), ("a", 10), ("b", 3), ("c", 3)]);
        m.retain(|k| k != "a");
        assert_eq!(m.iter().count(), 3);
        assert!(m.get_mut("a").is_none());
    }

    #[test]
    fn families_are_in_name_order() {
        let names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
