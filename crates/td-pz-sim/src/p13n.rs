//! Flavor `p13n`, strict: TD's published RT 2.0 Personalization API as its documents say.
//!
//! Sources, cited at each rule: the OpenAPI copy `spec/openapi/p13n-api.yml` ("OpenAPI") and
//! `spec/td-api.md` ("td-api.md", which quotes TD's pages and td-js-sdk 4.4.3). Where TD documents
//! no code for a check, the comment says the answer is the simulator's own choice.
//!
//! Paths: `POST /{database}/{table}` (server) and `POST /public/{database}/{table}` (browser,
//! td-js-sdk ≥ 4.3). Checks, in this order: the `TD1` key (401, [`super::auth::check_key`]); the method
//! (3009); the `WP13n-Token` (3000, 3003, 3001, 3002); the client IP (3005); on `/public` the
//! `Origin` (3007); the database/table names and the service (404); the media types and the event
//! (3004). Then faults, then the answer `{"offers": {...}}`. There is no lenient mode; only the
//! scenario's `accept_any_service` widens which services exist.
//!
//! It must not share code with the exporter's client (`td/p13n.rs`): it is the other side.

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Map, Value};

use super::auth;
use super::faults::{self, td_error_because};
use super::reply::{Answer, Handled};
use super::routes::SimRequest;
use super::scenario::{Fault, SimService};
use super::state::{outputs_for, persona_section, SimState};

/// OpenAPI `requestBody.content` and its "Versioning" note.
const VND: &str = "application/vnd.treasuredata.v1+json";
/// The user key of a service that names none (td-api.md: "e.g. `td_client_id`").
const DEFAULT_USER_KEY: &str = "td_client_id";
/// OpenAPI `event.time`: "between 00:00:00 1 Jan 1970 UTC and 23:59:59 31 Dec 9999 UTC".
const MAX_TIME: i64 = 253_402_300_799;

/// Answers one request on a p13n path.
pub(super) async fn answer(
    state: &SimState,
    req: &SimRequest,
    database: &str,
    table: &str,
    public: bool,
    hold: &mut Option<Duration>,
) -> Handled {
    let endpoint = if public { "p13n_public" } else { "p13n" };
    let sc = state.scenario();
    let svc = state
        .services()
        .into_iter()
        .find(|s| s.database.as_deref() == Some(database) && s.table.as_deref() == Some(table));
    let service = svc
        .as_ref()
        .map_or_else(|| table.to_string(), |s| s.name.clone());
    let done = |answer: Answer| Handled {
        endpoint,
        service: service.clone(),
        answer,
    };
    if let Some(a) = auth::check_key(state, &sc, req) {
        return done(a);
    }
    if let Err(a) = check(state, req, svc.as_ref(), database, table, public) {
        return done(a);
    }
    if svc.is_none() && !sc.accept_any_service {
        // TD documents no code for an unknown destination: the simulator's choice.
        return done(Answer::json(
            404,
            &json!({"message": format!("no personalization service ingests into {database}.{table}")}),
        ));
    }
    let event = match event(req, public) {
        Ok(e) => e,
        Err(a) => return done(a),
    };
    let user = user_of(&event, svc.as_ref().and_then(|s| s.user_key.as_deref()));
    let fault = state.fault(&service, user.as_deref(), endpoint);
    if let Some(f) = &fault {
        if let Some(a) = faults::apply(state, endpoint, &service, f, hold).await {
            return done(a.faulted(true));
        }
    }
    done(offers(&user.unwrap_or_default(), fault.as_ref()).faulted(fault.is_some()))
}

