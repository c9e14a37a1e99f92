//! A service's metrics and logs endpoints: from the source design only, in no TD document
//! (discovery, which TD does publish, is [`super::discovery`]).
//!
//! `GET <cdp_api>/audiences/<ps>/personalization_services/<id>/metrics|logs` (the seed's shape;
//! every field but `error_rate` unknown, so every numeric field is kept).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use super::{json, millis, number, path, ParseError, TdRequest};
use crate::metrics::Endpoint;
use crate::schedule::stable_hash;
use crate::secret::Secret;

/// Fields kept from one metrics response at most: a guard against an unbounded `field` label.
pub const MAX_FIELDS: usize = 200;

pub fn metrics_request(cdp_api: &str, ps: &str, id: &str, key: &Secret) -> TdRequest {
    TdRequest::get(
        Endpoint::Metrics,
        path::join(
            cdp_api,
            &["audiences", ps, "personalization_services", id, "metrics"],
        ),
    )
    .td1(key)
}

pub fn logs_request(
    cdp_api: &str,
    ps: &str,
    id: &str,
    query: &[(String, String)],
    key: &Secret,
) -> TdRequest {
    let mut url = path::join(
        cdp_api,
        &["audiences", ps, "personalization_services", id, "logs"],
    );
    append_query(&mut url, query);
    TdRequest::get(Endpoint::Logs, url).td1(key)
}

fn append_query(url: &mut String, query: &[(String, String)]) {
    let mut first = !url.contains('?');
    for (k, v) in query.iter().filter(|(k, _)| !k.is_empty()) {
        url.push(if first { '?' } else { '&' });
        first = false;
        url.push_str(&url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>());
        url.push('=');
        url.push_str(&url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>());
    }
}

// -- metrics -------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceMetrics {
    /// `error_rate` as sent (the unit is the config's business).
    pub error_rate: Option<f64>,
    /// Every other numeric field by dotted path, sorted.
    pub fields: Vec<(String, f64)>,
    /// Known latency fields in seconds, by `stat` label.
    pub latencies: Vec<(&'static str, f64)>,
    /// Fields dropped by [`MAX_FIELDS`].
    pub dropped: usize,
}

const LATENCY_FIELDS: &[(&str, &str)] = &[
    ("p50_latency_ms", "p50"),
    ("p95_latency_ms", "p95"),
    ("p99_latency_ms", "p99"),
    ("avg_latency_ms", "avg"),
];

pub fn parse_metrics(body: &[u8]) -> Result<ServiceMetrics, ParseError> {
    let v = json(body)?;
    let mut obj = v
        .as_object()
        .ok_or_else(|| ParseError("the body is JSON but not an object".into()))?;
    // Some APIs wrap the payload: {"data": {...}}.
    if !obj.contains_key("error_rate") {
        if let Some(Value::Object(inner)) = obj.get("data").or_else(|| obj.get("metrics")) {
            obj = inner;
        }
    }
    let mut out = ServiceMetrics::default();
    let mut flat = Vec::new();
    flatten("", obj, &mut flat, 0);
    for (path, val) in flat {
        if path == "error_rate" {
            out.error_rate = Some(val);
            continue;
        }
        if let Some((_, q)) = LATENCY_FIELDS.iter().find(|(f, _)| *f == path) {
            out.latencies.push((q, val / 1000.0));
        }
        if out.fields.len() < MAX_FIELDS {
            out.fields.push((path, val));
        } else {
            out.dropped += 1;
        }
    }
    // `{"a.b": 1, "a": {"b": 2}}` names one path twice: keep the first.
    out.fields.sort_by(|a, b| a.0.cmp(&b.0));
    out.fields.dedup_by(|later, first| later.0 == first.0);
    if out.error_rate.is_none() && out.fields.is_empty() {
        return Err(ParseError(
            "the metrics response has no numeric field".into(),
        ));
    }
    Ok(out)
}

fn flatten(
    prefix: &str,
    obj: &serde_json::Map<String, Value>,
    out: &mut Vec<(String, f64)>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    for (k, v) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&path, inner, out, depth + 1),
            other => {
                if let Some(n) = number(other) {
                    out.push((path, n));
                }
            }
        }
    }
}

// -- logs -------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Identity for counting each entry once: the entry's `id`/`request_id`, else a hash of
    /// its whole content.
    pub identity: u64,
    pub section: Option<String>,
    /// Unix seconds.
    pub timestamp: Option<f64>,
    pub status: Option<u16>,
    pub processing_time: Option<Duration>,
    pub error: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogsPage {
    pub entries: Vec<LogEntry>,
    /// The next page's value for the page parameter, when the answer names one.
    pub next_page: Option<String>,
    /// Entries that were not objects.
    pub skipped: usize,
}

