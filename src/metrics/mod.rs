//! The metrics registry: one struct owns every metric of the contract.
//!
//! Call sites record domain events through its methods (`record_probe`, `poll_done`,
//! `api_request`, ...) and never spell a metric name or a label value. The per-service series
//! live in a compact [`store`] written straight to the text format; a service that leaves the
//! configuration, a field that vanishes from a response or a section that falls out of the
//! window leaves no stale series. The exporter's own few series (scheduler, configuration,
//! process, HTTP) use the `prometheus` crate's registry. Every family's name, type, help and
//! labels come from the [`catalog`].

pub mod catalog;
mod families;
mod inventory;
mod labels;
mod store;
mod text;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use catalog::Family;
use store::{Store, Streak, PROBE_BUCKETS, SLOW_ENTRY_SECONDS};

use crate::outcome::{unix_now, ProbeOutcome};
use crate::reason::Reason;

pub use labels::BadRequest;

use crate::poller::Poller;
use crate::td::Endpoint;

const POLL_BUCKETS: &[f64] = &[0.01, 0.05, 0.25, 1.0, 5.0, 30.0];
const LATENESS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

pub struct Metrics {
    registry: Registry,
    services: Store,
    /// The size of the last render, to allocate the next one at once.
    last_render: AtomicUsize,

