//! td-pz-exporter: a Prometheus exporter and synthetic prober for Treasure Data real-time
//! personalization services.
//!
//! Data flows one way: `config` -> `app` (the plan) -> `schedule` (cron, jitter, no overlap)
//! with `budget` -> `poll` (probe, metrics, logs, discovery) using `td` (cdp | p13n | mgmt)
//! -> `outcome` -> `metrics` and `history` -> `web` (`/metrics`, the status page).
//! `cli` and `run` are the command-line edges; `hash` is the stable hash the plan, the scheduler and
//! the shards share. The TD simulator (`demo`, `simulate`, the tests) is the `td-pz-sim` crate.

pub mod app;
pub mod budget;
pub mod cli;
pub mod config;
pub mod hash;
pub mod history;
pub mod logging;
pub mod metrics;
pub mod outcome;
pub mod poll;
pub mod poller_cmd;
pub mod probe_cmd;
pub mod reason;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod shard;
pub mod td;
pub mod web;
