//! The TD client over real loopback sockets: kernel-clock timing, failure classes, TLS, proxies.

use super::Endpoint;
use super::*;
use http::header::{HeaderMap, RETRY_AFTER};

/// Serves `200 ok` on loopback `delay` after each request arrives, keeping connections
/// open; sends a unit on the channel as each request arrives.
fn slow_server(delay: Duration) -> (String, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.clear();
                    let _ = tx.send(());
                    std::thread::sleep(delay);
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if conn.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

/// Sends `req` while, once the server has the request, this (single-threaded) runtime's thread
/// stalls for `stall`: the answer arrives during the stall and is read after it.
async fn send_through_a_stall(
    c: &TdClient,
    req: &TdRequest,
    arrived: &std::sync::mpsc::Receiver<()>,
    stall: Duration,
) -> Sent {
    let stalling = async {
        while arrived.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        std::thread::sleep(stall);
    };
    tokio::join!(c.send(req), stalling).0
}

#[tokio::test]
async fn the_kernel_clock_leaves_out_the_exporters_own_stalls() {
    let delay = Duration::from_millis(40);
    let stall = Duration::from_millis(200);
    let (url, arrived) = slow_server(delay);
    let req = TdRequest::get(Endpoint::Metrics, url);
    let direct = TdClient::with_transport(
        transport::Kind::Direct,
        Duration::from_secs(5),
        1 << 20,
        vec![],
    )
    .unwrap();
    assert!(direct.kernel_timed());
    // A new connection, then the same one again: both end at the kernel's arrival time.
    for round in ["new connection", "reused connection"] {
        let sent = send_through_a_stall(&direct, &req, &arrived, stall).await;
        assert_eq!(sent.result.as_ref().unwrap().body.as_ref(), b"ok");
        let t = &sent.exchange.timings;
        assert_eq!(t.clock, Clock::Kernel, "{round}");
        assert_eq!(t.connect.is_none(), round == "reused connection", "{round}");
        assert!(
            t.total >= delay && t.total < delay + Duration::from_millis(100),
            "{round}: {:?} for a {delay:?} answer read after an {stall:?} stall",
            t.total
        );
        assert!(t.first_byte.unwrap() <= t.total);
    }

    // reqwest (the transport through a proxy) can only time its own reads.
    let proxied = TdClient::with_transport(
        transport::Kind::Proxied,
        Duration::from_secs(5),
        1 << 20,
        vec![],
    )
    .unwrap();
    assert!(!proxied.kernel_timed());
    let sent = send_through_a_stall(&proxied, &req, &arrived, stall).await;
    assert!(sent.result.is_ok(), "{:?}", sent.result.err());
    let t = &sent.exchange.timings;
    assert_eq!(t.clock, Clock::Process);
    assert!(t.total >= stall, "{:?}", t.total);
}

#[tokio::test]
async fn transport_failures_are_classified_on_both_transports() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x?key=private", closed.local_addr().unwrap());
    drop(closed);
    let (slow_url, _arrived) = slow_server(Duration::from_millis(500));
    for kind in [transport::Kind::Direct, transport::Kind::Proxied] {
        let c =
            TdClient::with_transport(kind, Duration::from_millis(200), 1 << 20, vec![]).unwrap();
        let refused = c
            .send(&TdRequest::get(Endpoint::Metrics, url.clone()))
            .await;
        let f = refused.result.unwrap_err();
        assert_eq!(f.reason, Reason::Connect, "{kind:?}: {}", f.message);
        assert!(f.message.starts_with("connecting failed"), "{}", f.message);
        assert!(!f.message.contains("private"), "{}", f.message);

        let slow = c
            .send(&TdRequest::get(Endpoint::Metrics, slow_url.clone()))
            .await;
        let f = slow.result.unwrap_err();
        assert_eq!(f.reason, Reason::Timeout, "{kind:?}: {}", f.message);
        assert!(slow.exchange.timings.total >= Duration::from_millis(200));
        assert!(slow.exchange.timings.total < Duration::from_millis(450));
    }
}

#[test]
fn a_proxy_in_the_environment_picks_reqwest() {
    let env = |set: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            set.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    };
    assert!(!transport::proxy_named(env(&[])));
    assert!(!transport::proxy_named(env(&[("HTTPS_PROXY", "")])));
    assert!(!transport::proxy_named(env(&[("NO_PROXY", "x")])));
    assert!(transport::proxy_named(env(&[(
        "https_proxy",
        "http://p:3128"
    )])));
    assert!(transport::proxy_named(env(&[("ALL_PROXY", "socks5://p")])));
}

#[test]
fn retry_after_seconds() {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    h.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&h), None);
}
