//! The simulator's scenario: which services exist, and which faults to inject where.
//!
//! Read from a file (`--scenario`, JSON or TOML) or posted at run time to `/_sim/scenario`.
//! It holds data only: what the fields mean on the wire is decided by the route modules
//! ([`super::p13n`], [`super::cdp`], [`super::discovery`], [`super::faults`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Every request is answered 401, as after a key was revoked.
    pub revoked: bool,
    /// Any service name, parent segment or service id exists (load tests with many services).
    pub accept_any_service: bool,
    /// Services beyond the built-in ones (discovery lists them).
    pub services: Vec<SimService>,
    pub faults: Vec<Fault>,
    /// Exact bodies for a service's metrics endpoint, by service name.
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Exact log entries for a service's logs endpoint, by service name (replaces generated ones).
    pub logs: BTreeMap<String, Vec<serde_json::Value>>,
    /// Generated log entries per second per service.
    pub log_rate: Option<f64>,
    /// Generated extra services listed by discovery, by parent segment (`{"394649": 250}`): ids
    /// `9000001`, `9000002`, ..., names `extra_service_0001`, ...; they answer metrics and logs.
    pub discovery_extra: BTreeMap<String, u32>,
    /// The shape of every service's metrics answer (a service's own `metrics_shape` wins).
    pub metrics_shape: Shape,
    /// The shape of every service's logs answer (a service's own `logs_shape` wins).
    pub logs_shape: Shape,
}

/// Which shape the (unpublished) metrics and logs endpoints answer in; see [`super::cdp`].
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// The source design's shape (the seed document).
    #[default]
    Source,
    /// The alternative shape documented in [`super::cdp`].
    Alt,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimService {
    pub name: String,
    #[serde(default = "default_ps")]
    pub parent_segment: String,
    #[serde(default)]
    pub service_id: Option<String>,
    #[serde(default)]
    pub flavor: SimFlavor,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    /// p13n: the `WP13n-Token` this service accepts instead of the simulator's configured one.
    #[serde(default)]
    pub token: Option<String>,
    /// p13n `/public` path: the only `Origin` values accepted (any well-formed one when absent).
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// p13n: the only client IPs accepted (TD's per-token IP allow-list; 3005 otherwise).
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    /// p13n: the event field holding the user id (`td_client_id` when absent).
    #[serde(default)]
    pub user_key: Option<String>,
    /// Discovery: the service's `description` (`"simulated"` when absent).
    #[serde(default)]
    pub description: Option<String>,
    /// Discovery: the service's `public` flag.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub metrics_shape: Option<Shape>,
    #[serde(default)]
    pub logs_shape: Option<Shape>,
}

impl SimService {
    /// A service with only its name, parent segment, id and flavor set.
    pub fn new(name: &str, parent_segment: &str, service_id: &str, flavor: SimFlavor) -> Self {
        SimService {
            name: name.into(),
            parent_segment: parent_segment.into(),
            service_id: Some(service_id.into()),
            flavor,
            database: None,
            table: None,
            token: None,
            allowed_origins: None,
            allowed_ips: None,
            user_key: None,
            description: None,
            public: false,
            metrics_shape: None,
            logs_shape: None,
        }
    }
}

fn default_ps() -> String {
    "394649".into()
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SimFlavor {
    #[default]
    Cdp,
    P13n,
}

/// One fault. Empty matchers match everything; the first matching fault applies.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// Service name (`*` or absent: any).
    pub service: Option<String>,
    pub user_id: Option<String>,
    /// `personalize`, `personalize_test`, `p13n` (both p13n paths), `p13n_public`, `metrics`,
    /// `logs` or `discovery`.
    pub endpoint: Option<String>,
    /// Apply this many times, then stop matching.
    pub times: Option<u32>,

    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    /// Answer this long after the request reached the simulator's socket (kernel receive time).
    pub latency_ms: Option<u64>,
    /// Accept, then never answer.
    pub hang: bool,
    /// Send the headers, then the body a byte at a time, forever.
    pub trickle: bool,
    /// Send part of the body, then drop the connection.
    pub reset: bool,
    /// 200 with a body that is not JSON.
    pub malformed: bool,
    /// 200 with valid JSON of the wrong shape.
    pub wrong_shape: bool,
    /// 200 with bytes that are not UTF-8.
    pub invalid_utf8: bool,
    /// 200 with a body of this many bytes.
    pub body_bytes: Option<usize>,
    /// Answer with this section (or offer) instead of the persona's.
    pub section: Option<String>,
    /// Remove these outputs from the answer.
    pub drop_outputs: Vec<String>,
    /// `unix` or `odd`: the answer's timestamp in another format.
    pub timestamp_format: Option<String>,
    /// p13n: answer with this documented TD error code, at the status of its family.
    pub td_code: Option<u32>,
    /// p13n: an answer without offers: `"204"`, `"empty"`, `"{}"` or `"offers_empty"`.
    pub no_offers: Option<String>,
}

impl Fault {
    pub fn matches(&self, service: &str, user_id: Option<&str>, endpoint: &str) -> bool {
        let svc_ok = match self.service.as_deref() {
            None | Some("*") => true,
            Some(s) => s == service,
        };
        let user_ok = match (&self.user_id, user_id) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        };
        let ep_ok = self
            .endpoint
            .as_deref()
            .is_none_or(|e| e == endpoint || (e == "p13n" && endpoint == "p13n_public"));
        svc_ok && user_ok && ep_ok && self.times != Some(0)
    }
}

impl Scenario {
    pub fn parse(text: &str, path_hint: &str) -> Result<Scenario, String> {
        if path_hint.ends_with(".toml") {
            toml::from_str(text).map_err(|e| format!("{path_hint}: {e}"))
        } else {
            serde_json::from_str(text).map_err(|e| format!("{path_hint}: {e}"))
        }
    }
}
