//! Turns the file as written into the checked [`Config`], collecting every problem.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::file::{RawConfig, RawSharding, RawTd};
use super::problem::{ConfigError, Env, Problem, ProcessEnv};
use super::site::site_hosts;
use super::*;
use crate::schedule::CronSchedule;
use crate::secret::Secret;

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

pub(super) struct Validator<'t> {
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

    pub(super) fn problem(&mut self, path: &str, message: impl Into<String>) {
        let line = self.line(path);
        self.problems.push(Problem {
            path: path.to_string(),
            line,
            message: message.into(),
        });
    }

    pub(super) fn schedule(
        &mut self,
        path: &str,
        expr: Option<&str>,
        default: &CronSchedule,
    ) -> CronSchedule {
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

    pub(super) fn secret(
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
                format!("unknown site {site:?}: use us01, eu01, ap01 (or jp01: Tokyo), ap02 or ap03, or set the *_url overrides"),
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
        let p13n_api_key = self.secret(
            "td",
            "p13n_api_key",
            td.p13n_api_key_env.as_deref(),
            td.p13n_api_key_file.as_deref(),
            env,
        );
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
            synthetic_marker: d.synthetic_marker.clone().unwrap_or_else(|| {
                serde_json::Map::from_iter([("td_synthetic".to_string(), "1".into())])
            }),
            metrics_mapping: Arc::default(),
            logs_mapping: Arc::new(LogsMapping::builtin(
                d.logs.page_param.as_deref().unwrap_or("page"),
            )),
        };
        let defaults = Defaults {
            metrics_mapping: Arc::new(self.metrics_mapping(
                "defaults.metrics_mapping",
                &d.metrics_mapping,
                &defaults.metrics_mapping,
            )),
            logs_mapping: Arc::new(self.logs_mapping(
                "defaults.logs_mapping",
                &d.logs_mapping,
                &defaults.logs_mapping,
            )),
            ..defaults
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
            if let Err(why) = crate::td::path::acceptable(&id) {
                self.problem(&format!("{at}.id"), format!("{id:?} {why}"));
            }
            let page_size = p.page_size.unwrap_or(100);
            if !(1..=1000).contains(&page_size) {
                self.problem(
                    &format!("{at}.page_size"),
                    "TD pages discovery with page[size] from 1 to 1000 (default 100)",
                );
            }
            parent_segments.push(ParentSegment {
                id,
                page_size: page_size.clamp(1, 1000),
                ignore: p.ignore,
                discover: p.discover,
                schedule,
                error_rate_unit: p
                    .error_rate_unit
                    .unwrap_or(defaults.metrics_mapping.error_rate_unit),
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
                p13n_api_key,
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

    pub(super) fn rate(&mut self, path: &str, v: Option<f64>, default: u32) -> u32 {
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
}
