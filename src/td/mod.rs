//! The TD client: sends requests to Treasure Data and reads answers, knowing nothing of Prometheus.
//!
//! [`TdClient::send`] runs one HTTP exchange over a [`transport`] (pooled connections, rustls, a
//! deadline per request), reads the body up to a size cap, times it, classifies a failure into a
//! [`Reason`], and returns a redacted record of what was sent and received. The flavor modules
//! build requests and parse answers: [`cdp`] (the seed's shape), [`p13n`] (TD's published RT 2.0
//! API) and [`mgmt`] (service metrics, logs and discovery requests; the answers are read by
//! [`metrics_answer`] and [`logs_answer`] through the configured mapping).

pub mod cdp;
pub mod discovery;
pub mod logs_answer;
pub mod metrics_answer;
pub mod mgmt;
pub mod p13n;
pub mod path;
pub mod timing;
pub mod transport;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, ACCEPT, RETRY_AFTER, USER_AGENT};
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::kernel_time::RxClock;
use crate::metrics::Endpoint;
use crate::outcome::{Clock, Exchange, RequestRecord, ResponseRecord, Timings, BODY_EXCERPT};
use crate::reason::Reason;
use crate::secret::Secret;

/// A request to TD, built by a flavor module.
#[derive(Clone, Debug)]
pub struct TdRequest {
    pub endpoint: Endpoint,
    pub method: http::Method,
    pub url: String,
    /// Plain headers, shown as they are.
    pub headers: Vec<(&'static str, String)>,
    /// Headers that carry a secret: sent with [`Secret::expose`], shown as `<redacted>`.
    pub secret_headers: Vec<(&'static str, &'static str, Secret)>,
    pub body: Option<Vec<u8>>,
}

impl TdRequest {
    pub fn get(endpoint: Endpoint, url: String) -> Self {
        TdRequest {
            endpoint,
            method: http::Method::GET,
            url,
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: None,
        }
    }

