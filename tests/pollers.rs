//! The management pollers against the in-process simulator: service metrics, logs counted
//! once, section shares, the section cap, escaping, API discipline and discovery.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use td_pz_exporter::app::App;
use td_pz_exporter::config::Config;
use td_pz_sim::Simulator;

fn service(extra: &str) -> String {
    format!(
        "[defaults]\nmetrics_schedule = \"{NEVER}\"\nlogs_schedule = \"{NEVER}\"\n\n[[service]]\nname = \"product_recommendations\"\nparent_segment_id = \"394649\"\nservice_id = \"1234\"\napi = \"cdp\"\n{extra}\n"
    )
}

async fn poll_metrics(app: &Arc<App>, cfg: &Config) -> td_pz_exporter::outcome::PollOutcome {
    app.run_metrics(&cfg.services[0], "1234").await.unwrap()
}

async fn poll_logs(app: &Arc<App>, cfg: &Config) -> td_pz_exporter::outcome::PollOutcome {
    app.run_logs(&cfg.services[0], "1234").await.unwrap()
}

async fn setup(scenario_json: &str, extra: &str) -> (Simulator, Config, Arc<App>) {
    let sim = sim(scenario(scenario_json)).await;
    let cfg = config(&sim, "", &service(extra));
    let app = app(cfg.clone()).await;
    (sim, cfg, app)
}

const L: [(&str, &str); 2] = [
    ("parent_segment", "394649"),
    ("pz_service", "product_recommendations"),
];

#[tokio::test]
async fn service_metrics_equal_what_was_served_and_vanish_with_it() {
    let (sim, cfg, app) = setup(
        r#"{"metrics": {"product_recommendations": {"error_rate": 0.025, "requests_per_second": "87.5",
            "p95_latency_ms": 120, "avg_latency_ms": 40, "cache": {"hit_ratio": 0.91, "size": 1000}, "label": "x"}}}"#,
        "",
    )
    .await;
    let out = poll_metrics(&app, &cfg).await;
    assert_eq!(out.reason, None, "{}", out.message);
    let t = metrics(&app);
    assert_eq!(value(&t, "td_pz_service_error_rate", &L), Some(0.025));
    assert_eq!(
        value(
            &t,
            "td_pz_service_metric",
            &[("field", "requests_per_second")]
        ),
        Some(87.5)
    );
    assert_eq!(
        value(&t, "td_pz_service_metric", &[("field", "cache.hit_ratio")]),
        Some(0.91)
    );
    assert_eq!(
        value(&t, "td_pz_service_metric", &[("field", "cache.size")]),
        Some(1000.0)
    );
    assert_eq!(
        value(&t, "td_pz_service_latency_seconds", &[("stat", "p95")]),
        Some(0.12)
    );
    assert_eq!(
        value(&t, "td_pz_service_latency_seconds", &[("stat", "avg")]),
        Some(0.04)
    );
    assert_eq!(
        value(&t, "td_pz_service_metric", &[("field", "label")]),
        None,
        "strings are not metrics"
    );
    assert_eq!(
        value(&t, "td_pz_polls_total", &[("poller", "metrics")]),
        Some(1.0)
    );
    assert!(
        value(
            &t,
            "td_pz_poll_last_success_timestamp_seconds",
            &[("poller", "metrics")]
        )
        .unwrap()
            > 1.7e9
    );

    sim.state.set_scenario(scenario(r#"{"metrics": {"product_recommendations": {"error_rate": 0.5, "cache": {"hit_ratio": 0.5}}}}"#));
    poll_metrics(&app, &cfg).await;
    let t = metrics(&app);
    assert_eq!(value(&t, "td_pz_service_error_rate", &L), Some(0.5));
    assert_eq!(
        value(
            &t,
            "td_pz_service_metric",
            &[("field", "requests_per_second")]
        ),
        None,
        "vanished field\n{t}"
    );
    assert_eq!(
        value(&t, "td_pz_service_metric", &[("field", "cache.size")]),
        None
    );
    assert_eq!(
        value(&t, "td_pz_service_latency_seconds", &[("stat", "p95")]),
        None
    );
    assert_eq!(
        value(&t, "td_pz_service_metric", &[("field", "cache.hit_ratio")]),
        Some(0.5)
    );
}

#[tokio::test]
async fn a_percent_error_rate_becomes_a_ratio() {
    let (_sim, cfg, app) = setup(
        r#"{"metrics": {"product_recommendations": {"error_rate": 2.5}}}"#,
        "error_rate_unit = \"percent\"",
    )
    .await;
    poll_metrics(&app, &cfg).await;
    assert_eq!(
        value(&metrics(&app), "td_pz_service_error_rate", &L),
        Some(0.025)
    );
}

#[tokio::test]
async fn malformed_metrics_are_counted_not_fatal() {
    let (_sim, cfg, app) = setup(
        r#"{"faults": [{"endpoint": "metrics", "malformed": true}]}"#,
        "",
    )
    .await;
    let out = poll_metrics(&app, &cfg).await;
    assert_eq!(out.reason.map(|r| r.as_label()), Some("invalid_response"));
    let t = metrics(&app);
    assert_eq!(
        value(
            &t,
            "td_pz_poll_failures_total",
            &[("poller", "metrics"), ("reason", "invalid_response")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&t, "td_pz_service_error_rate", &L), None);
}

/// The test's "now", fixed once so that an entry written twice is the same entry.
fn now() -> f64 {
    static NOW: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    })
}

