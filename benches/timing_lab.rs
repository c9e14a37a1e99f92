//! Where a probe's measured latency goes beyond the server's: one client at a time against a
//! server that answers after a fixed delay (the simulator with a latency fault), measured by
//! TdClient (kernel receive timestamps), by a default reqwest client, by a raw HTTP/1.1 exchange on
//! a tokio TcpStream timed in user space, and by the same raw exchange timed by the kernel's receive
//! timestamp, on a multi-thread and on a current-thread runtime.
//!
//!   td-pz-exporter simulate --listen=127.0.0.1:18555 --api-key=KEY --scenario=S.json &
//!   TD_API_KEY=KEY cargo bench --bench timing_lab -- http://127.0.0.1:18555 [N] [DELAY_MS]
//!
//! S.json: `{"accept_any_service": true, "faults": [{"endpoint": "personalize", "latency_ms": 50}]}`.
//! GAP_MS (default 20) is the pause between requests (0: back to back, caches warm); LAB_ONLY=multi
//! or current runs one runtime. Prints (measured - DELAY_MS) percentiles for each client; TdClient's
//! "body part" is the time spent reading the body after the headers.

use std::time::{Duration, Instant};

use td_pz_exporter::secret::Secret;
use td_pz_exporter::td::Endpoint;
use td_pz_exporter::td::{TdClient, TdRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PATH: &str = "/audiences/394649/personalization/product_recommendations";
const BODY: &str = r#"{"user_id":"vip_user_001"}"#;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn show(name: &str, mut v: Vec<f64>) {
    println!(
        "{name:40} p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms",
        pct(&mut v, 50.0),
        pct(&mut v, 90.0),
        pct(&mut v, 99.0),
        pct(&mut v, 100.0)
    );
}

async fn via_reqwest(url: &str, n: usize, delay: f64, gap: Duration) -> Vec<f64> {
    let key = Secret::new(std::env::var("TD_API_KEY").unwrap_or_else(|_| "bench".into()));
    let c = TdClient::new(Duration::from_secs(5), 1 << 20, vec![key.clone()]).unwrap();
    let req = TdRequest::post_json(
        Endpoint::Personalize,
        format!("{url}{PATH}"),
        "application/json",
        &serde_json::from_str(BODY).unwrap(),
    )
    .td1(&key);
    let mut out = Vec::new();
    for i in 0..n + 3 {
        let s = c.send(&req).await;
        assert!(s.result.is_ok(), "{:?}", s.result.err());
        if i >= 3 {
            out.push(s.exchange.timings.total.as_secs_f64() * 1e3 - delay);
            let t = &s.exchange.timings;
            BODY_MS
                .lock()
                .unwrap()
                .push(t.body.unwrap().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(gap).await;
    }
    out
}

static BODY_MS: std::sync::Mutex<Vec<f64>> = std::sync::Mutex::new(Vec::new());

/// reqwest with default settings and no per-request timeout: what TdClient's own layers cost.
async fn via_bare_reqwest(url: &str, n: usize, delay: f64, gap: Duration) -> Vec<f64> {
    let key = std::env::var("TD_API_KEY").unwrap_or_else(|_| "bench".into());
    let c = reqwest::Client::builder().build().unwrap();
    let mut out = Vec::new();
    for i in 0..n + 3 {
        let t = Instant::now();
        let r = c
            .post(format!("{url}{PATH}"))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("TD1 {key}"))
            .body(BODY)
            .send()
            .await
            .unwrap();
        let b = r.bytes().await.unwrap();
        assert!(!b.is_empty());
        if i >= 3 {
            out.push(t.elapsed().as_secs_f64() * 1e3 - delay);
        }
        tokio::time::sleep(gap).await;
    }
    out
}

/// Whether `text` holds a whole HTTP/1.1 answer (head and Content-Length body).
fn complete(text: &[u8]) -> bool {
    let Some(h) = text.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = std::str::from_utf8(&text[..h])
        .unwrap()
        .to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    text.len() >= h + 4 + len
}

/// A connection for the raw clients, and the request they send on it.
async fn raw_connect(url: &str) -> (tokio::net::TcpStream, String) {
    let key = std::env::var("TD_API_KEY").unwrap_or_else(|_| "bench".into());
    let addr = url.trim_start_matches("http://");
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: TD1 {key}\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    (s, req)
}

/// One request written and its whole answer read.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &str, buf: &mut [u8]) {
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = 0;
    loop {
        let k = s.read(&mut buf[got..]).await.unwrap();
        assert!(k > 0);
        got += k;
        if complete(&buf[..got]) {
            break;
        }
    }
}

