//! The CDP management API: a service's metrics and logs, and the list of a parent segment's
//! real-time personalization services (discovery).
//!
//! `GET <cdp_api>/audiences/<ps>/personalization_services/<id>/metrics|logs` (the seed's shape;
//! every field but `error_rate` unknown: the answers are read in [`super::metrics_answer`] and
//! [`super::logs_answer`] through the configured mapping) and
//! `GET <cdp_api>/audiences/<ps>/realtime_personalization_services` (paged: `data[]`,
//! `pagination.nextPage`).

use serde_json::Value;

use super::{json, path, ParseError, TdRequest};
use crate::config::{LogsMapping, MetricsMapping};
use crate::metrics::Endpoint;
use crate::secret::Secret;

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

pub fn discovery_request(cdp_api: &str, ps: &str, page: Option<&str>, key: &Secret) -> TdRequest {
    let mut url = path::join(
        cdp_api,
        &["audiences", ps, "realtime_personalization_services"],
    );
    if let Some(p) = page {
        append_query(&mut url, &[("page".into(), p.into())]);
    }
    TdRequest::get(Endpoint::Discovery, url).td1(key)
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

// -- metrics and logs, the built-in mapping -----------------------------------------------------

pub use super::logs_answer::{parse_timestamp, LogEntry, LogsPage};
pub use super::metrics_answer::{ServiceMetrics, MAX_FIELDS};

/// A metrics answer read with the built-in mapping ([`super::metrics_answer::parse_metrics`]
/// takes the configured one).
pub fn parse_metrics(body: &[u8]) -> Result<ServiceMetrics, ParseError> {
    super::metrics_answer::parse_metrics(body, &MetricsMapping::default())
}

/// A logs answer read with the built-in mapping ([`super::logs_answer::parse_logs`] takes the
/// configured one).
pub fn parse_logs(body: &[u8]) -> Result<LogsPage, ParseError> {
    super::logs_answer::parse_logs(body, &LogsMapping::builtin("page"))
}

// -- discovery ----------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundService {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryPage {
    pub services: Vec<FoundService>,
    pub next_page: Option<String>,
}

pub fn parse_discovery(body: &[u8]) -> Result<DiscoveryPage, ParseError> {
    let v = json(body)?;
    let data = v
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| ParseError("the response has no \"data\" array".into()))?;
    let mut page = DiscoveryPage::default();
    for item in data {
        // JSON:API style puts fields under "attributes".
        let attrs = item.get("attributes").unwrap_or(item);
        let id = item.get("id").or_else(|| attrs.get("id"));
        let id = match id {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let Some(name) = attrs.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        page.services.push(FoundService {
            id,
            name: name.to_string(),
        });
    }
    page.next_page = match v
        .get("pagination")
        .and_then(|p| p.get("nextPage").or_else(|| p.get("next_page")))
    {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(page)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert_eq!(m.latencies, vec![("p95".to_string(), 0.08)]);
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
    fn discovery_pages() {
        let p = parse_discovery(br#"{"data":[{"id":"7","name":"a"},{"id":8,"attributes":{"name":"b"}},{"name":"no id"}],
            "pagination":{"nextPage":"2"}}"#)
        .unwrap();
        assert_eq!(p.services.len(), 2);
        assert_eq!(
            p.services[1],
            FoundService {
                id: "8".into(),
                name: "b".into()
            }
        );
        assert_eq!(p.next_page.as_deref(), Some("2"));
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
