//! The catalog: every metric family `/metrics` exposes, with its name, type, help and label
//! names, spelled here and nowhere else in the crate.
//!
//! The registrations in [`super::Metrics::new`], [`super::inventory`] and the per-service writers
//! in [`super::families`] take their names and help from these constants; a unit test renders a
//! registry with a series in every family and checks it against [`ALL`], and
//! `tests/metric_names.rs` checks the rules, dashboards and docs against [`ALL`] without running
//! the daemon. Adding, renaming or relabelling a family starts here. This module describes; it
//! records nothing.

/// A family's type, as the `# TYPE` line spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Who writes a family's series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The per-service store ([`super::families`]): one series set per service.
    Service,
    /// The `prometheus` crate's registry: the exporter's own few series.
    Registry,
    /// The `prometheus` crate's process collector, registered on Linux only.
    Process,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Label names (`le` of histogram buckets aside). For [`Source::Registry`] families, in the
    /// order `with_label_values` takes them.
    pub labels: &'static [&'static str],
    pub source: Source,
}

impl Family {
    /// Whether `name` is one of this family's series names: the family's own or, for a
    /// histogram, with `_bucket`, `_sum` or `_count`.
    pub fn has_series(&self, name: &str) -> bool {
        match name.strip_prefix(self.name) {
            Some("") => true,
            Some(suffix) => {
                self.kind == Kind::Histogram && ["_bucket", "_sum", "_count"].contains(&suffix)
            }
            None => false,
        }
    }
}

/// The family `name` (a family or histogram series name) belongs to.
pub fn family_of(name: &str) -> Option<&'static Family> {
    ALL.iter().find(|f| f.has_series(name))
}

const fn service(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: &'static [&'static str],
) -> Family {
    Family {
        name,
        kind,
        help,
        labels,
        source: Source::Service,
    }
}

const fn own(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: &'static [&'static str],
) -> Family {
    Family {
        name,
        kind,
        help,
        labels,
        source: Source::Registry,
    }
}

const fn process(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        labels: &[],
        source: Source::Process,
    }
}

use Kind::{Counter, Gauge, Histogram};

const SVC: &[&str] = &["parent_segment", "pz_service"];
const SVC_PROBE: &[&str] = &["parent_segment", "pz_service", "probe"];
const SVC_POLLER: &[&str] = &["parent_segment", "pz_service", "poller"];

// -- per service, in name order -------------------------------------------------------------

