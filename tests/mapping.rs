//! The metrics and logs answers read through a configured mapping, against the in-process
//! simulator: the pollers' series (the nested metrics answer, the alt logs shape followed by its
//! cursor), the `probe --poller` command that fits a mapping, and mapped parsing that never panics.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use td_pz_exporter::app::App;
use td_pz_exporter::config::Config;
use td_pz_sim::Simulator;

const BIN: &str = env!("CARGO_BIN_EXE_td-pz-exporter");

/// The nested answer of the brief: only a mapping finds its error rate and latencies.
const NESTED: &str = r#"{"stats": {"errors": {"ratio": 0.02},
    "latency": {"p50_ms": 21.5, "p95_ms": 80, "p99_ms": 120}}, "requests": 1234}"#;

const METRICS_MAPPING: &str = r#"
  [service.metrics_mapping]
  error_rate = "stats.errors.ratio"
  latency_unit = "ms"
  [service.metrics_mapping.latency]
  p50 = "stats.latency.p50_ms"
  p95 = "stats.latency.p95_ms"
  p99 = "stats.latency.p99_ms"
"#;

fn service_toml(extra: &str) -> String {
    service_toml_with("", extra)
}

/// `defaults_extra` goes after `[defaults]`, `extra` into the `[[service]]`.
fn service_toml_with(defaults_extra: &str, extra: &str) -> String {
    format!(
        "[defaults]\nmetrics_schedule = \"{NEVER}\"\nlogs_schedule = \"{NEVER}\"\n{defaults_extra}\n\n[[service]]\nname = \"product_recommendations\"\nparent_segment_id = \"394649\"\nservice_id = \"1234\"\napi = \"cdp\"\n{extra}\n"
    )
}

async fn setup(scenario_json: &str, extra: &str) -> (Simulator, Config, Arc<App>) {
    let sim = sim(scenario(scenario_json)).await;
    let cfg = config(&sim, "", &service_toml(extra));
    let app = app(cfg.clone()).await;
    (sim, cfg, app)
}

