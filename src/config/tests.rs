use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("TD_API_KEY".to_string(), "1/0123456789abcdef".to_string()),
        (
            "TD_P13N_TOKEN".to_string(),
            "1/2/0123456789abcdef0123456789abcdef".to_string(),
        ),
    ])
}

#[test]
fn sites_derive_hosts() {
    let jp = site_hosts("jp01").unwrap();
    assert_eq!(jp.personalization, "https://jp01.cdp.treasuredata.com");
    assert_eq!(
        jp.p13n.as_deref(),
        Some("https://ap01.p13n.in.treasuredata.com")
    );
    assert_eq!(jp.cdp_api, "https://api-cdp.treasuredata.co.jp");
    let jp = site_hosts("jp01");
    assert_eq!(site_hosts("ap01"), jp, "ap01 is TD's p13n name for Tokyo");
    assert_eq!(site_hosts("ap02").unwrap().p13n, None);
    assert!(site_hosts("mars01").is_none());
}

#[test]
fn minimal_config_gets_defaults() {
    let cfg = Config::parse(
        "[td]\napi_key_env = \"TD_API_KEY\"\n[[service]]\nname = \"s\"\ndatabase = \"rt_db\"\ntable = \"web\"\ntoken_env = \"TD_P13N_TOKEN\"\n",
        "t.toml",
        &env(),
    )
    .unwrap();
    assert_eq!(
        cfg.services[0].flavor(),
        Flavor::P13n,
        "TD's published API is the default"
    );
    assert_eq!(
        cfg.td.p13n_url.as_deref(),
        Some("https://us01.p13n.in.treasuredata.com")
    );
    assert!(!cfg.services[0].p13n().unwrap().public);
    assert_eq!(
        serde_json::Value::Object(cfg.services[0].p13n().unwrap().synthetic_marker.clone()),
        serde_json::json!({"td_synthetic": "1"})
    );
    assert_eq!(
        cfg.td.p13n_key().expose(),
        "1/0123456789abcdef",
        "the CDP key when no p13n key is set"
    );
    assert_eq!(
        cfg.td.personalization_url,
        "https://us01.cdp.treasuredata.com"
    );
    assert_eq!(cfg.td.timeout, Duration::from_secs(10));
    assert_eq!(cfg.td.max_requests_per_second, 5);
    assert_eq!(cfg.services[0].max_sections, 50);
    assert_eq!(cfg.defaults.probe_schedule.source(), "*/30 * * * * *");
    assert_eq!(cfg.td.api_key.expose(), "1/0123456789abcdef");
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = "[td]\napi_key_env = \"TD_API_KEY\"\n\n[[service]]\nname = \"a\"\nparent_segment_id = \"1\"\napi = \"cdp\"\nmetrics_schedule = \"nope\"\n\n  [[service.probe]]\n  name = \"vip\"\n";
    let err = Config::parse(text, "t.toml", &env()).unwrap_err();
    let rendered = err.to_string();
    assert_eq!(err.problems.len(), 2, "{rendered}");
    assert!(
        rendered.contains("t.toml:8: service[0].metrics_schedule:"),
        "{rendered}"
    );
    assert!(
        rendered.contains("t.toml:10: service[0].probe[0]: missing user_id"),
        "{rendered}"
    );
}

