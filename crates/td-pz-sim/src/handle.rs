//! One request: `/_sim/*` control, else its route's module ([`super::p13n`] strict,
//! [`super::cdp`] and the management endpoints, [`super::discovery`]), then counting
//! (`GET /_sim/stats`), recording ([`super::record`]) and holding a latency fault
//! ([`super::timers`]).
//!
//! Owns the order of those steps; what each endpoint answers is its module's.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::json;

use super::record::Recorder;
use super::reply::{Answer, Handled, SimBody};
use super::routes::{self, Route, SimRequest};
use super::scenario::Scenario;
use super::state::SimState;
use super::{cdp, discovery, p13n, timers};

/// The largest request body read.
const BODY_CAP: usize = 1024 * 1024;

/// Answers one request. An injected latency holds the answer until that long after the request
/// reached the socket ([`kernel_time`]), so neither the simulator's wake-up nor its own work adds to
/// the delay a client sees.
pub(super) async fn handle(
    state: Arc<SimState>,
    recorder: Option<Arc<Recorder>>,
    req: Request<Incoming>,
    peer: IpAddr,
    arrived: std::time::Instant,
) -> Response<SimBody> {
    let picked = std::time::Instant::now();
    if req.uri().path().starts_with("/_sim/") {
        return control(&state, req).await.into_response();
    }
    let req = SimRequest::read(req, peer, BODY_CAP).await;
    let mut hold = None;
    let handled = dispatch(&state, &req, &mut hold).await;
    state.count_request(handled.endpoint, &handled.service, handled.answer.status);
    if let Some(r) = &recorder {
        r.write(&req, handled.endpoint, &handled.answer);
    }
    if let Some(d) = hold {
        let due = arrived + d;
        let woke = timers::precise_delay_until(due).await;
        state.note_hold(
            picked.saturating_duration_since(arrived),
            due.elapsed(),
            woke.saturating_duration_since(due),
        );
    }
    handled.answer.into_response()
}

async fn dispatch(state: &SimState, req: &SimRequest, hold: &mut Option<Duration>) -> Handled {
    match routes::route(&req.method, &req.raw_path) {
        Some(Route::P13n {
            database,
            table,
            public,
        }) => p13n::answer(state, req, &database, &table, public, hold).await,
        Some(Route::Personalize { ps, svc, test }) => {
            cdp::personalize(state, req, &ps, &svc, test, hold).await
        }
        Some(Route::Metrics { ps, id }) => cdp::metrics(state, req, &ps, &id, hold).await,
        Some(Route::Logs { ps, id }) => cdp::logs(state, req, &ps, &id, hold).await,
        Some(Route::Discovery { ps }) => {
            let raw_ps = req
                .raw_path
                .trim_matches('/')
                .split('/')
                .nth(1)
                .unwrap_or("");
            discovery::answer(state, req, raw_ps, &ps, hold).await
        }
        None => Handled {
            endpoint: "unknown",
            service: String::new(),
            answer: Answer::json(
                404,
                &json!({"error": "not found", "message": format!("no route for {} {}", req.method, req.raw_path)}),
            ),
        },
    }
}

async fn control(state: &SimState, req: Request<Incoming>) -> Answer {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    match (method, path.as_str()) {
        (Method::GET, "/_sim/stats") => Answer::json(200, &state.stats_json()),
        (Method::GET, "/_sim/holds") => Answer::json(200, &state.holds_json()),
        (Method::GET, "/_sim/scenario") => Answer::json(
            200,
            &serde_json::to_value(state.scenario()).unwrap_or_default(),
        ),
        (Method::POST, "/_sim/scenario") => {
            let body = SimRequest::read(req, IpAddr::from([0, 0, 0, 0]), 16 * 1024 * 1024)
                .await
                .body;
            match serde_json::from_slice::<Scenario>(&body) {
                Ok(s) => {
                    state.set_scenario(s);
                    Answer::json(200, &json!({"ok": true}))
                }
                Err(e) => Answer::json(400, &json!({"error": e.to_string()})),
            }
        }
        (Method::POST, "/_sim/reset-stats") => {
            state.reset_stats();
            Answer::json(200, &json!({"ok": true}))
        }
        _ => Answer::json(404, &json!({"error": "unknown simulator control endpoint"})),
    }
}
