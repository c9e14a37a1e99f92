//! The probe: one synthetic personalization request as a persona, and its checks.
//!
//! Checks run in a fixed order and the first that fails gives the one `reason`: transport and
//! status, then the answer's shape, then `expect_section`, then `expect_outputs`, then
//! `max_latency`. A 429 pauses the service's budget for its `Retry-After`.

use std::time::{Duration, SystemTime};

use super::{backoff, Ctx, ServiceRef};
use crate::config::{Api, Flavor, Probe, Service};
use crate::outcome::{Attempt, Check, Exchange, ProbeOutcome};
use crate::reason::Reason;
use crate::td::{cdp, error_detail, p13n, Personalization, Sent};

/// Builds and sends the probe's request, then judges the answer.
pub async fn run(ctx: &Ctx, svc: &Service, probe: &Probe) -> (ProbeOutcome, Exchange) {
    let sref = ServiceRef {
        parent_segment: svc.parent_segment.clone(),
        name: svc.name.clone(),
        budget_rps: svc.max_requests_per_second,
    };
    let req = match &svc.api {
        Api::Cdp => {
            cdp::personalize_request(&ctx.td.personalization_url, svc, probe, &ctx.td.api_key)
        }
        Api::P13n(target) => p13n::personalize_request(
            ctx.td.p13n_url.as_deref().unwrap_or_default(),
            target,
            probe,
            ctx.td.p13n_key(),
        ),
    };
    let budget = ctx.budgets.get(&sref.key(), sref.budget_rps);
    budget.acquire().await;
    let sent = ctx.client.send(&req).await;
    let status = sent.result.as_ref().ok().map(|r| r.status);
    if status == Some(429) {
        let wait = sent
            .result
            .as_ref()
            .ok()
            .and_then(|r| r.retry_after())
            .unwrap_or_else(|| backoff(1));
        budget.pause_for(wait);
    }
    let mut outcome = judge(svc, probe, &sent);
    outcome.attempts.push(Attempt {
        endpoint: req.endpoint,
        status,
    });
    (outcome, sent.exchange)
}

/// Turns an exchange into an outcome. Pure: the unit tests call it with made-up answers.
pub fn judge(svc: &Service, probe: &Probe, sent: &Sent) -> ProbeOutcome {
    let mut out = ProbeOutcome::at(SystemTime::now());
    let resp = match &sent.result {
        Err(f) => {
            out.status = f.status;
            return fail(out, "response", f.reason, f.message.clone());
        }
        Ok(r) => r,
    };
    out.status = Some(resp.status);
    out.duration = Some(sent.exchange.timings.total);
    if let Some(by_status) = Reason::from_status(resp.status) {
        // TD's p13n API says why in a documented code; the status alone says much less.
        out.td_code = match svc.flavor() {
            Flavor::P13n => p13n::td_code(&resp.body),
            Flavor::Cdp => None,
        };
        let reason = out
            .td_code
            .and_then(Reason::from_td_code)
            .unwrap_or(by_status);
        let detail = error_detail(&resp.body)
            .map(|d| format!("HTTP {}: {d}", resp.status))
            .unwrap_or_else(|| format!("HTTP {}", resp.status));
        return fail(out, "status", reason, detail);
    }
    out.checks.push(Check {
        name: "status",
        passed: true,
        detail: format!("HTTP {}", resp.status),
    });
    let parsed: Result<Personalization, _> = match svc.flavor() {
        Flavor::Cdp => cdp::parse_personalization(&resp.body),
        Flavor::P13n => p13n::parse_personalization(&resp.body, probe.expect_section.as_deref()),
    };
    let p = match parsed {
        Ok(p) => p,
        Err(e) => return fail(out, "shape", Reason::InvalidResponse, e.0),
    };
    out.checks.push(Check {
        name: "shape",
        passed: true,
        detail: format!("{} output(s)", p.outputs.len()),
    });
    out.section = p.section.clone();
    out.server_processing = p.processing_time;
    if let Some(expected) = &probe.expect_section {
        let matched = p.sections.contains(expected);
        out.section_match = Some(matched);
        if !matched {
            let got = p.section.as_deref().unwrap_or("(none)");
            return fail(
                out,
                "section",
                Reason::SectionMismatch,
                format!("expected section {expected:?}, got {got:?}"),
            );
        }
        out.checks.push(Check {
            name: "section",
            passed: true,
            detail: expected.clone(),
        });
    }
    let missing: Vec<&str> = probe
        .expect_outputs
        .iter()
        .filter(|o| !p.outputs.contains(*o))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return fail(
            out,
            "outputs",
            Reason::MissingOutput,
            format!("missing output(s): {}", missing.join(", ")),
        );
    }
    if !probe.expect_outputs.is_empty() {
        out.checks.push(Check {
            name: "outputs",
            passed: true,
            detail: probe.expect_outputs.join(", "),
        });
    }
    if let Some(max) = probe.max_latency {
        let took = sent.exchange.timings.total;
        if took > max {
            return fail(
                out,
                "latency",
                Reason::Slow,
                format!("took {} ms, over max_latency {} ms", ms(took), ms(max)),
            );
        }
        out.checks.push(Check {
            name: "latency",
            passed: true,
            detail: format!("{} ms <= {} ms", ms(took), ms(max)),
        });
    }
    out.message = match &out.section {
        Some(s) => format!("ok: section {s}"),
        None => "ok".into(),
    };
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn fail(
    mut out: ProbeOutcome,
    check: &'static str,
    reason: Reason,
    message: String,
) -> ProbeOutcome {
    out.checks.push(Check {
        name: check,
        passed: false,
        detail: message.clone(),
    });
    out.reason = Some(reason);
    out.message = format!("{reason}: {message}");
    out
}
