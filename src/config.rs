//! The configuration file (TOML): parsing, validation and the site-derived defaults.
//!
//! Owns turning text into a checked [`Config`]; it reports *every* problem it finds, each with the
//! file, the line, the place (`service[2].probe[0].schedule`) and the fix. It reads the API key and
//! tokens (from the environment or files) into [`Secret`]s; it never runs anything.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::schedule::CronSchedule;
use crate::secret::Secret;

pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// TD's personalization API flavor of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// The seed document's shape: `POST <site>.cdp.treasuredata.com/audiences/<ps>/personalization/<name>`.
    #[default]
    Cdp,
    /// TD's published RT 2.0 API: `POST <site>.p13n.in.treasuredata.com/<database>/<table>`.
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

// ---------------------------------------------------------------------------------------------
// The file as written (serde). Fields that validation must report together are `Option`s, so
// that one missing field does not hide the others.

#[derive(Deserialize, Default, Debug)]
struct RawConfig {
    td: Option<RawTd>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    parent_segment: Vec<RawParentSegment>,
    #[serde(default)]
    sharding: Option<RawSharding>,
}

#[derive(Deserialize, Default, Debug)]
struct RawTd {
    site: Option<String>,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    personalization_url: Option<String>,
    p13n_url: Option<String>,
    cdp_api_url: Option<String>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    max_requests_per_second: Option<f64>,
    max_response_bytes: Option<usize>,
    #[serde(default)]
    allow_insecure_http: bool,
    max_retries: Option<u32>,
}

#[derive(Deserialize, Default, Debug)]
struct RawDefaults {
    probe_schedule: Option<String>,
    metrics_schedule: Option<String>,
    logs_schedule: Option<String>,
    discovery_schedule: Option<String>,
    #[serde(default, with = "humantime_serde")]
    section_share_window: Option<Duration>,
    #[serde(default)]
    logs: RawLogsRequest,
}

/// How the logs endpoint is asked for entries. TD's real shape is unknown: every part is a setting.
#[derive(Deserialize, Default, Debug, Clone)]
struct RawLogsRequest {
    since_param: Option<String>,
    limit_param: Option<String>,
    page_param: Option<String>,
    limit: Option<u32>,
    max_pages: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    overlap: Option<Duration>,
}

#[derive(Deserialize, Default, Debug)]
struct RawService {
    name: Option<String>,
    parent_segment_id: Option<String>,
    service_id: Option<String>,
    api: Option<Flavor>,
    sections: Option<Vec<String>>,
    max_sections: Option<usize>,
    database: Option<String>,
    table: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    user_key: Option<String>,
    error_rate_unit: Option<ErrorRateUnit>,
    metrics_schedule: Option<String>,
    logs_schedule: Option<String>,
    max_requests_per_second: Option<f64>,
    #[serde(default)]
    probe: Vec<RawProbe>,
}

#[derive(Deserialize, Default, Debug)]
struct RawProbe {
    name: Option<String>,
    user_id: Option<String>,
    #[serde(default)]
    context: serde_json::Map<String, serde_json::Value>,
    endpoint: Option<ProbeEndpoint>,
    expect_section: Option<String>,
    #[serde(default)]
    expect_outputs: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    max_latency: Option<Duration>,
    schedule: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
struct RawParentSegment {
    id: Option<String>,
    #[serde(default)]
    discover: bool,
    schedule: Option<String>,
    error_rate_unit: Option<ErrorRateUnit>,
    max_sections: Option<usize>,
}

#[derive(Deserialize, Default, Debug)]
struct RawSharding {
    index: Option<u32>,
    count: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// The checked configuration.

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

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    pub parent_segment: String,
    pub service_id: Option<String>,
    pub flavor: Flavor,
    pub sections: Option<Vec<String>>,
    pub max_sections: usize,
    pub database: String,
    pub table: String,
    pub token: Option<Secret>,
    pub user_key: String,
    pub error_rate_unit: ErrorRateUnit,
    pub metrics_schedule: CronSchedule,
    pub logs_schedule: CronSchedule,
    pub max_requests_per_second: u32,
    pub probes: Vec<Probe>,
    /// Found by discovery rather than written in the file.
    pub discovered: bool,
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
}

impl Service {
    /// `parent_segment/pz_service`: the identity used for sharding and state.
    pub fn key(&self) -> String {
        format!("{}/{}", self.parent_segment, self.name)
    }
}

// ---------------------------------------------------------------------------------------------
// Problems.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub origin: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {} problem{}",
            self.origin,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}", p.render(&self.origin))?;
        }
        Ok(())
    }
}

