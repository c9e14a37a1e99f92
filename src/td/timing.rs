//! Measures how long opening a connection takes, for the connect / first byte / body split.
//!
//! A connector layer times each connect and writes the duration into a slot that
//! [`TdClient::send`](super::TdClient::send) puts in a task-local for the request. A request on a
//! pooled connection runs no connect, so its slot stays empty ("reused").

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

pub type Slot = Arc<Mutex<Option<Duration>>>;

tokio::task_local! {
    pub static CONNECT_TIME: Slot;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectTiming;

impl<S> tower_layer::Layer<S> for ConnectTiming {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Timed<S>(S);

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let slot = CONNECT_TIME.try_with(Slot::clone).ok();
        let fut = self.0.call(req);
        Box::pin(async move {
            let start = Instant::now();
            let out = fut.await;
            if let Some(slot) = slot {
                *slot.lock() = Some(start.elapsed());
            }
            out
        })
    }
}
