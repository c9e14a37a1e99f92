//! The metrics registry: one struct owns every metric of the contract.
//!
//! Call sites record domain events through its methods (`record_probe`, `poll_done`,
//! `api_request`, ...) and never spell a metric name or a label value. It also remembers which
//! label values it has set per service, so that a service that leaves the configuration, a field
//! that vanishes from a response or a section that falls out of the window leaves no stale series.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::outcome::ProbeOutcome;
use crate::reason::Reason;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Poller {
    Probe,
    Metrics,
    Logs,
    Discovery,
}

impl Poller {
    pub const ALL: [Poller; 4] = [
        Poller::Probe,
        Poller::Metrics,
        Poller::Logs,
        Poller::Discovery,
    ];

    pub fn as_label(&self) -> &'static str {
        match self {
            Poller::Probe => "probe",
            Poller::Metrics => "metrics",
            Poller::Logs => "logs",
            Poller::Discovery => "discovery",
        }
    }
}

/// Which TD endpoint a request went to (`td_pz_api_requests_total{endpoint}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Personalize,
    PersonalizeTest,
    P13n,
    Metrics,
    Logs,
    Discovery,
}

impl Endpoint {
    pub fn as_label(&self) -> &'static str {
        match self {
            Endpoint::Personalize => "personalize",
            Endpoint::PersonalizeTest => "personalize_test",
            Endpoint::P13n => "p13n",
            Endpoint::Metrics => "metrics",
            Endpoint::Logs => "logs",
            Endpoint::Discovery => "discovery",
        }
    }
}

/// Why the exporter's own HTTP server refused a request.
#[derive(Clone, Copy, Debug)]
pub enum BadRequest {
    Method,
    NotFound,
    Unauthorized,
}

impl BadRequest {
    fn as_label(&self) -> &'static str {
        match self {
            BadRequest::Method => "method",
            BadRequest::NotFound => "not_found",
            BadRequest::Unauthorized => "unauthorized",
        }
    }
}

pub const OTHER_SECTION: &str = "__other__";

const PROBE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const POLL_BUCKETS: &[f64] = &[0.01, 0.05, 0.25, 1.0, 5.0, 30.0];
const LOG_PROCESSING_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
const LATENESS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Label values set per service beyond the common ones, for clean removal.
#[derive(Default, Debug)]
struct Owned {
    probes: BTreeSet<String>,
    probe_sections: HashMap<String, String>,
    fields: BTreeSet<String>,
    quantiles: BTreeSet<&'static str>,
    sections: BTreeSet<String>,
    shares: BTreeSet<String>,
    endpoints: BTreeSet<(&'static str, String)>,
    pollers: BTreeSet<Poller>,
    error_rate: bool,
    logs: bool,
}

pub struct Metrics {
    registry: Registry,
    owned: Mutex<HashMap<(String, String), Owned>>,

    probe_success: GaugeVec,
    probe_duration: HistogramVec,
    probe_last_duration: GaugeVec,
    probe_server_processing: GaugeVec,
    probe_status: GaugeVec,
    probes_total: IntCounterVec,
    probe_failures: IntCounterVec,
    probe_section_match: GaugeVec,
    probe_section_info: GaugeVec,

    service_error_rate: GaugeVec,
    service_metric: GaugeVec,
    service_latency: GaugeVec,

    log_entries: IntCounterVec,
    section_share: GaugeVec,
    log_last_entry: GaugeVec,
    log_errors: IntCounterVec,
    log_processing: HistogramVec,
    sections_overflow: IntCounterVec,

    poll_duration: HistogramVec,
    polls: IntCounterVec,
    poll_failures: IntCounterVec,
    poll_last_success: GaugeVec,
    api_requests: IntCounterVec,
    schedule_skipped: IntCounterVec,
    lateness: HistogramVec,