impl Problem {
    pub fn render(&self, origin: &str) -> String {
        let at = match self.line {
            Some(l) => format!("{origin}:{l}"),
            None => origin.to_string(),
        };
        if self.path.is_empty() {
            format!("{at}: {}", self.message)
        } else {
            format!("{at}: {}: {}", self.path, self.message)
        }
    }
}

/// Where the environment comes from: the process, or a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![Problem {
                path: String::new(),
                line: None,
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        Config::parse(&text, &origin, &ProcessEnv)
    }

    /// Parses and checks `text`; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        let mut v = Validator {
            problems: Vec::new(),
            doc: toml_edit::ImDocument::parse(text.to_string()).ok(),
            text,
        };
        let mut unknown = Vec::new();
        let de = toml::Deserializer::new(text);
        let raw: RawConfig =
            match serde_ignored::deserialize(de, |path| unknown.push(ignored_path(&path))) {
                Ok(raw) => raw,
                Err(e) => {
                    let line = e.span().map(|s| line_of(text, s.start));
                    return Err(ConfigError {
                        origin: origin.to_string(),
                        problems: vec![Problem {
                            path: String::new(),
                            line,
                            // The toml crate has no words for some lexer errors (a control
                            // character in a comment): never print an empty problem.
                            message: match e.message().trim() {
                                "" => "invalid TOML here (a control character or a stray byte?)"
                                    .to_string(),
                                m => m.to_string(),
                            },
                        }],
                    });
                }
            };
        for path in unknown {
            v.problem(
                &path,
                "unknown key (misspelt? see the configuration reference in README.md)",
            );
        }
        let cfg = v.check(raw, env, text);
        if v.problems.is_empty() {
            cfg.ok_or_else(|| unreachable_error(origin))
        } else {
            Err(ConfigError {
                origin: origin.to_string(),
                problems: v.problems,
            })
        }
    }
}