fn ts(offset: f64) -> String {
    let now = now();
    let t = chrono::DateTime::from_timestamp_micros(((now + offset) * 1e6) as i64).unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn logs_scenario(entries: &[(&str, &str, f64)]) -> String {
    let list: Vec<String> = entries
        .iter()
        .map(|(u, s, off)| {
            format!(
                r#"{{"user_id":"{u}","section":"{s}","timestamp":"{}"}}"#,
                ts(*off)
            )
        })
        .collect();
    format!(
        r#"{{"logs": {{"product_recommendations": [{}]}}}}"#,
        list.join(",")
    )
}

#[tokio::test]
async fn log_entries_are_counted_exactly_once() {
    // Three responses with overlaps, equal timestamps and out-of-order entries.
    let a = ("a", "premium_users", -50.0);
    let b = ("b", "new_users", -40.0);
    let c = ("c", "new_users", -40.0); // same timestamp as b
    let d = ("d", "cart_abandoners", -45.0); // older than c: out of order
    let e = ("e", "premium_users", -40.0);
    let f = ("f", "fallback", -10.0);
    let (sim, cfg, app) = setup(&logs_scenario(&[a, b, c]), "").await;
    poll_logs(&app, &cfg).await;
    sim.state
        .set_scenario(scenario(&logs_scenario(&[b, c, d, e])));
    poll_logs(&app, &cfg).await;
    sim.state
        .set_scenario(scenario(&logs_scenario(&[e, d, c, f, a])));
    let out = poll_logs(&app, &cfg).await;
    assert_eq!(out.reason, None, "{}", out.message);
    let t = metrics(&app);
    let count = |s| value(&t, "td_pz_log_entries_total", &[("section", s)]);
    assert_eq!(count("premium_users"), Some(2.0));
    assert_eq!(count("new_users"), Some(2.0));
    assert_eq!(count("cart_abandoners"), Some(1.0));
    assert_eq!(count("fallback"), Some(1.0));
    // Shares over the 5 minute window: 6 entries.
    let share = |s| value(&t, "td_pz_section_share", &[("section", s)]).unwrap();
    assert_eq!(share("premium_users"), 2.0 / 6.0);
    assert_eq!(share("new_users"), 2.0 / 6.0);
    assert_eq!(share("cart_abandoners"), 1.0 / 6.0);
    assert_eq!(share("fallback"), 1.0 / 6.0);
    let last = value(&t, "td_pz_log_last_entry_timestamp_seconds", &L).unwrap();
    assert!(
        (now() - 10.0 - last).abs() < 0.01,
        "newest entry f at now-10s, got {}",
        now() - last
    );
}

#[tokio::test]
async fn shares_match_the_simulated_traffic_and_add_up_to_one() {
    // 300 s at 15/s = 4500 entries: under the 10 pages of 500 a poll follows at most.
    let (sim, cfg, app) = setup(r#"{"log_rate": 15}"#, "").await;
    let out = poll_logs(&app, &cfg).await;
    assert_eq!(out.reason, None, "{}", out.message);
    let t = metrics(&app);
    let shares: Vec<(String, f64)> = ["premium_users", "new_users", "cart_abandoners", "fallback"]
        .iter()
        .map(|s| {
            (
                s.to_string(),
                value(&t, "td_pz_section_share", &[("section", s)]).unwrap_or(0.0),
            )
        })
        .collect();
    let sum: f64 = shares.iter().map(|(_, v)| v).sum();
    assert!((sum - 1.0).abs() < 1e-9, "shares add up to 1: {sum}");
    // The exporter counted what the simulator generated over the first 5 minutes.
    let counted: f64 = shares
        .iter()
        .map(|(s, _)| value(&t, "td_pz_log_entries_total", &[("section", s)]).unwrap_or(0.0))
        .sum();
    assert_eq!(
        sim.state.count("logs/product_recommendations"),
        10,
        "4500 entries in pages of 500"
    );
    assert!(
        (4400.0..=4600.0).contains(&counted),
        "5 minutes at 15/s: {counted}"
    );
    // Within the window, each share is close to the simulator's mix (4500 samples).
    for (s, w) in td_pz_sim::SECTION_MIX {
        let got = shares.iter().find(|(n, _)| n == s).unwrap().1;
        assert!((got - w).abs() < 0.03, "{s}: {got} vs {w}");
    }
}

#[tokio::test]
async fn pages_are_followed() {
    let (sim, cfg, app) = setup(r#"{"log_rate": 20}"#, "").await;
    // 300 s at 20/s = 6000 entries, 500 per page: the cap of 10 pages stops at 5000.
    let out = poll_logs(&app, &cfg).await;
    assert!(
        out.message.contains("5000 new entries from 10 page(s)"),
        "{}",
        out.message
    );
    assert_eq!(sim.state.count("logs"), 10);
    let t = metrics(&app);
    assert_eq!(
        value(
            &t,
            "td_pz_api_requests_total",
            &[("endpoint", "logs"), ("code", "200")]
        ),
        Some(10.0)
    );
}

#[tokio::test]
async fn three_hundred_sections_keep_fifty() {
    let entries: Vec<(String, String, f64)> = (0..300)
        .map(|i| (format!("u{i}"), format!("section_{i:03}"), -20.0))
        .collect();
    let refs: Vec<(&str, &str, f64)> = entries
        .iter()
        .map(|(u, s, o)| (u.as_str(), s.as_str(), *o))
        .collect();
    let (_sim, cfg, app) = setup(&logs_scenario(&refs), "max_sections = 50").await;
    poll_logs(&app, &cfg).await;
    let t = metrics(&app);
    let kept = t
        .lines()
        .filter(|l| l.starts_with("td_pz_log_entries_total{") && !l.contains("__other__"))
        .count();
    assert_eq!(kept, 50);
    assert_eq!(
        value(&t, "td_pz_log_entries_total", &[("section", "__other__")]),
        Some(250.0)
    );
    assert_eq!(value(&t, "td_pz_sections_overflow_total", &L), Some(250.0));
    assert_eq!(
        value(&t, "td_pz_section_share", &[("section", "__other__")]),
        Some(250.0 / 300.0)
    );
    promtool_check(&t);
}

/// Reads a label value back from the exposition format, undoing its escapes.
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn a_hostile_section_name_round_trips() {
    let hostile = "we\"ird\\sec\ntion ✓ 日本";
    let sc = serde_json::json!({"logs": {"product_recommendations": [
        {"user_id": "u", "section": hostile, "timestamp": ts(-5.0)}
    ]}});
    let (_sim, cfg, app) = setup(&sc.to_string(), "").await;
    poll_logs(&app, &cfg).await;
    let t = metrics(&app);
    promtool_check(&t);
    let line = t
        .lines()
        .find(|l| l.starts_with("td_pz_log_entries_total{"))
        .unwrap();
    let start = line.find("section=\"").unwrap() + 9;
    let rest = &line[start..];
    let mut end = 0;
    let bytes = rest.as_bytes();
    while end < bytes.len() {
        if bytes[end] == b'\\' {
            end += 2;
            continue;
        }
        if bytes[end] == b'"' {
            break;
        }
        end += 1;
    }
    assert_eq!(unescape(&rest[..end]), hostile);
}

#[tokio::test]
async fn retry_after_3_means_silence_for_3_seconds() {
    let (sim, cfg, app) = setup(
        r#"{"faults": [{"endpoint": "metrics", "status": 429, "retry_after": 3, "times": 1}],
        "metrics": {"product_recommendations": {"error_rate": 0.01}}}"#,
        "",
    )
    .await;
    let out = poll_metrics(&app, &cfg).await;
    assert_eq!(out.reason, None, "retried after the pause: {}", out.message);
    let got: Vec<_> = sim.state.received();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].status, got[1].status), (429, 200));
    assert!(
        got[1].t - got[0].t >= 3.0,
        "next request {:.3}s after the 429",
        got[1].t - got[0].t
    );
    let t = metrics(&app);
    assert_eq!(
        value(
            &t,
            "td_pz_api_requests_total",
            &[("endpoint", "metrics"), ("code", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &t,
            "td_pz_api_requests_total",
            &[("endpoint", "metrics"), ("code", "200")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn server_errors_back_off_and_unauthorized_does_not_retry() {
    let (sim, cfg, app) = setup(
        r#"{"faults": [{"endpoint": "metrics", "status": 500, "times": 2}]}"#,
        "",
    )
    .await;
    let out = poll_metrics(&app, &cfg).await;
    assert_eq!(out.reason, None, "{}", out.message);
    let got = sim.state.received();
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    let (d1, d2) = (got[1].t - got[0].t, got[2].t - got[1].t);
    // Exponential backoff with jitter: 0.5 s then 1 s, each times 0.5..1.0.
    assert!((0.25..0.6).contains(&d1), "first backoff {d1:.3}");
    assert!((0.5..1.1).contains(&d2), "second backoff {d2:.3}");

    let (sim, cfg, app) = setup(r#"{"revoked": true}"#, "").await;
    for _ in 0..3 {
        let out = poll_metrics(&app, &cfg).await;
        assert_eq!(out.reason.map(|r| r.as_label()), Some("unauthorized"));
    }
    assert_eq!(
        sim.state.count("metrics"),
        3,
        "one request per poll, no retry storm"
    );
    let t = metrics(&app);
    assert_eq!(
        value(
            &t,
            "td_pz_poll_failures_total",
            &[("poller", "metrics"), ("reason", "unauthorized")]
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn discovery_finds_a_new_service_without_a_restart() {
    let sim = sim(scenario("{}")).await;
    let body = "[defaults]\nmetrics_schedule = \"* * * * * *\"\nlogs_schedule = \"0 0 0 1 1 * 2099\"\n\n[[parent_segment]]\nid = \"394649\"\ndiscover = true\nschedule = \"* * * * * *\"\n";
    let cfg = config(&sim, "max_requests_per_second = 50", body);
    let app = app(cfg).await;
    let found = |name: &str| {
        value(
            &metrics(&app),
            "td_pz_service_error_rate",
            &[("pz_service", name)],
        )
        .is_some()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while !found("product_recommendations") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(found("product_recommendations"), "{}", metrics(&app));
    assert!(!found("fresh_service"));
    sim.state.set_scenario(scenario(
        r#"{"services": [{"name": "fresh_service", "service_id": "9999"}]}"#,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while !found("fresh_service") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(found("fresh_service"), "{}", metrics(&app));
    // And a service that disappears is dropped with its series.
    sim.state.set_scenario(scenario("{}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while found("fresh_service") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!found("fresh_service"));
    app.shutdown(Duration::from_secs(1)).await;
}
