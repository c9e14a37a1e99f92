//! The plan: the jobs to run, built from the configuration and what discovery found. Pure.
//!
//! One job per probe, two per service with a `service_id` (its metrics and logs pollers) and one
//! per discovering parent segment; only this shard's services. Each job has a stable key and a
//! fingerprint of everything that shapes it, so the scheduler keeps unchanged jobs running across
//! a reload. [`Plan::targets`] tells the recorder which series and history entries to keep.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crate::config::{Config, ParentSegment, Probe, Service};
use crate::hash::stable_hash;
use crate::poll::discovery::{with_discovered, Listing};
use crate::poller::target_id;
use crate::poller::Poller;
use crate::schedule::PlannedJob;
use crate::shard::Shard;

/// The targets of an applied plan: what the recorder creates series and history entries for, and
/// keeps while everything else is dropped.
#[derive(Debug, Default)]
pub struct Planned {
    /// (parent segment, service) of every planned service, discovery's (`ps`, "") included.
    pub services: BTreeSet<(String, String)>,
    /// (parent segment, service, probe).
    pub probes: BTreeSet<(String, String, String)>,
    /// (parent segment, service) of the services with the metrics and logs pollers.
    pub managed: BTreeSet<(String, String)>,
    /// The parent segments whose services are discovered.
    pub discovering: Vec<String>,
}

impl Planned {
    /// The history target ids (`crate::poller::target_id`) of the plan.
    pub fn target_ids(&self) -> HashSet<String> {
        let probes = self
            .probes
            .iter()
            .map(|(ps, s, p)| target_id(Poller::Probe, ps, s, Some(p)));
        let managed = self.managed.iter().flat_map(|(ps, s)| {
            [Poller::Metrics, Poller::Logs].map(|poller| target_id(poller, ps, s, None))
        });
        let discovery = self
            .discovering
            .iter()
            .map(|ps| target_id(Poller::Discovery, ps, "", None));
        probes.chain(managed).chain(discovery).collect()
    }
}

/// What a job does when it fires.
#[derive(Debug)]
pub enum Work {
    Probe {
        svc: Arc<Service>,
        probe: Probe,
    },
    /// The metrics or logs poller of a service.
    Poll {
        poller: Poller,
        svc: Arc<Service>,
        service_id: String,
    },
    Discovery {
        segment: ParentSegment,
        rps: u32,
    },
}

/// One job of the plan: what a fire runs is its [`Work`].
pub type Job = PlannedJob<Arc<Work>>;

#[derive(Debug, Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub targets: Planned,
    /// `parent_segment/pz_service` of every planned service: the keys of per-service state.
    pub service_keys: HashSet<String>,
}

/// The services a plan covers: the configured ones and the discovered ones no configured service
/// covers, this shard's only.
pub fn services(
    cfg: &Config,
    discovered: &BTreeMap<String, Listing>,
    shard: Option<Shard>,
) -> Vec<Service> {
    let mut services = with_discovered(cfg, discovered);
    let shard = shard.or(cfg.sharding.and_then(|(i, n)| Shard::new(i, n)));
    services.retain(|s| shard.is_none_or(|sh| sh.owns(&s.key())));
    services
}

pub fn build(cfg: &Config, discovered: &BTreeMap<String, Listing>, shard: Option<Shard>) -> Plan {
    let mut plan = Plan::default();
    for svc in services(cfg, discovered, shard) {
        let (ps, name) = (svc.parent_segment.clone(), svc.name.clone());
        plan.targets.services.insert((ps.clone(), name.clone()));
        plan.service_keys.insert(svc.key());
        let svc = Arc::new(svc);
        for probe in &svc.probes {
            let p = (ps.clone(), name.clone(), probe.name.clone());
            plan.targets.probes.insert(p);
            plan.jobs.push(probe_job(&svc, probe));
        }
        if let Some(id) = &svc.service_id {
            plan.targets.managed.insert((ps.clone(), name.clone()));
            for poller in [Poller::Metrics, Poller::Logs] {
                plan.jobs.push(poll_job(&svc, id, poller));
            }
        }
    }
    for ps in cfg.parent_segments.iter().filter(|p| p.discover) {
        plan.targets.discovering.push(ps.id.clone());
        plan.targets.services.insert((ps.id.clone(), String::new()));
        plan.service_keys.insert(format!("{}/", ps.id));
        plan.jobs
            .push(discovery_job(ps, cfg.td.max_requests_per_second));
    }
    plan
}

