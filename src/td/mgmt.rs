//! A service's metrics and logs endpoints: from the source design only, in no TD document
//! (discovery, which TD does publish, is [`super::discovery`]).
//!
//! `GET <cdp_api>/audiences/<ps>/personalization_services/<id>/metrics|logs` (the seed's shape;
//! every field but `error_rate` unknown: the answers are read in [`super::metrics_answer`] and
//! [`super::logs_answer`] through the configured mapping).

use super::Endpoint;
use super::{path, ParseError, TdRequest};
use crate::config::{LogsMapping, MetricsMapping};
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
                ("requests_per_second".to_string(), 41.5)
            ]
        );
        // The mapped latency is a latency only, not a field too.
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
