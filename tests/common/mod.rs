//! Shared helpers of the integration tests: the in-process simulator on port 0, configs
//! pointed at it, and reading `/metrics` text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use td_pz_exporter::app::{App, ConfigSource};
use td_pz_exporter::config::Config;
use td_pz_sim::{Scenario, SimConfig, Simulator};

pub const KEY: &str = "1/TESTkey0123456789abcdefSECRET";
pub const TOKEN: &str = "1/2/0123456789abcdef0123456789abcdef";
/// A schedule that does not fire during a test: runs are triggered by hand.
pub const NEVER: &str = "0 0 0 1 1 * 2099";

pub async fn sim(scenario: Scenario) -> Simulator {
    Simulator::start(
        "127.0.0.1:0",
        SimConfig {
            api_key: KEY.into(),
            p13n_token: Some(TOKEN.into()),
            scenario,
            record: None,
        },
    )
    .await
    .expect("simulator starts")
}

pub fn scenario(json: &str) -> Scenario {
    serde_json::from_str(json).expect("valid scenario")
}

pub fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("TD_API_KEY".into(), KEY.into()),
        ("TD_P13N_TOKEN".into(), TOKEN.into()),
    ])
}

/// A config whose every URL is the simulator; `body` adds `[defaults]`, services and probes.
pub fn config(sim: &Simulator, td_extra: &str, body: &str) -> Config {
    let text = format!(
        "[td]\napi_key_env = \"TD_API_KEY\"\npersonalization_url = \"{u}\"\np13n_url = \"{u}\"\ncdp_api_url = \"{u}\"\n{td_extra}\n{body}",
        u = sim.url()
    );
    Config::parse(&text, "test.toml", &env()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// An app with `cfg` applied (jobs scheduled on their schedules).
pub async fn app(cfg: Config) -> Arc<App> {
    let app = App::new(ConfigSource::Embedded(Box::new(cfg.clone())), None, 100);
    app.apply(Arc::new(cfg)).await.expect("config applies");
    app
}

pub fn metrics(app: &App) -> String {
    String::from_utf8(app.metrics.render()).expect("utf-8 metrics")
}

/// The value of the series whose name and labels (a subset, `k="v"` each) match.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, val) = line.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, r)) => (n, r),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        {
            return val.parse().ok();
        }
    }
    None
}

/// Runs `promtool check metrics` on `text`; panics with its output on failure.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
