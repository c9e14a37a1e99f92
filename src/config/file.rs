//! The configuration file as written (serde). Fields that validation must report together are
//! `Option`s, so that one missing field does not hide the others. Nothing here checks anything.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::mapping::{RawLogsMapping, RawMetricsMapping};
use super::{ErrorRateUnit, Flavor, ProbeEndpoint};

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawConfig {
    pub(super) td: Option<RawTd>,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) service: Vec<RawService>,
    #[serde(default)]
    pub(super) parent_segment: Vec<RawParentSegment>,
    #[serde(default)]
    pub(super) sharding: Option<RawSharding>,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawTd {
    pub(super) site: Option<String>,
    pub(super) api_key_env: Option<String>,
    pub(super) api_key_file: Option<PathBuf>,
    pub(super) p13n_api_key_env: Option<String>,
    pub(super) p13n_api_key_file: Option<PathBuf>,
    pub(super) personalization_url: Option<String>,
    pub(super) p13n_url: Option<String>,
    pub(super) cdp_api_url: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) timeout: Option<Duration>,
    pub(super) max_requests_per_second: Option<f64>,
    pub(super) max_response_bytes: Option<usize>,
    #[serde(default)]
    pub(super) allow_insecure_http: bool,
    pub(super) max_retries: Option<u32>,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawDefaults {
    pub(super) probe_schedule: Option<String>,
    pub(super) metrics_schedule: Option<String>,
    pub(super) logs_schedule: Option<String>,
    pub(super) discovery_schedule: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) section_share_window: Option<Duration>,
    #[serde(default)]
    pub(super) logs: RawLogsRequest,
    pub(super) synthetic_marker: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub(super) metrics_mapping: RawMetricsMapping,
    #[serde(default)]
    pub(super) logs_mapping: RawLogsMapping,
}

/// How the logs endpoint is asked for entries. TD's real shape is unknown: every part is a setting.
#[derive(Deserialize, Default, Debug, Clone)]
pub(super) struct RawLogsRequest {
    pub(super) since_param: Option<String>,
    pub(super) limit_param: Option<String>,
    pub(super) page_param: Option<String>,
    pub(super) limit: Option<u32>,
    pub(super) max_pages: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub(super) overlap: Option<Duration>,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawService {
    pub(super) name: Option<String>,
    pub(super) parent_segment_id: Option<String>,
    pub(super) service_id: Option<String>,
    pub(super) api: Option<Flavor>,
    pub(super) sections: Option<Vec<String>>,
    pub(super) max_sections: Option<usize>,
    pub(super) database: Option<String>,
    pub(super) table: Option<String>,
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) user_key: Option<String>,
    pub(super) public: Option<bool>,
    pub(super) origin: Option<String>,
    pub(super) synthetic_marker: Option<serde_json::Map<String, serde_json::Value>>,
    pub(super) error_rate_unit: Option<ErrorRateUnit>,
    pub(super) metrics_schedule: Option<String>,
    pub(super) logs_schedule: Option<String>,
    pub(super) max_requests_per_second: Option<f64>,
    #[serde(default)]
    pub(super) probe: Vec<RawProbe>,
    #[serde(default)]
    pub(super) metrics_mapping: RawMetricsMapping,
    #[serde(default)]
    pub(super) logs_mapping: RawLogsMapping,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawProbe {
    pub(super) name: Option<String>,
    pub(super) user_id: Option<String>,
    #[serde(default)]
    pub(super) context: serde_json::Map<String, serde_json::Value>,
    pub(super) endpoint: Option<ProbeEndpoint>,
    pub(super) expect_section: Option<String>,
    #[serde(default)]
    pub(super) expect_outputs: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) max_latency: Option<Duration>,
    pub(super) schedule: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawParentSegment {
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) discover: bool,
    pub(super) schedule: Option<String>,
    pub(super) error_rate_unit: Option<ErrorRateUnit>,
    pub(super) max_sections: Option<usize>,
    pub(super) page_size: Option<u32>,
    #[serde(default)]
    pub(super) ignore: Vec<String>,
}

#[derive(Deserialize, Default, Debug)]
pub(super) struct RawSharding {
    pub(super) index: Option<u32>,
    pub(super) count: Option<u32>,
}
