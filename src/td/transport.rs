//! How a request reaches TD: hyper-util's pooled client over kernel-stamped sockets, or reqwest
//! when the environment names a proxy.
//!
//! The direct transport is what makes a probe's latency the service's and not the exporter's: its
//! connections are [`Stamped`] sockets, so an answer's clock stops at the kernel's receive time of
//! its last bytes ([`Answer::rx`]) rather than at whenever the exporter's thread woke to read them.
//! TLS is rustls (ring, webpki roots) through hyper-rustls, HTTP/1.1 or HTTP/2 by ALPN.
//!
//! reqwest carries the requests instead when `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` is set
//! (reqwest honours them and `NO_PROXY`): a proxied answer's bytes arrive from the proxy, so the
//! exporter times those in user space.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use kernel_time::{RxClock, Stamped};

use super::timing::{ConnectTiming, Timed};

pub type BoxError = Box<dyn StdError + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The environment variables that send requests through a proxy (either case).
pub const PROXY_VARS: [&str; 3] = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"];

/// Which transport [`Transport::new`] builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Kernel-stamped sockets, unless the environment names a proxy.
    Auto,
    Direct,
    Proxied,
}

impl Kind {
    fn resolve(self) -> Kind {
        match self {
            Kind::Auto if proxy_in_env() => Kind::Proxied,
            Kind::Auto => Kind::Direct,
            k => k,
        }
    }
}

fn proxy_in_env() -> bool {
    proxy_named(|name| std::env::var_os(name))
}

/// Whether `var` (the environment) names a proxy in one of [`PROXY_VARS`], either case.
pub fn proxy_named(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARS.iter().any(|v| {
        [v.to_string(), v.to_ascii_lowercase()]
            .iter()
            .any(|name| var(name).is_some_and(|s| !s.is_empty()))
    })
}

type DirectClient = Client<Timed<HttpsConnector<StampingConnector>>, Full<Bytes>>;

#[derive(Clone, Debug)]
pub enum Transport {
    Direct(Box<DirectClient>),
    Proxied(reqwest::Client),
}

/// An answer's head and body, and the receive clock of the connection it came on (direct only).
pub struct Answer {
    pub response: http::Response<Body>,
    pub rx: Option<RxClock>,
}

/// Why a request got no answer head.
#[derive(Debug)]
pub struct TransportError {
    /// The connection could not be opened (TCP, TLS).
    pub connect: bool,
    /// The error's chain as text, outermost first, without anything that names the URL.
    pub chain: Vec<String>,
    pub timed_out: bool,
}

impl Transport {
    pub fn new(kind: Kind, connect_timeout: Duration, user_agent: &str) -> Result<Self, String> {
        match kind.resolve() {
            Kind::Proxied => reqwest::Client::builder()
                .user_agent(user_agent)
                .connect_timeout(connect_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(32)
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .connector_layer(ConnectTiming)
                .build()
                .map(Transport::Proxied)
                .map_err(|e| e.to_string()),
            _ => {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(connect_timeout));
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let https = HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(provider)
                    .map_err(|e| e.to_string())?
                    .https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(StampingConnector(http));
                let client = Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(32)
                    .pool_timer(TokioTimer::new())
                    .build(tower_layer::Layer::layer(&ConnectTiming, https));
                Ok(Transport::Direct(Box::new(client)))
            }
        }
    }

    pub fn is_direct(&self) -> bool {
        matches!(self, Transport::Direct(_))
    }

    /// Sends the request and waits for the answer's head.
    pub async fn send(&self, req: http::Request<Bytes>) -> Result<Answer, TransportError> {
        match self {
            Transport::Direct(client) => {
                let resp = client
                    .request(req.map(Full::new))
                    .await
                    .map_err(|e| TransportError::new(&e, e.is_connect()))?;
                let rx = resp.extensions().get::<RxClock>().cloned();
                Ok(Answer {
                    response: resp.map(|b| b.map_err(BoxError::from).boxed_unsync()),
                    rx,
                })
            }
            Transport::Proxied(client) => {
                let req = reqwest::Request::try_from(req.map(reqwest::Body::from))
                    .map_err(|e| TransportError::new_below(&e, false))?;
                let resp = client
                    .execute(req)
                    .await
                    .map_err(|e| TransportError::new_below(&e, e.is_connect()))?;
                let resp = http::Response::<reqwest::Body>::from(resp);
                Ok(Answer {
                    response: resp.map(|b| b.map_err(BoxError::from).boxed_unsync()),
                    rx: None,
                })
            }
        }
    }
}

impl TransportError {
    fn new(e: &(dyn StdError + 'static), connect: bool) -> Self {
        let mut chain = Vec::new();
        let mut timed_out = false;
        let mut cur = Some(e);
        while let Some(err) = cur {
            chain.push(err.to_string());
            timed_out |= err
                .downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
            cur = err.source();
        }
        TransportError {
            connect,
            chain,
            timed_out,
        }
    }

    /// From the error's source: reqwest's own message names the URL, whose query may be private.
    fn new_below(e: &reqwest::Error, connect: bool) -> Self {
        let mut out = match e.source() {
            Some(src) => TransportError::new(src, connect),
            None => TransportError {
                connect,
                chain: Vec::new(),
                timed_out: false,
            },
        };
        out.timed_out |= e.is_timeout();
        if out.chain.is_empty() {
            let mut text = e.to_string();
            if let Some(url) = e.url() {
                let mut bare = url.clone();
                bare.set_query(None);
                text = text.replace(url.as_str(), bare.as_str());
            }
            out.chain.push(text);
        }
        out
    }

    /// The same for a body error, seen through the boxed body.
    pub fn from_body(e: &BoxError) -> Self {
        TransportError::new(e.as_ref(), false)
    }
}

/// hyper-util's TCP connector, with every connection a [`Stamped`] socket whose [`RxClock`]
/// rides on each response (as a `Connected` extra, next to hyper-util's `HttpInfo`).
#[derive(Clone, Debug)]
pub struct StampingConnector(HttpConnector);

impl tower_service::Service<Uri> for StampingConnector {
    type Response = TokioIo<Stamped>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(BoxError::from)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            Ok(TokioIo::new(Stamped::new(tcp).0))
        })
    }
}
