//! Probes against the in-process simulator: a passing persona, and every fault giving
//! `td_pz_probe_success 0` with the matching `reason`, for both API flavors.

mod common;

use std::time::Duration;

use common::*;
use td_pz_exporter::reason::Reason;

fn cdp_service(max_latency: &str) -> String {
    format!(
        r#"
[[service]]
name = "product_recommendations"
parent_segment_id = "394649"
api = "cdp"
  [[service.probe]]
  name = "vip"
  user_id = "vip_user_001"
  context = {{ page_url = "/products", device_type = "mobile" }}
  expect_section = "premium_users"
  expect_outputs = ["recommended_products", "exclusive_offers"]
  max_latency = "{max_latency}"
  schedule = "{NEVER}"
"#
    )
}

const P13N_SERVICE: &str = r#"
[[service]]
name = "web_offers"
parent_segment_id = "394649"
api = "p13n"
database = "rt_events"
table = "web_personalization"
token_env = "TD_P13N_TOKEN"
  [[service.probe]]
  name = "returning"
  user_id = "returning_user_7"
  expect_section = "cart_abandoners"
  expect_outputs = ["discount_code"]
  schedule = "0 0 0 1 1 * 2099"
"#;

/// Runs the first probe of the first service once; returns the `/metrics` text.
async fn probe_once(scenario_json: &str, td_extra: &str, services: &str) -> String {
    let sim = sim(scenario(scenario_json)).await;
    let cfg = config(&sim, td_extra, services);
    let app = app(cfg.clone()).await;
    let svc = &cfg.services[0];
    app.run_probe(svc, &svc.probes[0]).await.expect("ran");
    metrics(&app)
}

fn assert_failed_with(text: &str, probe: &str, reason: Reason) {
    assert_eq!(
        value(text, "td_pz_probe_success", &[("probe", probe)]),
        Some(0.0),
        "success\n{text}"
    );
    assert_eq!(
        value(text, "td_pz_probes_total", &[("probe", probe)]),
        Some(1.0)
    );
    assert_eq!(
        value(text, "td_pz_probe_successes_total", &[("probe", probe)]),
        Some(0.0)
    );
    assert_eq!(
        value(
            text,
            "td_pz_probe_consecutive_failures",
            &[("probe", probe), ("reason", reason.as_label())]
        ),
        Some(1.0),
        "the run of failures\n{text}"
    );
    // A reason's series appears with its first failure: only the failure's own exists.
    for r in Reason::ALL {
        let want = (r == reason).then_some(1.0);
        assert_eq!(
            value(
                text,
                "td_pz_probe_failures_total",
                &[("probe", probe), ("reason", r.as_label())]
            ),
            want,
            "reason {} (expected {})\n{text}",
            r.as_label(),
            reason.as_label()
        );
    }
}

