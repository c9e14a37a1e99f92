//! `demo`: the simulator and the exporter in one process, on an embedded configuration.

use std::collections::BTreeMap;

use td_pz_exporter::config::{Config, ConfigError};
use td_pz_sim::{Scenario, SimConfig, Simulator};

pub const DEMO_CONFIG: &str = include_str!("demo.toml");
/// The demo's key and token: not secrets, the simulator checks them like real ones.
pub const DEMO_API_KEY: &str = "1/demo0000000000000000000000000000000000";
pub const DEMO_P13N_TOKEN: &str = "1/2/0123456789abcdef0123456789abcdef";

/// The embedded configuration, pointed at a simulator at `sim_url`.
pub fn config(sim_url: &str) -> Result<Config, ConfigError> {
    let text = DEMO_CONFIG.replace("{sim}", sim_url);
    let env = BTreeMap::from([
        ("TD_API_KEY".to_string(), DEMO_API_KEY.to_string()),
        ("TD_P13N_TOKEN".to_string(), DEMO_P13N_TOKEN.to_string()),
    ]);
    Config::parse(&text, "<demo>", &env)
}

pub async fn start_simulator(listen: &str) -> std::io::Result<Simulator> {
    Simulator::start(
        listen,
        SimConfig {
            api_key: DEMO_API_KEY.to_string(),
            p13n_token: Some(DEMO_P13N_TOKEN.to_string()),
            scenario: Scenario::default(),
            record: None,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_config_is_valid() {
        let c = super::config("http://127.0.0.1:9898").unwrap();
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[0].probes.len(), 3);
        assert_eq!(c.td.cdp_api_url, "http://127.0.0.1:9898");
    }
}
