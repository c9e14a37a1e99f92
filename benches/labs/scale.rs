//! `scale` (scripts/bench-scale.sh, docs/performance.md "Scale"): `--services` (5000) services, each
//! with a service_id and one probe, on the README's default schedules (a probe every 30 s, metrics
//! every 60 s at :00, logs at :15 and :45), against the simulator (accept_any_service, `--log-rate`
//! 0.05). After a warm-up of at least one full minute, a snapshot of /metrics at second :50, then a
//! window of `--duration` (300) s starting at :58; /metrics is scraped at :07, :22, :37 and :52
//! (between the bursts of :00/:30 and :15/:45), gzip as Prometheus asks, and each scrape is timed.
//! Figures are deltas over the window; the series (per probe target, per service, the exporter's
//! own) and the bytes per scrape and per series come from one scrape after it. Goals: CPU < 25% of
//! one core, RSS < 150 MB, lateness p99 < 50 ms, no skipped runs.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::procs::{cpu_seconds, log, status_kib, Stack, Window, CLIENT};
use crate::prom::{late, Samples, Series};
use crate::report::Figure;
use crate::Report;

fn config(n: usize) -> String {
    let mut out = String::from(
        "[td]\nsite = \"us01\"\napi_key_env = \"TD_API_KEY\"\npersonalization_url = \"{sim}\"\n\
         cdp_api_url = \"{sim}\"\ntimeout = \"10s\"\n\n[defaults]\nprobe_schedule = \"*/30 * * * * *\"\n\
         metrics_schedule = \"0 * * * * *\"\nlogs_schedule = \"15,45 * * * * *\"\n",
    );
    for i in 0..n {
        out += &format!(
            "\n[[service]]\nname = \"svc_{i:05}\"\nparent_segment_id = \"394649\"\nservice_id = \"{}\"\n\
             api = \"cdp\"\n\n  [[service.probe]]\n  name = \"vip\"\n  user_id = \"vip_user_001\"\n  \
             expect_section = \"premium_users\"\n",
            100_000 + i
        );
    }
    out
}

/// One scrape as Prometheus does it (gzip): the body decompressed, seconds, the exporter's CPU
/// seconds meanwhile, bytes on the wire.
fn scrape(url: &str, pid: u32) -> (String, f64, f64, usize) {
    let (c0, t0) = (cpu(pid), Instant::now());
    let req = CLIENT
        .1
        .get(format!("{url}/metrics"))
        .header("accept-encoding", "gzip");
    let (gz, wire) = CLIENT
        .0
        .block_on(async {
            let r = req.timeout(Duration::from_secs(120)).send().await?;
            let gz = r
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v == "gzip");
            Ok::<_, reqwest::Error>((gz, r.bytes().await?))
        })
        .unwrap_or_else(|e| panic!("measurement failed: scraping {url}/metrics: {e}"));
    let (took, cpu) = (t0.elapsed().as_secs_f64(), cpu(pid) - c0);
    let mut body = String::new();
    if gz {
        flate2::read::GzDecoder::new(&wire[..])
            .read_to_string(&mut body)
            .expect("gzip body");
    } else {
        body = String::from_utf8_lossy(&wire).into_owned();
    }
    (body, took, cpu, wire.len())
}

