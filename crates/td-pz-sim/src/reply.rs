//! What the simulator answers, before it becomes a hyper response: status, headers, a body held
//! whole (so the recorder can keep its text) or streamed (fault bodies), and whether a fault
//! shaped it.
//!
//! Owns the response plumbing only; which answer to give is decided by the route modules.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{Response, StatusCode};
use serde_json::Value;

pub type SimBody = BoxBody<Bytes, io::Error>;

pub(super) enum Payload {
    Bytes(Bytes),
    /// A body produced while it is sent (slow, endless or cut off): the recorder keeps no text.
    Stream(SimBody),
}

pub(super) struct Answer {
    pub status: u16,
    /// Response headers, lowercase names.
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload,
    /// A scenario fault (or `revoked`) shaped this answer.
    pub fault: bool,
}

impl Answer {
    /// A JSON body with `Content-Type: application/json`.
    pub fn json(status: u16, v: &Value) -> Answer {
        Answer::bytes(
            status,
            serde_json::to_vec(v).unwrap_or_default(),
            Some("application/json"),
        )
    }

    pub fn bytes(status: u16, body: impl Into<Bytes>, content_type: Option<&str>) -> Answer {
        Answer {
            status,
            headers: content_type
                .map(|c| ("content-type", c.to_string()))
                .into_iter()
                .collect(),
            payload: Payload::Bytes(body.into()),
            fault: false,
        }
    }

    pub fn stream(status: u16, body: SimBody, content_type: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type", content_type.to_string())],
            payload: Payload::Stream(body),
            fault: false,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }

    pub fn faulted(mut self, fault: bool) -> Answer {
        self.fault |= fault;
        self
    }

    /// The body as text, `None` for a streamed body.
    pub fn body_text(&self) -> Option<String> {
        match &self.payload {
            Payload::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Payload::Stream(_) => None,
        }
    }

    pub fn into_response(self) -> Response<SimBody> {
        let body = match self.payload {
            Payload::Bytes(b) => full(b),
            Payload::Stream(s) => s,
        };
        let mut r = Response::new(body);
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (k, v) in self.headers {
            if let Ok(v) = v.parse() {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }
}

pub(super) fn full(b: impl Into<Bytes>) -> SimBody {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// An answer with what it answered: the endpoint and service it is counted under.
pub(super) struct Handled {
    pub endpoint: &'static str,
    pub service: String,
    pub answer: Answer,
}
