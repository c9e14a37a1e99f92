//! Discovery: lists a parent segment's real-time personalization services (paged), so that
//! their management endpoints are polled without listing each service by hand.

use std::time::{Instant, SystemTime};

use super::{send_with_retry, Ctx, ServiceRef};
use crate::outcome::{Exchange, PollOutcome};
use crate::reason::Reason;
use crate::td::mgmt::{self, FoundService};

/// Pages followed at most per run.
pub const MAX_PAGES: usize = 50;

pub async fn run(
    ctx: &Ctx,
    ps: &str,
    rps: u32,
) -> (PollOutcome, Option<Vec<FoundService>>, Exchange) {
    let start = Instant::now();
    let sref = ServiceRef {
        parent_segment: ps.to_string(),
        name: String::new(),
        budget_rps: rps,
    };
    let mut found = Vec::new();
    let mut page: Option<String> = None;
    let mut out = PollOutcome {
        at: SystemTime::now(),
        reason: None,
        status: None,
        duration: start.elapsed(),
        message: String::new(),
    };
    let mut exchange = Exchange::default();
    for _ in 0..MAX_PAGES {
        let req =
            mgmt::discovery_request(&ctx.td.cdp_api_url, ps, page.as_deref(), &ctx.td.api_key);
        let r = send_with_retry(ctx, &sref, &req).await;
        out.status = r.sent.result.as_ref().ok().map(|x| x.status);
        let parsed = match r.ok() {
            Err(f) => Err((f.reason, f.message)),
            Ok(resp) => {
                mgmt::parse_discovery(&resp.body).map_err(|e| (Reason::InvalidResponse, e.0))
            }
        };
        exchange = r.sent.exchange;
        match parsed {
            Err((reason, message)) => {
                out.reason = Some(reason);
                out.message = message;
                out.duration = start.elapsed();
                return (out, None, exchange);
            }
            Ok(p) => {
                found.extend(p.services);
                match p.next_page {
                    Some(n) if Some(&n) != page.as_ref() => page = Some(n),
                    _ => break,
                }
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.name == b.name);
    out.message = format!("{} service(s) found", found.len());
    out.duration = start.elapsed();
    (out, Some(found), exchange)
}
