//! The daemon under every fault: it stays up, `/metrics` keeps answering, the right reason is
//! counted, other services are unaffected, memory stays bounded while 50 MB bodies are refused,
//! and SIGTERM during hung probes exits 0 within the grace period.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_td-pz-exporter");

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn start(sim_url: &str, extra: &[&str]) -> (Proc, String) {
    let dir = std::env::temp_dir().join(format!(
        "td-pz-resilience-{}-{}",
        std::process::id(),
        extra.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        r#"[td]
api_key_env = "TD_API_KEY"
personalization_url = "{sim_url}"
cdp_api_url = "{sim_url}"
timeout = "1s"
max_requests_per_second = 20

[defaults]
probe_schedule = "* * * * * *"

[[service]]
name = "product_recommendations"
parent_segment_id = "394649"
api = "cdp"
  [[service.probe]]
  name = "vip"
  user_id = "vip_user_001"
  expect_section = "premium_users"

[[service]]
name = "healthy_neighbour"
parent_segment_id = "394649"
api = "cdp"
  [[service.probe]]
  name = "vip"
  user_id = "vip_user_001"
  expect_section = "premium_users"
"#
    );
    std::fs::write(dir.join("c.toml"), cfg).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .arg(format!("--config.file={}", dir.join("c.toml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .env("TD_API_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

async fn scrape(base: &str) -> String {
    let r = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("/metrics answers");
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_on_one_service_leaves_the_rest_standing() {
    let sim = sim(scenario(r#"{"accept_any_service": true}"#)).await;
    let (p, base) = start(&sim.url(), &[]);
    let pid = p.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("{base}/-/ready"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let faults: &[(&str, &str)] = &[
        (r#"{"status":401}"#, "unauthorized"),
        (r#"{"status":403}"#, "forbidden"),
        (r#"{"status":404}"#, "not_found"),
        (r#"{"status":429,"retry_after":1}"#, "rate_limited"),
        (r#"{"status":429}"#, "rate_limited"),
        (r#"{"status":500}"#, "server_error"),
        (r#"{"status":502}"#, "server_error"),
        (r#"{"status":503}"#, "unavailable"),
        (r#"{"hang":true}"#, "timeout"),
        (r#"{"trickle":true}"#, "timeout"),
        (r#"{"reset":true}"#, "connect"),
        (r#"{"malformed":true}"#, "invalid_response"),
        (r#"{"wrong_shape":true}"#, "invalid_response"),
        (r#"{"invalid_utf8":true}"#, "invalid_response"),
        (r#"{"body_bytes":50000000}"#, "too_large"),
        (r#"{"section":"an_unknown_section"}"#, "section_mismatch"),
    ];
    let a = [("pz_service", "product_recommendations"), ("probe", "vip")];
    let b = [("pz_service", "healthy_neighbour"), ("probe", "vip")];
    // Each job's first run comes within one period of the start (its jitter): the neighbour must
    // have run once before a fault on the other service can be compared with it.
    while value(&scrape(&base).await, "td_pz_probe_success", &b) != Some(1.0) {
        assert!(Instant::now() < deadline, "the neighbour's first probe");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut peak_rss = 0;
    let mut neighbour_runs = value(&scrape(&base).await, "td_pz_probes_total", &b).unwrap_or(0.0);
    for (fault, reason) in faults {
        let json = format!(
            r#"{{"accept_any_service": true, "faults": [{}]}}"#,
            fault.replacen('{', "{\"service\":\"product_recommendations\",", 1)
        );
        sim.state.set_scenario(scenario(&json));
        let r = |t: &str| {
            value(
                t,
                "td_pz_probe_failures_total",
                &[a[0], a[1], ("reason", reason)],
            )
            .unwrap_or(0.0)
        };
        let before = r(&scrape(&base).await);
        let deadline = Instant::now() + Duration::from_secs(6);
        loop {
            peak_rss = peak_rss.max(rss_kib(pid));
            let t = scrape(&base).await;
            if r(&t) > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{fault}: no {reason} counted\n{}",
                t.lines()
                    .filter(|l| l.contains("failures_total") && !l.ends_with(" 0"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let t = scrape(&base).await;
        assert_eq!(
            value(&t, "td_pz_probe_success", &b),
            Some(1.0),
            "{fault}: the neighbour is unaffected"
        );
        let n = value(&t, "td_pz_probes_total", &b).unwrap();
        assert!(n >= neighbour_runs, "the neighbour keeps its schedule");
        neighbour_runs = n;
        if fault.contains("body_bytes") {
            // Several more 50 MB answers while memory is watched.
            for _ in 0..20 {
                peak_rss = peak_rss.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }
    assert!(p.0.id() == pid && rss_kib(pid) > 0, "still running");
    eprintln!("peak RSS during the fault matrix: {peak_rss} KiB");
    assert!(
        peak_rss < 60 * 1024,
        "RSS stayed under 60 MiB while 50 MB bodies were refused: {peak_rss} KiB"
    );
    let t = scrape(&base).await;
    let neighbour_failures: f64 = t
        .lines()
        .filter(|l| l.starts_with("td_pz_probe_failures_total{") && l.contains("healthy_neighbour"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(neighbour_failures, 0.0);
    promtool_check(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_hung_probes_exits_0_within_the_grace() {
    let sim = sim(scenario(
        r#"{"accept_any_service": true, "faults": [{"hang": true}]}"#,
    ))
    .await;
    let (mut p, base) = start(&sim.url(), &["--shutdown.grace=2s"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Wait until probes are in flight (the simulator has received requests it will not answer).
    while sim.state.received().len() < 2 {
        assert!(Instant::now() < deadline, "probes started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = scrape(&base).await;
    let t0 = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "exited within the grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        t0.elapsed() < Duration::from_millis(3500),
        "took {:?}",
        t0.elapsed()
    );
}
