//! The kinds of job the exporter runs, and their `poller` label.

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

/// A target's identity: `probe/<ps>/<service>/<probe>`, `metrics/<ps>/<service>`, ... Job keys, history
/// entries and the status page's links use it.
pub fn target_id(poller: Poller, ps: &str, svc: &str, probe: Option<&str>) -> String {
    match probe {
        Some(p) => format!("{}/{ps}/{svc}/{p}", poller.as_label()),
        None => format!("{}/{ps}/{svc}", poller.as_label()),
    }
}
