//! The scheduler: cron parsing, jitter, firing, skips, plan changes and shutdown.

use super::*;
use crate::metrics::Metrics;
use std::sync::atomic::AtomicUsize;

/// A job on `* * * * * *` that counts its runs, each taking `takes`.
fn counting_job(key: &str, fingerprint: u64, takes: Duration) -> (PlannedJob, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let job: PlannedJob = PlannedJob {
        key: key.into(),
        fingerprint,
        poller: Poller::Probe,
        parent_segment: "1".into(),
        service: key.into(),
        schedule: CronSchedule::parse("* * * * * *").unwrap(),
        run: Arc::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(takes).await;
            })
        }),
    };
    (job, runs)
}

fn skipped(metrics: &Metrics, service: &str) -> u64 {
    let text = String::from_utf8(metrics.render()).unwrap();
    let prefix = format!(
        "td_pz_schedule_skipped_total{{parent_segment=\"1\",poller=\"probe\",pz_service=\"{service}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn jobs_fire_each_second_and_a_long_run_skips_its_next_fires() {
    let recorder = Arc::new(Recorder::new(10));
    let metrics = recorder.metrics.clone();
    let sched = Scheduler::new(recorder);
    let (quick, quick_runs) = counting_job("quick", 1, Duration::ZERO);
    let (slow, slow_runs) = counting_job("slow", 1, Duration::from_millis(2500));
    let stats = sched.apply(vec![quick, slow]);
    assert_eq!((stats.started, stats.kept, stats.stopped), (2, 0, 0));
    assert_eq!(sched.job_count(), 2);
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let q = quick_runs.load(Ordering::SeqCst);
    assert!((3..=5).contains(&q), "quick ran {q} times in 4.2 s");
    // The slow job's first run lasts 2.5 s: the fires during it are skipped, and counted.
    let s = slow_runs.load(Ordering::SeqCst);
    assert!((1..=2).contains(&s), "slow ran {s} times");
    assert!(
        skipped(&metrics, "slow") >= 2,
        "{}",
        skipped(&metrics, "slow")
    );
    assert_eq!(skipped(&metrics, "quick"), 0);
    assert!(sched.shutdown(Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_run_that_panics_does_not_stop_its_job() {
    let sched = Scheduler::new(Arc::new(Recorder::new(10)));
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let (mut job, _) = counting_job("panics", 1, Duration::ZERO);
    job.run = Arc::new(move || {
        let counter = counter.clone();
        Box::pin(async move {
            counter.fetch_add(1, Ordering::SeqCst);
            panic!("a bug in a poller");
        })
    });
    sched.apply(vec![job]);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let n = runs.load(Ordering::SeqCst);
    assert!(n >= 2, "ran {n} times: the first panic stopped the job");
    assert!(sched.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_new_plan_keeps_unchanged_jobs_and_stops_the_others() {
    let sched = Scheduler::new(Arc::new(Recorder::new(10)));
    let (a, _) = counting_job("a", 1, Duration::ZERO);
    let (b, b_runs) = counting_job("b", 1, Duration::ZERO);
    let (c, _) = counting_job("c", 1, Duration::ZERO);
    sched.apply(vec![a.clone(), b, c]);
    let (a_same, _) = counting_job("a", 1, Duration::ZERO);
    let (c_changed, c_runs) = counting_job("c", 2, Duration::ZERO);
    let (d, d_runs) = counting_job("d", 1, Duration::ZERO);
    let stats = sched.apply(vec![a_same, c_changed, d]);
    assert_eq!((stats.started, stats.kept, stats.stopped), (2, 1, 1));
    assert_eq!(sched.job_count(), 3);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        b_runs.load(Ordering::SeqCst),
        0,
        "a stopped job never fires"
    );
    assert!(
        c_runs.load(Ordering::SeqCst) >= 1,
        "the changed job runs anew"
    );
    assert!(d_runs.load(Ordering::SeqCst) >= 1, "the new job runs");
    // Shut down: nothing fires after.
    assert!(sched.shutdown(Duration::from_secs(1)).await);
    let d_then = d_runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(d_runs.load(Ordering::SeqCst), d_then);
}

#[test]
fn five_field_cron_gets_a_hint() {
    let e = CronSchedule::parse("*/5 * * * *").unwrap_err().to_string();
    assert!(e.contains("seconds field"), "{e}");
    assert!(CronSchedule::parse("bogus").is_err());
    assert!(CronSchedule::parse("*/30 * * * * *").is_ok());
}

#[test]
fn period_of_common_schedules() {
    assert_eq!(
        CronSchedule::parse("*/30 * * * * *").unwrap().period(),
        Duration::from_secs(30)
    );
    assert_eq!(
        CronSchedule::parse("0 * * * * *").unwrap().period(),
        Duration::from_secs(60)
    );
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn on_time_loops_miss_nothing() {
    let every5 = CronSchedule::parse("*/5 * * * * *").unwrap();
    let j = Duration::from_millis(300);
    // A new job: the next cron time after now.
    let (n, missed) = next_fire(&every5, None, at("2026-01-01T00:00:01Z"), j);
    assert_eq!((n, missed), (Some(at("2026-01-01T00:00:05Z")), 0));
    // With a 4 s jitter, 00:00 fires at 00:04, still ahead: a new job runs within a period.
    let (n, _) = next_fire(
        &every5,
        None,
        at("2026-01-01T00:00:01Z"),
        Duration::from_secs(4),
    );
    assert_eq!(n, Some(at("2026-01-01T00:00:00Z")));
    // Woke up a little late for 00:05 (fired at 00:05.3 + 0.2 s): 00:10 is next, none missed.
    let (n, missed) = next_fire(
        &every5,
        Some(at("2026-01-01T00:00:05Z")),
        at("2026-01-01T00:00:05.5Z"),
        j,
    );
    assert_eq!((n, missed), (Some(at("2026-01-01T00:00:10Z")), 0));
    // Late by less than a period: 00:10 is overdue but runs (late), nothing counted.
    let (n, missed) = next_fire(
        &every5,
        Some(at("2026-01-01T00:00:05Z")),
        at("2026-01-01T00:00:12Z"),
        j,
    );
    assert_eq!((n, missed), (Some(at("2026-01-01T00:00:10Z")), 0));
}

#[test]
fn a_stalled_loop_counts_the_fires_it_missed() {
    let every5 = CronSchedule::parse("*/5 * * * * *").unwrap();
    let j = Duration::from_millis(300);
    // Last fired 00:05; now 00:31: 00:10 .. 00:25 missed, 00:30 (+0.3 s) runs now, late.
    let (n, missed) = next_fire(
        &every5,
        Some(at("2026-01-01T00:00:05Z")),
        at("2026-01-01T00:00:31Z"),
        j,
    );
    assert_eq!((n, missed), (Some(at("2026-01-01T00:00:30Z")), 4));
    // Now 00:30.2, before 00:30's jittered fire: 00:25 is the late one, 3 missed.
    let (n, missed) = next_fire(
        &every5,
        Some(at("2026-01-01T00:00:05Z")),
        at("2026-01-01T00:00:30.2Z"),
        j,
    );
    assert_eq!((n, missed), (Some(at("2026-01-01T00:00:25Z")), 3));
    // A suspended machine: counting stops at the cap and the loop resumes from now.
    let every1 = CronSchedule::parse("* * * * * *").unwrap();
    let (n, missed) = next_fire(
        &every1,
        Some(at("2026-01-01T00:00:00Z")),
        at("2026-01-03T00:00:00Z"),
        Duration::ZERO,
    );
    assert_eq!((n, missed), (Some(at("2026-01-03T00:00:01Z")), 100_000));
}

#[test]
fn jitter_is_deterministic_and_bounded() {
    let p = Duration::from_secs(30);
    assert_eq!(jitter("probe/1/a/vip", p), jitter("probe/1/a/vip", p));
    assert!(jitter("probe/1/a/vip", p) < p);
    let hour = Duration::from_secs(3600);
    assert!((0..100).all(|i| jitter(&format!("k{i}"), hour) < MAX_SPREAD));
    let second = Duration::from_secs(1);
    let one_second: Vec<Duration> = (0..1000)
        .map(|i| jitter(&format!("probe/1/s{i}/p"), second))
        .collect();
    assert!(one_second.iter().all(|j| *j < second));
    // Spread over the whole period: each tenth of it gets about a tenth of the jobs.
    for tenth in 0..10 {
        let n = one_second
            .iter()
            .filter(|j| j.as_millis() / 100 == tenth)
            .count();
        assert!((60..=140).contains(&n), "{n} jobs in tenth {tenth}");
    }
    let distinct: std::collections::HashSet<_> = (0..100)
        .map(|i| jitter(&format!("probe/1/s{i}/p"), p))
        .collect();
    assert!(
        distinct.len() > 90,
        "jitter spreads jobs: {}",
        distinct.len()
    );
}