fn unreachable_error(origin: &str) -> ConfigError {
    ConfigError {
        origin: origin.to_string(),
        problems: vec![Problem {
            path: String::new(),
            line: None,
            message: "the configuration could not be built".into(),
        }],
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.to_string()
            } else {
                format!("{p}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

struct Validator<'t> {
    problems: Vec<Problem>,
    doc: Option<toml_edit::ImDocument<String>>,
    text: &'t str,
}

impl Validator<'_> {
    /// The line of `path` (`service[2].probe[0].schedule`), or of its nearest ancestor written.
    fn line(&self, path: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut item = doc.as_item();
        let mut best = None;
        for part in path.split('.') {
            let (key, index) = match part.split_once('[') {
                Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some(next) = item.get(key) else { break };
            item = next;
            if let Some(s) = item.span() {
                best = Some(s.start);
            }
            if let Some(i) = index {
                let Some(next) = item.get(i) else { break };
                item = next;
                if let Some(s) = item.span() {
                    best = Some(s.start);
                }
            }
        }
        best.map(|o| line_of(self.text, o))
    }

    fn problem(&mut self, path: &str, message: impl Into<String>) {
        let line = self.line(path);
        self.problems.push(Problem {
            path: path.to_string(),
            line,
            message: message.into(),
        });
    }

    fn schedule(&mut self, path: &str, expr: Option<&str>, default: &CronSchedule) -> CronSchedule {
        match expr {
            None => default.clone(),
            Some(e) => match CronSchedule::parse(e) {
                Ok(s) => s,
                Err(err) => {
                    self.problem(path, format!("{err}"));
                    default.clone()
                }
            },
        }
    }

    fn url(&mut self, path: &str, url: &str, allow_insecure: bool) -> String {
        let url = url.trim_end_matches('/').to_string();
        match reqwest::Url::parse(&url) {
            Err(e) => self.problem(path, format!("not a URL ({e}): write it as https://host")),
            Ok(u) => match u.scheme() {
                "https" => {}
                "http" => {
                    let loopback = match u.host() {
                        Some(url::Host::Domain(d)) => d == "localhost",
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        None => false,
                    };
                    if !loopback && !allow_insecure {
                        self.problem(
                            path,
                            "plain http:// to a non-loopback host would send the API key unencrypted: \
                             use https://, or set td.allow_insecure_http = true",
                        );
                    }
                }
                other => self.problem(path, format!("unsupported scheme {other}: use https://")),
            },
        }
        url
    }

    fn secret(
        &mut self,
        path: &str,
        what: &str,
        env_name: Option<&str>,
        file: Option<&Path>,
        env: &dyn Env,
    ) -> Option<Secret> {
        match (env_name, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    path,
                    format!("set either {what}_env or {what}_file, not both"),
                );
                None
            }
            (None, None) => None,
            (Some(name), None) => match env.var(name) {
                Some(v) if !v.trim().is_empty() => Some(Secret::new(v)),
                _ => {
                    self.problem(
                        &format!("{path}.{what}_env"),
                        format!("the environment variable {name} is not set or empty"),
                    );
                    None
                }
            },
            (None, Some(f)) => match std::fs::read_to_string(f) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v)),
                Ok(_) => {
                    self.problem(
                        &format!("{path}.{what}_file"),
                        format!("{} is empty", f.display()),
                    );
                    None
                }
                Err(e) => {
                    self.problem(
                        &format!("{path}.{what}_file"),
                        format!("cannot read {}: {e}", f.display()),
                    );
                    None
                }
            },
        }
    }

    fn check(&mut self, raw: RawConfig, env: &dyn Env, text: &str) -> Option<Config> {
        let td = raw.td.unwrap_or_else(|| {
            self.problem(
                "td",
                "the [td] table is missing (site and api_key_env at least)",
            );
            RawTd::default()
        });
        let site = td.site.clone().unwrap_or_else(|| "us01".into());
        let hosts = site_hosts(&site);
        if hosts.is_none() {
            self.problem(
                "td.site",
                format!("unknown site {site:?}: use us01, jp01, eu01, ap02 or ap03, or set the *_url overrides"),
            );
        }
        let allow = td.allow_insecure_http;
        let api_key = if td.api_key_env.is_none() && td.api_key_file.is_none() {
            self.problem(
                "td",
                "no API key source: set api_key_env = \"TD_API_KEY\" or api_key_file = \"/path\"",
            );
            None
        } else {
            self.secret(
                "td",
                "api_key",
                td.api_key_env.as_deref(),
                td.api_key_file.as_deref(),
                env,
            )
        };
        let pick = |over: &Option<String>, derived: Option<String>| over.clone().or(derived);
        let personalization_url = pick(
            &td.personalization_url,
            hosts.as_ref().map(|h| h.personalization.clone()),
        )
        .map(|u| self.url("td.personalization_url", &u, allow))
        .unwrap_or_default();
        let p13n_url = pick(&td.p13n_url, hosts.as_ref().and_then(|h| h.p13n.clone()))
            .map(|u| self.url("td.p13n_url", &u, allow));
        let cdp_api_url = pick(&td.cdp_api_url, hosts.as_ref().map(|h| h.cdp_api.clone()))
            .map(|u| self.url("td.cdp_api_url", &u, allow))
            .unwrap_or_default();
        let rps = self.rate("td.max_requests_per_second", td.max_requests_per_second, 5);
        let timeout = td.timeout.unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            self.problem("td.timeout", "must be more than 0s");
        }

        let fallback = CronSchedule::parse("0 * * * * *").ok()?;
        let d = &raw.defaults;
        let defaults = Defaults {
            probe_schedule: self.schedule(
                "defaults.probe_schedule",
                Some(d.probe_schedule.as_deref().unwrap_or("*/30 * * * * *")),
                &fallback,
            ),
            metrics_schedule: self.schedule(
                "defaults.metrics_schedule",
                Some(d.metrics_schedule.as_deref().unwrap_or("0 * * * * *")),
                &fallback,
            ),
            logs_schedule: self.schedule(
                "defaults.logs_schedule",
                Some(d.logs_schedule.as_deref().unwrap_or("15,45 * * * * *")),
                &fallback,
            ),
            discovery_schedule: self.schedule(
                "defaults.discovery_schedule",
                Some(d.discovery_schedule.as_deref().unwrap_or("0 */5 * * * *")),
                &fallback,
            ),
            section_share_window: d.section_share_window.unwrap_or(Duration::from_secs(300)),
            logs: LogsRequest {
                since_param: d.logs.since_param.clone().unwrap_or_else(|| "since".into()),
                limit_param: d.logs.limit_param.clone().unwrap_or_else(|| "limit".into()),
                page_param: d.logs.page_param.clone().unwrap_or_else(|| "page".into()),
                limit: d.logs.limit.unwrap_or(500),
                max_pages: d.logs.max_pages.unwrap_or(10).max(1),
                overlap: d.logs.overlap.unwrap_or(Duration::from_secs(60)),
            },
        };
        if defaults.section_share_window.is_zero() {
            self.problem("defaults.section_share_window", "must be more than 0s");
        }

        let mut services = Vec::new();
        let mut names = HashSet::new();
        for (i, s) in raw.service.into_iter().enumerate() {
            let at = format!("service[{i}]");
            if let Some(svc) = self.service(&at, s, &defaults, env, rps, p13n_url.is_some()) {
                if !names.insert((svc.parent_segment.clone(), svc.name.clone())) {
                    self.problem(
                        &format!("{at}.name"),
                        format!(
                            "duplicate service {:?} in parent segment {:?}: names must be unique",
                            svc.name, svc.parent_segment
                        ),
                    );
                }
                services.push(svc);
            }
        }

        let mut parent_segments = Vec::new();
        for (i, p) in raw.parent_segment.into_iter().enumerate() {
            let at = format!("parent_segment[{i}]");
            let Some(id) = p.id.clone() else {
                self.problem(&at, "missing id (the parent segment id, e.g. \"394649\")");
                continue;
            };
            let schedule = self.schedule(
                &format!("{at}.schedule"),
                p.schedule.as_deref(),
                &defaults.discovery_schedule,
            );
            parent_segments.push(ParentSegment {
                id,
                discover: p.discover,
                schedule,
                error_rate_unit: p.error_rate_unit.unwrap_or_default(),
                max_sections: p.max_sections.unwrap_or(50),
            });
        }

        let sharding = match raw.sharding {
            None => None,
            Some(RawSharding {
                index: Some(i),
                count: Some(n),
            }) if n > 0 && i < n => Some((i, n)),
            Some(_) => {
                self.problem(
                    "sharding",
                    "set index and count with 0 <= index < count, e.g. index = 0, count = 3",
                );
                None
            }
        };

        Some(Config {
            td: TdSettings {
                site,
                api_key: api_key.unwrap_or_default(),
                personalization_url,
                p13n_url,
                cdp_api_url,
                timeout,
                max_requests_per_second: rps,
                max_response_bytes: td.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
                max_retries: td.max_retries.unwrap_or(3),
            },
            defaults,
            services,
            parent_segments,
            sharding,
            source: text.to_string(),
        })
    }

    fn rate(&mut self, path: &str, v: Option<f64>, default: u32) -> u32 {
        match v {
            None => default,
            Some(r) if r >= 1.0 && r.fract() == 0.0 && r <= 10_000.0 => r as u32,
            Some(_) => {
                self.problem(
                    path,
                    "must be a whole number of requests per second, 1 to 10000",
                );
                default
            }
        }
    }

    fn service(
        &mut self,
        at: &str,
        s: RawService,
        defaults: &Defaults,
        env: &dyn Env,
        default_rps: u32,
        have_p13n_url: bool,
    ) -> Option<Service> {
        let name = match s.name.clone() {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                self.problem(
                    at,
                    "missing name (the service name in the personalization URL)",
                );
                String::new()
            }
        };
        let flavor = s.api.unwrap_or_default();
        if flavor == Flavor::Cdp && s.parent_segment_id.is_none() {
            self.problem(
                at,
                "missing parent_segment_id: a cdp service is addressed as /audiences/<parent_segment_id>/personalization/<name>",
            );
        }
        if s.service_id.is_some() && s.parent_segment_id.is_none() {
            self.problem(
                &format!("{at}.service_id"),
                "the metrics and logs pollers need parent_segment_id too",
            );
        }
        let mut token = None;
        let (mut database, mut table) = (String::new(), String::new());
        if flavor == Flavor::P13n {
            for (field, value) in [("database", &s.database), ("table", &s.table)] {
                match value {
                    None => self.problem(
                        at,
                        format!("a p13n service needs {field} (the /<database>/<table> of the endpoint)"),
                    ),
                    Some(v) if !valid_p13n_name(v) => self.problem(
                        &format!("{at}.{field}"),
                        format!("{v:?} must match [0-9a-z_]{{3,128}}"),
                    ),
                    Some(_) => {}
                }
            }
            database = s.database.clone().unwrap_or_default();
            table = s.table.clone().unwrap_or_default();
            if s.token_env.is_none() && s.token_file.is_none() {
                self.problem(
                    at,
                    "a p13n service needs token_env or token_file (the WP13n-Token header)",
                );
            } else {
                token = self.secret(
                    at,
                    "token",
                    s.token_env.as_deref(),
                    s.token_file.as_deref(),
                    env,
                );
            }
            if !have_p13n_url {
                self.problem(at, "no p13n host is known for this site: set td.p13n_url");
            }
        }
        if let Some(list) = &s.sections {
            if list.is_empty() {
                self.problem(
                    &format!("{at}.sections"),
                    "an empty allow-list keeps nothing: remove it or list sections",
                );
            }
        }
        let max_sections = s.max_sections.unwrap_or(50);
        if max_sections == 0 {
            self.problem(&format!("{at}.max_sections"), "must be at least 1");
        }
        let metrics_schedule = self.schedule(
            &format!("{at}.metrics_schedule"),
            s.metrics_schedule.as_deref(),
            &defaults.metrics_schedule,
        );
        let logs_schedule = self.schedule(
            &format!("{at}.logs_schedule"),
            s.logs_schedule.as_deref(),
            &defaults.logs_schedule,
        );
        let rps = self.rate(
            &format!("{at}.max_requests_per_second"),
            s.max_requests_per_second,
            default_rps,
        );

        let mut probes = Vec::new();
        let mut probe_names = HashSet::new();
        for (j, p) in s.probe.into_iter().enumerate() {
            let pat = format!("{at}.probe[{j}]");
            let pname = match p.name.clone() {
                Some(n) if valid_label_value(&n) => n,
                Some(n) => {
                    self.problem(
                        &format!("{pat}.name"),
                        format!("{n:?}: use letters, digits, _ and - only"),
                    );
                    n
                }
                None => {
                    self.problem(&pat, "missing name (the persona, e.g. \"vip\")");
                    String::new()
                }
            };
            if !pname.is_empty() && !probe_names.insert(pname.clone()) {
                self.problem(
                    &format!("{pat}.name"),
                    format!("duplicate probe name {pname:?} in this service"),
                );
            }
            let user_id = match p.user_id.clone() {
                Some(u) if !u.trim().is_empty() => u,
                _ => {
                    self.problem(
                        &pat,
                        "missing user_id (the test user this probe personalizes for)",
                    );
                    String::new()
                }
            };
            if p.endpoint == Some(ProbeEndpoint::Test) && flavor == Flavor::P13n {
                self.problem(
                    &format!("{pat}.endpoint"),
                    "the p13n API has no /test endpoint: remove endpoint",
                );
            }
            if p.max_latency.is_some_and(|d| d.is_zero()) {
                self.problem(&format!("{pat}.max_latency"), "must be more than 0s");
            }
            let schedule = self.schedule(
                &format!("{pat}.schedule"),
                p.schedule.as_deref(),
                &defaults.probe_schedule,
            );
            probes.push(Probe {
                name: pname,
                user_id,
                context: p.context,
                endpoint: p.endpoint.unwrap_or_default(),
                expect_section: p.expect_section,
                expect_outputs: p.expect_outputs,
                max_latency: p.max_latency,
                schedule,
            });
        }

        Some(Service {
            name,
            parent_segment: s.parent_segment_id.unwrap_or_default(),
            service_id: s.service_id,
            flavor,
            sections: s.sections,
            max_sections,
            database,
            table,
            token,
            user_key: s.user_key.unwrap_or_else(|| "td_client_id".into()),
            error_rate_unit: s.error_rate_unit.unwrap_or_default(),
            metrics_schedule,
            logs_schedule,
            max_requests_per_second: rps,
            probes,
            discovered: false,
        })
    }
}

