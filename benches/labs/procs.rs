//! The processes a lab runs and what it reads of them: the simulator (`td-pz-exporter simulate`)
//! and the exporter as children on free loopback ports, each logging to `WORK/<name>.log` and ended
//! (TERM, then KILL) when the `Stack` drops; CPU and memory from `/proc`; plain HTTP to both.
//! It measures and starts; it judges nothing.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

// The simulator checks these like a real key and token; they are test values, not secrets.
pub const API_KEY: &str = "1/e2e00000000000000000000000000000000000000";
const P13N_TOKEN: &str = "1/2/e2e0123456789abcdef0123456789abc";

pub fn log(msg: &str) {
    eprintln!("[bench {}] {msg}", chrono::Local::now().format("%H:%M:%S"));
}

pub struct Stack {
    pub work: PathBuf,
    bin: PathBuf,
    children: Vec<(String, Child)>,
}

impl Stack {
    /// A fresh work dir, logged with the machine's load after waiting for it to be quiet.
    pub fn new(name: &str, bin: &Path) -> Stack {
        let work = std::env::temp_dir().join(format!("td-pz-bench-{name}.{}", std::process::id()));
        fs::create_dir_all(&work).expect("work dir");
        log(&format!(
            "load average {}; others use {:.2} cores; work dir {}",
            loadavg(),
            quiet_machine(),
            work.display()
        ));
        Stack {
            work,
            bin: bin.to_owned(),
            children: Vec::new(),
        }
    }

    /// Starts the binary with `args`, its output in WORK/<name>.log, and waits until `ready` answers.
    pub fn serve(
        &mut self,
        name: &str,
        args: &[String],
        ready: &str,
        env: &[(&str, &str)],
    ) -> (String, u32) {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let out = File::create(self.work.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(&self.bin)
            .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .current_dir(&self.work)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        let deadline = Instant::now() + Duration::from_secs(300);
        while get(&format!("{url}{ready}"), Duration::from_secs(2)).is_err() {
            self.alive(pid);
            assert!(
                Instant::now() < deadline,
                "{name} not ready at {url}{ready} after 300 s"
            );
            sleep(Duration::from_millis(100));
        }
        (url, pid)
    }

    /// The simulator on `scenario`, or on its own default one.
    pub fn simulator(&mut self, scenario: Option<&Value>) -> (String, u32) {
        let mut args = vec![
            "simulate".into(),
            "--listen=127.0.0.1:{port}".into(),
            format!("--api-key={API_KEY}"),
            format!("--p13n-token={P13N_TOKEN}"),
        ];
        if let Some(sc) = scenario {
            let path = self.work.join("scenario.json");
            fs::write(&path, sc.to_string()).expect("scenario file");
            args.push(format!("--scenario={}", path.display()));
        }
        self.serve("simulator", &args, "/_sim/stats", &[])
    }

    /// `config`: TOML text, `{sim}` in it becomes `sim`.
    pub fn exporter(&mut self, config: &str, sim: &str, extra: &[&str]) -> (String, u32) {
        let path = self.work.join("exporter.toml");
        fs::write(&path, config.replace("{sim}", sim)).expect("exporter config");
        let mut args = vec![
            format!("--config.file={}", path.display()),
            "--web.listen-address=127.0.0.1:{port}".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        self.serve(
            "exporter",
            &args,
            "/-/ready",
            &[("TD_API_KEY", API_KEY), ("TD_P13N_TOKEN", P13N_TOKEN)],
        )
    }

    /// Panics with the end of its log if the child `pid` has exited.
    pub fn alive(&mut self, pid: u32) {
        let Some((name, child)) = self.children.iter_mut().find(|(_, c)| c.id() == pid) else {
            return;
        };
        let Ok(Some(status)) = child.try_wait() else {
            return;
        };
        let name = name.clone();
        let text = self.log_of(&name);
        let tail: String = text
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("{name} exited with {status}; the end of its log:\n{tail}");
    }

    pub fn log_of(&self, name: &str) -> String {
        String::from_utf8_lossy(
            &fs::read(self.work.join(format!("{name}.log"))).unwrap_or_default(),
        )
        .into_owned()
    }

    /// Ends every child started: TERM, then KILL after 10 s.
    pub fn stop(&mut self) {
        for (_, c) in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            }
        }
        for (name, mut c) in self.children.drain(..) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
            if let Ok(None) = c.try_wait() {
                log(&format!("{name} (pid {}) ignored TERM, killing", c.id()));
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub static CLIENT: LazyLock<(tokio::runtime::Runtime, reqwest::Client)> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    (rt, reqwest::Client::new())
});

fn send(req: reqwest::RequestBuilder) -> Result<String, String> {
    CLIENT.0.block_on(async {
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("HTTP {status}: {text}"))
        }
    })
}

