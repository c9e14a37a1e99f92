//! The configuration parser: arbitrary UTF-8 text into `Config::parse` with an environment map.
//! Never panics; an error lists at least one problem, each line within the text; a success
//! holds only valid values; the API key and token never appear in an error or in `Debug`.
//! Inputs that name a key or token *file* are skipped: reading /dev/zero is not the parser's bug.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use td_pz_exporter::config::Config;

const KEY: &str = "1/FUZZkey0123456789abcdefSECRET";
const TOKEN: &str = "1/2/FUZZtoken0123456789abcdefTOKEN";

fn names_a_file(v: &toml::Value) -> bool {
    match v {
        toml::Value::Table(t) => t
            .iter()
            .any(|(k, v)| k.ends_with("_file") || names_a_file(v)),
        toml::Value::Array(a) => a.iter().any(names_a_file),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.parse::<toml::Value>().is_ok_and(|v| names_a_file(&v)) {
        return;
    }
    let env = BTreeMap::from([
        ("TD_API_KEY".to_string(), KEY.to_string()),
        ("TD_P13N_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    let lines = text.lines().count().max(1) + 1;
    match Config::parse(text, "fuzz.toml", &env) {
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error without a problem");
            for p in &e.problems {
                assert!(!p.message.is_empty());
                assert!(
                    p.line.is_none_or(|l| l >= 1 && l <= lines),
                    "line {:?} of {lines}",
                    p.line
                );
            }
            let shown = e.to_string();
            for secret in [KEY, TOKEN] {
                assert!(
                    text.contains(secret) || !shown.contains(secret),
                    "secret in: {shown}"
                );
            }
        }
        Ok(cfg) => {
            assert_eq!(cfg.source, text);
            assert!(!cfg.td.api_key.is_empty());
            assert!((1..=10_000).contains(&cfg.td.max_requests_per_second));
            assert!(!cfg.td.timeout.is_zero());
            assert!(!cfg.defaults.section_share_window.is_zero());
            assert!(cfg.defaults.logs.max_pages >= 1);
            if let Some((i, n)) = cfg.sharding {
                assert!(i < n);
            }
            let mut seen = std::collections::HashSet::new();
            for s in &cfg.services {
                assert!(!s.name.trim().is_empty());
                assert!(
                    seen.insert((s.parent_segment.clone(), s.name.clone())),
                    "duplicate"
                );
                assert!(s.max_sections >= 1);
                assert!((1..=10_000).contains(&s.max_requests_per_second));
                if let Some(t) = s.p13n() {
                    assert!(!t.database.is_empty() && !t.table.is_empty());
                    assert!(cfg.td.p13n_url.is_some());
                }
                for p in &s.probes {
                    assert!(!p.name.is_empty() && !p.user_id.trim().is_empty());
                }
            }
            let debug = format!("{cfg:?}");
            for secret in [KEY, TOKEN] {
                assert!(
                    text.contains(secret) || !debug.contains(secret),
                    "secret in Debug"
                );
            }
        }
    }
});
