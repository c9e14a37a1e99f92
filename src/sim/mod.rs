//! The TD simulator: both personalization API flavors and the management endpoints, on loopback.
//!
//! Checks the `TD1` key (and the p13n token), maps personas to sections, makes believable
//! traffic (logs that grow with time, metrics that drift), injects the faults of its
//! [`Scenario`] and counts every request it receives (`GET /_sim/stats`), so that tests can
//! check what the exporter sent. It shares no protocol code with the exporter's client on purpose
//! (only [`crate::kernel_time`], the socket clocks both sides read).

pub mod scenario;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use scenario::{Fault, Scenario, SimFlavor, SimService};

pub type SimBody = BoxBody<Bytes, io::Error>;

/// How the simulator is started.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub api_key: String,
    /// The `WP13n-Token` the p13n endpoints require; `None` accepts any.
    pub p13n_token: Option<String>,
    pub scenario: Scenario,
}

/// One request received, for `/_sim/stats`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Received {
    /// Seconds since the simulator started.
    pub t: f64,
    pub endpoint: &'static str,
    pub service: String,
    pub status: u16,
}

#[derive(Default)]
struct LogStream {
    generated_until: f64,
    entries: VecDeque<Value>,
    seq: u64,
}

pub struct SimState {
    api_key: String,
    p13n_token: Option<String>,
    started: tokio::time::Instant,
    scenario: Mutex<Scenario>,
    received: Mutex<VecDeque<Received>>,
    counts: Mutex<BTreeMap<String, u64>>,
    logs: Mutex<HashMap<String, LogStream>>,
    holds: Mutex<Holds>,
}

const RECEIVED_CAP: usize = 200_000;

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

