//! Configuration: the example parses; each invalid file fails with a message naming the problem
//! and its line (blackbox_exporter's `testdata/invalid-*.yml` pattern).

use std::collections::BTreeMap;
use std::process::Command;

use td_pz_exporter::config::{Config, Flavor};

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "TD_API_KEY".into(),
            "1/0123456789abcdef0123456789abcdef".into(),
        ),
        (
            "TD_P13N_TOKEN".into(),
            "1/2/0123456789abcdef0123456789abcdef".into(),
        ),
    ])
}

fn check(file: &str) -> String {
    let path = format!("{}/tests/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    match Config::parse(&text, file, &env()) {
        Ok(_) => panic!("{file} should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_example_parses() {
    let path = format!(
        "{}/examples/td-pz-exporter.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let c = Config::parse(&text, "example", &env()).unwrap();
    assert_eq!(c.services.len(), 3);
    assert_eq!(
        c.services[0].flavor(),
        Flavor::P13n,
        "the published API leads"
    );
    assert!(c.services[1].p13n().unwrap().public);
    assert_eq!(c.services[2].flavor(), Flavor::Cdp);
    assert_eq!(c.services[2].probes.len(), 3);
    assert_eq!(
        c.td.p13n_url.as_deref(),
        Some("https://us01.p13n.in.treasuredata.com")
    );
    assert_eq!(c.td.cdp_api_url, "https://api-cdp.treasuredata.com");
    assert!(c.parent_segments[0].discover);
}

#[test]
fn unknown_keys_are_all_named_with_their_lines() {
    let e = check("invalid-unknown-key.toml");
    assert!(
        e.contains("invalid-unknown-key.toml:3: td.timout: unknown key"),
        "{e}"
    );
    assert!(
        e.contains("invalid-unknown-key.toml:12: service[0].probe[0].expect_sectoin: unknown key"),
        "{e}"
    );
}

#[test]
fn bad_cron_expressions() {
    let e = check("invalid-cron.toml");
    assert!(e.contains(":5: defaults.probe_schedule: invalid cron expression \"*/5 * * * *\": it needs a seconds field"), "{e}");
    assert!(
        e.contains(":14: service[0].probe[0].schedule: invalid cron expression \"every minute\""),
        "{e}"
    );
}

#[test]
fn a_missing_api_key_source() {
    let e = check("invalid-no-api-key.toml");
    assert!(e.contains("no API key source"), "{e}");
}

#[test]
fn an_unset_key_variable() {
    let e = check("invalid-missing-env.toml");
    assert!(e.contains("td.api_key_env: the environment variable TD_PZ_TEST_VARIABLE_THAT_IS_NOT_SET is not set"), "{e}");
}

#[test]
fn a_probe_without_a_user_id() {
    let e = check("invalid-probe-without-user.toml");
    assert!(
        e.contains(":8: service[0].probe[0]: missing user_id"),
        "{e}"
    );
}

#[test]
fn a_p13n_service_without_database_table_or_token() {
    let e = check("invalid-p13n-incomplete.toml");
    assert!(e.contains("a p13n service needs database"), "{e}");
    assert!(
        e.contains("service[0].table: \"Web-Personalization\" must match [0-9a-z_]{3,128}"),
        "{e}"
    );
    assert!(e.contains("needs token_env or token_file"), "{e}");
    assert!(e.contains("3 problems") || e.contains("4 problems"), "{e}");
}

#[test]
fn duplicate_names() {
    let e = check("invalid-duplicate-names.toml");
    assert!(e.contains("duplicate probe name \"vip\""), "{e}");
    assert!(
        e.contains("service[1].name: duplicate service \"a\""),
        "{e}"
    );
}

#[test]
fn plain_http_to_a_remote_host() {
    let e = check("invalid-insecure-http.toml");
    assert!(
        e.contains(":3: td.personalization_url: plain http:// to a non-loopback host"),
        "{e}"
    );
    // Loopback is allowed (the simulator).
    assert!(!e.contains("td.cdp_api_url"), "{e}");
    assert!(e.contains("1 problem"), "{e}");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = check("invalid-syntax.toml");
    assert!(e.contains("invalid-syntax.toml:3:"), "{e}");
}

#[test]
fn config_check_exits_0_or_1_and_prints_every_problem() {
    let bin = env!("CARGO_BIN_EXE_td-pz-exporter");
    let dir = env!("CARGO_MANIFEST_DIR");
    let bad = Command::new(bin)
        .args([
            "--config.check",
            &format!("--config.file={dir}/tests/testdata/invalid-cron.toml"),
        ])
        .env("TD_API_KEY", "1/abc")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("2 problems"), "{out}");
    assert!(out.contains("defaults.probe_schedule"), "{out}");
    assert!(out.contains("service[0].probe[0].schedule"), "{out}");
    let good = Command::new(bin)
        .args([
            "--config.check",
            &format!("--config.file={dir}/examples/td-pz-exporter.toml"),
        ])
        .env("TD_API_KEY", "1/abc")
        .env("TD_P13N_TOKEN", "1/2/x")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&good.stdout);
    assert_eq!(good.status.code(), Some(0), "{out}");
    // What no TD document backs is labelled as such, once per service that uses it.
    assert_eq!(out.matches("not in TD's published API").count(), 2, "{out}");
    assert!(
        out.contains("service[2] product_recommendations: api = \"cdp\" is from the source design; not in TD's published API"),
        "{out}"
    );
    assert!(
        out.contains("service[2] product_recommendations: the metrics and logs pollers (service_id) use endpoints from the source design; not in TD's published API"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("OK (3 service(s), 5 probe(s)"));
}

#[test]
fn the_cdp_shape_without_api() {
    let e = check("invalid-cdp-without-api.toml");
    assert!(
        e.contains("invalid-cdp-without-api.toml:5: service[0]: this service has the cdp shape (parent_segment_id, no database/table) but no api: add api = \"cdp\""),
        "{e}"
    );
}

#[test]
fn bad_metrics_mappings_name_the_place_and_the_fix() {
    let e = check("invalid-metrics-mapping.toml");
    for want in [
        ":5: defaults.metrics_mapping.error_rate: \"stats..ratio\" has an empty segment: write it as a.b.c",
        ":6: defaults.metrics_mapping.latency_unit: unknown unit \"minutes\": use \"s\", \"ms\" or \"us\"",
        ":7: defaults.metrics_mapping.error_rate_unit: unknown unit \"per-mille\": use \"ratio\" (0..1) or \"percent\" (0..100)",
        ":14: service[0].error_rate_unit: contradicts service[0].metrics_mapping.error_rate_unit: keep one of the two",
        ":16: service[0].metrics_mapping.root: \"result.*\" holds '*': a path is plain field names",
        ":19: service[0].metrics_mapping.latency.p95: an empty path",
        ":20: service[0].metrics_mapping.latency.p 99: \"p 99\" is the stat label: use letters, digits and _",
        ":21: service[0].metrics_mapping.latency.latency_unit: latency_unit belongs in [service[0].metrics_mapping] itself",
    ] {
        assert!(e.contains(want), "missing {want:?} in\n{e}");
    }
    assert!(e.contains(": 8 problems"), "{e}");
}

#[test]
fn bad_logs_mappings_name_the_place_and_the_fix() {
    let e = check("invalid-logs-mapping.toml");
    for want in [
        ":5: defaults.logs_mapping.entries: \"items[0]\" holds '[': a path is plain field names (letters, digits, _ and -) joined by dots; no wildcards, indexes or spaces",
        ":6: defaults.logs_mapping.timestamp: \"meta.ts.\" has an empty segment",
        ":14: service[0].logs_mapping.next: \"cursor next\" holds ' '",
        ":15: service[0].logs_mapping.next_param: \"cursor&x=1\" is a query parameter name",
        ":16: service[0].logs_mapping.sectoin: unknown key",
    ] {
        assert!(e.contains(want), "missing {want:?} in\n{e}");
    }
    assert!(e.contains(": 5 problems"), "{e}");
}