fn cpu(pid: u32) -> f64 {
    cpu_seconds(&pid.to_string()).unwrap_or(0.0)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The next wall-clock second `sec` of a minute after `not_before` (unix seconds).
fn next_second(sec: f64, not_before: f64) -> f64 {
    let t = now().max(not_before);
    let target = t - t % 60.0 + sec;
    if target <= t {
        target + 60.0
    } else {
        target
    }
}

fn sleep_until(t: f64) {
    sleep(Duration::from_secs_f64((t - now()).max(0.0)));
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    let value = args
        .iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='));
    value.and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The series of the scrape after the window and what they weigh.
fn series_rows(rep: &mut Report, s: &Series, size: usize, wire: usize) {
    let [probe, service, fixed] = s.per_target();
    let n = s.total().max(1) as f64;
    rep.row("series (sample lines of one scrape)", s.total(), "");
    rep.row(
        "series per probe target: probe + service + fixed",
        format!(
            "{} + {} + {} = {}",
            probe.show(),
            service.show(),
            fixed.show(),
            (probe + service + fixed).show()
        ),
        "",
    );
    let per_service = (s.probe + s.service) as f64 / s.services.max(1) as f64;
    rep.row("series per service (with its pz_service)", per_service, "");
    rep.row("series of the exporter's own (no pz_service)", s.own, "");
    rep.row("bytes per scrape (/metrics)", size as f64 / 1e6, "MB");
    rep.row(
        "bytes per scrape on the wire (gzip)",
        wire as f64 / 1e6,
        "MB",
    );
    rep.row("bytes per series", size as f64 / n, "B");
    rep.row("bytes per series on the wire (gzip)", wire as f64 / n, "B");
}

pub fn run(bin: &Path, rev: &str, args: &[String]) -> bool {
    let services: usize = arg(args, "--services", 5000);
    let duration: f64 = arg(args, "--duration", 300.0);
    let log_rate: f64 = arg(args, "--log-rate", 0.05);
    let mut st = Stack::new("scale", bin);
    let sc = serde_json::json!({"accept_any_service": true, "log_rate": log_rate});
    let ((sim, sim_pid), t_start) = (st.simulator(Some(&sc)), Instant::now());
    let (url, pid) = st.exporter(&config(services), &sim, &[]);
    let ready_after = t_start.elapsed().as_secs_f64();
    log(&format!(
        "{services} services ready after {ready_after:.1}s; warming up for a minute"
    ));

    // The start snapshot at :50 (a full scrape, outside the window), the window from :58.
    let at = next_second(50.0, now() + 60.0);
    sleep_until(at);
    let rss_unscraped = status_kib(pid, "VmRSS");
    let s0 = Samples::parse(&scrape(&url, pid).0);
    let rss_one_scrape = status_kib(pid, "VmRSS");
    assert!(
        now() <= at + 8.0,
        "measurement failed: the start snapshot took over 8 s"
    );
    sleep_until(at + 8.0);
    log(&format!(
        "window: {duration}s from {}",
        chrono::Local::now().format("%H:%M:%S")
    ));
    let (w, t_end, mut scrapes) = (Window::new(&[pid, sim_pid]), now() + duration, vec![]);
    // The exporter's CPU each second, for the peak (the cron seconds' bursts).
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut points = vec![(Instant::now(), cpu(pid))];
            while !stop.load(Ordering::Relaxed) {
                sleep(Duration::from_secs(1));
                points.push((Instant::now(), cpu(pid)));
            }
            let rates = points
                .windows(2)
                .map(|p| (p[1].1 - p[0].1) / (p[1].0 - p[0].0).as_secs_f64());
            rates.fold(f64::NAN, f64::max)
        })
    };
    loop {
        let next = [7.0, 22.0, 37.0, 52.0]
            .into_iter()
            .map(|s| next_second(s, 0.0))
            .fold(f64::INFINITY, f64::min);
        if next >= t_end {
            break;
        }
        sleep_until(next);
        st.alive(pid);
        let (_, took, cpu, _) = scrape(&url, pid);
        scrapes.push((took, cpu));
    }
    sleep_until(t_end);
    let (elapsed, other, exp_cpu, sim_cpu) =
        (w.elapsed(), w.other_cores(), w.cpu(pid), w.cpu(sim_pid));
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(f64::NAN);
    st.alive(pid);
    let (rss, hwm) = (status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    let (text, _, _, wire) = scrape(&url, pid);
    let (s1, series, size) = (Samples::parse(&text), Series::count(&text), text.len());
    drop(text);
    let delta = |name: &str, m: &[(&str, &str)]| s1.sum(name, m) - s0.sum(name, m);
    let scrape_cpu: f64 = scrapes.iter().map(|s| s.1).sum();
    let (skipped, probes) = (
        delta("td_pz_schedule_skipped_total", &[]),
        delta("td_pz_probes_total", &[]),
    );
    let polls = |p| delta("td_pz_polls_total", &[("poller", p)]);
    let (metrics_polls, logs_polls) = (polls("metrics"), polls("logs"));
    let fails = delta("td_pz_probe_failures_total", &[]) + delta("td_pz_poll_failures_total", &[]);
    let (p50, p99, fires, _) = late(&s0, &s1, None);
    let (minutes, n) = (duration / 60.0, services as f64);
    let mut took: Vec<f64> = scrapes.iter().map(|s| s.0).collect();
    took.sort_by(f64::total_cmp);
    let share = exp_cpu / elapsed * 100.0;

    let mut rep = Report::new("bench-scale", rev);
    rep.row("services", services, "");
    rep.row("probes per service", 1, "");
    rep.row(
        "jobs",
        format!("{:.0}", s1.sum("td_pz_scheduler_jobs", &[])),
        "",
    );
    rep.row("ready after start", ready_after, "s");
    rep.row("window", duration, "s");
    rep.row(
        "probes run (expected)",
        format!("{probes:.0} ({:.0})", n * 2.0 * minutes),
        "",
    );
    rep.row(
        "metrics polls (expected)",
        format!("{metrics_polls:.0} ({:.0})", n * minutes),
        "",
    );
    rep.row(
        "logs polls (expected)",
        format!("{logs_polls:.0} ({:.0})", n * 2.0 * minutes),
        "",
    );
    rep.row("failed probes + polls", format!("{fails:.0}"), "");
    rep.row("exporter CPU", exp_cpu, "s");
    rep.row("exporter CPU share of one core", share, "%");
    rep.row("exporter CPU peak (busiest second)", peak * 100.0, "%");
    rep.row(
        "  of which /metrics scrapes",
        scrape_cpu / elapsed * 100.0,
        "%",
    );
    rep.row(
        "  without scrapes",
        (exp_cpu - scrape_cpu) / elapsed * 100.0,
        "%",
    );
    let runs = (probes + metrics_polls + logs_polls).max(1.0);
    rep.row(
        "exporter CPU per 1,000 runs (no scrapes)",
        (exp_cpu - scrape_cpu) / runs * 1000.0,
        "s",
    );
    rep.row(
        "simulator CPU share (not counted)",
        sim_cpu / elapsed * 100.0,
        "%",
    );
    rep.row(
        "exporter RSS before any scrape (warm-up end)",
        rss_unscraped as f64 / 1024.0,
        "MiB",
    );
    rep.row(
        "exporter RSS after the first scrape",
        rss_one_scrape as f64 / 1024.0,
        "MiB",
    );
    rep.row("exporter RSS at end", rss as f64 / 1024.0, "MiB");
    rep.row("exporter peak RSS (VmHWM)", hwm as f64 / 1024.0, "MiB");
    rep.row("scheduler fires counted", format!("{fires:.0}"), "");
    rep.row("lateness p50", p50 * 1000.0, "ms");
    rep.row("lateness p99", p99 * 1000.0, "ms");
    for p in ["probe", "metrics", "logs"] {
        rep.row(
            &format!("lateness p99 ({p})"),
            late(&s0, &s1, Some(p)).1 * 1000.0,
            "ms",
        );
    }
    rep.row("skipped runs", format!("{skipped:.0}"), "");
    series_rows(&mut rep, &series, size, wire);
    rep.row("/metrics scrapes", scrapes.len(), "");
    if let Some(max) = took.last() {
        rep.row(
            "/metrics scrape time p50",
            took[took.len().div_ceil(2) - 1] * 1000.0,
            "ms",
        );
        rep.row("/metrics scrape time max", max * 1000.0, "ms");
        rep.row(
            "/metrics scrape CPU (mean)",
            scrape_cpu / scrapes.len() as f64 * 1000.0,
            "ms",
        );
    }
    rep.other(other);
    rep.goal(
        "CPU < 25% of one core",
        share < 25.0,
        format!("{share:.1}%"),
    );
    rep.goal(
        "RSS < 150 MB",
        hwm as f64 * 1024.0 < 150e6,
        format!("peak {:.0} MB", hwm as f64 * 1024.0 / 1e6),
    );
    rep.goal(
        "lateness p99 < 50 ms",
        p99 * 1000.0 < 50.0,
        format!("{:.1} ms", p99 * 1000.0),
    );
    rep.goal("no skipped runs", skipped == 0.0, format!("{skipped:.0}"));
    if fails > 0.0 {
        rep.note(format!(
            "{fails:.0} probes/polls failed in the window (see the exporter log in {})",
            st.work.display()
        ));
    }
    rep.print(args)
}
