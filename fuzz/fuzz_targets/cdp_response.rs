//! The cdp flavor's personalization answer: arbitrary bytes into `cdp::parse_personalization`.
//! Never panics; a successful parse has a section (the one the body names) and nothing else
//! in `sections`, and its outputs are exactly the keys of `outputs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use td_pz_exporter::td::cdp::parse_personalization;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_personalization(data);
    let v: Option<Value> = serde_json::from_slice(data).ok();
    match parsed {
        Ok(p) => {
            let v = v.expect("a successful parse means the body is JSON");
            let obj = v
                .as_object()
                .expect("a successful parse means a JSON object");
            let section = p
                .section
                .as_deref()
                .expect("a successful cdp parse has Some(section)");
            assert_eq!(p.sections.len(), 1, "{p:?}");
            assert!(p.sections.contains(section), "{p:?}");
            match &obj["section"] {
                Value::String(s) => assert_eq!(s, section),
                Value::Number(n) => assert_eq!(n.to_string(), section),
                other => panic!("parsed although section is {other:?}"),
            }
            match obj.get("outputs") {
                Some(Value::Object(o)) => {
                    assert!(o.keys().eq(p.outputs.iter()), "{p:?}")
                }
                _ => assert!(p.outputs.is_empty(), "{p:?}"),
            }
            if let Some(d) = p.processing_time {
                assert!(d.as_secs_f64().is_finite());
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "a parse error says why");
            // A JSON object whose section is a string and whose outputs is absent or an
            // object is a valid answer.
            if let Some(Value::Object(o)) = &v {
                let section_ok = matches!(o.get("section"), Some(Value::String(_)));
                let outputs_ok = matches!(
                    o.get("outputs"),
                    None | Some(Value::Null | Value::Object(_))
                );
                assert!(!(section_ok && outputs_ok), "refused a valid answer: {e}");
            }
        }
    }
});
