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
    TokenRejected,
    TokenMisconfigured,
    IpNotAllowed,
    InvalidEvent,
    OriginRejected,
}

impl Reason {
    pub const ALL: [Reason; 20] = [
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
        Reason::TokenRejected,
        Reason::TokenMisconfigured,
        Reason::IpNotAllowed,
        Reason::InvalidEvent,
        Reason::OriginRejected,
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
            Reason::TokenRejected => "token_rejected",
            Reason::TokenMisconfigured => "token_misconfigured",
            Reason::IpNotAllowed => "ip_not_allowed",
            Reason::InvalidEvent => "invalid_event",
            Reason::OriginRejected => "origin_rejected",
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

    /// The reason a p13n error code stands for (p13n-api.yml: `requestErrorResponse`,
    /// `tooManyRequestsResponse`, `serverErrorResponse`), or `None` for a code TD does not
    /// document, which then falls back to [`Reason::from_status`].
    pub fn from_td_code(code: i64) -> Option<Reason> {
        Some(match code {
            // 3000 not provided, 3001 not in configuration, 3002 account conflict,
            // 3003 invalid format, 3006 token type mismatch.
            3000..=3003 | 3006 => Reason::TokenRejected,
            3004 => Reason::InvalidEvent,
            3005 => Reason::IpNotAllowed,
            3007 => Reason::OriginRejected,
            // 3008 method required, 3009 unsupported method: the request itself is wrong.
            3008 | 3009 => Reason::BadRequest,
            // 2003 Kinesis limit, 2013 Lambda concurrency.
            2003 | 2013 => Reason::RateLimited,
            // 2015 the reactor does not have the token yet; 3010-3012 the token's reactor
            // configuration is inconsistent or invalid: fixed in TD's console, not by retrying.
            2015 | 3010..=3012 => Reason::TokenMisconfigured,
            // 9999 unknown; 1001-1005 a TD component unreachable; 2001/2002 Kinesis,
            // 2011/2012/2014 Lambda, 2021 MemoryDB; 3013 client IP not retrievable.
            9999 | 1001..=1005 | 2001 | 2002 | 2011 | 2012 | 2014 | 2021 | 3013 => {
                Reason::ServerError
            }
            _ => return None,
        })
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
            Reason::TokenRejected | Reason::TokenMisconfigured => "tdpzapikeyrejected",
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
            Reason::BadRequest => "TD refused the request as malformed (400)",
            Reason::RateLimited => "TD rate limited us (429): back off",
            Reason::ServerError => "TD server error: retry with backoff",
            Reason::Unavailable => "service unavailable (503): check the RT configuration status",
            Reason::InvalidResponse => "the response is not JSON of the expected shape",
            Reason::TooLarge => "the response body is over the size cap",
            Reason::SectionMismatch => "the persona landed in another section than expected",
            Reason::MissingOutput => "an expected output is missing from the response",
            Reason::Slow => "the answer came, but slower than max_latency",
            Reason::TokenRejected => {
                "TD refused the WP13n-Token (missing, unknown, malformed or another account's): rotate or fix the token"
            }
            Reason::TokenMisconfigured => {
                "the token's RT configuration (reactor) is inconsistent or not ready: fix it in TD's console"
            }
            Reason::IpNotAllowed => {
                "the exporter's egress IP is not in the token's IP allow-list: add it in TD"
            }
            Reason::InvalidEvent => {
                "TD refused the event (code 3004): check the probe's context and user_key"
            }
            Reason::OriginRejected => {
                "TD refused the Origin (code 3007): set the service's origin to an allowed one"
            }
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

    /// Every code p13n-api.yml documents, with the status TD sends it with and its reason.
    const TD_CODES: &[(u16, i64, Reason)] = &[
        (400, 3000, Reason::TokenRejected),
        (400, 3001, Reason::TokenRejected),
        (400, 3002, Reason::TokenRejected),
        (400, 3003, Reason::TokenRejected),
        (400, 3004, Reason::InvalidEvent),
        (400, 3005, Reason::IpNotAllowed),
        (400, 3006, Reason::TokenRejected),
        (400, 3007, Reason::OriginRejected),
        (400, 3008, Reason::BadRequest),
        (400, 3009, Reason::BadRequest),
        (429, 2003, Reason::RateLimited),
        (429, 2013, Reason::RateLimited),
        (500, 9999, Reason::ServerError),
        (500, 1001, Reason::ServerError),
        (500, 1002, Reason::ServerError),
        (500, 1003, Reason::ServerError),
        (500, 1004, Reason::ServerError),
        (500, 1005, Reason::ServerError),
        (500, 2001, Reason::ServerError),
        (500, 2002, Reason::ServerError),
        (500, 2011, Reason::ServerError),
        (500, 2012, Reason::ServerError),
        (500, 2014, Reason::ServerError),
        (500, 2015, Reason::TokenMisconfigured),
        (500, 2021, Reason::ServerError),
        (500, 3010, Reason::TokenMisconfigured),
        (500, 3011, Reason::TokenMisconfigured),
        (500, 3012, Reason::TokenMisconfigured),
        (500, 3013, Reason::ServerError),
    ];

    #[test]
    fn every_documented_td_code_has_its_reason() {
        // 10 codes of 400, 2 of 429, 17 of 500: the enums of p13n-api.yml.
        assert_eq!(TD_CODES.len(), 29);
        for (status, code, want) in TD_CODES {
            assert_eq!(Reason::from_td_code(*code), Some(*want), "code {code}");
            // The status alone would say less, except where the reason is the status's own.
            let by_status = Reason::from_status(*status).unwrap();
            assert!(
                matches!(
                    want,
                    Reason::BadRequest | Reason::RateLimited | Reason::ServerError
                ) == (by_status == *want),
                "code {code}"
            );
        }
        for undocumented in [0, 1, 3014, 2000, 4000, -1] {
            assert_eq!(Reason::from_td_code(undocumented), None);
        }
    }

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let l = r.as_label();
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
            assert!(seen.insert(l), "duplicate {l}");
        }
    }
}
