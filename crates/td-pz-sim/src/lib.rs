//! The TD simulator: both personalization API flavors, the management endpoints and discovery,
//! on loopback, following TD's documents (`spec/td-api.md`, `spec/openapi/`), not the client.
//!
//! The crate root owns starting and stopping ([`Simulator`], [`SimConfig`]) and the accept loop.
//! One request goes to [`handle::handle`]: who may ask is [`auth`], which endpoint [`routes`],
//! the answers [`p13n`] (strict), [`cdp`] (and the management endpoints) and [`discovery`];
//! faults are in [`faults`] and their broken [`bodies`], held answers in [`timers`], the world
//! and its traffic in [`state`], the scenario in [`scenario`], the request log in [`record`].
//!
//! It shares no code with the exporter on purpose: only [`kernel_time`], the socket clocks both
//! sides read.

// The module map above is for whoever works on the simulator: its links may name private modules.
#![allow(rustdoc::private_intra_doc_links)]

mod auth;
mod bodies;
mod cdp;
mod discovery;
mod faults;
mod handle;
mod p13n;
pub mod record;
mod reply;
mod routes;
pub mod scenario;
mod seed;
mod state;
mod timers;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use handle::handle;
use record::Recorder;

pub use reply::SimBody;
pub use scenario::{Fault, Scenario, Shape, SimFlavor, SimService};
pub use state::{builtin_services, persona_section, Received, SimState, SECTION_MIX};

/// How the simulator is started.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// The key `Authorization: TD1 <key>` must carry; its part before `/` is the account.
    pub api_key: String,
    /// The `WP13n-Token` the p13n endpoints require (a service's `token` wins); `None`: any
    /// well-formed token of the key's account.
    pub p13n_token: Option<String>,
    pub scenario: Scenario,
    /// Append one JSON line per answered request to this file ([`record`]); when `None`, the
    /// file named by `TD_PZ_SIM_RECORD`, if any.
    pub record: Option<PathBuf>,
}

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    stop: CancellationToken,
}

impl Simulator {
    /// Binds `listen` (port 0 for any) and serves in the background. Fails when the recording
    /// file cannot be opened.
    pub async fn start(listen: &str, cfg: SimConfig) -> io::Result<Simulator> {
        let recorder = Recorder::from_config(cfg.record.as_deref())?.map(Arc::new);
        let listener = TcpListener::bind(listen).await?;
        kernel_time::prepare(&listener);
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(cfg.api_key, cfg.p13n_token, cfg.scenario));
        let stop = CancellationToken::new();
        let (st, stop2) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = stop2.cancelled() => break,
                };
                let _ = stream.set_nodelay(true);
                let (stream, clock) = kernel_time::Stamped::new(stream);
                let (st, rec, stop3) = (st.clone(), recorder.clone(), stop2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (st, rec) = (st.clone(), rec.clone());
                        let arrived = clock.take();
                        async move {
                            Ok::<_, Infallible>(handle(st, rec, req, peer.ip(), arrived).await)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop3.cancelled() => {}
                    }
                });
            }
        });
        Ok(Simulator { addr, state, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests;
