//! Recent results per target (probe or poller), for the status page and `/status.json`.
//!
//! Each target keeps its own ring of the last `limit` results, so one target failing all the
//! time never pushes another's rare failure out; and each keeps its last failure (result and
//! exchange) apart from the ring, so it stays visible after any number of later successes.
//! Per service it also keeps the section shares of the last logs poll, for the status page's
//! section bars.

use parking_lot::RwLock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use serde::Serialize;

use crate::outcome::{Check, Exchange, PollOutcome, ProbeOutcome};
use crate::poller::{target_id, Poller};
use crate::reason::Reason;

/// One result, as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    #[serde(serialize_with = "unix")]
    pub at: SystemTime,
    pub ok: bool,
    pub reason: Option<&'static str>,
    pub status: Option<u16>,
    /// TD's error code (p13n), when the answer carried one.
    pub td_code: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub section: Option<String>,
    pub message: String,
}

fn unix<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(crate::outcome::unix_of(*t))
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub id: String,
    pub poller: Poller,
    pub parent_segment: String,
    pub service: String,
    pub probe: Option<String>,
    pub recent: VecDeque<Record>,
    pub last_failure: Option<Record>,
    #[serde(serialize_with = "unix_opt")]
    pub last_success: Option<SystemTime>,
    pub last_checks: Vec<Check>,
    /// Boxed, as most targets have no failed exchange and a `Target` stays small.
    pub last_exchange: Option<Box<Exchange>>,
    pub last_failed_exchange: Option<Box<Exchange>>,
    pub runs: u64,
    pub failures: u64,
}

fn unix_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_f64(crate::outcome::unix_of(*t)),
        None => s.serialize_none(),
    }
}

impl Target {
    pub fn last(&self) -> Option<&Record> {
        self.recent.back()
    }
}

/// Results kept over all targets by default, so that memory stays bounded however many targets
/// there are: a few hundred targets each keep the per-target limit, many thousands keep fewer
/// each (at least 3; the last failure is kept apart in any case). Sizes: docs/performance.md.
pub const DEFAULT_MAX_RECORDS: usize = 50_000;

/// The response body kept of a successful exchange; failed ones keep all of the
/// [`crate::outcome::BODY_EXCERPT`], as successful log pages were most of the history's memory
/// at scale (docs/performance.md).
pub const SUCCESS_EXCERPT: usize = 1024;

/// Cuts `s` to at most `max` bytes at a character boundary.
fn shorten(s: &mut String, max: usize, truncated: &mut bool) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.shrink_to_fit();
        *truncated = true;
    }
}

pub struct History {
    limit: usize,
    max_records: AtomicUsize,
    /// Boxed: a B-tree node holds 11 values inline, and a `Target` is large.
    targets: RwLock<BTreeMap<String, Box<Target>>>,
    /// The section shares of each service's last logs poll, keyed by (parent segment, service).
    shares: RwLock<BTreeMap<(String, String), Shares>>,
}

/// (section, share) pairs, as the logs poller computes them.
type Shares = Vec<(String, f64)>;

/// One section's share of the entries in a service's logs window (0 to 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SectionShare {
    pub section: String,
    pub share: f64,
}

/// How many of a service's kept probe results landed in one section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SectionCount {
    pub section: String,
    pub count: u64,
}

/// Where a service's users land: the logs window's shares and the sections its probes got.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sections {
    pub parent_segment: String,
    pub service: String,
    /// From the last logs poll, by section name; empty before it or when the window is empty.
    pub shares: Vec<SectionShare>,
    /// Over the kept results of the service's probes that named a section, by section name.
    pub probe_sections: Vec<SectionCount>,
}

impl History {
    pub fn new(limit: usize) -> Self {
        History {
            limit: limit.max(1),
            max_records: AtomicUsize::new(DEFAULT_MAX_RECORDS),
            targets: RwLock::new(BTreeMap::new()),
            shares: RwLock::new(BTreeMap::new()),
        }
    }

    /// Caps the results kept over all targets: each target keeps
    /// `min(limit, max_records / targets)` of them, at least one.
    pub fn set_max_records(&self, n: usize) {
        self.max_records.store(n, Ordering::Relaxed);
    }

    fn per_target(&self, targets: usize) -> usize {
        let share = self.max_records.load(Ordering::Relaxed) / targets.max(1);
        self.limit.min(share).max(1)
    }

    /// Makes a target known (shown as "not run yet") before its first result.
    pub fn declare(&self, poller: Poller, ps: &str, svc: &str, probe: Option<&str>) {
        let id = target_id(poller, ps, svc, probe);
        let mut t = self.targets.write();
        t.entry(id.clone()).or_insert_with(|| {
            Box::new(Target {
                id,
                poller,
                parent_segment: ps.to_string(),
                service: svc.to_string(),
                probe: probe.map(str::to_string),
                recent: VecDeque::new(),
                last_failure: None,
                last_success: None,
                last_checks: Vec::new(),
                last_exchange: None,
                last_failed_exchange: None,
                runs: 0,
                failures: 0,
            })
        });
    }

