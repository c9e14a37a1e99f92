//! The real binary: readiness, reload (HTTP and SIGHUP) that keeps counters, a broken config
//! refused, graceful SIGTERM, the `probe` subcommand, and the key and token appearing nowhere.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_td-pz-exporter");

struct Daemon {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("td-pz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config_text(sim_url: &str, probes: &str) -> String {
    format!(
        r#"[td]
api_key_env = "TD_API_KEY"
personalization_url = "{sim_url}"
p13n_url = "{sim_url}"
cdp_api_url = "{sim_url}"
timeout = "1s"
max_retries = 1

[defaults]
probe_schedule = "* * * * * *"
metrics_schedule = "* * * * * *"
logs_schedule = "*/2 * * * * *"

[[service]]
name = "product_recommendations"
parent_segment_id = "394649"
api = "cdp"
service_id = "1234"
  [[service.probe]]
  name = "vip"
  user_id = "vip_user_001"
  expect_section = "premium_users"
{probes}

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
"#
    )
}

fn start(name: &str, config: &str, extra: &[&str]) -> Daemon {
    let dir = temp_dir(name);
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .arg(format!(
            "--config.file={}",
            dir.join("config.toml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .env("TD_API_KEY", KEY)
        .env("TD_P13N_TOKEN", TOKEN)
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    Daemon {
        child,
        dir,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

async fn post(url: &str) -> (u16, String) {
    let r = reqwest::Client::new().post(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn wait_for(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn scrape(d: &Daemon) -> String {
    get(&format!("{}/metrics", d.base)).await.1
}

fn signal(d: &Daemon, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(KEY), "the API key leaked into {what}");
    assert!(!text.contains(TOKEN), "the p13n token leaked into {what}");
    assert!(
        !text.contains("TESTkey0123456789"),
        "part of the API key leaked into {what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_reloads_keeps_counters_and_stops_cleanly() {
    let sim = sim(scenario("{}")).await;
    let mut d = start(
        "daemon",
        &config_text(&sim.url(), ""),
        &["--log.level=debug"],
    );

    wait_for("ready", 15, async || {
        get(&format!("{}/-/ready", d.base)).await.0 == 200
    })
    .await;
    assert_eq!(get(&format!("{}/-/healthy", d.base)).await.0, 200);
    wait_for("two vip probes", 10, async || {
        value(&scrape(&d).await, "td_pz_probes_total", &[("probe", "vip")]).unwrap_or(0.0) >= 2.0
    })
    .await;
    let t = scrape(&d).await;
    assert_eq!(
        value(&t, "td_pz_probe_success", &[("probe", "vip")]),
        Some(1.0)
    );
    assert_eq!(
        value(&t, "td_pz_config_last_reload_successful", &[]),
        Some(1.0)
    );
    promtool_check(&t);

    // Prometheus asks for gzip: the same series come compressed.
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", d.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    let zipped = r.bytes().await.unwrap();
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .expect("a gzip body");
    assert!(
        zipped.len() * 3 < unzipped.len(),
        "compressed: {} of {}",
        zipped.len(),
        unzipped.len()
    );
    assert_eq!(
        value(&unzipped, "td_pz_probe_success", &[("probe", "vip")]),
        Some(1.0)
    );
    promtool_check(&unzipped);

    // Reload only by POST.
    assert_eq!(get(&format!("{}/-/reload", d.base)).await.0, 405);
    let before = value(&scrape(&d).await, "td_pz_probes_total", &[("probe", "vip")]).unwrap();
    let extra = "  [[service.probe]]\n  name = \"new_user\"\n  user_id = \"new_user_123\"\n  expect_section = \"new_users\"\n";
    std::fs::write(d.dir.join("config.toml"), config_text(&sim.url(), extra)).unwrap();
    let (code, body) = post(&format!("{}/-/reload", d.base)).await;
    assert_eq!(code, 200, "{body}");
    assert_no_secret("the /-/reload answer", &body);
    assert!(body.contains("kept"), "{body}");
    wait_for("the new probe", 10, async || {
        value(
            &scrape(&d).await,
            "td_pz_probes_total",
            &[("probe", "new_user")],
        )
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    let after = value(&scrape(&d).await, "td_pz_probes_total", &[("probe", "vip")]).unwrap();
    assert!(
        after >= before,
        "the unchanged probe's counter was not reset: {before} -> {after}"
    );

    // A broken config is refused; the old one keeps running.
    std::fs::write(
        d.dir.join("config.toml"),
        "[td]\napi_key_env = \"TD_API_KEY\"\n[[service]]\nname = 1\n",
    )
    .unwrap();
    let (code, body) = post(&format!("{}/-/reload", d.base)).await;
    assert_eq!(code, 500);
    assert_no_secret("the failed /-/reload answer", &body);
    assert!(
        body.contains("config.toml") && body.contains("previous configuration keeps running"),
        "{body}"
    );
    signal(&d, "-HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = scrape(&d).await;
    assert_eq!(
        value(&t, "td_pz_config_last_reload_successful", &[]),
        Some(0.0)
    );
    let n = value(&t, "td_pz_probes_total", &[("probe", "new_user")]).unwrap();
    wait_for("probes to go on", 5, async || {
        value(
            &scrape(&d).await,
            "td_pz_probes_total",
            &[("probe", "new_user")],
        )
        .unwrap_or(0.0)
            > n
    })
    .await;

    // Every fault, with the daemon at debug level: the key and token must appear nowhere.
    for sc in [
        r#"{"revoked": true}"#,
        r#"{"faults": [{"status": 500}]}"#,
        r#"{"faults": [{"status": 429, "retry_after": 1}]}"#,
        r#"{"faults": [{"malformed": true}]}"#,
        r#"{"faults": [{"hang": true}]}"#,
        r#"{"faults": [{"body_bytes": 3000000}]}"#,
        r#"{"faults": [{"reset": true}]}"#,
    ] {
        sim.state.set_scenario(scenario(sc));
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    sim.state.set_scenario(scenario("{}"));
    let t = scrape(&d).await;
    assert!(
        value(
            &t,
            "td_pz_probe_failures_total",
            &[("probe", "vip"), ("reason", "unauthorized")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        value(
            &t,
            "td_pz_probe_failures_total",
            &[("pz_service", "web_offers"), ("reason", "server_error")]
        )
        .unwrap()
            >= 1.0
    );
    assert_no_secret("/metrics", &t);
    for path in [
        "/",
        "/status.json",
        "/config",
        "/target?id=probe/394649/product_recommendations/vip",
        "/target?id=probe/394649/web_offers/returning",
        "/target?id=metrics/394649/product_recommendations",
    ] {
        let (code, body) = get(&format!("{}{path}", d.base)).await;
        assert_eq!(code, 200, "{path}");
        assert_no_secret(path, &body);
    }
    let detail = get(&format!(
        "{}/target?id=probe/394649/web_offers/returning",
        d.base
    ))
    .await
    .1;
    assert!(detail.contains("WP13n-Token: &lt;redacted&gt;"), "{detail}");
    assert!(detail.contains("TD1 &lt;redacted&gt;"));
    assert_eq!(get(&format!("{}/nope", d.base)).await.0, 404);
    let t = scrape(&d).await;
    assert_eq!(
        value(&t, "td_pz_bad_requests_total", &[("reason", "not_found")]),
        Some(1.0)
    );
    assert_eq!(
        value(&t, "td_pz_bad_requests_total", &[("reason", "method")]),
        Some(1.0)
    );

    // SIGTERM: exit 0 within the grace period.
    signal(&d, "-TERM");
    let mut code = None;
    for _ in 0..100 {
        if let Some(s) = d.child.try_wait().unwrap() {
            code = Some(s.code());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, Some(Some(0)), "exit 0 on SIGTERM");
    let stderr = std::fs::read_to_string(d.dir.join("stderr")).unwrap();
    let stdout = std::fs::read_to_string(d.dir.join("stdout")).unwrap();
    assert_no_secret("stderr", &stderr);
    assert_no_secret("stdout", &stdout);
    assert!(
        stderr.contains("level=warn msg=\"probe failed\"")
            && stderr.contains("reason=unauthorized"),
        "{stderr}"
    );
    assert!(
        stderr.contains("level=debug msg=\"probe done\""),
        "debug lines are on"
    );
    assert!(stderr.contains("configuration refused"));
    assert!(stderr.contains("shutting down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_subcommand() {
    let sim = sim(scenario("{}")).await;
    let broken = "  [[service.probe]]\n  name = \"misplaced\"\n  user_id = \"vip_user_002\"\n  expect_section = \"new_users\"\n";
    let dir = temp_dir("probe-cmd");
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, config_text(&sim.url(), broken)).unwrap();
    let run = |probe: &str, service: &str, json: bool| {
        let mut c = Command::new(BIN);
        c.arg(format!("--config.file={}", cfg.display()))
            .args([
                "probe",
                &format!("--service={service}"),
                &format!("--probe={probe}"),
            ])
            .env("TD_API_KEY", KEY)
            .env("TD_P13N_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if json {
            c.arg("--output=json");
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (code, out) = run("vip", "product_recommendations", false);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("> POST ") && out.contains("Authorization: TD1 <redacted>"),
        "{out}"
    );
    assert!(
        out.contains("< HTTP 200")
            && out.contains("section: premium_users")
            && out.contains("result: PASS"),
        "{out}"
    );
    assert!(
        out.contains("timings: connect ")
            && out.contains("first byte")
            && out.contains("(kernel clock)")
            && !out.contains("(pooled connection)"),
        "{out}"
    );
    assert_no_secret("probe output", &out);

    let (code, out) = run("misplaced", "product_recommendations", false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("result: FAIL reason=section_mismatch"),
        "{out}"
    );

    let (code, out) = run("returning", "web_offers", true);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("--output=json parses");
    assert_eq!(v["passed"], true);
    assert_eq!(v["outcome"]["section"], "cart_abandoners");
    assert_no_secret("probe json", &out);

    let (code, out) = run("misplaced", "product_recommendations", true);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["outcome"]["reason"], "section_mismatch");

    let (code, out) = run("nobody", "product_recommendations", false);
    assert_eq!(code, Some(1));
    assert!(out.contains("no probe \"nobody\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_one_object_a_line() {
    let sim = sim(scenario(r#"{"faults": [{"status": 503}]}"#)).await;
    let d = start(
        "json-logs",
        &config_text(&sim.url(), ""),
        &["--log.format=json"],
    );
    wait_for("a failed probe", 10, async || {
        value(
            &scrape(&d).await,
            "td_pz_probe_failures_total",
            &[("probe", "vip"), ("reason", "unavailable")],
        )
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stderr = std::fs::read_to_string(d.dir.join("stderr")).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let failed = lines
        .iter()
        .find(|v| v["message"] == "probe failed" && v["probe"] == "vip")
        .expect("a probe failed line");
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["reason"], "unavailable");
    assert_eq!(failed["status"], 503);
    assert_no_secret("json logs", &stderr);
}