fn probe_job(svc: &Arc<Service>, probe: &Probe) -> Job {
    Job {
        key: target_id(
            Poller::Probe,
            &svc.parent_segment,
            &svc.name,
            Some(&probe.name),
        ),
        fingerprint: stable_hash(&format!("{probe:?}{}", svc.api.fingerprint())),
        poller: Poller::Probe,
        parent_segment: svc.parent_segment.clone(),
        service: svc.name.clone(),
        schedule: probe.schedule.clone(),
        run: Arc::new(Work::Probe {
            svc: svc.clone(),
            probe: probe.clone(),
        }),
    }
}

fn poll_job(svc: &Arc<Service>, id: &str, poller: Poller) -> Job {
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
    Job {
        key: target_id(poller, &svc.parent_segment, &svc.name, None),
        fingerprint: stable_hash(&format!("{id}{schedule:?}{shape}")),
        poller,
        parent_segment: svc.parent_segment.clone(),
        service: svc.name.clone(),
        schedule: schedule.clone(),
        run: Arc::new(Work::Poll {
            poller,
            svc: svc.clone(),
            service_id: id.to_string(),
        }),
    }
}

fn discovery_job(ps: &ParentSegment, rps: u32) -> Job {
    Job {
        key: target_id(Poller::Discovery, &ps.id, "", None),
        fingerprint: stable_hash(&format!("{ps:?}{rps}")),
        poller: Poller::Discovery,
        parent_segment: ps.id.clone(),
        service: String::new(),
        schedule: ps.schedule.clone(),
        run: Arc::new(Work::Discovery {
            segment: ps.clone(),
            rps,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::td::discovery::FoundService;

    const CFG: &str = r#"
[td]
api_key_env = "K"
p13n_url = "https://p13n.example"
cdp_api_url = "https://cdp.example"
[[parent_segment]]
id = "394649"
discover = true
[[service]]
name = "web"
database = "rt_db"
table = "web_tbl"
token_env = "T"
  [[service.probe]]
  name = "vip"
  user_id = "u1"
[[service]]
api = "cdp"
service_id = "1234"
name = "recs"
parent_segment_id = "394649"
"#;

    fn cfg(token: &str) -> Config {
        let env = BTreeMap::from([
            ("K".to_string(), "1/abc".to_string()),
            ("T".to_string(), token.to_string()),
        ]);
        Config::parse(CFG, "t.toml", &env).unwrap()
    }

    fn found(names: &[&str]) -> BTreeMap<String, Listing> {
        let services = names
            .iter()
            .enumerate()
            .map(|(i, n)| FoundService {
                id: format!("9{i}"),
                name: n.to_string(),
            })
            .collect();
        let listing = Listing {
            services,
            ..Listing::default()
        };
        BTreeMap::from([("394649".to_string(), listing)])
    }

    #[test]
    fn a_plan_has_one_job_per_probe_two_per_managed_service_and_one_per_discovery() {
        let plan = build(&cfg("t1"), &BTreeMap::new(), None);
        let keys: Vec<&str> = plan.jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "probe//web/vip",
                "metrics/394649/recs",
                "logs/394649/recs",
                "discovery/394649/"
            ]
        );
        assert!(plan.service_keys.contains("394649/"), "discovery's budget");
    }

    #[test]
    fn a_discovered_service_is_cdp_with_only_its_pollers() {
        let plan = build(&cfg("t1"), &found(&["recs", "new_one"]), None);
        let new: Vec<&Job> = plan
            .jobs
            .iter()
            .filter(|j| j.service == "new_one")
            .collect();
        assert_eq!(new.len(), 2, "metrics and logs, no probe");
        let Work::Poll { svc, .. } = &*new[0].run else {
            panic!("{:?}", new[0].run)
        };
        assert_eq!(svc.api, crate::config::Api::Cdp);
        assert!(svc.discovered && svc.probes.is_empty());
        // "recs" is configured: discovery does not plan it twice.
        assert_eq!(plan.jobs.iter().filter(|j| j.service == "recs").count(), 2);
    }

    #[test]
    fn a_new_token_changes_the_probe_job_and_nothing_else() {
        let (a, b) = (
            build(&cfg("t1"), &BTreeMap::new(), None),
            build(&cfg("t2"), &BTreeMap::new(), None),
        );
        let changed: Vec<&str> = a
            .jobs
            .iter()
            .zip(&b.jobs)
            .filter(|(x, y)| x.fingerprint != y.fingerprint)
            .map(|(x, _)| x.key.as_str())
            .collect();
        assert_eq!(changed, ["probe//web/vip"]);
    }
}