fn nested_scenario() -> String {
    format!(r#"{{"metrics": {{"product_recommendations": {NESTED}}}}}"#)
}

const L: [(&str, &str); 2] = [
    ("parent_segment", "394649"),
    ("pz_service", "product_recommendations"),
];

#[tokio::test]
async fn a_nested_metrics_answer_through_the_mapping() {
    let (_sim, cfg, app) = setup(&nested_scenario(), METRICS_MAPPING).await;
    let out = app.run_metrics(&cfg.services[0], "1234").await.unwrap();
    assert_eq!(out.reason, None, "{}", out.message);
    let t = metrics(&app);
    assert_eq!(value(&t, "td_pz_service_error_rate", &L), Some(0.02));
    let lat = |s| value(&t, "td_pz_service_latency_seconds", &[("stat", s)]);
    assert_eq!(lat("p50"), Some(0.0215));
    assert_eq!(lat("p95"), Some(0.08));
    assert_eq!(lat("p99"), Some(0.12));
    assert_eq!(lat("avg"), None);
    let field = |f| value(&t, "td_pz_service_metric", &[("field", f)]);
    assert_eq!(field("requests"), Some(1234.0));
    assert_eq!(field("stats.latency.p95_ms"), None, "a latency is no field");
    assert_eq!(
        field("stats.errors.ratio"),
        None,
        "the error rate is no field"
    );
}

#[tokio::test]
async fn without_a_mapping_the_nested_answer_is_only_fields() {
    let (_sim, cfg, app) = setup(&nested_scenario(), "").await;
    let out = app.run_metrics(&cfg.services[0], "1234").await.unwrap();
    assert_eq!(out.reason, None, "{}", out.message);
    let t = metrics(&app);
    assert_eq!(value(&t, "td_pz_service_error_rate", &L), None);
    assert_eq!(
        value(&t, "td_pz_service_latency_seconds", &[("stat", "p95")]),
        None
    );
    assert_eq!(
        value(
            &t,
            "td_pz_service_metric",
            &[("field", "stats.errors.ratio")]
        ),
        Some(0.02)
    );
}

#[tokio::test]
async fn an_answer_the_mapping_cannot_place_is_an_invalid_response() {
    let extra = "  [service.metrics_mapping]\n  root = \"result\"\n";
    let (_sim, cfg, app) = setup(&nested_scenario(), extra).await;
    let out = app.run_metrics(&cfg.services[0], "1234").await.unwrap();
    assert_eq!(out.reason.map(|r| r.as_label()), Some("invalid_response"));
    assert!(
        out.message.contains("no \"result\" object"),
        "{}",
        out.message
    );
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

#[tokio::test]
async fn a_logs_mapping_that_finds_no_entries_is_an_invalid_response() {
    // The simulator's built-in shape has `logs`, not `items`.
    let extra = "  [service.logs_mapping]\n  entries = \"items\"\n";
    let (_sim, cfg, app) = setup(r#"{"log_rate": 1}"#, extra).await;
    let out = app.run_logs(&cfg.services[0], "1234").await.unwrap();
    assert_eq!(out.reason.map(|r| r.as_label()), Some("invalid_response"));
    let t = metrics(&app);
    assert_eq!(
        value(
            &t,
            "td_pz_poll_failures_total",
            &[("poller", "logs"), ("reason", "invalid_response")]
        ),
        Some(1.0)
    );
}

/// Runs `td-pz-exporter probe` with `args` on a config file for `sim`; (exit code, stdout+stderr).
async fn probe_cmd(
    sim: &Simulator,
    name: &str,
    extra: &str,
    args: &[&str],
) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("td-pz-mapping-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    let u = sim.url();
    let text = format!(
        "[td]\napi_key_env = \"TD_API_KEY\"\npersonalization_url = \"{u}\"\np13n_url = \"{u}\"\ncdp_api_url = \"{u}\"\ntimeout = \"2s\"\n{}",
        service_toml(extra)
    );
    std::fs::write(&file, text).unwrap();
    let mut c = Command::new(BIN);
    c.arg(format!("--config.file={}", file.display()))
        .arg("probe")
        .args(args)
        .env("TD_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_poller_metrics_prints_the_series_the_mapping_gives() {
    let sim = sim(scenario(&nested_scenario())).await;
    let args = ["--service=product_recommendations", "--poller=metrics"];
    let (code, out) = probe_cmd(&sim, "text", METRICS_MAPPING, &args).await;
    assert_eq!(code, Some(0), "{out}");
    for want in [
        "> GET ",
        "/audiences/394649/personalization_services/1234/metrics",
        "Authorization: TD1 <redacted>",
        "< HTTP 200",
        "\"stats\"",
        "td_pz_service_error_rate 0.02\n",
        "td_pz_service_latency_seconds{stat=\"p50\"} 0.0215\n",
        "td_pz_service_latency_seconds{stat=\"p95\"} 0.08\n",
        "td_pz_service_latency_seconds{stat=\"p99\"} 0.12\n",
        "td_pz_service_metric{field=\"requests\"} 1234\n",
        "result: PASS",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains(KEY), "the key leaked:\n{out}");

    let json_args = [args[0], args[1], "--output=json"];
    let (code, out) = probe_cmd(&sim, "json", METRICS_MAPPING, &json_args).await;
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("--output=json parses");
    assert_eq!(v["passed"], true);
    let series = v["mapped"]["series"].as_array().unwrap();
    assert_eq!(series[0]["name"], "td_pz_service_error_rate");
    assert_eq!(series[0]["value"], 0.02);

    // A root the answer lacks: the command says why and exits 1.
    let bad = "  [service.metrics_mapping]\n  root = \"result\"\n";
    let (code, out) = probe_cmd(&sim, "bad", bad, &args).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("result: FAIL reason=invalid_response (the response has no \"result\" object"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_poller_logs_prints_entries_and_the_next_page() {
    let sim = sim(scenario(r#"{"log_rate": 20}"#)).await;
    let args = ["--service=product_recommendations", "--poller=logs"];
    let (code, out) = probe_cmd(&sim, "logs", "", &args).await;
    assert_eq!(code, Some(0), "{out}");
    // 300 s of history at 20/s in pages of 500: a full first page and a second one.
    assert!(out.contains("entries: 500 (0 skipped"), "{out}");
    assert!(out.contains("next page: page=2"), "{out}");
    assert!(out.contains("  section="), "{out}");

    let (code, out) = probe_cmd(&sim, "both", "", &[args[0], "--poller=logs", "--probe=vip"]).await;
    assert_eq!(
        code,
        Some(2),
        "--probe and --poller exclude each other:\n{out}"
    );
    let (code, out) = probe_cmd(&sim, "none", "", &[args[0]]).await;
    assert_eq!(
        code,
        Some(2),
        "one of --probe and --poller is required:\n{out}"
    );
}

/// The simulator's alternative logs shape (`{"items": [...], "cursor": {"next": ...}}`, the
/// next page asked with `?cursor=`), read through the brief's mapping.
const ALT_LOGS_MAPPING: &str = r#"
  [service.logs_mapping]
  entries = "items"
  user = "uid"
  section = "segment"
  timestamp = "ts"
  status = "http_status"
  id = "request_id"
  next = "cursor.next"
  next_param = "cursor"
"#;

#[tokio::test]
async fn the_alt_logs_shape_is_followed_by_its_cursor() {
    let sim = sim(scenario(r#"{"log_rate": 20, "logs_shape": "alt"}"#)).await;
    // 300 s of history at 20/s = 6000 entries; pages of 1000, at most 3 of them.
    let body = service_toml_with(
        "[defaults.logs]\nlimit = 1000\nmax_pages = 3",
        ALT_LOGS_MAPPING,
    );
    let cfg = config(&sim, "", &body);
    let app = app(cfg.clone()).await;
    let out = app.run_logs(&cfg.services[0], "1234").await.unwrap();
    assert_eq!(out.reason, None, "{}", out.message);
    // Without the cursor the simulator would answer the first page again, and the poller stops
    // at a repeated next value: 1000 entries. 3000 means pages 2 and 3 were asked by cursor.
    assert!(
        out.message.contains("3000 new entries from 3 page(s)"),
        "{}",
        out.message
    );
    assert_eq!(sim.state.count("logs"), 3);
    let t = metrics(&app);
    assert_eq!(
        value(
            &t,
            "td_pz_api_requests_total",
            &[("endpoint", "logs"), ("code", "200")]
        ),
        Some(3.0)
    );
    let counted: f64 = td_pz_sim::SECTION_MIX
        .iter()
        .map(|(s, _)| value(&t, "td_pz_log_entries_total", &[("section", s)]).unwrap_or(0.0))
        .sum();
    assert_eq!(
        counted, 3000.0,
        "every entry has one of the simulator's sections\n{t}"
    );
    assert_eq!(
        value(&t, "td_pz_log_entries_total", &[("section", "__unknown__")]),
        None
    );
    let target = td_pz_exporter::poller::target_id(
        td_pz_exporter::poller::Poller::Logs,
        "394649",
        "product_recommendations",
        None,
    );
    let ex = app.history.get(&target).and_then(|t| t.last_exchange);
    let url = ex.map(|e| e.request.url).unwrap_or_default();
    assert!(
        url.contains("cursor=s2000"),
        "the third page asked by cursor: {url}"
    );

    // The next poll starts from the newest entry seen (less the overlap): nothing counted twice.
    let out = app.run_logs(&cfg.services[0], "1234").await.unwrap();
    assert_eq!(out.reason, None, "{}", out.message);
}

// -- parsing through a mapping never panics ------------------------------------------------------

mod never_panics {
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use td_pz_exporter::config::Config;
    use td_pz_exporter::td::{logs_answer, metrics_answer};

    /// The brief's mappings (and a rooted one), as the configuration builds them.
    fn configs() -> Vec<Config> {
        let text = |extra: &str| {
            format!(
                "[td]\napi_key_env = \"TD_API_KEY\"\n{extra}\n[defaults.logs_mapping]\n\
                 entries = \"items\"\nsection = \"segment\"\ntimestamp = \"ts\"\nstatus = \"http_status\"\n\
                 id = \"request_id\"\nuser = \"uid\"\nnext = \"cursor.next\"\nnext_param = \"cursor\"\n"
            )
        };
        [
            "[defaults.metrics_mapping]\nerror_rate = \"stats.errors.ratio\"\n[defaults.metrics_mapping.latency]\np95 = \"stats.latency.p95_ms\"",
            "[defaults.metrics_mapping]\nroot = \"stats\"\nerror_rate = \"errors.ratio\"\nlatency_unit = \"us\"\n[defaults.metrics_mapping.latency]\np50 = \"latency\"",
        ]
        .iter()
        .map(|m| Config::parse(&text(m), "t.toml", &super::env()).unwrap())
        .collect()
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-z0-9.:-]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(
                    "items|stats|errors|ratio|latency|p95_ms|cursor|next|ts|segment|http_status|request_id|uid|[a-z]{1,2}",
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn mapped_parsers_keep_their_invariants(v in json_value()) {
            let body = v.to_string();
            for cfg in configs() {
                let d = &cfg.defaults;
                if let Ok(m) = metrics_answer::parse_metrics(body.as_bytes(), &d.metrics_mapping) {
                    prop_assert!(m.error_rate.is_none_or(f64::is_finite));
                    prop_assert!(m.latencies.iter().all(|(_, s)| s.is_finite()));
                    prop_assert!(m.fields.len() <= metrics_answer::MAX_FIELDS);
                }
                if let Ok(p) = logs_answer::parse_logs(body.as_bytes(), &d.logs_mapping) {
                    for e in &p.entries {
                        prop_assert!(e.timestamp.is_none_or(f64::is_finite));
                        prop_assert!(e.status.is_none_or(|s| (100..600).contains(&s)));
                    }
                }
            }
        }
    }
}