#[tokio::test]
async fn a_passing_persona() {
    let text = probe_once("{}", "", &cdp_service("500ms")).await;
    let vip = [
        ("probe", "vip"),
        ("pz_service", "product_recommendations"),
        ("parent_segment", "394649"),
    ];
    assert_eq!(value(&text, "td_pz_probe_success", &vip), Some(1.0));
    assert_eq!(value(&text, "td_pz_probe_section_match", &vip), Some(1.0));
    assert_eq!(
        value(&text, "td_pz_probe_http_status_code", &vip),
        Some(200.0)
    );
    assert_eq!(
        value(
            &text,
            "td_pz_probe_section_info",
            &[("probe", "vip"), ("section", "premium_users")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "td_pz_probe_duration_seconds_count", &vip),
        Some(1.0)
    );
    let server = value(&text, "td_pz_probe_server_processing_seconds", &vip).unwrap();
    assert!(
        (0.020..0.060).contains(&server),
        "the simulator's processing_time_ms: {server}"
    );
    assert_eq!(
        value(
            &text,
            "td_pz_api_requests_total",
            &[("endpoint", "personalize"), ("code", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "td_pz_probe_successes_total", &vip), Some(1.0));
    assert!(
        !text.contains("td_pz_probe_failures_total{"),
        "no failure, no reason series\n{text}"
    );
    promtool_check(&text);
}

#[tokio::test]
async fn the_test_endpoint_sends_input_params() {
    let sim = sim(scenario("{}")).await;
    let svc = cdp_service("500ms").replace(
        "user_id = \"vip_user_001\"",
        "user_id = \"vip_user_001\"\n  endpoint = \"test\"",
    );
    let cfg = config(&sim, "", &svc);
    let app = app(cfg.clone()).await;
    let out = app
        .run_probe(&cfg.services[0], &cfg.services[0].probes[0])
        .await
        .unwrap();
    assert!(out.success(), "{}", out.message);
    assert_eq!(
        sim.state.count("personalize_test/product_recommendations"),
        1
    );
    assert_eq!(sim.state.count("personalize"), 0);
}

#[tokio::test]
async fn each_fault_gives_its_reason() {
    let cases: &[(&str, &str, Reason)] = &[
        (r#"{"revoked": true}"#, "", Reason::Unauthorized),
        (r#"{"faults":[{"status":403}]}"#, "", Reason::Forbidden),
        (r#"{"faults":[{"status":400}]}"#, "", Reason::BadRequest),
        (
            r#"{"faults":[{"status":429,"retry_after":1}]}"#,
            "",
            Reason::RateLimited,
        ),
        (r#"{"faults":[{"status":500}]}"#, "", Reason::ServerError),
        (r#"{"faults":[{"status":502}]}"#, "", Reason::ServerError),
        (r#"{"faults":[{"status":503}]}"#, "", Reason::Unavailable),
        (
            r#"{"faults":[{"hang":true}]}"#,
            "timeout = \"500ms\"",
            Reason::Timeout,
        ),
        (
            r#"{"faults":[{"trickle":true}]}"#,
            "timeout = \"700ms\"",
            Reason::Timeout,
        ),
        (r#"{"faults":[{"reset":true}]}"#, "", Reason::Connect),
        (
            r#"{"faults":[{"malformed":true}]}"#,
            "",
            Reason::InvalidResponse,
        ),
        (
            r#"{"faults":[{"wrong_shape":true}]}"#,
            "",
            Reason::InvalidResponse,
        ),
        (
            r#"{"faults":[{"invalid_utf8":true}]}"#,
            "",
            Reason::InvalidResponse,
        ),
        (
            r#"{"faults":[{"body_bytes":2000000}]}"#,
            "",
            Reason::TooLarge,
        ),
        (
            r#"{"faults":[{"user_id":"vip_user_001","section":"fallback"}]}"#,
            "",
            Reason::SectionMismatch,
        ),
        (
            r#"{"faults":[{"user_id":"vip_user_001","section":"an_unknown_section"}]}"#,
            "",
            Reason::SectionMismatch,
        ),
        (
            r#"{"faults":[{"drop_outputs":["exclusive_offers"]}]}"#,
            "",
            Reason::MissingOutput,
        ),
        (r#"{"faults":[{"latency_ms":300}]}"#, "", Reason::Slow),
    ];
    for (sc, td, reason) in cases {
        let text = probe_once(sc, td, &cdp_service("150ms")).await;
        assert_failed_with(&text, "vip", *reason);
        let status = value(&text, "td_pz_probe_http_status_code", &[("probe", "vip")]).unwrap();
        if sc.contains("hang") {
            assert_eq!(status, 0.0, "{sc}: no response, status 0");
        } else if !sc.contains("reset") {
            // A reset may cut the connection before or after the headers.
            assert!(status >= 200.0, "{sc}: status {status}");
        }
        if matches!(reason, Reason::Timeout) && sc.contains("hang") {
            let last = value(
                &text,
                "td_pz_probe_last_duration_seconds",
                &[("probe", "vip")],
            )
            .unwrap();
            assert!(last.is_nan(), "no response: NaN latency, got {last}");
        }
    }
}

#[tokio::test]
async fn an_unknown_service_is_not_found() {
    let svc = cdp_service("500ms").replace(
        "name = \"product_recommendations\"",
        "name = \"no_such_service\"",
    );
    let text = probe_once("{}", "", &svc).await;
    assert_failed_with(&text, "vip", Reason::NotFound);
}

#[tokio::test]
async fn a_closed_port_and_an_unresolvable_name_are_connect_failures() {
    let sim = sim(scenario("{}")).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for url in [
        format!("http://127.0.0.1:{port}"),
        "https://does-not-resolve.invalid".to_string(),
    ] {
        let text = format!(
            "[td]\napi_key_env = \"TD_API_KEY\"\npersonalization_url = \"{url}\"\ncdp_api_url = \"{u}\"\ntimeout = \"3s\"\n{svc}",
            u = sim.url(),
            svc = cdp_service("500ms")
        );
        let cfg = td_pz_exporter::config::Config::parse(&text, "t", &env()).unwrap();
        let app = app(cfg.clone()).await;
        app.run_probe(&cfg.services[0], &cfg.services[0].probes[0])
            .await
            .unwrap();
        assert_failed_with(&metrics(&app), "vip", Reason::Connect);
    }
}

#[tokio::test]
async fn an_odd_timestamp_format_is_tolerated() {
    let text = probe_once(
        r#"{"faults":[{"timestamp_format":"odd"}]}"#,
        "",
        &cdp_service("500ms"),
    )
    .await;
    assert_eq!(
        value(&text, "td_pz_probe_success", &[("probe", "vip")]),
        Some(1.0)
    );
    let text = probe_once(
        r#"{"faults":[{"timestamp_format":"unix"}]}"#,
        "",
        &cdp_service("500ms"),
    )
    .await;
    assert_eq!(
        value(&text, "td_pz_probe_success", &[("probe", "vip")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn p13n_passes_and_fails_the_same_way() {
    let text = probe_once("{}", "", P13N_SERVICE).await;
    let l = [("probe", "returning"), ("pz_service", "web_offers")];
    assert_eq!(value(&text, "td_pz_probe_success", &l), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "td_pz_probe_section_info",
            &[("probe", "returning"), ("section", "cart_abandoners")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "td_pz_api_requests_total",
            &[("endpoint", "p13n"), ("code", "200")]
        ),
        Some(1.0)
    );
    let cases: &[(&str, Reason)] = &[
        (
            r#"{"faults":[{"section":"newsletter"}]}"#,
            Reason::SectionMismatch,
        ),
        (
            r#"{"faults":[{"drop_outputs":["discount_code"]}]}"#,
            Reason::MissingOutput,
        ),
        (r#"{"faults":[{"status":429}]}"#, Reason::RateLimited),
        (r#"{"faults":[{"status":500}]}"#, Reason::ServerError),
        (
            r#"{"faults":[{"wrong_shape":true}]}"#,
            Reason::InvalidResponse,
        ),
        (r#"{"revoked":true}"#, Reason::Unauthorized),
    ];
    for (sc, reason) in cases {
        assert_failed_with(
            &probe_once(sc, "", P13N_SERVICE).await,
            "returning",
            *reason,
        );
    }
}

#[tokio::test]
async fn a_wrong_p13n_token_is_a_bad_request() {
    let sim = td_pz_sim::Simulator::start(
        "127.0.0.1:0",
        td_pz_sim::SimConfig {
            api_key: KEY.into(),
            p13n_token: Some("1/2/ffffffffffffffffffffffffffffffff".into()),
            scenario: Default::default(),
            record: None,
        },
    )
    .await
    .unwrap();
    let cfg = config(&sim, "", P13N_SERVICE);
    let app = app(cfg.clone()).await;
    let out = app
        .run_probe(&cfg.services[0], &cfg.services[0].probes[0])
        .await
        .unwrap();
    // 3001 "RT token is not in configuration" (the reason main's 7cd82f6 gives it).
    assert_eq!(out.reason, Some(Reason::TokenRejected));
    assert!(out.message.contains("TD code 3001"), "{}", out.message);
}

#[tokio::test]
async fn retry_after_pauses_the_service() {
    let sim = sim(scenario(
        r#"{"faults":[{"status":429,"retry_after":2,"times":1}]}"#,
    ))
    .await;
    let cfg = config(&sim, "", &cdp_service("1s"));
    let app = app(cfg.clone()).await;
    let (svc, p) = (&cfg.services[0], &cfg.services[0].probes[0]);
    assert_eq!(
        app.run_probe(svc, p).await.unwrap().reason,
        Some(Reason::RateLimited)
    );
    let out = app.run_probe(svc, p).await.unwrap();
    assert!(out.success(), "{}", out.message);
    let got = sim.state.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].t - got[0].t;
    assert!(
        gap >= 2.0,
        "the second request came {gap:.3}s after the 429 with Retry-After: 2"
    );
}

#[tokio::test]
async fn the_budget_holds_with_20_probes() {
    let sim = sim(scenario("{}")).await;
    let mut body = String::from("[[service]]\nname = \"product_recommendations\"\nparent_segment_id = \"394649\"\napi = \"cdp\"\nmax_requests_per_second = 5\n");
    for i in 0..20 {
        body.push_str(&format!(
            "  [[service.probe]]\n  name = \"p{i}\"\n  user_id = \"vip_{i}\"\n  schedule = \"* * * * * *\"\n"
        ));
    }
    let cfg = config(&sim, "", &body);
    let app = app(cfg).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    app.shutdown(Duration::from_secs(1)).await;
    let times: Vec<f64> = sim.state.received().iter().map(|r| r.t).collect();
    assert!(times.len() >= 15, "only {} requests", times.len());
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().filter(|u| **u < t + 1.0).count();
        assert!(
            in_window <= 5,
            "{in_window} requests in the second from {t:.3}: {times:?}"
        );
    }
    // Runs that found the previous one still queued on the budget were skipped, and counted.
    let skipped: f64 = metrics(&app)
        .lines()
        .filter(|l| l.starts_with("td_pz_schedule_skipped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        skipped > 0.0,
        "20 probes a second at 5/s must skip some runs"
    );
}
