//! The overview on `/`: the summary cards and one row per target, failing targets first.

use std::collections::BTreeSet;

use maud::{html, Markup};

use super::{result_cell, target_name, when};
use crate::history::Target;
use crate::web::display::{ms, strip_reason, truncate, utc};

/// Results shown in a row's history strip.
const STRIP: usize = 30;

pub(super) fn overview(mut targets: Vec<Target>, jobs: usize) -> Markup {
    // Failing targets first, then by service and target.
    targets.sort_by_key(|t| {
        (
            t.last().is_none_or(|r| r.ok),
            t.parent_segment.clone(),
            t.service.clone(),
            t.id.clone(),
        )
    });
    let failing = targets
        .iter()
        .filter(|t| t.last().is_some_and(|r| !r.ok))
        .count();
    let services: BTreeSet<(&str, &str)> = targets
        .iter()
        .map(|t| (t.parent_segment.as_str(), t.service.as_str()))
        .collect();
    html! {
        div.summary {
            div.card { b { (services.len()) } "services" }
            div.card { b { (targets.len()) } "targets" }
            div.card { b class=(if failing > 0 { "bad" } else { "ok" }) { (failing) } "failing now" }
            div.card { b { (jobs) } "jobs scheduled" }
        }
        table {
            thead {
                tr {
                    th { "Parent segment" } th { "Service" } th { "Target" } th { "Last result" }
                    th { "Section" } th { "Latency" } th { "HTTP" } th { "Last success" }
                    th { "Last failure" } th { "Recent (oldest → newest)" } th {}
                }
            }
            tbody {
                @for t in &targets { (row(t)) }
            }
        }
    }
}

fn row(t: &Target) -> Markup {
    let last = t.last();
    let fail = last.is_some_and(|r| !r.ok);
    let details = format!(
        "/target?id={}",
        url::form_urlencoded::byte_serialize(t.id.as_bytes()).collect::<String>()
    );
    html! {
        tr.fail[fail] data-target=(t.id) {
            td { (t.parent_segment) }
            td { (t.service) }
            td { (target_name(t)) }
            td { (result_cell(last)) }
            td { (last.and_then(|r| r.section.as_deref()).unwrap_or("")) }
            td { (ms(last.and_then(|r| r.duration_seconds))) }
            td { @if let Some(s) = last.and_then(|r| r.status) { (s) } }
            td {
                @match t.last_success {
                    Some(at) => (when(at)),
                    None => "never",
                }
            }
            td {
                @match &t.last_failure {
                    Some(f) => {
                        span.bad { (f.reason.unwrap_or("failed")) } " " (when(f.at)) br;
                        small { (truncate(strip_reason(&f.message, f.reason), 120)) }
                    },
                    None => span.idle { "never" },
                }
            }
            td { (history_strip(t, STRIP)) }
            td { a href=(details) { "details" } }
        }
    }
}

/// The last `n` results as coloured marks (a tooltip each), then how many were OK.
fn history_strip(t: &Target, n: usize) -> Markup {
    let shown: Vec<_> = t.recent.iter().rev().take(n).rev().collect();
    let ok = shown.iter().filter(|r| r.ok).count();
    html! {
        span.hist {
            @for r in &shown {
                span class=(if r.ok { "s" } else { "f" })
                    title={ (utc(r.at)) " UTC: " (r.message) } {}
            }
        }
        @if !shown.is_empty() {
            " " small { (ok) "/" (shown.len()) " ok" }
        }
    }
}
