//! `probe --poller=metrics|logs`: fetches one live metrics or logs answer of a service, reads it
//! through the service's mapping, and prints the request (redacted), the answer's start and what
//! the mapping makes of it: the series for metrics, the entries and the next-page value for logs.
//!
//! A tool to fit `metrics_mapping` / `logs_mapping` to a live answer. It sends one request (no
//! retry, no budget) and records nothing: the daemon's pollers stay in [`crate::poll`].

use std::fmt::Write;

use serde_json::{json, Value};

use crate::cli::{Output, PollerKind};
use crate::config::{Config, Service};
use crate::metrics::catalog::{SERVICE_ERROR_RATE, SERVICE_LATENCY, SERVICE_METRIC};
use crate::outcome::Attempt;
use crate::poll::{Ctx, Retried};
use crate::probe_cmd::render_exchange;
use crate::td::{logs_answer, metrics_answer, mgmt};

/// Entries listed by the text output at most.
const MAX_LISTED: usize = 20;

/// Fetches and maps one answer; returns the text to print and whether it parsed.
pub async fn run(
    cfg: &Config,
    service: &str,
    poller: PollerKind,
    output: Output,
) -> Result<(String, bool), String> {
    let svc = cfg
        .services
        .iter()
        .find(|s| s.name == service)
        .ok_or_else(|| {
            let known: Vec<&str> = cfg.services.iter().map(|s| s.name.as_str()).collect();
            format!("no service {service:?}; configured: {}", known.join(", "))
        })?;
    let id = svc.service_id.as_deref().ok_or_else(|| {
        format!("service {service:?} has no service_id: the metrics and logs endpoints need one")
    })?;
    let ctx = Ctx::standalone(cfg).map_err(|e| e.to_string())?;
    let (ps, key, api) = (&svc.parent_segment, &ctx.td.api_key, &ctx.td.cdp_api_url);
    let req = match poller {
        PollerKind::Metrics => mgmt::metrics_request(api, ps, id, key),
        // The first page, as the poller asks for it but without a lower time bound.
        PollerKind::Logs => {
            let lr = &cfg.defaults.logs;
            let query = vec![(lr.limit_param.clone(), lr.limit.to_string())];
            mgmt::logs_request(api, ps, id, &query, key)
        }
    };
    let sent = ctx.client.send(&req).await;
    let attempt = Attempt {
        endpoint: req.endpoint,
        status: sent.result.as_ref().ok().map(|r| r.status),
    };
    let retried = Retried {
        sent,
        attempts: vec![attempt],
    };
    let mapped = match retried.ok() {
        Err(f) => Err(format!("reason={} ({})", f.reason.as_label(), f.message)),
        Ok(resp) => match poller {
            PollerKind::Metrics => metrics(svc, &resp.body),
            PollerKind::Logs => logs(svc, &resp.body),
        }
        .map_err(|e| format!("reason=invalid_response ({e})")),
    };
    let ex = &retried.sent.exchange;
    let name = match poller {
        PollerKind::Metrics => "metrics",
        PollerKind::Logs => "logs",
    };
    let passed = mapped.is_ok();
    let text = match output {
        Output::Json => {
            let (result, error) = match &mapped {
                Ok(m) => (m.json.clone(), Value::Null),
                Err(e) => (Value::Null, json!(e)),
            };
            serde_json::to_string_pretty(&json!({
                "service": svc.name,
                "parent_segment": svc.parent_segment,
                "poller": name,
                "passed": passed,
                "mapped": result,
                "error": error,
                "exchange": ex,
            }))
            .map_err(|e| e.to_string())?
        }
        Output::Text => {
            let mut s = String::new();
            let _ = writeln!(s, "{name} poller of {}/{}\n", svc.parent_segment, svc.name);
            render_exchange(&mut s, ex);
            match &mapped {
                Ok(m) => {
                    s.push_str(&m.text);
                    let _ = writeln!(s, "result: PASS (the answer maps)");
                }
                Err(e) => {
                    let _ = writeln!(s, "result: FAIL {e}");
                }
            }
            s
        }
    };
    Ok((text, passed))
}

