//! The TD simulator: both personalization API flavors, the management endpoints and discovery,
//! on loopback, following TD's documents (`spec/td-api.md`, `spec/openapi/`), not the client.
//!
//! This module owns starting and stopping ([`Simulator`], [`SimConfig`]), the accept loop, and
//! the dispatch of one request: `/_sim/*` control, else its route's module ([`p13n`] strict,
//! [`cdp`] and the management endpoints, [`discovery`]), then counting (`GET /_sim/stats`),
//! recording ([`record`]) and holding a latency fault ([`timers`]). Faults are in [`faults`], the
//! world and its traffic in [`state`], the scenario in [`scenario`].
//!
//! It shares no protocol code with the exporter's client on purpose (only [`crate::kernel_time`],
//! the socket clocks both sides read).

mod cdp;
mod discovery;
mod faults;
mod p13n;
pub mod record;
mod reply;
mod routes;
pub mod scenario;
mod state;
mod timers;

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::kernel_time;
use record::Recorder;
use reply::{Answer, Handled};
use routes::{Route, SimRequest};

pub use reply::SimBody;
pub use scenario::{Fault, Scenario, Shape, SimFlavor, SimService};
pub use state::{builtin_services, persona_section, Received, SimState, SECTION_MIX};

/// How the simulator is started.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// The key `Authorization: TD1 <key>` must carry; its part before `/` is the account.
    pub api_key: String,
    /// The `WP13n-Token` the p13n endpoints require (a service's `token` wins); `None`: any
    /// well-formed token of the key's account.
    pub p13n_token: Option<String>,
    pub scenario: Scenario,
    /// Append one JSON line per answered request to this file ([`record`]); when `None`, the
    /// file named by `TD_PZ_SIM_RECORD`, if any.
    pub record: Option<PathBuf>,
}

/// The largest request body read.
const BODY_CAP: usize = 1024 * 1024;

/// The 401 of a revoked scenario or a wrong `TD1` key, `None` when the key is right. TD
/// documents no 401 body for p13n: the simulator answers `{"error", "message"}` (no `code`)
/// on every endpoint.
fn check_key(state: &SimState, sc: &Scenario, req: &SimRequest) -> Option<Answer> {
    let expected = format!("TD1 {}", state.api_key);
    let unauthorized = || {
        Answer::json(
            401,
            &json!({"error": "Unauthorized", "message": "invalid API key"}),
        )
    };
    if sc.revoked {
        return Some(unauthorized().faulted(true));
    }
    (req.header("authorization") != Some(expected.as_str())).then(unauthorized)
}

/// Answers one request. An injected latency holds the answer until that long after the request
/// reached the socket ([`kernel_time`]), so neither the simulator's wake-up nor its own work adds to
/// the delay a client sees.
async fn handle(
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

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    stop: CancellationToken,
}

impl Simulator {
    /// Binds `listen` (port 0 for any) and serves in the background. Fails when the recording
    /// file cannot be opened.
    pub async fn start(listen: &str, cfg: SimConfig) -> io::Result<Simulator> {
        let recorder = Recorder::from_config(cfg.record.as_deref())?.map(Arc::new);
        let listener = TcpListener::bind(listen).await?;
        kernel_time::prepare(&listener);
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(cfg.api_key, cfg.p13n_token, cfg.scenario));
        let stop = CancellationToken::new();
        let (st, stop2) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = stop2.cancelled() => break,
                };
                let _ = stream.set_nodelay(true);
                let (stream, clock) = kernel_time::Stamped::new(stream);
                let (st, rec, stop3) = (st.clone(), recorder.clone(), stop2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (st, rec) = (st.clone(), rec.clone());
                        let arrived = clock.take();
                        async move {
                            Ok::<_, Infallible>(handle(st, rec, req, peer.ip(), arrived).await)
                        }
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

#[cfg(test)]
mod tests;