fn problems(text: &str) -> String {
    let text = format!("[td]\napi_key_env = \"TD_API_KEY\"\n{text}");
    Config::parse(&text, "t.toml", &env())
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn the_cdp_shape_without_api_is_told_to_say_so() {
    let e = problems("[[service]]\nname = \"s\"\nparent_segment_id = \"1\"\n");
    assert!(
        e.contains("service[0]: this service has the cdp shape"),
        "{e}"
    );
    assert!(e.contains("add api = \"cdp\""), "{e}");
    assert!(
        e.starts_with("t.toml: 1 problem\n"),
        "one problem, not the p13n fields too: {e}"
    );
    assert_eq!(
        problems("[[service]]\nname = \"s\"\nparent_segment_id = \"1\"\napi = \"cdp\"\n"),
        ""
    );
}

#[test]
fn public_needs_an_origin_and_origins_are_origins() {
    let svc = "[[service]]\nname = \"s\"\ndatabase = \"rt_db\"\ntable = \"web\"\ntoken_env = \"TD_P13N_TOKEN\"\n";
    let e = problems(&format!("{svc}public = true\n"));
    assert!(
        e.contains("service[0].origin: the /public path needs an Origin"),
        "{e}"
    );
    for bad in [
        "www.example.com",
        "https://www.example.com/path",
        "ftp://x",
        "https://a?b",
    ] {
        let e = problems(&format!("{svc}public = true\norigin = \"{bad}\"\n"));
        assert!(e.contains("is not an origin"), "{bad}: {e}");
    }
    let text = format!(
        "[td]\napi_key_env = \"TD_API_KEY\"\np13n_api_key_env = \"TD_P13N_TOKEN\"\n{svc}public = true\norigin = \"https://shop.example.com:8443\"\nsynthetic_marker = {{ probe = \"yes\" }}\n"
    );
    let cfg = Config::parse(&text, "t.toml", &env()).unwrap();
    let s = cfg.services[0].p13n().unwrap();
    assert!(s.public);
    assert_eq!(s.origin.as_deref(), Some("https://shop.example.com:8443"));
    assert_eq!(
        serde_json::Value::Object(s.synthetic_marker.clone()),
        serde_json::json!({"probe": "yes"})
    );
    assert_eq!(
        cfg.td.p13n_key().expose(),
        "1/2/0123456789abcdef0123456789abcdef"
    );
    let e = problems("[[service]]\nname = \"s\"\nparent_segment_id = \"1\"\napi = \"cdp\"\norigin = \"https://x.com\"\n");
    assert!(e.contains("public and origin are p13n settings"), "{e}");
}

#[test]
fn names_that_would_move_a_request_are_refused() {
    for (field, value) in [
        ("name", ".."),
        ("parent_segment_id", "."),
        ("service_id", "%2e%2E"),
    ] {
        let mut svc = [
            ("name", "s"),
            ("parent_segment_id", "1"),
            ("service_id", "2"),
        ];
        svc.iter_mut().find(|(k, _)| *k == field).unwrap().1 = value;
        let body: String = svc
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\"\n"))
            .collect();
        let e = problems(&format!("[[service]]\napi = \"cdp\"\n{body}"));
        assert!(
            e.contains(&format!("service[0].{field}: \"{value}\" is a dot-segment")),
            "{e}"
        );
    }
    // Slashes, `?`, `#`, `%`, spaces and non-ASCII are sent percent-encoded: accepted.
    assert_eq!(
        problems(
            "[[service]]\napi = \"cdp\"\nname = \"a/b?c#d%e f\u{e9}\"\nparent_segment_id = \"1\"\n"
        ),
        ""
    );
}

#[test]
fn discovery_pages_are_td_sized() {
    let e = problems("[[parent_segment]]\nid = \"1\"\ndiscover = true\npage_size = 1001\n");
    assert!(
        e.contains(
            "parent_segment[0].page_size: TD pages discovery with page[size] from 1 to 1000"
        ),
        "{e}"
    );
    let text = "[td]\napi_key_env = \"TD_API_KEY\"\n[[parent_segment]]\nid = \"1\"\ndiscover = true\nignore = [\"legacy\"]\n";
    let cfg = Config::parse(text, "t.toml", &env()).unwrap();
    assert_eq!(cfg.parent_segments[0].page_size, 100);
    assert_eq!(cfg.parent_segments[0].ignore, vec!["legacy".to_string()]);
}

