//! The logs poller: counts each log entry once and keeps the section distribution.
//!
//! Responses overlap (each request starts `overlap` before the newest entry seen), entries share
//! timestamps and arrive out of order; [`LogState::ingest`] counts an entry only the first time
//! it is seen. An entry's identity is its `id` (or `request_id`), else its whole content; the
//! same content twice in one response is two entries, and a later response holding it twice
//! again adds nothing. Identities are remembered for a horizon behind the newest entry; an
//! entry older than that is taken as counted already. The section cap maps sections to labels.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{send_with_retry, Ctx, ServiceRef};
use crate::config::LogsMapping;
use crate::outcome::unix_now;
use crate::outcome::{Exchange, Ingest, LogsSeen, Observed, PollOutcome};
use crate::reason::Reason;
use crate::td::logs_answer;
use crate::td::mgmt::{self, LogEntry};

/// Identities remembered per service at most.
const MAX_REMEMBERED: usize = 200_000;

/// The label of entries that carry no section.
pub const UNKNOWN_SECTION: &str = "__unknown__";

/// The label of the sections over the cap.
pub const OTHER_SECTION: &str = "__other__";

/// Keeps the set of section labels bounded: an allow-list, or the first `max` distinct names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionCap {
    allow: Option<HashSet<String>>,
    max: usize,
    kept: HashSet<String>,
}

impl SectionCap {
    pub fn new(allow: Option<&[String]>, max: usize) -> Self {
        SectionCap {
            allow: allow.map(|a| a.iter().cloned().collect()),
            max: max.max(1),
            kept: HashSet::new(),
        }
    }

    fn same_rules(&self, other: &SectionCap) -> bool {
        self.allow == other.allow && self.max == other.max
    }

    /// The label for `section`, and whether it overflowed into `__other__`.
    pub fn label(&mut self, section: Option<&str>) -> (String, bool) {
        let Some(s) = section else {
            return (UNKNOWN_SECTION.to_string(), false);
        };
        if let Some(allow) = &self.allow {
            return if allow.contains(s) {
                (s.to_string(), false)
            } else {
                (OTHER_SECTION.to_string(), true)
            };
        }
        if self.kept.contains(s) {
            return (s.to_string(), false);
        }
        if self.kept.len() < self.max {
            self.kept.insert(s.to_string());
            return (s.to_string(), false);
        }
        (OTHER_SECTION.to_string(), true)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    count: u32,
    ts: f64,
}

/// What the logs poller remembers of one service between runs.
#[derive(Debug)]
pub struct LogState {
    seen: HashMap<u64, Seen>,
    window: VecDeque<(f64, String)>,
    newest: Option<f64>,
    cap: SectionCap,
    horizon: f64,
}

impl LogState {
    pub fn new(cap: SectionCap, horizon: Duration) -> Self {
        LogState {
            seen: HashMap::new(),
            window: VecDeque::new(),
            newest: None,
            cap,
            horizon: horizon.as_secs_f64(),
        }
    }

    /// Takes new cap rules (a reload) while keeping what was counted.
    pub fn set_cap(&mut self, cap: SectionCap) {
        if !self.cap.same_rules(&cap) {
            self.cap = cap;
        }
    }

    pub fn newest(&self) -> Option<f64> {
        self.newest
    }

    /// Counts the entries of one poll (all its pages together) that were not seen before.
    pub fn ingest(&mut self, entries: &[LogEntry], now: f64) -> Ingest {
        let mut out = Ingest::default();
        let floor = self.newest.map(|n| n - self.horizon);
        let mut occurrence: HashMap<u64, u32> = HashMap::new();
        for e in entries {
            let ts = e.timestamp.unwrap_or(now);
            if floor.is_some_and(|f| ts < f) {
                out.too_old += 1;
                continue;
            }
            let k = occurrence.entry(e.identity).or_insert(0);
            *k += 1;
            let seen = self.seen.entry(e.identity).or_default();
            // Seen again: keep it remembered as long as it keeps coming back.
            seen.ts = seen.ts.max(ts);
            if *k <= seen.count {
                continue;
            }
            seen.count = *k;
            seen.ts = seen.ts.max(ts);
            let (label, overflow) = self.cap.label(e.section.as_deref());
            out.new_entries += 1;
            *out.by_section.entry(label.clone()).or_insert(0) += 1;
            if overflow {
                out.overflow += 1;
            }
            if e.error {
                out.errors += 1;
            }
            if let Some(p) = e.processing_time {
                out.processing.push(p);
            }
            self.window.push_back((ts, label));
            if e.timestamp.is_some() {
                self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
            }
        }
        // Entries without a timestamp count as seen `now`, so the memory stays bounded even for
        // logs that never carry one.
        let keep_after = self.newest.unwrap_or(now) - self.horizon;
        self.seen.retain(|_, s| s.ts >= keep_after);
        if self.seen.len() > MAX_REMEMBERED {
            // A last guard: forget the older half rather than grow without bound.
            let mut ts: Vec<f64> = self.seen.values().map(|s| s.ts).collect();
            ts.sort_by(f64::total_cmp);
            let cut = ts[ts.len() / 2];
            self.seen.retain(|_, s| s.ts >= cut);
        }
        out
    }

