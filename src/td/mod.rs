//! The TD client: sends requests to Treasure Data and reads answers, knowing nothing of Prometheus.
//!
//! [`TdClient::send`] runs one HTTP exchange with reqwest (rustls, pooled connections, a timeout
//! per request), reads the body up to a size cap, times it, classifies a failure into a
//! [`Reason`], and returns a redacted record of what was sent and received. The flavor modules
//! build requests and parse answers: [`cdp`] (the seed's shape), [`p13n`] (TD's published RT 2.0
//! API) and [`mgmt`] (service metrics, logs and discovery).

pub mod cdp;
pub mod mgmt;
pub mod p13n;
pub mod timing;

use std::collections::BTreeSet;
use std::error::Error as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;

use crate::metrics::Endpoint;
use crate::outcome::{Exchange, RequestRecord, ResponseRecord, Timings, BODY_EXCERPT};
use crate::reason::Reason;
use crate::secret::Secret;

/// A request to TD, built by a flavor module.
#[derive(Clone, Debug)]
pub struct TdRequest {
    pub endpoint: Endpoint,
    pub method: reqwest::Method,
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
            method: reqwest::Method::GET,
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
            method: reqwest::Method::POST,
            url,
            headers: vec![("Content-Type", content_type.to_string())],
            secret_headers: Vec::new(),
            body: Some(serde_json::to_vec(body).unwrap_or_default()),
        }
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
    http: reqwest::Client,
    timeout: Duration,
    max_body: usize,
    /// Secrets to scrub from any text that leaves the client.
    secrets: Vec<Secret>,
}

impl TdClient {
    pub fn new(
        timeout: Duration,
        max_body: usize,
        secrets: Vec<Secret>,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("td-pz-exporter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .connector_layer(timing::ConnectTiming)
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(TdClient {
            http,
            timeout,
            max_body,
            secrets,
        })
    }

    /// The client for a configuration: its timeout, body cap, and every secret to scrub.
    pub fn for_config(cfg: &crate::config::Config) -> Result<Self, ClientError> {
        let mut secrets = vec![cfg.td.api_key.clone()];
        secrets.extend(cfg.services.iter().filter_map(|s| s.token.clone()));
        TdClient::new(cfg.td.timeout, cfg.td.max_response_bytes, secrets)
    }

    pub fn max_body(&self) -> usize {
        self.max_body
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

    async fn exchange(
        &self,
        req: &TdRequest,
        exchange: &mut Exchange,
        start: &mut Instant,
    ) -> Result<TdResponse, Failure> {
        let mut builder = self
            .http
            .request(req.method.clone(), &req.url)
            .timeout(self.timeout);
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        for (k, prefix, secret) in &req.secret_headers {
            let mut value = HeaderValue::from_str(&format!("{prefix}{}", secret.expose()))
                .map_err(|_| Failure {
                    reason: Reason::BadRequest,
                    status: None,
                    message: format!("the {k} value has characters not allowed in a header"),
                })?;
            value.set_sensitive(true);
            builder = builder.header(*k, value);
        }
        if let Some(b) = &req.body {
            builder = builder.body(b.clone());
        }
        // The clock starts once the request is built, so the timings are the exchange's alone.
        *start = Instant::now();
        let start = *start;
        let mut resp = builder
            .send()
            .await
            .map_err(|e| transport_failure(&e, None))?;
        let first_byte = start.elapsed();
        exchange.timings.first_byte = Some(first_byte);
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
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
        if resp
            .content_length()
            .is_some_and(|n| n as usize > self.max_body)
        {
            exchange.response = Some(record);
            return Err(too_large(0));
        }
        let mut body = BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_body {
                        record.body_bytes = body.len() + chunk.len();
                        record.truncated = true;
                        record.body = excerpt(&body);
                        exchange.response = Some(record);
                        exchange.timings.body = Some(start.elapsed() - first_byte);
                        return Err(too_large(body.len() + chunk.len()));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    record.body_bytes = body.len();
                    record.truncated = true;
                    record.body = excerpt(&body);
                    exchange.response = Some(record);
                    exchange.timings.body = Some(start.elapsed() - first_byte);
                    return Err(transport_failure(&e, Some(status)));
                }
            }
        }
        exchange.timings.total = start.elapsed();
        exchange.timings.body = Some(exchange.timings.total - first_byte);
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

/// Classifies a reqwest error; the message is the error chain without the URL's query.
fn transport_failure(e: &reqwest::Error, status: Option<u16>) -> Failure {
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = e.source();
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let detail = chain.join(": ");
    let lower = detail.to_ascii_lowercase();
    let reason = if e.is_timeout() || lower.contains("timed out") {
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
    } else if e.is_connect() {
        "connecting failed"
    } else {
        "the request failed"
    };
    let message = if detail.is_empty() {
        format!("{what}: {e}")
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
