//! Discovery: lists a parent segment's real-time personalization services to the last page, so
//! that their management endpoints are polled without listing each service by hand, and so that
//! the inventory can say which services exist in TD that no configured service covers.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Instant, SystemTime};

use super::{send_with_retry, Ctx, ServiceRef};
use crate::config::{Api, Config, MetricsMapping, ParentSegment, Service};
use crate::outcome::{Exchange, Observed, PollOutcome};
use crate::reason::Reason;
use crate::td::discovery::{self, FoundService};

/// Pages followed at most per run (1,000 items a page at most: a million services).
pub const MAX_PAGES: usize = 1000;

/// What discovery found so far, by parent segment.
pub type Discovered = BTreeMap<String, Listing>;

/// What one complete listing found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub services: Vec<FoundService>,
    /// Items refused (no id or name, or a name that could not be a path segment).
    pub refused: usize,
    pub pages: usize,
}

pub async fn run(
    ctx: &Ctx,
    ps: &ParentSegment,
    rps: u32,
) -> (PollOutcome, Option<Listing>, Exchange) {
    let start = Instant::now();
    let sref = ServiceRef {
        parent_segment: ps.id.clone(),
        name: String::new(),
        budget_rps: rps,
    };
    let mut listing = Listing::default();
    let mut after: Option<String> = None;
    let mut seen_cursors = BTreeSet::new();
    let mut out = PollOutcome {
        at: SystemTime::now(),
        reason: None,
        status: None,
        duration: start.elapsed(),
        message: String::new(),
        attempts: Vec::new(),
        observed: Observed::Nothing,
    };
    let mut exchange = Exchange::default();
    let fail = |mut out: PollOutcome, reason, message, exchange| {
        out.reason = Some(reason);
        out.message = message;
        out.duration = start.elapsed();
        (out, None, exchange)
    };
    loop {
        if listing.pages == MAX_PAGES {
            return fail(
                out,
                Reason::InvalidResponse,
                format!("more than {MAX_PAGES} pages: stopped"),
                exchange,
            );
        }
        let req = discovery::request(
            &ctx.td.cdp_api_url,
            &ps.id,
            ps.page_size,
            after.as_deref(),
            &ctx.td.api_key,
        );
        let expected_path = url::Url::parse(&req.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        let r = send_with_retry(ctx, &sref, &req).await;
        out.attempts.extend_from_slice(&r.attempts);
        out.status = r.sent.result.as_ref().ok().map(|x| x.status);
        let parsed = match r.ok() {
            Err(f) => Err((f.reason, f.message)),
            Ok(resp) => discovery::parse(&resp.body, &expected_path)
                .map_err(|e| (Reason::InvalidResponse, e.0)),
        };
        exchange = r.sent.exchange;
        listing.pages += 1;
        match parsed {
            Err((reason, message)) => return fail(out, reason, message, exchange),
            Ok(p) => {
                listing.services.extend(p.services);
                listing.refused += p.refused;
                match p.next_after {
                    // A cursor seen before would loop forever: TD's list has ended.
                    Some(n) if seen_cursors.insert(n.clone()) => after = Some(n),
                    _ => break,
                }
            }
        }
    }
    listing.services.sort_by(|a, b| a.name.cmp(&b.name));
    listing.services.dedup_by(|a, b| a.name == b.name);
    out.message = format!(
        "{} service(s) found on {} page(s){}",
        listing.services.len(),
        listing.pages,
        if listing.refused > 0 {
            format!(", {} item(s) refused", listing.refused)
        } else {
            String::new()
        }
    );
    out.duration = start.elapsed();
    (out, Some(listing), exchange)
}

/// How the services TD lists relate to the configured ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// Covered by a configured service of the parent segment (same name, or same `service_id`).
    pub covered: Vec<String>,
    /// In TD, covered by no configured service and not ignored.
    pub not_covered: Vec<String>,
    pub ignored: Vec<String>,
    pub refused: usize,
}

/// Pure: which of `listing`'s services the configured `services` of `ps` cover.
pub fn coverage(ps: &ParentSegment, listing: &Listing, services: &[Service]) -> Coverage {
    let mine: Vec<&Service> = services
        .iter()
        .filter(|s| s.parent_segment == ps.id && !s.discovered)
        .collect();
    let mut c = Coverage {
        refused: listing.refused,
        ..Coverage::default()
    };
    for f in &listing.services {
        let covered = mine
            .iter()
            .any(|s| s.name == f.name || s.service_id.as_deref() == Some(f.id.as_str()));
        let list = if covered {
            &mut c.covered
        } else if ps.ignore.contains(&f.name) {
            &mut c.ignored
        } else {
            &mut c.not_covered
        };
        list.push(f.name.clone());
    }
    c
}

/// The configured services plus the discovered ones no configured service covers (by name or
/// `service_id`): those get the metrics and logs pollers of the cdp API host, and no probe.
pub fn with_discovered(cfg: &Config, discovered: &BTreeMap<String, Listing>) -> Vec<Service> {
    let mut services: Vec<Service> = cfg.services.clone();
    let written: HashSet<(String, String)> = services
        .iter()
        .map(|s| (s.parent_segment.clone(), s.name.clone()))
        .collect();
    for ps in cfg.parent_segments.iter().filter(|p| p.discover) {
        let found = discovered.get(&ps.id).map(|l| l.services.as_slice());
        for f in found.unwrap_or_default() {
            let by_id = cfg.services.iter().any(|s| {
                s.parent_segment == ps.id && s.service_id.as_deref() == Some(f.id.as_str())
            });
            if by_id || written.contains(&(ps.id.clone(), f.name.clone())) {
                continue;
            }
            services.push(Service {
                name: f.name.clone(),
                parent_segment: ps.id.clone(),
                service_id: Some(f.id.clone()),
                api: Api::Cdp,
                sections: None,
                max_sections: ps.max_sections,
                error_rate_unit: ps.error_rate_unit,
                metrics_schedule: cfg.defaults.metrics_schedule.clone(),
                logs_schedule: cfg.defaults.logs_schedule.clone(),
                max_requests_per_second: cfg.td.max_requests_per_second,
                probes: Vec::new(),
                discovered: true,
                metrics_mapping: crate::config::share_mapping(
                    MetricsMapping {
                        error_rate_unit: ps.error_rate_unit,
                        ..(*cfg.defaults.metrics_mapping).clone()
                    },
                    &cfg.defaults.metrics_mapping,
                ),
                logs_mapping: cfg.defaults.logs_mapping.clone(),
            });
        }
    }
    services
}
