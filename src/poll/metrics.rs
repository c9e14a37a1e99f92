//! The service metrics poller: the error rate, latencies and every other numeric field of the
//! metrics endpoint, found through the service's `metrics_mapping`.

use std::time::{Instant, SystemTime};

use super::{send_with_retry, Ctx, ServiceRef};
use crate::config::MetricsMapping;
use crate::outcome::{Exchange, Observed, PollOutcome, ServiceMetrics};
use crate::reason::Reason;
use crate::td::{metrics_answer, mgmt};

pub async fn run(
    ctx: &Ctx,
    svc: &ServiceRef,
    service_id: &str,
    mapping: &MetricsMapping,
) -> (PollOutcome, Exchange) {
    let start = Instant::now();
    let req = mgmt::metrics_request(
        &ctx.td.cdp_api_url,
        &svc.parent_segment,
        service_id,
        &ctx.td.api_key,
    );
    let r = send_with_retry(ctx, svc, &req).await;
    let mut out = PollOutcome {
        at: SystemTime::now(),
        reason: None,
        status: r.sent.result.as_ref().ok().map(|x| x.status),
        duration: start.elapsed(),
        message: String::new(),
        attempts: Vec::new(),
        observed: Observed::Nothing,
    };
    match r.ok() {
        Err(f) => {
            out.reason = Some(f.reason);
            out.status = f.status.or(out.status);
            out.message = f.message;
        }
        Ok(resp) => match metrics_answer::parse_metrics(&resp.body, mapping) {
            Err(e) => {
                out.reason = Some(Reason::InvalidResponse);
                out.message = e.0;
            }
            Ok(m) => {
                let ratio = m.error_rate.map(|v| mapping.error_rate_unit.to_ratio(v));
                out.message = format!(
                    "error_rate {}, {} field(s){}",
                    ratio.map_or("absent".into(), |r| format!("{r:.4}")),
                    m.fields.len(),
                    if m.dropped > 0 {
                        format!(", {} dropped over the cap", m.dropped)
                    } else {
                        String::new()
                    }
                );
                out.observed = Observed::Metrics(ServiceMetrics {
                    error_rate: ratio,
                    fields: m.fields,
                    latencies: m.latencies,
                });
            }
        },
    }
    if r.attempts.len() > 1 {
        out.message
            .push_str(&format!(" ({} attempts)", r.attempts.len()));
    }
    out.attempts = r.attempts;
    out.duration = start.elapsed();
    (out, r.sent.exchange)
}
