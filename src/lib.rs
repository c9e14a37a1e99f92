//! td-pz-exporter: a Prometheus exporter and synthetic prober for Treasure Data real-time
//! personalization services.
//!
//! Data flows one way (docs/architecture.md): `config` -> `plan` (jobs, owned by `app`) ->
//! `schedule` (cron, jitter, no overlap) with `budget` and `shard` -> `runner` -> `poll` (probe,
//! metrics, logs, discovery) using `td` (cdp | p13n | mgmt) -> `outcome` -> `record` (the one
//! writer) -> `metrics` and `history` -> `web` (`/metrics`, the status page). `cli` and `run` are
//! the command-line edges; `hash` is the stable hash the plan, the scheduler and the shards share.
//! The TD simulator (`demo`, `simulate`, the tests) is the `td-pz-sim` crate, not this library.

pub mod app;
pub mod budget;
pub mod cli;
pub mod config;
pub mod hash;
pub mod history;
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
pub mod td;
pub mod web;