async fn via_raw(url: &str, n: usize, delay: f64, gap: Duration) -> Vec<f64> {
    let (mut s, req) = raw_connect(url).await;
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    for i in 0..n + 3 {
        let t = Instant::now();
        exchange(&mut s, &req, &mut buf).await;
        if i >= 3 {
            out.push(t.elapsed().as_secs_f64() * 1e3 - delay);
        }
        tokio::time::sleep(gap).await;
    }
    out
}

/// The raw exchange, timed by the kernel: from just before the write to the receive timestamp
/// of the segment that completed the answer (a [`kernel_time::Stamped`] stream: SO_TIMESTAMPNS,
/// read with recvmsg).
async fn via_raw_kernel(url: &str, n: usize, delay: f64, gap: Duration) -> Vec<f64> {
    let (s, req) = raw_connect(url).await;
    let (mut s, clock) = kernel_time::Stamped::new(s);
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    let mut no_stamp = 0;
    for i in 0..n + 3 {
        let t = Instant::now();
        exchange(&mut s, &req, &mut buf).await;
        let ms = match clock.last_read().filter(|&rx| rx >= t) {
            Some(rx) => (rx - t).as_secs_f64() * 1e3,
            None => {
                no_stamp += 1;
                t.elapsed().as_secs_f64() * 1e3
            }
        };
        if i >= 3 {
            out.push(ms - delay);
        }
        tokio::time::sleep(gap).await;
    }
    if no_stamp > 0 {
        println!("(raw kernel: {no_stamp} answers without a kernel timestamp)");
    }
    out
}

/// Runs `f` as a task of `rt` (not on the blocking thread), as the exporter's probes run.
fn on<F>(rt: &tokio::runtime::Runtime, f: F) -> Vec<f64>
where
    F: std::future::Future<Output = Vec<f64>> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(f).await.unwrap() })
}

fn main() {
    // `cargo bench` passes `--bench` to a bench without the test harness.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let url = args.get(1).expect("URL").clone();
    let n: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(200);
    let delay: f64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(50.0);
    let gap = Duration::from_millis(
        std::env::var("GAP_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    for (name, rt) in [
        (
            "multi",
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "current",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
    ] {
        let only = std::env::var("LAB_ONLY").unwrap_or_default();
        if only == "current" && name == "multi" || only == "multi" && name == "current" {
            continue;
        }
        let u = url.clone();
        let v = on(&rt, async move { via_reqwest(&u, n, delay, gap).await });
        show(&format!("{name}: TdClient"), v);
        let b = std::mem::take(&mut *BODY_MS.lock().unwrap());
        if !b.is_empty() {
            show(&format!("{name}: TdClient body part"), b);
        }
        let u = url.clone();
        let v = on(
            &rt,
            async move { via_bare_reqwest(&u, n, delay, gap).await },
        );
        show(&format!("{name}: bare reqwest"), v);
        let u = url.clone();
        let v = on(&rt, async move { via_raw(&u, n, delay, gap).await });
        show(&format!("{name}: raw TcpStream"), v);
        let u = url.clone();
        let v = on(&rt, async move { via_raw_kernel(&u, n, delay, gap).await });
        show(&format!("{name}: raw, kernel rx timestamp"), v);
    }
}
