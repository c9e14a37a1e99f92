//! The TD client: sends requests to Treasure Data and reads answers, knowing nothing of Prometheus.
//!
//! [`TdClient::send`] runs one HTTP exchange over a [`transport`] (pooled connections, rustls, a
//! deadline per request), reads the body up to a size cap, times it, classifies a failure into a
//! [`Reason`], and returns a redacted record of what was sent and received. The flavor modules
//! build requests and parse answers: [`cdp`] (the seed's shape), [`p13n`] (TD's published RT 2.0
//! API), [`discovery`] (the CDP API's listing of a parent segment's services, as TD pages it) and
//! [`mgmt`] (the source design's service metrics and logs requests; the answers are read by
//! [`metrics_answer`] and [`logs_answer`] through the configured mapping).

mod answer;
pub mod cdp;
pub mod discovery;
mod endpoint;
pub mod logs_answer;
pub mod metrics_answer;
pub mod mgmt;
pub mod p13n;
pub mod path;
mod request;
pub mod timing;
pub mod transport;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, ACCEPT, USER_AGENT};
use http_body_util::BodyExt;
use kernel_time::RxClock;
use tokio::time::Instant;

use crate::outcome::{Clock, Exchange, ResponseRecord, Timings, BODY_EXCERPT};
use crate::reason::Reason;
use crate::secret::Secret;

pub use answer::{error_detail, json, millis, number, ParseError, Personalization};
pub use endpoint::Endpoint;
pub use request::{retry_after, TdRequest, TdResponse};

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
        secrets.extend(cfg.services.iter().filter_map(|s| match &s.api {
            crate::config::Api::P13n(t) => Some(t.token.clone()),
            crate::config::Api::Cdp => None,
        }));
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
        let connect = *slot.lock();
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
            .try_with(|slot| slot.lock().is_none())
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
#[cfg(test)]
mod tests;
