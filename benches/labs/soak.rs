//! `soak` (`make soak`, docs/reliability.md): SOAK_SERVICES (1000) services, each with one probe,
//! metrics and logs pollers every second, for SOAK_SECONDS (600) s while the scenario cycles through
//! the faults every SOAK_PHASE (5) s, with quiet settles of SOAK_SETTLE (30) s after the first 20% (the
//! baseline) and at the end. Samples every SOAK_SAMPLE (5) s, SOAK_OFFSET (0.8) s into a wall-clock
//! second (every job fires on whole seconds). Goals: the exporter alive without panic, every sample
//! scraped, no task leak (runs in flight never above the jobs, not growing, back to the baseline
//! after the settle), RSS growth < 10%, open fds flat.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::procs::{get, post_json, proc_stats, status_kib, ProcStats};
use crate::prom::{late, ms, Samples};
use crate::{env, Checks, Run};

/// A scenario of the simulator: every service accepted, logs at 0.2, `faults`, and `extra` fields.
pub fn scenario(faults: Value, extra: Value) -> Value {
    let mut sc = json!({"accept_any_service": true, "log_rate": 0.2, "faults": faults});
    if let (Some(sc), Some(extra)) = (sc.as_object_mut(), extra.as_object()) {
        sc.extend(extra.clone());
    }
    sc
}

/// The fault cycle: (name, scenario).
fn phases(n: usize) -> Vec<(String, Value)> {
    let names: Vec<String> = (0..n).map(|i| format!("svc{i:04}")).collect();
    let some = |k: usize, m: usize, fault: Value| {
        let each = names.iter().enumerate().filter(|(i, _)| i % m == k);
        let faults: Vec<Value> = each
            .map(|(_, s)| {
                let mut f = fault.clone();
                f["service"] = json!(s);
                f
            })
            .collect();
        scenario(json!(faults), json!({}))
    };
    let few = names.iter().step_by((n / 5).max(1)).take(5);
    let big: Vec<Value> = few
        .map(|s| json!({"service": s, "body_bytes": 50 * 1024 * 1024}))
        .collect();
    vec![
        ("none".into(), scenario(json!([]), json!({}))),
        ("503 x1/3".into(), some(0, 3, json!({"status": 503}))),
        (
            "429 RA=2 x1/3".into(),
            some(1, 3, json!({"status": 429, "retry_after": 2})),
        ),
        ("hang x1/10".into(), some(3, 10, json!({"hang": true}))),
        (
            "malformed x1/3".into(),
            some(2, 3, json!({"malformed": true})),
        ),
        (
            format!("50MB x{}", big.len()),
            scenario(json!(big), json!({})),
        ),
        (
            "revoked".into(),
            scenario(json!([]), json!({"revoked": true})),
        ),
    ]
}

