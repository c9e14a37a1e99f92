//! Applying a scenario [`Fault`]: held answers (latency), no answer (hang), error statuses with
//! TD's documented codes, and broken bodies (slow, cut off, huge: [`super::bodies`]; not JSON,
//! not UTF-8).
//!
//! Owns the table of TD's p13n error codes (`td_code`), copied from the OpenAPI copy
//! `spec/openapi/p13n-api.yml` (`requestErrorResponse`, `tooManyRequestsResponse`,
//! `serverErrorResponse`): a code's status is its family's, its message the OpenAPI's text.

use std::time::Duration;

use serde_json::json;

use super::bodies;
use super::reply::Answer;
use super::scenario::Fault;
use super::state::SimState;

/// TD's documented p13n error codes: (code, status, the OpenAPI's message).
pub(super) const TD_CODES: &[(u32, u16, &str)] = &[
    (3000, 400, "RT token was not provided (WP13n-Token header)."),
    (3001, 400, "RT token is not in configuration."),
    (3002, 400, "RT token account conflicts with Authed user account."),
    (3003, 400, "RT token is in an invalid format."),
    (3004, 400, "Invalid event object."),
    (3005, 400, "Request origin not in IP whitelist."),
    (3006, 400, "Invalid token type. Token type is not matching the one in the configuration."),
    (3007, 400, "Invalid or missing Origin."),
    (3008, 400, "Request method is required."),
    (3009, 400, "Unsupported method."),
    (2003, 429, "Kinesis error due to limit being exceeded"),
    (2013, 429, "Lambda total concurrent execution exceeds the reserved concurrency"),
    (9999, 500, "Unknown/undiagnosed"),
    (1001, 500, "TD API is unreachable or timed out"),
    (1002, 500, "Table API is unreachable or timed out"),
    (1003, 500, "Kinesis is unreachable or timed out"),
    (1004, 500, "Lambda is unreachable or timed out"),
    (1005, 500, "MemoryDB is unreachable or timed out"),
    (2001, 500, "Kinesis stream was not found"),
    (2002, 500, "Kinesis operation threw an error"),
    (2011, 500, "Lambda function was not found"),
    (2012, 500, "Lambda function threw an error, or response was unhandled"),
    (2014, 500, "Lambda invocation failed"),
    (2015, 500, "Lambda reactor configuration doesn't have the token yet"),
    (2021, 500, "MemoryDB operation threw an error"),
    (3010, 500, "RT Token is configured with a reactor whose token is inconsistent (account or reactor ID mismatch)"),
    (3011, 500, "RT Token is configured with a reactor whose name is inconsistent (site or stage different from this API)"),
    (3012, 500, "RT Token is configured with a reactor whose name is completely invalid"),
    (3013, 500, "Unable to retrieve Client IP from request"),
];

/// The status and message of a documented code; an undocumented one is a 500 (the sim's choice).
pub(super) fn td_code(code: u32) -> (u16, &'static str) {
    TD_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or((500, "Undocumented code (simulated)"), |(_, s, m)| (*s, m))
}

/// The OpenAPI's error answer for `code`: `{"code", "message"}`, `application/json`.
pub(super) fn td_error(code: u32) -> Answer {
    let (status, message) = td_code(code);
    Answer::json(status, &json!({"code": code, "message": message}))
}

/// The same, with the simulator's own explanation after TD's message.
pub(super) fn td_error_because(code: u32, why: &str) -> Answer {
    let (status, message) = td_code(code);
    Answer::json(
        status,
        &json!({"code": code, "message": format!("{message} ({why})")}),
    )
}

/// What a fault makes of the answer: `Some` when it replaces it. A latency fault only sets
/// `hold`; a hang is counted (status 0) and never answers (well, after an hour). On a p13n
/// endpoint a `status` fault answers with TD's error body for that status.
pub(super) async fn apply(
    state: &SimState,
    endpoint: &'static str,
    service: &str,
    f: &Fault,
    hold: &mut Option<Duration>,
) -> Option<Answer> {
    let p13n = endpoint.starts_with("p13n");
    if let Some(ms) = f.latency_ms {
        *hold = Some(Duration::from_millis(ms));
    }
    if f.hang {
        state.count_request(endpoint, service, 0);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let retry_after = |a: Answer| match f.retry_after {
        Some(s) => a.with_header("retry-after", s.to_string()),
        None => a,
    };
    if let Some(code) = f.td_code {
        return Some(retry_after(td_error(code)));
    }
    if let Some(status) = f.status {
        let a = match (p13n, status) {
            // A documented code of the status (p13n-api.yml: 400 → 3004, 429 → 2003, 500 → 9999).
            (true, 400) => td_error(3004),
            (true, 429) => td_error(2003),
            (true, 500) => td_error(9999),
            // TD documents no body for other statuses: a message only.
            (true, _) => Answer::json(status, &json!({"message": format!("simulated {status}")})),
            (false, _) => Answer::json(
                status,
                &json!({"error": format!("simulated {status}"), "message": "injected by the scenario"}),
            ),
        };
        let mut a = retry_after(a);
        a.status = status;
        return Some(a);
    }
    let streamed = |body| Answer::stream(200, body, "application/json");
    if f.trickle {
        return Some(streamed(bodies::trickle()));
    }
    if f.reset {
        return Some(streamed(bodies::cut_off()));
    }
    if let Some(n) = f.body_bytes {
        return Some(streamed(bodies::huge(n)));
    }
    let json_type = Some("application/json");
    if f.malformed {
        let body = "{\"section\": \"premium_users\", \"outputs\": {";
        return Some(Answer::bytes(200, body, json_type));
    }
    if f.wrong_shape {
        return Some(Answer::json(200, &json!({"result": [1, 2, 3]})));
    }
    if f.invalid_utf8 {
        let body = &b"{\"section\": \"\xff\xfe\"}"[..];
        return Some(Answer::bytes(200, body, json_type));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_family_status() {
        assert_eq!(td_code(3007).0, 400);
        assert_eq!(td_code(2013).0, 429);
        assert_eq!(td_code(3013).0, 500);
        assert_eq!(td_code(9999), (500, "Unknown/undiagnosed"));
        assert_eq!(TD_CODES.len(), 29);
    }
}
