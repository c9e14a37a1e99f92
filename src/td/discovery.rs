//! Discovery: TD's list of a parent segment's real-time personalization services (CDP API,
//! `GET /audiences/{audienceId}/realtime_personalization_services`, cdp-api.yml).
//!
//! TD pages it with `page[size]` (default 100, at most 1000) and `page[after]` (a cursor), and
//! answers `{"data": [...], "pagination": {"nextPage": "<the path part of the next page's URL>" |
//! null}}`; each item carries `id` (a string), `name`, `description`, `public` and `tokens` at its
//! top level. The next request is built here from the cursor alone, on the same path, so an
//! answer can never send the key elsewhere. Items whose id or name could not be a path segment
//! are refused and counted, never polled.

use serde_json::Value;

use super::Endpoint;
use super::{json, path, ParseError, TdRequest};
use crate::secret::Secret;

/// The query parameter names of TD's pagination (`partial_pagination.yaml-PageAfter/PageSize`).
pub const PAGE_SIZE: &str = "page[size]";
pub const PAGE_AFTER: &str = "page[after]";

pub fn request(
    cdp_api: &str,
    ps: &str,
    page_size: u32,
    after: Option<&str>,
    key: &Secret,
) -> TdRequest {
    let mut url = path::join(
        cdp_api,
        &["audiences", ps, "realtime_personalization_services"],
    );
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(a) = after {
        q.append_pair(PAGE_AFTER, a);
    }
    q.append_pair(PAGE_SIZE, &page_size.to_string());
    url.push('?');
    url.push_str(&q.finish());
    TdRequest::get(Endpoint::Discovery, url).td1(key)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundService {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryPage {
    pub services: Vec<FoundService>,
    /// The cursor of the next page (`page[after]`), when there is one.
    pub next_after: Option<String>,
    /// Items refused: no id or name, or one that could not be a path segment.
    pub refused: usize,
}

/// Parses one page. `expected_path` is the path this page was asked on (percent-encoded, as
/// [`request`] builds it): a `nextPage` on any other path is refused.
pub fn parse(body: &[u8], expected_path: &str) -> Result<DiscoveryPage, ParseError> {
    let v = json(body)?;
    let data = v
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| ParseError("the response has no \"data\" array".into()))?;
    let mut page = DiscoveryPage::default();
    for item in data {
        // TD puts the fields at the top of each item; a JSON:API `attributes` object is read too.
        let attrs = item.get("attributes").unwrap_or(item);
        let id = match item.get("id").or_else(|| attrs.get("id")) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let name = attrs.get("name").and_then(|n| n.as_str());
        match (id, name) {
            (Some(id), Some(name))
                if path::acceptable(&id).is_ok() && path::acceptable(name).is_ok() =>
            {
                page.services.push(FoundService {
                    id,
                    name: name.to_string(),
                })
            }
            _ => page.refused += 1,
        }
    }
    let next = v
        .get("pagination")
        .and_then(|p| p.get("nextPage").or_else(|| p.get("next_page")));
    page.next_after = match next {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(cursor_of(s, expected_path)?),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(ParseError("pagination.nextPage is not a string".into())),
    };
    Ok(page)
}

/// The `page[after]` cursor of a `nextPage`: the path of the next page (TD's form), a full URL,
/// or a bare cursor.
fn cursor_of(next: &str, expected_path: &str) -> Result<String, ParseError> {
    if !next.contains(['/', '?', '=']) {
        return Ok(next.to_string());
    }
    let base = url::Url::parse("http://td.invalid/").map_err(|e| ParseError(e.to_string()))?;
    let u = base
        .join(next)
        .map_err(|_| ParseError("pagination.nextPage is not a path".into()))?;
    if u.path() != expected_path {
        return Err(ParseError(
            "pagination.nextPage points at another path than this list: not followed".into(),
        ));
    }
    u.query_pairs()
        .find(|(k, _)| k == PAGE_AFTER)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ParseError("pagination.nextPage has no page[after] cursor".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/audiences/394649/realtime_personalization_services";

    #[test]
    fn requests_carry_tds_page_parameters() {
        let r = request("http://h/", "394649", 100, None, &Secret::new("k"));
        assert_eq!(r.url, format!("http://h{PATH}?page%5Bsize%5D=100"));
        let r = request("http://h", "394649", 1000, Some("a b&c"), &Secret::new("k"));
        assert_eq!(
            r.url,
            format!("http://h{PATH}?page%5Bafter%5D=a+b%26c&page%5Bsize%5D=1000")
        );
    }

    #[test]
    fn next_page_as_a_path_a_url_or_a_cursor() {
        let body = |next: &str| {
            format!(
                r#"{{"data":[{{"id":"7","name":"a","description":null,"public":false,"tokens":[]}}],"pagination":{{"nextPage":{next}}}}}"#
            )
        };
        for (next, want) in [
            (
                format!("\"{PATH}?page%5Bafter%5D=7&page%5Bsize%5D=100\""),
                Some("7"),
            ),
            (
                format!("\"{PATH}?page[size]=100&page[after]=c%2B1\""),
                Some("c+1"),
            ),
            (
                format!("\"https://api-cdp.treasuredata.com{PATH}?page[after]=9\""),
                Some("9"),
            ),
            ("\"opaque-cursor\"".to_string(), Some("opaque-cursor")),
            ("null".to_string(), None),
        ] {
            let p = parse(body(&next).as_bytes(), PATH).unwrap();
            assert_eq!(p.next_after.as_deref(), want, "{next}");
            assert_eq!(
                p.services,
                vec![FoundService {
                    id: "7".into(),
                    name: "a".into()
                }]
            );
        }
        for elsewhere in [
            "\"/audiences/394649/segments?page[after]=7\"",
            "\"/audiences/394649/realtime_personalization_services/../x?page[after]=7\"",
            &format!("\"{PATH}?page[size]=100\""),
        ] {
            assert!(
                parse(body(elsewhere).as_bytes(), PATH).is_err(),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn items_that_could_move_a_request_are_refused() {
        let p = parse(
            br#"{"data":[{"id":"7","name":"ok"},{"id":"..","name":"x"},{"id":"8","name":"."},
                {"name":"no id"},{"id":9,"attributes":{"name":"json:api"}},{"id":"10","name":"a/b?c"}],
              "pagination":{"nextPage":null}}"#,
            PATH,
        )
        .unwrap();
        assert_eq!(p.refused, 3);
        let names: Vec<&str> = p.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok", "json:api", "a/b?c"]);
    }
}
