//! Prints the cost of the series of N services: count, RSS, render time and size.
//! `cargo run --release --example series_cost -- 5000`
use std::time::{Duration, Instant, SystemTime};

use td_pz_exporter::metrics::{Endpoint, Metrics, Poller};
use td_pz_exporter::outcome::ProbeOutcome;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let before = rss_kib();
    let m = Metrics::new();
    let ok = ProbeOutcome {
        at: SystemTime::now(),
        reason: None,
        status: Some(200),
        duration: Some(Duration::from_millis(40)),
        server_processing: Some(Duration::from_millis(30)),
        section: Some("premium_users".into()),
        section_match: Some(true),
        checks: vec![],
        message: String::new(),
    };
    for i in 0..n {
        let svc = format!("service_{i:05}");
        let ps = "394649";
        m.init_probe(ps, &svc, "vip");
        for p in [Poller::Probe, Poller::Metrics, Poller::Logs] {
            m.init_schedule(p, ps, &svc);
            m.poll_done(ps, &svc, p, Duration::from_millis(20), Ok(()));
        }
        m.record_probe(ps, &svc, "vip", &ok);
        m.init_logs(ps, &svc);
        m.set_error_rate(ps, &svc, Some(0.01));
        let fields: Vec<(String, f64)> = [
            "requests_per_second",
            "total_requests",
            "error_count",
            "p50_latency_ms",
            "p95_latency_ms",
            "p99_latency_ms",
            "avg_latency_ms",
            "cache.hit_ratio",
        ]
        .iter()
        .map(|f| (f.to_string(), 1.0))
        .collect();
        m.set_service_fields(ps, &svc, &fields);
        m.set_service_latency(
            ps,
            &svc,
            &[("p50", 0.03), ("p95", 0.08), ("p99", 0.12), ("avg", 0.04)],
        );
        let mut shares = Vec::new();
        for s in ["premium_users", "new_users", "cart_abandoners", "fallback"] {
            m.log_entries(ps, &svc, s, 10);
            shares.push((s.to_string(), 0.25));
        }
        m.set_section_shares(ps, &svc, &shares);
        m.log_processing(ps, &svc, Duration::from_millis(40));
        m.log_last_entry(ps, &svc, 1.7e9);
        for e in [Endpoint::Personalize, Endpoint::Metrics, Endpoint::Logs] {
            m.api_request(ps, &svc, e, Some(200));
        }
    }
    let stored = rss_kib() - before;
    let t = Instant::now();
    let out = m.render();
    let took = t.elapsed();
    let series = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    println!(
        "services={n} series={series} per_service={:.0} stored={stored} KiB after_render={} KiB render={:?} size={} KiB",
        series as f64 / n as f64,
        rss_kib() - before,
        took,
        out.len() / 1024
    );
}
