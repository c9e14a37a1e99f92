//! Checks one `[[service]]` and its probes.

use std::collections::HashSet;
use std::sync::Arc;

use super::file::RawService;
use super::validate::Validator;
use super::*;

impl Validator<'_> {
    pub(super) fn service(
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
        let cdp_shape = s.api.is_none()
            && s.database.is_none()
            && s.table.is_none()
            && s.parent_segment_id.is_some();
        // One clear problem for the cdp shape, not the p13n API's missing fields as well.
        let flavor = if cdp_shape {
            Flavor::Cdp
        } else {
            s.api.unwrap_or_default()
        };
        if cdp_shape {
            self.problem(
                at,
                "this service has the cdp shape (parent_segment_id, no database/table) but no api: \
                 add api = \"cdp\" (the source design's endpoint, not in TD's published API), or \
                 database, table and token_env for TD's p13n API, the default",
            );
        }
        for (field, value) in [
            ("name", Some(&name)),
            ("parent_segment_id", s.parent_segment_id.as_ref()),
            ("service_id", s.service_id.as_ref()),
        ] {
            let Some(v) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            if let Err(why) = crate::td::path::acceptable(v) {
                self.problem(
                    &format!("{at}.{field}"),
                    format!("{v:?} {why}: it goes into request paths"),
                );
            }
        }
        let public = s.public.unwrap_or(false);
        let origin = s
            .origin
            .as_deref()
            .map(|o| o.trim_end_matches('/').to_string());
        if let Some(o) = &origin {
            if !valid_origin(o) {
                self.problem(
                    &format!("{at}.origin"),
                    format!("{o:?} is not an origin: write scheme://host[:port], e.g. \"https://www.example.com\""),
                );
            }
        }
        if flavor == Flavor::Cdp && (s.public.is_some() || origin.is_some()) {
            self.problem(
                at,
                "public and origin are p13n settings: remove them from a cdp service",
            );
        }
        if public && origin.is_none() {
            self.problem(
                &format!("{at}.origin"),
                "the /public path needs an Origin (TD answers 3007 without one): set origin = \"https://...\"",
            );
        }
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
        let (metrics_mapping, logs_mapping) = self.service_mappings(at, &s, defaults);

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

        // A refused service (its problem is recorded) is left out: the configuration is refused.
        let api = match flavor {
            Flavor::Cdp => Api::Cdp,
            Flavor::P13n => Api::P13n(P13nTarget {
                database: s.database?,
                table: s.table?,
                token: token?,
                user_key: s.user_key.unwrap_or_else(|| "td_client_id".into()),
                public,
                origin,
                synthetic_marker: s
                    .synthetic_marker
                    .unwrap_or_else(|| defaults.synthetic_marker.clone()),
            }),
        };
        Some(Service {
            name,
            parent_segment: s.parent_segment_id.unwrap_or_default(),
            service_id: s.service_id,
            api,
            sections: s.sections,
            max_sections,
            error_rate_unit: metrics_mapping.error_rate_unit,
            metrics_schedule,
            logs_schedule,
            max_requests_per_second: rps,
            probes,
            discovered: false,
            metrics_mapping,
            logs_mapping,
        })
    }
}

impl Validator<'_> {
    /// The service's `[metrics_mapping]` and `[logs_mapping]` over the defaults; the older
    /// `error_rate_unit` key still sets the unit.
    fn service_mappings(
        &mut self,
        at: &str,
        s: &RawService,
        defaults: &Defaults,
    ) -> (Arc<MetricsMapping>, Arc<LogsMapping>) {
        let mm_at = format!("{at}.metrics_mapping");
        let mut mm = self.metrics_mapping(&mm_at, &s.metrics_mapping, &defaults.metrics_mapping);
        match (s.error_rate_unit, &s.metrics_mapping.error_rate_unit) {
            (Some(u), None) => mm.error_rate_unit = u,
            (Some(u), Some(_)) if u != mm.error_rate_unit => self.problem(
                &format!("{at}.error_rate_unit"),
                format!("contradicts {mm_at}.error_rate_unit: keep one of the two"),
            ),
            _ => {}
        }
        let lm_at = format!("{at}.logs_mapping");
        let lm = self.logs_mapping(&lm_at, &s.logs_mapping, &defaults.logs_mapping);
        (
            share_mapping(mm, &defaults.metrics_mapping),
            share_mapping(lm, &defaults.logs_mapping),
        )
    }
}

/// `m`, sharing the defaults' copy when it is the same: most services keep the defaults, and a
/// mapping is a few dozen allocations, held per service by the configuration and the plan.
pub fn share_mapping<T: PartialEq>(m: T, defaults: &Arc<T>) -> Arc<T> {
    if m == **defaults {
        defaults.clone()
    } else {
        Arc::new(m)
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

/// `scheme://host[:port]` and nothing more, as an `Origin` header carries it.
fn valid_origin(o: &str) -> bool {
    match url::Url::parse(o) {
        Ok(u) => matches!(u.scheme(), "https" | "http") && u.origin().ascii_serialization() == o,
        Err(_) => false,
    }
}
