//! `--web.config.file`: TLS with a certificate made at test time (re-read when it changes),
//! and basic auth with bcrypt on every endpoint.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use td_pz_exporter::reason::Reason;
use td_pz_exporter::td::transport::Kind;
use td_pz_exporter::td::Endpoint;
use td_pz_exporter::td::{TdClient, TdRequest};

const BIN: &str = env!("CARGO_BIN_EXE_td-pz-exporter");

fn make_cert(dir: &Path, name: &str) {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={name}"))
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // A leaf, not a CA: rustls refuses a CA certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args([
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (scripts/install-deps.sh)");
    assert!(ok.success());
}

fn client(dir: &Path) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_info(true)
        .pool_max_idle_per_host(0);
    for n in ["first", "second"] {
        let pem = std::fs::read(dir.join(format!("{n}.crt"))).unwrap();
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

fn der_of(dir: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(dir.join(format!("{name}.crt")))
        .output()
        .unwrap();
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_on_every_endpoint() {
    let dir = std::env::temp_dir().join(format!("td-pz-websec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_cert(&dir, "first");
    make_cert(&dir, "second");
    std::fs::copy(dir.join("first.crt"), dir.join("server.crt")).unwrap();
    std::fs::copy(dir.join("first.key"), dir.join("server.key")).unwrap();
    let hash = bcrypt::hash("correct horse", 10).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[td]\napi_key_env = \"TD_API_KEY\"\ncdp_api_url = \"http://127.0.0.1:1\"\npersonalization_url = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .arg(format!(
            "--config.file={}",
            dir.join("config.toml").display()
        ))
        .arg(format!(
            "--web.config.file={}",
            dir.join("web.yml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env("TD_API_KEY", "1/abc")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let c = client(&dir);
    let mut up = false;
    for _ in 0..50 {
        if c.get(format!("{base}/-/healthy")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the exporter serves TLS");

    // The TD client's TLS (rustls with the webpki roots) refuses a certificate nobody vouches for.
    let td =
        TdClient::with_transport(Kind::Direct, Duration::from_secs(5), 1 << 20, vec![]).unwrap();
    let sent = td
        .send(&TdRequest::get(
            Endpoint::Metrics,
            format!("{base}/-/healthy"),
        ))
        .await;
    let failure = sent.result.unwrap_err();
    assert_eq!(failure.reason, Reason::Tls, "{}", failure.message);
    assert!(
        failure.message.contains("certificate"),
        "{}",
        failure.message
    );

    for path in ["/metrics", "/", "/-/healthy", "/-/ready", "/status.json"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"td-pz-exporter\""
        );
        let r = c
            .get(format!("{base}{path}"))
            .basic_auth("prometheus", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong password");
        let r = c
            .get(format!("{base}{path}"))
            .basic_auth("prometheus", Some("correct horse"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the right password");
    }
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // An unknown user costs a bcrypt check too: no shortcut that would tell users apart.
    let time = |user: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let mut v = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                let r = c
                    .get(format!("{base}/-/healthy"))
                    .basic_auth(user, Some("nope"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 401);
                v.push(t.elapsed());
            }
            v.sort();
            v[2]
        }
    };
    let known = time("prometheus").await;
    let unknown = time("mallory").await;
    assert!(
        unknown * 2 >= known && known * 2 >= unknown,
        "known {known:?} vs unknown {unknown:?}"
    );

    let scrape = c
        .get(format!("{base}/metrics"))
        .basic_auth("prometheus", Some("correct horse"))
        .send()
        .await
        .unwrap();
    let text = scrape.text().await.unwrap();
    // 1 readiness check, 5 paths x 2, 10 timed attempts.
    assert!(
        text.contains("td_pz_bad_requests_total{reason=\"unauthorized\"} 21"),
        "{}",
        text.lines()
            .filter(|l| l.contains("bad_requests"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The certificate is re-read when it changes.
    let peer = |r: &reqwest::Response| {
        r.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
    };
    let r = client(&dir)
        .get(format!("{base}/-/healthy"))
        .basic_auth("prometheus", Some("correct horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(peer(&r), Some(der_of(&dir, "first")));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::copy(dir.join("second.key"), dir.join("server.key")).unwrap();
    std::fs::copy(dir.join("second.crt"), dir.join("server.crt")).unwrap();
    let r = client(&dir)
        .get(format!("{base}/-/healthy"))
        .basic_auth("prometheus", Some("correct horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        peer(&r),
        Some(der_of(&dir, "second")),
        "the renewed certificate is served without a restart"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_bad_web_config_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("td-pz-websec-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        "basic_auth_users:\n  alice: plaintext-password\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[td]\napi_key_env = \"TD_API_KEY\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg(format!(
            "--config.file={}",
            dir.join("config.toml").display()
        ))
        .arg(format!(
            "--web.config.file={}",
            dir.join("web.yml").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .env("TD_API_KEY", "1/abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("basic_auth_users.alice: not a bcrypt hash"),
        "{err}"
    );
    assert!(
        !err.contains("plaintext-password"),
        "the password is not echoed"
    );
}
