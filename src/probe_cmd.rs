//! `probe --probe=NAME`: runs one probe of the configuration now and prints what was sent and
//! answered. [`render_exchange`] is shared with `probe --poller` ([`crate::poller_cmd`]).

use std::fmt::Write;

use serde_json::json;

use crate::app::find_probe;
use crate::cli::Output;
use crate::config::Config;
use crate::outcome::{Exchange, ProbeOutcome};
use crate::poll::{self, Ctx};

/// Runs the probe; returns the text to print and whether it passed.
pub async fn run(
    cfg: &Config,
    service: &str,
    probe: &str,
    output: Output,
) -> Result<(String, bool), String> {
    let (svc, p) = find_probe(cfg, service, probe).ok_or_else(|| {
        let known: Vec<String> = cfg
            .services
            .iter()
            .flat_map(|s| {
                s.probes
                    .iter()
                    .map(move |p| format!("--service={} --probe={}", s.name, p.name))
            })
            .collect();
        format!(
            "no probe {probe:?} in service {service:?}; configured: {}",
            known.join(", ")
        )
    })?;
    let ctx = Ctx::standalone(cfg).map_err(|e| e.to_string())?;
    let (out, ex) = poll::probe::run(&ctx, svc, p).await;
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&json!({
            "service": svc.name,
            "parent_segment": svc.parent_segment,
            "probe": p.name,
            "api": svc.flavor().as_str(),
            "passed": out.success(),
            "outcome": out,
            "exchange": ex,
        }))
        .map_err(|e| e.to_string())?,
        Output::Text => render_text(&svc.name, &p.name, svc.flavor().as_str(), &out, &ex),
    };
    Ok((text, out.success()))
}

fn ms(d: Option<std::time::Duration>) -> String {
    d.map_or("-".into(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    })
}

pub fn render_text(
    service: &str,
    probe: &str,
    api: &str,
    out: &ProbeOutcome,
    ex: &Exchange,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "probe {service}/{probe} (api {api})\n");
    render_exchange(&mut s, ex);
    if let Some(sec) = &out.section {
        let _ = writeln!(s, "section: {sec}");
    }
    if let Some(p) = out.server_processing {
        let _ = writeln!(s, "server processing: {}", ms(Some(p)));
    }
    let _ = writeln!(s, "checks:");
    for c in &out.checks {
        let _ = writeln!(
            s,
            "  [{}] {}: {}",
            if c.passed { "pass" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    match out.reason {
        None => {
            let _ = writeln!(s, "result: PASS");
        }
        Some(r) => {
            let _ = writeln!(s, "result: FAIL reason={} ({})", r.as_label(), r.hint());
        }
    }
    s
}

/// The request (redacted), the answer's status, headers and start, and the timings.
pub fn render_exchange(s: &mut String, ex: &Exchange) {
    let _ = writeln!(s, "> {} {}", ex.request.method, ex.request.url);
    for (k, v) in &ex.request.headers {
        let _ = writeln!(s, "> {k}: {v}");
    }
    if !ex.request.body.is_empty() {
        let _ = writeln!(s, ">\n> {}", ex.request.body);
    }
    let _ = writeln!(s);
    match &ex.response {
        Some(r) => {
            let _ = writeln!(s, "< HTTP {}", r.status);
            for (k, v) in &r.headers {
                let _ = writeln!(s, "< {k}: {v}");
            }
            let _ = writeln!(s, "<");
            for line in r.body.lines().take(60) {
                let _ = writeln!(s, "< {line}");
            }
            if r.truncated {
                let _ = writeln!(s, "< ... ({} bytes in all)", r.body_bytes);
            }
        }
        None => {
            let _ = writeln!(s, "< (no response)");
        }
    }
    let t = &ex.timings;
    let _ = writeln!(
        s,
        "\ntimings: connect {} | first byte {} | body {} | total {} ({} clock)",
        t.connect
            .map_or("(pooled connection)".into(), |d| ms(Some(d))),
        ms(t.first_byte),
        ms(t.body),
        ms(Some(t.total)),
        t.clock
    );
}
