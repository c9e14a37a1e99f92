//! The management metrics endpoint: arbitrary bytes into `mgmt::parse_metrics`. Never panics;
//! every value kept is finite, fields are sorted and capped, `error_rate` is never also a field,
//! and a top-level numeric `error_rate` (number or string) is always read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use td_pz_exporter::td::mgmt::{parse_metrics, MAX_FIELDS};

fuzz_target!(|data: &[u8]| {
    let v: Option<Value> = serde_json::from_slice(data).ok();
    match parse_metrics(data) {
        Ok(m) => {
            assert!(v.as_ref().is_some_and(Value::is_object));
            assert!(m.error_rate.is_some() || !m.fields.is_empty());
            assert!(m.error_rate.is_none_or(f64::is_finite));
            assert!(m.fields.len() <= MAX_FIELDS);
            assert!(
                m.fields.windows(2).all(|w| w[0].0 <= w[1].0),
                "fields unsorted"
            );
            for (path, val) in &m.fields {
                assert!(val.is_finite(), "{path} = {val}");
                assert_ne!(path, "error_rate");
            }
            for (stat, val) in &m.latencies {
                assert!(val.is_finite(), "{stat} = {val}");
                assert!(["p50", "p95", "p99", "avg"].contains(&stat.as_str()));
            }
            if let Some(Value::Object(o)) = &v {
                let top = o.get("error_rate").and_then(|e| match e {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                });
                if let Some(e) = top.filter(|e| e.is_finite()) {
                    assert_eq!(m.error_rate, Some(e));
                }
            }
        }
        Err(e) => assert!(!e.0.is_empty(), "a parse error says why"),
    }
});
