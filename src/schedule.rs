//! The scheduler: every probe and poller is a job that fires on its cron schedule.
//!
//! Owns timing only: a deterministic jitter per job (so that many jobs on one schedule start
//! spread over its period, not in the same second), no overlap (a run still going makes the next fire skip, and
//! that is counted), and applying a new plan by diff (unchanged jobs keep running). What a job
//! does is a closure it is given; it knows nothing of TD or Prometheus beyond the [`Metrics`]
//! handle it reports skips and lateness to.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{Metrics, Poller};

/// A cron expression with a seconds field (`sec min hour day-of-month month day-of-week [year]`).
#[derive(Clone)]
pub struct CronSchedule {
    source: String,
    /// Shared by the clones (each job holds one): a parsed schedule is ~0.35 KiB of sets.
    parsed: Arc<cron::Schedule>,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {detail}")]
pub struct CronError {
    expr: String,
    detail: String,
}

impl CronSchedule {
    pub fn parse(expr: &str) -> Result<CronSchedule, CronError> {
        let fields = expr.split_whitespace().count();
        if fields == 5 {
            return Err(CronError {
                expr: expr.into(),
                detail:
                    "it needs a seconds field first, e.g. \"0 */5 * * * *\" for every 5 minutes"
                        .into(),
            });
        }
        let parsed = cron::Schedule::from_str(expr).map_err(|e| CronError {
            expr: expr.into(),
            detail: format!("{e} (6 or 7 fields: sec min hour day month weekday [year])"),
        })?;
        if parsed.upcoming(Utc).next().is_none() {
            return Err(CronError {
                expr: expr.into(),
                detail: "it never fires again".into(),
            });
        }
        Ok(CronSchedule {
            source: expr.to_string(),
            parsed: Arc::new(parsed),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parsed.after(&t).next()
    }

    /// The gap between the next two fire times: the job's nominal period.
    pub fn period(&self) -> Duration {
        let mut it = self.parsed.upcoming(Utc);
        match (it.next(), it.next()) {
            (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
            _ => Duration::from_secs(60),
        }
    }
}

/// FNV-1a with a final mix: a hash that is the same in every process, unlike std's
/// `RandomState`, with its bits well spread (plain FNV is weak for keys that differ little).
pub fn stable_hash(s: &str) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    s.hash(&mut h);
    mix64(h.0)
}

/// The splitmix64 finaliser: a cheap bijection that spreads every input bit over the output.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The deterministic delay of a job after its cron time: a fraction of its period (at most a
/// minute), from a hash of its key. Like Prometheus' scrape offsets, this spreads the jobs of one
/// schedule over the whole period: 5,000 services on `*/30 * * * * *` start ~170 a second, not
/// 10,000 in the same second, and a job never runs past its next cron time.
pub fn jitter(key: &str, period: Duration) -> Duration {
    let spread = period.min(MAX_SPREAD);
    if spread.is_zero() {
        return Duration::ZERO;
    }
    let frac = (stable_hash(key) % 10_000) as f64 / 10_000.0;
    spread.mul_f64(frac)
}

/// The largest jitter: jobs on hourly or daily schedules start within a minute of their time.
pub const MAX_SPREAD: Duration = Duration::from_secs(60);

pub type RunFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One job of a plan.
#[derive(Clone)]
pub struct PlannedJob {
    /// Unique and stable across reloads: `probe/<ps>/<service>/<probe>`.
    pub key: String,
    /// Changes when anything that shapes the job changes; equal fingerprints keep a job running.
    pub fingerprint: u64,
    pub poller: Poller,
    pub parent_segment: String,
    pub service: String,
    pub schedule: CronSchedule,
    pub run: RunFn,
}

struct RunningJob {
    fingerprint: u64,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// Runs jobs; [`Scheduler::apply`] swaps in a new plan.
pub struct Scheduler {
    metrics: Arc<Metrics>,
    jobs: Mutex<HashMap<String, RunningJob>>,
    runs: TaskTracker,
    shutdown: CancellationToken,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub started: usize,
    pub kept: usize,
    pub stopped: usize,
}

impl Scheduler {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Scheduler {
            metrics,
            jobs: Mutex::new(HashMap::new()),
            runs: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Makes `plan` the set of running jobs: starts new and changed jobs, stops the others.
    pub fn apply(&self, plan: Vec<PlannedJob>) -> ApplyStats {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut stats = ApplyStats::default();
        let mut next: HashMap<String, RunningJob> = HashMap::with_capacity(plan.len());
        for job in plan {
            if let Some(running) = jobs.remove(&job.key) {
                if running.fingerprint == job.fingerprint && !running.handle.is_finished() {
                    stats.kept += 1;
                    next.insert(job.key.clone(), running);
                    continue;
                }
                running.cancel.cancel();
            }
            stats.started += 1;
            let cancel = self.shutdown.child_token();
            self.metrics
                .init_schedule(job.poller, &job.parent_segment, &job.service);
            let handle = tokio::spawn(job_loop(
                job.clone(),
                cancel.clone(),
                self.runs.clone(),
                self.metrics.clone(),
            ));
            next.insert(
                job.key,
                RunningJob {
                    fingerprint: job.fingerprint,
                    cancel,
                    handle,
                },
            );
        }
        for (_, old) in jobs.drain() {
            old.cancel.cancel();
            stats.stopped += 1;
        }
        *jobs = next;
        stats
    }

    pub fn job_count(&self) -> usize {
        self.jobs.lock().map(|j| j.len()).unwrap_or(0)
    }

    /// Stops firing and waits up to `grace` for runs in flight; returns whether they all ended.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.runs.close();
        tokio::time::timeout(grace, self.runs.wait()).await.is_ok()
    }

    pub fn runs_in_flight(&self) -> usize {
        self.runs.len()
    }
}

fn instant_for(t: DateTime<Utc>) -> Instant {
    let now_wall = Utc::now();
    let now = Instant::now();
    match (t - now_wall).to_std() {
        Ok(d) => now + d,
        Err(_) => now,
    }
}

/// The cron time to fire next after `last` (or the first one ahead for a new job), and how many fires
/// were missed: when the loop fell more than a period behind (a stalled machine, a suspended VM,
/// a run that blocked its worker), every overdue fire but the latest is skipped and counted, and
/// the latest runs now, late (its lateness is observed).
fn next_fire(
    schedule: &CronSchedule,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    jitter: Duration,
) -> (Option<DateTime<Utc>>, u64) {
    /// After this many missed fires (a day of a 1 s schedule), stop counting one by one.
    const MAX_COUNTED: u64 = 100_000;
    let jitter = chrono::Duration::from_std(jitter).unwrap_or_default();
    let Some(last) = last else {
        // The first fire: the earliest cron time whose jittered fire is still ahead, so that a
        // new job runs within one period.
        return (schedule.next_after(now - jitter), 0);
    };
    let mut next = schedule.next_after(last);
    let mut missed = 0;
    while let Some(n) = next {
        match schedule.next_after(n) {
            Some(after) if after + jitter <= now => {
                missed += 1;
                next = Some(after);
                if missed == MAX_COUNTED {
                    return (schedule.next_after(now), missed);
                }
            }
            _ => break,
        }
    }
    (next, missed)
}

async fn job_loop(
    job: PlannedJob,
    cancel: CancellationToken,
    runs: TaskTracker,
    metrics: Arc<Metrics>,
) {
    let jitter = jitter(&job.key, job.schedule.period());
    let running = Arc::new(AtomicBool::new(false));
    let mut last: Option<DateTime<Utc>> = None;
    loop {
        let (next, missed) = next_fire(&job.schedule, last, Utc::now(), jitter);
        if missed > 0 {
            metrics.schedule_skipped(job.poller, &job.parent_segment, &job.service, missed);
        }
        let Some(next) = next else {
            return;
        };
        last = Some(next);
        let fire_at = instant_for(next) + jitter;
        tokio::select! {
            _ = tokio::time::sleep_until(fire_at) => {}
            _ = cancel.cancelled() => return,
        }
        metrics.observe_lateness(
            job.poller,
            Instant::now().saturating_duration_since(fire_at),
        );
        if running.swap(true, Ordering::AcqRel) {
            metrics.schedule_skipped(job.poller, &job.parent_segment, &job.service, 1);
            continue;
        }
        let flag = running.clone();
        let fut = (job.run)();
        runs.spawn(async move {
            fut.await;
            flag.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
