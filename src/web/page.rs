//! The status page: server-rendered HTML (no JavaScript, no network), and `/status.json`.
//!
//! One table of every target (probe or poller) with its last result and recent history, a
//! detail view per target with the last request and response (already redacted by the client),
//! and the configuration text. Everything shown is escaped.

use std::fmt::Write;

use serde_json::json;

use super::WebState;
use crate::history::{age, ms, Record, Target};

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

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

fn shell(state: &WebState, title: &str, body: &str) -> String {
    let app = &state.app;
    let shard = app
        .shard()
        .map(|s| format!(" · shard {s}"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <meta http-equiv=refresh content=30><link rel=icon href=\"data:,\">\
         <title>{title} · td-pz-exporter</title><style>{STYLE}</style></head><body>\
         <header><h1>td-pz-exporter</h1><span>v{ver}{shard} · {ready} · rendered {now} UTC</span>\
         <nav><a href=\"/\">Status</a><a href=\"{metrics}\">Metrics</a><a href=\"/status.json\">status.json</a>\
         <a href=\"/config\">Config</a><a href=\"{runbooks}\">Runbooks</a></nav></header><main>{body}</main></body></html>",
        title = esc(title),
        ver = env!("CARGO_PKG_VERSION"),
        ready = if app.is_ready() { "ready" } else { "not ready" },
        metrics = esc(&state.telemetry_path),
        runbooks = esc(&state.runbook_url),
        now = utc(std::time::SystemTime::now()),
    )
}

/// `2026-11-29 13:04:05`, for tooltips beside the relative times.
fn utc(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn when(t: std::time::SystemTime) -> String {
    format!("<time title=\"{} UTC\">{}</time>", utc(t), age(t))
}

fn target_name(t: &Target) -> String {
    match &t.probe {
        Some(p) => format!("probe {p}"),
        None => format!("{} poller", t.poller.as_label()),
    }
}

fn result_cell(r: Option<&Record>) -> String {
    match r {
        None => "<span class=idle>not run yet</span>".into(),
        Some(r) if r.ok => "<span class=ok>OK</span>".into(),
        Some(r) => format!(
            "<span class=bad>FAIL</span> {}",
            esc(r.reason.unwrap_or("failed"))
        ),
    }
}

fn history_strip(t: &Target, n: usize) -> String {
    let mut s = String::from("<span class=hist>");
    for r in t.recent.iter().rev().take(n).rev() {
        let _ = write!(
            s,
            "<span class={} title=\"{}\"></span>",
            if r.ok { "s" } else { "f" },
            esc(&format!("{} UTC: {}", utc(r.at), r.message)),
        );
    }
    s.push_str("</span>");
    let shown = t.recent.len().min(n);
    let ok = t.recent.iter().rev().take(n).filter(|r| r.ok).count();
    if shown > 0 {
        let _ = write!(s, " <small>{ok}/{shown} ok</small>");
    }
    s
}

pub fn index(state: &WebState) -> String {
    let mut targets = state.app.history.summary(30);
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
    let services: std::collections::BTreeSet<(&str, &str)> = targets
        .iter()
        .map(|t| (t.parent_segment.as_str(), t.service.as_str()))
        .collect();
    let mut b = format!(
        "<div class=summary><div class=card><b>{}</b>services</div><div class=card><b>{}</b>targets</div>\
         <div class=card><b class={}>{}</b>failing now</div><div class=card><b>{}</b>jobs scheduled</div></div>",
        services.len(),
        targets.len(),
        if failing > 0 { "bad" } else { "ok" },
        failing,
        state.app.job_count()
    );
    b.push_str(
        "<table><thead><tr><th>Parent segment</th><th>Service</th><th>Target</th><th>Last result</th><th>Section</th>\
         <th>Latency</th><th>HTTP</th><th>Last success</th><th>Last failure</th><th>Recent (oldest → newest)</th><th></th></tr></thead><tbody>",
    );
    for t in &targets {
        let last = t.last();
        let fail = last.is_some_and(|r| !r.ok);
        let last_failure = match &t.last_failure {
            Some(f) => format!(
                "<span class=bad>{}</span> {}<br><small>{}</small>",
                esc(f.reason.unwrap_or("failed")),
                when(f.at),
                esc(&truncate(strip_reason(&f.message, f.reason), 120))
            ),
            None => "<span class=idle>never</span>".into(),
        };
        let _ = write!(
            b,
            "<tr class=\"{cls}\" data-target=\"{id}\"><td>{ps}</td><td>{svc}</td><td>{name}</td><td>{res}</td><td>{sec}</td>\
             <td>{lat}</td><td>{code}</td><td>{succ}</td><td>{lf}</td><td>{hist}</td><td><a href=\"/target?id={eid}\">details</a></td></tr>",
            cls = if fail { "fail" } else { "" },
            id = esc(&t.id),
            ps = esc(&t.parent_segment),
            svc = esc(&t.service),
            name = esc(&target_name(t)),
            res = result_cell(last),
            sec = esc(last.and_then(|r| r.section.as_deref()).unwrap_or("")),
            lat = ms(last.and_then(|r| r.duration_seconds)),
            code = last.and_then(|r| r.status).map(|s| s.to_string()).unwrap_or_default(),
            succ = t.last_success.map(when).unwrap_or_else(|| "never".into()),
            lf = last_failure,
            hist = history_strip(t, 30),
            eid = enc(&t.id),
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(&inventory(state));
    shell(state, "Status", &b)
}

/// Services TD lists that no configured service covers, per discovering parent segment.
fn inventory(state: &WebState) -> String {
    let inv = state.app.inventory();
    if inv.is_empty() {
        return String::new();
    }
    let mut b = String::from(
        "<h2>Discovered in TD</h2><table id=inventory><thead><tr><th>Parent segment</th><th>Covered</th>\
         <th>Not covered by any configured service</th><th>Ignored</th><th>Refused</th></tr></thead><tbody>",
    );
    for (ps, c) in &inv {
        let names: Vec<String> = c.not_covered.iter().map(|n| esc(n)).collect();
        let _ = write!(
            b,
            "<tr class=\"{cls}\"><td>{ps}</td><td>{cov}</td><td>{nc}</td><td>{ign}</td><td>{refused}</td></tr>",
            cls = if names.is_empty() { "" } else { "fail" },
            ps = esc(ps),
            cov = c.covered.len(),
            nc = if names.is_empty() { "none".to_string() } else { format!("{}: {}", names.len(), names.join(", ")) },
            ign = c.ignored.len(),
            refused = c.refused,
        );
    }
    b.push_str("</tbody></table>");
    b
}

fn exchange_html(title: &str, ex: &crate::outcome::Exchange) -> String {
    let mut b = format!("<h2>{}</h2>", esc(title));
    let mut req = format!("{} {}\n", ex.request.method, ex.request.url);
    for (k, v) in &ex.request.headers {
        let _ = writeln!(req, "{k}: {v}");
    }
    if !ex.request.body.is_empty() {
        let _ = write!(req, "\n{}", ex.request.body);
    }
    let _ = write!(b, "<h3>Request</h3><pre>{}</pre>", esc(&req));
    match &ex.response {
        Some(r) => {
            let mut resp = format!("HTTP {}\n", r.status);
            for (k, v) in &r.headers {
                let _ = writeln!(resp, "{k}: {v}");
            }
            let _ = write!(
                resp,
                "\n{}{}",
                r.body,
                if r.truncated {
                    format!("\n… ({} bytes in all, shown up to 4 KiB)", r.body_bytes)
                } else {
                    String::new()
                }
            );
            let _ = write!(b, "<h3>Response</h3><pre>{}</pre>", esc(&resp));
        }
        None => b.push_str("<h3>Response</h3><p class=bad>no response</p>"),
    }
    let t = &ex.timings;
    let _ = write!(
        b,
        "<p><small>timings: connect {} · first byte {} · body {} · total {} ({} clock)</small></p>",
        t.connect
            .map_or("reused".into(), |d| ms(Some(d.as_secs_f64()))),
        ms(t.first_byte.map(|d| d.as_secs_f64())),
        ms(t.body.map(|d| d.as_secs_f64())),
        ms(Some(t.total.as_secs_f64())),
        t.clock,
    );
    b
}

pub fn target(state: &WebState, id: &str) -> Option<String> {
    let t = state.app.history.get(id)?;
    let mut b = format!(
        "<h2>{} · {} · {}</h2><p>Runs: {} · failures: {} · last success: {}</p>",
        esc(&t.parent_segment),
        esc(&t.service),
        esc(&target_name(&t)),
        t.runs,
        t.failures,
        t.last_success.map(age).unwrap_or_else(|| "never".into())
    );
    if let Some(last) = t.last() {
        let _ = write!(
            b,
            "<p id=last-result>Last result: {} <small>{}</small></p>",
            result_cell(Some(last)),
            esc(&last.message)
        );
        if let Some(r) = last.reason.and_then(crate::reason::Reason::from_label) {
            let code = last
                .td_code
                .map(|c| format!("TD code {c} · "))
                .unwrap_or_default();
            let _ = write!(
                b,
                "<p id=hint><b>Hint:</b> {}{} · <a href=\"{}#{}\">runbook</a></p>",
                esc(&code),
                esc(r.hint()),
                esc(&state.runbook_url),
                r.runbook_anchor()
            );
        }
    }
    b.push_str(&settings(state, &t));
    if !t.last_checks.is_empty() {
        b.push_str("<h2>Checks of the last run</h2><table><tr><th>Check</th><th>Result</th><th>Detail</th></tr>");
        for c in &t.last_checks {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(c.name),
                if c.passed {
                    "<span class=ok>passed</span>"
                } else {
                    "<span class=bad>failed</span>"
                },
                esc(&c.detail)
            );
        }
        b.push_str("</table>");
    }
    if let Some(ex) = &t.last_exchange {
        b.push_str(&exchange_html("Last exchange", ex));
    }
    if let (Some(ex), Some(f)) = (&t.last_failed_exchange, &t.last_failure) {
        if t.last().is_some_and(|r| r.ok) {
            b.push_str(&exchange_html(
                &format!(
                    "Last failed exchange ({}, {})",
                    f.reason.unwrap_or("failed"),
                    age(f.at)
                ),
                ex,
            ));
        }
    }
    b.push_str("<h2>History</h2><table><tr><th>When</th><th>Result</th><th>HTTP</th><th>Latency</th><th>Section</th><th>Message</th></tr>");
    for r in t.recent.iter().rev() {
        let _ = write!(
            b,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.ok { "" } else { "fail" },
            when(r.at),
            result_cell(Some(r)),
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            ms(r.duration_seconds),
            esc(r.section.as_deref().unwrap_or("")),
            esc(&r.message)
        );
    }
    b.push_str("</table>");
    Some(shell(state, &t.id, &b))
}

/// What the target is configured to do: the persona and its checks, or the poller's schedule.
fn settings(state: &WebState, t: &Target) -> String {
    let Some(cfg) = state.app.config() else {
        return String::new();
    };
    let Some(svc) = cfg
        .services
        .iter()
        .find(|s| s.name == t.service && s.parent_segment == t.parent_segment)
    else {
        return String::new();
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
    let mut b = String::from("<h2>Configured</h2><dl id=settings>");
    for (k, v) in rows {
        let _ = write!(b, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    b.push_str("</dl>");
    b
}

/// The message without its leading `reason: `, where the reason is shown beside it.
fn strip_reason<'a>(message: &'a str, reason: Option<&str>) -> &'a str {
    reason
        .and_then(|r| message.strip_prefix(r))
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message)
}

pub fn config(state: &WebState) -> String {
    let body = match state.app.config() {
        Some(c) => format!(
            "<h2>Configuration</h2><p><small>Keys and tokens are read from the environment or files and are not part of this text.</small></p><pre>{}</pre>",
            esc(&redact_config(&c.source))
        ),
        None => "<p>No configuration loaded.</p>".into(),
    };
    shell(state, "Configuration", &body)
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
    shell(
        state,
        "Not found",
        "<p>No such target. <a href=\"/\">Back to the status page</a>.</p>",
    )
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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn config_values_with_secret_names_are_hidden() {
        let t = "api_key_env = \"TD_API_KEY\"\napi_key = \"1/abc\"\nuser_key = \"td_client_id\"\ntoken_file = \"/x\"";
        let r = redact_config(t);
        assert!(r.contains("api_key_env = \"TD_API_KEY\""));
        assert!(r.contains("api_key = \"<redacted>\""));
        assert!(!r.contains("1/abc"));
        assert!(r.contains("user_key = \"td_client_id\""));
    }
}
