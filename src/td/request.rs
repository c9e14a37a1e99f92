//! A request to TD as a flavor module builds it (secrets kept apart so the record shows them
//! redacted), and a complete answer as the client returns it.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, RETRY_AFTER};

use super::Endpoint;
use crate::outcome::RequestRecord;
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

    pub(super) fn record(&self) -> RequestRecord {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
