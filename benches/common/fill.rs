//! The series of one typical service (one probe, the metrics and logs pollers, TD's fields, four
//! log sections: 48 series), built with the public `Metrics` API. Shared by benches/render.rs and
//! benches/series_cost.rs through `#[path]`.

use std::time::{Duration, SystemTime};

use td_pz_exporter::metrics::Metrics;
use td_pz_exporter::outcome::ProbeOutcome;
use td_pz_exporter::poller::Poller;
use td_pz_exporter::td::Endpoint;

pub fn fill_service(m: &Metrics, i: usize) {
    let ok = ProbeOutcome {
        at: SystemTime::now(),
        reason: None,
        status: Some(200),
        duration: Some(Duration::from_millis(40)),
        server_processing: Some(Duration::from_millis(30)),
        section: Some("premium_users".into()),
        section_match: Some(true),
        td_code: None,
        checks: vec![],
        message: String::new(),
        attempts: vec![],
    };
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
    m.log_processing(ps, &svc, &[Duration::from_millis(40)]);
    m.log_last_entry(ps, &svc, 1.7e9);
    for e in [Endpoint::Personalize, Endpoint::Metrics, Endpoint::Logs] {
        m.api_request(ps, &svc, e, Some(200));
    }
}