#[test]
fn mappings_default_to_the_built_in_and_layer_per_key() {
    let text = "[td]\napi_key_env = \"TD_API_KEY\"\n\
        [defaults.logs]\npage_param = \"p\"\n\
        [defaults.metrics_mapping]\nerror_rate = \"stats.errors.ratio\"\nerror_rate_unit = \"percent\"\n\
        [defaults.logs_mapping]\nentries = \"items\"\n\
        [[service]]\nname = \"built_in\"\nparent_segment_id = \"1\"\napi = \"cdp\"\n\
        [[service]]\nname = \"own\"\nparent_segment_id = \"1\"\napi = \"cdp\"\nerror_rate_unit = \"ratio\"\n\
        [service.metrics_mapping]\nroot = \"\"\nlatency_unit = \"s\"\n[service.metrics_mapping.latency]\np95 = \"lat.p95\"\n\
        [service.logs_mapping]\nsection = \"segment\"\nnext = \"cursor.next\"\nnext_param = \"cursor\"\n\
        [[parent_segment]]\nid = \"9\"\ndiscover = true\n";
    let cfg = Config::parse(text, "t.toml", &env()).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (&cfg.services[0], &cfg.services[1]);
    let path = |s: &str| FieldPath::parse(s).unwrap();
    // Defaults over the built-in: only the keys written change.
    assert_eq!(a.metrics_mapping.error_rate, path("stats.errors.ratio"));
    assert_eq!(a.metrics_mapping.root, MetricsRoot::Auto);
    assert_eq!(a.metrics_mapping.latency, MetricsMapping::default().latency);
    assert_eq!(a.error_rate_unit, ErrorRateUnit::Percent);
    assert_eq!(a.logs_mapping.entries, Some(path("items")));
    assert_eq!(a.logs_mapping.section, vec![path("section")]);
    assert_eq!(a.logs_mapping.next_param, "p");
    // A service over the defaults; the older error_rate_unit key still counts.
    assert_eq!(b.metrics_mapping.root, MetricsRoot::Top);
    assert_eq!(b.metrics_mapping.error_rate, path("stats.errors.ratio"));
    assert_eq!(
        b.metrics_mapping.latency,
        vec![("p95".into(), path("lat.p95"))]
    );
    assert_eq!(b.metrics_mapping.latency_unit, LatencyUnit::S);
    assert_eq!(b.error_rate_unit, ErrorRateUnit::Ratio);
    assert_eq!(b.metrics_mapping.error_rate_unit, ErrorRateUnit::Ratio);
    assert_eq!(b.logs_mapping.entries, Some(path("items")));
    assert_eq!(b.logs_mapping.section, vec![path("segment")]);
    assert_eq!(b.logs_mapping.next, vec![path("cursor.next")]);
    assert_eq!(b.logs_mapping.next_param, "cursor");
    // A parent segment's discovered services take the default unit.
    assert_eq!(
        cfg.parent_segments[0].error_rate_unit,
        ErrorRateUnit::Percent
    );
}

#[test]
fn no_mapping_is_the_built_in_one() {
    let cfg = Config::parse(
        "[td]\napi_key_env = \"TD_API_KEY\"\n[[service]]\nname = \"s\"\nparent_segment_id = \"1\"\napi = \"cdp\"\n",
        "t.toml",
        &env(),
    )
    .unwrap();
    assert_eq!(*cfg.services[0].metrics_mapping, MetricsMapping::default());
    assert_eq!(*cfg.services[0].logs_mapping, LogsMapping::builtin("page"));
    assert_eq!(cfg.defaults.logs_mapping.next_param, "page");
}

#[test]
fn services_that_keep_the_default_mappings_share_one_copy() {
    let cfg = Config::parse(
        "[td]\napi_key_env = \"TD_API_KEY\"\n\
         [[service]]\nname = \"a\"\nparent_segment_id = \"1\"\napi = \"cdp\"\n\
         [[service]]\nname = \"b\"\nparent_segment_id = \"1\"\napi = \"cdp\"\n\
         [[service]]\nname = \"c\"\nparent_segment_id = \"1\"\napi = \"cdp\"\n\
         [service.logs_mapping]\nsection = \"segment\"\n",
        "t.toml",
        &env(),
    )
    .unwrap();
    let [a, b, c] = &cfg.services[..] else {
        panic!("three services")
    };
    let d = &cfg.defaults;
    assert!(std::sync::Arc::ptr_eq(
        &a.metrics_mapping,
        &d.metrics_mapping
    ));
    assert!(std::sync::Arc::ptr_eq(&b.logs_mapping, &d.logs_mapping));
    assert!(std::sync::Arc::ptr_eq(
        &c.metrics_mapping,
        &d.metrics_mapping
    ));
    assert!(
        !std::sync::Arc::ptr_eq(&c.logs_mapping, &d.logs_mapping),
        "an override is its own"
    );
}
