//! The label values the exporter's own code chooses: which poller, which TD endpoint, why an HTTP
//! request to the exporter was refused. Each enum gives its label string from one `as_label`.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    pub fn as_label(&self) -> &'static str {
        match self {
            BadRequest::Method => "method",
            BadRequest::NotFound => "not_found",
            BadRequest::Unauthorized => "unauthorized",
        }
    }
}
