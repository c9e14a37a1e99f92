//! Parsing each TD response type, with bodies shaped like the simulator's (and TD's documented)
//! answers. `cargo bench --bench parse` (or `make bench-micro`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use td_pz_exporter::td::{cdp, mgmt, p13n};

fn cdp_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "user_id": "vip_user_001",
        "section": "premium_users",
        "outputs": {
            "recommended_products": ["prod_123", "prod_456", "prod_789"],
            "exclusive_offers": ["offer_10", "offer_20"],
            "customer_tier": "premium",
            "purchase_count_30d": 12
        },
        "timestamp": "2026-11-29T12:00:00Z",
        "processing_time_ms": 37
    }))
    .unwrap()
}

fn p13n_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"offers": {
        "cart_abandoners": {
            "attributes": {"recommended_products": ["prod_42"], "cart_reminder": true, "discount_code": "COMEBACK5"},
            "batch_segments": [{"id": 1}]
        },
        "newsletter": {"attributes": {}, "batch_segments": 3}
    }}))
    .unwrap()
}

fn metrics_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "error_rate": 0.0123,
        "requests_per_second": 41.37,
        "total_requests": 29_912_840,
        "error_count": 299_128,
        "p50_latency_ms": 36.2,
        "p95_latency_ms": 84.9,
        "p99_latency_ms": 127.5,
        "avg_latency_ms": 41.1,
        "cache": {"hit_ratio": "0.921"},
        "window": "1h"
    }))
    .unwrap()
}

/// `n` entries as the simulator generates them (request_id, user, section, RFC 3339 time,
/// status, processing time), with a pagination object.
fn logs_body(n: usize) -> Vec<u8> {
    let sections = ["premium_users", "new_users", "cart_abandoners", "fallback"];
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "request_id": format!("product_recommendations-{}", 1000 + i),
                "user_id": format!("user_{}", (i * 7919) % 5000),
                "section": sections[i % 4],
                "timestamp": format!("2026-11-29T12:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, (i * 37) % 1000),
                "status": if i % 97 == 0 { 500 } else { 200 },
                "processing_time_ms": 20 + (i % 60),
            })
        })
        .collect();
    serde_json::to_vec(&json!({"logs": entries, "pagination": {"next_page": null}})).unwrap()
}

fn discovery_body(n: usize) -> Vec<u8> {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{}", 1000 + i), "name": format!("service_{i:03}"), "description": "simulated", "tokens": []}))
        .collect();
    serde_json::to_vec(&json!({"data": items, "pagination": {"nextPage": "2"}})).unwrap()
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cdp_personalization", cdp_body()),
        ("p13n_personalization", p13n_body()),
        ("mgmt_metrics", metrics_body()),
        ("mgmt_logs_100", logs_body(100)),
        ("mgmt_discovery_20", discovery_body(20)),
    ];
    for (name, body) in &cases {
        g.throughput(Throughput::Bytes(body.len() as u64));
        let b = body.as_slice();
        match *name {
            "cdp_personalization" => {
                assert!(cdp::parse_personalization(b).is_ok());
                g.bench_function(*name, |x| {
                    x.iter(|| black_box(cdp::parse_personalization(black_box(b))))
                });
            }
            "p13n_personalization" => {
                assert!(p13n::parse_personalization(b, Some("cart_abandoners")).is_ok());
                g.bench_function(*name, |x| {
                    x.iter(|| {
                        black_box(p13n::parse_personalization(
                            black_box(b),
                            Some("cart_abandoners"),
                        ))
                    })
                });
            }
            "mgmt_metrics" => {
                assert!(mgmt::parse_metrics(b).is_ok());
                g.bench_function(*name, |x| {
                    x.iter(|| black_box(mgmt::parse_metrics(black_box(b))))
                });
            }
            "mgmt_logs_100" => {
                assert_eq!(mgmt::parse_logs(b).unwrap().entries.len(), 100);
                g.bench_function(*name, |x| {
                    x.iter(|| black_box(mgmt::parse_logs(black_box(b))))
                });
            }
            _ => {
                assert_eq!(
                    td_pz_exporter::td::discovery::parse(b, "/")
                        .unwrap()
                        .services
                        .len(),
                    20
                );
                g.bench_function(*name, |x| {
                    x.iter(|| black_box(td_pz_exporter::td::discovery::parse(black_box(b), "/")))
                });
            }
        }
        eprintln!("{name}: {} bytes", body.len());
    }
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
