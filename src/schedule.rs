//! The scheduler: every probe and poller is a job that fires on its cron schedule.
//!
//! Owns timing only: a deterministic jitter per job (so that many jobs on one schedule start
//! spread over its period, not in the same second), no overlap (a run still going makes the next fire skip, and
//! that is counted), and applying a new plan by diff (unchanged jobs keep running). What a job
//! does is a closure it is given; it knows nothing of TD or Prometheus beyond the [`Metrics`]
//! handle it reports skips and lateness to.
//!
//! One task drives every job: a queue of next fire times, ordered, which the driver sleeps on and
//! pops as they fall due, spawning each run as its own task. A job waiting for its time is an
//! entry in a map and in the queue, not a task with its own timer and cancellation token, which
//! costs several times more per job (figures: docs/performance.md).

use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hash::stable_hash;
use crate::poller::Poller;
use crate::record::Recorder;

/// A cron expression with a seconds field (`sec min hour day-of-month month day-of-week [year]`).
#[derive(Clone)]
pub struct CronSchedule {
    source: String,
    /// Shared by the clones (each job holds one): a parsed schedule is a set per field.
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

/// One job of a plan: its identity, schedule and what a fire runs (`R`: the scheduler's
/// [`RunFn`], or the plan's description of the work before the runner turns it into one).
#[derive(Clone, Debug)]
pub struct PlannedJob<R = RunFn> {
    /// Unique and stable across reloads: `probe/<ps>/<service>/<probe>`.
    pub key: String,
    /// Changes when anything that shapes the job changes; equal fingerprints keep a job running.
    pub fingerprint: u64,
    pub poller: Poller,
    pub parent_segment: String,
    pub service: String,
    pub schedule: CronSchedule,
    pub run: R,
}

impl<R> PlannedJob<R> {
    /// The same job with what a fire runs turned into `f(run)`.
    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> PlannedJob<S> {
        PlannedJob {
            key: self.key,
            fingerprint: self.fingerprint,
            poller: self.poller,
            parent_segment: self.parent_segment,
            service: self.service,
            schedule: self.schedule,
            run: f(self.run),
        }
    }
}

/// A job in the scheduler: its plan, and when it fires next.
struct Entry {
    job: PlannedJob,
    jitter: Duration,
    /// The cron time of the latest fire (before jitter); `None` before the first.
    last: Option<DateTime<Utc>>,
    /// The queue item that stands for this entry; older items of the same key are stale.
    seq: u64,
    /// The schedule has no fire left: the entry waits for a new plan.
    done: bool,
    /// A run is in flight: a fire now is skipped.
    running: Arc<AtomicBool>,
}

/// The jobs and their queue of fire times.
#[derive(Default)]
struct Jobs {
    map: HashMap<String, Entry>,
    /// (fire time, seq): the smallest first. Items whose seq is no longer their entry's are stale.
    queue: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    next_seq: u64,
}

impl Jobs {
    /// Computes the entry's next fire after its last one and queues it, counting missed fires.
    fn queue_next(&mut self, key: &str, recorder: &Recorder) {
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        let (next, missed) = next_fire(&e.job.schedule, e.last, Utc::now(), e.jitter);
        if missed > 0 {
            recorder.schedule_skipped(e.job.poller, &e.job.parent_segment, &e.job.service, missed);
        }
        let Some(next) = next else {
            e.done = true;
            return;
        };
        e.last = Some(next);
        self.next_seq += 1;
        e.seq = self.next_seq;
        let at = instant_for(next) + e.jitter;
        self.queue
            .push(Reverse((at, self.next_seq, Arc::from(key))));
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Pops the fires due by `now`; stale items are dropped.
    fn pop_due(&mut self, now: Instant) -> Vec<(Arc<str>, Instant)> {
        let mut due = Vec::new();
        while self.next_due().is_some_and(|at| at <= now) {
            let Some(Reverse((at, seq, key))) = self.queue.pop() else {
                break;
            };
            if self.map.get(&*key).is_some_and(|e| e.seq == seq) {
                due.push((key, at));
            }
        }
        due
    }

    /// Rebuilds the queue when stale items outnumber live ones (after reloads).
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            let items = std::mem::take(&mut self.queue).into_vec();
            self.queue = items
                .into_iter()
                .filter(|Reverse((_, seq, key))| map.get(&**key).is_some_and(|e| e.seq == *seq))
                .collect();
        }
    }
}

