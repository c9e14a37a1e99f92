//! Why a probe or a poll failed: one variant per `reason` label of the contract.
//!
//! The label string of a reason comes from [`Reason::as_label`] and from nowhere else.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Timeout,
    Connect,
    Tls,
    Unauthorized,
    Forbidden,
    NotFound,
    BadRequest,
    RateLimited,
    ServerError,
    Unavailable,
    InvalidResponse,
    TooLarge,
    SectionMismatch,
    MissingOutput,
    Slow,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Timeout,
        Reason::Connect,
        Reason::Tls,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::BadRequest,
        Reason::RateLimited,
        Reason::ServerError,
        Reason::Unavailable,
        Reason::InvalidResponse,
        Reason::TooLarge,
        Reason::SectionMismatch,
        Reason::MissingOutput,
        Reason::Slow,
    ];

    /// Reasons that alert rules select by name: their series are created at zero up front
    /// so that `increase()` sees the first failure.
    pub const ALERTED: [Reason; 5] = [
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::Unavailable,
        Reason::RateLimited,
    ];

    pub fn as_label(&self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::BadRequest => "bad_request",
            Reason::RateLimited => "rate_limited",
            Reason::ServerError => "server_error",
            Reason::Unavailable => "unavailable",
            Reason::InvalidResponse => "invalid_response",
            Reason::TooLarge => "too_large",
            Reason::SectionMismatch => "section_mismatch",
            Reason::MissingOutput => "missing_output",
            Reason::Slow => "slow",
        }
    }

    /// The reason an HTTP status stands for, or `None` for a success (2xx).
    pub fn from_status(status: u16) -> Option<Reason> {
        match status {
            200..=299 => None,
            400 => Some(Reason::BadRequest),
            401 => Some(Reason::Unauthorized),
            403 => Some(Reason::Forbidden),
            404 => Some(Reason::NotFound),
            413 => Some(Reason::TooLarge),
            429 => Some(Reason::RateLimited),
            503 => Some(Reason::Unavailable),
            405..=499 => Some(Reason::BadRequest),
            500..=599 => Some(Reason::ServerError),
            // 1xx/3xx: nothing a personalization API should answer.
            _ => Some(Reason::InvalidResponse),
        }
    }

    /// Whether a poller should retry within the same run (with backoff) after this failure.
    /// 401/403/404/400 wait for the next schedule: retrying cannot help and would storm TD.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Reason::RateLimited
                | Reason::ServerError
                | Reason::Unavailable
                | Reason::Timeout
                | Reason::Connect
        )
    }

    /// The section of `docs/runbooks.md` for the alert this reason raises (its lowercased name).
    pub fn runbook_anchor(&self) -> &'static str {
        match self {
            Reason::Unauthorized | Reason::Forbidden => "tdpzapikeyrejected",
            Reason::NotFound => "tdpzservicenotfound",
            Reason::Unavailable => "tdpzserviceunavailable",
            Reason::RateLimited => "tdpzratelimited",
            Reason::SectionMismatch => "tdpzwrongsection",
            Reason::MissingOutput => "tdpzmissingoutputs",
            Reason::Slow => "tdpzprobelatencyhigh",
            _ => "tdpzprobefailing",
        }
    }

    pub fn from_label(label: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_label() == label)
    }

    /// A hint for the person on call, shown on the status page and by `probe`.
    pub fn hint(&self) -> &'static str {
        match self {
            Reason::Timeout => "no complete answer within the timeout",
            Reason::Connect => "connection failed (DNS, refused, reset)",
            Reason::Tls => "TLS handshake failed",
            Reason::Unauthorized => "TD rejected the API key: rotated or revoked?",
            Reason::Forbidden => "the key lacks permission for this service",
            Reason::NotFound => "unknown service or parent segment: check the name and id",
            Reason::BadRequest => "TD refused the request (token, event shape, IP allow-list)",
            Reason::RateLimited => "TD rate limited us (429): back off",
            Reason::ServerError => "TD server error: retry with backoff",
            Reason::Unavailable => "service unavailable (503): check the RT configuration status",
            Reason::InvalidResponse => "the response is not JSON of the expected shape",
            Reason::TooLarge => "the response body is over the size cap",
            Reason::SectionMismatch => "the persona landed in another section than expected",
            Reason::MissingOutput => "an expected output is missing from the response",
            Reason::Slow => "the answer came, but slower than max_latency",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_contract_reasons() {
        assert_eq!(Reason::from_status(200), None);
        assert_eq!(Reason::from_status(204), None);
        assert_eq!(Reason::from_status(400), Some(Reason::BadRequest));
        assert_eq!(Reason::from_status(401), Some(Reason::Unauthorized));
        assert_eq!(Reason::from_status(403), Some(Reason::Forbidden));
        assert_eq!(Reason::from_status(404), Some(Reason::NotFound));
        assert_eq!(Reason::from_status(429), Some(Reason::RateLimited));
        assert_eq!(Reason::from_status(500), Some(Reason::ServerError));
        assert_eq!(Reason::from_status(502), Some(Reason::ServerError));
        assert_eq!(Reason::from_status(503), Some(Reason::Unavailable));
        assert_eq!(Reason::from_status(302), Some(Reason::InvalidResponse));
    }

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let l = r.as_label();
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
            assert!(seen.insert(l), "duplicate {l}");
        }
        for r in Reason::ALERTED {
            assert!(Reason::ALL.contains(&r));
        }
    }
}