pub const API_REQUESTS: Family = service(
    "td_pz_api_requests_total",
    Counter,
    "Requests to TD by endpoint and HTTP status (code=\"error\" when no response came).",
    &["parent_segment", "pz_service", "code", "endpoint"],
);
pub const LOG_ENTRIES: Family = service(
    "td_pz_log_entries_total",
    Counter,
    "Log entries seen, each counted once.",
    &["parent_segment", "pz_service", "section"],
);
pub const LOG_ERRORS: Family = service(
    "td_pz_log_errors_total",
    Counter,
    "Log entries with an error status or an error field.",
    SVC,
);
pub const LOG_LAST_ENTRY: Family = service(
    "td_pz_log_last_entry_timestamp_seconds",
    Gauge,
    "Timestamp of the newest log entry seen.",
    SVC,
);
pub const LOG_SLOW_ENTRIES: Family = service(
    "td_pz_log_slow_entries_total",
    Counter,
    "Log entries whose processing_time_ms is over 100 ms, TD's published p95.",
    SVC,
);
pub const POLL_CONSECUTIVE_FAILURES: Family = service(
    "td_pz_poll_consecutive_failures",
    Gauge,
    "Failed polls in a row, labelled with the latest one's reason; no series once a poll succeeds.",
    &["parent_segment", "pz_service", "poller", "reason"],
);
pub const POLL_FAILURES: Family = service(
    "td_pz_poll_failures_total",
    Counter,
    "Failed polls by reason.",
    &["parent_segment", "pz_service", "poller", "reason"],
);
pub const POLL_LAST_SUCCESS: Family = service(
    "td_pz_poll_last_success_timestamp_seconds",
    Gauge,
    "Unix time of the last successful poll.",
    SVC_POLLER,
);
pub const POLLS: Family = service(
    "td_pz_polls_total",
    Counter,
    "Polls run by the metrics, logs and discovery pollers (probes count theirs in td_pz_probes_total).",
    SVC_POLLER,
);
pub const PROBE_CONSECUTIVE_FAILURES: Family = service(
    "td_pz_probe_consecutive_failures",
    Gauge,
    "Failed probes in a row, labelled with the latest one's reason; no series once a probe passes.",
    &["parent_segment", "pz_service", "probe", "reason"],
);
pub const PROBE_DURATION: Family = service(
    "td_pz_probe_duration_seconds",
    Histogram,
    "Client-side latency of completed probe requests.",
    SVC_PROBE,
);
pub const PROBE_FAILURES: Family = service(
    "td_pz_probe_failures_total",
    Counter,
    "Failed probes by reason.",
    &["parent_segment", "pz_service", "probe", "reason"],
);
pub const PROBE_HTTP_STATUS: Family = service(
    "td_pz_probe_http_status_code",
    Gauge,
    "HTTP status of the last probe (0 when no response).",
    SVC_PROBE,
);
pub const PROBE_LAST_DURATION: Family = service(
    "td_pz_probe_last_duration_seconds",
    Gauge,
    "Latency of the last probe (NaN when it got no response).",
    SVC_PROBE,
);
pub const PROBE_SECTION_INFO: Family = service(
    "td_pz_probe_section_info",
    Gauge,
    "The section the last probe got (value always 1).",
    &["parent_segment", "pz_service", "probe", "section"],
);
pub const PROBE_SECTION_MATCH: Family = service(
    "td_pz_probe_section_match",
    Gauge,
    "1 if the last probe's section equals expect_section.",
    SVC_PROBE,
);
pub const PROBE_SERVER_PROCESSING: Family = service(
    "td_pz_probe_server_processing_seconds",
    Gauge,
    "processing_time_ms of the last probe response, in seconds.",
    SVC_PROBE,
);
pub const PROBE_SUCCESS: Family = service(
    "td_pz_probe_success",
    Gauge,
    "1 if the last probe passed every check, else 0.",
    SVC_PROBE,
);
pub const PROBE_SUCCESSES: Family = service(
    "td_pz_probe_successes_total",
    Counter,
    "Probes that passed every check.",
    SVC_PROBE,
);
pub const PROBES: Family = service("td_pz_probes_total", Counter, "Probes run.", SVC_PROBE);
pub const SCHEDULE_SKIPPED: Family = service(
    "td_pz_schedule_skipped_total",
    Counter,
    "Runs skipped: the previous run of the same job was still going, or the scheduler fell more than a period behind.",
    SVC_POLLER,
);
pub const SECTION_SHARE: Family = service(
    "td_pz_section_share",
    Gauge,
    "Share of each section among log entries in the section share window.",
    &["parent_segment", "pz_service", "section"],
);
pub const SECTIONS_OVERFLOW: Family = service(
    "td_pz_sections_overflow_total",
    Counter,
    "Log entries counted as section=\"__other__\" by the section cap.",
    SVC,
);
pub const SERVICE_ERROR_RATE: Family = service(
    "td_pz_service_error_rate",
    Gauge,
    "error_rate from the service metrics endpoint, as a ratio 0..1.",
    SVC,
);
// `stat`, not `quantile`: that label is reserved for summaries, and promtool refuses it on a
// gauge.
pub const SERVICE_LATENCY: Family = service(
    "td_pz_service_latency_seconds",
    Gauge,
    "Latency reported by the service metrics endpoint, in seconds, by stat (p50, p95, p99, avg).",
    &["parent_segment", "pz_service", "stat"],
);
pub const SERVICE_METRIC: Family = service(
    "td_pz_service_metric",
    Gauge,
    "Other numeric fields of the service metrics endpoint, by dotted path.",
    &["parent_segment", "pz_service", "field"],
);

// -- the exporter's own, in the `prometheus` crate's registry ---------------------------------

