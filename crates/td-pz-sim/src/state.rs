//! The simulator's state: its world (built-in, scenario and generated services), the faults left
//! to apply, the request counts behind `/_sim/stats`, the precision of held answers behind
//! `/_sim/holds`, and the believable traffic it makes up (log entries that grow with time,
//! metrics that drift).
//!
//! It knows nothing of HTTP: the route modules read it and render its figures in a wire shape.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::scenario::{Fault, Scenario, SimFlavor, SimService};
use crate::seed::mix;

/// One request received, for `/_sim/stats`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Received {
    /// Seconds since the simulator started.
    pub t: f64,
    pub endpoint: &'static str,
    pub service: String,
    pub status: u16,
}

/// One generated log entry, before it is rendered in a shape.
#[derive(Clone, Debug)]
pub(super) struct LogEntry {
    /// Position in its service's stream, from 1: the alternative shape's cursor.
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub ts_ms: i64,
    pub request_id: String,
    pub user_id: String,
    pub section: &'static str,
    pub status: u16,
    pub processing_ms: u64,
}

#[derive(Default)]
struct LogStream {
    generated_until: f64,
    entries: VecDeque<LogEntry>,
    seq: u64,
}

/// The figures of a service's metrics, before they are rendered in a shape.
#[derive(Clone, Copy, Debug)]
pub(super) struct MetricFigures {
    pub error_rate: f64,
    pub requests_per_second: f64,
    pub total_requests: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub avg_ms: f64,
    pub wave: f64,
}

/// How precisely injected latencies were held, in microseconds, one entry per held answer (up to
/// [`HOLDS_CAP`]): `late` from the due time to the answer's release, `pickup` from the request
/// reaching the socket to its handler starting (inside the delay, so only `late` matters to a
/// client), `coarse_late` how far past the due time the timer sleep alone woke (a late answer with
/// none of it was held up in the final yield loop). `GET /_sim/holds`; reset with the stats.
#[derive(Debug, Default)]
struct Holds {
    late_us: Vec<u32>,
    pickup_us: Vec<u32>,
    coarse_late_us: Vec<u32>,
}

const HOLDS_CAP: usize = 100_000;
const RECEIVED_CAP: usize = 200_000;

pub struct SimState {
    pub(super) api_key: String,
    pub(super) p13n_token: Option<String>,
    pub(super) started: tokio::time::Instant,
    scenario: Mutex<Scenario>,
    received: Mutex<VecDeque<Received>>,
    counts: Mutex<BTreeMap<String, u64>>,
    logs: Mutex<HashMap<String, LogStream>>,
    holds: Mutex<Holds>,
}

/// The built-in world: the demo's services.
pub fn builtin_services() -> Vec<SimService> {
    let mut web = SimService::new("web_offers", "394649", "5678", SimFlavor::P13n);
    web.database = Some("rt_events".into());
    web.table = Some("web_personalization".into());
    vec![
        SimService::new("product_recommendations", "394649", "1234", SimFlavor::Cdp),
        web,
    ]
}

/// The generated extra services of a parent segment (see `Scenario::discovery_extra`).
fn extra_services(ps: &str, n: u32) -> impl Iterator<Item = SimService> + '_ {
    (1..=n).map(move |i| {
        SimService::new(
            &format!("extra_service_{i:04}"),
            ps,
            &format!("{}", 9_000_000 + u64::from(i)),
            SimFlavor::Cdp,
        )
    })
}

/// The section a persona's user id lands in, and its outputs.
pub fn persona_section(user_id: &str) -> &'static str {
    let u = user_id.to_ascii_lowercase();
    if u.contains("vip") || u.contains("premium") {
        "premium_users"
    } else if u.contains("new") {
        "new_users"
    } else if u.contains("cart") || u.contains("abandon") || u.contains("returning") {
        "cart_abandoners"
    } else {
        "fallback"
    }
}

