//! Unit tests of [`super::Metrics`]: what each record leaves in the exposition.

use super::*;

fn text(m: &Metrics) -> String {
    String::from_utf8(m.render()).unwrap()
}

#[test]
fn gzip_render_is_the_same_text() {
    let m = Metrics::new();
    for i in 0..1000 {
        let svc = format!("svc_{i}");
        m.init_probe("1", &svc, "vip");
        m.init_schedule(Poller::Logs, "1", &svc);
        m.set_service_fields("1", &svc, &[("a\"b".into(), 1.5)]);
    }
    let own = |t: &str| {
        t.lines()
            .filter(|l| !l.contains("process_"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let plain = text(&m);
    let mut unzipped = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&m.render_gzip()[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert!(
        plain.len() > 4 * store::FLUSH_AT,
        "several flushes: {}",
        plain.len()
    );
    assert_eq!(own(&unzipped), own(&plain));
}

#[test]
fn vanished_fields_leave_no_series() {
    let m = Metrics::new();
    m.set_service_fields("1", "s", &[("a.b".into(), 1.0), ("c".into(), 2.0)]);
    assert!(text(&m).contains("field=\"a.b\""));
    m.set_service_fields("1", "s", &[("c".into(), 3.0)]);
    let t = text(&m);
    assert!(!t.contains("field=\"a.b\""), "{t}");
    assert!(t.contains("td_pz_service_metric{field=\"c\",parent_segment=\"1\",pz_service=\"s\"} 3"));
}

#[test]
fn a_probe_starts_at_zero_and_counts_its_failures_in_a_row() {
    let m = Metrics::new();
    m.init_probe("1", "s", "vip");
    m.init_schedule(Poller::Probe, "1", "s");
    let t = text(&m);
    let l = "{parent_segment=\"1\",probe=\"vip\",pz_service=\"s\"}";
    for zero in [
        "td_pz_probes_total",
        "td_pz_probe_successes_total",
        "td_pz_probe_duration_seconds_count",
    ] {
        assert!(t.contains(&format!("{zero}{l} 0")), "{zero}: {t}");
    }
    assert!(t.contains(",pz_service=\"s\",le=\"0.1\"} 0"), "{t}");
    assert!(!t.contains("td_pz_probe_failures_total"), "{t}");
    assert!(!t.contains("td_pz_polls_total"), "the probe poller: {t}");

    let run = |reason: Option<Reason>| {
        let out = ProbeOutcome {
            reason,
            ..ProbeOutcome::at(std::time::SystemTime::now())
        };
        m.record_probe("1", "s", "vip", &out);
    };
    let streak = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("td_pz_probe_consecutive_failures"))
            .map(str::to_string)
    };
    run(Some(Reason::Unavailable));
    run(Some(Reason::Unauthorized));
    let t = text(&m);
    let want = "td_pz_probe_consecutive_failures{parent_segment=\"1\",probe=\"vip\",\
                pz_service=\"s\",reason=\"unauthorized\"} 2";
    assert_eq!(streak(&t).as_deref(), Some(want));
    assert!(t.contains("reason=\"unavailable\"} 1"), "{t}");
    run(None);
    let t = text(&m);
    assert_eq!(streak(&t), None, "a pass ends the streak");
    assert!(
        t.contains(&format!("td_pz_probe_successes_total{l} 1")),
        "{t}"
    );
    assert!(t.contains(&format!("td_pz_probes_total{l} 3")), "{t}");
}

#[test]
fn pollers_count_polls_and_failures_in_a_row() {
    let m = Metrics::new();
    m.init_schedule(Poller::Logs, "1", "s");
    let t = text(&m);
    assert!(
        t.contains("td_pz_polls_total{parent_segment=\"1\",poller=\"logs\",pz_service=\"s\"} 0")
    );
    assert!(!t.contains("td_pz_poll_failures_total"), "{t}");
    let took = Duration::from_millis(5);
    for _ in 0..3 {
        m.poll_done("1", "s", Poller::Logs, took, Err(Reason::NotFound));
    }
    let t = text(&m);
    assert!(t.contains("td_pz_poll_consecutive_failures{parent_segment=\"1\",poller=\"logs\",pz_service=\"s\",reason=\"not_found\"} 3"), "{t}");
    m.poll_done("1", "s", Poller::Logs, took, Ok(()));
    let t = text(&m);
    assert!(!t.contains("td_pz_poll_consecutive_failures"), "{t}");
    assert!(
        t.contains("td_pz_polls_total{parent_segment=\"1\",poller=\"logs\",pz_service=\"s\"} 4")
    );
    m.poll_done("1", "s", Poller::Probe, took, Ok(()));
    let t = text(&m);
    assert!(
        !t.contains("td_pz_polls_total{parent_segment=\"1\",poller=\"probe\""),
        "{t}"
    );
    assert!(t.contains(
        "td_pz_poll_last_success_timestamp_seconds{parent_segment=\"1\",poller=\"probe\""
    ));
}

#[test]
fn slow_log_entries_are_those_over_tds_p95() {
    let m = Metrics::new();
    m.init_logs("1", "s");
    let ms = Duration::from_millis;
    m.log_processing("1", "s", &[ms(20), ms(100), ms(101), ms(900)]);
    let t = text(&m);
    assert!(
        t.contains("td_pz_log_slow_entries_total{parent_segment=\"1\",pz_service=\"s\"} 2"),
        "{t}"
    );
    assert!(
        !t.contains("td_pz_sections_overflow_total"),
        "created on first use: {t}"
    );
}

#[test]
fn remove_service_drops_everything_of_it() {
    let m = Metrics::new();
    m.init_probe("1", "gone", "vip");
    m.init_schedule(Poller::Probe, "1", "gone");
    m.set_service_fields("1", "gone", &[("x".into(), 1.0)]);
    m.log_entries("1", "gone", "premium", 3);
    m.api_request("1", "gone", Endpoint::Logs, Some(200));
    m.init_probe("1", "kept", "vip");
    m.remove_service("1", "gone");
    let t = text(&m);
    assert!(!t.contains("pz_service=\"gone\""), "{t}");
    assert!(t.contains("pz_service=\"kept\""));
}
