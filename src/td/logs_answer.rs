//! A service logs answer read through its [`LogsMapping`]: the entries (identity, section, time,
//! status, processing time, error) and the value that asks for the next page.
//!
//! The endpoint comes from the source design (`{"logs": [{"user_id", "section", "timestamp"}]}`;
//! paging and filters unknown), so where the fields are is the mapping's business. Parsing is
//! tolerant; a problem is a [`ParseError`], never a panic. The user never leaves this module as
//! more than a value shown by the `probe` command: it is no label.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use super::{json, millis, number, ParseError};
use crate::config::{FieldPath, LogsMapping};
use crate::hash::stable_hash;

#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Identity for counting each entry once: the entry's id, else a hash of its whole content.
    pub identity: u64,
    pub section: Option<String>,
    /// Unix seconds.
    pub timestamp: Option<f64>,
    pub status: Option<u16>,
    pub processing_time: Option<Duration>,
    pub error: bool,
    /// Shown by `probe --poller=logs` only.
    pub user: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogsPage {
    pub entries: Vec<LogEntry>,
    /// The next page's value for the mapping's `next_param`, when the answer names one.
    pub next_page: Option<String>,
    /// Entries that were not objects.
    pub skipped: usize,
}

/// The first of `paths` present (and not null) in `v`.
fn first<'v>(v: &'v Value, paths: &[FieldPath]) -> Option<&'v Value> {
    paths
        .iter()
        .filter_map(|p| p.lookup(v))
        .find(|x| !x.is_null())
}

