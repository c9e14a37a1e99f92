//! The p13n flavor (RT 2.0) answer: arbitrary bytes into `p13n::parse_personalization`, with no
//! expected section, an absent one, and each offer in turn. Never panics; the reported
//! section is one of `sections` (the expected one when present), `sections` are exactly the
//! offer keys, and every section is also an output; an empty body or `{}` is no offers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use td_pz_exporter::td::p13n::parse_personalization;
use td_pz_exporter::td::Personalization;

fn check(p: &Personalization, expected: Option<&str>, offers: &serde_json::Map<String, Value>) {
    assert!(offers.keys().eq(p.sections.iter()), "{p:?}");
    assert!(p.sections.is_subset(&p.outputs), "{p:?}");
    match &p.section {
        None => assert!(p.sections.is_empty(), "{p:?}"),
        Some(s) => {
            assert!(
                p.sections.contains(s),
                "section {s:?} not among {:?}",
                p.sections
            );
            if let Some(e) = expected.filter(|e| p.sections.contains(*e)) {
                assert_eq!(s, e);
            }
        }
    }
    for offer in offers.values() {
        if let Some(Value::Object(attrs)) = offer.get("attributes") {
            assert!(attrs.keys().all(|k| p.outputs.contains(k)), "{p:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let v: Option<Value> = serde_json::from_slice(data).ok();
    let first = parse_personalization(data, None);
    match &first {
        // No offers (TD's 204, an empty body, `{}`): an answer with no section.
        Ok(p) if data.iter().all(u8::is_ascii_whitespace)
            || v.as_ref().and_then(Value::as_object).is_some_and(|o| o.is_empty()) =>
        {
            assert_eq!(p, &Personalization::default());
        }
        Ok(p) => {
            let v = v.expect("a successful parse means the body is JSON or empty");
            let offers = v["offers"]
                .as_object()
                .expect("parsed means offers is an object");
            check(p, None, offers);
            check(
                &parse_personalization(data, Some("__absent__")).expect("parses again"),
                Some("__absent__"),
                offers,
            );
            for name in offers.keys().take(4) {
                let again = parse_personalization(data, Some(name)).expect("parses again");
                assert_eq!(again.section.as_deref(), Some(name.as_str()));
                check(&again, Some(name), offers);
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "a parse error says why");
            if let Some(Value::Object(o)) = &v {
                assert!(
                    !matches!(o.get("offers"), Some(Value::Object(_))),
                    "refused a valid answer: {e}"
                );
            }
        }
    }
});
