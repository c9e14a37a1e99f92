//! Flavor `p13n`: TD's published RT 2.0 Personalization API (p13n-api.yml, td-js-sdk ≥ 4.3).
//!
//! `POST <p13n_url>/<database>/<table>` (or `/public/<database>/<table>`, td-js-sdk's browser path,
//! with an `Origin`) with `Authorization: TD1 <key>`, `WP13n-Token: <token>`,
//! `Content-Type` and `Accept: application/vnd.treasuredata.v1+json`; the body is an event with
//! `time`, a fresh `uuid`, the service's synthetic marker and the probe's context, whose
//! `user_key` field carries the probe's user id. TD ingests the event into the table: a probe
//! writes a row. The answer is `{"offers": {"<name>":
//! {"attributes": {...}, "batch_segments": ...}}}`: each offer key is a section the user
//! qualified for. Errors come as `{code, message}`.

use serde_json::Value;

use super::cdp::kind;
use super::Endpoint;
use super::{json, ParseError, Personalization, TdRequest};
use crate::config::{P13nTarget, Probe};
use crate::secret::Secret;

pub const CONTENT_TYPE: &str = "application/vnd.treasuredata.v1+json";

/// `<p13n_url>[/public]/<database>/<table>`, each segment percent-encoded.
pub fn url(base: &str, svc: &P13nTarget) -> String {
    if svc.public {
        super::path::join(base, &["public", &svc.database, &svc.table])
    } else {
        super::path::join(base, &[&svc.database, &svc.table])
    }
}

/// The event TD ingests: the probe's context, its user id under `user_key`, and the two fields
/// TD's event schema requires (p13n-api.yml `components.schemas.event`): `time`, in seconds
/// since the epoch, and a fresh `uuid` for each event.
pub fn event(svc: &P13nTarget, probe: &Probe, now_secs: i64, uuid: &str) -> Value {
    let mut event = svc.synthetic_marker.clone();
    event.extend(probe.context.clone());
    event.insert(svc.user_key.clone(), Value::String(probe.user_id.clone()));
    event.insert("time".into(), Value::from(now_secs));
    event.insert("uuid".into(), Value::String(uuid.to_string()));
    Value::Object(event)
}

pub fn personalize_request(base: &str, svc: &P13nTarget, probe: &Probe, key: &Secret) -> TdRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let body = event(svc, probe, now, &uuid::Uuid::new_v4().to_string());
    let mut req = TdRequest::post_json(Endpoint::P13n, url(base, svc), CONTENT_TYPE, &body)
        .header("Accept", CONTENT_TYPE)
        .td1(key);
    req = req.secret_header("WP13n-Token", &svc.token);
    if let Some(origin) = &svc.origin {
        req = req.header("Origin", origin);
    }
    req
}

/// `expected` picks the section to report when the user qualified for several offers.
///
/// An answer with no offers is a valid answer with no section: TD documents "204 Successful
/// Ingestion" (an empty body), and td-js-sdk reads the answer as text before JSON, so an empty
/// body and `{}` are tolerated there too.
pub fn parse_personalization(
    body: &[u8],
    expected: Option<&str>,
) -> Result<Personalization, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Personalization::default());
    }
    let v = json(body)?;
    let obj = v
        .as_object()
        .ok_or_else(|| ParseError("the body is JSON but not an object".into()))?;
    if obj.is_empty() {
        return Ok(Personalization::default());
    }
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

/// The `code` of TD's error body, when the body is one (an integer `code`).
pub fn td_code(body: &[u8]) -> Option<i64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("code")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_time_and_a_fresh_uuid() {
        let cfg = crate::config::Config::parse(
            "[td]\napi_key_env = \"K\"\n[[service]]\nname = \"w\"\napi = \"p13n\"\ndatabase = \"rt_db\"\ntable = \"web_tbl\"\ntoken_env = \"K\"\n[[service.probe]]\nname = \"p\"\nuser_id = \"u1\"\ncontext = { page_url = \"/cart\" }\n",
            "t.toml",
            &std::collections::BTreeMap::from([("K".to_string(), "1/abc".to_string())]),
        )
        .unwrap();
        let (svc, probe) = (cfg.services[0].p13n().unwrap(), &cfg.services[0].probes[0]);
        let e = event(
            svc,
            probe,
            1_700_000_000,
            "5505c764-00fc-469b-8eef-f85a0fc85794",
        );
        assert_eq!(e["time"], 1_700_000_000);
        assert_eq!(e["uuid"], "5505c764-00fc-469b-8eef-f85a0fc85794");
        assert_eq!(e["td_client_id"], "u1");
        assert_eq!(e["page_url"], "/cart");
        assert_eq!(e["td_synthetic"], "1", "the default synthetic marker");
        let key = Secret::new("1/abc");
        let (a, b) = (
            personalize_request("https://h", svc, probe, &key),
            personalize_request("https://h", svc, probe, &key),
        );
        let body =
            |r: &TdRequest| -> Value { serde_json::from_slice(r.body.as_ref().unwrap()).unwrap() };
        assert_ne!(body(&a)["uuid"], body(&b)["uuid"], "a fresh uuid per event");
        assert!(uuid::Uuid::parse_str(body(&a)["uuid"].as_str().unwrap()).is_ok());
        assert!(body(&a)["time"].as_i64().unwrap() > 1_700_000_000);
        assert!(a.headers.contains(&("Accept", CONTENT_TYPE.to_string())));
        assert_eq!(a.url, "https://h/rt_db/web_tbl");
    }

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
    fn no_offers_is_an_answer_with_no_section() {
        for body in [&b""[..], b"  \n", b"{}", br#"{"offers":{}}"#] {
            let p = parse_personalization(body, Some("vip")).unwrap();
            assert_eq!(
                p,
                Personalization::default(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// TD's error body: `{"code": <int>, "message": ...}`.
    #[test]
    fn td_codes_are_read_from_error_bodies() {
        assert_eq!(
            td_code(br#"{"code": 3005, "message": "Request origin not in IP whitelist"}"#),
            Some(3005)
        );
        assert_eq!(td_code(br#"{"code": "3004"}"#), None);
        assert_eq!(td_code(b"<html>"), None);
        assert_eq!(td_code(br#"{"code": 30.5}"#), None);
    }

    #[test]
    fn missing_offers_is_invalid() {
        assert!(parse_personalization(br#"{"section":"x"}"#, None).is_err());
        assert!(parse_personalization(br#"{"offers":[]}"#, None).is_err());
    }
}
