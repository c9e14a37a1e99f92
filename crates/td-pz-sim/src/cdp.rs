//! Flavor `cdp` and the management endpoints: the source design's shapes (the seed document,
//! unpublished; `spec/td-api.md` "Flavor cdp"), with an alternative shape for metrics and logs.
//!
//! - `POST /audiences/{ps}/personalization/{service}[/test]` → `{"user_id", "section", "outputs",
//!   "timestamp", "processing_time_ms"}`.
//! - `GET /audiences/{ps}/personalization_services/{id}/metrics` and `.../logs`.
//!
//! TD documents neither the metrics nor the logs endpoint, so their shape is chosen per scenario
//! (`metrics_shape` / `logs_shape`, each `"source"` by default or `"alt"`; a service's own field
//! wins). The exporter's mapping is written against these exact shapes:
//!
//! Metrics, `"source"`:
//! `{"error_rate": 0.012, "requests_per_second": 41.5, "total_requests": 1234, "error_count": 12,
//!   "p50_latency_ms": 35.2, "p95_latency_ms": 80.1, "p99_latency_ms": 120.4, "avg_latency_ms": 40.2,
//!   "cache": {"hit_ratio": "0.930"}, "window": "1h"}`
//!
//! Metrics, `"alt"`:
//! `{"stats": {"errors": {"ratio": 0.02}, "latency": {"p50_ms": 21.5, "p95_ms": 80, "p99_ms": 120}},
//!   "requests": 1234}`
//!
//! Logs, `"source"` (query `since` RFC 3339, `limit` 1–10000 default 500, `page` from 1):
//! `{"logs": [{"request_id": "...", "user_id": "...", "section": "...", "timestamp":
//!   "2026-12-04T18:00:00.123Z", "status": 200, "processing_time_ms": 42}],
//!   "pagination": {"next_page": 2 | null}}`
//!
//! Logs, `"alt"` (query `cursor` from the previous answer, `since` unix seconds or RFC 3339,
//! `limit` 1–10000 default 500):
//! `{"items": [{"uid": "...", "segment": "...", "ts": 1764871200.123, "http_status": 200,
//!   "request_id": "..."}], "cursor": {"next": "<opaque token>" | null}}` — `next` is null when
//! the page reached the newest entry; an unknown cursor is a 400.
//!
//! A scenario's exact `metrics` / `logs` bodies replace the generated ones in either shape (fixed
//! logs are served whole, on one page).

use std::time::Duration;

use serde_json::{json, Value};

use super::faults;
use super::reply::{Answer, Handled};
use super::routes::SimRequest;
use super::scenario::{Fault, Scenario, Shape, SimFlavor, SimService};
use super::state::{outputs_for, persona_section, unix_now, LogEntry, SimState};
use crate::seed::mix;

/// The checks and faults every cdp endpoint shares, then `body` for the answer.
#[allow(clippy::too_many_arguments)]
async fn serve(
    state: &SimState,
    req: &SimRequest,
    sc: &Scenario,
    endpoint: &'static str,
    service: String,
    known: bool,
    user: Option<&str>,
    hold: &mut Option<Duration>,
    body: impl FnOnce(Option<&Fault>) -> Answer,
) -> Handled {
    let done = |answer: Answer| Handled {
        endpoint,
        service: service.clone(),
        answer,
    };
    if let Some(a) = super::auth::check_key(state, sc, req) {
        return done(a);
    }
    if !known && !sc.accept_any_service {
        return done(Answer::json(
            404,
            &json!({"error": "Not Found", "message": "unknown service or parent segment"}),
        ));
    }
    let fault = state.fault(&service, user, endpoint);
    if let Some(f) = &fault {
        if let Some(a) = faults::apply(state, endpoint, &service, f, hold).await {
            return done(a.faulted(true));
        }
    }
    done(body(fault.as_ref()).faulted(fault.is_some()))
}

pub(super) async fn personalize(
    state: &SimState,
    req: &SimRequest,
    ps: &str,
    name: &str,
    test: bool,
    hold: &mut Option<Duration>,
) -> Handled {
    let sc = state.scenario();
    let known = state
        .services()
        .iter()
        .any(|s| s.name == name && s.parent_segment == ps && s.flavor == SimFlavor::Cdp);
    let user: Option<String> = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| {
            let o = v.as_object()?;
            o.get("user_id")
                .or_else(|| o.get("td_client_id"))
                .or_else(|| o.values().find(|x| x.is_string()))
                .and_then(|x| x.as_str().map(str::to_string))
        });
    let endpoint = if test {
        "personalize_test"
    } else {
        "personalize"
    };
    let started = state.started;
    let u = user.clone().unwrap_or_default();
    serve(
        state,
        req,
        &sc,
        endpoint,
        name.to_string(),
        known,
        user.as_deref(),
        hold,
        |f| {
            let section = f
                .and_then(|f| f.section.clone())
                .unwrap_or_else(|| persona_section(&u).to_string());
            let mut outputs = outputs_for(&section);
            for d in f.map(|f| f.drop_outputs.as_slice()).unwrap_or_default() {
                outputs.remove(d);
            }
            let seed = crate::seed::of(&u) ^ started.elapsed().as_nanos() as u64;
            let ts = match f.and_then(|f| f.timestamp_format.as_deref()) {
                Some("unix") => json!(unix_now() as u64),
                Some(_) => json!("29/11/2026 12:00"),
                None => {
                    json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                }
            };
            Answer::json(
                200,
                &json!({"user_id": u, "section": section, "outputs": Value::Object(outputs),
                    "timestamp": ts, "processing_time_ms": 20 + mix(seed) % 40}),
            )
        },
    )
    .await
}

