//! The management logs endpoint (and discovery, which shares its paged shape): arbitrary bytes
//! into `mgmt::parse_logs` and `discovery::parse`, then the parsed entries into a fresh
//! `LogState`. Never panics; every entry of a first poll counts once, the section shares sum to
//! 1 when there are any, and ingesting the same answer again adds nothing.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use td_pz_exporter::poll::logs::{LogState, SectionCap};
use td_pz_exporter::td::discovery;
use td_pz_exporter::td::mgmt::{parse_logs, parse_timestamp};
use td_pz_exporter::td::path::acceptable;

const NOW: f64 = 1_707_820_200.0;

fn shares_sum_to_one(st: &mut LogState) {
    let shares = st.shares(NOW, Duration::from_secs(300));
    if !shares.is_empty() {
        let sum: f64 = shares.iter().map(|(_, s)| s).sum();
        assert!((sum - 1.0).abs() < 1e-9, "shares sum to {sum}: {shares:?}");
        assert!(
            shares.iter().all(|(_, s)| *s > 0.0 && *s <= 1.0),
            "{shares:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let v: Option<Value> = serde_json::from_slice(data).ok();
    if let Ok(d) = discovery::parse(data, "/audiences/1/realtime_personalization_services") {
        assert!(d.next_after.as_deref() != Some(""));
        let n = v
            .as_ref()
            .and_then(|v| v["data"].as_array())
            .map_or(0, Vec::len);
        assert_eq!(d.services.len() + d.refused, n);
        // Nothing that could move a request reaches a path.
        for s in &d.services {
            assert!(acceptable(&s.id).is_ok() && acceptable(&s.name).is_ok(), "{s:?}");
        }
    }
    let page = match parse_logs(data) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.0.is_empty(), "a parse error says why");
            return;
        }
    };
    let v = v.expect("a successful parse means the body is JSON");
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => o
            .get("logs")
            .or_else(|| o.get("data"))
            .and_then(Value::as_array)
            .expect("logs array"),
        _ => panic!("parsed a scalar"),
    };
    assert_eq!(page.entries.len() + page.skipped, list.len());
    assert!(page.next_page.as_deref() != Some(""));
    for (e, item) in page
        .entries
        .iter()
        .zip(list.iter().filter(|i| i.is_object()))
    {
        assert!(e.timestamp.is_none_or(f64::is_finite), "{e:?}");
        assert!(e.status.is_none_or(|s| (100..600).contains(&s)), "{e:?}");
        assert_eq!(e.timestamp, item.get("timestamp").and_then(parse_timestamp));
    }

    let mut st = LogState::new(SectionCap::new(None, 50), Duration::from_secs(600));
    let first = st.ingest(&page.entries, NOW);
    assert_eq!(
        first.new_entries as usize,
        page.entries.len(),
        "a fresh state counts every entry"
    );
    assert_eq!(first.by_section.values().sum::<u64>(), first.new_entries);
    assert!(first.overflow <= first.new_entries && first.errors <= first.new_entries);
    shares_sum_to_one(&mut st);
    let again = st.ingest(&page.entries, NOW);
    assert_eq!(
        again.new_entries, 0,
        "re-ingesting the same answer added {again:?}"
    );
    shares_sum_to_one(&mut st);
});
