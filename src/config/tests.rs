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
    assert_eq!(site_hosts("ap02").unwrap().p13n, None);
    assert!(site_hosts("mars01").is_none());
}

#[test]
fn minimal_config_gets_defaults() {
    let cfg = Config::parse(
        "[td]\napi_key_env = \"TD_API_KEY\"\n[[service]]\nname = \"s\"\nparent_segment_id = \"1\"\n",
        "t.toml",
        &env(),
    )
    .unwrap();
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
    let text = "[td]\napi_key_env = \"TD_API_KEY\"\n\n[[service]]\nname = \"a\"\nparent_segment_id = \"1\"\nmetrics_schedule = \"nope\"\n\n  [[service.probe]]\n  name = \"vip\"\n";
    let err = Config::parse(text, "t.toml", &env()).unwrap_err();
    let rendered = err.to_string();
    assert_eq!(err.problems.len(), 2, "{rendered}");
    assert!(
        rendered.contains("t.toml:7: service[0].metrics_schedule:"),
        "{rendered}"
    );
    assert!(
        rendered.contains("t.toml:9: service[0].probe[0]: missing user_id"),
        "{rendered}"
    );
}
