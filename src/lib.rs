//! td-pz-exporter: a Prometheus exporter and synthetic prober for Treasure Data real-time
//! personalization services.
//!
//! Data flows one way: `config` -> `app` (the plan) -> `schedule` (cron, jitter, no overlap)
//! with `budget` -> `poll` (probe, metrics, logs, discovery) using `td` (cdp | p13n | mgmt)
//! -> `outcome` -> `metrics` and `history` -> `web` (`/metrics`, the status page).
//! `sim` is the built-in TD simulator; `cli` and `run` are the command-line edges.

pub mod app;
pub mod budget;
pub mod cli;
pub mod config;
pub mod demo;
pub mod history;
pub mod kernel_time;
pub mod logging;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod poll;
pub mod poller;
pub mod poller_cmd;
pub mod probe_cmd;
pub mod reason;
pub mod record;
pub mod run;
pub mod runner;
pub mod schedule;
pub mod secret;
pub mod shard;
pub mod sim;
pub mod td;
pub mod web;
