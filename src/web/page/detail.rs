//! `/target?id=…`: one target's last result with a hint, what it is configured to do, the checks
//! of its last run, its last exchange (and last failed one), and its history.

use std::fmt::Write;

use maud::{html, Markup};

use super::{result_cell, target_name, when};
use crate::config::Config;
use crate::history::Target;
use crate::outcome::Exchange;
use crate::reason::Reason;
use crate::web::display::{age, ms};

pub(super) fn page(t: &Target, config: Option<&Config>, runbook_url: &str) -> Markup {
    let last = t.last();
    let hint = last.and_then(|r| r.reason.and_then(Reason::from_label));
    // Shown apart only while the last run succeeded: a failing last run is the last exchange.
    let failed_exchange = match (&t.last_failed_exchange, &t.last_failure) {
        (Some(ex), Some(f)) if last.is_some_and(|r| r.ok) => Some((
            format!(
                "Last failed exchange ({}, {})",
                f.reason.unwrap_or("failed"),
                age(f.at)
            ),
            ex,
        )),
        _ => None,
    };
    html! {
        h2 { (t.parent_segment) " · " (t.service) " · " (target_name(t)) }
        p {
            "Runs: " (t.runs) " · failures: " (t.failures) " · last success: "
            (t.last_success.map(age).unwrap_or_else(|| "never".into()))
        }
        @if let Some(last) = last {
            p id="last-result" { "Last result: " (result_cell(Some(last))) " " small { (last.message) } }
            @if let Some(r) = hint {
                p id="hint" {
                    b { "Hint:" } " "
                    @if let Some(c) = last.td_code { "TD code " (c) " · " }
                    (r.hint()) " · "
                    a href={ (runbook_url) "#" (r.runbook_anchor()) } { "runbook" }
                }
            }
        }
        (settings(config, t))
        @if !t.last_checks.is_empty() {
            h2 { "Checks of the last run" }
            table {
                tr { th { "Check" } th { "Result" } th { "Detail" } }
                @for c in &t.last_checks {
                    tr {
                        td { (c.name) }
                        td {
                            @if c.passed { span.ok { "passed" } } @else { span.bad { "failed" } }
                        }
                        td { (c.detail) }
                    }
                }
            }
        }
        @if let Some(ex) = &t.last_exchange { (exchange("Last exchange", ex)) }
        @if let Some((title, ex)) = &failed_exchange { (exchange(title, ex)) }
        h2 { "History" }
        table {
            tr {
                th { "When" } th { "Result" } th { "HTTP" } th { "Latency" } th { "Section" }
                th { "Message" }
            }
            @for r in t.recent.iter().rev() {
                tr.fail[!r.ok] {
                    td { (when(r.at)) }
                    td { (result_cell(Some(r))) }
                    td { @if let Some(s) = r.status { (s) } }
                    td { (ms(r.duration_seconds)) }
                    td { (r.section.as_deref().unwrap_or("")) }
                    td { (r.message) }
                }
            }
        }
    }
}

/// The request and response as text (headers already redacted by the client), and the timings.
fn exchange(title: &str, ex: &Exchange) -> Markup {
    let mut req = format!("{} {}\n", ex.request.method, ex.request.url);
    for (k, v) in &ex.request.headers {
        let _ = writeln!(req, "{k}: {v}");
    }
    if !ex.request.body.is_empty() {
        let _ = write!(req, "\n{}", ex.request.body);
    }
    let resp = ex.response.as_ref().map(|r| {
        let mut s = format!("HTTP {}\n", r.status);
        for (k, v) in &r.headers {
            let _ = writeln!(s, "{k}: {v}");
        }
        let _ = write!(s, "\n{}", r.body);
        if r.truncated {
            let _ = write!(s, "\n… ({} bytes in all, shown up to 4 KiB)", r.body_bytes);
        }
        s
    });
    let t = &ex.timings;
    let secs = |d: Option<std::time::Duration>| ms(d.map(|d| d.as_secs_f64()));
    html! {
        h2 { (title) }
        h3 { "Request" }
        pre { (req) }
        h3 { "Response" }
        @match &resp {
            Some(text) => pre { (text) },
            None => p.bad { "no response" },
        }
        p {
            small {
                "timings: connect " (t.connect.map_or("reused".into(), |d| secs(Some(d))))
                " · first byte " (secs(t.first_byte))
                " · body " (secs(t.body))
                " · total " (secs(Some(t.total)))
                " (" (t.clock.to_string()) " clock)"
            }
        }
    }
}

/// What the target is configured to do: the persona and its checks, or the poller's schedule.
fn settings(config: Option<&Config>, t: &Target) -> Markup {
    let Some(svc) = config.and_then(|cfg| {
        cfg.services
            .iter()
            .find(|s| s.name == t.service && s.parent_segment == t.parent_segment)
    }) else {
        return html! {};
    };
    let mut rows: Vec<(&str, String)> = vec![("api", svc.flavor().as_str().to_string())];
    match &t.probe {
        Some(name) => {
            if let Some(p) = svc.probes.iter().find(|p| &p.name == name) {
                rows.push(("user_id", p.user_id.clone()));
                rows.push(("endpoint", format!("{:?}", p.endpoint).to_lowercase()));
                rows.push((
                    "context",
                    serde_json::Value::Object(p.context.clone()).to_string(),
                ));
                rows.push((
                    "expect_section",
                    p.expect_section.clone().unwrap_or_else(|| "-".into()),
                ));
                rows.push(("expect_outputs", p.expect_outputs.join(", ")));
                rows.push((
                    "max_latency",
                    p.max_latency
                        .map_or("-".into(), |d| humantime::format_duration(d).to_string()),
                ));
                rows.push(("schedule", p.schedule.source().to_string()));
            }
        }
        None => {
            rows.push(("service_id", svc.service_id.clone().unwrap_or_default()));
            let sched = match t.poller {
                crate::poller::Poller::Metrics => svc.metrics_schedule.source(),
                crate::poller::Poller::Logs => svc.logs_schedule.source(),
                _ => "",
            };
            rows.push(("schedule", sched.to_string()));
        }
    }
    html! {
        h2 { "Configured" }
        dl id="settings" {
            @for (k, v) in &rows { dt { (k) } dd { (v) } }
        }
    }
}
