//! `idle` (`make bench-idle`, docs/performance.md "Idle cost"): the daemon's standing cost. The demo
//! configuration (src/demo.toml) against a separate simulator (not counted), scraped every 15 s for
//! `--duration` (60) s after a 10 s warm-up; then `td-pz-exporter demo` (simulator in process), for
//! information, unless `--no-demo`. Goals: peak RSS < 20 MB, CPU < 0.5% of one core.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::procs::{cpu_seconds, free_port, get, status_kib, Stack, Window};
use crate::Report;

/// What a window of `duration` s read of one process.
struct Idle {
    cpu: f64,
    share: f64,
    elapsed: f64,
    scrapes: u32,
    other: f64,
    rss: u64,
    hwm: u64,
    threads: u64,
}

fn measure(st: &mut Stack, pid: u32, url: &str, duration: f64) -> Idle {
    sleep(Duration::from_secs(10)); // warm-up
    let (w, t0, cpu0, mut scrapes) = (
        Window::new(&[pid]),
        Instant::now(),
        cpu_seconds(&pid.to_string()),
        0,
    );
    while t0.elapsed().as_secs_f64() < duration {
        st.alive(pid);
        if t0.elapsed().as_secs_f64() >= 7.5 + 15.0 * f64::from(scrapes) {
            let _ = get(&format!("{url}/metrics"), Duration::from_secs(10));
            scrapes += 1;
        }
        sleep(Duration::from_millis(100));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&pid.to_string()).unwrap_or(0.0) - cpu0.unwrap_or(0.0);
    Idle {
        cpu,
        share: cpu / elapsed * 100.0,
        elapsed,
        scrapes,
        other: w.other_cores(),
        rss: status_kib(pid, "VmRSS"),
        hwm: status_kib(pid, "VmHWM"),
        threads: status_kib(pid, "Threads"),
    }
}

pub fn run(bin: &Path, rev: &str, args: &[String]) -> bool {
    let duration = args
        .iter()
        .find_map(|a| a.strip_prefix("--duration=")?.parse().ok())
        .unwrap_or(60.0);
    let mut st = Stack::new("idle", bin);
    let (sim, _) = st.simulator(None);
    let (url, pid) = st.exporter(include_str!("../../src/demo.toml"), &sim, &[]);
    let ours = measure(&mut st, pid, &url, duration);
    st.stop();
    let mut rep = Report::new("bench-idle", rev);
    rep.row(
        "window",
        format!("{:.0} s, {} scrapes", ours.elapsed, ours.scrapes),
        "",
    );
    rep.row("exporter (demo config) CPU", ours.cpu, "s");
    let mut rows = vec![("exporter (demo config)", ours)];
    if !args.iter().any(|a| a == "--no-demo") {
        let demo_args = [
            "demo".into(),
            format!("--sim.listen-address=127.0.0.1:{}", free_port()),
            "--web.listen-address=127.0.0.1:{port}".into(),
        ];
        let (url, pid) = st.serve("demo", &demo_args, "/-/ready", &[]);
        rows.push((
            "`demo` (with simulator)",
            measure(&mut st, pid, &url, duration),
        ));
        st.stop();
    }
    for (name, r) in &rows {
        rep.row(&format!("{name} CPU share"), r.share, "% of one core");
        rep.row(&format!("{name} RSS"), r.rss as f64 / 1024.0, "MiB");
        rep.row(&format!("{name} peak RSS"), r.hwm as f64 / 1024.0, "MiB");
    }
    let ours = &rows[0].1;
    rep.row("exporter (demo config) threads", ours.threads as usize, "");
    rep.other(ours.other);
    let peak = ours.hwm as f64 * 1024.0 / 1e6;
    rep.goal("RSS < 20 MB", peak < 20.0, format!("peak {peak:.1} MB"));
    rep.goal(
        "CPU < 0.5%",
        ours.share < 0.5,
        format!("{:.2}%", ours.share),
    );
    rep.print(args)
}