/// The built-in world: the demo's services.
pub fn builtin_services() -> Vec<SimService> {
    vec![
        SimService {
            name: "product_recommendations".into(),
            parent_segment: "394649".into(),
            service_id: Some("1234".into()),
            flavor: SimFlavor::Cdp,
            database: None,
            table: None,
        },
        SimService {
            name: "web_offers".into(),
            parent_segment: "394649".into(),
            service_id: Some("5678".into()),
            flavor: SimFlavor::P13n,
            database: Some("rt_events".into()),
            table: Some("web_personalization".into()),
        },
    ]
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

fn outputs_for(section: &str) -> serde_json::Map<String, Value> {
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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

use crate::kernel_time;
/// A small deterministic generator, so traffic is believable and repeatable.
use crate::schedule::mix64 as mix;

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

impl SimState {
    fn scenario(&self) -> Scenario {
        self.scenario
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_scenario(&self, s: Scenario) {
        *self.scenario.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    fn services(&self) -> Vec<SimService> {
        let mut all = builtin_services();
        all.extend(self.scenario().services);
        all
    }

    /// Takes the first fault matching, using up one of its `times`.
    fn fault(&self, service: &str, user: Option<&str>, endpoint: &str) -> Option<Fault> {
        let mut sc = self.scenario.lock().unwrap_or_else(|e| e.into_inner());
        let f = sc
            .faults
            .iter_mut()
            .find(|f| f.matches(service, user, endpoint))?;
        if let Some(t) = f.times.as_mut() {
            *t -= 1;
        }
        Some(f.clone())
    }

    fn record(&self, endpoint: &'static str, service: &str, status: u16) {
        let t = self.started.elapsed().as_secs_f64();
        {
            let mut r = self.received.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry(endpoint.to_string()).or_insert(0) += 1;
        *c.entry(format!("{endpoint}/{service}")).or_insert(0) += 1;
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn count(&self, key: &str) -> u64 {
        self.counts
            .lock()
            .ok()
            .and_then(|c| c.get(key).copied())
            .unwrap_or(0)
    }

    pub fn stats_json(&self) -> Value {
        let counts = self.counts.lock().map(|c| c.clone()).unwrap_or_default();
        let received = self.received();
        let total: u64 = received.len() as u64;
        json!({
            "total": total,
            "counts": counts,
            "requests": received,
        })
    }

    fn note_hold(&self, pickup: Duration, late: Duration, coarse_late: Duration) {
        if let Ok(mut h) = self.holds.lock() {
            if h.late_us.len() < HOLDS_CAP {
                let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
                h.late_us.push(us(late));
                h.pickup_us.push(us(pickup));
                h.coarse_late_us.push(us(coarse_late));
            }
        }
    }

    pub fn holds_json(&self) -> Value {
        let h = self.holds.lock();
        let (late, pickup, coarse) = h
            .as_ref()
            .map(|h| {
                (
                    h.late_us.clone(),
                    h.pickup_us.clone(),
                    h.coarse_late_us.clone(),
                )
            })
            .unwrap_or_default();
        json!({"count": late.len(), "late_us": late, "pickup_us": pickup, "coarse_late_us": coarse})
    }

    fn metrics_body(&self, svc: &str) -> Value {
        if let Some(v) = self.scenario().metrics.get(svc) {
            return v.clone();
        }
        let t = unix_now();
        let phase = (crate::schedule::stable_hash(svc) % 1000) as f64;
        let wave = ((t / 60.0) + phase).sin();
        let rps = 40.0 + 10.0 * wave;
        json!({
            "error_rate": (0.01 + 0.004 * wave).max(0.0),
            "requests_per_second": (rps * 100.0).round() / 100.0,
            "total_requests": (t as u64 % 1_000_000) * 40,
            "error_count": ((t as u64 % 1_000_000) * 40) / 100,
            "p50_latency_ms": 35.0 + 5.0 * wave,
            "p95_latency_ms": 80.0 + 10.0 * wave,
            "p99_latency_ms": 120.0 + 20.0 * wave,
            "avg_latency_ms": 40.0 + 5.0 * wave,
            "cache": {"hit_ratio": format!("{:.3}", 0.9 + 0.05 * wave)},
            "window": "1h"
        })
    }

    /// Entries of a service newer than `since`, generating what time has added.
    fn logs_since(&self, svc: &str, since: Option<f64>) -> Vec<Value> {
        let sc = self.scenario();
        if let Some(fixed) = sc.logs.get(svc) {
            return fixed.clone();
        }
        let rate = sc.log_rate.unwrap_or(5.0).max(0.0);
        let now = unix_now();
        let mut all = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let stream = all.entry(svc.to_string()).or_insert_with(|| LogStream {
            // A fresh service already has the last five minutes of traffic.
            generated_until: now - 300.0,
            ..LogStream::default()
        });
        let n = ((now - stream.generated_until) * rate).floor() as u64;
        let seed = crate::schedule::stable_hash(svc);
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
            let ts_str = chrono::DateTime::from_timestamp_micros((ts * 1e6) as i64)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default();
            stream.entries.push_back(json!({
                "request_id": format!("{svc}-{s}"),
                "user_id": format!("user_{}", mix(seed ^ s) % 5000),
                "section": section,
                "timestamp": ts_str,
                "status": if err { 500 } else { 200 },
                "processing_time_ms": 20 + (mix(s ^ 7) % 60),
            }));
            if stream.entries.len() > 20_000 {
                stream.entries.pop_front();
            }
        }
        if n > 0 {
            stream.generated_until += n as f64 / rate.max(f64::MIN_POSITIVE);
        }
        let since = since.unwrap_or(f64::MIN);
        stream
            .entries
            .iter()
            .filter(|e| {
                e.get("timestamp")
                    .and_then(|t| t.as_str())
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t.timestamp_micros() as f64 / 1e6 >= since)
            })
            .cloned()
            .collect()
    }
}

/// A body that sends `total` bytes of `fill` in chunks, optionally slowly or cut off.
struct Chunked {
    remaining: usize,
    chunk: usize,
    delay: Option<Duration>,
    fail_after: Option<usize>,
    sent: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if let Some(limit) = self.fail_after {
            if self.sent >= limit {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated reset",
                ))));
            }
        }
        if let Some(d) = self.delay {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(d)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        let n = self.chunk.min(self.remaining);
        self.remaining -= n;
        self.sent += n;
        let mut buf = vec![b' '; n];
        if self.sent == n {
            buf[0] = b'[';
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
    }
}

use std::future::Future;

fn full(b: impl Into<Bytes>) -> SimBody {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn reply(status: u16, body: SimBody, content_type: &str) -> Response<SimBody> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_reply(status: u16, v: &Value) -> Response<SimBody> {
    reply(
        status,
        full(serde_json::to_vec(v).unwrap_or_default()),
        "application/json",
    )
}

/// What a request is, once its path is understood.
enum Route {
    Personalize { ps: String, svc: String, test: bool },
    P13n { database: String, table: String },
    Metrics { ps: String, id: String },
    Logs { ps: String, id: String },
    Discovery { ps: String },
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::POST, ["audiences", ps, "personalization", svc]) => Some(Route::Personalize {
            ps: ps.to_string(),
            svc: svc.to_string(),
            test: false,
        }),
        (&Method::POST, ["audiences", ps, "personalization", svc, "test"]) => {
            Some(Route::Personalize {
                ps: ps.to_string(),
                svc: svc.to_string(),
                test: true,
            })
        }
        (&Method::GET, ["audiences", ps, "personalization_services", id, "metrics"]) => {
            Some(Route::Metrics {
                ps: ps.to_string(),
                id: id.to_string(),
            })
        }
        (&Method::GET, ["audiences", ps, "personalization_services", id, "logs"]) => {
            Some(Route::Logs {
                ps: ps.to_string(),
                id: id.to_string(),
            })
        }
        (&Method::GET, ["audiences", ps, "realtime_personalization_services"]) => {
            Some(Route::Discovery { ps: ps.to_string() })
        }
        (&Method::POST, [db, table]) if *db != "_sim" => Some(Route::P13n {
            database: db.to_string(),
            table: table.to_string(),
        }),
        _ => None,
    }
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

async fn read_body(req: Request<Incoming>, cap: usize) -> Option<Bytes> {
    let limited = http_body_util::Limited::new(req.into_body(), cap);
    limited.collect().await.ok().map(|c| c.to_bytes())
}

/// Answers one request. An injected latency holds the answer until that long after the request
/// reached the socket ([`kernel_time`]), so neither the simulator's wake-up nor its own work adds to
/// the delay a client sees.
async fn handle(
    state: Arc<SimState>,
    req: Request<Incoming>,
    arrived: std::time::Instant,
) -> Response<SimBody> {
    let picked = std::time::Instant::now();
    let mut hold = None;
    let resp = answer(state.clone(), req, &mut hold).await;
    if let Some(d) = hold {
        let due = arrived + d;
        let woke = precise_delay_until(due).await;
        state.note_hold(
            picked.saturating_duration_since(arrived),
            due.elapsed(),
            woke.saturating_duration_since(due),
        );
    }
    resp
}

async fn answer(
    state: Arc<SimState>,
    req: Request<Incoming>,
    hold: &mut Option<Duration>,
) -> Response<SimBody> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path.starts_with("/_sim/") {
        return control(state, req).await;
    }
    let Some(r) = route(&method, &path) else {
        state.record("unknown", "", 404);
        return json_reply(
            404,
            &json!({"error": "not found", "message": format!("no route for {method} {path}")}),
        );
    };
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let token = req
        .headers()
        .get("wp13n-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let q = query(&req);
    let body = read_body(req, 1024 * 1024).await.unwrap_or_default();
    let sc = state.scenario();
    let services = state.services();
    let find = |pred: &dyn Fn(&SimService) -> bool| services.iter().find(|s| pred(s)).cloned();

    // Which service, which endpoint, which user.
    let (endpoint, svc_name, known): (&'static str, String, bool) = match &r {
        Route::Personalize { ps, svc, test } => (
            if *test {
                "personalize_test"
            } else {
                "personalize"
            },
            svc.clone(),
            find(&|s| s.name == *svc && s.parent_segment == *ps && s.flavor == SimFlavor::Cdp)
                .is_some(),
        ),
        Route::P13n { database, table } => match find(&|s| {
            s.database.as_deref() == Some(database) && s.table.as_deref() == Some(table)
        }) {
            Some(s) => ("p13n", s.name, true),
            None => ("p13n", table.clone(), false),
        },
        Route::Metrics { ps, id } | Route::Logs { ps, id } => {
            let ep = if matches!(r, Route::Metrics { .. }) {
                "metrics"
            } else {
                "logs"
            };
            match find(&|s| s.service_id.as_deref() == Some(id) && s.parent_segment == *ps) {
                Some(s) => (ep, s.name, true),
                None => (ep, id.clone(), false),
            }
        }
        Route::Discovery { ps } => ("discovery", ps.clone(), true),
    };
    let known = known || sc.accept_any_service;
    let user_id: Option<String> = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.as_object().and_then(|o| {
            o.get("user_id")
                .or_else(|| o.get("td_client_id"))
                .or_else(|| o.values().find(|x| x.is_string()))
                .and_then(|x| x.as_str().map(str::to_string))
        })
    });

    let expected = format!("TD1 {}", state.api_key);
    let status_of = |code: u16, state: &SimState| state.record(endpoint, &svc_name, code);
    if sc.revoked || auth != expected {
        status_of(401, &state);
        return json_reply(
            401,
            &json!({"error": "Unauthorized", "message": "invalid API key"}),
        );
    }
    if endpoint == "p13n" {
        match (&state.p13n_token, &token) {
            (_, None) => {
                status_of(400, &state);
                return json_reply(
                    400,
                    &json!({"code": 3000, "message": "WP13n-Token header is missing"}),
                );
            }
            (Some(want), Some(got)) if want != got => {
                status_of(400, &state);
                return json_reply(
                    400,
                    &json!({"code": 3001, "message": "token is not in the configuration"}),
                );
            }
            _ => {}
        }
    }
    if !known {
        status_of(404, &state);
        return json_reply(
            404,
            &json!({"error": "Not Found", "message": "unknown service or parent segment"}),
        );
    }
    let fault = state.fault(&svc_name, user_id.as_deref(), endpoint);
    if let Some(f) = &fault {
        if let Some(ms) = f.latency_ms {
            *hold = Some(Duration::from_millis(ms));
        }
        if f.hang {
            status_of(0, &state);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if let Some(code) = f.status {
            status_of(code, &state);
            let body = if endpoint == "p13n" {
                let c = match code {
                    429 => 2003,
                    500..=599 => 9999,
                    _ => 3003,
                };
                json!({"code": c, "message": format!("simulated {code}")})
            } else {
                json!({"error": format!("simulated {code}"), "message": "injected by the scenario"})
            };
            let mut resp = json_reply(code, &body);
            if let Some(ra) = f.retry_after {
                if let Ok(v) = ra.to_string().parse() {
                    resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                }
            }
            return resp;
        }
        let body_fault = |st: &SimState| st.record(endpoint, &svc_name, 200);
        if f.trickle {
            body_fault(&state);
            return reply(
                200,
                Chunked {
                    remaining: usize::MAX,
                    chunk: 1,
                    delay: Some(Duration::from_millis(200)),
                    fail_after: None,
                    sent: 0,
                    sleep: None,
                }
                .boxed(),
                "application/json",
            );
        }
        if f.reset {
            body_fault(&state);
            return reply(
                200,
                Chunked {
                    remaining: 1 << 20,
                    chunk: 1024,
                    delay: None,
                    fail_after: Some(4096),
                    sent: 0,
                    sleep: None,
                }
                .boxed(),
                "application/json",
            );
        }
        if let Some(n) = f.body_bytes {
            body_fault(&state);
            return reply(
                200,
                Chunked {
                    remaining: n,
                    chunk: 64 * 1024,
                    delay: None,
                    fail_after: None,
                    sent: 0,
                    sleep: None,
                }
                .boxed(),
                "application/json",
            );
        }
        if f.malformed {
            body_fault(&state);
            return reply(
                200,
                full("{\"section\": \"premium_users\", \"outputs\": {"),
                "application/json",
            );
        }
        if f.wrong_shape {
            body_fault(&state);
            return json_reply(200, &json!({"result": [1, 2, 3]}));
        }
        if f.invalid_utf8 {
            body_fault(&state);
            return reply(
                200,
                full(&b"{\"section\": \"\xff\xfe\"}"[..]),
                "application/json",
            );
        }
    }
    let fault = fault.unwrap_or_default();
    status_of(200, &state);
    match r {
        Route::Personalize { .. } | Route::P13n { .. } => {
            let user = user_id.unwrap_or_default();
            let section = fault
                .section
                .clone()
                .unwrap_or_else(|| persona_section(&user).to_string());
            let mut outputs = outputs_for(&section);
            for d in &fault.drop_outputs {
                outputs.remove(d);
            }
            let seed =
                crate::schedule::stable_hash(&user) ^ state.started.elapsed().as_nanos() as u64;
            let processing = 20 + mix(seed) % 40;
            if endpoint == "p13n" {
                json_reply(
                    200,
                    &json!({"offers": {section: {"attributes": Value::Object(outputs), "batch_segments": [{"id": 1}]}}}),
                )
            } else {
                let ts = match fault.timestamp_format.as_deref() {
                    Some("unix") => json!(unix_now() as u64),
                    Some(_) => json!("29/11/2026 12:00"),
                    None => {
                        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    }
                };
                json_reply(
                    200,
                    &json!({
                        "user_id": user,
                        "section": section,
                        "outputs": Value::Object(outputs),
                        "timestamp": ts,
                        "processing_time_ms": processing,
                    }),
                )
            }
        }
        Route::Metrics { .. } => json_reply(200, &state.metrics_body(&svc_name)),
        Route::Logs { .. } => {
            let since = q
                .get("since")
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp_micros() as f64 / 1e6);
            let limit: usize = q
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(500)
                .clamp(1, 10_000);
            let page: usize = q
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let all = state.logs_since(&svc_name, since);
            let start = (page - 1) * limit;
            let items: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
            let next = (start + limit < all.len()).then_some(page + 1);
            json_reply(
                200,
                &json!({"logs": items, "pagination": {"next_page": next}}),
            )
        }
        Route::Discovery { ps } => {
            let page: usize = q
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let per_page = 20;
            let list: Vec<Value> = services
                .iter()
                .filter(|s| s.parent_segment == ps && s.service_id.is_some())
                .map(|s| json!({"id": s.service_id, "name": s.name, "description": "simulated", "tokens": []}))
                .collect();
            let start = (page - 1) * per_page;
            let items: Vec<Value> = list.iter().skip(start).take(per_page).cloned().collect();
            let next = (start + per_page < list.len()).then(|| (page + 1).to_string());
            json_reply(
                200,
                &json!({"data": items, "pagination": {"nextPage": next}}),
            )
        }
    }
}

