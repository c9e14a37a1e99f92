//! Flavor `p13n`: TD's published RT 2.0 Personalization API.
//!
//! `POST <p13n_url>/<database>/<table>` with `Authorization: TD1 <key>`, `WP13n-Token: <token>`
//! and `Content-Type: application/vnd.treasuredata.v1+json`; the body is an event whose
//! `user_key` field carries the probe's user id. The answer is `{"offers": {"<name>":
//! {"attributes": {...}, "batch_segments": ...}}}`: each offer key is a section the user
//! qualified for. Errors come as `{code, message}`.

use serde_json::Value;

use super::cdp::kind;
use super::{json, ParseError, Personalization, TdRequest};
use crate::config::{Probe, Service};
use crate::metrics::Endpoint;
use crate::secret::Secret;

pub const CONTENT_TYPE: &str = "application/vnd.treasuredata.v1+json";

pub fn url(base: &str, svc: &Service) -> String {
    format!(
        "{}/{}/{}",
        base.trim_end_matches('/'),
        svc.database,
        svc.table
    )
}

pub fn personalize_request(base: &str, svc: &Service, probe: &Probe, key: &Secret) -> TdRequest {
    let mut event = probe.context.clone();
    event.insert(svc.user_key.clone(), Value::String(probe.user_id.clone()));
    let mut req = TdRequest::post_json(
        Endpoint::P13n,
        url(base, svc),
        CONTENT_TYPE,
        &Value::Object(event),
    )
    .td1(key);
    if let Some(token) = &svc.token {
        req = req.secret_header("WP13n-Token", token);
    }
    req
}

/// `expected` picks the section to report when the user qualified for several offers.
pub fn parse_personalization(
    body: &[u8],
    expected: Option<&str>,
) -> Result<Personalization, ParseError> {
    let v = json(body)?;
    let obj = v
        .as_object()
        .ok_or_else(|| ParseError("the body is JSON but not an object".into()))?;
    let offers = match obj.get("offers") {
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(ParseError(format!(
                "\"offers\" is {} where an object was expected",
                kind(other)
            )))
        }
        None => return Err(ParseError("the response has no \"offers\" field".into())),
    };
    let mut p = Personalization::default();
    for (name, offer) in offers {
        p.sections.insert(name.clone());
        p.outputs.insert(name.clone());
        if let Some(Value::Object(attrs)) = offer.get("attributes") {
            p.outputs.extend(attrs.keys().cloned());
        }
        // batch_segments is seen both as a number and as an array of {id}: either is fine.
    }
    p.section = match expected {
        Some(e) if p.sections.contains(e) => Some(e.to_string()),
        _ => p.sections.iter().next().cloned(),
    };
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_become_sections() {
        let body = br#"{"offers": {
            "cart_abandoners": {"attributes": {"coupon": "SAVE10"}, "batch_segments": [{"id": 1}]},
            "newsletter": {"attributes": {}, "batch_segments": 3}}}"#;
        let p = parse_personalization(body, Some("cart_abandoners")).unwrap();
        assert_eq!(p.section.as_deref(), Some("cart_abandoners"));
        assert_eq!(p.sections.len(), 2);
        assert!(p.outputs.contains("coupon"));
        let p = parse_personalization(body, Some("vip")).unwrap();
        assert_eq!(
            p.section.as_deref(),
            Some("cart_abandoners"),
            "first offer when the expected one is absent"
        );
    }

    #[test]
    fn empty_offers_is_valid_with_no_section() {
        let p = parse_personalization(br#"{"offers":{}}"#, None).unwrap();
        assert_eq!(p.section, None);
    }

    #[test]
    fn missing_offers_is_invalid() {
        assert!(parse_personalization(br#"{"section":"x"}"#, None).is_err());
        assert!(parse_personalization(br#"{"offers":[]}"#, None).is_err());
    }
}
