//! Sharding: three replicas over 300 services probe each service exactly once between them,
//! and a fourth replica moves few services.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use td_pz_exporter::app::{App, ConfigSource};
use td_pz_exporter::shard::Shard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_cover_300_services_exactly_once() {
    let sim = sim(scenario(r#"{"accept_any_service": true}"#)).await;
    let mut body = String::from("[defaults]\nprobe_schedule = \"*/2 * * * * *\"\n");
    for i in 0..300 {
        body.push_str(&format!(
            "[[service]]\nname = \"svc_{i:03}\"\nparent_segment_id = \"394649\"\napi = \"cdp\"\n  [[service.probe]]\n  name = \"vip\"\n  user_id = \"vip_user_001\"\n"
        ));
    }
    let cfg = config(&sim, "", &body);
    let mut apps: Vec<Arc<App>> = Vec::new();
    for i in 0..3 {
        let app = App::new(
            ConfigSource::Embedded(Box::new(cfg.clone())),
            Shard::new(i, 3),
            10,
        );
        app.apply(Arc::new(cfg.clone())).await.unwrap();
        apps.push(app);
    }
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for a in &apps {
        a.shutdown(Duration::from_secs(2)).await;
    }
    // Which replica probed which service, from each replica's metrics.
    let mut probed_by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in apps.iter().enumerate() {
        let text = metrics(a);
        for line in text
            .lines()
            .filter(|l| l.starts_with("td_pz_probes_total{"))
        {
            let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            let svc = line
                .split("pz_service=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            if n > 0.0 {
                probed_by.entry(svc.to_string()).or_default().push(i);
            }
        }
    }
    assert_eq!(probed_by.len(), 300, "every service was probed");
    for (svc, replicas) in &probed_by {
        assert_eq!(replicas.len(), 1, "{svc} was probed by {replicas:?}");
        // ... by the replica that owns it.
        assert!(Shard::new(replicas[0] as u32, 3)
            .unwrap()
            .owns(&format!("394649/{svc}")));
        // And the simulator saw requests for it.
        assert!(sim.state.count(&format!("personalize/{svc}")) >= 1, "{svc}");
    }
    let per_replica: Vec<usize> = (0..3)
        .map(|i| probed_by.values().filter(|r| r[0] == i).count())
        .collect();
    assert!(
        per_replica.iter().all(|n| (70..=130).contains(n)),
        "balanced: {per_replica:?}"
    );

    // A fourth replica takes over about a quarter, and nothing moves between the old three.
    let moved = (0..300)
        .map(|i| format!("394649/svc_{i:03}"))
        .filter(|k| Shard::owner(k, 3) != Shard::owner(k, 4))
        .count();
    assert!(moved as f64 / 300.0 <= 0.30, "moved {moved} of 300");
    assert!(moved >= 45, "the new replica gets its share: {moved}");
}

#[test]
fn shard_comes_from_a_statefulset_pod_name() {
    let s = Shard::from_env("td-pz-exporter-2", "3").unwrap();
    assert_eq!((s.index, s.count), (2, 3));
    assert!(Shard::from_env("td-pz-exporter-3", "3").is_err());
}
