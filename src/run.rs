//! Running the daemon: bind, serve, and handle signals (SIGHUP reloads, SIGTERM/SIGINT stop).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::web::{self, WebState};

pub struct Serving {
    pub listen: String,
    pub security: Arc<crate::web::security::WebSecurity>,
    pub telemetry_path: String,
    pub runbook_url: String,
    pub shutdown_grace: Duration,
}

/// Binds the web server; an error here is a failure to serve (exit 1).
pub async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Serves `app` until SIGTERM or SIGINT, reloading on SIGHUP. Returns when shut down.
pub async fn serve_until_signal(app: Arc<App>, listener: TcpListener, s: &Serving) {
    let stop = CancellationToken::new();
    let state = Arc::new(WebState {
        app: app.clone(),
        security: s.security.clone(),
        telemetry_path: s.telemetry_path.clone(),
        runbook_url: s.runbook_url.clone(),
        scrapes: Default::default(),
    });
    let server = tokio::spawn(web::serve(listener, state, stop.clone()));
    wait_for_stop(&app).await;
    tracing::info!("shutting down");
    let clean = app.shutdown(s.shutdown_grace).await;
    if !clean {
        tracing::warn!(grace = ?s.shutdown_grace, "runs still in flight after the grace period were cancelled");
    }
    stop.cancel();
    let _ = server.await;
}

#[cfg(unix)]
async fn wait_for_stop(app: &Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                let _ = app.reload().await;
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop(_app: &Arc<App>) {
    let _ = tokio::signal::ctrl_c().await;
}