    /// Each section's share of the entries whose time lies in the last `window` (sums to 1),
    /// or nothing when there were none.
    pub fn shares(&mut self, now: f64, window: Duration) -> Vec<(String, f64)> {
        let from = now - window.as_secs_f64();
        // Entries arrive roughly in time order; drop the old ones from the front and filter the rest.
        while self.window.front().is_some_and(|(t, _)| *t < from) {
            self.window.pop_front();
        }
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total = 0u64;
        for (t, s) in &self.window {
            if *t >= from {
                *counts.entry(s.as_str()).or_insert(0) += 1;
                total += 1;
            }
        }
        if total == 0 {
            return Vec::new();
        }
        counts
            .into_iter()
            .map(|(s, c)| (s.to_string(), c as f64 / total as f64))
            .collect()
    }
}

/// Log state per service, kept across reloads.
#[derive(Default)]
pub struct LogStates {
    map: Mutex<HashMap<String, Arc<Mutex<LogState>>>>,
}

impl LogStates {
    pub fn get(&self, key: &str, cap: SectionCap, horizon: Duration) -> Arc<Mutex<LogState>> {
        let mut map = self.map.lock();
        let st = map
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(LogState::new(cap.clone(), horizon))))
            .clone();
        st.lock().set_cap(cap);
        st
    }

    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut map = self.map.lock();
        map.retain(|k, _| keep(k));
    }
}

