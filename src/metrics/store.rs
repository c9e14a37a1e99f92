//! The per-service series: compact state per service, written straight to the text format.
//!
//! At thousands of services these families are nearly all of `/metrics`. In the `prometheus`
//! crate each series carries its label pairs per child and two histogram shards, and `gather()`
//! copies all of them per scrape; here a service is one struct of plain numbers behind its own
//! mutex, and a render walks it once per family (sizes: docs/performance.md). Removing a service
//! is removing its entry: nothing can be left behind.

use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::families::FAMILIES;
pub use super::families::FLUSH_AT;
use super::text::{self, Histogram};
use crate::poller::Poller;
use crate::reason::Reason;
use crate::td::Endpoint;

/// The probe latency buckets: 0.1 s is TD's published p95 and 0.5 s the latency SLO's threshold
/// (`LATENCY_SLO_BUCKET` in scripts/gen-rules.py); six buckets and `+Inf` keep a probe target within
/// its series budget (docs/metrics.md).
pub const PROBE_BUCKETS: [f64; 6] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

const REASONS: usize = Reason::ALL.len();

/// Counters by reason; a bit per reason says whether its series exists (created on first use).
#[derive(Debug, Default)]
pub struct ByReason {
    pub(super) present: u32,
    pub(super) counts: [u64; REASONS],
}

impl ByReason {
    pub fn inc(&mut self, r: Reason) {
        self.present |= 1 << r as usize;
        self.counts[r as usize] += 1;
    }

    pub(super) fn each(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .filter(|r| self.present & (1 << **r as usize) != 0)
            .map(|r| (*r, self.counts[*r as usize]))
    }
}

/// Failures in a row and the latest one's reason; `None` once a run passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streak {
    pub reason: Reason,
    pub count: u64,
}

impl Streak {
    /// The streak after a run that failed for `failed` (or passed: `None`).
    pub fn after(prev: Option<Streak>, failed: Option<Reason>) -> Option<Streak> {
        failed.map(|reason| Streak {
            reason,
            count: prev.map_or(0, |s| s.count) + 1,
        })
    }
}

#[derive(Debug, Default)]
pub struct Probe {
    pub total: u64,
    pub successes: u64,
    pub failures: ByReason,
    pub streak: Option<Streak>,
    pub success: Option<f64>,
    pub duration: Option<Box<Histogram<6>>>,
    pub last_duration: Option<f64>,
    pub server_processing: Option<f64>,
    pub status: Option<f64>,
    pub section_match: Option<bool>,
    pub section: Option<String>,
}

#[derive(Debug, Default)]
pub struct PollerSeries {
    /// `None` for the probe poller: each probe counts its runs in `td_pz_probes_total`.
    pub polls: Option<u64>,
    pub skipped: u64,
    pub failures: ByReason,
    pub streak: Option<Streak>,
    pub last_success: Option<f64>,
}

#[derive(Debug, Default)]
pub struct LogSeries {
    pub entries: SmallMap<String, u64>,
    pub shares: SmallMap<String, f64>,
    pub last_entry: Option<f64>,
    pub errors: Option<u64>,
    pub overflow: Option<u64>,
    /// Entries whose processing_time_ms is over [`SLOW_ENTRY_SECONDS`].
    pub slow: Option<u64>,
}

/// TD's published p95 latency: a log entry that took longer counts in `td_pz_log_slow_entries_total`.
pub const SLOW_ENTRY_SECONDS: f64 = 0.1;

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
    pub(super) ps: String,
    pub(super) svc: String,
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

impl Store {
    /// Runs `f` on the series of a service, creating it on first use.
    pub fn with<R>(&self, ps: &str, svc: &str, f: impl FnOnce(&mut Service) -> R) -> R {
        let found = {
            let map = self.services.read();
            map.get(&(ps.to_string(), svc.to_string())).cloned()
        };
        let entry = match found {
            Some(e) => e,
            None => {
                let mut map = self.services.write();
                map.entry((ps.to_string(), svc.to_string()))
                    .or_insert_with(|| Arc::new(Mutex::new(Service::new(ps, svc))))
                    .clone()
            }
        };
        let mut s = entry.lock();
        f(&mut s)
    }

    pub fn remove(&self, ps: &str, svc: &str) {
        let mut map = self.services.write();
        map.remove(&(ps.to_string(), svc.to_string()));
    }

    pub fn keys(&self) -> Vec<Key> {
        let map = self.services.read();
        map.keys().cloned().collect()
    }

    /// Appends every family with at least one series, services in (parent segment, name)
    /// order. `flush` is called whenever `out` holds more than [`FLUSH_AT`] bytes and at the end;
    /// it may drain `out` (to stream into a compressor) or leave it (to build the whole text).
    pub fn render(&self, out: &mut Vec<u8>, flush: &mut dyn FnMut(&mut Vec<u8>)) {
        let services: Vec<Arc<Mutex<Service>>> = {
            let map = self.services.read();
            map.values().cloned().collect()
        };
        let mut labels = Vec::with_capacity(256);
        for family in FAMILIES {
            let start = out.len();
            text::header(out, family.name, family.help, family.kind);
            let header_end = out.len();
            let mut wrote = false;
            for s in &services {
                (family.write)(&s.lock(), family.name, &mut labels, out);
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
