//! Who may ask: the `TD1` key of every endpoint, and the p13n credentials — the `WP13n-Token`,
//! the client's IP and, on `/public`, the `Origin` — with the codes TD's documents give them.
//!
//! Owns the credential checks only; the route modules call them first, in the order their
//! endpoint checks, and decide everything else.

use std::net::IpAddr;

use serde_json::json;

use super::faults::{self, td_error_because};
use super::reply::Answer;
use super::routes::SimRequest;
use super::scenario::{Scenario, SimService};
use super::state::SimState;

/// The 401 of a revoked scenario or a wrong `TD1` key, `None` when the key is right. TD
/// documents no 401 body for p13n: the simulator answers `{"error", "message"}` (no `code`)
/// on every endpoint.
pub(super) fn check_key(state: &SimState, sc: &Scenario, req: &SimRequest) -> Option<Answer> {
    let expected = format!("TD1 {}", state.api_key);
    let unauthorized = || {
        Answer::json(
            401,
            &json!({"error": "Unauthorized", "message": "invalid API key"}),
        )
    };
    if sc.revoked {
        return Some(unauthorized().faulted(true));
    }
    (req.header("authorization") != Some(expected.as_str())).then(unauthorized)
}

/// The p13n credentials, in TD's order: the token (3000, 3003, 3001, 3002), the client IP
/// (3005), on `/public` the `Origin` (3007).
pub(super) fn p13n(
    state: &SimState,
    req: &SimRequest,
    svc: Option<&SimService>,
    public: bool,
) -> Result<(), Answer> {
    // OpenAPI 3000: "RT token was not provided (WP13n-Token header)".
    let Some(token) = req.header("wp13n-token") else {
        return Err(faults::td_error(3000));
    };
    // OpenAPI `securitySchemes.wp13n`: "an account number, index number and 32-character
    // hexadecimal string, joined with slashes" → 3003.
    let Some(token_account) = token_account(token) else {
        return Err(faults::td_error(3003));
    };
    // OpenAPI 3001: "RT token is not in configuration" (the service's own token wins).
    let want = svc
        .and_then(|s| s.token.as_deref())
        .or(state.p13n_token.as_deref());
    if want.is_some_and(|w| w != token) {
        return Err(faults::td_error(3001));
    }
    // OpenAPI 3002: "RT token account conflicts with Authed user account"; the account is the
    // key's part before `/` (OpenAPI `securitySchemes.td1`: "an account number prefix, slash").
    if let Some((key_account, _)) = state.api_key.split_once('/') {
        if key_account != token_account {
            return Err(faults::td_error(3002));
        }
    }
    // OpenAPI 3005 "Request origin not in IP whitelist"; td-api.md: tokens carry allowed IPs.
    // The simulator compares exact addresses with the connection's peer.
    if let Some(ips) = svc.and_then(|s| s.allowed_ips.as_ref()) {
        let peer = req.peer.to_canonical();
        if !ips.iter().any(|ip| ip.parse::<IpAddr>().ok() == Some(peer)) {
            return Err(td_error_because(3005, &format!("{peer} is not allowed")));
        }
    }
    // td-api.md: browsers post to /public with an `Origin` header, "error 3007 when it is
    // invalid or missing"; a service's `allowed_origins` narrows it (the simulator's choice).
    if public {
        let origin = req.header("origin").unwrap_or("");
        if !origin_ok(origin) {
            return Err(faults::td_error(3007));
        }
        if let Some(allowed) = svc.and_then(|s| s.allowed_origins.as_ref()) {
            if !allowed.iter().any(|a| a == origin) {
                return Err(td_error_because(3007, "origin not allowed"));
            }
        }
    }
    Ok(())
}

/// The account of a well-formed token `{digits}/{digits}/{32 hex}`.
fn token_account(token: &str) -> Option<&str> {
    let mut parts = token.split('/');
    let (account, instance, hex) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = parts.next().is_none()
        && digits(account)
        && digits(instance)
        && hex.len() == 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(account)
}

/// `http(s)://host[:port]` with nothing after it (an Origin, RFC 6454).
fn origin_ok(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return false,
            },
            None => return false,
        },
        None => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_origin_forms() {
        assert_eq!(
            token_account("1/2/0123456789abcdef0123456789abcdef"),
            Some("1")
        );
        assert_eq!(
            token_account("12/0/6b6ea5f8df5845fa8e7962f9e1ba84a3"),
            Some("12")
        );
        assert_eq!(token_account("1/2/6b6ea5f8df5845fa8e7962f9e1ba84a"), None);
        assert!(origin_ok("https://[::1]:8443"));
        assert!(!origin_ok("https://"));
        assert!(!origin_ok("https://a.example:99999"));
    }
}