// By poller only: per service it would cost 3 histograms a service, and the probe's own
// histogram already gives per-service latency.
pub const POLL_DURATION: Family = own(
    "td_pz_poll_duration_seconds",
    Histogram,
    "Time of one poll, retries included, by poller.",
    &["poller"],
);
pub const SCHEDULER_LATENESS: Family = own(
    "td_pz_scheduler_lateness_seconds",
    Histogram,
    "How late a job started against its cron time (jitter excluded).",
    &["poller"],
);
pub const CONFIG_RELOAD_OK: Family = own(
    "td_pz_config_last_reload_successful",
    Gauge,
    "1 if the last configuration (re)load succeeded.",
    &[],
);
pub const CONFIG_RELOAD_TIME: Family = own(
    "td_pz_config_last_reload_success_timestamp_seconds",
    Gauge,
    "Unix time of the last successful configuration load.",
    &[],
);
pub const SCHEDULER_JOBS: Family = own(
    "td_pz_scheduler_jobs",
    Gauge,
    "Jobs scheduled (probes and pollers of this replica).",
    &[],
);
pub const SCHEDULER_RUNS_IN_FLIGHT: Family = own(
    "td_pz_scheduler_runs_in_flight",
    Gauge,
    "Job runs in progress now.",
    &[],
);
pub const BAD_REQUESTS: Family = own(
    "td_pz_bad_requests_total",
    Counter,
    "HTTP requests to the exporter that were refused.",
    &["reason"],
);
pub const DISCOVERED_SERVICES: Family = own(
    "td_pz_discovered_services",
    Gauge,
    "Services TD lists for a parent segment at the last discovery, by coverage.",
    &["parent_segment", "coverage"],
);
pub const BUILD_INFO: Family = own(
    "td_pz_exporter_build_info",
    Gauge,
    "Always 1; labels carry the version and the revision.",
    &["version", "revision"],
);

/// Every family, per-service ones first (in name order), then the registry's, then the process
/// collector's: the names and help texts the `prometheus` crate (0.14) gives them. Those are
/// described, not chosen, here; they are exposed on Linux only, where the collector is
/// registered.
pub const ALL: &[Family] = &[
    API_REQUESTS,
    LOG_ENTRIES,
    LOG_ERRORS,
    LOG_LAST_ENTRY,
    LOG_SLOW_ENTRIES,
    POLL_CONSECUTIVE_FAILURES,
    POLL_FAILURES,
    POLL_LAST_SUCCESS,
    POLLS,
    PROBE_CONSECUTIVE_FAILURES,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_HTTP_STATUS,
    PROBE_LAST_DURATION,
    PROBE_SECTION_INFO,
    PROBE_SECTION_MATCH,
    PROBE_SERVER_PROCESSING,
    PROBE_SUCCESS,
    PROBE_SUCCESSES,
    PROBES,
    SCHEDULE_SKIPPED,
    SECTION_SHARE,
    SECTIONS_OVERFLOW,
    SERVICE_ERROR_RATE,
    SERVICE_LATENCY,
    SERVICE_METRIC,
    POLL_DURATION,
    SCHEDULER_LATENESS,
    CONFIG_RELOAD_OK,
    CONFIG_RELOAD_TIME,
    SCHEDULER_JOBS,
    SCHEDULER_RUNS_IN_FLIGHT,
    BAD_REQUESTS,
    DISCOVERED_SERVICES,
    BUILD_INFO,
    process(
        "process_cpu_seconds_total",
        Counter,
        "Total user and system CPU time spent in seconds.",
    ),
    process(
        "process_open_fds",
        Gauge,
        "Number of open file descriptors.",
    ),
    process(
        "process_max_fds",
        Gauge,
        "Maximum number of open file descriptors.",
    ),
    process(
        "process_virtual_memory_bytes",
        Gauge,
        "Virtual memory size in bytes.",
    ),
    process(
        "process_resident_memory_bytes",
        Gauge,
        "Resident memory size in bytes.",
    ),
    process(
        "process_start_time_seconds",
        Gauge,
        "Start time of the process since unix epoch in seconds.",
    ),
    process(
        "process_threads",
        Gauge,
        "Number of OS threads in the process.",
    ),
];

#[cfg(test)]
mod tests;
