//! Discovery as TD's CDP API pages it: `GET /audiences/{ps}/realtime_personalization_services`.
//!
//! Source: the OpenAPI copy `spec/openapi/cdp-api.yml` — the operation's parameters
//! `partial_pagination.yaml-PageAfter` / `-PageSize` (number, default 100, 1–1000) and
//! `NameInclude`, its answer `partial_pagination.yaml-PaginatedResponse` (`data` and
//! `pagination.nextPage`, both required; `nextPage` is "the path part of URL of the next page",
//! nullable) whose items are `{id}` + `RealtimePersonalizationServiceAttributes` (`name`,
//! `description`, `public`, required) + `...ReadonlyAttributes` (`tokens` required, each token
//! `{id, name, value (null when masked), allowedIps}`). Items carry exactly those keys.
//!
//! Order: the simulator's service order (built-in, scenario, generated extras), stable across
//! pages. `page[after]` is the id of the previous page's last item (opaque to clients). A bad
//! `page[size]` or an unknown cursor is a 400 with the CDP API's `Error` body
//! `{"code": "<string>", "message": "..."}` (the code strings are the simulator's own).

use std::time::Duration;

use serde_json::{json, Value};

use super::faults;
use super::reply::{Answer, Handled};
use super::routes::SimRequest;
use super::state::SimState;

const DEFAULT_SIZE: usize = 100;
const MAX_SIZE: usize = 1000;

pub(super) async fn answer(
    state: &SimState,
    req: &SimRequest,
    raw_ps: &str,
    ps: &str,
    hold: &mut Option<Duration>,
) -> Handled {
    let sc = state.scenario();
    let done = |answer: Answer| Handled {
        endpoint: "discovery",
        service: ps.to_string(),
        answer,
    };
    if let Some(a) = super::auth::check_key(state, &sc, req) {
        return done(a);
    }
    let fault = state.fault(ps, None, "discovery");
    if let Some(f) = &fault {
        if let Some(a) = faults::apply(state, "discovery", ps, f, hold).await {
            return done(a.faulted(true));
        }
    }
    done(page(state, req, raw_ps, ps).faulted(fault.is_some()))
}

fn bad(code: &str, message: String) -> Answer {
    Answer::json(400, &json!({"code": code, "message": message}))
}

fn page(state: &SimState, req: &SimRequest, raw_ps: &str, ps: &str) -> Answer {
    let q = &req.query;
    let size = match q.get("page[size]") {
        None => DEFAULT_SIZE,
        // PageSize is `type: number`, `minimum: 1`, `maximum: 1000`: a fraction is a valid
        // request, and the simulator lists its whole part (its own choice).
        Some(s) => match s.parse::<f64>() {
            Ok(n) if (1.0..=MAX_SIZE as f64).contains(&n) => n.floor() as usize,
            _ => {
                return bad(
                    "invalid_page_size",
                    format!("page[size] must be a number from 1 to {MAX_SIZE}, not {s:?}"),
                )
            }
        },
    };
    let name_include = q.get("name_include").map(String::as_str).unwrap_or("");
    let list: Vec<_> = state
        .services()
        .into_iter()
        .filter(|s| s.parent_segment == ps && s.name.contains(name_include))
        .filter_map(|s| s.service_id.clone().map(|id| (id, s)))
        .collect();
    let start = match q.get("page[after]") {
        None => 0,
        Some(after) => match list.iter().position(|(id, _)| id == after) {
            Some(i) => i + 1,
            None => {
                return bad(
                    "invalid_page_after",
                    format!("page[after] {after:?} names no item of this list"),
                )
            }
        },
    };
    let items: Vec<Value> = list
        .iter()
        .skip(start)
        .take(size)
        .map(|(id, s)| {
            let ips = s.allowed_ips.clone().unwrap_or_default();
            json!({
                "id": id,
                "name": s.name,
                "description": s.description.as_deref().unwrap_or("simulated"),
                "public": s.public,
                "tokens": [{"id": format!("{id}01"), "name": "default", "value": null, "allowedIps": ips}],
            })
        })
        .collect();
    let next = (start + size < list.len())
        .then(|| list.get(start + size - 1))
        .flatten()
        .map(|(last, _)| {
            let mut qs = url::form_urlencoded::Serializer::new(String::new());
            qs.append_pair("page[after]", last);
            qs.append_pair("page[size]", &size.to_string());
            if !name_include.is_empty() {
                qs.append_pair("name_include", name_include);
            }
            format!(
                "/audiences/{raw_ps}/realtime_personalization_services?{}",
                qs.finish()
            )
        });
    Answer::json(
        200,
        &json!({"data": items, "pagination": {"nextPage": next}}),
    )
}