fn rfc3339(unix: f64) -> String {
    chrono::DateTime::from_timestamp_micros((unix * 1e6) as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub async fn run(
    ctx: &Ctx,
    svc: &ServiceRef,
    service_id: &str,
    cap: SectionCap,
    mapping: &LogsMapping,
) -> (PollOutcome, Exchange) {
    let start = Instant::now();
    let lr = &ctx.defaults.logs;
    let window = ctx.defaults.section_share_window;
    let horizon = (lr.overlap * 2).max(Duration::from_secs(600)).max(window);
    let state = ctx.log_states.get(&svc.key(), cap, horizon);
    let since = {
        let st = state.lock();
        st.newest()
            .map(|n| n - lr.overlap.as_secs_f64())
            .unwrap_or_else(|| unix_now() - window.as_secs_f64())
    };
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut failure: Option<(Reason, String, Option<u16>)> = None;
    let mut exchange = Exchange::default();
    let mut status = None;
    let mut page: Option<String> = None;
    let mut pages = 0;
    let mut attempts = Vec::new();
    while pages < lr.max_pages {
        let mut query = vec![
            (lr.since_param.clone(), rfc3339(since)),
            (lr.limit_param.clone(), lr.limit.to_string()),
        ];
        if let Some(p) = &page {
            query.push((mapping.next_param.clone(), p.clone()));
        }
        let req = mgmt::logs_request(
            &ctx.td.cdp_api_url,
            &svc.parent_segment,
            service_id,
            &query,
            &ctx.td.api_key,
        );
        let r = send_with_retry(ctx, svc, &req).await;
        attempts.extend_from_slice(&r.attempts);
        pages += 1;
        status = r.sent.result.as_ref().ok().map(|x| x.status);
        let parsed = match r.ok() {
            Err(f) => Err((f.reason, f.message, f.status)),
            Ok(resp) => logs_answer::parse_logs(&resp.body, mapping)
                .map_err(|e| (Reason::InvalidResponse, e.0, Some(resp.status))),
        };
        exchange = r.sent.exchange;
        match parsed {
            Err(f) => {
                failure = Some(f);
                break;
            }
            Ok(p) => {
                entries.extend(p.entries);
                match p.next_page {
                    Some(n) if Some(&n) != page.as_ref() && !mapping.next_param.is_empty() => {
                        page = Some(n)
                    }
                    _ => break,
                }
            }
        }
    }
    // What arrived before a failure is still counted: the next run's overlap would bring it
    // again, and counting is idempotent.
    let now = unix_now();
    let (ingest, shares, newest) = {
        let mut st = state.lock();
        let ingest = st.ingest(&entries, now);
        let shares = st.shares(now, window);
        (ingest, shares, st.newest())
    };
    let mut out = PollOutcome {
        at: SystemTime::now(),
        reason: None,
        status,
        duration: start.elapsed(),
        message: format!(
            "{} new entr{} from {} page(s){}",
            ingest.new_entries,
            if ingest.new_entries == 1 { "y" } else { "ies" },
            pages,
            if ingest.overflow > 0 {
                format!(", {} over the section cap", ingest.overflow)
            } else {
                String::new()
            }
        ),
        attempts,
        observed: Observed::Nothing,
    };
    out.observed = Observed::Logs(LogsSeen {
        ingest,
        newest,
        shares,
    });
    if let Some((reason, message, st)) = failure {
        out.reason = Some(reason);
        out.status = st.or(out.status);
        out.message = format!("{message} ({})", out.message);
    }
    (out, exchange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::td::mgmt::parse_logs;

    fn entries(json: &str) -> Vec<LogEntry> {
        parse_logs(json.as_bytes()).unwrap().entries
    }

    fn state() -> LogState {
        LogState::new(SectionCap::new(None, 50), Duration::from_secs(600))
    }

    const T: f64 = 1_700_000_000.0;

    #[test]
    fn overlapping_responses_count_each_entry_once() {
        let mut st = state();
        let first = entries(
            r#"{"logs":[
            {"user_id":"a","section":"vip","timestamp":1700000000},
            {"user_id":"b","section":"new","timestamp":1700000001},
            {"user_id":"c","section":"new","timestamp":1700000001}]}"#,
        );
        let i = st.ingest(&first, T + 5.0);
        assert_eq!(i.new_entries, 3);
        // The next response overlaps the last second, adds one entry at the same timestamp
        // and one out of order.
        let second = entries(
            r#"{"logs":[
            {"user_id":"c","section":"new","timestamp":1700000001},
            {"user_id":"b","section":"new","timestamp":1700000001},
            {"user_id":"d","section":"vip","timestamp":1700000001},
            {"user_id":"e","section":"cart","timestamp":1700000003},
            {"user_id":"f","section":"vip","timestamp":1700000002}]}"#,
        );
        let i = st.ingest(&second, T + 5.0);
        assert_eq!(i.new_entries, 3);
        assert_eq!(
            i.by_section,
            BTreeMap::from([("cart".into(), 1), ("vip".into(), 2)])
        );
        // Replaying everything adds nothing.
        assert_eq!(st.ingest(&first, T + 5.0).new_entries, 0);
        assert_eq!(st.ingest(&second, T + 5.0).new_entries, 0);
        assert_eq!(st.newest(), Some(T + 3.0));
    }

    #[test]
    fn identical_entries_in_one_response_are_distinct() {
        let mut st = state();
        let twice = entries(
            r#"[{"section":"vip","timestamp":1700000000},{"section":"vip","timestamp":1700000000}]"#,
        );
        assert_eq!(st.ingest(&twice, T).new_entries, 2);
        assert_eq!(st.ingest(&twice, T).new_entries, 0);
        let thrice = entries(
            r#"[{"section":"vip","timestamp":1700000000},{"section":"vip","timestamp":1700000000},{"section":"vip","timestamp":1700000000}]"#,
        );
        assert_eq!(st.ingest(&thrice, T).new_entries, 1);
    }

    #[test]
    fn shares_add_up_to_one_within_the_window() {
        let mut st = state();
        let e = entries(
            r#"[
            {"u":1,"section":"vip","timestamp":1700000000},
            {"u":2,"section":"vip","timestamp":1700000100},
            {"u":3,"section":"new","timestamp":1700000100},
            {"u":4,"section":"cart","timestamp":1700000200},
            {"u":5,"section":"cart","timestamp":1700000250}]"#,
        );
        st.ingest(&e, T + 250.0);
        // A 200 s window at T+250 holds entries from T+50 on: vip 1, new 1, cart 2.
        let s = st.shares(T + 250.0, Duration::from_secs(200));
        assert_eq!(
            s,
            vec![
                ("cart".into(), 0.5),
                ("new".into(), 0.25),
                ("vip".into(), 0.25)
            ]
        );
        let sum: f64 = s.iter().map(|(_, v)| v).sum();
        assert!((sum - 1.0).abs() < 1e-12);
        assert!(st.shares(T + 10_000.0, Duration::from_secs(200)).is_empty());
    }

    #[test]
    fn the_cap_keeps_the_first_sections() {
        let mut cap = SectionCap::new(None, 50);
        let mut other = 0;
        for i in 0..300 {
            let (label, overflow) = cap.label(Some(&format!("s{i}")));
            if overflow {
                assert_eq!(label, OTHER_SECTION);
                other += 1;
            }
        }
        assert_eq!(other, 250);
        assert_eq!(cap.label(Some("s3")), ("s3".to_string(), false));
        let mut allow = SectionCap::new(Some(&["vip".to_string()]), 50);
        assert_eq!(allow.label(Some("vip")), ("vip".to_string(), false));
        assert_eq!(allow.label(Some("x")), (OTHER_SECTION.to_string(), true));
        assert_eq!(allow.label(None), (UNKNOWN_SECTION.to_string(), false));
    }
}