/// Method, credentials ([`auth::p13n`]), names and media types.
fn check(
    state: &SimState,
    req: &SimRequest,
    svc: Option<&SimService>,
    database: &str,
    table: &str,
    public: bool,
) -> Result<(), Answer> {
    // OpenAPI: the only operation is `post`; "3009: Unsupported method" is the simulator's
    // reading for any other method on a p13n path.
    if req.method != Method::POST {
        return Err(td_error_because(
            3009,
            &format!("{} is not served", req.method),
        ));
    }
    auth::p13n(state, req, svc, public)?;
    // OpenAPI path parameters: `pattern: '[0-9a-z_]{3,128}'`; no code documented: a 404.
    if !name_ok(database) || !name_ok(table) {
        return Err(Answer::json(
            404,
            &json!({"message": "database and table must match [0-9a-z_]{3,128}"}),
        ));
    }
    // OpenAPI `requestBody.content`: the vnd type (td-api.md: /public takes what td-js-sdk
    // sends, `application/json` too). No code is documented for a wrong type: 3004, the
    // simulator's choice, as for an `Accept` that refuses the vnd type ("Versioning").
    let ct = req.header("content-type").unwrap_or("");
    let base = ct.split(';').next().unwrap_or("").trim();
    let ct_ok =
        base.eq_ignore_ascii_case(VND) || (public && base.eq_ignore_ascii_case("application/json"));
    if !ct_ok {
        return Err(td_error_because(
            3004,
            &format!("Content-Type {ct:?} is not {VND}"),
        ));
    }
    let accept: Vec<&str> = req
        .headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !accepts_vnd((!accept.is_empty()).then(|| accept.join(",")).as_deref()) {
        return Err(td_error_because(
            3004,
            &format!("Accept does not accept {VND}"),
        ));
    }
    Ok(())
}

fn name_ok(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'_')
}

/// Whether an `Accept` header accepts the vnd type (none at all accepts anything, RFC 9110).
fn accepts_vnd(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        let matches = media == "*/*"
            || media.eq_ignore_ascii_case("application/*")
            || media.eq_ignore_ascii_case(VND);
        matches && !refused
    })
}

/// The event: a JSON object; on the server path with `time` and `uuid` (OpenAPI `event`:
/// `required: [time, uuid]`), on `/public` with them only if present (td-api.md: td-js-sdk
/// 4.4.3 sends neither). Anything else is 3004 "Invalid event object".
fn event(req: &SimRequest, public: bool) -> Result<Map<String, Value>, Answer> {
    let bad = |why: &str| td_error_because(3004, why);
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(bad("the body is not a JSON object"));
    };
    match event.get("time") {
        None if public => {}
        None => return Err(bad("time is required")),
        Some(t) => {
            if !t.as_i64().is_some_and(|t| (0..=MAX_TIME).contains(&t)) {
                return Err(bad("time must be an integer of seconds since the epoch"));
            }
        }
    }
    match event.get("uuid") {
        None if public => {}
        None => return Err(bad("uuid is required")),
        Some(u) => {
            if !u.as_str().is_some_and(uuid_ok) {
                return Err(bad("uuid must be a UUID"));
            }
        }
    }
    Ok(event)
}

/// OpenAPI `format: uuid`: 8-4-4-4-12 hex digits, either case.
fn uuid_ok(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The user id: the service's user key (`td_client_id` when it names none), else `user_id`,
/// else the first string field other than `uuid`.
fn user_of(event: &Map<String, Value>, user_key: Option<&str>) -> Option<String> {
    [user_key.unwrap_or(DEFAULT_USER_KEY), "user_id"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .or_else(|| {
            event
                .iter()
                .filter(|(k, _)| k.as_str() != "uuid")
                .find_map(|(_, v)| v.as_str())
        })
        .map(str::to_string)
}

/// The answer with offers (td-api.md: `{"offers": {"<section>": {"attributes", "batch_segments"}}}`),
/// or without, as a fault's `no_offers` asks (td-api.md: "an empty body, 204 or `{}`").
fn offers(user: &str, fault: Option<&Fault>) -> Answer {
    let json_type = Some("application/json");
    match fault.and_then(|f| f.no_offers.as_deref()) {
        Some("204") => return Answer::bytes(204, "", None),
        Some("empty") => return Answer::bytes(200, "", json_type),
        Some("{}") => return Answer::json(200, &json!({})),
        Some("offers_empty") => return Answer::json(200, &json!({"offers": {}})),
        _ => {}
    }
    let section = fault
        .and_then(|f| f.section.clone())
        .unwrap_or_else(|| persona_section(user).to_string());
    let mut outputs = outputs_for(&section);
    for d in fault.map(|f| f.drop_outputs.as_slice()).unwrap_or_default() {
        outputs.remove(d);
    }
    Answer::json(
        200,
        &json!({"offers": {section: {"attributes": Value::Object(outputs), "batch_segments": [{"id": 1}]}}}),
    )
}

#[cfg(test)]
#[path = "p13n_tests.rs"]
mod tests;