/// What one sample read: the exporter's /proc figures and scrape, the simulator's /proc figures.
struct Sample {
    t: f64,
    m: Samples,
    p: ProcStats,
    sim: Option<ProcStats>,
    scrape: f64,
    in_flight: f64,
    jobs: f64,
    cpu_pct: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn max(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(0.0, f64::max)
}

pub fn run(bin: &Path, rev: &str) -> bool {
    let n: usize = env("soak", "SERVICES", 1000);
    let (total, phase, every, offset) = (
        env("soak", "SECONDS", 600.0f64),
        env("soak", "PHASE", 5.0),
        env("soak", "SAMPLE", 5.0),
        env("soak", "OFFSET", 0.8),
    );
    let (w, s) = (
        total * 0.2,
        env("soak", "SETTLE", 30.0f64).min((total * 0.1).max(10.0)),
    );
    let r = Run::start(
        "soak",
        bin,
        rev,
        &crate::config(n, 1, "* * * * * *", "* * * * * *"),
        &format!("{n} services x 1 probes every second"),
    );
    // Timeline: faults [0, W) | settle [W, W+S): the baseline | faults [W+S, T-S) | settle [T-S, T): the end.
    let (cycle, mut plan, mut k) = (phases(n), Vec::new(), 1);
    for (lo, hi) in [(0.0, w), (w + s, total - s)] {
        let mut t = lo;
        while t < hi {
            let (name, sc) = &cycle[k % cycle.len()];
            plan.push((t, name.clone(), sc.clone()));
            (t, k) = (t + phase, k + 1);
        }
        plan.push((hi, "none (settle)".into(), cycle[0].1.clone()));
    }
    let phase_at = |t: f64| {
        plan.iter()
            .rfind(|p| p.0 <= t)
            .map_or("none", |p| p.1.as_str())
            .to_owned()
    };
    let names: Vec<&str> = cycle[1..].iter().map(|c| c.0.as_str()).collect();
    println!(
        "soak: {n} services, {total:.0} s: faults every {phase:.0} s through {}; settles of {s:.0} s at {w:.0} s \
         (baseline) and at the end; a sample every {every:.0} s",
        names.join(", ")
    );
    let t0 = Instant::now();
    let (sim, schedule) = (r.sim.clone(), plan.clone());
    let posts_failed = Arc::new(AtomicUsize::new(0));
    let failures = posts_failed.clone();
    std::thread::spawn(move || {
        for (start, _, sc) in schedule {
            sleep(Duration::from_secs_f64(start).saturating_sub(t0.elapsed()));
            if post_json(&format!("{sim}/_sim/scenario"), &sc).is_err() {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    println!(
        "{:>5} {:16} {:>8} {:>5} {:>4} {:>5} {:>8} {:>5} {:>8} {:>10} {:>7} | {:>7} {:>8}",
        "t",
        "phase",
        "RSS MiB",
        "fds",
        "thr",
        "CPU%",
        "inflight",
        "jobs",
        "probes/s",
        "late p99",
        "scrape",
        "sim RSS",
        "sim CPU%"
    );
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    let (mut samples, mut failed, mut alive) = (Vec::<Sample>::new(), 0, true);
    let wall0 = now().floor() + offset;
    for i in 0..=(total / every) as usize {
        sleep(Duration::from_secs_f64(
            (wall0 + i as f64 * every - now()).max(0.0),
        ));
        let t = t0.elapsed().as_secs_f64();
        let (Some(p), sim) = (proc_stats(r.pid), proc_stats(r.sim_pid)) else {
            alive = false;
            break;
        };
        let t_scrape = Instant::now();
        let m = match get(
            &format!("{}/metrics", r.url),
            Duration::from_secs_f64(every * 4.0),
        ) {
            Ok(text) => Samples::parse(&text),
            Err(e) => {
                failed += 1;
                println!("{t:5.0} scrape failed: {e}");
                continue;
            }
        };
        let scrape = t_scrape.elapsed().as_secs_f64();
        let (in_flight, jobs) = (
            m.sum("td_pz_scheduler_runs_in_flight", &[]),
            m.sum("td_pz_scheduler_jobs", &[]),
        );
        let mut x = Sample {
            t,
            m,
            p,
            sim,
            scrape,
            in_flight,
            jobs,
            cpu_pct: f64::NAN,
        };
        if let Some(prev) = samples.last() {
            let dt = t - prev.t;
            x.cpu_pct = 100.0 * (x.p.cpu - prev.p.cpu) / dt;
            let probes_ps =
                (x.m.sum("td_pz_probes_total", &[]) - prev.m.sum("td_pz_probes_total", &[])) / dt;
            let sim_cpu = match (&x.sim, &prev.sim) {
                (Some(a), Some(b)) => 100.0 * (a.cpu - b.cpu) / dt,
                _ => f64::NAN,
            };
            println!(
                "{t:5.0} {:16} {:8.1} {:5} {:4} {:5.0} {:8.0} {:5.0} {probes_ps:8.0} {:>10} {scrape:6.2}s | {:7.1} {sim_cpu:8.0}",
                phase_at((prev.t + t) / 2.0).chars().take(16).collect::<String>(),
                x.p.rss / 1048576.0,
                x.p.fds,
                x.p.threads,
                x.cpu_pct,
                x.in_flight,
                x.jobs,
                ms(late(&prev.m, &x.m, None).1, false),
                x.sim.as_ref().map_or(0.0, |s| s.rss) / 1048576.0,
            );
        }
        samples.push(x);
    }
    println!();
    let mut ch = Checks::new("soak");
    ch.check(
        alive && proc_stats(r.pid).is_some(),
        "the exporter is alive at the end",
    );
    crate::check_no_panic(&mut ch, &r.st.log_of("exporter"));
    ch.check(
        failed == 0 && samples.len() > 2,
        &format!("every sample scraped /metrics ({failed} failed)"),
    );
    if samples.len() < 4 {
        let ok = ch.finish();
        r.end();
        return ok;
    }
    let window = |lo: f64, hi: f64| {
        samples
            .iter()
            .filter(|x| lo <= x.t && x.t <= hi)
            .collect::<Vec<_>>()
    };
    let base = Some(window(w + s / 2.0, w + s))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| window(w, w + s));
    let end = Some(window(total - s / 2.0, total + 1.0)).filter(|v| !v.is_empty());
    let end = end.unwrap_or_else(|| samples[samples.len() - 2..].iter().collect());
    let med = |xs: &[&Sample], f: fn(&Sample) -> f64| median(xs.iter().map(|x| f(x)).collect());
    let jobs = max(samples.iter().map(|x| x.jobs));
    let over: Vec<String> = samples
        .iter()
        .filter(|x| x.in_flight > x.jobs)
        .take(5)
        .map(|x| format!("{:.0}", x.t))
        .collect();
    ch.check(
        over.is_empty(),
        &format!(
            "runs in flight never above the jobs ({jobs:.0}): max {:.0}{}",
            max(samples.iter().map(|x| x.in_flight)),
            if over.is_empty() {
                String::new()
            } else {
                format!(", exceeded at t=[{}]", over.join(", "))
            }
        ),
    );
    let second: Vec<&Sample> = samples.iter().filter(|x| x.t >= total / 2.0).collect();
    let (q3, q4) = second.split_at(second.len() / 2);
    let (mx3, mx4) = (
        max(q3.iter().map(|x| x.in_flight)),
        max(q4.iter().map(|x| x.in_flight)),
    );
    let (b_in, e_in) = (med(&base, |x| x.in_flight), med(&end, |x| x.in_flight));
    ch.check(
        mx4 <= mx3 + 0.1 * jobs && e_in <= (1.5 * b_in).max(b_in + 0.02 * jobs),
        &format!(
            "runs in flight not growing: peak {mx3:.0} (3rd quarter) -> {mx4:.0} (4th); settled median \
             {b_in:.0} (baseline) -> {e_in:.0} (end)"
        ),
    );
    let (b_rss, e_rss) = (med(&base, |x| x.p.rss), med(&end, |x| x.p.rss));
    ch.check(
        (e_rss - b_rss) / b_rss < 0.10,
        &format!(
            "RSS growth {:+.1}% < 10%: {:.1} MiB at the baseline -> {:.1} MiB at the end (peak {:.1} MiB)",
            100.0 * (e_rss - b_rss) / b_rss,
            b_rss / 1048576.0,
            e_rss / 1048576.0,
            max(samples.iter().map(|x| x.p.rss)) / 1048576.0
        ),
    );
    let (b_fd, e_fd) = (
        med(&base, |x| x.p.fds as f64),
        med(&end, |x| x.p.fds as f64),
    );
    ch.check(
        e_fd <= b_fd + (0.1 * b_fd).max(10.0),
        &format!(
            "open fds flat: {b_fd:.0} at the baseline -> {e_fd:.0} at the end (peak {:.0} during faults)",
            max(samples.iter().map(|x| x.p.fds as f64))
        ),
    );
    let last = &samples[samples.len() - 1];
    let (p50, p99, _, capped) = late(&samples[0].m, &last.m, None);
    let cpu_mean = samples[1..].iter().map(|x| x.cpu_pct).sum::<f64>() / (samples.len() - 1) as f64;
    let posts_failed = posts_failed.load(Ordering::Relaxed);
    println!(
        "  info: peak RSS (VmHWM) {:.1} MiB; threads {:.0} -> {:.0}; exporter CPU mean {cpu_mean:.0}% of one core; \
         fire lateness over the run p50 {}, p99 {}; skipped runs {:.0}; /metrics scrape median {:.2} s{}",
        status_kib(r.pid, "VmHWM") as f64 / 1024.0,
        med(&base, |x| x.p.threads as f64),
        med(&end, |x| x.p.threads as f64),
        ms(p50, false),
        ms(p99, capped),
        last.m.sum("td_pz_schedule_skipped_total", &[]),
        median(samples.iter().map(|x| x.scrape).collect()),
        if posts_failed > 0 { format!("; {posts_failed} scenario posts failed") } else { String::new() }
    );
    let ok = ch.finish();
    r.end();
    ok
}
