//! Serving `/metrics` to many scrapers at once: one render at a time, shared.
//!
//! A render of thousands of services costs CPU and a buffer the size of the text (figures in
//! docs/performance.md). When several scrapers ask at once (HA Prometheus pairs, a federation, a
//! load test), rendering once per request multiplies both. Here a request waits for the render in
//! progress to end and, if that render started after the request arrived, takes its bytes;
//! otherwise it renders (once, for everyone queued behind it). Every answer reflects the state at
//! or after the moment its request arrived, so no scraper ever gets stale values. Only a weak
//! handle is kept between scrapes: the buffer is freed as soon as the last answer using it is sent.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::app::App;

/// How a scrape's body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// Gzip when the `Accept-Encoding` header lists it with a non-zero q (Prometheus does).
    pub fn negotiate(accept: Option<&str>) -> Encoding {
        let gzip = accept.is_some_and(|a| {
            a.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let name = parts.next().unwrap_or("");
                let q_zero = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                name.eq_ignore_ascii_case("gzip") && !q_zero
            })
        });
        if gzip {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

type Last = Option<(Instant, Weak<Vec<u8>>)>;

#[derive(Default)]
pub struct Coalescer {
    identity: Mutex<Last>,
    gzip: Mutex<Last>,
}

impl Coalescer {
    /// The text exposition of `app`'s metrics, rendered on the blocking pool.
    pub async fn render(&self, app: &Arc<App>, encoding: Encoding) -> Bytes {
        let app = app.clone();
        let (slot, render): (_, fn(&crate::metrics::Metrics) -> Vec<u8>) = match encoding {
            Encoding::Identity => (&self.identity, |m| m.render()),
            Encoding::Gzip => (&self.gzip, |m| m.render_gzip()),
        };
        render_shared(slot, move || {
            app.recorder()
                .scheduler_state(app.job_count(), app.runs_in_flight());
            render(&app.metrics)
        })
        .await
    }

    #[cfg(test)]
    async fn render_with<F>(&self, render: F) -> Bytes
    where
        F: FnOnce() -> Vec<u8> + Send + 'static,
    {
        render_shared(&self.identity, render).await
    }
}

/// Runs `render` on the blocking pool unless a render that started after this call arrived
/// can be shared. Rendering thousands of services would stall the scheduler's timers on the
/// async workers.
async fn render_shared<F>(slot: &Mutex<Last>, render: F) -> Bytes
where
    F: FnOnce() -> Vec<u8> + Send + 'static,
{
    let arrived = Instant::now();
    let mut last = slot.lock().await;
    if let Some((started, body)) = last.as_ref() {
        if *started >= arrived {
            if let Some(body) = body.upgrade() {
                return Bytes::from_owner(Shared(body));
            }
        }
    }
    let started = Instant::now();
    let body = Arc::new(
        tokio::task::spawn_blocking(render)
            .await
            .unwrap_or_default(),
    );
    *last = Some((started, Arc::downgrade(&body)));
    Bytes::from_owner(Shared(body))
}

/// A rendered text shared by the answers that use it.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_negotiated_as_prometheus_asks() {
        use Encoding::*;
        assert_eq!(Encoding::negotiate(Some("gzip")), Gzip);
        assert_eq!(Encoding::negotiate(Some("deflate, GZIP;q=0.5")), Gzip);
        assert_eq!(Encoding::negotiate(Some("gzip;q=0")), Identity);
        assert_eq!(Encoding::negotiate(Some("identity, br")), Identity);
        assert_eq!(Encoding::negotiate(None), Identity);
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn slow_render(calls: &Arc<AtomicUsize>) -> impl FnOnce() -> Vec<u8> + Send + 'static {
        let calls = calls.clone();
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(100));
            format!("render {n}").into_bytes()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_renders() {
        let c = Arc::new(Coalescer::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                c.render_with(slow_render(&calls)).await
            }));
        }
        let mut bodies = Vec::new();
        for t in tasks {
            bodies.push(t.await.unwrap());
        }
        // The first request renders; those that arrived during it share the second render.
        let n = calls.load(Ordering::SeqCst);
        assert!(n <= 2, "50 concurrent scrapes made {n} renders");
        assert!(bodies.iter().all(|b| b.starts_with(b"render ")));
    }

    #[tokio::test]
    async fn a_later_scrape_never_gets_an_older_render() {
        let c = Coalescer::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let first = c.render_with(slow_render(&calls)).await;
        // The first answer is still held (as by a slow client), yet a new request re-renders.
        let second = c.render_with(slow_render(&calls)).await;
        assert_eq!(&first[..], b"render 1");
        assert_eq!(&second[..], b"render 2");
    }
}