pub fn parse_logs(body: &[u8]) -> Result<LogsPage, ParseError> {
    let v = json(body)?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("logs").or_else(|| o.get("data")) {
            Some(Value::Array(a)) => a,
            Some(Value::Null) | None => {
                return Err(ParseError("the response has no \"logs\" array".into()))
            }
            Some(_) => return Err(ParseError("\"logs\" is not an array".into())),
        },
        _ => {
            return Err(ParseError(
                "the body is JSON but neither an object nor an array".into(),
            ))
        }
    };
    let mut page = LogsPage::default();
    for item in list {
        let Value::Object(o) = item else {
            page.skipped += 1;
            continue;
        };
        let identity = match o.get("id").or_else(|| o.get("request_id")) {
            Some(id) if !id.is_null() => stable_hash(&format!("id:{id}")),
            _ => stable_hash(&item.to_string()),
        };
        let section = match o.get("section") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let status = o
            .get("status")
            .or_else(|| o.get("status_code"))
            .and_then(number)
            .filter(|s| (100.0..600.0).contains(s))
            .map(|s| s as u16);
        let error = status.is_some_and(|s| s >= 400)
            || o.get("error").is_some_and(|e| match e {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                _ => true,
            });
        page.entries.push(LogEntry {
            identity,
            section,
            timestamp: o.get("timestamp").and_then(parse_timestamp),
            status,
            processing_time: o
                .get("processing_time_ms")
                .and_then(number)
                .and_then(millis),
            error,
        });
    }
    if let Value::Object(o) = &v {
        let next = o.get("next_page").or_else(|| {
            o.get("pagination")
                .and_then(|p| p.get("next_page").or_else(|| p.get("nextPage")))
        });
        page.next_page = match next {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
    }
    Ok(page)
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (taken as UTC), or a Unix time in seconds or
/// milliseconds (as a number or a string).
pub fn parse_timestamp(v: &Value) -> Option<f64> {
    if let Value::String(s) = v {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.timestamp_micros() as f64 / 1e6);
        }
        for fmt in [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f UTC",
        ] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(t.and_utc().timestamp_micros() as f64 / 1e6);
            }
        }
    }
    let n = number(v)?;
    if n > 1e11 {
        Some(n / 1000.0)
    } else if n > 0.0 {
        Some(n)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_flattened_with_units() {
        let m = parse_metrics(
            br#"{"error_rate": "0.02", "requests_per_second": 41.5,
            "p95_latency_ms": 80, "cache": {"hit_ratio": "0.93", "name": "x"}, "window": "1h"}"#,
        )
        .unwrap();
        assert_eq!(m.error_rate, Some(0.02));
        assert_eq!(
            m.fields,
            vec![
                ("cache.hit_ratio".to_string(), 0.93),
                ("p95_latency_ms".to_string(), 80.0),
                ("requests_per_second".to_string(), 41.5)
            ]
        );
        assert_eq!(m.latencies, vec![("p95", 0.08)]);
    }

    #[test]
    fn metrics_without_numbers_are_invalid() {
        assert!(parse_metrics(br#"{"status":"ok"}"#).is_err());
        assert!(parse_metrics(b"[]").is_err());
    }

    #[test]
    fn logs_parse_tolerantly() {
        let page = parse_logs(br#"{"logs": [
            {"user_id": "u1", "section": "premium_users", "timestamp": "2024-02-13T10:30:00Z"},
            {"user_id": "u2", "section": "new_users", "timestamp": 1707820200, "status": 500, "processing_time_ms": "45"},
            {"user_id": "u3", "timestamp": "2024-02-13 10:30:00.5"},
            "junk"
        ], "pagination": {"next_page": 2}}"#)
        .unwrap();
        assert_eq!(page.entries.len(), 3);
        assert_eq!(page.skipped, 1);
        assert_eq!(page.entries[0].timestamp, Some(1707820200.0));
        assert_eq!(page.entries[1].timestamp, Some(1707820200.0));
        assert!(page.entries[1].error);
        assert_eq!(
            page.entries[1].processing_time,
            Some(Duration::from_millis(45))
        );
        assert_eq!(page.entries[2].timestamp, Some(1707820200.5));
        assert_eq!(page.entries[2].section, None);
        assert_eq!(page.next_page.as_deref(), Some("2"));
        assert_ne!(page.entries[0].identity, page.entries[1].identity);
    }

    #[test]
    fn millisecond_timestamps() {
        assert_eq!(
            parse_timestamp(&serde_json::json!(1707820200123u64)),
            Some(1707820200.123)
        );
        assert_eq!(parse_timestamp(&serde_json::json!("yesterday")), None);
    }

    #[test]
    fn query_is_encoded() {
        let r = logs_request(
            "http://h/",
            "1",
            "2",
            &[
                ("since".into(), "2024-01-01T00:00:00+00:00".into()),
                (String::new(), "x".into()),
            ],
            &Secret::new("k"),
        );
        assert_eq!(r.url, "http://h/audiences/1/personalization_services/2/logs?since=2024-01-01T00%3A00%3A00%2B00%3A00");
    }
}
