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
