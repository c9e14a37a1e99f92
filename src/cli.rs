//! The command line, following Prometheus exporter conventions (dotted flags).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::web::DEFAULT_RUNBOOK_URL;

#[derive(Parser, Debug)]
#[command(
    name = "td-pz-exporter",
    version,
    about = "Prometheus exporter and synthetic prober for Treasure Data real-time personalization services"
)]
pub struct Cli {
    /// The configuration file (TOML).
    #[arg(
        long = "config.file",
        default_value = "td-pz-exporter.toml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Check the configuration, print every problem with its line, and exit 0 or 1.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Address to serve /metrics and the status page on (":9899" means every interface).
    #[arg(long = "web.listen-address", default_value = ":9899", global = true)]
    pub listen_address: String,

    /// TLS and basic auth for every endpoint (exporter-toolkit web config format, YAML).
    #[arg(long = "web.config.file", global = true)]
    pub web_config_file: Option<PathBuf>,

    #[arg(long = "web.telemetry-path", default_value = "/metrics", global = true)]
    pub telemetry_path: String,

    /// Where the status page links the runbooks.
    #[arg(long = "web.runbook-url", default_value = DEFAULT_RUNBOOK_URL, global = true)]
    pub runbook_url: String,

    #[arg(long = "log.level", default_value = "info", global = true)]
    pub log_level: LogLevel,

    #[arg(long = "log.format", default_value = "logfmt", global = true)]
    pub log_format: LogFormat,

    /// Results kept per target for the status page.
    #[arg(long = "history.limit", default_value_t = 100, global = true)]
    pub history_limit: usize,

    /// Results kept over all targets (bounds memory at thousands of services).
    #[arg(long = "history.max-records", default_value_t = crate::history::DEFAULT_MAX_RECORDS, global = true)]
    pub history_max_records: usize,

    /// This replica's share of the services, I/N (or SHARD_INDEX and SHARD_COUNT).
    #[arg(long = "shard")]
    pub shard: Option<String>,

    /// How long SIGTERM waits for probes in flight.
    #[arg(long = "shutdown.grace", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: std::time::Duration,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The built-in TD simulator plus the exporter on an embedded config: no TD account needed.
    Demo {
        /// Where the simulator listens.
        #[arg(long = "sim.listen-address", default_value = "127.0.0.1:9898")]
        sim_listen: String,
    },
    /// The TD simulator alone.
    Simulate {
        #[arg(long, default_value = "127.0.0.1:9898")]
        listen: String,
        /// A scenario file (JSON, or TOML by its .toml ending).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// The key the simulator accepts in `Authorization: TD1 <key>`.
        #[arg(long = "api-key", env = "TD_API_KEY", hide_env_values = true)]
        api_key: String,
        /// The WP13n-Token the p13n endpoints accept (any well-formed one of the key's account when unset).
        #[arg(long = "p13n-token", env = "TD_P13N_TOKEN", hide_env_values = true)]
        p13n_token: Option<String>,
        /// Append one JSON line per answered request to this file (else `TD_PZ_SIM_RECORD`).
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Run one probe from the configuration now and print what TD answered; or, with --poller,
    /// fetch one metrics or logs answer and print the series or entries its mapping gives.
    Probe {
        #[arg(long)]
        service: String,
        /// The probe to run (one of --probe and --poller).
        #[arg(long, conflicts_with = "poller", required_unless_present = "poller")]
        probe: Option<String>,
        /// Fetch one answer of this poller and show what the service's mapping makes of it.
        #[arg(long)]
        poller: Option<PollerKind>,
        #[arg(long, default_value = "text")]
        output: Output,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// The management poller `probe --poller` fetches an answer of.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollerKind {
    Metrics,
    Logs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// `:9899` -> `0.0.0.0:9899`.
pub fn listen_addr(s: &str) -> String {
    if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    }
}
