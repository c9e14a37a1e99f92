//! The daemon's core: one task owns the plan and keeps it applied; [`App`] is the handle the
//! edges (the web server, signals, `main`, tests) hold.
//!
//! The plan owner receives reloads (SIGHUP, `/-/reload`, the first start) and what discovery found
//! as messages, and is the only one to change the plan: it loads the configuration, builds the plan
//! ([`crate::plan::build`]), swaps the jobs into the scheduler by diff, gives the runner its new
//! context and tells the recorder which targets the plan has. Job runs never call back into it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Flavor, Probe, ProbeEndpoint, Service};
use crate::history::History;
use crate::metrics::Metrics;
use crate::outcome::{PollOutcome, ProbeOutcome};
use crate::poll::discovery::{coverage, Coverage, Listing};
use crate::poll::{logs::LogStates, Budgets, Ctx};
use crate::record::Recorder;
use crate::runner::{Found, Runner};
use crate::schedule::{ApplyStats, Scheduler};
use crate::shard::Shard;
use crate::td::TdClient;

/// Where the configuration comes from, for reloads.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    File(PathBuf),
    /// Built in (the demo): a reload re-applies it.
    Embedded(Box<Config>),
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Client(#[from] crate::td::ClientError),
    #[error("the plan owner has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<ApplyStats, ApplyError>>;

/// What the plan owner is asked to do.
enum Control {
    /// Load the configuration from its source and apply it.
    Reload(Reply),
    /// Apply this configuration (tests).
    Apply(Arc<Config>, Reply),
}

/// What the plan owner publishes for readers: the configuration in force and what discovery found.
#[derive(Default)]
struct View {
    ready: AtomicBool,
    state: RwLock<(Option<Arc<Config>>, Arc<BTreeMap<String, Listing>>)>,
}

/// The handle on the running daemon.
pub struct App {
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
    recorder: Arc<Recorder>,
    runner: Arc<Runner>,
    scheduler: Arc<Scheduler>,
    view: Arc<View>,
    control: mpsc::UnboundedSender<Control>,
    shard: Option<Shard>,
}

impl App {
    /// Starts the plan owner (call from within the runtime); nothing runs until the first reload.
    pub fn new(source: ConfigSource, shard: Option<Shard>, history_limit: usize) -> Arc<App> {
        let recorder = Arc::new(Recorder::new(history_limit));
        let (found_tx, found_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let runner = Arc::new(Runner::new(recorder.clone(), found_tx));
        let scheduler = Arc::new(Scheduler::new(recorder.clone()));
        let view = Arc::new(View::default());
        let owner = Owner {
            source,
            shard,
            config: None,
            discovered: BTreeMap::new(),
            scheduler: scheduler.clone(),
            runner: runner.clone(),
            recorder: recorder.clone(),
            view: view.clone(),
            budgets: Arc::default(),
            log_states: Arc::default(),
        };
        tokio::spawn(owner.run(control_rx, found_rx));
        Arc::new(App {
            metrics: recorder.metrics.clone(),
            history: recorder.history.clone(),
            recorder,
            runner,
            scheduler,
            view,
            control,
            shard,
        })
    }

    pub fn is_ready(&self) -> bool {
        self.view.ready.load(Ordering::Acquire)
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn config(&self) -> Option<Arc<Config>> {
        self.view
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
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
        self.ask(Control::Reload).await
    }

    /// Applies `cfg` as the running configuration.
    pub async fn apply(&self, cfg: Arc<Config>) -> Result<ApplyStats, ApplyError> {
        self.ask(|reply| Control::Apply(cfg, reply)).await
    }

    async fn ask(&self, msg: impl FnOnce(Reply) -> Control) -> Result<ApplyStats, ApplyError> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(msg(reply))
            .map_err(|_| ApplyError::Stopped)?;
        answer.await.map_err(|_| ApplyError::Stopped)?
    }

    /// Runs one probe now and records it (tests).
    pub async fn run_probe(&self, svc: &Service, probe: &Probe) -> Option<ProbeOutcome> {
        self.runner.probe(svc, probe).await
    }

    /// Polls a service's metrics endpoint now and records the outcome (tests).
    pub async fn run_metrics(&self, s: &Service, service_id: &str) -> Option<PollOutcome> {
        self.runner.metrics(s, service_id).await
    }

    /// Polls a service's logs endpoint now and records the outcome (tests).
    pub async fn run_logs(&self, s: &Service, service_id: &str) -> Option<PollOutcome> {
        self.runner.logs(s, service_id).await
    }

    /// What discovery found per discovering parent segment, against the configuration in force.
    pub fn inventory(&self) -> Vec<(String, Coverage)> {
        let (cfg, found) = self
            .view
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(cfg) = cfg else { return Vec::new() };
        cfg.parent_segments
            .iter()
            .filter(|p| p.discover)
            .filter_map(|p| Some((p.id.clone(), coverage(p, found.get(&p.id)?, &cfg.services))))
            .collect()
    }

    /// Stops the scheduler and waits up to `grace` for runs in flight.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.view.ready.store(false, Ordering::Release);
        self.scheduler.shutdown(grace).await
    }
}

/// The plan owner's state: only its task touches it.
struct Owner {
    source: ConfigSource,
    shard: Option<Shard>,
    config: Option<Arc<Config>>,
    discovered: BTreeMap<String, Listing>,
    scheduler: Arc<Scheduler>,
    runner: Arc<Runner>,
    recorder: Arc<Recorder>,
    view: Arc<View>,
    budgets: Arc<Budgets>,
    log_states: Arc<LogStates>,
}

impl Owner {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut found: mpsc::UnboundedReceiver<Found>,
    ) {
        loop {
            tokio::select! {
                msg = control.recv() => match msg {
                    Some(Control::Reload(reply)) => {
                        let _ = reply.send(self.reload());
                    }
                    Some(Control::Apply(cfg, reply)) => {
                        let _ = reply.send(self.apply(cfg));
                    }
                    None => return,
                },
                Some((ps, listing)) = found.recv() => self.discovered(ps, listing),
            }
        }
    }

    fn reload(&mut self) -> Result<ApplyStats, ApplyError> {
        let loaded = match &self.source {
            ConfigSource::File(p) => Config::load(p),
            ConfigSource::Embedded(c) => Ok((**c).clone()),
        };
        let result = loaded
            .map_err(ApplyError::from)
            .and_then(|cfg| self.apply(Arc::new(cfg)));
        self.recorder.config_loaded(result.is_ok());
        match &result {
            Ok(stats) => tracing::info!(
                started = stats.started,
                kept = stats.kept,
                stopped = stats.stopped,
                jobs = self.scheduler.job_count(),
                "configuration applied"
            ),
            Err(e) => {
                tracing::error!(error = %e, "configuration refused; the previous one keeps running")
            }
        }
        result
    }

    /// Builds the plan for `cfg` and makes it the running one.
    fn apply(&mut self, cfg: Arc<Config>) -> Result<ApplyStats, ApplyError> {
        let ctx = Ctx {
            client: TdClient::for_config(&cfg)?,
            td: cfg.td.clone(),
            defaults: cfg.defaults.clone(),
            budgets: self.budgets.clone(),
            log_states: self.log_states.clone(),
        };
        let plan = crate::plan::build(&cfg, &self.discovered, self.shard);
        self.runner.set_ctx(Arc::new(ctx));
        self.config = Some(cfg);
        self.publish();
        let jobs = plan.jobs.into_iter().map(|j| self.runner.job(j)).collect();
        let stats = self.scheduler.apply(jobs);
        self.recorder.planned(&plan.targets);
        let keys = plan.service_keys;
        self.budgets.retain(&|k| keys.contains(k));
        self.log_states.retain(&|k| keys.contains(k));
        self.view.ready.store(true, Ordering::Release);
        Ok(stats)
    }

    fn publish(&self) {
        let mut state = self.view.state.write().unwrap_or_else(|e| e.into_inner());
        *state = (self.config.clone(), Arc::new(self.discovered.clone()));
    }

    /// A discovery run's listing: updates the inventory, and the plan when the services changed.
    fn discovered(&mut self, ps: String, found: Listing) {
        let Some(cfg) = self.config.clone() else {
            return;
        };
        if let Some(segment) = cfg.parent_segments.iter().find(|p| p.id == ps) {
            let c = coverage(segment, &found, &cfg.services);
            let counts = [
                c.covered.len(),
                c.not_covered.len(),
                c.ignored.len(),
                c.refused,
            ];
            self.recorder.inventory(&ps, counts);
        }
        let services = found.services.len();
        let prev = self.discovered.insert(ps.clone(), found);
        let changed =
            prev.map(|p| p.services) != self.discovered.get(&ps).map(|f| f.services.clone());
        if !changed {
            self.publish();
            return;
        }
        match self.apply(cfg) {
            Ok(stats) => {
                tracing::info!(parent_segment = %ps, services, started = stats.started, stopped = stats.stopped, "discovery changed the plan")
            }
            Err(e) => tracing::error!(error = %e, "applying discovered services failed"),
        }
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
    match (svc.flavor(), p.endpoint) {
        (Flavor::P13n, _) => "p13n",
        (Flavor::Cdp, ProbeEndpoint::Live) => "personalize",
        (Flavor::Cdp, ProbeEndpoint::Test) => "personalize_test",
    }
}
