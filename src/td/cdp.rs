//! Flavor `cdp`: the personalization API as the seed document describes it.
//!
//! `POST <personalization_url>/audiences/<ps>/personalization/<name>` (and `/test`) with
//! `Authorization: TD1 <key>`; the answer is `{user_id, section, outputs, timestamp,
//! processing_time_ms}`. Unknown fields are ignored and numbers may come as strings.

use serde_json::{json, Value};

use super::Endpoint;
use super::{json, millis, number, ParseError, Personalization, TdRequest};
use crate::config::{Probe, ProbeEndpoint, Service};
use crate::secret::Secret;

pub fn personalize_url(base: &str, svc: &Service, endpoint: ProbeEndpoint) -> String {
    let mut segments = vec![
        "audiences",
        &svc.parent_segment,
        "personalization",
        &svc.name,
    ];
    if endpoint == ProbeEndpoint::Test {
        segments.push("test");
    }
    super::path::join(base, &segments)
}

/// The live request sends `{user_id, ...context}`; `/test` sends `{user_id, input_params}`.
pub fn personalize_request(base: &str, svc: &Service, probe: &Probe, key: &Secret) -> TdRequest {
    let body = match probe.endpoint {
        ProbeEndpoint::Live => {
            let mut m = probe.context.clone();
            m.insert("user_id".into(), Value::String(probe.user_id.clone()));
            Value::Object(m)
        }
        ProbeEndpoint::Test => json!({
            "user_id": probe.user_id,
            "input_params": Value::Object(probe.context.clone()),
        }),
    };
    let endpoint = match probe.endpoint {
        ProbeEndpoint::Live => Endpoint::Personalize,
        ProbeEndpoint::Test => Endpoint::PersonalizeTest,
    };
    TdRequest::post_json(
        endpoint,
        personalize_url(base, svc, probe.endpoint),
        "application/json",
        &body,
    )
    .td1(key)
}

pub fn parse_personalization(body: &[u8]) -> Result<Personalization, ParseError> {
    let v = json(body)?;
    let obj = v
        .as_object()
        .ok_or_else(|| ParseError("the body is JSON but not an object".into()))?;
    let section = match obj.get("section") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(ParseError(format!(
                "\"section\" is {} where a string was expected",
                kind(other)
            )))
        }
        None => return Err(ParseError("the response has no \"section\" field".into())),
    };
    let outputs = match obj.get("outputs") {
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        None | Some(Value::Null) => Default::default(),
        Some(other) => {
            return Err(ParseError(format!(
                "\"outputs\" is {} where an object was expected",
                kind(other)
            )))
        }
    };
    let processing_time = obj
        .get("processing_time_ms")
        .and_then(number)
        .and_then(millis);
    Ok(Personalization {
        sections: [section.clone()].into(),
        section: Some(section),
        outputs,
        processing_time,
    })
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_the_seed_example() {
        let body = br#"{
          "user_id": "customer_12345",
          "section": "premium_users",
          "outputs": {"recommended_products": ["prod_123"], "exclusive_offers": ["offer_10"],
                      "customer_tier": "premium", "purchase_count_30d": 12},
          "timestamp": "2024-02-13T10:30:00Z",
          "processing_time_ms": 45
        }"#;
        let p = parse_personalization(body).unwrap();
        assert_eq!(p.section.as_deref(), Some("premium_users"));
        assert!(p.outputs.contains("exclusive_offers"));
        assert_eq!(p.outputs.len(), 4);
        assert_eq!(p.processing_time, Some(Duration::from_millis(45)));
    }

    #[test]
    fn tolerates_strings_and_missing_optionals() {
        let p = parse_personalization(
            br#"{"section":"new_users","processing_time_ms":"12.5","extra":1}"#,
        )
        .unwrap();
        assert_eq!(p.processing_time, Some(Duration::from_micros(12_500)));
        assert!(p.outputs.is_empty());
    }

    #[test]
    fn wrong_shapes_are_named() {
        assert!(parse_personalization(b"not json")
            .unwrap_err()
            .0
            .contains("not JSON"));
        assert!(parse_personalization(b"[1]")
            .unwrap_err()
            .0
            .contains("not an object"));
        assert!(parse_personalization(br#"{"outputs":{}}"#)
            .unwrap_err()
            .0
            .contains("no \"section\""));
        assert!(parse_personalization(br#"{"section":"a","outputs":[1]}"#)
            .unwrap_err()
            .0
            .contains("outputs"));
        assert!(parse_personalization(b"\xff\xfe")
            .unwrap_err()
            .0
            .contains("not UTF-8"));
    }
}