pub(super) fn outputs_for(section: &str) -> serde_json::Map<String, Value> {
    let v = match section {
        "premium_users" => json!({
            "recommended_products": ["prod_123", "prod_456", "prod_789"],
            "exclusive_offers": ["offer_10", "offer_20"],
            "customer_tier": "premium",
            "purchase_count_30d": 12
        }),
        "new_users" => {
            json!({"recommended_products": ["prod_1", "prod_2"], "welcome_offer": "WELCOME10"})
        }
        "cart_abandoners" => json!({
            "recommended_products": ["prod_42"], "cart_reminder": true, "discount_code": "COMEBACK5"
        }),
        _ => json!({"recommended_products": ["prod_bestseller"]}),
    };
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The traffic mix of generated logs: (section, weight).
pub const SECTION_MIX: &[(&str, f64)] = &[
    ("premium_users", 0.20),
    ("new_users", 0.30),
    ("cart_abandoners", 0.25),
    ("fallback", 0.25),
];

pub(super) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A deterministic number in [0, 1), so traffic is believable and repeatable.
fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimState {
    pub(super) fn new(api_key: String, p13n_token: Option<String>, scenario: Scenario) -> Self {
        SimState {
            api_key,
            p13n_token,
            started: tokio::time::Instant::now(),
            scenario: Mutex::new(scenario),
            received: Mutex::new(VecDeque::new()),
            counts: Mutex::new(BTreeMap::new()),
            logs: Mutex::new(HashMap::new()),
            holds: Mutex::new(Holds::default()),
        }
    }

    pub(super) fn scenario(&self) -> Scenario {
        lock(&self.scenario).clone()
    }

    pub fn set_scenario(&self, s: Scenario) {
        *lock(&self.scenario) = s;
    }

    /// Every service, in a stable order: built-in, the scenario's, then generated extras.
    pub(super) fn services(&self) -> Vec<SimService> {
        let sc = self.scenario();
        let mut all = builtin_services();
        all.extend(sc.services);
        for (ps, n) in &sc.discovery_extra {
            all.extend(extra_services(ps, *n));
        }
        all
    }

    /// Takes the first fault matching, using up one of its `times`.
    pub(super) fn fault(&self, service: &str, user: Option<&str>, endpoint: &str) -> Option<Fault> {
        let mut sc = lock(&self.scenario);
        let f = sc
            .faults
            .iter_mut()
            .find(|f| f.matches(service, user, endpoint))?;
        if let Some(t) = f.times.as_mut() {
            *t -= 1;
        }
        Some(f.clone())
    }

    /// Counts one answered request for `/_sim/stats`.
    pub(super) fn count_request(&self, endpoint: &'static str, service: &str, status: u16) {
        let t = self.started.elapsed().as_secs_f64();
        {
            let mut r = lock(&self.received);
            if r.len() == RECEIVED_CAP {
                r.pop_front();
            }
            r.push_back(Received {
                t,
                endpoint,
                service: service.to_string(),
                status,
            });
        }
        let mut c = lock(&self.counts);
        *c.entry(endpoint.to_string()).or_insert(0) += 1;
        *c.entry(format!("{endpoint}/{service}")).or_insert(0) += 1;
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).iter().cloned().collect()
    }

    pub fn count(&self, key: &str) -> u64 {
        lock(&self.counts).get(key).copied().unwrap_or(0)
    }

    pub fn stats_json(&self) -> Value {
        let counts = lock(&self.counts).clone();
        let received = self.received();
        json!({"total": received.len() as u64, "counts": counts, "requests": received})
    }

    pub(super) fn reset_stats(&self) {
        lock(&self.received).clear();
        lock(&self.counts).clear();
        *lock(&self.holds) = Holds::default();
    }

    pub(super) fn note_hold(&self, pickup: Duration, late: Duration, coarse_late: Duration) {
        let mut h = lock(&self.holds);
        if h.late_us.len() < HOLDS_CAP {
            let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
            h.late_us.push(us(late));
            h.pickup_us.push(us(pickup));
            h.coarse_late_us.push(us(coarse_late));
        }
    }

    pub fn holds_json(&self) -> Value {
        let h = lock(&self.holds);
        json!({"count": h.late_us.len(), "late_us": h.late_us, "pickup_us": h.pickup_us,
               "coarse_late_us": h.coarse_late_us})
    }

    /// A service's metrics now: figures that drift on a minute-long wave, phase per service.
    pub(super) fn metric_figures(&self, svc: &str) -> MetricFigures {
        let t = unix_now();
        let phase = (crate::seed::of(svc) % 1000) as f64;
        let wave = ((t / 60.0) + phase).sin();
        MetricFigures {
            error_rate: (0.01 + 0.004 * wave).max(0.0),
            requests_per_second: ((40.0 + 10.0 * wave) * 100.0).round() / 100.0,
            total_requests: (t as u64 % 1_000_000) * 40,
            p50_ms: 35.0 + 5.0 * wave,
            p95_ms: 80.0 + 10.0 * wave,
            p99_ms: 120.0 + 20.0 * wave,
            avg_ms: 40.0 + 5.0 * wave,
            wave,
        }
    }

    /// Generated entries of a service at or after `since` (seconds), generating what time added.
    pub(super) fn log_entries(&self, svc: &str, since: Option<f64>) -> Vec<LogEntry> {
        let rate = self.scenario().log_rate.unwrap_or(5.0).max(0.0);
        let now = unix_now();
        let mut all = lock(&self.logs);
        let stream = all.entry(svc.to_string()).or_insert_with(|| LogStream {
            // A fresh service already has the last five minutes of traffic.
            generated_until: now - 300.0,
            ..LogStream::default()
        });
        let n = ((now - stream.generated_until) * rate).floor() as u64;
        let seed = crate::seed::of(svc);
        for i in 0..n.min(100_000) {
            stream.seq += 1;
            let s = stream.seq;
            let ts = stream.generated_until + (i as f64 + 1.0) / rate;
            let r = unit(seed ^ s);
            let mut acc = 0.0;
            let mut section = SECTION_MIX[SECTION_MIX.len() - 1].0;
            for (name, w) in SECTION_MIX {
                acc += w;
                if r < acc {
                    section = name;
                    break;
                }
            }
            let err = unit(seed ^ s ^ 0xabc) < 0.01;
            stream.entries.push_back(LogEntry {
                seq: s,
                ts_ms: (ts * 1e6) as i64 / 1000,
                request_id: format!("{svc}-{s}"),
                user_id: format!("user_{}", mix(seed ^ s) % 5000),
                section,
                status: if err { 500 } else { 200 },
                processing_ms: 20 + (mix(s ^ 7) % 60),
            });
            if stream.entries.len() > 20_000 {
                stream.entries.pop_front();
            }
        }
        if n > 0 {
            stream.generated_until += n as f64 / rate.max(f64::MIN_POSITIVE);
        }
        let since_ms = since.map_or(i64::MIN, |s| (s * 1000.0).ceil() as i64);
        stream
            .entries
            .iter()
            .filter(|e| e.ts_ms >= since_ms)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personas_map_to_sections() {
        assert_eq!(persona_section("vip_user_001"), "premium_users");
        assert_eq!(persona_section("new_user_123"), "new_users");
        assert_eq!(persona_section("cart_abandon_456"), "cart_abandoners");
        assert_eq!(persona_section("returning_user_7"), "cart_abandoners");
        assert_eq!(persona_section("customer_12345"), "fallback");
    }

    #[test]
    fn faults_match_and_use_up_times() {
        let f = Fault {
            service: Some("a".into()),
            user_id: Some("u".into()),
            times: Some(1),
            ..Fault::default()
        };
        assert!(f.matches("a", Some("u"), "personalize"));
        assert!(!f.matches("b", Some("u"), "personalize"));
        assert!(!f.matches("a", None, "metrics"));
        let f0 = Fault {
            times: Some(0),
            ..Fault::default()
        };
        assert!(!f0.matches("a", None, "logs"));
        let p = Fault {
            endpoint: Some("p13n".into()),
            ..Fault::default()
        };
        assert!(p.matches("a", None, "p13n_public"));
    }

    #[test]
    fn the_section_mix_adds_up() {
        let s: f64 = SECTION_MIX.iter().map(|(_, w)| w).sum();
        assert!((s - 1.0).abs() < 1e-9);
    }

    #[test]
    fn extra_services_follow_the_builtin_ones() {
        let mut sc = Scenario::default();
        sc.discovery_extra.insert("394649".into(), 3);
        let st = SimState::new("k".into(), None, sc);
        let ids: Vec<_> = st
            .services()
            .into_iter()
            .filter_map(|s| s.service_id)
            .collect();
        assert_eq!(ids, ["1234", "5678", "9000001", "9000002", "9000003"]);
    }
}