pub fn get(url: &str, timeout: Duration) -> Result<String, String> {
    send(CLIENT.1.get(url).timeout(timeout))
}

pub fn post_json(url: &str, body: &Value) -> Result<String, String> {
    send(
        CLIENT
            .1
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(10)),
    )
}

/// /proc reports CPU times in USER_HZ, 100 a second on Linux.
fn ticks() -> f64 {
    100.0
}

/// utime+stime of a process ("self" or a pid; all its threads, exited ones included), in seconds.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks())
}

/// A field of /proc/PID/status in kiB (or a count: `Threads`); 0 when absent.
pub fn status_kib(pid: u32, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'));
    line.and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// RSS (bytes), threads, open fds and CPU seconds; None once the process is gone or a zombie.
pub struct ProcStats {
    pub rss: f64,
    pub threads: u64,
    pub fds: usize,
    pub cpu: f64,
}

pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status.contains("State:\tZ") {
        return None;
    }
    Some(ProcStats {
        rss: status_kib(pid, "VmRSS") as f64 * 1024.0,
        threads: status_kib(pid, "Threads"),
        fds: fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count(),
        cpu: cpu_seconds(&pid.to_string())?,
    })
}

/// Busy CPU seconds of the whole machine (all cores) so far.
fn machine_busy() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.iter().take(8).sum::<f64>() - v.get(3).unwrap_or(&0.0) - v.get(4).unwrap_or(&0.0)) / ticks()
}

pub fn loadavg() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits (up to $BENCH_QUIET_WAIT s, default 120) until others use under 0.25 cores over 3 s.
fn quiet_machine() -> f64 {
    let wait = std::env::var("BENCH_QUIET_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120.0);
    let deadline = Instant::now() + Duration::from_secs_f64(wait);
    loop {
        let (b0, t0) = (machine_busy(), Instant::now());
        sleep(Duration::from_secs(3));
        let cores = (machine_busy() - b0) / t0.elapsed().as_secs_f64();
        if cores < 0.25 || Instant::now() > deadline {
            return cores;
        }
        log(&format!(
            "machine busy ({cores:.2} cores used by others), waiting"
        ));
    }
}

/// A window of time: the CPU seconds of `pids` over it, and the cores the rest of the machine used
/// (beyond `pids` and this process).
pub struct Window {
    pids: Vec<u32>,
    t0: Instant,
    cpu0: Vec<f64>,
    rest0: f64,
}

impl Window {
    pub fn new(pids: &[u32]) -> Window {
        let cpu0 = pids
            .iter()
            .map(|p| cpu_seconds(&p.to_string()).unwrap_or(0.0))
            .collect();
        Window {
            pids: pids.to_vec(),
            t0: Instant::now(),
            cpu0,
            rest0: rest(pids),
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn cpu(&self, pid: u32) -> f64 {
        let i = self
            .pids
            .iter()
            .position(|p| *p == pid)
            .expect("a pid of the window");
        cpu_seconds(&pid.to_string()).unwrap_or(0.0) - self.cpu0[i]
    }

    pub fn other_cores(&self) -> f64 {
        (rest(&self.pids) - self.rest0).max(0.0) / self.t0.elapsed().as_secs_f64()
    }
}

fn rest(pids: &[u32]) -> f64 {
    let ours: f64 = pids
        .iter()
        .filter_map(|p| cpu_seconds(&p.to_string()))
        .sum();
    machine_busy() - ours - cpu_seconds("self").unwrap_or(0.0)
}
