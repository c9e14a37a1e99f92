//! The exporter against the strict simulator, as TD documents its APIs: every documented p13n
//! code gives its reason, an answer with no offers is an answer, the `/public` path with an
//! Origin passes, discovery follows TD's paging to the last page, and hostile names stay inside
//! their path segment.

mod common;

use std::time::Duration;

use common::*;
use td_pz_exporter::reason::Reason;

fn p13n_service(extra: &str, probe: &str) -> String {
    format!(
        r#"
[[service]]
name = "web_offers"
database = "rt_events"
table = "web_personalization"
token_env = "TD_P13N_TOKEN"
{extra}
  [[service.probe]]
  name = "returning"
  user_id = "returning_user_7"
  schedule = "{NEVER}"
{probe}
"#
    )
}

async fn probe(scenario_json: &str, services: &str) -> td_pz_exporter::outcome::ProbeOutcome {
    let sim = sim(scenario(scenario_json)).await;
    let cfg = config(&sim, "", services);
    let app = app(cfg.clone()).await;
    let svc = &cfg.services[0];
    app.run_probe(svc, &svc.probes[0]).await.expect("ran")
}

#[tokio::test]
async fn a_probe_of_the_default_flavor_passes_the_strict_simulator() {
    let out = probe(
        "{}",
        &p13n_service("", "  expect_section = \"cart_abandoners\""),
    )
    .await;
    assert_eq!(out.reason, None, "{}", out.message);
    assert_eq!(out.section.as_deref(), Some("cart_abandoners"));
}

