use super::*;

fn outcome(ok: bool) -> ProbeOutcome {
    ProbeOutcome {
        reason: (!ok).then_some(Reason::Timeout),
        ..ProbeOutcome::at(SystemTime::now())
    }
}

#[test]
fn successful_exchanges_keep_a_shorter_body() {
    let h = History::new(10);
    h.declare(Poller::Probe, "1", "a", Some("vip"));
    let big = |body: &str| Exchange {
        response: Some(crate::outcome::ResponseRecord {
            status: 200,
            body: body.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // 'é' is two bytes: the cut lands on a character boundary.
    let body = format!("x{}", "é".repeat(3000));
    h.record_probe("1", "a", "vip", &outcome(false), big(&body));
    h.record_probe("1", "a", "vip", &outcome(true), big(&body));
    let t = h.get("probe/1/a/vip").unwrap();
    let ok = t.last_exchange.unwrap().response.unwrap();
    assert!(ok.body.len() <= SUCCESS_EXCERPT && ok.body.len() > SUCCESS_EXCERPT - 2);
    assert!(ok.truncated);
    let failed = t.last_failed_exchange.unwrap().response.unwrap();
    assert_eq!(failed.body, body, "a failure keeps its whole excerpt");
}

#[test]
fn records_over_all_targets_are_capped() {
    let h = History::new(100);
    h.set_max_records(1_000);
    for i in 0..50 {
        h.declare(Poller::Probe, "1", &format!("s{i}"), Some("vip"));
    }
    for _ in 0..100 {
        for i in 0..50 {
            h.record_probe(
                "1",
                &format!("s{i}"),
                "vip",
                &outcome(true),
                Exchange::default(),
            );
        }
    }
    let kept: Vec<usize> = h.snapshot().iter().map(|t| t.recent.len()).collect();
    assert!(
        kept.iter().all(|n| *n == 20),
        "1,000 / 50 targets: {kept:?}"
    );
    // Few targets: the per-target limit applies.
    let h = History::new(100);
    h.declare(Poller::Probe, "1", "only", Some("vip"));
    for _ in 0..150 {
        h.record_probe("1", "only", "vip", &outcome(true), Exchange::default());
    }
    assert_eq!(h.snapshot()[0].recent.len(), 100);
}

#[test]
fn a_rare_failure_survives_500_later_results() {
    let h = History::new(100);
    h.declare(Poller::Probe, "1", "a", Some("always_failing"));
    h.declare(Poller::Probe, "1", "a", Some("failed_once"));
    h.record_probe(
        "1",
        "a",
        "failed_once",
        &outcome(false),
        Exchange::default(),
    );
    for _ in 0..500 {
        h.record_probe(
            "1",
            "a",
            "always_failing",
            &outcome(false),
            Exchange::default(),
        );
        h.record_probe("1", "a", "failed_once", &outcome(true), Exchange::default());
    }
    let once = h.get("probe/1/a/failed_once").unwrap();
    assert_eq!(once.recent.len(), 100);
    assert!(once.recent.iter().all(|r| r.ok));
    let f = once.last_failure.expect("the single failure is kept");
    assert_eq!(f.reason, Some("timeout"));
    assert_eq!(once.failures, 1);
    assert_eq!(once.runs, 501);
    assert!(once.last_failed_exchange.is_some());
    let always = h.get("probe/1/a/always_failing").unwrap();
    assert_eq!(always.failures, 500);
}

#[test]
fn sections_count_probe_results_and_keep_the_last_shares() {
    let h = History::new(10);
    for probe in ["vip", "new"] {
        h.declare(Poller::Probe, "1", "a", Some(probe));
    }
    h.declare(Poller::Logs, "1", "a", None);
    h.declare(Poller::Discovery, "1", "", None);
    let landed = |section: Option<&str>| ProbeOutcome {
        section: section.map(str::to_string),
        ..outcome(section.is_some())
    };
    for (probe, section) in [
        ("vip", Some("premium")),
        ("vip", Some("premium")),
        ("new", Some("default")),
        ("new", None),
    ] {
        h.record_probe("1", "a", probe, &landed(section), Exchange::default());
    }
    h.record_shares(
        "1",
        "a",
        &[("default".into(), 0.5), ("premium".into(), 0.5)],
    );
    h.record_shares(
        "1",
        "a",
        &[("default".into(), 0.75), ("premium".into(), 0.25)],
    );
    let s = h.sections();
    assert_eq!(s.len(), 1, "discovery has no sections: {s:?}");
    // As `/status.json` shows it.
    assert_eq!(
        serde_json::to_value(&s[0]).unwrap(),
        serde_json::json!({
            "parent_segment": "1",
            "service": "a",
            "shares": [
                {"section": "default", "share": 0.75},
                {"section": "premium", "share": 0.25},
            ],
            "probe_sections": [
                {"section": "default", "count": 1},
                {"section": "premium", "count": 2},
            ],
        })
    );
    // The logs poller leaves the plan: its shares go with it.
    h.retain(&|id| id.starts_with("probe/"));
    assert!(h.sections()[0].shares.is_empty());
}
