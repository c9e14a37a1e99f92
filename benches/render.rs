//! The cost of a scrape: `Metrics::render()` with about 1k, 10k and 100k series, against serving
//! the same bytes from a static buffer.
//!
//! `make bench-micro` runs it (under the measurement lock); alone:
//! `cargo bench --bench render`. Groups:
//!
//! - `render/<series>`       `Metrics::render()`: the per-service families written straight from
//!   their compact state, the exporter's own few through the `prometheus` crate's encoder.
//! - `static_copy/<series>`  copying the same rendered bytes into a new `Vec`: the floor of any
//!   handler that answers with bytes it already has (a cache, a static file).
//! - `http/<render|static>/<series>`  the whole GET over loopback (hyper server, keep-alive reqwest
//!   client) where the handler either renders (`render`) or clones a cached `Bytes` (`static`).
//!
//! Series are built with the public `Metrics` API exactly as `benches/series_cost.rs` does
//! (one probe, three pollers, metrics and log fields per service: 48 series per service).

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use http_body_util::Full;
use hyper::{Request, Response};
use td_pz_exporter::metrics::Metrics;

const TARGETS: &[usize] = &[1_000, 10_000, 100_000];

/// The sizes to run: all, or only the one in `TD_PZ_BENCH_SERIES` (for profiling one size
/// under valgrind without building the others).
fn targets() -> Vec<usize> {
    match std::env::var("TD_PZ_BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => vec![n],
        None => TARGETS.to_vec(),
    }
}

#[path = "common/fill.rs"]
mod fill;
use fill::fill_service;

fn series_of(out: &[u8]) -> usize {
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count()
}

/// A registry with about `target` series, and its exact series count.
fn build(target: usize) -> (Metrics, usize) {
    // Some series are shared by all services (histograms by poller, the process's own): the
    // marginal cost of a service is the difference between two services and one.
    let count = |services: usize| {
        let m = Metrics::new();
        (0..services).for_each(|i| fill_service(&m, i));
        series_of(&m.render())
    };
    let (one, two) = (count(1), count(2));
    let per = two - one;
    let base = one - per;
    let services = (target.saturating_sub(base)).div_ceil(per).max(1);
    let m = Metrics::new();
    for i in 0..services {
        fill_service(&m, i);
    }
    let n = series_of(&m.render());
    (m, n)
}

fn bench_render(c: &mut Criterion) {
    let built: Vec<(Metrics, usize)> = targets().iter().map(|t| build(*t)).collect();
    let mut g = c.benchmark_group("scrape");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (m, n) in &built {
        let body = m.render();
        eprintln!(
            "series={n} bytes={} services={}",
            body.len(),
            m.services().len()
        );
        g.throughput(Throughput::Elements(*n as u64));
        g.bench_with_input(BenchmarkId::new("render", n), m, |b, m| {
            b.iter(|| black_box(m.render()))
        });
        g.bench_with_input(BenchmarkId::new("static_copy", n), &body, |b, body| {
            b.iter(|| black_box(black_box(body.as_slice()).to_vec()))
        });
    }
    g.finish();
}

/// A loopback HTTP server whose `/metrics` renders and whose `/static` answers cached bytes.
fn serve(m: Arc<Metrics>, cached: Bytes) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let (m, cached) = (m.clone(), cached.clone());
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let body = if req.uri().path() == "/metrics" {
                                Bytes::from(m.render())
                            } else {
                                cached.clone()
                            };
                            let mut r = Response::new(Full::new(body));
                            r.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static(
                                    "text/plain; version=0.0.4; charset=utf-8",
                                ),
                            );
                            async move { Ok::<_, Infallible>(r) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
    });
    addr
}

fn bench_http(c: &mut Criterion) {
    let mut g = c.benchmark_group("http");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    // 100k series over HTTP adds nothing the in-process figures do not show; keep the suite short.
    for target in targets().iter().filter(|t| **t <= 10_000) {
        let (m, n) = build(*target);
        let cached = Bytes::from(m.render());
        let addr = serve(Arc::new(m), cached.clone());
        g.throughput(Throughput::Elements(n as u64));
        for what in ["render", "static"] {
            let url = format!(
                "http://{addr}/{}",
                if what == "render" {
                    "metrics"
                } else {
                    "static"
                }
            );
            let got = rt.block_on(async { client.get(&url).send().await?.bytes().await });
            let len = got.expect("GET").len();
            assert!(
                len.abs_diff(cached.len()) < 1024,
                "about the same size either way"
            );
            g.bench_function(BenchmarkId::new(what, n), |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let r = client.get(&url).send().await.expect("GET");
                        black_box(r.bytes().await.expect("body"))
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_render, bench_http);
criterion_main!(benches);
