//! The status page: server-rendered HTML (no JavaScript, no network), and `/status.json`.
//!
//! One table of every target (probe or poller) with its last result and recent history
//! ([`targets`]), what discovery found in TD ([`discovered`]), a detail view per target with the
//! last request and response, already redacted by the client ([`detail`]), and the configuration
//! text. The HTML is built with `maud`, which escapes every value it splices in; only the style
//! sheet below goes in as written. These modules read what the recorder holds and change nothing.

mod detail;
mod discovered;
mod targets;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::json;

use super::display::{age, utc};
use super::WebState;
use crate::history::{Record, Target};

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0} header a{color:#9cc3ff;margin-right:14px}
main{padding:16px 20px} table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border-bottom:1px solid #e3e6eb;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0} tr.fail{background:#fff3f2}
.ok{color:#137333;font-weight:600}.bad{color:#c5221f;font-weight:600}.idle{color:#80868b}
.hist{white-space:nowrap}
pre{background:#fff;border:1px solid #e3e6eb;padding:10px;overflow:auto;font-size:12px;max-height:420px}
.summary{display:flex;gap:16px;margin-bottom:14px}.card{background:#fff;border:1px solid #e3e6eb;padding:10px 14px;border-radius:6px}
.card b{font-size:20px;display:block} h2{font-size:16px;margin:20px 0 8px} h3{font-size:14px;margin:12px 0 6px}
small{color:#5f6368} .hist span{display:inline-block;width:7px;height:14px;margin-right:1px;border-radius:1px}
.hist .s{background:#34a853}.hist .f{background:#ea4335} dl{display:grid;grid-template-columns:max-content auto;gap:4px 14px;background:#fff;border:1px solid #e3e6eb;padding:10px}
dt{color:#5f6368} dd{margin:0;font-family:monospace}
"#;

/// The frame of every page: head, the header with version, shard and readiness, and the links.
fn shell(state: &WebState, title: &str, body: Markup) -> String {
    let app = &state.app;
    let shard = app
        .shard()
        .map(|s| format!(" · shard {s}"))
        .unwrap_or_default();
    let ready = if app.is_ready() { "ready" } else { "not ready" };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                meta http-equiv="refresh" content="30";
                link rel="icon" href="data:,";
                title { (title) " · td-pz-exporter" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "td-pz-exporter" }
                    span {
                        "v" (env!("CARGO_PKG_VERSION")) (shard) " · " (ready)
                        " · rendered " (utc(SystemTime::now())) " UTC"
                    }
                    nav {
                        a href="/" { "Status" }
                        a href=(state.telemetry_path) { "Metrics" }
                        a href="/status.json" { "status.json" }
                        a href="/config" { "Config" }
                        a href=(state.runbook_url) { "Runbooks" }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// A relative time with the UTC time as its tooltip.
fn when(t: SystemTime) -> Markup {
    html! { time title={ (utc(t)) " UTC" } { (age(t)) } }
}

fn target_name(t: &Target) -> String {
    match &t.probe {
        Some(p) => format!("probe {p}"),
        None => format!("{} poller", t.poller.as_label()),
    }
}

fn result_cell(r: Option<&Record>) -> Markup {
    html! {
        @match r {
            None => span.idle { "not run yet" },
            Some(r) if r.ok => span.ok { "OK" },
            Some(r) => { span.bad { "FAIL" } " " (r.reason.unwrap_or("failed")) },
        }
    }
}

pub fn index(state: &WebState) -> String {
    let targets = state.app.history.summary(30);
    let body = html! {
        (targets::overview(targets, state.app.job_count()))
        (discovered::inventory(&state.app.inventory()))
    };
    shell(state, "Status", body)
}

pub fn target(state: &WebState, id: &str) -> Option<String> {
    let t = state.app.history.get(id)?;
    let config = state.app.config();
    let body = detail::page(&t, config.as_deref(), &state.runbook_url);
    Some(shell(state, &t.id, body))
}

pub fn config(state: &WebState) -> String {
    let body = match state.app.config() {
        Some(c) => html! {
            h2 { "Configuration" }
            p { small { "Keys and tokens are read from the environment or files and are not part of this text." } }
            pre { (redact_config(&c.source)) }
        },
        None => html! { p { "No configuration loaded." } },
    };
    shell(state, "Configuration", body)
}

/// Hides any value whose key looks secret, in case someone wrote one into the file.
fn redact_config(text: &str) -> String {
    text.lines()
        .map(|l| {
            let key = l
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let secretish =
                (key.contains("key") || key.contains("token") || key.contains("password"))
                    && !key.ends_with("_env")
                    && !key.ends_with("_file")
                    && !key.contains("user_key");
            if secretish && l.contains('=') {
                format!(
                    "{} = \"<redacted>\"",
                    l.split('=').next().unwrap_or("").trim_end()
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn not_found(state: &WebState) -> String {
    let body = html! {
        p { "No such target. " a href="/" { "Back to the status page" } "." }
    };
    shell(state, "Not found", body)
}

pub fn status_json(state: &WebState) -> Vec<u8> {
    let targets = state.app.history.snapshot();
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": state.app.is_ready(),
        "shard": state.app.shard().map(|s| s.to_string()),
        "jobs": state.app.job_count(),
        "targets": targets,
        "discovered": state.app.inventory().into_iter().map(|(ps, c)| json!({"parent_segment": ps, "coverage": c})).collect::<Vec<_>>(),
    });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}