fn valid_p13n_name(s: &str) -> bool {
    (3..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'_')
}

fn valid_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Default hosts derived from a site name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteHosts {
    pub personalization: String,
    pub p13n: Option<String>,
    pub cdp_api: String,
}

pub fn site_hosts(site: &str) -> Option<SiteHosts> {
    let (p13n, cdp_api) = match site {
        "us01" => (Some("us01"), "api-cdp.treasuredata.com"),
        "jp01" => (Some("ap01"), "api-cdp.treasuredata.co.jp"),
        "eu01" => (Some("eu01"), "api-cdp.eu01.treasuredata.com"),
        "ap02" => (None, "api-cdp.ap02.treasuredata.com"),
        "ap03" => (Some("ap03"), "api-cdp.ap03.treasuredata.com"),
        _ => return None,
    };
    Some(SiteHosts {
        personalization: format!("https://{site}.cdp.treasuredata.com"),
        p13n: p13n.map(|p| format!("https://{p}.p13n.in.treasuredata.com")),
        cdp_api: format!("https://{cdp_api}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("TD_API_KEY".to_string(), "1/0123456789abcdef".to_string()),
            (
                "TD_P13N_TOKEN".to_string(),
                "1/2/0123456789abcdef0123456789abcdef".to_string(),
            ),
        ])
    }

    #[test]
    fn sites_derive_hosts() {
        let jp = site_hosts("jp01").unwrap();
        assert_eq!(jp.personalization, "https://jp01.cdp.treasuredata.com");
        assert_eq!(
            jp.p13n.as_deref(),
            Some("https://ap01.p13n.in.treasuredata.com")
        );
        assert_eq!(jp.cdp_api, "https://api-cdp.treasuredata.co.jp");
        assert_eq!(site_hosts("ap02").unwrap().p13n, None);
        assert!(site_hosts("mars01").is_none());
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let cfg = Config::parse(
            "[td]\napi_key_env = \"TD_API_KEY\"\n[[service]]\nname = \"s\"\nparent_segment_id = \"1\"\n",
            "t.toml",
            &env(),
        )
        .unwrap();
        assert_eq!(
            cfg.td.personalization_url,
            "https://us01.cdp.treasuredata.com"
        );
        assert_eq!(cfg.td.timeout, Duration::from_secs(10));
        assert_eq!(cfg.td.max_requests_per_second, 5);
        assert_eq!(cfg.services[0].max_sections, 50);
        assert_eq!(cfg.defaults.probe_schedule.source(), "*/30 * * * * *");
        assert_eq!(cfg.td.api_key.expose(), "1/0123456789abcdef");
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "[td]\napi_key_env = \"TD_API_KEY\"\n\n[[service]]\nname = \"a\"\nparent_segment_id = \"1\"\nmetrics_schedule = \"nope\"\n\n  [[service.probe]]\n  name = \"vip\"\n";
        let err = Config::parse(text, "t.toml", &env()).unwrap_err();
        let rendered = err.to_string();
        assert_eq!(err.problems.len(), 2, "{rendered}");
        assert!(
            rendered.contains("t.toml:7: service[0].metrics_schedule:"),
            "{rendered}"
        );
        assert!(
            rendered.contains("t.toml:9: service[0].probe[0]: missing user_id"),
            "{rendered}"
        );
    }
}
