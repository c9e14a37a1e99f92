//! `idle` (`make bench-idle`, docs/performance.md "Idle cost"): the daemon's standing cost. The demo
//! configuration (src/demo.toml) against a separate simulator (not counted), scraped every 15 s for
//! `--duration` (60) s after a 10 s warm-up; then `td-pz-exporter demo` (simulator in process), for
//! information, unless `--no-demo`. Goals: peak RSS < 20 MB, CPU < 0.5% of one core.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::procs::{cpu_seconds, free_port, get, status_kib, Stack, Window};
use crate::Checks;

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
    println!("binary: {rev}");
    println!("window: {:.0} s, {} scrapes", ours.elapsed, ours.scrapes);
    println!("exporter (demo config) CPU: {:.2} s", ours.cpu);
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
        println!("{name} CPU share: {:.3} % of one core", r.share);
        println!("{name} RSS: {:.1} MiB", r.rss as f64 / 1024.0);
        println!("{name} peak RSS: {:.1} MiB", r.hwm as f64 / 1024.0);
    }
    let ours = &rows[0].1;
    println!("exporter (demo config) threads: {}", ours.threads);
    println!("other load on the machine: {:.2} cores", ours.other);
    if ours.other > 0.3 {
        println!(
            "note: the machine was busy ({:.2} cores used by others): re-run for clean figures",
            ours.other
        );
    }
    let mut ch = Checks::new("bench-idle");
    let peak = ours.hwm as f64 * 1024.0 / 1e6;
    ch.check(peak < 20.0, &format!("RSS < 20 MB: peak {peak:.1} MB"));
    ch.check(ours.share < 0.5, &format!("CPU < 0.5%: {:.2}%", ours.share));
    ch.finish()
}
