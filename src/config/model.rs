//! The checked configuration: what the rest of the exporter reads. Built only by [`super::validate`].

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::mapping::{LogsMapping, MetricsMapping};
use crate::schedule::CronSchedule;
use crate::secret::Secret;

pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// TD's personalization API flavor of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// The source design's shape (in no TD document): `POST
    /// <site>.cdp.treasuredata.com/audiences/<ps>/personalization/<name>`.
    Cdp,
    /// TD's published RT 2.0 API (the default): `POST <site>.p13n.in.treasuredata.com/<database>/<table>`.
    #[default]
    P13n,
}

impl Flavor {
    pub fn as_str(&self) -> &'static str {
        match self {
            Flavor::Cdp => "cdp",
            Flavor::P13n => "p13n",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ProbeEndpoint {
    #[default]
    Live,
    Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ErrorRateUnit {
    #[default]
    Ratio,
    Percent,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub td: TdSettings,
    pub defaults: Defaults,
    pub services: Vec<Service>,
    pub parent_segments: Vec<ParentSegment>,
    pub sharding: Option<(u32, u32)>,
    /// The file's text, shown on the status page. Holds no secret: keys come from env or files.
    pub source: String,
}

#[derive(Clone, Debug)]
pub struct TdSettings {
    pub site: String,
    pub api_key: Secret,
    /// The key p13n requests send (a write-only key is enough); `None`: [`TdSettings::api_key`].
    pub p13n_api_key: Option<Secret>,
    pub personalization_url: String,
    pub p13n_url: Option<String>,
    pub cdp_api_url: String,
    pub timeout: Duration,
    pub max_requests_per_second: u32,
    pub max_response_bytes: usize,
    pub max_retries: u32,
}

#[derive(Clone, Debug)]
pub struct Defaults {
    pub probe_schedule: CronSchedule,
    pub metrics_schedule: CronSchedule,
    pub logs_schedule: CronSchedule,
    pub discovery_schedule: CronSchedule,
    pub section_share_window: Duration,
    pub logs: LogsRequest,
    /// Fields added to every p13n event so probe rows can be told apart in TD's table.
    pub synthetic_marker: serde_json::Map<String, serde_json::Value>,
    pub metrics_mapping: Arc<MetricsMapping>,
    pub logs_mapping: Arc<LogsMapping>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogsRequest {
    /// Query parameter carrying the lower time bound (RFC 3339); empty: none is sent.
    pub since_param: String,
    pub limit_param: String,
    pub page_param: String,
    pub limit: u32,
    pub max_pages: u32,
    /// How far before the newest entry seen the next request starts, to catch late entries.
    pub overlap: Duration,
}

/// How a service's probes reach it: the API flavor, with the fields only that flavor has.
#[derive(Clone, Debug, PartialEq)]
pub enum Api {
    /// The source design's shape (in no TD document), addressed by parent segment and name.
    Cdp,
    /// TD's published RT 2.0 API.
    P13n(P13nTarget),
}

/// Where and how a p13n probe posts its event.
#[derive(Clone, Debug, PartialEq)]
pub struct P13nTarget {
    pub database: String,
    pub table: String,
    /// The `WP13n-Token` header.
    pub token: Secret,
    /// The event field that carries the probe's user id.
    pub user_key: String,
    /// Post to `/public/<database>/<table>`, the browser path of td-js-sdk.
    pub public: bool,
    /// The `Origin` header (required on the `/public` path).
    pub origin: Option<String>,
    /// Fields added to every event (from `[defaults]` unless the service sets its own).
    pub synthetic_marker: serde_json::Map<String, serde_json::Value>,
}

impl Api {
    pub fn flavor(&self) -> Flavor {
        match self {
            Api::Cdp => Flavor::Cdp,
            Api::P13n(_) => Flavor::P13n,
        }
    }

    /// What shapes a probe's request, for a job's fingerprint: the token is hashed, never shown.
    pub fn fingerprint(&self) -> String {
        match self {
            Api::Cdp => "cdp".into(),
            Api::P13n(t) => format!(
                "{}/{}/{}/{}/{:?}/{:?}/{:x}",
                t.database,
                t.table,
                t.user_key,
                t.public,
                t.origin,
                t.synthetic_marker,
                crate::hash::stable_hash(t.token.expose())
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    pub parent_segment: String,
    pub service_id: Option<String>,
    pub api: Api,
    pub sections: Option<Vec<String>>,
    pub max_sections: usize,
    pub error_rate_unit: ErrorRateUnit,
    pub metrics_schedule: CronSchedule,
    pub logs_schedule: CronSchedule,
    pub max_requests_per_second: u32,
    pub probes: Vec<Probe>,
    /// Found by discovery rather than written in the file.
    pub discovered: bool,
    pub metrics_mapping: Arc<MetricsMapping>,
    pub logs_mapping: Arc<LogsMapping>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub name: String,
    pub user_id: String,
    pub context: serde_json::Map<String, serde_json::Value>,
    pub endpoint: ProbeEndpoint,
    pub expect_section: Option<String>,
    pub expect_outputs: Vec<String>,
    pub max_latency: Option<Duration>,
    pub schedule: CronSchedule,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParentSegment {
    pub id: String,
    pub discover: bool,
    pub schedule: CronSchedule,
    pub error_rate_unit: ErrorRateUnit,
    pub max_sections: usize,
    /// Discovery's `page[size]` (TD: default 100, at most 1000).
    pub page_size: u32,
    /// Discovered service names left out of the inventory's "not covered" list.
    pub ignore: Vec<String>,
}

impl Service {
    /// `parent_segment/pz_service`: the identity used for sharding and state.
    pub fn key(&self) -> String {
        format!("{}/{}", self.parent_segment, self.name)
    }

    pub fn flavor(&self) -> Flavor {
        self.api.flavor()
    }

    /// The p13n target of a p13n service.
    pub fn p13n(&self) -> Option<&P13nTarget> {
        match &self.api {
            Api::P13n(t) => Some(t),
            Api::Cdp => None,
        }
    }
}

impl TdSettings {
    /// The key a p13n request sends: the p13n key where one is set, else the CDP API key.
    pub fn p13n_key(&self) -> &Secret {
        self.p13n_api_key.as_ref().unwrap_or(&self.api_key)
    }
}

impl Config {
    /// One line per service that uses what no TD document backs: the cdp flavor, and the metrics
    /// and logs endpoints (`service_id`). `--config.check` prints them.
    pub fn unpublished(&self) -> Vec<String> {
        const NOT_TD: &str = "from the source design; not in TD's published API";
        let mut notes = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            if s.api == Api::Cdp {
                notes.push(format!(
                    "service[{i}] {}: api = \"cdp\" is {NOT_TD}",
                    s.name
                ));
            }
            if s.service_id.is_some() {
                notes.push(format!(
                    "service[{i}] {}: the metrics and logs pollers (service_id) use endpoints {NOT_TD}",
                    s.name
                ));
            }
        }
        notes
    }
}