/// What a mapping made of an answer, as text and as JSON.
struct Mapped {
    text: String,
    json: Value,
}

fn metrics(svc: &Service, body: &[u8]) -> Result<Mapped, String> {
    let mapping = &svc.metrics_mapping;
    let m = metrics_answer::parse_metrics(body, mapping).map_err(|e| e.0)?;
    let ratio = m.error_rate.map(|v| mapping.error_rate_unit.to_ratio(v));
    // (series name, its own label if any, value)
    type Series<'a> = (&'static str, Option<(&'static str, &'a str)>, f64);
    let mut series: Vec<Series> = Vec::new();
    if let Some(r) = ratio {
        series.push((SERVICE_ERROR_RATE.name, None, r));
    }
    for (stat, v) in &m.latencies {
        series.push((SERVICE_LATENCY.name, Some(("stat", stat.as_str())), *v));
    }
    for (field, v) in &m.fields {
        series.push((SERVICE_METRIC.name, Some(("field", field.as_str())), *v));
    }
    let mut text = format!(
        "\nseries (each also labelled parent_segment=\"{}\", pz_service=\"{}\"):\n",
        escape(&svc.parent_segment),
        escape(&svc.name)
    );
    if ratio.is_none() {
        let _ = writeln!(
            text,
            "  (no error rate at \"{}\": {} is absent)",
            mapping.error_rate, SERVICE_ERROR_RATE.name
        );
    }
    let mut list = Vec::new();
    for (name, label, v) in &series {
        let shown = match label {
            Some((k, val)) => format!("{{{k}=\"{}\"}}", escape(val)),
            None => String::new(),
        };
        let _ = writeln!(text, "  {name}{shown} {v}");
        let labels = label.as_ref().map(|(k, v)| {
            let mut m = serde_json::Map::new();
            m.insert(k.to_string(), json!(v));
            Value::Object(m)
        });
        list.push(json!({"name": name, "labels": labels, "value": v}));
    }
    if m.dropped > 0 {
        let _ = writeln!(text, "  ({} field(s) dropped over the cap)", m.dropped);
    }
    Ok(Mapped {
        text,
        json: json!({"series": list, "dropped": m.dropped}),
    })
}

fn logs(svc: &Service, body: &[u8]) -> Result<Mapped, String> {
    let mapping = &svc.logs_mapping;
    let page = logs_answer::parse_logs(body, mapping).map_err(|e| e.0)?;
    let mut text = format!(
        "\nentries: {} ({} skipped: not objects)\n",
        page.entries.len(),
        page.skipped
    );
    let mut list = Vec::new();
    for (i, e) in page.entries.iter().enumerate() {
        let ts = e.timestamp.and_then(|t| {
            chrono::DateTime::from_timestamp_micros((t * 1e6) as i64)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        });
        if i < MAX_LISTED {
            let _ = writeln!(
                text,
                "  section={} timestamp={} status={} error={}{}",
                e.section.as_deref().unwrap_or("-"),
                ts.as_deref().unwrap_or("-"),
                e.status.map_or("-".into(), |s| s.to_string()),
                e.error,
                e.user
                    .as_deref()
                    .map_or(String::new(), |u| format!(" user={u}")),
            );
        }
        list.push(json!({
            "section": e.section, "timestamp": ts, "status": e.status, "error": e.error, "user": e.user,
        }));
    }
    if page.entries.len() > MAX_LISTED {
        let _ = writeln!(text, "  ... ({} in all)", page.entries.len());
    }
    match &page.next_page {
        Some(n) => {
            let _ = writeln!(text, "next page: {}={n}", mapping.next_param);
        }
        None => {
            let _ = writeln!(text, "next page: none");
        }
    }
    Ok(Mapped {
        text,
        json: json!({
            "entries": list, "skipped": page.skipped,
            "next_page": page.next_page, "next_param": mapping.next_param,
        }),
    })
}

/// A label value as the exposition format writes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