/// Runs jobs; [`Scheduler::apply`] swaps in a new plan.
pub struct Scheduler {
    recorder: Arc<Recorder>,
    jobs: Arc<Mutex<Jobs>>,
    /// Wakes the driver when the plan changed (its earliest fire may be earlier).
    changed: Arc<Notify>,
    /// The driver task is spawned by the first plan (from within the runtime).
    driver: std::sync::Once,
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
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Scheduler {
            recorder,
            jobs: Arc::default(),
            changed: Arc::new(Notify::new()),
            driver: std::sync::Once::new(),
            runs: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Makes `plan` the set of running jobs: starts new and changed jobs, stops the others.
    /// Runs in flight are not interrupted. Call from within the runtime.
    pub fn apply(&self, plan: Vec<PlannedJob>) -> ApplyStats {
        let mut stats = ApplyStats::default();
        {
            let mut jobs = self.jobs.lock();
            let mut old = std::mem::take(&mut jobs.map);
            for job in plan {
                if let Some(entry) = old.remove(&job.key) {
                    if entry.job.fingerprint == job.fingerprint && !entry.done {
                        stats.kept += 1;
                        jobs.map.insert(job.key.clone(), entry);
                        continue;
                    }
                }
                stats.started += 1;
                self.recorder
                    .schedule_started(job.poller, &job.parent_segment, &job.service);
                let key = job.key.clone();
                let jitter = jitter(&job.key, job.schedule.period());
                jobs.map.insert(
                    key.clone(),
                    Entry {
                        job,
                        jitter,
                        last: None,
                        seq: 0,
                        done: false,
                        running: Arc::new(AtomicBool::new(false)),
                    },
                );
                jobs.queue_next(&key, &self.recorder);
            }
            stats.stopped = old.len();
            jobs.compact();
        }
        self.driver.call_once(|| {
            tokio::spawn(drive(
                self.jobs.clone(),
                self.changed.clone(),
                self.shutdown.clone(),
                self.runs.clone(),
                self.recorder.clone(),
            ));
        });
        self.changed.notify_one();
        stats
    }

    pub fn job_count(&self) -> usize {
        self.jobs.lock().map.len()
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

/// Clears a job's "running" flag when its run ends, even by a panic: a run that panicked with the
/// flag set would have its job skip every fire after.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The one task that fires every job: sleeps until the earliest fire (or a new plan), then
/// starts each due job's run, unless its previous run is still going (a skip, counted).
async fn drive(
    jobs: Arc<Mutex<Jobs>>,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
    runs: TaskTracker,
    recorder: Arc<Recorder>,
) {
    loop {
        let next = jobs.lock().next_due();
        // With nothing queued, a plan change is the only thing to wait for.
        let until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = changed.notified() => continue,
            _ = shutdown.cancelled() => return,
        }
        let now = Instant::now();
        let mut jobs = jobs.lock();
        for (key, at) in jobs.pop_due(now) {
            let Some(e) = jobs.map.get(&*key) else {
                continue;
            };
            recorder.lateness(e.job.poller, now.saturating_duration_since(at));
            if e.running.swap(true, Ordering::AcqRel) {
                recorder.schedule_skipped(e.job.poller, &e.job.parent_segment, &e.job.service, 1);
            } else {
                let done = ClearOnDrop(e.running.clone());
                let fut = (e.job.run)();
                runs.spawn(async move {
                    let _done = done;
                    fut.await;
                });
            }
            jobs.queue_next(&key, &recorder);
        }
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

#[cfg(test)]
mod tests;