    reload_ok: Gauge,
    reload_ts: Gauge,
    jobs: Gauge,
    runs_in_flight: Gauge,
    bad_requests: IntCounterVec,
}

const SVC: &[&str] = &["parent_segment", "pz_service"];
const PROBE: &[&str] = &["parent_segment", "pz_service", "probe"];

fn with<'a>(base: &[&'a str], extra: &'a str) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.push(extra);
    v
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            r.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            r.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect("valid metric");
            r.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let m = Metrics {
            probe_success: gauge("td_pz_probe_success", "1 if the last probe passed every check, else 0.", PROBE),
            probe_duration: histogram("td_pz_probe_duration_seconds", "Client-side latency of completed probe requests.", PROBE, PROBE_BUCKETS),
            probe_last_duration: gauge("td_pz_probe_last_duration_seconds", "Latency of the last probe (NaN when it got no response).", PROBE),
            probe_server_processing: gauge("td_pz_probe_server_processing_seconds", "processing_time_ms of the last probe response, in seconds.", PROBE),
            probe_status: gauge("td_pz_probe_http_status_code", "HTTP status of the last probe (0 when no response).", PROBE),
            probes_total: counter("td_pz_probes_total", "Probes run.", PROBE),
            probe_failures: counter("td_pz_probe_failures_total", "Failed probes by reason.", &with(PROBE, "reason")),
            probe_section_match: gauge("td_pz_probe_section_match", "1 if the last probe's section equals expect_section.", PROBE),
            probe_section_info: gauge("td_pz_probe_section_info", "The section the last probe got (value always 1).", &with(PROBE, "section")),

            service_error_rate: gauge("td_pz_service_error_rate", "error_rate from the service metrics endpoint, as a ratio 0..1.", SVC),
            service_metric: gauge("td_pz_service_metric", "Other numeric fields of the service metrics endpoint, by dotted path.", &with(SVC, "field")),
            // `stat`, not `quantile`: that label is reserved for summaries, and promtool refuses it on a gauge.
            service_latency: gauge("td_pz_service_latency_seconds", "Latency reported by the service metrics endpoint, in seconds, by stat (p50, p95, p99, avg).", &with(SVC, "stat")),

            log_entries: counter("td_pz_log_entries_total", "Log entries seen, each counted once.", &with(SVC, "section")),
            section_share: gauge("td_pz_section_share", "Share of each section among log entries in the section share window.", &with(SVC, "section")),
            log_last_entry: gauge("td_pz_log_last_entry_timestamp_seconds", "Timestamp of the newest log entry seen.", SVC),
            log_errors: counter("td_pz_log_errors_total", "Log entries with an error status or an error field.", SVC),
            log_processing: histogram("td_pz_log_processing_seconds", "processing_time_ms of log entries, in seconds.", SVC, LOG_PROCESSING_BUCKETS),
            sections_overflow: counter("td_pz_sections_overflow_total", "Log entries counted as section=\"__other__\" by the section cap.", SVC),

            // By poller only: per service it would cost 3 histograms a service, and the probe's
            // own histogram already gives per-service latency.
            poll_duration: histogram("td_pz_poll_duration_seconds", "Time of one poll, retries included, by poller.", &["poller"], POLL_BUCKETS),
            polls: counter("td_pz_polls_total", "Polls run.", &with(SVC, "poller")),
            poll_failures: counter("td_pz_poll_failures_total", "Failed polls by reason.", &[SVC[0], SVC[1], "poller", "reason"]),
            poll_last_success: gauge("td_pz_poll_last_success_timestamp_seconds", "Unix time of the last successful poll.", &with(SVC, "poller")),
            api_requests: counter("td_pz_api_requests_total", "Requests to TD by endpoint and HTTP status (code=\"error\" when no response came).", &[SVC[0], SVC[1], "endpoint", "code"]),
            schedule_skipped: counter("td_pz_schedule_skipped_total", "Runs skipped: the previous run of the same job was still going, or the scheduler fell more than a period behind.", &with(SVC, "poller")),
            lateness: histogram("td_pz_scheduler_lateness_seconds", "How late a job started against its cron time (jitter excluded).", &["poller"], LATENESS_BUCKETS),

            reload_ok: {
                let g = Gauge::new("td_pz_config_last_reload_successful", "1 if the last configuration (re)load succeeded.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            reload_ts: {
                let g = Gauge::new("td_pz_config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration load.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            jobs: {
                let g = Gauge::new("td_pz_scheduler_jobs", "Jobs scheduled (probes and pollers of this replica).").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            runs_in_flight: {
                let g = Gauge::new("td_pz_scheduler_runs_in_flight", "Job runs in progress now.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            bad_requests: counter("td_pz_bad_requests_total", "HTTP requests to the exporter that were refused.", &["reason"]),
            owned: Mutex::new(HashMap::new()),
            registry: r.clone(),
        };
        let build = gauge(
            "td_pz_exporter_build_info",
            "Always 1; labels carry the version and the revision.",
            &["version", "revision"],
        );
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

    /// The text exposition format of everything registered.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64 * 1024);
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        buf
    }

    fn own<R>(&self, ps: &str, svc: &str, f: impl FnOnce(&mut Owned) -> R) -> R {
        let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        let entry = owned.entry((ps.to_string(), svc.to_string())).or_default();
        f(entry)
    }

    // -- probes ---------------------------------------------------------------------------

    /// Creates a probe's series at zero, every failure reason included.
    pub fn init_probe(&self, ps: &str, svc: &str, probe: &str) {
        let l = [ps, svc, probe];
        self.probes_total.with_label_values(&l);
        for r in Reason::ALL {
            self.probe_failures
                .with_label_values(&[ps, svc, probe, r.as_label()]);
        }
        self.own(ps, svc, |o| o.probes.insert(probe.to_string()));
    }

    pub fn record_probe(&self, ps: &str, svc: &str, probe: &str, out: &ProbeOutcome) {
        let l = [ps, svc, probe];
        self.probes_total.with_label_values(&l).inc();
        self.probe_success
            .with_label_values(&l)
            .set(if out.success() { 1.0 } else { 0.0 });
        if let Some(r) = out.reason {
            self.probe_failures
                .with_label_values(&[ps, svc, probe, r.as_label()])
                .inc();
        }
        match out.duration {
            Some(d) => {
                self.probe_duration
                    .with_label_values(&l)
                    .observe(d.as_secs_f64());
                self.probe_last_duration
                    .with_label_values(&l)
                    .set(d.as_secs_f64());
            }
            None => self.probe_last_duration.with_label_values(&l).set(f64::NAN),
        }
        match out.server_processing {
            Some(d) => self
                .probe_server_processing
                .with_label_values(&l)
                .set(d.as_secs_f64()),
            None => {
                let _ = self.probe_server_processing.remove_label_values(&l);
            }
        }
        self.probe_status
            .with_label_values(&l)
            .set(f64::from(out.status.unwrap_or(0)));
        match out.section_match {
            Some(m) => {
                self.probe_section_match
                    .with_label_values(&l)
                    .set(if m { 1.0 } else { 0.0 })
            }
            None => {
                let _ = self.probe_section_match.remove_label_values(&l);
            }
        }
        // One section_info series per probe: the section of the last response that had one.
        if let Some(section) = &out.section {
            let prev = self.own(ps, svc, |o| {
                o.probe_sections.insert(probe.to_string(), section.clone())
            });
            if let Some(prev) = prev.filter(|p| p != section) {
                let _ = self
                    .probe_section_info
                    .remove_label_values(&[ps, svc, probe, &prev]);
            }
            self.probe_section_info
                .with_label_values(&[ps, svc, probe, section])
                .set(1.0);
        }
    }

    fn remove_probe_series(&self, ps: &str, svc: &str, probe: &str, section: Option<&String>) {
        let l = [ps, svc, probe];
        let _ = self.probe_success.remove_label_values(&l);
        let _ = self.probe_duration.remove_label_values(&l);
        let _ = self.probe_last_duration.remove_label_values(&l);
        let _ = self.probe_server_processing.remove_label_values(&l);
        let _ = self.probe_status.remove_label_values(&l);
        let _ = self.probes_total.remove_label_values(&l);
        let _ = self.probe_section_match.remove_label_values(&l);
        for r in Reason::ALL {
            let _ = self
                .probe_failures
                .remove_label_values(&[ps, svc, probe, r.as_label()]);
        }
        if let Some(s) = section {
            let _ = self
                .probe_section_info
                .remove_label_values(&[ps, svc, probe, s]);
        }
    }

    /// Drops the series of probes of `svc` that are not in `keep`.
    pub fn retain_probes(&self, ps: &str, svc: &str, keep: &BTreeSet<String>) {
        let gone: Vec<(String, Option<String>)> = self.own(ps, svc, |o| {
            let gone: Vec<String> = o.probes.difference(keep).cloned().collect();
            gone.into_iter()
                .map(|p| {
                    o.probes.remove(&p);
                    let s = o.probe_sections.remove(&p);
                    (p, s)
                })
                .collect()
        });
        for (p, s) in gone {
            self.remove_probe_series(ps, svc, &p, s.as_ref());
        }
    }

    // -- scheduling, polls and requests -----------------------------------------------------

    pub fn init_schedule(&self, poller: Poller, ps: &str, svc: &str) {
        self.schedule_skipped
            .with_label_values(&[ps, svc, poller.as_label()]);
        self.polls.with_label_values(&[ps, svc, poller.as_label()]);
        // Probes count their failures per probe in td_pz_probe_failures_total; pollers create
        // only the reasons alerts select at zero, the rest appear on first use.
        let reasons: &[Reason] = if poller == Poller::Probe {
            &[]
        } else {
            &Reason::ALERTED
        };
        for r in reasons {
            self.poll_failures
                .with_label_values(&[ps, svc, poller.as_label(), r.as_label()]);
        }
        self.own(ps, svc, |o| o.pollers.insert(poller));
    }

    pub fn schedule_skipped(&self, poller: Poller, ps: &str, svc: &str, n: u64) {
        self.schedule_skipped
            .with_label_values(&[ps, svc, poller.as_label()])
            .inc_by(n);
    }

    pub fn observe_lateness(&self, poller: Poller, late: Duration) {
        self.lateness
            .with_label_values(&[poller.as_label()])
            .observe(late.as_secs_f64());
    }

    pub fn api_request(&self, ps: &str, svc: &str, endpoint: Endpoint, status: Option<u16>) {
        let code = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.api_requests
            .with_label_values(&[ps, svc, endpoint.as_label(), &code])
            .inc();
        self.own(ps, svc, |o| o.endpoints.insert((endpoint.as_label(), code)));
    }

    pub fn poll_done(
        &self,
        ps: &str,
        svc: &str,
        poller: Poller,
        took: Duration,
        result: Result<(), Reason>,
    ) {
        let l = [ps, svc, poller.as_label()];
        self.polls.with_label_values(&l).inc();
        self.poll_duration
            .with_label_values(&[poller.as_label()])
            .observe(took.as_secs_f64());
        match result {
            Ok(()) => self.poll_last_success.with_label_values(&l).set(unix_now()),
            Err(r) => self
                .poll_failures
                .with_label_values(&[ps, svc, poller.as_label(), r.as_label()])
                .inc(),
        }
        self.own(ps, svc, |o| o.pollers.insert(poller));
    }

    // -- service metrics endpoint -------------------------------------------------------------

    pub fn set_error_rate(&self, ps: &str, svc: &str, ratio: Option<f64>) {
        match ratio {
            Some(v) => {
                self.service_error_rate.with_label_values(&[ps, svc]).set(v);
                self.own(ps, svc, |o| o.error_rate = true);
            }
            None => {
                let _ = self.service_error_rate.remove_label_values(&[ps, svc]);
                self.own(ps, svc, |o| o.error_rate = false);
            }
        }
    }

    /// Sets the `td_pz_service_metric` fields of a service to exactly `fields`.
    pub fn set_service_fields(&self, ps: &str, svc: &str, fields: &[(String, f64)]) {
        let now: BTreeSet<String> = fields.iter().map(|(k, _)| k.clone()).collect();
        let gone: Vec<String> = self.own(ps, svc, |o| {
            let gone = o.fields.difference(&now).cloned().collect();
            o.fields = now;
            gone
        });
        for f in gone {
            let _ = self.service_metric.remove_label_values(&[ps, svc, &f]);
        }
        for (k, v) in fields {
            self.service_metric.with_label_values(&[ps, svc, k]).set(*v);
        }
    }

    /// Sets `td_pz_service_latency_seconds` to exactly `latencies` (`stat` label, seconds).
    pub fn set_service_latency(&self, ps: &str, svc: &str, latencies: &[(&'static str, f64)]) {
        let now: BTreeSet<&'static str> = latencies.iter().map(|(q, _)| *q).collect();
        let gone: Vec<&'static str> = self.own(ps, svc, |o| {
            let gone = o.quantiles.difference(&now).copied().collect();
            o.quantiles = now;
            gone
        });
        for q in gone {
            let _ = self.service_latency.remove_label_values(&[ps, svc, q]);
        }
        for (q, v) in latencies {
            self.service_latency
                .with_label_values(&[ps, svc, q])
                .set(*v);
        }
    }

    // -- logs ------------------------------------------------------------------------------

    pub fn init_logs(&self, ps: &str, svc: &str) {
        self.log_errors.with_label_values(&[ps, svc]);
        self.sections_overflow.with_label_values(&[ps, svc]);
        self.own(ps, svc, |o| o.logs = true);
    }

    pub fn log_entries(&self, ps: &str, svc: &str, section: &str, n: u64) {
        self.log_entries
            .with_label_values(&[ps, svc, section])
            .inc_by(n);
        self.own(ps, svc, |o| o.sections.insert(section.to_string()));
    }

    pub fn log_overflow(&self, ps: &str, svc: &str, n: u64) {
        self.sections_overflow
            .with_label_values(&[ps, svc])
            .inc_by(n);
    }

    pub fn log_error(&self, ps: &str, svc: &str) {
        self.log_errors.with_label_values(&[ps, svc]).inc();
    }

    pub fn log_processing(&self, ps: &str, svc: &str, d: Duration) {
        self.log_processing
            .with_label_values(&[ps, svc])
            .observe(d.as_secs_f64());
    }

    pub fn log_last_entry(&self, ps: &str, svc: &str, unix: f64) {
        self.log_last_entry.with_label_values(&[ps, svc]).set(unix);
    }

    /// Sets `td_pz_section_share` of a service to exactly `shares`.
    pub fn set_section_shares(&self, ps: &str, svc: &str, shares: &[(String, f64)]) {
        let now: BTreeSet<String> = shares.iter().map(|(k, _)| k.clone()).collect();
        let gone: Vec<String> = self.own(ps, svc, |o| {
            let gone = o.shares.difference(&now).cloned().collect();
            o.shares = now;
            gone
        });
        for s in gone {
            let _ = self.section_share.remove_label_values(&[ps, svc, &s]);
        }
        for (s, v) in shares {
            self.section_share.with_label_values(&[ps, svc, s]).set(*v);
        }
    }

    // -- whole services ------------------------------------------------------------------------

    /// Removes every series of a service that left the configuration.
    pub fn remove_service(&self, ps: &str, svc: &str) {
        let owned = {
            let mut all = self.owned.lock().unwrap_or_else(|e| e.into_inner());
            all.remove(&(ps.to_string(), svc.to_string()))
        };
        let Some(o) = owned else { return };
        let l = [ps, svc];
        for p in &o.probes {
            self.remove_probe_series(ps, svc, p, o.probe_sections.get(p));
        }
        for f in &o.fields {
            let _ = self.service_metric.remove_label_values(&[ps, svc, f]);
        }
        for q in &o.quantiles {
            let _ = self.service_latency.remove_label_values(&[ps, svc, q]);
        }
        for s in &o.sections {
            let _ = self.log_entries.remove_label_values(&[ps, svc, s]);
        }
        for s in &o.shares {
            let _ = self.section_share.remove_label_values(&[ps, svc, s]);
        }
        for (e, c) in &o.endpoints {
            let _ = self.api_requests.remove_label_values(&[ps, svc, e, c]);
        }
        for p in &o.pollers {
            let pl = [ps, svc, p.as_label()];
            let _ = self.polls.remove_label_values(&pl);
            let _ = self.poll_last_success.remove_label_values(&pl);
            let _ = self.schedule_skipped.remove_label_values(&pl);
            for r in Reason::ALL {
                let _ =
                    self.poll_failures
                        .remove_label_values(&[ps, svc, p.as_label(), r.as_label()]);
            }
        }
        let _ = self.service_error_rate.remove_label_values(&l);
        let _ = self.log_last_entry.remove_label_values(&l);
        let _ = self.log_errors.remove_label_values(&l);
        let _ = self.log_processing.remove_label_values(&l);
        let _ = self.sections_overflow.remove_label_values(&l);
    }

    /// The services that currently own series.
    pub fn services(&self) -> Vec<(String, String)> {
        let all = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        all.keys().cloned().collect()
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

pub fn unix_now() -> f64 {
    unix_of(SystemTime::now())
}

pub fn unix_of(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).unwrap()
    }

    #[test]
    fn vanished_fields_leave_no_series() {
        let m = Metrics::new();
        m.set_service_fields("1", "s", &[("a.b".into(), 1.0), ("c".into(), 2.0)]);
        assert!(text(&m).contains("field=\"a.b\""));
        m.set_service_fields("1", "s", &[("c".into(), 3.0)]);
        let t = text(&m);
        assert!(!t.contains("field=\"a.b\""), "{t}");
        assert!(
            t.contains("td_pz_service_metric{field=\"c\",parent_segment=\"1\",pz_service=\"s\"} 3")
        );
    }

    #[test]
    fn init_probe_creates_every_reason_at_zero() {
        let m = Metrics::new();
        m.init_probe("1", "s", "vip");
        let t = text(&m);
        for r in Reason::ALL {
            let line = format!(
                "td_pz_probe_failures_total{{parent_segment=\"1\",probe=\"vip\",pz_service=\"s\",reason=\"{}\"}} 0",
                r.as_label()
            );
            assert!(t.contains(&line), "missing {line}");
        }
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
}
