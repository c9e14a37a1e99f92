//! The exporter's HTTP server (hyper 1.x): `/metrics`, the status page, health and reload.
//!
//! Reads what the recorder holds (metrics registry, history, current config) and never calls
//! TD. Every refused request is counted in `td_pz_bad_requests_total`.

pub mod display;
pub mod page;
pub mod scrape;
pub mod security;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::metrics::BadRequest;

pub const DEFAULT_RUNBOOK_URL: &str =
    "https://github.com/treasure-data-community/td-pz-exporter/blob/main/docs/runbooks.md";

pub struct WebState {
    pub app: Arc<App>,
    pub security: Arc<security::WebSecurity>,
    pub telemetry_path: String,
    pub runbook_url: String,
    pub scrapes: scrape::Coalescer,
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const PROM: &str = "text/plain; version=0.0.4; charset=utf-8";

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn handle(state: Arc<WebState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let app = &state.app;
    if state.security.requires_auth() {
        let header = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !state.security.authorized(header).await {
            app.recorder().bad_request(BadRequest::Unauthorized);
            let mut r = respond(StatusCode::UNAUTHORIZED, TEXT, "unauthorized\n");
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"td-pz-exporter\""),
            );
            return r;
        }
    }
    let method_not_allowed = |allow: &'static str| {
        app.recorder().bad_request(BadRequest::Method);
        let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        r
    };
    if path == state.telemetry_path {
        if !get {
            return method_not_allowed("GET, HEAD");
        }
        let accept = req
            .headers()
            .get(hyper::header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let encoding = scrape::Encoding::negotiate(accept);
        let body = state.scrapes.render(app, encoding).await;
        let mut r = respond(StatusCode::OK, PROM, body);
        r.headers_mut().insert(
            hyper::header::VARY,
            HeaderValue::from_static("Accept-Encoding"),
        );
        if encoding == scrape::Encoding::Gzip {
            r.headers_mut().insert(
                hyper::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        return r;
    }
    match path.as_str() {
        "/-/healthy" => respond(StatusCode::OK, TEXT, "Healthy\n"),
        "/-/ready" => {
            if app.is_ready() {
                respond(StatusCode::OK, TEXT, "Ready\n")
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "Not ready: the configuration is not applied yet\n",
                )
            }
        }
        "/-/reload" => {
            if *req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            match app.reload().await {
                Ok(stats) => respond(
                    StatusCode::OK,
                    TEXT,
                    format!(
                        "configuration reloaded: {} job(s) started, {} kept, {} stopped\n",
                        stats.started, stats.kept, stats.stopped
                    ),
                ),
                Err(e) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT,
                    format!("reload failed, the previous configuration keeps running:\n{e}\n"),
                ),
            }
        }
        "/" | "/target" | "/config" | "/status.json" if !get => method_not_allowed("GET, HEAD"),
        "/" => respond(StatusCode::OK, HTML, page::index(&state)),
        "/status.json" => respond(StatusCode::OK, JSON, page::status_json(&state)),
        "/config" => respond(StatusCode::OK, HTML, page::config(&state)),
        "/target" => match query_param(&req, "id").and_then(|id| page::target(&state, &id)) {
            Some(html) => respond(StatusCode::OK, HTML, html),
            None => {
                app.recorder().bad_request(BadRequest::NotFound);
                respond(StatusCode::NOT_FOUND, HTML, page::not_found(&state))
            }
        },
        _ => {
            app.recorder().bad_request(BadRequest::NotFound);
            respond(
                StatusCode::NOT_FOUND,
                TEXT,
                "not found: see / for the status page and /metrics\n",
            )
        }
    }
}

/// Serves until `stop` is cancelled, then lets open connections finish (up to 5 s).
pub async fn serve(listener: TcpListener, state: Arc<WebState>, stop: CancellationToken) {
    let conns = tokio_util::task::TaskTracker::new();
    let tls = state
        .security
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (st, stop, tls) = (state.clone(), stop.clone(), tls.clone());
        conns.spawn(async move {
            match tls {
                None => serve_conn(TokioIo::new(stream), st, stop, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => serve_conn(TokioIo::new(s), st, stop, peer).await,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    conns.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), conns.wait()).await;
}

async fn serve_conn<I>(io: I, state: Arc<WebState>, stop: CancellationToken, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let st = state.clone();
        async move { Ok::<_, Infallible>(handle(st, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
