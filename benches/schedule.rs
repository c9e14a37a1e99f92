//! The scheduler's next-fire computation, done once per job run.
//! `cargo bench --bench schedule` (or `make bench-micro`).

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use td_pz_exporter::schedule::{jitter, CronSchedule};

fn bench_schedule(c: &mut Criterion) {
    let mut g = c.benchmark_group("schedule");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let now = Utc::now();
    for expr in ["*/30 * * * * *", "0 * * * * *", "15,45 * * * * *"] {
        let s = CronSchedule::parse(expr).unwrap();
        g.bench_function(format!("next_after/{expr}"), |b| {
            b.iter(|| black_box(s.next_after(black_box(now))))
        });
    }
    g.bench_function("parse/*/30 * * * * *", |b| {
        b.iter(|| black_box(CronSchedule::parse(black_box("*/30 * * * * *"))))
    });
    let s = CronSchedule::parse("*/30 * * * * *").unwrap();
    g.bench_function("period+jitter (once per job start)", |b| {
        b.iter(|| black_box(jitter("probe/394649/service_00042/vip", s.period())))
    });
    g.finish();
}

criterion_group!(benches, bench_schedule);
criterion_main!(benches);
