use std::time::{Duration, SystemTime};

use super::*;
use crate::history::History;
use crate::outcome::{Check, Exchange, ProbeOutcome, RequestRecord, ResponseRecord};
use crate::poll::discovery::Coverage;
use crate::poller::Poller;
use crate::reason::Reason;

/// Markup, quotes and an ampersand, as a name or a message could hold them.
const HOSTILE: &str = r#"<script>alert("x")</script>'&"#;
const ESCAPED: &str = r#"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'&amp;"#;

/// A probe target whose parent segment, service, probe, message, section, check and exchange all
/// hold [`HOSTILE`], with one failed run.
fn hostile_target() -> Target {
    let h = History::new(10);
    h.declare(Poller::Probe, HOSTILE, HOSTILE, Some(HOSTILE));
    let out = ProbeOutcome {
        at: SystemTime::now() - Duration::from_secs(90),
        reason: Some(Reason::Unavailable),
        status: Some(503),
        duration: Some(Duration::from_millis(12)),
        server_processing: None,
        section: Some(HOSTILE.into()),
        section_match: None,
        td_code: None,
        checks: vec![Check {
            name: "status",
            passed: false,
            detail: HOSTILE.into(),
        }],
        message: format!("unavailable: {HOSTILE}"),
        attempts: vec![],
    };
    let exchange = Exchange {
        request: RequestRecord {
            method: "POST".into(),
            url: format!("http://td.invalid/{HOSTILE}"),
            headers: vec![("Authorization".into(), "TD1 <redacted>".into())],
            body: HOSTILE.into(),
        },
        response: Some(ResponseRecord {
            status: 503,
            body: HOSTILE.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    h.record_probe(HOSTILE, HOSTILE, HOSTILE, &out, exchange);
    h.snapshot().remove(0)
}

fn assert_escaped(html: &str, at_least: usize) {
    assert!(!html.contains("<script"), "raw markup in {html}");
    assert!(!html.contains(r#"alert("x")"#), "raw quotes in {html}");
    let n = html.matches(ESCAPED).count();
    assert!(n >= at_least, "{n} escaped copies, not {at_least}: {html}");
}

#[test]
fn the_overview_escapes_names_and_messages() {
    let t = hostile_target();
    let html = targets::overview(vec![t.clone()], 1).into_string();
    // Parent segment, service, probe, section, the last failure's message and the strip's tooltip.
    assert_escaped(&html, 6);
    // The id stays whole in its attribute and in the link's query.
    let id = crate::poller::target_id(Poller::Probe, HOSTILE, HOSTILE, Some(HOSTILE));
    assert!(html.contains(&format!(
        r#"<tr class="fail" data-target="probe/{ESCAPED}/{ESCAPED}/{ESCAPED}">"#
    )));
    let query: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    assert!(html.contains(&format!(r#"<a href="/target?id={query}">details</a>"#)));
    assert!(
        html.contains(r#"<b class="bad">1</b>failing now"#),
        "{html}"
    );
    // The sparkline of the one failed run, marked.
    assert!(html.contains(&format!(
        r#"<svg class="spark" width="180" height="32" viewBox="0 0 180 32" role="img" aria-label="latency of the last 1 runs: max 12.0 ms, 1 failed" data-target="probe/{ESCAPED}/{ESCAPED}/{ESCAPED}" data-points="0.012" data-ok="0""#
    )), "{html}");
    assert_eq!(html.matches(r#"<circle class="fail""#).count(), 1);
}

#[test]
fn the_detail_view_escapes_names_messages_and_exchanges() {
    let t = hostile_target();
    let html = detail::page(&t, None, "https://runbooks.invalid/r.md").into_string();
    // Heading (3), last message, check detail, request URL and body, response body, history
    // section and message.
    assert_escaped(&html, 10);
    assert!(html
        .contains(r#"<p id="last-result">Last result: <span class="bad">FAIL</span> unavailable"#));
    assert!(
        html.contains("Authorization: TD1 &lt;redacted&gt;"),
        "{html}"
    );
    assert!(html
        .contains(r#"<a href="https://runbooks.invalid/r.md#tdpzserviceunavailable">runbook</a>"#));
}

#[test]
fn discovered_names_are_escaped() {
    let inv = vec![(
        HOSTILE.to_string(),
        Coverage {
            covered: vec!["a".into()],
            not_covered: vec![HOSTILE.into(), "plain".into()],
            ignored: vec![],
            refused: 2,
        },
    )];
    let html = discovered::inventory(&inv).into_string();
    assert_escaped(&html, 2);
    assert!(html.contains(&format!(
        r#"<tr class="fail"><td>{ESCAPED}</td><td>1</td><td>2: {ESCAPED}, plain</td><td>0</td><td>2</td></tr>"#
    )));
    assert_eq!(discovered::inventory(&[]).into_string(), "");
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
