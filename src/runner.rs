//! Job runs: each fire of a planned job runs its poller and hands the outcome to the recorder.
//!
//! A run reads the current [`Ctx`] (swapped by the plan owner on each apply), calls the poller,
//! which only returns what it observed, and gives the outcome to the [`Recorder`]. What discovery
//! finds goes to the plan owner as a message on the `found` channel: a run never changes the plan
//! itself.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::config::{Probe, Service};
use crate::outcome::{PollOutcome, ProbeOutcome};
use crate::plan::{Job, Work};
use crate::poll::discovery::Listing;
use crate::poll::logs::SectionCap;
use crate::poll::{self, Ctx, ServiceRef};
use crate::poller::Poller;
use crate::record::Recorder;
use crate::schedule::{PlannedJob, RunFn};

/// A discovery run's listing, for the plan owner: (parent segment, what was found).
pub type Found = (String, Listing);

pub struct Runner {
    ctx: RwLock<Option<Arc<Ctx>>>,
    recorder: Arc<Recorder>,
    found: mpsc::UnboundedSender<Found>,
}

impl Runner {
    pub fn new(recorder: Arc<Recorder>, found: mpsc::UnboundedSender<Found>) -> Self {
        Runner {
            ctx: RwLock::new(None),
            recorder,
            found,
        }
    }

    /// The context runs use from now on.
    pub fn set_ctx(&self, ctx: Arc<Ctx>) {
        *self.ctx.write().unwrap_or_else(|e| e.into_inner()) = Some(ctx);
    }

    fn ctx(&self) -> Option<Arc<Ctx>> {
        self.ctx.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The scheduler's view of a planned job: its identity, schedule, and what a fire runs.
    pub fn job(self: &Arc<Self>, job: Job) -> PlannedJob {
        let me = self.clone();
        job.map(|work| -> RunFn {
            Arc::new(move || {
                let (me, work) = (me.clone(), work.clone());
                Box::pin(async move { me.run(&work).await })
            })
        })
    }

    async fn run(&self, work: &Work) {
        match work {
            Work::Probe { svc, probe } => {
                self.probe(svc, probe).await;
            }
            Work::Poll {
                poller: Poller::Logs,
                svc,
                service_id,
            } => {
                self.logs(svc, service_id).await;
            }
            Work::Poll {
                svc, service_id, ..
            } => {
                self.metrics(svc, service_id).await;
            }
            Work::Discovery { segment, rps } => {
                let Some(ctx) = self.ctx() else { return };
                let (out, found, ex) = poll::discovery::run(&ctx, segment, *rps).await;
                self.recorder
                    .poll(Poller::Discovery, &segment.id, "", &out, ex);
                if let Some(found) = found {
                    // The plan owner is gone only when the daemon is stopping.
                    let _ = self.found.send((segment.id.clone(), found));
                }
            }
        }
    }

    /// Runs one probe now and records it.
    pub async fn probe(&self, svc: &Service, probe: &Probe) -> Option<ProbeOutcome> {
        let ctx = self.ctx()?;
        let (out, ex) = poll::probe::run(&ctx, svc, probe).await;
        self.recorder
            .probe(&svc.parent_segment, &svc.name, &probe.name, &out, ex);
        Some(out)
    }

    /// Polls a service's metrics endpoint now and records the outcome.
    pub async fn metrics(&self, s: &Service, service_id: &str) -> Option<PollOutcome> {
        let ctx = self.ctx()?;
        let (out, ex) =
            poll::metrics::run(&ctx, &service_ref(s), service_id, &s.metrics_mapping).await;
        self.recorder
            .poll(Poller::Metrics, &s.parent_segment, &s.name, &out, ex);
        Some(out)
    }

    /// Polls a service's logs endpoint now and records the outcome.
    pub async fn logs(&self, s: &Service, service_id: &str) -> Option<PollOutcome> {
        let ctx = self.ctx()?;
        let cap = SectionCap::new(s.sections.as_deref(), s.max_sections);
        let sref = service_ref(s);
        let (out, ex) = poll::logs::run(&ctx, &sref, service_id, cap, &s.logs_mapping).await;
        self.recorder
            .poll(Poller::Logs, &s.parent_segment, &s.name, &out, ex);
        Some(out)
    }
}

fn service_ref(s: &Service) -> ServiceRef {
    ServiceRef {
        parent_segment: s.parent_segment.clone(),
        name: s.name.clone(),
        budget_rps: s.max_requests_per_second,
    }
}

/// What discovery found so far, by parent segment.
pub type Discovered = BTreeMap<String, Listing>;