/// A string or a number as text; an empty string only when `empty` allows it.
fn text(v: Option<&Value>, empty: bool) -> Option<String> {
    match v? {
        Value::String(s) if empty || !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn parse_logs(body: &[u8], mapping: &LogsMapping) -> Result<LogsPage, ParseError> {
    let v = json(body)?;
    let list = match (&mapping.entries, &v) {
        (Some(p), _) => match p.lookup(&v) {
            Some(Value::Array(a)) => a,
            Some(Value::Null) | None => {
                return Err(ParseError(format!(
                    "the response has no \"{p}\" array (logs_mapping.entries)"
                )))
            }
            Some(_) => return Err(ParseError(format!("\"{p}\" is not an array"))),
        },
        (None, Value::Array(a)) => a,
        (None, Value::Object(o)) => match o.get("logs").or_else(|| o.get("data")) {
            Some(Value::Array(a)) => a,
            Some(Value::Null) | None => {
                return Err(ParseError("the response has no \"logs\" array".into()))
            }
            Some(_) => return Err(ParseError("\"logs\" is not an array".into())),
        },
        (None, _) => {
            return Err(ParseError(
                "the body is JSON but neither an object nor an array".into(),
            ))
        }
    };
    let mut page = LogsPage::default();
    for item in list {
        if !item.is_object() {
            page.skipped += 1;
            continue;
        }
        let identity = match first(item, &mapping.id) {
            Some(id) => stable_hash(&format!("id:{id}")),
            None => stable_hash(&item.to_string()),
        };
        let status = first(item, &mapping.status)
            .and_then(number)
            .filter(|s| (100.0..600.0).contains(s))
            .map(|s| s as u16);
        let error = status.is_some_and(|s| s >= 400)
            || first(item, &mapping.error).is_some_and(|e| match e {
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                _ => true,
            });
        page.entries.push(LogEntry {
            identity,
            section: text(first(item, &mapping.section), true),
            timestamp: first(item, &mapping.timestamp).and_then(parse_timestamp),
            status,
            processing_time: first(item, &mapping.processing_time_ms)
                .and_then(number)
                .and_then(millis),
            error,
            user: text(first(item, &mapping.user), false),
        });
    }
    if v.is_object() {
        page.next_page = text(first(&v, &mapping.next), false);
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
    use crate::config::Config;

    /// The mapping `toml` (the body of `[defaults.logs_mapping]`) gives, through the config.
    fn mapping(toml: &str) -> LogsMapping {
        let text = format!("[td]\napi_key_env = \"K\"\n[defaults.logs_mapping]\n{toml}\n");
        let env = std::collections::BTreeMap::from([("K".to_string(), "1/x".to_string())]);
        let cfg = Config::parse(&text, "t.toml", &env).unwrap_or_else(|e| panic!("{e}"));
        (*cfg.defaults.logs_mapping).clone()
    }

    fn custom() -> LogsMapping {
        mapping(
            "entries = \"items\"\nuser = \"uid\"\nsection = \"segment\"\ntimestamp = \"ts\"\n\
             status = \"http_status\"\nid = \"request_id\"\nnext = \"cursor.next\"\nnext_param = \"cursor\"",
        )
    }

    const ALT: &[u8] = br#"{"items": [
        {"uid": "u1", "segment": "vip", "ts": 1764800000, "http_status": 200, "request_id": "r1"},
        {"uid": "u2", "segment": "new", "ts": 1764800001500, "http_status": "503", "request_id": "r2"},
        {"uid": "u3", "ts": "2025-12-03T22:13:22Z"}, 7
    ], "cursor": {"next": "abc"}}"#;

    #[test]
    fn an_alternative_answer_through_a_mapping() {
        let m = custom();
        assert_eq!(m.next_param, "cursor");
        let page = parse_logs(ALT, &m).unwrap();
        assert_eq!(page.entries.len(), 3);
        assert_eq!(page.skipped, 1);
        assert_eq!(page.next_page.as_deref(), Some("abc"));
        let e = &page.entries;
        assert_eq!(
            (
                e[0].section.as_deref(),
                e[0].timestamp,
                e[0].status,
                e[0].error
            ),
            (Some("vip"), Some(1764800000.0), Some(200), false)
        );
        assert_eq!(e[0].user.as_deref(), Some("u1"));
        assert_eq!(
            (
                e[1].section.as_deref(),
                e[1].timestamp,
                e[1].status,
                e[1].error
            ),
            (Some("new"), Some(1764800001.5), Some(503), true)
        );
        assert_eq!(
            (e[2].section.as_deref(), e[2].timestamp),
            (None, Some(1764800002.0))
        );
        // The id is the identity: the same request id with other content is the same entry.
        let again =
            parse_logs(br#"{"items": [{"uid": "other", "request_id": "r1"}]}"#, &m).unwrap();
        assert_eq!(again.entries[0].identity, e[0].identity);
        assert_eq!(again.next_page, None);
    }

    #[test]
    fn the_built_in_mapping_reads_todays_shape_not_the_alternative() {
        let b = LogsMapping::builtin("page");
        let page = parse_logs(
            br#"{"logs": [{"user_id": "u1", "section": "vip", "timestamp": 1764800000, "status_code": 404}],
                "pagination": {"nextPage": "p2"}}"#,
            &b,
        )
        .unwrap();
        assert_eq!(page.entries[0].section.as_deref(), Some("vip"));
        assert_eq!(page.entries[0].status, Some(404));
        assert!(page.entries[0].error);
        assert_eq!(page.entries[0].user.as_deref(), Some("u1"));
        assert_eq!(page.next_page.as_deref(), Some("p2"));
        assert_eq!(
            parse_logs(ALT, &b).unwrap_err().0,
            "the response has no \"logs\" array"
        );
    }

    #[test]
    fn a_missing_entries_array_is_a_parse_error() {
        let m = custom();
        assert_eq!(
            parse_logs(br#"{"logs": []}"#, &m).unwrap_err().0,
            "the response has no \"items\" array (logs_mapping.entries)"
        );
        assert_eq!(
            parse_logs(br#"{"items": {}}"#, &m).unwrap_err().0,
            "\"items\" is not an array"
        );
        assert!(parse_logs(br#"[{"segment": "vip"}]"#, &m).is_err());
    }

    #[test]
    fn nested_entry_fields_and_a_numeric_cursor() {
        let m = mapping(
            "entries = \"result.entries\"\nsection = \"meta.section\"\nnext = \"result.more.after\"",
        );
        let page = parse_logs(
            br#"{"result": {"entries": [{"meta": {"section": 42}}], "more": {"after": 17}}}"#,
            &m,
        )
        .unwrap();
        assert_eq!(page.entries[0].section.as_deref(), Some("42"));
        assert_eq!(page.next_page.as_deref(), Some("17"));
        assert_eq!(
            m.next_param, "page",
            "next_param defaults to [defaults.logs].page_param"
        );
    }
}
