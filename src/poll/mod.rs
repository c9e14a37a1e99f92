//! The pollers: one module per kind of job, each running one job and returning a typed outcome.
//!
//! Pollers are pure in what they report: each returns an outcome ([`crate::outcome`]) and writes
//! no metric, history or log line; [`crate::record::Recorder`] does. [`Ctx`] is what every run
//! needs to send (the client, the TD settings, the per-service budgets). [`send_with_retry`] is the management pollers' API discipline: the budget before
//! every request, each request counted, 429 and 5xx retried with exponential backoff and jitter
//! (honouring `Retry-After`), 401/403/404 left for the next schedule.

pub mod discovery;
pub mod logs;
pub mod metrics;
pub mod probe;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::budget::Budget;
use crate::config::{Defaults, TdSettings};
use crate::outcome::Attempt;
use crate::reason::Reason;
use crate::td::{Failure, Sent, TdClient, TdRequest, TdResponse};

/// Everything a poller needs to send its requests: the client, the TD settings, the per-service
/// budgets and the logs poller's memory. Rebuilt on reload; jobs load the current one at each run.
/// It holds nothing to write results to: a poller returns them.
pub struct Ctx {
    pub client: TdClient,
    pub td: TdSettings,
    pub defaults: Defaults,
    pub budgets: Arc<Budgets>,
    pub log_states: Arc<logs::LogStates>,
}

impl Ctx {
    /// A context of its own, for one run outside the daemon (the `probe` subcommand).
    pub fn standalone(cfg: &crate::config::Config) -> Result<Ctx, crate::td::ClientError> {
        Ok(Ctx {
            client: TdClient::for_config(cfg)?,
            td: cfg.td.clone(),
            defaults: cfg.defaults.clone(),
            budgets: Arc::new(Budgets::default()),
            log_states: Arc::new(logs::LogStates::default()),
        })
    }
}

/// One [`Budget`] per service (`parent_segment/pz_service`), kept across reloads.
#[derive(Default)]
pub struct Budgets {
    map: Mutex<HashMap<String, Arc<Budget>>>,
}

impl Budgets {
    pub fn get(&self, key: &str, per_second: u32) -> Arc<Budget> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Budget::new(per_second)));
        if entry.per_second() != per_second {
            *entry = Arc::new(Budget::new(per_second));
        }
        entry.clone()
    }

    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| keep(k));
    }
}

/// The labels of a service in metrics and logs.
#[derive(Clone, Debug)]
pub struct ServiceRef {
    pub parent_segment: String,
    pub name: String,
    pub budget_rps: u32,
}

impl ServiceRef {
    pub fn key(&self) -> String {
        format!("{}/{}", self.parent_segment, self.name)
    }
}

/// The result of a request after retries: the last exchange, and every attempt sent.
pub struct Retried {
    pub sent: Sent,
    pub attempts: Vec<Attempt>,
}

impl Retried {
    /// The response when it is a 2xx, else the failure's reason and message.
    pub fn ok(&self) -> Result<&TdResponse, Failure> {
        match &self.sent.result {
            Err(f) => Err(f.clone()),
            Ok(r) => match Reason::from_status(r.status) {
                None => Ok(r),
                Some(reason) => Err(Failure {
                    reason,
                    status: Some(r.status),
                    message: match crate::td::error_detail(&r.body) {
                        Some(d) => format!("HTTP {}: {d}", r.status),
                        None => format!("HTTP {}", r.status),
                    },
                }),
            },
        }
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 30 s, each times 0.5..1.0.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1u32 << attempt.min(6));
    let base = base.min(Duration::from_secs(30));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

/// Sends `req` for a management poller, within the service's budget, retrying what can be.
pub async fn send_with_retry(ctx: &Ctx, svc: &ServiceRef, req: &TdRequest) -> Retried {
    let budget = ctx.budgets.get(&svc.key(), svc.budget_rps);
    let max_attempts = ctx.td.max_retries + 1;
    let mut attempt = 0;
    let mut attempts = Vec::new();
    loop {
        budget.acquire().await;
        let sent = ctx.client.send(req).await;
        attempt += 1;
        let status = sent.result.as_ref().ok().map(|r| r.status);
        attempts.push(Attempt {
            endpoint: req.endpoint,
            status,
        });
        let reason = match &sent.result {
            Ok(r) => Reason::from_status(r.status),
            Err(f) => Some(f.reason),
        };
        let retry_after = sent.result.as_ref().ok().and_then(|r| r.retry_after());
        if reason == Some(Reason::RateLimited) {
            budget.pause_for(retry_after.unwrap_or_else(|| backoff(attempt)));
        }
        let retry = reason.is_some_and(|r| r.is_retryable()) && attempt < max_attempts;
        if !retry {
            return Retried { sent, attempts };
        }
        let wait = retry_after.unwrap_or_else(|| backoff(attempt - 1));
        tracing::debug!(
            pz_service = %svc.name,
            endpoint = req.endpoint.as_label(),
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retrying after a retryable failure"
        );
        tokio::time::sleep(wait).await;
    }
}