    pub fn post_json(
        endpoint: Endpoint,
        url: String,
        content_type: &str,
        body: &serde_json::Value,
    ) -> Self {
        TdRequest {
            endpoint,
            method: http::Method::POST,
            url,
            headers: vec![("Content-Type", content_type.to_string())],
            secret_headers: Vec::new(),
            body: Some(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    /// Adds a plain header; an `Accept` given here replaces the client's default `*/*`.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    /// Adds `Authorization: TD1 <key>`.
    pub fn td1(mut self, key: &Secret) -> Self {
        self.secret_headers
            .push(("Authorization", "TD1 ", key.clone()));
        self
    }

    pub fn secret_header(mut self, name: &'static str, value: &Secret) -> Self {
        self.secret_headers.push((name, "", value.clone()));
        self
    }

    fn record(&self) -> RequestRecord {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (k, prefix, _) in &self.secret_headers {
            headers.push((k.to_string(), format!("{prefix}<redacted>")));
        }
        RequestRecord {
            method: self.method.to_string(),
            url: self.url.clone(),
            headers,
            body: self
                .body
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        }
    }
}

/// A complete answer (any status) whose body fit under the cap.
#[derive(Clone, Debug)]
pub struct TdResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TdResponse {
    /// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// One exchange: the record, and the answer or why there was none.
#[derive(Debug)]
pub struct Sent {
    pub exchange: Exchange,
    pub result: Result<TdResponse, Failure>,
}

/// A request that got no usable answer.
#[derive(Clone, Debug)]
pub struct Failure {
    pub reason: Reason,
    /// The status when the headers came but the body was refused (too large, cut off).
    pub status: Option<u16>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

/// The HTTP client shared by every probe and poller.
#[derive(Clone, Debug)]
pub struct TdClient {
    transport: transport::Transport,
    timeout: Duration,
    max_body: usize,
    /// Secrets to scrub from any text that leaves the client.
    secrets: Vec<Secret>,
}

const USER_AGENT_VALUE: &str = concat!("td-pz-exporter/", env!("CARGO_PKG_VERSION"));

impl TdClient {
    /// A client on the direct transport, or on reqwest when the environment names a proxy.
    pub fn new(
        timeout: Duration,
        max_body: usize,
        secrets: Vec<Secret>,
    ) -> Result<Self, ClientError> {
        TdClient::with_transport(transport::Kind::Auto, timeout, max_body, secrets)
    }

    pub fn with_transport(
        kind: transport::Kind,
        timeout: Duration,
        max_body: usize,
        secrets: Vec<Secret>,
    ) -> Result<Self, ClientError> {
        let transport =
            transport::Transport::new(kind, timeout.min(Duration::from_secs(5)), USER_AGENT_VALUE)
                .map_err(ClientError)?;
        Ok(TdClient {
            transport,
            timeout,
            max_body,
            secrets,
        })
    }

    /// The client for a configuration: its timeout, body cap, and every secret to scrub.
    pub fn for_config(cfg: &crate::config::Config) -> Result<Self, ClientError> {
        let mut secrets = vec![cfg.td.api_key.clone()];
        secrets.extend(cfg.td.p13n_api_key.clone());
        secrets.extend(cfg.services.iter().filter_map(|s| s.token.clone()));
        TdClient::new(cfg.td.timeout, cfg.td.max_response_bytes, secrets)
    }

    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// True when answers are timed by the kernel (no proxy in the way).
    pub fn kernel_timed(&self) -> bool {
        self.transport.is_direct()
    }

    fn scrub(&self, text: String) -> String {
        self.secrets.iter().fold(text, |t, s| s.scrub(&t))
    }

    pub async fn send(&self, req: &TdRequest) -> Sent {
        let mut exchange = Exchange {
            request: req.record(),
            response: None,
            timings: Timings::default(),
        };
        let mut start = Instant::now();
        let slot = timing::Slot::default();
        let result = timing::CONNECT_TIME
            .scope(slot.clone(), self.exchange(req, &mut exchange, &mut start))
            .await;
        if exchange.timings.total.is_zero() {
            exchange.timings.total = start.elapsed();
        }
        let connect = slot.lock().ok().and_then(|s| *s);
        exchange.timings.connect = connect;
        // First byte counts from the request being sent, after the connect.
        if let (Some(c), Some(fb)) = (connect, exchange.timings.first_byte) {
            exchange.timings.first_byte = Some(fb.saturating_sub(c));
        }
        let result = result.map_err(|mut f| {
            f.message = self.scrub(f.message);
            f
        });
        Sent { exchange, result }
    }

    fn build(&self, req: &TdRequest) -> Result<http::Request<Bytes>, Failure> {
        let bad = |what: String| Failure {
            reason: Reason::BadRequest,
            status: None,
            message: what,
        };
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(req.url.as_str())
            .header(USER_AGENT, USER_AGENT_VALUE);
        if !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            builder = builder.header(ACCEPT, "*/*");
        }
        for (k, v) in &req.headers {
            builder = builder.header(*k, v.as_str());
        }
        for (k, prefix, secret) in &req.secret_headers {
            let mut value = HeaderValue::from_str(&format!("{prefix}{}", secret.expose()))
                .map_err(|_| {
                    bad(format!(
                        "the {k} value has characters not allowed in a header"
                    ))
                })?;
            value.set_sensitive(true);
            builder = builder.header(*k, value);
        }
        let body = req.body.clone().map(Bytes::from).unwrap_or_default();
        builder.body(body).map_err(|e| {
            // The builder's error names neither the URL nor a header value.
            bad(format!("the request cannot be built: {e}"))
        })
    }

    async fn exchange(
        &self,
        req: &TdRequest,
        exchange: &mut Exchange,
        start: &mut Instant,
    ) -> Result<TdResponse, Failure> {
        let request = self.build(req)?;
        // The clock starts once the request is built, so the timings are the exchange's alone.
        *start = Instant::now();
        let start = *start;
        let deadline = start + self.timeout;
        let answer = match tokio::time::timeout_at(deadline, self.transport.send(request)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(transport_failure(&e, None)),
            Err(_) => {
                return Err(Failure {
                    reason: Reason::Timeout,
                    status: None,
                    message: format!(
                        "no answer within the {} timeout",
                        humantime::format_duration(self.timeout)
                    ),
                })
            }
        };
        let head_at = Instant::now();
        // On a reused connection the clock starts at the write that sent the request, not when
        // the request was queued for the connection's task (a cross-thread wake-up away); a new
        // connection's clock keeps its start, so the connect counts.
        let reused = timing::CONNECT_TIME
            .try_with(|slot| slot.lock().is_ok_and(|s| s.is_none()))
            .unwrap_or(false);
        let sent = answer
            .rx
            .as_ref()
            .and_then(RxClock::request_sent)
            .map(Instant::from_std)
            .filter(|t| reused && *t >= start && *t <= head_at);
        let start = sent.unwrap_or(start);
        // The kernel's time for the bytes that completed the head, when it has one for this answer.
        let kernel = |rx: &Option<RxClock>, now: Instant| {
            rx.as_ref()
                .and_then(RxClock::last_read)
                .map(Instant::from_std)
                .filter(|t| *t >= start && *t <= now)
        };
        let head_kernel = kernel(&answer.rx, head_at);
        let first_byte = head_kernel.unwrap_or(head_at) - start;
        exchange.timings.first_byte = Some(first_byte);
        let (parts, mut resp_body) = answer.response.into_parts();
        let status = parts.status.as_u16();
        let headers = parts.headers;
        let mut record = ResponseRecord {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            ..ResponseRecord::default()
        };
        let too_large = |read: usize| Failure {
            reason: Reason::TooLarge,
            status: Some(status),
            message: format!(
                "the body is over the {} byte cap (read {read} bytes before giving up)",
                self.max_body
            ),
        };
        let content_length = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if content_length.is_some_and(|n| n > self.max_body as u64) {
            exchange.response = Some(record);
            return Err(too_large(0));
        }
        let mut body = BytesMut::new();
        let cut_short = |body: &BytesMut, record: &mut ResponseRecord, exchange: &mut Exchange| {
            record.body_bytes = body.len();
            record.truncated = true;
            record.body = excerpt(body);
            exchange.response = Some(std::mem::take(record));
            exchange.timings.body = Some(start.elapsed().saturating_sub(first_byte));
        };
        loop {
            match tokio::time::timeout_at(deadline, resp_body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    let Ok(chunk) = frame.into_data() else {
                        continue; // trailers
                    };
                    if body.len() + chunk.len() > self.max_body {
                        let read = body.len() + chunk.len();
                        cut_short(&body, &mut record, exchange);
                        if let Some(r) = exchange.response.as_mut() {
                            r.body_bytes = read;
                        }
                        return Err(too_large(read));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    cut_short(&body, &mut record, exchange);
                    let e = transport::TransportError::from_body(&e);
                    return Err(transport_failure(&e, Some(status)));
                }
                Err(_) => {
                    cut_short(&body, &mut record, exchange);
                    return Err(Failure {
                        reason: Reason::Timeout,
                        status: Some(status),
                        message: format!(
                            "the body did not complete within the {} timeout (read {} bytes)",
                            humantime::format_duration(self.timeout),
                            body.len()
                        ),
                    });
                }
            }
        }
        let end = Instant::now();
        let t = &mut exchange.timings;
        (t.clock, t.total) = match (head_kernel, kernel(&answer.rx, end)) {
            (Some(_), Some(last)) => (Clock::Kernel, last - start),
            _ => {
                t.first_byte = Some(head_at - start);
                (Clock::Process, end - start)
            }
        };
        t.body = t.first_byte.map(|fb| t.total.saturating_sub(fb));
        record.body_bytes = body.len();
        record.truncated = body.len() > BODY_EXCERPT;
        record.body = excerpt(&body);
        exchange.response = Some(record);
        Ok(TdResponse {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_EXCERPT)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Classifies a transport error; the message is the error chain, which names no URL.
fn transport_failure(e: &transport::TransportError, status: Option<u16>) -> Failure {
    let detail = e.chain.join(": ");
    let lower = detail.to_ascii_lowercase();
    let reason = if e.timed_out || lower.contains("timed out") || lower.contains("timeout") {
        Reason::Timeout
    } else if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalidcontenttype")
    {
        Reason::Tls
    } else {
        Reason::Connect
    };
    let what = if status.is_some() {
        "reading the body failed"
    } else if e.connect {
        "connecting failed"
    } else {
        "the request failed"
    };
    let message = if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    };
    Failure {
        reason,
        status,
        message,
    }
}

/// What a personalization answer (either flavor) says, parsed tolerantly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Personalization {
    /// The section to report: cdp's `section`; for p13n the expected offer if present, else the first.
    pub section: Option<String>,
    /// Every section the user qualified for (p13n: every offer key).
    pub sections: BTreeSet<String>,
    /// Output names present (cdp: keys of `outputs`; p13n: offer keys and attribute names).
    pub outputs: BTreeSet<String>,
    pub processing_time: Option<Duration>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A number, or a string holding one: TD's fields are parsed tolerantly.
pub fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Milliseconds as a `Duration`; `None` for negative, non-finite or absurdly large values
/// (which `Duration::from_secs_f64` would panic on).
pub fn millis(ms: f64) -> Option<Duration> {
    if ms < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

/// Parses a JSON body, with a message fit for the status page when it is not JSON.
pub fn json(body: &[u8]) -> Result<serde_json::Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if std::str::from_utf8(body).is_err() {
            "not UTF-8 text"
        } else {
            "not JSON"
        };
        ParseError(format!("the body is {what} ({e})"))
    })
}

/// `{code, message}` (p13n) or `{error, message}` error bodies, for the failure message.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let msg = v
        .get("message")
        .or_else(|| v.get("error"))
        .and_then(|m| m.as_str())
        .map(|s| s.chars().take(200).collect::<String>());
    let code = v.get("code").and_then(number);
    match (code, msg) {
        (Some(c), Some(m)) => Some(format!("TD code {c}: {m}")),
        (None, Some(m)) => Some(m),
        (Some(c), None) => Some(format!("TD code {c}")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_arrive_as_strings_too() {
        assert_eq!(number(&serde_json::json!(0.5)), Some(0.5));
        assert_eq!(number(&serde_json::json!(" 12 ")), Some(12.0));
        assert_eq!(number(&serde_json::json!("NaN")), None);
        assert_eq!(number(&serde_json::json!("x")), None);
        assert_eq!(number(&serde_json::json!(true)), None);
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_detail(br#"{"code": 3001, "message": "token not in configuration"}"#).as_deref(),
            Some("TD code 3001: token not in configuration")
        );
        assert_eq!(error_detail(b"<html>"), None);
    }

    #[test]
    fn records_redact_secret_headers() {
        let key = Secret::new("1/supersecretkey");
        let r = TdRequest::get(Endpoint::Metrics, "https://x/y".into())
            .td1(&key)
            .record();
        assert_eq!(
            r.headers,
            vec![("Authorization".to_string(), "TD1 <redacted>".to_string())]
        );
    }

    /// Serves `200 ok` on loopback `delay` after each request arrives, keeping connections
    /// open; sends a unit on the channel as each request arrives.
    fn slow_server(delay: Duration) -> (String, std::sync::mpsc::Receiver<()>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        let _ = tx.send(());
                        std::thread::sleep(delay);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if conn.write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, rx)
    }

    /// Sends `req` while, once the server has the request, this (single-threaded) runtime's thread
    /// stalls for `stall`: the answer arrives during the stall and is read after it.
    async fn send_through_a_stall(
        c: &TdClient,
        req: &TdRequest,
        arrived: &std::sync::mpsc::Receiver<()>,
        stall: Duration,
    ) -> Sent {
        let stalling = async {
            while arrived.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            std::thread::sleep(stall);
        };
        tokio::join!(c.send(req), stalling).0
    }

    #[tokio::test]
    async fn the_kernel_clock_leaves_out_the_exporters_own_stalls() {
        let delay = Duration::from_millis(40);
        let stall = Duration::from_millis(200);
        let (url, arrived) = slow_server(delay);
        let req = TdRequest::get(Endpoint::Metrics, url);
        let direct = TdClient::with_transport(
            transport::Kind::Direct,
            Duration::from_secs(5),
            1 << 20,
            vec![],
        )
        .unwrap();
        assert!(direct.kernel_timed());
        // A new connection, then the same one again: both end at the kernel's arrival time.
        for round in ["new connection", "reused connection"] {
            let sent = send_through_a_stall(&direct, &req, &arrived, stall).await;
            assert_eq!(sent.result.as_ref().unwrap().body.as_ref(), b"ok");
            let t = &sent.exchange.timings;
            assert_eq!(t.clock, Clock::Kernel, "{round}");
            assert_eq!(t.connect.is_none(), round == "reused connection", "{round}");
            assert!(
                t.total >= delay && t.total < delay + Duration::from_millis(100),
                "{round}: {:?} for a {delay:?} answer read after an {stall:?} stall",
                t.total
            );
            assert!(t.first_byte.unwrap() <= t.total);
        }

        // reqwest (the transport through a proxy) can only time its own reads.
        let proxied = TdClient::with_transport(
            transport::Kind::Proxied,
            Duration::from_secs(5),
            1 << 20,
            vec![],
        )
        .unwrap();
        assert!(!proxied.kernel_timed());
        let sent = send_through_a_stall(&proxied, &req, &arrived, stall).await;
        assert!(sent.result.is_ok(), "{:?}", sent.result.err());
        let t = &sent.exchange.timings;
        assert_eq!(t.clock, Clock::Process);
        assert!(t.total >= stall, "{:?}", t.total);
    }

    #[tokio::test]
    async fn transport_failures_are_classified_on_both_transports() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x?key=private", closed.local_addr().unwrap());
        drop(closed);
        let (slow_url, _arrived) = slow_server(Duration::from_millis(500));
        for kind in [transport::Kind::Direct, transport::Kind::Proxied] {
            let c = TdClient::with_transport(kind, Duration::from_millis(200), 1 << 20, vec![])
                .unwrap();
            let refused = c
                .send(&TdRequest::get(Endpoint::Metrics, url.clone()))
                .await;
            let f = refused.result.unwrap_err();
            assert_eq!(f.reason, Reason::Connect, "{kind:?}: {}", f.message);
            assert!(f.message.starts_with("connecting failed"), "{}", f.message);
            assert!(!f.message.contains("private"), "{}", f.message);

            let slow = c
                .send(&TdRequest::get(Endpoint::Metrics, slow_url.clone()))
                .await;
            let f = slow.result.unwrap_err();
            assert_eq!(f.reason, Reason::Timeout, "{kind:?}: {}", f.message);
            assert!(slow.exchange.timings.total >= Duration::from_millis(200));
            assert!(slow.exchange.timings.total < Duration::from_millis(450));
        }
    }

    #[test]
    fn a_proxy_in_the_environment_picks_reqwest() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(!transport::proxy_named(env(&[])));
        assert!(!transport::proxy_named(env(&[("HTTPS_PROXY", "")])));
        assert!(!transport::proxy_named(env(&[("NO_PROXY", "x")])));
        assert!(transport::proxy_named(env(&[(
            "https_proxy",
            "http://p:3128"
        )])));
        assert!(transport::proxy_named(env(&[("ALL_PROXY", "socks5://p")])));
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
