//! Which TD endpoint a request goes to: the `endpoint` label of `td_pz_api_requests_total`.

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
