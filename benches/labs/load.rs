//! `load` (`make load`, docs/reliability.md): LOAD_SERVICES (50) services x LOAD_PROBES (2, at
//! most 3) probes every second, metrics and logs every 5 s; after LOAD_WARMUP (10) s, `wrk -t
//! LOAD_THREADS (2) -c LOAD_CONNECTIONS (200) -d LOAD_SECONDS (30) --timeout LOAD_WRK_TIMEOUT (10s,
//! Prometheus' scrape_timeout)` on /metrics between two scrapes. Goals: zero wrk errors, probe fire
//! lateness p99 < 100 ms, no skipped run, every scheduled probe ran, no panic.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::procs::{get, status_kib};
use crate::prom::{late, ms, Samples};
use crate::{env, Checks, Run};

/// The numbers following `key` in wrk's output (`connect 0`, `Non-2xx or 3xx responses: 3`, ...).
fn after<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    let words = out
        .split(key)
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next());
    words
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.parse::<f64>().is_ok())
        .collect()
}

pub fn run(bin: &Path, rev: &str) -> bool {
    let n: usize = env("load", "SERVICES", 50);
    let probes = env("load", "PROBES", 2usize).min(3);
    let cfg = crate::config(n, probes, "* * * * * *", "*/5 * * * * *");
    let mut r = Run::start(
        "load",
        bin,
        rev,
        &cfg,
        &format!("{n} services x {probes} probes every second"),
    );
    std::thread::sleep(Duration::from_secs(env("load", "WARMUP", 10)));
    let conns: usize = env("load", "CONNECTIONS", 200);
    let wrk = [
        format!("-t{}", env("load", "THREADS", 2usize).min(conns)),
        format!("-c{conns}"),
        format!("-d{}s", env("load", "SECONDS", 30)),
        "--timeout".into(),
        env("load", "WRK_TIMEOUT", "10s".to_string()),
        "--latency".into(),
        format!("{}/metrics", r.url),
    ];
    let scrape = |url: &str| {
        Samples::parse(&get(&format!("{url}/metrics"), Duration::from_secs(10)).unwrap_or_default())
    };
    let (t0, before) = (Instant::now(), scrape(&r.url));
    let out = Command::new("wrk")
        .args(&wrk)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let out = out.unwrap_or_else(|e| panic!("cannot run wrk: {e} (scripts/install-deps.sh bench)"));
    let (dt, after_) = (t0.elapsed().as_secs_f64(), scrape(&r.url));
    let delta = |name: &str| after_.sum(name, &[]) - before.sum(name, &[]);
    println!("command: wrk {}", wrk.join(" "));
    for line in out
        .rsplit("Latency Distribution")
        .next()
        .unwrap_or("")
        .lines()
    {
        println!("  wrk| {line}");
    }
    println!(
        "exporter peak RSS since its start (VmHWM): {:.1} MiB",
        status_kib(r.pid, "VmHWM") as f64 / 1024.0
    );
    let mut ch = Checks::new("load");
    let lat = |q: &str| {
        let hit = out.lines().find_map(|l| {
            l.trim()
                .strip_prefix(q)
                .map(str::trim)
                .filter(|v| !v.contains(' '))
        });
        hit.unwrap_or("None").to_owned()
    };
    let errors: u64 = [
        "connect",
        "read",
        "write",
        "timeout",
        "Non-2xx or 3xx responses:",
    ]
    .iter()
    .flat_map(|k| after(&out, &format!("{k} ")))
    .map(|v| v.parse::<u64>().unwrap_or(0))
    .sum();
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in")?.0.parse::<u64>().ok())
        .unwrap_or(0);
    let rps = after(&out, "Requests/sec:").first().copied().unwrap_or("?");
    println!(
        "load: window {dt:.1} s; {:.0} jobs; wrk: {requests} requests, {rps}/s, latency p50 {} p90 {} p99 {}",
        after_.sum("td_pz_scheduler_jobs", &[]),
        lat("50%"),
        lat("90%"),
        lat("99%")
    );
    ch.check(
        requests > 0 && errors == 0,
        &format!("wrk: zero errors (socket errors + non-2xx = {errors}) over {requests} scrapes"),
    );
    for p in ["probe", "metrics", "logs"] {
        let (p50, p99, fires, capped) = late(&before, &after_, Some(p));
        println!(
            "  lateness {p:8} fires {fires:6.0}  p50 {}  p99 {}",
            ms(p50, false),
            ms(p99, capped)
        );
    }
    let (p50, p99, fires, capped) = late(&before, &after_, Some("probe"));
    ch.check(
        !p99.is_nan() && !capped && p99 < 0.1,
        &format!(
            "probes keep their schedule: fire lateness p99 {} < 100 ms (p50 {}, {fires:.0} fires)",
            ms(p99, capped),
            ms(p50, false)
        ),
    );
    let skipped = delta("td_pz_schedule_skipped_total");
    ch.check(
        skipped == 0.0,
        &format!("no skipped runs during the load ({skipped:.0} skipped)"),
    );
    let (runs, expect) = (
        delta("td_pz_probes_total"),
        (n * probes) as f64 * (dt.floor() - 1.0),
    );
    println!(
        "  probes run in the window: {runs:.0} (schedule: {:.0}); failed: {:.0}",
        (n * probes) as f64 * dt,
        delta("td_pz_probe_failures_total")
    );
    ch.check(
        runs >= expect,
        &format!("every scheduled probe ran: {runs:.0} >= {expect:.0} (one round of slack)"),
    );
    crate::check_no_panic(&mut ch, &r.st.log_of("exporter"));
    let cpu = delta("process_cpu_seconds_total");
    println!(
        "  exporter: CPU {cpu:.1} s over {dt:.1} s ({:.0}% of one core), RSS {:.1} MiB, open fds {:.0}",
        100.0 * cpu / dt,
        after_.sum("process_resident_memory_bytes", &[]) / 1048576.0,
        after_.sum("process_open_fds", &[])
    );
    r.st.alive(r.pid);
    let ok = ch.finish();
    r.end();
    ok
}