async fn control(state: Arc<SimState>, req: Request<Incoming>) -> Response<SimBody> {
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/_sim/stats") => json_reply(200, &state.stats_json()),
        (Method::GET, "/_sim/holds") => json_reply(200, &state.holds_json()),
        (Method::GET, "/_sim/scenario") => json_reply(
            200,
            &serde_json::to_value(state.scenario()).unwrap_or_default(),
        ),
        (Method::POST, "/_sim/scenario") => {
            let Some(body) = read_body(req, 16 * 1024 * 1024).await else {
                return json_reply(400, &json!({"error": "cannot read the body"}));
            };
            match serde_json::from_slice::<Scenario>(&body) {
                Ok(s) => {
                    state.set_scenario(s);
                    json_reply(200, &json!({"ok": true}))
                }
                Err(e) => json_reply(400, &json!({"error": e.to_string()})),
            }
        }
        (Method::POST, "/_sim/reset-stats") => {
            if let Ok(mut r) = state.received.lock() {
                r.clear();
            }
            if let Ok(mut c) = state.counts.lock() {
                c.clear();
            }
            if let Ok(mut h) = state.holds.lock() {
                *h = Holds::default();
            }
            json_reply(200, &json!({"ok": true}))
        }
        _ => json_reply(404, &json!({"error": "unknown simulator control endpoint"})),
    }
}

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    stop: CancellationToken,
}

