//! What one probe or poll produced: typed results handed from the pollers to the recorder.
//!
//! Plain data. The request and response records are already redacted when they are built
//! (by the TD client), so everything downstream may show them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::reason::Reason;
use crate::td::Endpoint;

/// One request a run sent to TD: where, and the status that came back (`None`: no response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub endpoint: Endpoint,
    pub status: Option<u16>,
}

/// What a metrics poll read from the service's metrics answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceMetrics {
    /// As a ratio (0..1), whatever unit the answer used; `None` when the answer had none.
    pub error_rate: Option<f64>,
    pub fields: Vec<(String, f64)>,
    /// Latency fields, in seconds, by label value.
    pub latencies: Vec<(String, f64)>,
}

/// What one logs ingest added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingest {
    pub new_entries: u64,
    pub by_section: BTreeMap<String, u64>,
    pub overflow: u64,
    pub errors: u64,
    pub processing: Vec<Duration>,
    pub too_old: u64,
}

/// What a logs poll saw: what it added, the newest entry it knows of, and the section shares over
/// the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogsSeen {
    pub ingest: Ingest,
    /// Unix seconds.
    pub newest: Option<f64>,
    pub shares: Vec<(String, f64)>,
}

/// What a management poll observed, beside its success or failure.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Observed {
    #[default]
    Nothing,
    Metrics(ServiceMetrics),
    Logs(LogsSeen),
}

/// Where the time of one request went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    /// Time to open the connection; `None` when a pooled connection was reused.
    #[serde(with = "opt_secs")]
    pub connect: Option<Duration>,
    /// From sending the request (after any connect) to the response headers: on the kernel clock,
    /// to the arrival of the bytes that completed them.
    #[serde(with = "opt_secs")]
    pub first_byte: Option<Duration>,
    /// Reading the body.
    #[serde(with = "opt_secs")]
    pub body: Option<Duration>,
    #[serde(with = "secs")]
    pub total: Duration,
    /// Which clock ended `first_byte` and `total`.
    pub clock: Clock,
}

/// `kernel`: the receive timestamps of the socket (the answer's bytes reached the machine then);
/// `process`: the exporter's reads (includes its own wake-up; used through a proxy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    #[default]
    Process,
    Kernel,
}

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Clock::Process => "process",
            Clock::Kernel => "kernel",
        })
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    /// With secrets replaced by `<redacted>`.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ResponseRecord {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The start of the body, capped at [`BODY_EXCERPT`] bytes.
    pub body: String,
    pub body_bytes: usize,
    pub truncated: bool,
}

pub const BODY_EXCERPT: usize = 4096;

/// One request and what came back.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exchange {
    pub request: RequestRecord,
    pub response: Option<ResponseRecord>,
    pub timings: Timings,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The result of one probe: success, or the one reason it failed for.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeOutcome {
    pub at: SystemTime,
    #[serde(serialize_with = "reason_label")]
    pub reason: Option<Reason>,
    pub status: Option<u16>,
    /// Client-side latency, when a response came.
    #[serde(with = "opt_secs")]
    pub duration: Option<Duration>,
    #[serde(with = "opt_secs")]
    pub server_processing: Option<Duration>,
    pub section: Option<String>,
    /// `Some` only where the probe expects a section.
    pub section_match: Option<bool>,
    /// The `code` of TD's error body (p13n), when the answer carried one.
    pub td_code: Option<i64>,
    pub checks: Vec<Check>,
    pub message: String,
    /// The request sent (none when the run ended before sending).
    #[serde(skip)]
    pub attempts: Vec<Attempt>,
}

impl ProbeOutcome {
    /// An outcome at `at` with nothing found yet: a success until a check fails.
    pub fn at(at: SystemTime) -> Self {
        ProbeOutcome {
            at,
            reason: None,
            status: None,
            duration: None,
            server_processing: None,
            section: None,
            section_match: None,
            td_code: None,
            checks: Vec::new(),
            message: String::new(),
            attempts: Vec::new(),
        }
    }

    pub fn success(&self) -> bool {
        self.reason.is_none()
    }
}

/// The result of one management poll.
#[derive(Clone, Debug, Serialize)]
pub struct PollOutcome {
    pub at: SystemTime,
    #[serde(serialize_with = "reason_label")]
    pub reason: Option<Reason>,
    pub status: Option<u16>,
    #[serde(with = "secs")]
    pub duration: Duration,
    /// A one-line summary: "12 new log entries", "7 fields".
    pub message: String,
    /// Every request sent, retries included.
    #[serde(skip)]
    pub attempts: Vec<Attempt>,
    #[serde(skip)]
    pub observed: Observed,
}

fn reason_label<S: serde::Serializer>(r: &Option<Reason>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_str(r.as_label()),
        None => s.serialize_none(),
    }
}

mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// Now, in seconds since the epoch.
pub fn unix_now() -> f64 {
    unix_of(SystemTime::now())
}

/// `t` in seconds since the epoch (0 before it).
pub fn unix_of(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
