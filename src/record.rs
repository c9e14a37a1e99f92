//! The recorder: the one writer of the metrics, the history and the failure log lines.
//!
//! Pollers return outcomes and the plan owner reports what it planned; the recorder turns each of
//! those domain events into series, history records and log lines. Nothing else in the daemon
//! writes a metric or a history record, so what a result looks like on `/metrics`, on the status
//! page and in the logs is decided here, once, for the daemon and for the `probe` subcommand alike.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::history::History;
use crate::metrics::{BadRequest, Metrics};
use crate::outcome::{Attempt, Exchange, Observed, PollOutcome, ProbeOutcome};
use crate::plan::Planned;
use crate::poller::Poller;

pub struct Recorder {
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
}

impl Recorder {
    pub fn new(history_limit: usize) -> Self {
        Recorder {
            metrics: Arc::new(Metrics::new()),
            history: Arc::new(History::new(history_limit)),
        }
    }

    /// One probe run.
    pub fn probe(&self, ps: &str, svc: &str, probe: &str, out: &ProbeOutcome, ex: Exchange) {
        self.attempts(ps, svc, &out.attempts);
        self.metrics.record_probe(ps, svc, probe, out);
        let took = ex.timings.total;
        self.metrics
            .poll_done(ps, svc, Poller::Probe, took, out.reason.map_or(Ok(()), Err));
        if let Some(reason) = out.reason {
            tracing::warn!(
                pz_service = %svc,
                parent_segment = %ps,
                probe = %probe,
                reason = reason.as_label(),
                status = out.status.unwrap_or(0),
                td_code = out.td_code.unwrap_or(0),
                latency_ms = took.as_millis() as u64,
                detail = %out.message,
                "probe failed"
            );
        }
        tracing::debug!(
            pz_service = %svc,
            probe = %probe,
            request = %format!("{} {}", ex.request.method, ex.request.url),
            request_headers = ?ex.request.headers,
            response_status = out.status.unwrap_or(0),
            response_bytes = ex.response.as_ref().map_or(0, |r| r.body_bytes),
            section = out.section.as_deref().unwrap_or(""),
            latency_ms = took.as_millis() as u64,
            "probe done"
        );
        self.history.record_probe(ps, svc, probe, out, ex);
    }

    /// One metrics, logs or discovery poll (`svc` is "" for discovery).
    pub fn poll(&self, poller: Poller, ps: &str, svc: &str, out: &PollOutcome, ex: Exchange) {
        self.attempts(ps, svc, &out.attempts);
        self.observed(ps, svc, &out.observed);
        let result = out.reason.map_or(Ok(()), Err);
        self.metrics
            .poll_done(ps, svc, poller, out.duration, result);
        if let Some(reason) = out.reason {
            tracing::warn!(
                pz_service = %svc,
                parent_segment = %ps,
                poller = poller.as_label(),
                reason = reason.as_label(),
                status = out.status.unwrap_or(0),
                latency_ms = out.duration.as_millis() as u64,
                detail = %out.message,
                "poll failed"
            );
        } else {
            tracing::debug!(pz_service = %svc, poller = poller.as_label(), detail = %out.message, "poll done");
        }
        self.history.record_poll(poller, ps, svc, out, Some(ex));
    }

    fn attempts(&self, ps: &str, svc: &str, attempts: &[Attempt]) {
        for a in attempts {
            self.metrics.api_request(ps, svc, a.endpoint, a.status);
        }
    }

    fn observed(&self, ps: &str, svc: &str, observed: &Observed) {
        let m = &self.metrics;
        match observed {
            Observed::Nothing => {}
            Observed::Metrics(sm) => {
                m.set_error_rate(ps, svc, sm.error_rate);
                m.set_service_fields(ps, svc, &sm.fields);
                m.set_service_latency(ps, svc, &sm.latencies);
            }
            // What arrived before a failure is still counted: the next run's overlap would bring
            // it again, and counting is idempotent.
            Observed::Logs(seen) => {
                let ingest = &seen.ingest;
                for (section, n) in &ingest.by_section {
                    m.log_entries(ps, svc, section, *n);
                }
                if ingest.overflow > 0 {
                    m.log_overflow(ps, svc, ingest.overflow);
                }
                for _ in 0..ingest.errors {
                    m.log_error(ps, svc);
                }
                m.log_processing(ps, svc, &ingest.processing);
                if let Some(n) = seen.newest {
                    m.log_last_entry(ps, svc, n);
                }
                m.set_section_shares(ps, svc, &seen.shares);
                self.history.record_shares(ps, svc, &seen.shares);
            }
        }
    }

    /// A plan was applied: creates the series and history entries of its targets at zero and
    /// drops those of targets that left it.
    pub fn planned(&self, plan: &Planned) {
        let (m, h) = (&self.metrics, &self.history);
        let mut probes_of: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
        for (ps, svc, probe) in &plan.probes {
            m.init_probe(ps, svc, probe);
            h.declare(Poller::Probe, ps, svc, Some(probe));
            probes_of
                .entry((ps, svc))
                .or_default()
                .insert(probe.clone());
        }
        for (ps, svc) in &plan.services {
            if !svc.is_empty() {
                let keep = probes_of.remove(&(ps, svc)).unwrap_or_default();
                m.retain_probes(ps, svc, &keep);
            }
        }
        for (ps, svc) in &plan.managed {
            for poller in [Poller::Metrics, Poller::Logs] {
                h.declare(poller, ps, svc, None);
            }
            m.init_logs(ps, svc);
        }
        for ps in &plan.discovering {
            h.declare(Poller::Discovery, ps, "", None);
        }
        let discovering: Vec<&str> = plan.discovering.iter().map(String::as_str).collect();
        m.inventory.retain(&discovering);
        for (ps, svc) in m.services() {
            if !plan.services.contains(&(ps.clone(), svc.clone())) {
                m.remove_service(&ps, &svc);
            }
        }
        let ids = plan.target_ids();
        h.retain(&|id| ids.contains(id));
    }

    /// What discovery found in a parent segment: covered, not covered, ignored, refused.
    pub fn inventory(&self, ps: &str, counts: [usize; 4]) {
        self.metrics.inventory.set(ps, counts);
    }

    pub fn config_loaded(&self, ok: bool) {
        self.metrics.config_loaded(ok);
    }

    pub fn schedule_started(&self, poller: Poller, ps: &str, svc: &str) {
        self.metrics.init_schedule(poller, ps, svc);
    }

    pub fn schedule_skipped(&self, poller: Poller, ps: &str, svc: &str, n: u64) {
        self.metrics.schedule_skipped(poller, ps, svc, n);
    }

    pub fn lateness(&self, poller: Poller, late: Duration) {
        self.metrics.observe_lateness(poller, late);
    }

    pub fn scheduler_state(&self, jobs: usize, runs_in_flight: usize) {
        self.metrics.set_scheduler_state(jobs, runs_in_flight);
    }

    pub fn bad_request(&self, why: BadRequest) {
        self.metrics.bad_request(why);
    }
}