    /// Forgets targets for which `keep` is false (they left the configuration).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut t = self.targets.write();
        t.retain(|id, _| keep(id));
        let mut s = self.shares.write();
        s.retain(|(ps, svc), _| keep(&target_id(Poller::Logs, ps, svc, None)));
    }

    /// The section shares a service's logs poll computed over its window, replacing the last.
    pub fn record_shares(&self, ps: &str, svc: &str, shares: &[(String, f64)]) {
        let mut s = self.shares.write();
        s.insert((ps.to_string(), svc.to_string()), shares.to_vec());
    }

    /// Per service with probes or a logs poll, its sections (discovery's `""` service left out).
    pub fn sections(&self) -> Vec<Sections> {
        let mut counts: BTreeMap<(String, String), BTreeMap<String, u64>> = BTreeMap::new();
        for x in self.targets.read().values() {
            if x.service.is_empty() || !matches!(x.poller, Poller::Probe | Poller::Logs) {
                continue;
            }
            let c = counts
                .entry((x.parent_segment.clone(), x.service.clone()))
                .or_default();
            if x.poller == Poller::Probe {
                for sec in x.recent.iter().filter_map(|r| r.section.as_ref()) {
                    *c.entry(sec.clone()).or_insert(0) += 1;
                }
            }
        }
        let shares = self.shares.read();
        counts
            .into_iter()
            .map(|(key, c)| Sections {
                shares: shares
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .map(|(section, share)| SectionShare {
                        section: section.clone(),
                        share: *share,
                    })
                    .collect(),
                probe_sections: c
                    .into_iter()
                    .map(|(section, count)| SectionCount { section, count })
                    .collect(),
                parent_segment: key.0,
                service: key.1,
            })
            .collect()
    }

    fn push(&self, id: &str, rec: Record, checks: Vec<Check>, mut exchange: Option<Exchange>) {
        if rec.ok {
            if let Some(resp) = exchange.as_mut().and_then(|e| e.response.as_mut()) {
                shorten(&mut resp.body, SUCCESS_EXCERPT, &mut resp.truncated);
            }
        }
        let mut t = self.targets.write();
        let limit = self.per_target(t.len());
        let Some(target) = t.get_mut(id) else { return };
        target.runs += 1;
        if rec.ok {
            target.last_success = Some(rec.at);
        } else {
            target.failures += 1;
            target.last_failure = Some(rec.clone());
            target.last_failed_exchange = exchange.clone().map(Box::new);
        }
        target.last_checks = checks;
        if exchange.is_some() {
            target.last_exchange = exchange.map(Box::new);
        }
        while target.recent.len() >= limit {
            target.recent.pop_front();
        }
        target.recent.push_back(rec);
    }

    pub fn record_probe(
        &self,
        ps: &str,
        svc: &str,
        probe: &str,
        out: &ProbeOutcome,
        exchange: Exchange,
    ) {
        let rec = Record {
            at: out.at,
            ok: out.success(),
            reason: out.reason.map(|r| r.as_label()),
            status: out.status,
            td_code: out.td_code,
            duration_seconds: out.duration.map(|d| d.as_secs_f64()),
            section: out.section.clone(),
            message: out.message.clone(),
        };
        self.push(
            &target_id(Poller::Probe, ps, svc, Some(probe)),
            rec,
            out.checks.clone(),
            Some(exchange),
        );
    }

    pub fn record_poll(
        &self,
        poller: Poller,
        ps: &str,
        svc: &str,
        out: &PollOutcome,
        exchange: Option<Exchange>,
    ) {
        let rec = Record {
            at: out.at,
            ok: out.reason.is_none(),
            reason: out.reason.map(|r: Reason| r.as_label()),
            status: out.status,
            td_code: None,
            duration_seconds: Some(out.duration.as_secs_f64()),
            section: None,
            message: out.message.clone(),
        };
        self.push(&target_id(poller, ps, svc, None), rec, Vec::new(), exchange);
    }

    pub fn snapshot(&self) -> Vec<Target> {
        let t = self.targets.read();
        t.values().map(|b| (**b).clone()).collect()
    }

    /// The targets without their exchanges and with only the last `recent` results: cheap to
    /// render for a page that lists every target.
    pub fn summary(&self, recent: usize) -> Vec<Target> {
        let t = self.targets.read();
        t.values()
            .map(|x| Target {
                recent: x.recent.iter().rev().take(recent).rev().cloned().collect(),
                last_exchange: None,
                last_failed_exchange: None,
                ..x.clone_light()
            })
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<Target> {
        let t = self.targets.read();
        t.get(id).map(|b| (**b).clone())
    }

    pub fn len(&self) -> usize {
        self.targets.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Target {
    fn clone_light(&self) -> Target {
        Target {
            id: self.id.clone(),
            poller: self.poller,
            parent_segment: self.parent_segment.clone(),
            service: self.service.clone(),
            probe: self.probe.clone(),
            recent: VecDeque::new(),
            last_failure: self.last_failure.clone(),
            last_success: self.last_success,
            last_checks: self.last_checks.clone(),
            last_exchange: None,
            last_failed_exchange: None,
            runs: self.runs,
            failures: self.failures,
        }
    }
}

#[cfg(test)]
mod tests;