/// The service of a management path, by id and parent segment.
fn by_id(state: &SimState, ps: &str, id: &str) -> Option<SimService> {
    state
        .services()
        .into_iter()
        .find(|s| s.service_id.as_deref() == Some(id) && s.parent_segment == ps)
}

/// The service with this id, and the name faults and fixed bodies are keyed by (its name, or the
/// id of an unknown service).
fn named_by_id(state: &SimState, ps: &str, id: &str) -> (Option<SimService>, String) {
    let svc = by_id(state, ps, id);
    let name = svc
        .as_ref()
        .map_or_else(|| id.to_string(), |s| s.name.clone());
    (svc, name)
}

pub(super) async fn metrics(
    state: &SimState,
    req: &SimRequest,
    ps: &str,
    id: &str,
    hold: &mut Option<Duration>,
) -> Handled {
    let sc = state.scenario();
    let (svc, name) = named_by_id(state, ps, id);
    let shape = svc
        .as_ref()
        .and_then(|s| s.metrics_shape)
        .unwrap_or(sc.metrics_shape);
    let fixed = sc.metrics.get(&name).cloned();
    let m = state.metric_figures(&name);
    serve(
        state,
        req,
        &sc,
        "metrics",
        name,
        svc.is_some(),
        None,
        hold,
        |_| {
            let body = fixed.unwrap_or_else(|| match shape {
            Shape::Source => json!({
                "error_rate": m.error_rate,
                "requests_per_second": m.requests_per_second,
                "total_requests": m.total_requests,
                "error_count": m.total_requests / 100,
                "p50_latency_ms": m.p50_ms,
                "p95_latency_ms": m.p95_ms,
                "p99_latency_ms": m.p99_ms,
                "avg_latency_ms": m.avg_ms,
                "cache": {"hit_ratio": format!("{:.3}", 0.9 + 0.05 * m.wave)},
                "window": "1h"
            }),
            Shape::Alt => json!({
                "stats": {"errors": {"ratio": m.error_rate},
                          "latency": {"p50_ms": m.p50_ms, "p95_ms": m.p95_ms, "p99_ms": m.p99_ms}},
                "requests": m.total_requests
            }),
        });
            Answer::json(200, &body)
        },
    )
    .await
}

pub(super) async fn logs(
    state: &SimState,
    req: &SimRequest,
    ps: &str,
    id: &str,
    hold: &mut Option<Duration>,
) -> Handled {
    let sc = state.scenario();
    let (svc, name) = named_by_id(state, ps, id);
    let shape = svc
        .as_ref()
        .and_then(|s| s.logs_shape)
        .unwrap_or(sc.logs_shape);
    let fixed = sc.logs.get(&name).cloned();
    let q = &req.query;
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(500)
        .clamp(1, 10_000);
    let since = q.get("since").and_then(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros() as f64 / 1e6)
            .or_else(|| {
                (shape == Shape::Alt)
                    .then(|| s.parse::<f64>().ok())
                    .flatten()
            })
    });
    let known = svc.is_some();
    let entries = if known || sc.accept_any_service {
        state.log_entries(&name, since)
    } else {
        Vec::new()
    };
    serve(
        state,
        req,
        &sc,
        "logs",
        name,
        known,
        None,
        hold,
        |_| match shape {
            Shape::Source => source_logs(fixed, &entries, q.get("page"), limit),
            Shape::Alt => alt_logs(fixed, &entries, q.get("cursor"), limit),
        },
    )
    .await
}

fn source_logs(
    fixed: Option<Vec<Value>>,
    entries: &[LogEntry],
    page: Option<&String>,
    limit: usize,
) -> Answer {
    let page: usize = page.and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let all: Vec<Value> = fixed.unwrap_or_else(|| {
        entries
            .iter()
            .map(|e| {
                let ts = chrono::DateTime::from_timestamp_millis(e.ts_ms)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                json!({"request_id": e.request_id, "user_id": e.user_id, "section": e.section,
                       "timestamp": ts, "status": e.status, "processing_time_ms": e.processing_ms})
            })
            .collect()
    });
    let start = (page - 1).saturating_mul(limit);
    let items: Vec<&Value> = all.iter().skip(start).take(limit).collect();
    let next = (start.saturating_add(limit) < all.len()).then_some(page + 1);
    Answer::json(
        200,
        &json!({"logs": items, "pagination": {"next_page": next}}),
    )
}

fn alt_logs(
    fixed: Option<Vec<Value>>,
    entries: &[LogEntry],
    cursor: Option<&String>,
    limit: usize,
) -> Answer {
    if let Some(fixed) = fixed {
        return Answer::json(200, &json!({"items": fixed, "cursor": {"next": null}}));
    }
    let after = match cursor.map(|c| c.strip_prefix('s').and_then(|n| n.parse::<u64>().ok())) {
        None => 0,
        Some(Some(seq)) => seq,
        Some(None) => {
            return Answer::json(
                400,
                &json!({"error": "Bad Request", "message": "unknown cursor"}),
            )
        }
    };
    let rest: Vec<&LogEntry> = entries.iter().filter(|e| e.seq > after).collect();
    let page = &rest[..rest.len().min(limit)];
    let items: Vec<Value> = page
        .iter()
        .map(|e| {
            json!({"uid": e.user_id, "segment": e.section, "ts": e.ts_ms as f64 / 1000.0,
                   "http_status": e.status, "request_id": e.request_id})
        })
        .collect();
    let next = (rest.len() > page.len())
        .then(|| page.last().map(|e| format!("s{}", e.seq)))
        .flatten();
    Answer::json(200, &json!({"items": items, "cursor": {"next": next}}))
}
