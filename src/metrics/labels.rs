//! The label values only the metrics use: why an HTTP request to the exporter was refused. The
//! domain's own enums ([`crate::poller::Poller`], [`crate::td::Endpoint`]) give theirs themselves.

/// Why the exporter's own HTTP server refused a request.
#[derive(Clone, Copy, Debug)]
pub enum BadRequest {
    Method,
    NotFound,
    Unauthorized,
}

impl BadRequest {
    pub fn as_label(&self) -> &'static str {
        match self {
            BadRequest::Method => "method",
            BadRequest::NotFound => "not_found",
            BadRequest::Unauthorized => "unauthorized",
        }
    }
}
