//! The series budget (issue 18, docs/metrics.md "Series budget"), counted in the real exposition:
//! a probe target costs at most 20 series, and the typical service (one probe, a metrics answer of
//! three fields, a logs window of four sections) at most 45, on both API flavors.

mod common;

use std::collections::BTreeMap;

use common::*;

const PROBE_TARGET_BUDGET: usize = 20;
const TYPICAL_SERVICE_BUDGET: usize = 45;

fn services(flavor: &str) -> String {
    let p13n =
        "database = \"rt_events\"\ntable = \"web_personalization\"\ntoken_env = \"TD_P13N_TOKEN\"";
    let api = if flavor == "p13n" { p13n } else { "" };
    let service = |name: &str, extra: &str| {
        format!(
            "[[service]]\nname = \"{name}\"\nparent_segment_id = \"394649\"\napi = \"{flavor}\"\n{api}\n{extra}\n\
             [[service.probe]]\nname = \"vip\"\nuser_id = \"vip_user_001\"\n\
             expect_section = \"premium_users\"\nschedule = \"{NEVER}\"\n"
        )
    };
    format!(
        "[defaults]\nmetrics_schedule = \"{NEVER}\"\nlogs_schedule = \"{NEVER}\"\n\n{}\n{}",
        service("typical", "service_id = \"9001\""),
        service("probe_only", "")
    )
}

fn scenario_json(flavor: &str, fault: &str) -> String {
    let now = chrono::Utc::now();
    let entries: Vec<String> = ["premium_users", "new_users", "cart_abandoners", "fallback"]
        .iter()
        .enumerate()
        .map(|(i, section)| {
            let at = now - chrono::Duration::seconds(10 + i as i64);
            format!(
                r#"{{"user_id":"u{i}","section":"{section}","processing_time_ms":{},"timestamp":"{}"}}"#,
                40 + 50 * i,
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )
        })
        .collect();
    let svc = |name: &str, id: &str| {
        format!(
            r#"{{"name":"{name}","parent_segment":"394649",{id}"flavor":"{flavor}","database":"rt_events","table":"web_personalization"}}"#
        )
    };
    format!(
        r#"{{"accept_any_service": true, "services": [{}, {}],
            "metrics": {{"typical": {{"error_rate": 0.01, "request_count": 1200, "p95_latency_ms": 80}}}},
            "logs": {{"typical": [{}]}}, "faults": [{fault}]}}"#,
        svc("typical", r#""service_id":"9001","#),
        svc("probe_only", ""),
        entries.join(",")
    )
}

/// Series of `/metrics` by service: every sample line with its `pz_service` label.
fn by_service(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.split("pz_service=\"").nth(1) {
            let svc = rest.split('"').next().unwrap_or_default();
            out.entry(svc.to_string())
                .or_default()
                .push(line.to_string());
        }
    }
    out
}

/// Runs the typical service's probe and pollers and the probe-only service's probe `runs` times;
/// returns the series of both services.
async fn exposition(flavor: &str, fault: &str, runs: usize) -> BTreeMap<String, Vec<String>> {
    let sim = sim(scenario(&scenario_json(flavor, fault))).await;
    let cfg = config(&sim, "", &services(flavor));
    let app = app(cfg.clone()).await;
    for _ in 0..runs {
        for svc in &cfg.services {
            app.run_probe(svc, &svc.probes[0]).await.expect("probe ran");
        }
    }
    let typical = &cfg.services[0];
    let m = app.run_metrics(typical, "9001").await.expect("metrics ran");
    assert_eq!(m.reason, None, "{}", m.message);
    let l = app.run_logs(typical, "9001").await.expect("logs ran");
    assert_eq!(l.reason, None, "{}", l.message);
    let text = metrics(&app);
    promtool_check(&text);
    by_service(&text)
}

fn check_budget(flavor: &str, series: &BTreeMap<String, Vec<String>>, slack: usize) {
    let typical = &series["typical"];
    let probe_only = &series["probe_only"];
    let persona = typical
        .iter()
        .filter(|l| l.contains("probe=\"vip\""))
        .count();
    let show = |v: &[String]| v.join("\n");
    assert!(
        probe_only.len() <= PROBE_TARGET_BUDGET + slack,
        "{flavor}: a service with one probe costs {} series (budget {PROBE_TARGET_BUDGET} + {slack}):\n{}",
        probe_only.len(),
        show(probe_only)
    );
    assert!(
        typical.len() <= TYPICAL_SERVICE_BUDGET,
        "{flavor}: the typical service costs {} series (budget {TYPICAL_SERVICE_BUDGET}):\n{}",
        typical.len(),
        show(typical)
    );
    println!(
        "{flavor}: probe-only service {} series, typical service {}, of which the persona's {persona}",
        probe_only.len(),
        typical.len()
    );
}

#[tokio::test]
async fn a_healthy_typical_service_is_within_budget() {
    for flavor in ["cdp", "p13n"] {
        let series = exposition(flavor, "", 3).await;
        check_budget(flavor, &series, 0);
        let typical = &series["typical"];
        // What the budget is made of (docs/metrics.md): 17 of the persona (16 on p13n, whose
        // answers carry no processing time), 3 of the probe job, 7 of the metrics poller and 15 of
        // the logs poller.
        let own = usize::from(flavor == "cdp");
        let persona = typical
            .iter()
            .filter(|l| l.contains("probe=\"vip\""))
            .count();
        assert_eq!(persona, 16 + own, "{flavor}:\n{}", typical.join("\n"));
        assert_eq!(typical.len(), 41 + own, "{flavor}:\n{}", typical.join("\n"));
        assert_eq!(series["probe_only"].len(), 19 + own, "{flavor}");
        // The SLO's counters exist at their first value, the failure reasons do not exist yet.
        let has = |name: &str| typical.iter().any(|l| l.starts_with(name));
        assert!(has("td_pz_probe_successes_total{"));
        assert!(!has("td_pz_probe_failures_total{"));
        assert!(!has("td_pz_probe_consecutive_failures{"));
    }
}

#[tokio::test]
async fn a_failing_probe_adds_its_reason_and_its_run() {
    // Every probe refused: the reason's counter and the run of failures appear (the cause alerts
    // read the run), and a refused request is one more `td_pz_api_requests_total` code.
    let fault =
        r#"{"endpoint": "personalize", "status": 401}, {"endpoint": "p13n", "td_code": 3001}"#;
    for flavor in ["cdp", "p13n"] {
        let series = exposition(flavor, fault, 3).await;
        let typical = &series["typical"];
        let line = |name: &str| {
            typical
                .iter()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{flavor}: no {name}:\n{}", typical.join("\n")))
                .clone()
        };
        assert!(line("td_pz_probe_consecutive_failures{").ends_with(" 3"));
        assert!(line("td_pz_probe_failures_total{").ends_with(" 3"));
        assert!(line("td_pz_probe_successes_total{").ends_with(" 0"));
        // Failing, the probe-only service is over its healthy budget by at most the reason, the run
        // and the error code; the typical service stays within its own.
        check_budget(flavor, &series, 3);
    }
}
