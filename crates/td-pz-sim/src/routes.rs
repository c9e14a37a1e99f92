//! What a request is: its route (which endpoint, which names in the path) and the parts of it
//! the route modules read (headers, query, body, the client's address).
//!
//! Owns the parsing of paths and requests only; it decides no answer.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request};

/// What a request is, once its path is understood.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    Personalize {
        ps: String,
        svc: String,
        test: bool,
    },
    /// Any method: [`super::p13n`] answers a method other than POST with 3009.
    P13n {
        database: String,
        table: String,
        /// The browser path `/public/{database}/{table}` (td-js-sdk ≥ 4.3).
        public: bool,
    },
    Metrics {
        ps: String,
        id: String,
    },
    Logs {
        ps: String,
        id: String,
    },
    Discovery {
        ps: String,
    },
}

/// The route of `path` (still percent-encoded; segments are decoded here).
pub(super) fn route(method: &Method, path: &str) -> Option<Route> {
    let parts: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let s = |x: &str| x.to_string();
    match (method, p.as_slice()) {
        (&Method::POST, ["audiences", ps, "personalization", svc]) => Some(Route::Personalize {
            ps: s(ps),
            svc: s(svc),
            test: false,
        }),
        (&Method::POST, ["audiences", ps, "personalization", svc, "test"]) => {
            Some(Route::Personalize {
                ps: s(ps),
                svc: s(svc),
                test: true,
            })
        }
        (&Method::GET, ["audiences", ps, "personalization_services", id, "metrics"]) => {
            Some(Route::Metrics {
                ps: s(ps),
                id: s(id),
            })
        }
        (&Method::GET, ["audiences", ps, "personalization_services", id, "logs"]) => {
            Some(Route::Logs {
                ps: s(ps),
                id: s(id),
            })
        }
        (&Method::GET, ["audiences", ps, "realtime_personalization_services"]) => {
            Some(Route::Discovery { ps: s(ps) })
        }
        (_, ["public", db, table]) => Some(Route::P13n {
            database: s(db),
            table: s(table),
            public: true,
        }),
        (_, [db, table]) if *db != "_sim" && *db != "audiences" => Some(Route::P13n {
            database: s(db),
            table: s(table),
            public: false,
        }),
        _ => None,
    }
}

/// Percent-decodes one path segment (bytes that do not decode stay as they are).
fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request, read whole.
pub(super) struct SimRequest {
    pub method: Method,
    /// The path as received, still percent-encoded.
    pub raw_path: String,
    pub raw_query: Option<String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: IpAddr,
}

impl SimRequest {
    /// Reads `req` and up to `cap` bytes of its body (a body that cannot be read is empty).
    pub async fn read(req: Request<Incoming>, peer: IpAddr, cap: usize) -> SimRequest {
        let (parts, body) = req.into_parts();
        let raw_query = parts.uri.query().map(str::to_string);
        let query = raw_query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let body = http_body_util::Limited::new(body, cap)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        SimRequest {
            method: parts.method,
            raw_path: parts.uri.path().to_string(),
            raw_query,
            query,
            headers: parts.headers,
            body,
            peer,
        }
    }

    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_endpoints() {
        assert_eq!(
            route(&Method::POST, "/public/rt_events/web"),
            Some(Route::P13n {
                database: "rt_events".into(),
                table: "web".into(),
                public: true
            })
        );
        assert_eq!(
            route(&Method::GET, "/rt_events/web"),
            Some(Route::P13n {
                database: "rt_events".into(),
                table: "web".into(),
                public: false
            })
        );
        assert_eq!(
            route(&Method::POST, "/audiences/1/personalization/a%20b"),
            Some(Route::Personalize {
                ps: "1".into(),
                svc: "a b".into(),
                test: false
            })
        );
        assert_eq!(route(&Method::GET, "/_sim/stats"), None);
        assert_eq!(route(&Method::GET, "/a/b/c/d"), None);
    }
}