/// One code of each reason and status family the OpenAPI documents, served by the simulator.
#[tokio::test]
async fn documented_td_codes_give_their_reasons() {
    for (code, status, reason) in [
        (3001, 400, Reason::TokenRejected),
        (3003, 400, Reason::TokenRejected),
        (3004, 400, Reason::InvalidEvent),
        (3005, 400, Reason::IpNotAllowed),
        (3007, 400, Reason::OriginRejected),
        (3009, 400, Reason::BadRequest),
        (2003, 429, Reason::RateLimited),
        (2013, 429, Reason::RateLimited),
        (2015, 500, Reason::TokenMisconfigured),
        (3011, 500, Reason::TokenMisconfigured),
        (1003, 500, Reason::ServerError),
        (9999, 500, Reason::ServerError),
    ] {
        let out = probe(
            &format!(r#"{{"faults":[{{"td_code":{code}}}]}}"#),
            &p13n_service("", ""),
        )
        .await;
        assert_eq!(out.status, Some(status), "code {code}");
        assert_eq!(out.reason, Some(reason), "code {code}: {}", out.message);
        assert_eq!(out.td_code, Some(code), "code {code}");
        assert!(
            out.message.contains(&format!("TD code {code}")),
            "{}",
            out.message
        );
    }
}

#[tokio::test]
async fn no_offers_is_an_answer_not_an_invalid_one() {
    for variant in ["204", "empty", "{}", "offers_empty"] {
        let sc = format!(r#"{{"faults":[{{"no_offers":"{variant}"}}]}}"#);
        let plain = probe(&sc, &p13n_service("", "")).await;
        assert_eq!(plain.reason, None, "{variant}: {}", plain.message);
        assert_eq!(plain.section, None, "{variant}");
        let expecting = probe(
            &sc,
            &p13n_service("", "  expect_section = \"cart_abandoners\""),
        )
        .await;
        assert_eq!(expecting.reason, Some(Reason::SectionMismatch), "{variant}");
        let outputs = probe(
            &sc,
            &p13n_service("", "  expect_outputs = [\"discount_code\"]"),
        )
        .await;
        assert_eq!(outputs.reason, Some(Reason::MissingOutput), "{variant}");
    }
}

#[tokio::test]
async fn the_public_path_with_an_origin_passes() {
    let out = probe(
        "{}",
        &p13n_service("public = true\norigin = \"https://shop.example.com\"", ""),
    )
    .await;
    assert_eq!(out.reason, None, "{}", out.message);
}

#[tokio::test]
async fn discovery_follows_tds_pages_to_the_last() {
    let sim = sim(scenario(r#"{"discovery_extra": {"394649": 250}}"#)).await;
    let body = format!(
        "[defaults]\nmetrics_schedule = \"{NEVER}\"\nlogs_schedule = \"{NEVER}\"\n\n[[parent_segment]]\nid = \"394649\"\ndiscover = true\nschedule = \"* * * * * *\"\nignore = [\"extra_service_0001\"]\n\n[[service]]\nname = \"web_offers\"\nparent_segment_id = \"394649\"\nservice_id = \"9000002\"\ndatabase = \"rt_events\"\ntable = \"web_personalization\"\ntoken_env = \"TD_P13N_TOKEN\"\n"
    );
    let cfg = config(&sim, "max_requests_per_second = 50", &body);
    let app = app(cfg).await;
    let inv = |c: &str| {
        value(
            &metrics(&app),
            "td_pz_discovered_services",
            &[("parent_segment", "394649"), ("coverage", c)],
        )
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inv("not_covered").is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = sim.state.stats_json();
    // The built-in services of 394649 that have a service id, plus 250 extras.
    let total: f64 = ["covered", "not_covered", "ignored"]
        .iter()
        .filter_map(|c| inv(c))
        .sum();
    assert!(total >= 250.0, "{total} {listed}");
    // web_offers covers the built-in web_offers by name and extra_service_0002 by service_id.
    assert_eq!(inv("covered"), Some(2.0));
    assert_eq!(inv("ignored"), Some(1.0));
    assert_eq!(inv("refused"), Some(0.0));
    assert_eq!(inv("not_covered"), Some(total - 3.0));
    // Every listed service that is not covered by configuration gets its pollers.
    let cfg_services = app.inventory();
    assert_eq!(cfg_services.len(), 1);
    assert!(cfg_services[0]
        .1
        .not_covered
        .contains(&"extra_service_0250".to_string()));
    assert!(
        app.job_count() as f64 >= 2.0 * (total - 1.0),
        "{}",
        app.job_count()
    );
    app.shutdown(Duration::from_secs(1)).await;
}

/// Names TD returns or a person writes that hold `/`, `..`, `?`, `#`, `%`, spaces or non-ASCII
/// stay inside their segment: the simulator sees the documented route, never another one.
#[tokio::test]
async fn hostile_names_stay_on_their_path() {
    for name in [
        "a/../b",
        "x?admin=1",
        "y#frag",
        "100%",
        "with space",
        "caf\u{e9}",
    ] {
        let sim = sim(scenario(r#"{"accept_any_service": true}"#)).await;
        let body = format!(
            "[defaults]\nmetrics_schedule = \"{NEVER}\"\nlogs_schedule = \"{NEVER}\"\n[[service]]\napi = \"cdp\"\nname = {name:?}\nparent_segment_id = {name:?}\nservice_id = {name:?}\n  [[service.probe]]\n  name = \"vip\"\n  user_id = \"vip_user_001\"\n  schedule = \"{NEVER}\"\n"
        );
        let cfg = config(&sim, "", &body);
        let app = app(cfg.clone()).await;
        let svc = &cfg.services[0];
        let out = app.run_probe(svc, &svc.probes[0]).await.unwrap();
        let m = app.run_metrics(svc, name).await.unwrap();
        let stats = sim.state.stats_json().to_string();
        assert_eq!(out.status, Some(200), "{name}: {}", out.message);
        assert_eq!(m.status, Some(200), "{name}: {}", m.message);
        assert!(!stats.contains("unknown"), "{name}: {stats}");
        let seg = td_pz_exporter::td::path::segment(name);
        let sent = out_url(&app);
        assert!(
            sent.contains(&format!("/audiences/{seg}/personalization/{seg}\"")),
            "{name}: {sent}"
        );
        assert!(sent.contains(&format!(
            "/audiences/{seg}/personalization_services/{seg}/metrics\""
        )));
        app.shutdown(Duration::from_secs(1)).await;
    }
}

fn out_url(app: &td_pz_exporter::app::App) -> String {
    serde_json::to_string(&app.history.snapshot()).unwrap_or_default()
}