impl Simulator {
    /// Binds `listen` (port 0 for any) and serves in the background.
    pub async fn start(listen: &str, cfg: SimConfig) -> io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        kernel_time::prepare(&listener);
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            api_key: cfg.api_key,
            p13n_token: cfg.p13n_token,
            started: tokio::time::Instant::now(),
            scenario: Mutex::new(cfg.scenario),
            received: Mutex::new(VecDeque::new()),
            counts: Mutex::new(BTreeMap::new()),
            logs: Mutex::new(HashMap::new()),
            holds: Mutex::new(Holds::default()),
        });
        let stop = CancellationToken::new();
        let (st, stop2) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = stop2.cancelled() => break,
                };
                let _ = stream.set_nodelay(true);
                let (stream, clock) = kernel_time::Stamped::new(stream);
                let st = st.clone();
                let stop3 = stop2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let st = st.clone();
                        let arrived = clock.take();
                        async move { Ok::<_, Infallible>(handle(st, req, arrived).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop3.cancelled() => {}
                    }
                });
            }
        });
        Ok(Simulator { addr, state, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Waits until `until` to within a few microseconds, and returns when its coarse sleep ended (for
/// [`Holds`]). tokio's timer has millisecond ticks and rounds a sleep up to the next one, and a
/// thread's wake-up on a virtual machine now and then takes a millisecond or more, so the wait is
/// a high-resolution kernel timer ([`kernel_time::hr_sleep`]) to [`SPIN_MARGIN`] before `until`,
/// then yields until it. The timing benchmark (scripts/bench-timing.sh) measures the exporter
/// against this delay.
async fn precise_delay_until(until: std::time::Instant) -> std::time::Instant {
    let now = std::time::Instant::now();
    if let Some(coarse) = until
        .checked_duration_since(now)
        .and_then(|d| d.checked_sub(SPIN_MARGIN))
    {
        if kernel_time::hr_sleep(coarse).await.is_err() {
            // No timerfd: tokio's timer, with room for its rounding.
            let until_coarse = until.checked_sub(Duration::from_millis(2)).unwrap_or(now);
            if let Some(d) = until_coarse.checked_duration_since(now) {
                tokio::time::sleep(d).await;
            }
        }
    }
    let woke = std::time::Instant::now();
    while std::time::Instant::now() < until {
        tokio::task::yield_now().await;
    }
    woke
}

/// How long before a held answer's due time the simulator stops sleeping and starts yielding:
/// more than a usual wake-up, so that only a rare slow one makes the answer late.
const SPIN_MARGIN: Duration = Duration::from_micros(1500);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_latency_fault_holds_the_answer_and_reports_how_precisely() {
        let scenario: Scenario =
            serde_json::from_str(r#"{"faults":[{"endpoint":"personalize","latency_ms":40}]}"#)
                .unwrap();
        let sim = Simulator::start(
            "127.0.0.1:0",
            SimConfig {
                api_key: "k".into(),
                p13n_token: None,
                scenario,
            },
        )
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let holds = || async {
            let body = client
                .get(format!("{}/_sim/holds", sim.url()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str::<Value>(&body).unwrap()
        };
        let t = std::time::Instant::now();
        let r = client
            .post(format!(
                "{}/audiences/394649/personalization/product_recommendations",
                sim.url()
            ))
            .header("Authorization", "TD1 k")
            .body(r#"{"user_id":"vip_user_001"}"#)
            .send()
            .await
            .unwrap();
        let took = t.elapsed();
        assert_eq!(r.status(), 200);
        assert!(took >= Duration::from_millis(40), "answered after {took:?}");

        let h = holds().await;
        assert_eq!(h["count"], 1, "{h}");
        let late = h["late_us"][0].as_u64().unwrap();
        assert!(late < 40_000, "released {late} us late");
        assert!(h["pickup_us"][0].as_u64().is_some(), "{h}");

        client
            .post(format!("{}/_sim/reset-stats", sim.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(holds().await["count"], 0);
    }

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
    }

    #[test]
    fn the_section_mix_adds_up() {
        let s: f64 = SECTION_MIX.iter().map(|(_, w)| w).sum();
        assert!((s - 1.0).abs() < 1e-9);
    }
}
