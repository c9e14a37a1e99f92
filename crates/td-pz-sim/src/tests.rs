//! Tests of the simulator over real sockets: the in-process simulator on port 0, a reqwest client.
//! The p13n checks are tested in `p13n_tests.rs`; the helpers here serve both.

use std::time::Duration;

use serde_json::Value;

use super::*;

pub(super) const KEY: &str = "1/TESTkey";
pub(super) const TOKEN: &str = "1/2/0123456789abcdef0123456789abcdef";

pub(super) async fn start(scenario: &str) -> Simulator {
    start_with(scenario, None).await
}

pub(super) async fn start_with(scenario: &str, record: Option<PathBuf>) -> Simulator {
    let scenario: Scenario = serde_json::from_str(scenario).expect("a valid scenario");
    Simulator::start(
        "127.0.0.1:0",
        SimConfig {
            api_key: KEY.into(),
            p13n_token: Some(TOKEN.into()),
            scenario,
            record,
        },
    )
    .await
    .expect("the simulator starts")
}

/// Status, content type and body text of a GET with the key.
pub(super) async fn get(sim: &Simulator, path: &str) -> (u16, Option<String>, String) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", sim.url()))
        .header("Authorization", format!("TD1 {KEY}"))
        .send()
        .await
        .expect("an answer");
    read(r).await
}

/// Status, content type and body text of an answer.
pub(super) async fn read(r: reqwest::Response) -> (u16, Option<String>, String) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, ct, r.text().await.expect("a body"))
}

