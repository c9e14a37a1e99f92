//! The labs of docs/reliability.md and docs/performance.md: the exporter as a child process on
//! generated configurations against `td-pz-exporter simulate`, measured from `/proc`.
//!
//! ```text
//! cargo bench --bench labs -- load                            make load  (env LOAD_*)
//! cargo bench --bench labs -- soak                            make soak  (env SOAK_*)
//! cargo bench --bench labs -- idle [--duration=60] [--no-demo] [--out=F]  make bench-idle
//! cargo bench --bench labs -- scale [--services=5000] [--duration=300] [--log-rate=0.05] [--out=F]
//!                                                             scripts/bench-scale.sh
//! ```
//!
//! The binary measured is a private copy of `$TD_PZ_BIN` (default `target/dist/td-pz-exporter`, the
//! shipped build: `cargo build --profile dist`), as others rebuild `target/` meanwhile. The whole run
//! holds the measurement lock, `flock $TD_PZ_MEASURE_LOCK` (default /tmp/td-pz-measure.lock), which
//! scripts/lib/bench.py takes too. Each lab prints its figures and goals (report.rs), ending with
//! `<lab>: N passed, M failed`; the exit status is 1 when a goal failed.

mod idle;
mod load;
mod procs;
mod prom;
mod report;
mod scale;
mod soak;

pub use report::{Checks, Report};

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::{Flock, FlockArg};

/// `<LAB>_<KEY>` from the environment, else `default`.
pub fn env<T: std::str::FromStr>(lab: &str, key: &str, default: T) -> T {
    let v = std::env::var(format!("{}_{key}", lab.to_uppercase()));
    v.ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The probes a generated service may have: (name, user, endpoint, section, outputs).
const PROBES: [(&str, &str, &str, &str, &str); 3] = [
    (
        "vip",
        "vip_user_001",
        "live",
        "premium_users",
        r#"["recommended_products", "exclusive_offers"]"#,
    ),
    (
        "cart",
        "cart_abandon_456",
        "test",
        "cart_abandoners",
        r#"["discount_code"]"#,
    ),
    (
        "new_user",
        "new_user_123",
        "live",
        "new_users",
        r#"["recommended_products"]"#,
    ),
];

/// Services svc0000...; each service_id is its name, so a fault for the service hits its metrics
/// and logs endpoints too.
pub fn config(
    services: usize,
    probes: usize,
    probe_schedule: &str,
    other_schedule: &str,
) -> String {
    let mut out = format!(
        "[td]\nsite = \"us01\"\napi_key_env = \"TD_API_KEY\"\npersonalization_url = \"{{sim}}\"\n\
         p13n_url = \"{{sim}}\"\ncdp_api_url = \"{{sim}}\"\ntimeout = \"5s\"\nmax_requests_per_second = 5\n\n\
         [defaults]\nprobe_schedule = \"{probe_schedule}\"\nmetrics_schedule = \"{other_schedule}\"\n\
         logs_schedule = \"{other_schedule}\"\nsection_share_window = \"5m\"\n"
    );
    for i in 0..services {
        out += &format!(
            "\n[[service]]\nname = \"svc{i:04}\"\nparent_segment_id = \"394649\"\nservice_id = \"svc{i:04}\"\n\
             api = \"cdp\"\nsections = [\"premium_users\", \"new_users\", \"cart_abandoners\", \"fallback\"]\n"
        );
        for (n, u, e, s, o) in &PROBES[..probes] {
            out += &format!(
                "  [[service.probe]]\n  name = \"{n}\"\n  user_id = \"{u}\"\n  endpoint = \"{e}\"\n  \
                 expect_section = \"{s}\"\n  expect_outputs = {o}\n  max_latency = \"500ms\"\n"
            );
        }
    }
    out
}

/// Checks that the exporter's output holds no panic.
pub fn check_no_panic(ch: &mut Checks, log: &str) {
    let bad: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    let shown: String = bad
        .iter()
        .take(5)
        .map(|l| format!("\n      {}", l.chars().take(300).collect::<String>()))
        .collect();
    ch.check(
        bad.is_empty(),
        &format!(
            "no panic in the exporter's output ({} 'panicked' lines){shown}",
            bad.len()
        ),
    );
}

/// `git rev-parse --short HEAD` (with `+src changes` when src/ or the manifest differ) and the build time.
pub fn revision(bin: &Path) -> String {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let dirty = !git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_empty();
    let built = fs::metadata(bin)
        .and_then(|m| m.modified())
        .map(chrono::DateTime::<chrono::Local>::from);
    let head = git(&["rev-parse", "--short", "HEAD"]);
    format!(
        "{}{}, built {}",
        if head.is_empty() { "unknown" } else { &head },
        if dirty { "+src changes" } else { "" },
        built.map_or("?".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
    )
}

/// The simulator (no fault) and the exporter on `config`, and the machine's other load from now on.
pub struct Run {
    pub st: procs::Stack,
    pub sim: String,
    pub sim_pid: u32,
    pub url: String,
    pub pid: u32,
    busy: procs::Window,
}

impl Run {
    pub fn start(lab: &str, bin: &Path, rev: &str, config: &str, what: &str) -> Run {
        let mut st = procs::Stack::new(lab, bin);
        let (sim, sim_pid) = st.simulator(Some(&soak::scenario(
            serde_json::json!([]),
            serde_json::json!({}),
        )));
        let (url, pid) = st.exporter(config, &sim, &["--log.level=info"]);
        let busy = procs::Window::new(&[sim_pid, pid]);
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        println!("{now} {what}; binary {rev}; work dir {}", st.work.display());
        Run {
            st,
            sim,
            sim_pid,
            url,
            pid,
            busy,
        }
    }

    pub fn end(mut self) {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "machine: {cores} cores; other processes used {:.2} cores",
            self.busy.other_cores()
        );
        self.st.stop();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(lab) = args
        .first()
        .filter(|a| ["load", "soak", "idle", "scale"].contains(&a.as_str()))
    else {
        eprintln!(
            "usage: cargo bench --bench labs -- load | soak | idle [ARGS] | scale [ARGS] (benches/labs/)"
        );
        return ExitCode::from(2);
    };
    let lock_path =
        std::env::var("TD_PZ_MEASURE_LOCK").unwrap_or_else(|_| "/tmp/td-pz-measure.lock".into());
    procs::log(&format!(
        "waiting for {lock_path}; load average {}",
        procs::loadavg()
    ));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&lock_path)
        .expect("the lock file");
    let _lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("the measurement lock");
    let source = std::env::var("TD_PZ_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dist/td-pz-exporter")
        });
    if !source.exists() {
        eprintln!(
            "measurement failed: no binary at {} (cargo build --profile dist)",
            source.display()
        );
        return ExitCode::FAILURE;
    }
    let dir = std::env::temp_dir().join(format!("td-pz-bench-bin.{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a dir for the binary");
    let bin = dir.join("td-pz-exporter");
    fs::copy(&source, &bin).expect("a copy of the binary");
    let rev = revision(&source);
    let ok = match lab.as_str() {
        "load" => load::run(&bin, &rev),
        "soak" => soak::run(&bin, &rev),
        "scale" => scale::run(&bin, &rev, &args[1..]),
        _ => idle::run(&bin, &rev, &args[1..]),
    };
    let _ = fs::remove_dir_all(&dir);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