    poll_duration: HistogramVec,
    lateness: HistogramVec,
    reload_ok: Gauge,
    reload_ts: Gauge,
    jobs: Gauge,
    runs_in_flight: Gauge,
    bad_requests: IntCounterVec,
    pub inventory: inventory::Inventory,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let histogram = |f: Family, buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(f.name, f.help).buckets(buckets.to_vec()),
                f.labels,
            )
            .expect("valid metric");
            r.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let gauge = |f: Family| {
            let g = Gauge::new(f.name, f.help).expect("valid metric");
            r.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let m = Metrics {
            poll_duration: histogram(catalog::POLL_DURATION, POLL_BUCKETS),
            lateness: histogram(catalog::SCHEDULER_LATENESS, LATENESS_BUCKETS),
            reload_ok: gauge(catalog::CONFIG_RELOAD_OK),
            reload_ts: gauge(catalog::CONFIG_RELOAD_TIME),
            jobs: gauge(catalog::SCHEDULER_JOBS),
            runs_in_flight: gauge(catalog::SCHEDULER_RUNS_IN_FLIGHT),
            bad_requests: {
                let f = catalog::BAD_REQUESTS;
                let c =
                    IntCounterVec::new(Opts::new(f.name, f.help), f.labels).expect("valid metric");
                r.register(Box::new(c.clone())).expect("unique metric");
                c
            },
            inventory: inventory::Inventory::register(&r),
            services: Store::default(),
            last_render: AtomicUsize::new(0),
            registry: r.clone(),
        };
        let f = catalog::BUILD_INFO;
        let build = GaugeVec::new(Opts::new(f.name, f.help), f.labels).expect("valid metric");
        r.register(Box::new(build.clone())).expect("unique metric");
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("TD_PZ_REVISION").unwrap_or("unknown"),
            ])
            .set(1.0);
        for why in [
            BadRequest::Method,
            BadRequest::NotFound,
            BadRequest::Unauthorized,
        ] {
            m.bad_requests.with_label_values(&[why.as_label()]);
        }
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = m.registry.register(Box::new(pc));
        }
        m
    }

    /// The text exposition format of everything: the exporter's own families, then the
    /// per-service ones.
    pub fn render(&self) -> Vec<u8> {
        let hint = self.last_render.load(Ordering::Relaxed);
        let mut buf = Vec::with_capacity((hint + hint / 16).max(16 * 1024));
        self.encode_own(&mut buf);
        self.services.render(&mut buf, &mut |_| {});
        self.last_render.store(buf.len(), Ordering::Relaxed);
        buf
    }

    /// The same text, gzip-compressed as it is written: the whole text never exists at once,
    /// so a scrape of thousands of services costs a few MB (the compressed size) instead of
    /// tens. Prometheus asks for gzip on every scrape.
    pub fn render_gzip(&self) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        let mut buf = Vec::with_capacity(store::FLUSH_AT + 64 * 1024);
        self.encode_own(&mut buf);
        let mut total = 0;
        self.services.render(&mut buf, &mut |b| {
            total += b.len();
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(b);
            b.clear();
        });
        self.last_render.store(total, Ordering::Relaxed);
        gz.finish().unwrap_or_default()
    }

    fn encode_own(&self, buf: &mut Vec<u8>) {
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
    }

    // -- probes ---------------------------------------------------------------------------

    /// Creates a probe's counters and histogram at zero, so that `rate()` and `increase()` see
    /// its first run. Failure reasons are created on first use: the SLO ratio and the cause alerts
    /// read `td_pz_probe_successes_total` and `td_pz_probe_consecutive_failures`, which need no
    /// series at zero (docs/metrics.md, "Series budget").
    pub fn init_probe(&self, ps: &str, svc: &str, probe: &str) {
        self.services.with(ps, svc, |s| {
            s.probe(probe).duration.get_or_insert_with(Default::default);
        });
    }

    pub fn record_probe(&self, ps: &str, svc: &str, probe: &str, out: &ProbeOutcome) {
        self.services.with(ps, svc, |s| {
            let p = s.probe(probe);
            p.total += 1;
            p.success = Some(if out.success() { 1.0 } else { 0.0 });
            match out.reason {
                Some(r) => p.failures.inc(r),
                None => p.successes += 1,
            }
            p.streak = Streak::after(p.streak, out.reason);
            match out.duration {
                Some(d) => {
                    p.duration
                        .get_or_insert_with(Default::default)
                        .observe(&PROBE_BUCKETS, d.as_secs_f64());
                    p.last_duration = Some(d.as_secs_f64());
                }
                None => p.last_duration = Some(f64::NAN),
            }
            p.server_processing = out.server_processing.map(|d| d.as_secs_f64());
            p.status = Some(f64::from(out.status.unwrap_or(0)));
            p.section_match = out.section_match;
            // One section_info series per probe: the section of the last response that had one.
            if let Some(section) = &out.section {
                if p.section.as_deref() != Some(section.as_str()) {
                    p.section = Some(section.clone());
                }
            }
        });
    }

    /// Drops the series of probes of `svc` that are not in `keep`.
    pub fn retain_probes(&self, ps: &str, svc: &str, keep: &BTreeSet<String>) {
        self.services
            .with(ps, svc, |s| s.probes.retain(|(p, _)| keep.contains(p)));
    }

    // -- scheduling, polls and requests -----------------------------------------------------

    pub fn init_schedule(&self, poller: Poller, ps: &str, svc: &str) {
        self.services.with(ps, svc, |s| {
            let series = s.poller(poller);
            // Each probe counts its runs and failures in its own series (td_pz_probes_total,
            // td_pz_probe_failures_total); the probe poller keeps its last success and skips.
            if poller != Poller::Probe {
                series.polls.get_or_insert(0);
            }
        });
    }

    pub fn schedule_skipped(&self, poller: Poller, ps: &str, svc: &str, n: u64) {
        self.services
            .with(ps, svc, |s| s.poller(poller).skipped += n);
    }

    pub fn observe_lateness(&self, poller: Poller, late: Duration) {
        self.lateness
            .with_label_values(&[poller.as_label()])
            .observe(late.as_secs_f64());
    }

    pub fn api_request(&self, ps: &str, svc: &str, endpoint: Endpoint, status: Option<u16>) {
        self.services.with(ps, svc, |s| {
            *s.api.entry_or_default((endpoint, status)) += 1
        });
    }

    pub fn poll_done(
        &self,
        ps: &str,
        svc: &str,
        poller: Poller,
        took: Duration,
        result: Result<(), Reason>,
    ) {
        self.poll_duration
            .with_label_values(&[poller.as_label()])
            .observe(took.as_secs_f64());
        self.services.with(ps, svc, |s| {
            let series = s.poller(poller);
            if result.is_ok() {
                series.last_success = Some(unix_now());
            }
            if poller == Poller::Probe {
                return;
            }
            *series.polls.get_or_insert(0) += 1;
            if let Err(r) = result {
                series.failures.inc(r);
            }
            series.streak = Streak::after(series.streak, result.err());
        });
    }

    // -- service metrics endpoint -------------------------------------------------------------

    pub fn set_error_rate(&self, ps: &str, svc: &str, ratio: Option<f64>) {
        self.services.with(ps, svc, |s| s.error_rate = ratio);
    }

    /// Sets the `td_pz_service_metric` fields of a service to exactly `fields`.
    pub fn set_service_fields(&self, ps: &str, svc: &str, fields: &[(String, f64)]) {
        self.services.with(ps, svc, |s| {
            s.fields.retain(|k| fields.iter().any(|(f, _)| f == k));
            for (k, v) in fields {
                match s.fields.get_mut(k) {
                    Some(old) => *old = *v,
                    None => {
                        s.fields.insert(k.clone(), *v);
                    }
                }
            }
        });
    }

    /// Sets `td_pz_service_latency_seconds` to exactly `latencies` (`stat` label, seconds).
    pub fn set_service_latency<S: AsRef<str>>(&self, ps: &str, svc: &str, latencies: &[(S, f64)]) {
        self.services.with(ps, svc, |s| {
            s.latency = latencies
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), *v))
                .collect();
        });
    }

    // -- logs ------------------------------------------------------------------------------

    /// Creates the log counters that dashboards and alerts rate at zero; the section cap's
    /// overflow counter appears on first use.
    pub fn init_logs(&self, ps: &str, svc: &str) {
        self.services.with(ps, svc, |s| {
            s.logs.errors.get_or_insert(0);
            s.logs.slow.get_or_insert(0);
        });
    }

    pub fn log_entries(&self, ps: &str, svc: &str, section: &str, n: u64) {
        self.services
            .with(ps, svc, |s| match s.logs.entries.get_mut(section) {
                Some(c) => *c += n,
                None => {
                    s.logs.entries.insert(section.to_string(), n);
                }
            });
    }

    pub fn log_overflow(&self, ps: &str, svc: &str, n: u64) {
        self.services
            .with(ps, svc, |s| *s.logs.overflow.get_or_insert(0) += n);
    }

    pub fn log_error(&self, ps: &str, svc: &str) {
        self.services
            .with(ps, svc, |s| *s.logs.errors.get_or_insert(0) += 1);
    }

    /// Counts the log entries whose processing time is over TD's published p95.
    pub fn log_processing(&self, ps: &str, svc: &str, took: &[Duration]) {
        let slow = took
            .iter()
            .filter(|d| d.as_secs_f64() > SLOW_ENTRY_SECONDS)
            .count() as u64;
        self.services
            .with(ps, svc, |s| *s.logs.slow.get_or_insert(0) += slow);
    }

    pub fn log_last_entry(&self, ps: &str, svc: &str, unix: f64) {
        self.services
            .with(ps, svc, |s| s.logs.last_entry = Some(unix));
    }

    /// Sets `td_pz_section_share` of a service to exactly `shares`.
    pub fn set_section_shares(&self, ps: &str, svc: &str, shares: &[(String, f64)]) {
        self.services.with(ps, svc, |s| {
            s.logs.shares = shares.iter().cloned().collect();
        });
    }

    // -- whole services ------------------------------------------------------------------------

    /// Removes every series of a service that left the configuration.
    pub fn remove_service(&self, ps: &str, svc: &str) {
        self.services.remove(ps, svc);
    }

    /// The services that currently own series.
    pub fn services(&self) -> Vec<(String, String)> {
        self.services.keys()
    }

    // -- the exporter itself ---------------------------------------------------------------------

    pub fn config_loaded(&self, ok: bool) {
        self.reload_ok.set(if ok { 1.0 } else { 0.0 });
        if ok {
            self.reload_ts.set(unix_now());
        }
    }

    /// The scheduler's state, set just before each scrape.
    pub fn set_scheduler_state(&self, jobs: usize, runs_in_flight: usize) {
        self.jobs.set(jobs as f64);
        self.runs_in_flight.set(runs_in_flight as f64);
    }

    pub fn bad_request(&self, why: BadRequest) {
        self.bad_requests.with_label_values(&[why.as_label()]).inc();
    }
}

#[cfg(test)]
mod tests;
