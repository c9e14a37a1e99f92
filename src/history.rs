//! Recent results per target (probe or poller), for the status page and `/status.json`.
//!
//! Each target keeps its own ring of the last `limit` results, so one target failing all the
//! time never pushes another's rare failure out; and each keeps its last failure (result and
//! exchange) apart from the ring, so it stays visible after any number of later successes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::SystemTime;

use serde::Serialize;

use crate::outcome::{Check, Exchange, PollOutcome, ProbeOutcome};
use crate::poller::Poller;
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
    s.serialize_f64(crate::metrics::unix_of(*t))
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
        Some(t) => s.serialize_f64(crate::metrics::unix_of(*t)),
        None => s.serialize_none(),
    }
}

impl Target {
    pub fn last(&self) -> Option<&Record> {
        self.recent.back()
    }
}

/// Results kept over all targets by default: ~10 MB. Up to 500 targets each keeps the per-target
/// limit (100); at 5,000 services (15,000 targets) the per-target limit alone would keep 1.5
/// million records, ~300 MB, and each keeps 3 (its last failure is kept apart in any case).
pub const DEFAULT_MAX_RECORDS: usize = 50_000;

/// The response body kept of a successful exchange; failed ones keep all of the
/// [`crate::outcome::BODY_EXCERPT`]. At 5,000 services the 4 KiB log pages alone were ~15 MB.
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
    /// Boxed: a B-tree node holds 11 values inline, and a `Target` is ~0.4 KiB.
    targets: RwLock<BTreeMap<String, Box<Target>>>,
}

pub fn target_id(poller: Poller, ps: &str, svc: &str, probe: Option<&str>) -> String {
    match probe {
        Some(p) => format!("{}/{ps}/{svc}/{p}", poller.as_label()),
        None => format!("{}/{ps}/{svc}", poller.as_label()),
    }
}

impl History {
    pub fn new(limit: usize) -> Self {
        History {
            limit: limit.max(1),
            max_records: AtomicUsize::new(DEFAULT_MAX_RECORDS),
            targets: RwLock::new(BTreeMap::new()),
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
        let mut t = self.targets.write().unwrap_or_else(|e| e.into_inner());
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
        let mut t = self.targets.write().unwrap_or_else(|e| e.into_inner());
        t.retain(|id, _| keep(id));
    }

    fn push(&self, id: &str, rec: Record, checks: Vec<Check>, mut exchange: Option<Exchange>) {
        if rec.ok {
            if let Some(resp) = exchange.as_mut().and_then(|e| e.response.as_mut()) {
                shorten(&mut resp.body, SUCCESS_EXCERPT, &mut resp.truncated);
            }
        }
        let mut t = self.targets.write().unwrap_or_else(|e| e.into_inner());
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
        let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
        t.values().map(|b| (**b).clone()).collect()
    }

    /// The targets without their exchanges and with only the last `recent` results: cheap to
    /// render for a page that lists every target.
    pub fn summary(&self, recent: usize) -> Vec<Target> {
        let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
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
        let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
        t.get(id).map(|b| (**b).clone())
    }

    pub fn len(&self) -> usize {
        self.targets.read().map(|t| t.len()).unwrap_or(0)
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
mod tests {
    use super::*;

    fn outcome(ok: bool) -> ProbeOutcome {
        ProbeOutcome {
            at: SystemTime::now(),
            reason: (!ok).then_some(Reason::Timeout),
            status: None,
            duration: None,
            server_processing: None,
            section: None,
            section_match: None,
            td_code: None,
            checks: vec![],
            message: String::new(),
            attempts: vec![],
        }
    }

    #[test]
    fn successful_exchanges_keep_a_shorter_body() {
        let h = History::new(10);
        h.declare(Poller::Probe, "1", "a", Some("vip"));
        let big = |body: &str| Exchange {
            response: Some(crate::outcome::ResponseRecord {
                status: 200,
                body: body.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        // 'é' is two bytes: the cut lands on a character boundary.
        let body = format!("x{}", "é".repeat(3000));
        h.record_probe("1", "a", "vip", &outcome(false), big(&body));
        h.record_probe("1", "a", "vip", &outcome(true), big(&body));
        let t = h.get("probe/1/a/vip").unwrap();
        let ok = t.last_exchange.unwrap().response.unwrap();
        assert!(ok.body.len() <= SUCCESS_EXCERPT && ok.body.len() > SUCCESS_EXCERPT - 2);
        assert!(ok.truncated);
        let failed = t.last_failed_exchange.unwrap().response.unwrap();
        assert_eq!(failed.body, body, "a failure keeps its whole excerpt");
    }

    #[test]
    fn records_over_all_targets_are_capped() {
        let h = History::new(100);
        h.set_max_records(1_000);
        for i in 0..50 {
            h.declare(Poller::Probe, "1", &format!("s{i}"), Some("vip"));
        }
        for _ in 0..100 {
            for i in 0..50 {
                h.record_probe(
                    "1",
                    &format!("s{i}"),
                    "vip",
                    &outcome(true),
                    Exchange::default(),
                );
            }
        }
        let kept: Vec<usize> = h.snapshot().iter().map(|t| t.recent.len()).collect();
        assert!(
            kept.iter().all(|n| *n == 20),
            "1,000 / 50 targets: {kept:?}"
        );
        // Few targets: the per-target limit applies.
        let h = History::new(100);
        h.declare(Poller::Probe, "1", "only", Some("vip"));
        for _ in 0..150 {
            h.record_probe("1", "only", "vip", &outcome(true), Exchange::default());
        }
        assert_eq!(h.snapshot()[0].recent.len(), 100);
    }

    #[test]
    fn a_rare_failure_survives_500_later_results() {
        let h = History::new(100);
        h.declare(Poller::Probe, "1", "a", Some("always_failing"));
        h.declare(Poller::Probe, "1", "a", Some("failed_once"));
        h.record_probe(
            "1",
            "a",
            "failed_once",
            &outcome(false),
            Exchange::default(),
        );
        for _ in 0..500 {
            h.record_probe(
                "1",
                "a",
                "always_failing",
                &outcome(false),
                Exchange::default(),
            );
            h.record_probe("1", "a", "failed_once", &outcome(true), Exchange::default());
        }
        let once = h.get("probe/1/a/failed_once").unwrap();
        assert_eq!(once.recent.len(), 100);
        assert!(once.recent.iter().all(|r| r.ok));
        let f = once.last_failure.expect("the single failure is kept");
        assert_eq!(f.reason, Some("timeout"));
        assert_eq!(once.failures, 1);
        assert_eq!(once.runs, 501);
        assert!(once.last_failed_exchange.is_some());
        let always = h.get("probe/1/a/always_failing").unwrap();
        assert_eq!(always.failures, 500);
    }
}