pub(super) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn a_latency_fault_holds_the_answer_and_reports_how_precisely() {
    let sim = start(r#"{"faults":[{"endpoint":"personalize","latency_ms":40}]}"#).await;
    let client = reqwest::Client::new();
    let holds = || async {
        let body = client
            .get(format!("{}/_sim/holds", sim.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let t = std::time::Instant::now();
    let r = client
        .post(format!(
            "{}/audiences/394649/personalization/product_recommendations",
            sim.url()
        ))
        .header("Authorization", format!("TD1 {KEY}"))
        .body(r#"{"user_id":"vip_user_001"}"#)
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.status(), 200);
    assert!(took >= Duration::from_millis(40), "answered after {took:?}");

    let h = holds().await;
    assert_eq!(h["count"], 1, "{h}");
    let late = h["late_us"][0].as_u64().unwrap();
    assert!(late < 40_000, "released {late} us late");
    assert!(h["pickup_us"][0].as_u64().is_some(), "{h}");

    client
        .post(format!("{}/_sim/reset-stats", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(holds().await["count"], 0);
}

#[tokio::test]
async fn discovery_pages_250_services_by_next_page_paths() {
    // Two built-in services and 248 generated ones: 250 in the parent segment.
    let sim = start(r#"{"discovery_extra":{"394649":248}}"#).await;
    let mut path = "/audiences/394649/realtime_personalization_services".to_string();
    let mut pages = Vec::new();
    loop {
        let (status, ct, text) = get(&sim, &path).await;
        assert_eq!((status, ct.as_deref()), (200, Some("application/json")));
        let v = json(&text);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data", "pagination"]);
        pages.push(v["data"].as_array().unwrap().len());
        match &v["pagination"]["nextPage"] {
            Value::String(next) => path = next.clone(),
            Value::Null => break,
            other => panic!("nextPage {other}"),
        }
        if pages.len() == 1 {
            assert_eq!(
                path,
                "/audiences/394649/realtime_personalization_services?page%5Bafter%5D=9000098&page%5Bsize%5D=100"
            );
            let first = &v["data"][0];
            assert_eq!(
                *first,
                serde_json::json!({"id": "1234", "name": "product_recommendations",
                    "description": "simulated", "public": false,
                    "tokens": [{"id": "123401", "name": "default", "value": null, "allowedIps": []}]})
            );
        }
    }
    assert_eq!(pages, [100, 100, 50]);

    let big = "/audiences/394649/realtime_personalization_services?page%5Bsize%5D=1000";
    let (status, _, text) = get(&sim, big).await;
    assert_eq!(status, 200);
    assert_eq!(json(&text)["data"].as_array().unwrap().len(), 250);
    assert_eq!(json(&text)["pagination"]["nextPage"], Value::Null);
    let frac = "/audiences/394649/realtime_personalization_services?page[size]=1.5";
    let (status, _, text) = get(&sim, frac).await;
    assert_eq!(
        (status, json(&text)["data"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    for bad in ["1001", "0", "ten", "NaN", ""] {
        let p = format!("/audiences/394649/realtime_personalization_services?page[size]={bad}");
        let (status, ct, text) = get(&sim, &p).await;
        assert_eq!(
            (status, ct.as_deref()),
            (400, Some("application/json")),
            "{bad}"
        );
        assert_eq!(json(&text)["code"], "invalid_page_size");
    }
    let named = "/audiences/394649/realtime_personalization_services?name_include=service_024";
    let (_, _, text) = get(&sim, named).await;
    let names: Vec<Value> = json(&text)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(names.len(), 9, "{names:?}"); // extra_service_0240 ..= 0248
                                             // Generated services answer their management endpoints.
    let m = "/audiences/394649/personalization_services/9000248/metrics";
    assert_eq!(get(&sim, m).await.0, 200);
    let l = "/audiences/394649/personalization_services/9000001/logs";
    assert_eq!(get(&sim, l).await.0, 200);
    assert_eq!(sim.state.count("discovery/394649"), 11);
}

#[tokio::test]
async fn alternative_shapes_for_metrics_and_logs() {
    let sim = start(
        r#"{"metrics_shape":"alt","logs_shape":"alt","log_rate":1.0,
            "services":[{"name":"src","service_id":"77","metrics_shape":"source"}]}"#,
    )
    .await;
    let (_, _, text) = get(
        &sim,
        "/audiences/394649/personalization_services/1234/metrics",
    )
    .await;
    let v = json(&text);
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert!(v["stats"]["errors"]["ratio"].is_f64(), "{v}");
    for p in ["p50_ms", "p95_ms", "p99_ms"] {
        assert!(v["stats"]["latency"][p].is_f64(), "{v}");
    }
    assert!(v["requests"].is_u64(), "{v}");
    let (_, _, text) = get(
        &sim,
        "/audiences/394649/personalization_services/77/metrics",
    )
    .await;
    assert!(json(&text)["error_rate"].is_f64(), "{text}");

    // Five minutes at one entry a second: 300 entries, pages of 120 by cursor.
    let base = "/audiences/394649/personalization_services/1234/logs?limit=120";
    let (mut seen, mut pages, mut path) = (0, 0, base.to_string());
    loop {
        let (status, _, text) = get(&sim, &path).await;
        assert_eq!(status, 200, "{text}");
        let v = json(&text);
        let items = v["items"].as_array().unwrap();
        let first = &items[0];
        let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["http_status", "request_id", "segment", "ts", "uid"]);
        assert!(first["ts"].as_f64().unwrap() > 1.7e9);
        seen += items.len();
        pages += 1;
        match &v["cursor"]["next"] {
            Value::String(c) => path = format!("{base}&cursor={c}"),
            _ => break,
        }
    }
    assert!((300..=302).contains(&seen), "{seen} entries");
    assert_eq!(pages, 3);
    let (status, _, _) = get(&sim, &format!("{base}&cursor=nonsense")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn recording_writes_one_line_per_answered_request() {
    let file = std::env::temp_dir().join(format!("td-pz-sim-record-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let sim = start_with(
        r#"{"faults":[{"endpoint":"metrics","status":503,"times":1}]}"#,
        Some(file.clone()),
    )
    .await;
    let m = "/audiences/394649/personalization_services/1234/metrics?x=%20y";
    assert_eq!(get(&sim, m).await.0, 503);
    assert_eq!(get(&sim, m).await.0, 200);
    assert_eq!(get(&sim, "/_sim/stats").await.0, 200);
    let r = reqwest::Client::new()
        .post(format!(
            "{}/public/rt%5Fevents/web_personalization",
            sim.url()
        ))
        .header("Authorization", format!("TD1 {KEY}"))
        .header("WP13n-Token", TOKEN)
        .body("{\"td_client_id\":\"vip\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text.lines().map(json).collect();
    assert_eq!(lines.len(), 3, "{text}");
    let first = &lines[0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "endpoint",
            "fault",
            "headers",
            "method",
            "path",
            "query",
            "request_body",
            "response_body",
            "response_headers",
            "status"
        ]
    );
    assert_eq!(first["method"], "GET");
    assert_eq!(
        first["path"],
        "/audiences/394649/personalization_services/1234/metrics"
    );
    assert_eq!(first["query"], "x=%20y");
    assert_eq!(first["headers"]["authorization"], format!("TD1 {KEY}"));
    assert_eq!(first["status"], 503);
    assert_eq!(first["endpoint"], "metrics");
    assert_eq!(first["fault"], true);
    assert_eq!(
        first["response_headers"],
        serde_json::json!({"content-type": "application/json"})
    );
    assert_eq!(lines[1]["fault"], false);
    assert_eq!(lines[1]["request_body"], "");
    let p = &lines[2];
    assert_eq!(p["path"], "/public/rt%5Fevents/web_personalization");
    assert_eq!(p["query"], Value::Null);
    assert_eq!(p["endpoint"], "p13n_public");
    assert_eq!(p["request_body"], "{\"td_client_id\":\"vip\"}");
    assert_eq!(json(p["response_body"].as_str().unwrap())["code"], 3007);
    let _ = std::fs::remove_file(&file);
}
