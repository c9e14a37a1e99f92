//! [`super::catalog::DISCOVERED_SERVICES`]: what discovery found in TD per parent segment, by
//! coverage.
//!
//! `coverage` is `covered` (a configured service has the name or the `service_id`),
//! `not_covered` (nobody watches it), `ignored` (on the parent segment's `ignore` list) or
//! `refused` (an item whose id or name could not be used). Names never become labels.

use prometheus::{GaugeVec, Opts, Registry};

pub const COVERAGE: [&str; 4] = ["covered", "not_covered", "ignored", "refused"];

#[derive(Clone)]
pub struct Inventory {
    gauge: GaugeVec,
}

impl Inventory {
    pub fn register(r: &Registry) -> Self {
        let f = super::catalog::DISCOVERED_SERVICES;
        let gauge = GaugeVec::new(Opts::new(f.name, f.help), f.labels).expect("valid metric");
        r.register(Box::new(gauge.clone())).expect("unique metric");
        Inventory { gauge }
    }

    /// Sets the four counts of `ps` (in [`COVERAGE`] order).
    pub fn set(&self, ps: &str, counts: [usize; 4]) {
        for (c, n) in COVERAGE.iter().zip(counts) {
            self.gauge.with_label_values(&[ps, c]).set(n as f64);
        }
    }

    /// Drops the series of parent segments no longer discovered.
    pub fn retain(&self, keep: &[&str]) {
        for m in prometheus::core::Collector::collect(&self.gauge) {
            for s in m.get_metric() {
                let ps = s
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "parent_segment")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                if !keep.contains(&ps.as_str()) {
                    for c in COVERAGE {
                        let _ = self.gauge.remove_label_values(&[&ps, c]);
                    }
                }
            }
        }
    }
}
