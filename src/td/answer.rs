//! Reading TD's answers: tolerant numbers and durations, JSON with a clear error, TD's error bodies,
//! and what a personalization answer means to a probe.

use std::collections::BTreeSet;
use std::time::Duration;

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
}
