//! The daemon's core: turns a configuration into a plan of jobs and keeps it applied.
//!
//! Owns the live state that outlasts a reload (metrics, history, budgets, log state) and the
//! current [`Ctx`]. `apply` builds a plan (one job per probe and poller, this shard's services
//! only), swaps it into the scheduler by diff, and removes the series of services that left.
//! Each job run loads the current context, runs its poller and records the outcome: into the
//! metrics, the history and one log line per failure.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::config::{Config, Flavor, ParentSegment, Probe, ProbeEndpoint, Service};
use crate::hash::stable_hash;
use crate::history::{target_id, History};
use crate::metrics::{Metrics, Poller};
use crate::outcome::{Exchange, PollOutcome};
use crate::poll::discovery::{Coverage, Listing};
use crate::poll::{self, logs::LogStates, logs::SectionCap, Budgets, Ctx, ServiceRef};
use crate::schedule::{ApplyStats, PlannedJob, RunFn, Scheduler};
use crate::shard::Shard;
use crate::td::TdClient;

/// Where the configuration comes from, for reloads.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    File(PathBuf),
    /// Built in (the demo): a reload re-applies it.
    Embedded(Box<Config>),
}

pub struct App {
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
    scheduler: Scheduler,
    budgets: Arc<Budgets>,
    log_states: Arc<LogStates>,
    ctx: RwLock<Option<Arc<Ctx>>>,
    config: RwLock<Option<Arc<Config>>>,
    discovered: Mutex<BTreeMap<String, Listing>>,
    source: ConfigSource,
    shard: Option<Shard>,
    ready: AtomicBool,
    reload_lock: tokio::sync::Mutex<()>,
    me: Weak<App>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Client(#[from] crate::td::ClientError),
}

impl App {
    pub fn new(source: ConfigSource, shard: Option<Shard>, history_limit: usize) -> Arc<App> {
        let metrics = Arc::new(Metrics::new());
        Arc::new_cyclic(|me| App {
            scheduler: Scheduler::new(metrics.clone()),
            metrics,
            history: Arc::new(History::new(history_limit)),
            budgets: Arc::new(Budgets::default()),
            log_states: Arc::new(LogStates::default()),
            ctx: RwLock::new(None),
            config: RwLock::new(None),
            discovered: Mutex::new(BTreeMap::new()),
            source,
            shard,
            ready: AtomicBool::new(false),
            reload_lock: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn config(&self) -> Option<Arc<Config>> {
        self.config.read().ok().and_then(|c| c.clone())
    }

    pub fn ctx(&self) -> Option<Arc<Ctx>> {
        self.ctx.read().ok().and_then(|c| c.clone())
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    pub fn job_count(&self) -> usize {
        self.scheduler.job_count()
    }

    pub fn runs_in_flight(&self) -> usize {
        self.scheduler.runs_in_flight()
    }

    /// Loads the configuration from its source and applies it. On error the running plan stays.
    pub async fn reload(&self) -> Result<ApplyStats, ApplyError> {
        let _guard = self.reload_lock.lock().await;
        let loaded = match &self.source {
            ConfigSource::File(p) => Config::load(p),
            ConfigSource::Embedded(c) => Ok((**c).clone()),
        };
        let result = loaded
            .map_err(ApplyError::from)
            .and_then(|cfg| self.apply(Arc::new(cfg)));
        match &result {
            Ok(stats) => {
                self.metrics.config_loaded(true);
                tracing::info!(
                    started = stats.started,
                    kept = stats.kept,
                    stopped = stats.stopped,
                    jobs = self.scheduler.job_count(),
                    "configuration applied"
                );
            }
            Err(e) => {
                self.metrics.config_loaded(false);
                tracing::error!(error = %e, "configuration refused; the previous one keeps running");
            }
        }
        result
    }

    fn services_of(&self, cfg: &Config) -> Vec<Service> {
        let discovered = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        let mut services = poll::discovery::with_discovered(cfg, &discovered);
        let shard = self
            .shard
            .or(cfg.sharding.and_then(|(i, n)| Shard::new(i, n)));
        services.retain(|s| shard.is_none_or(|sh| sh.owns(&s.key())));
        services
    }

    /// Builds the plan for `cfg` and makes it the running one.
    pub fn apply(&self, cfg: Arc<Config>) -> Result<ApplyStats, ApplyError> {
        let client = TdClient::for_config(&cfg)?;
        let ctx = Arc::new(Ctx {
            client,
            td: cfg.td.clone(),
            defaults: cfg.defaults.clone(),
            metrics: self.metrics.clone(),
            history: self.history.clone(),
            budgets: self.budgets.clone(),
            log_states: self.log_states.clone(),
        });
        let services = self.services_of(&cfg);
        let mut jobs = Vec::new();
        let mut targets: HashSet<String> = HashSet::new();
        let mut service_keys: HashSet<(String, String)> = HashSet::new();
        for svc in &services {
            let (ps, name) = (svc.parent_segment.as_str(), svc.name.as_str());
            service_keys.insert((ps.to_string(), name.to_string()));
            let shared = Arc::new(svc.clone());
            let mut probe_names = BTreeSet::new();
            for probe in &svc.probes {
                probe_names.insert(probe.name.clone());
                self.metrics.init_probe(ps, name, &probe.name);
                self.history
                    .declare(Poller::Probe, ps, name, Some(&probe.name));
                targets.insert(target_id(Poller::Probe, ps, name, Some(&probe.name)));
                jobs.push(self.probe_job(shared.clone(), probe.clone()));
            }
            self.metrics.retain_probes(ps, name, &probe_names);
            if let Some(id) = &svc.service_id {
                for poller in [Poller::Metrics, Poller::Logs] {
                    self.history.declare(poller, ps, name, None);
                    targets.insert(target_id(poller, ps, name, None));
                }
                self.metrics.init_logs(ps, name);
                jobs.push(self.poller_job(shared.clone(), id.clone(), Poller::Metrics));
                jobs.push(self.poller_job(shared.clone(), id.clone(), Poller::Logs));
            }
        }
        for ps in cfg.parent_segments.iter().filter(|p| p.discover) {
            self.history.declare(Poller::Discovery, &ps.id, "", None);
            targets.insert(target_id(Poller::Discovery, &ps.id, "", None));
            service_keys.insert((ps.id.clone(), String::new()));
            jobs.push(self.discovery_job(ps.clone(), cfg.td.max_requests_per_second));
        }
        let discovering: Vec<&str> = cfg
            .parent_segments
            .iter()
            .filter(|p| p.discover)
            .map(|p| p.id.as_str())
            .collect();
        self.metrics.inventory.retain(&discovering);
        *self.ctx.write().unwrap_or_else(|e| e.into_inner()) = Some(ctx);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Some(cfg);
        let stats = self.scheduler.apply(jobs);
        for (ps, svc) in self.metrics.services() {
            if !service_keys.contains(&(ps.clone(), svc.clone())) {
                self.metrics.remove_service(&ps, &svc);
            }
        }
        let keys: HashSet<String> = service_keys
            .iter()
            .map(|(p, s)| format!("{p}/{s}"))
            .collect();
        self.budgets.retain(&|k| keys.contains(k));
        self.log_states.retain(&|k| keys.contains(k));
        self.history.retain(&|id| targets.contains(id));
        self.ready.store(true, Ordering::Release);
        Ok(stats)
    }

    fn job(
        &self,
        key: String,
        fingerprint: u64,
        poller: Poller,
        svc: &Service,
        schedule: &crate::schedule::CronSchedule,
        run: RunFn,
    ) -> PlannedJob {
        PlannedJob {
            key,
            fingerprint,
            poller,
            parent_segment: svc.parent_segment.clone(),
            service: svc.name.clone(),
            schedule: schedule.clone(),
            run,
        }
    }

    fn probe_job(&self, svc: Arc<Service>, probe: Probe) -> PlannedJob {
        let key = target_id(
            Poller::Probe,
            &svc.parent_segment,
            &svc.name,
            Some(&probe.name),
        );
        let fp = stable_hash(&format!(
            "{:?}{:?}{}{}",
            probe, svc.flavor, svc.database, svc.table
        ));
        let schedule = probe.schedule.clone();
        let me = self.me.clone();
        let (s, p) = (svc.clone(), Arc::new(probe));
        let run: RunFn = Arc::new(move || {
            let (me, s, p) = (me.clone(), s.clone(), p.clone());
            Box::pin(async move {
                if let Some(app) = me.upgrade() {
                    app.run_probe(&s, &p).await;
                }
            })
        });
        self.job(key, fp, Poller::Probe, &svc, &schedule, run)
    }

    /// The metrics or logs poller of a service.
    fn poller_job(&self, svc: Arc<Service>, id: String, poller: Poller) -> PlannedJob {
        let key = target_id(poller, &svc.parent_segment, &svc.name, None);
        let (schedule, shape) = match poller {
            Poller::Logs => (
                &svc.logs_schedule,
                format!(
                    "{:?}{}{:?}",
                    svc.sections, svc.max_sections, svc.logs_mapping
                ),
            ),
            _ => (
                &svc.metrics_schedule,
                format!("{:?}{:?}", svc.error_rate_unit, svc.metrics_mapping),
            ),
        };
        let fp = stable_hash(&format!("{id}{schedule:?}{shape}"));
        let me = self.me.clone();
        let s = svc.clone();
        let run: RunFn = Arc::new(move || {
            let (me, s, id) = (me.clone(), s.clone(), id.clone());
            Box::pin(async move {
                if let Some(app) = me.upgrade() {
                    match poller {
                        Poller::Logs => app.run_logs(&s, &id).await,
                        _ => app.run_metrics(&s, &id).await,
                    };
                }
            })
        });
        self.job(key, fp, poller, &svc, schedule, run)
    }

    fn discovery_job(&self, ps: ParentSegment, rps: u32) -> PlannedJob {
        let key = target_id(Poller::Discovery, &ps.id, "", None);
        let fp = stable_hash(&format!("{ps:?}{rps}"));
        let schedule = ps.schedule.clone();
        let me = self.me.clone();
        let p = ps.clone();
        let run: RunFn = Arc::new(move || {
            let (me, p) = (me.clone(), p.clone());
            Box::pin(async move {
                if let Some(app) = me.upgrade() {
                    app.run_discovery(&p, rps).await;
                }
            })
        });
        PlannedJob {
            key,
            fingerprint: fp,
            poller: Poller::Discovery,
            parent_segment: ps.id,
            service: String::new(),
            schedule,
            run,
        }
    }

    /// Runs one probe now and records it (the scheduler's job, and tests).
    pub async fn run_probe(
        &self,
        svc: &Service,
        probe: &Probe,
    ) -> Option<crate::outcome::ProbeOutcome> {
        let ctx = self.ctx()?;
        let (out, exchange) = poll::probe::run(&ctx, svc, probe).await;
        let (ps, name) = (&svc.parent_segment, &svc.name);
        self.metrics.record_probe(ps, name, &probe.name, &out);
        let took = exchange.timings.total;
        self.metrics.poll_done(
            ps,
            name,
            Poller::Probe,
            took,
            out.reason.map_or(Ok(()), Err),
        );
        if let Some(reason) = out.reason {
            tracing::warn!(
                pz_service = %name,
                parent_segment = %ps,
                probe = %probe.name,
                reason = reason.as_label(),
                status = out.status.unwrap_or(0),
                td_code = out.td_code.unwrap_or(0),
                latency_ms = took.as_millis() as u64,
                detail = %out.message,
                "probe failed"
            );
        }
        tracing::debug!(
            pz_service = %name,
            probe = %probe.name,
            request = %format!("{} {}", exchange.request.method, exchange.request.url),
            request_headers = ?exchange.request.headers,
            response_status = out.status.unwrap_or(0),
            response_bytes = exchange.response.as_ref().map_or(0, |r| r.body_bytes),
            section = out.section.as_deref().unwrap_or(""),
            latency_ms = took.as_millis() as u64,
            "probe done"
        );
        self.history
            .record_probe(ps, name, &probe.name, &out, exchange);
        Some(out)
    }

    /// Polls a service's metrics endpoint now and records the outcome.
    pub async fn run_metrics(&self, s: &Service, service_id: &str) -> Option<PollOutcome> {
        let ctx = self.ctx()?;
        let sref = service_ref(s);
        let (out, ex) = poll::metrics::run(&ctx, &sref, service_id, &s.metrics_mapping).await;
        self.record_poll(Poller::Metrics, &sref, &out, ex);
        Some(out)
    }

    /// Polls a service's logs endpoint now and records the outcome.
    pub async fn run_logs(&self, s: &Service, service_id: &str) -> Option<PollOutcome> {
        let ctx = self.ctx()?;
        let sref = service_ref(s);
        let cap = SectionCap::new(s.sections.as_deref(), s.max_sections);
        let (out, ex) = poll::logs::run(&ctx, &sref, service_id, cap, &s.logs_mapping).await;
        self.record_poll(Poller::Logs, &sref, &out, ex);
        Some(out)
    }

    fn record_poll(&self, poller: Poller, svc: &ServiceRef, out: &PollOutcome, exchange: Exchange) {
        let (ps, name) = (&svc.parent_segment, &svc.name);
        self.metrics.poll_done(
            ps,
            name,
            poller,
            out.duration,
            out.reason.map_or(Ok(()), Err),
        );
        if let Some(reason) = out.reason {
            tracing::warn!(
                pz_service = %name,
                parent_segment = %ps,
                poller = poller.as_label(),
                reason = reason.as_label(),
                status = out.status.unwrap_or(0),
                latency_ms = out.duration.as_millis() as u64,
                detail = %out.message,
                "poll failed"
            );
        } else {
            tracing::debug!(pz_service = %name, poller = poller.as_label(), detail = %out.message, "poll done");
        }
        self.history
            .record_poll(poller, ps, name, out, Some(exchange));
    }

    async fn run_discovery(&self, segment: &ParentSegment, rps: u32) {
        let Some(ctx) = self.ctx() else { return };
        let ps = segment.id.as_str();
        let (out, found, exchange) = poll::discovery::run(&ctx, segment, rps).await;
        let sref = ServiceRef {
            parent_segment: ps.to_string(),
            name: String::new(),
            budget_rps: rps,
        };
        self.record_poll(Poller::Discovery, &sref, &out, exchange);
        let Some(found) = found else { return };
        if let Some(cfg) = self.config() {
            let c = poll::discovery::coverage(segment, &found, &cfg.services);
            let counts = [
                c.covered.len(),
                c.not_covered.len(),
                c.ignored.len(),
                c.refused,
            ];
            self.metrics.inventory.set(ps, counts);
        }
        let changed = {
            let mut d = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
            let prev = d.insert(ps.to_string(), found.clone());
            prev.map(|p| p.services) != Some(found.services.clone())
        };
        if changed {
            if let Some(cfg) = self.config() {
                let _guard = self.reload_lock.lock().await;
                match self.apply(cfg) {
                    Ok(stats) => {
                        tracing::info!(parent_segment = %ps, services = found.services.len(), started = stats.started, stopped = stats.stopped, "discovery changed the plan")
                    }
                    Err(e) => tracing::error!(error = %e, "applying discovered services failed"),
                }
            }
        }
    }

    /// What discovery found per discovering parent segment, against the configuration in force.
    pub fn inventory(&self) -> Vec<(String, Coverage)> {
        let Some(cfg) = self.config() else {
            return Vec::new();
        };
        let d = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        cfg.parent_segments
            .iter()
            .filter(|p| p.discover)
            .filter_map(|p| {
                Some((
                    p.id.clone(),
                    poll::discovery::coverage(p, d.get(&p.id)?, &cfg.services),
                ))
            })
            .collect()
    }

    /// Stops the scheduler and waits up to `grace` for runs in flight.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.ready.store(false, Ordering::Release);
        self.scheduler.shutdown(grace).await
    }
}

fn service_ref(s: &Service) -> ServiceRef {
    ServiceRef {
        parent_segment: s.parent_segment.clone(),
        name: s.name.clone(),
        budget_rps: s.max_requests_per_second,
    }
}

/// Finds a probe by service and probe name (the `probe` subcommand).
pub fn find_probe<'c>(
    cfg: &'c Config,
    service: &str,
    probe: &str,
) -> Option<(&'c Service, &'c Probe)> {
    let svc = cfg.services.iter().find(|s| s.name == service)?;
    let p = svc.probes.iter().find(|p| p.name == probe)?;
    Some((svc, p))
}

/// The endpoint a probe calls, for display.
pub fn probe_endpoint_label(svc: &Service, p: &Probe) -> &'static str {
    match (svc.flavor, p.endpoint) {
        (Flavor::P13n, _) => "p13n",
        (Flavor::Cdp, ProbeEndpoint::Live) => "personalize",
        (Flavor::Cdp, ProbeEndpoint::Test) => "personalize_test",
    }
}
