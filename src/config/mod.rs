//! The configuration file (TOML): parsing, validation and the site-derived defaults.
//!
//! Owns turning text into a checked [`Config`]; it reports *every* problem it finds, each with the
//! file, the line, the place (`service[2].probe[0].schedule`) and the fix. It reads the API key and
//! tokens (from the environment or files) into [`Secret`]s; it never runs anything.
//!
//! [`file`] is the text as written (serde), [`model`] the checked configuration, [`validate`] and
//! [`service`] turn one into the other, [`mapping`] places the fields of the metrics and logs
//! answers, [`problem`] reports, [`site`] derives TD's hosts.

mod file;
mod mapping;
mod model;
mod problem;
mod service;
mod site;
mod validate;

pub use mapping::{FieldPath, LatencyUnit, LogsMapping, MetricsMapping, MetricsRoot};
pub use model::*;
pub use problem::{ConfigError, Env, Problem, ProcessEnv};
pub use service::share_mapping;
pub use site::{site_hosts, SiteHosts};

#[cfg(test)]
mod tests;
