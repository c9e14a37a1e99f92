//! Prints the cost of the series of N services: count, RSS, render time and size.
//! `cargo bench --bench series_cost -- 5000`
use std::time::Instant;

use td_pz_exporter::metrics::Metrics;

#[path = "common/fill.rs"]
mod fill;
use fill::fill_service;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench` to a bench without the test harness.
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let before = rss_kib();
    let m = Metrics::new();
    for i in 0..n {
        fill_service(&m, i);
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
