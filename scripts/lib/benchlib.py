"""Shared helpers of the scripts/bench-*.sh measurements (see docs/performance.md).

Processes: every process a bench starts is recorded and ended by its pid (never by name).
CPU: utime+stime from /proc/PID/stat (clock ticks), peak RSS: VmHWM from /proc/PID/status.
Machine load: /proc/stat busy time minus the measured processes', so a run disturbed by other
work on the machine is flagged ("re-run") instead of silently reported.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SOURCE_BIN = os.environ.get("TD_PZ_BIN", os.path.join(ROOT, "target", os.environ.get("BENCH_PROFILE", "dist"), "td-pz-exporter"))
TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
# A test value the simulator checks like a real key; not a secret.
API_KEY = "1/bench000000000000000000000000000000000000"

_started = []


def _snapshot_binary():
    """A private copy of the binary: others rebuild target/release while a bench runs, and perf
    must resolve symbols against the code that ran. Removed at exit unless BENCH_KEEP_BIN is set.
    None under BENCH_NO_BINARY=1 (reports of in-process benches, which run no daemon)."""
    if os.environ.get("BENCH_NO_BINARY") == "1":
        return None
    if not os.path.exists(SOURCE_BIN):
        raise SystemExit(f"measurement failed: no binary at {SOURCE_BIN} (cargo build --profile dist)")
    d = tempfile.mkdtemp(prefix="td-pz-bench-bin.")
    dst = os.path.join(d, "td-pz-exporter")
    shutil.copy2(SOURCE_BIN, dst)
    if not os.environ.get("BENCH_KEEP_BIN"):
        atexit.register(shutil.rmtree, d, True)
    return dst


BIN = _snapshot_binary()


def revision():
    """The commit, whether src/ differs from it, and when the binary was built."""
    def git(*args):
        r = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
        return r.stdout.strip()
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = "+src changes" if git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock") else ""
    if BIN is None:
        return f"{rev}{dirty} (cargo bench)"
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(SOURCE_BIN)))
    return f"{rev}{dirty}, built {built}"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(name, argv, workdir, env=None):
    """Starts a process with its output in workdir/<name>.log; it is ended at exit, by pid."""
    out = open(os.path.join(workdir, f"{name}.log"), "wb")
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=e, cwd=workdir)
    p.bench_name = name
    _started.append(p)
    return p


def stop(p, grace=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _started:
        _started.remove(p)


@atexit.register
def _stop_all():
    for p in list(_started):
        try:
            stop(p, grace=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def alive(p):
    if p.poll() is not None:
        raise SystemExit(f"measurement failed: {p.bench_name} exited with {p.returncode} (see its log)")


def http_get(url, timeout=30, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def workdir(name):
    """A fresh work dir for bench `name`, logged with the machine's load."""
    work = tempfile.mkdtemp(prefix=f"td-pz-bench-{name}.")
    log(f"load average {loadavg()}; others use {quiet_machine():.2f} cores; work dir {work}")
    return work


def start_simulator(work, scenario=None, args=None, cpus=None):
    """The TD simulator on a free loopback port with `scenario` (a dict) and the bench API key, or
    `args` instead of the key; returns (process, url) once it answers. `cpus` (e.g. "1") pins it
    to those CPUs with taskset."""
    port = free_port()
    argv = [BIN, "simulate", f"--listen=127.0.0.1:{port}"]
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + argv
    argv += args if args is not None else [f"--api-key={API_KEY}"]
    if scenario is not None:
        path = os.path.join(work, "scenario.json")
        with open(path, "w") as f:
            json.dump(scenario, f)
        argv.append(f"--scenario={path}")
    sim = start("simulator", argv, work)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_sim/stats", proc=sim)
    return sim, url


def wait_http(url, timeout=60, proc=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None:
            alive(proc)
        try:
            status, _ = http_get(url, timeout=5)
            if status == 200:
                return
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(0.1)
    raise SystemExit(f"measurement failed: {url} not ready after {timeout}s ({last})")


def cpu_seconds(pid):
    """utime+stime of a process (all its threads, exited ones included), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def machine_busy():
    """Busy CPU seconds of the whole machine (all cores) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / TICK


class Window:
    """CPU seconds of some processes over a time window."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.t0 = time.monotonic()
        self.cpu0 = {p: cpu_seconds(p) for p in self.pids}

    def close(self):
        self.elapsed = time.monotonic() - self.t0
        self.cpu = {p: cpu_seconds(p) - self.cpu0[p] for p in self.pids}
        return self


class Busy:
    """The machine's busy CPU beyond this bench's own processes, over a window."""

    def __init__(self, own_pids):
        self.own = list(own_pids)
        self.busy0 = machine_busy()
        self.own0 = self._own()
        self.t0 = time.monotonic()
        self.self0 = _self_cpu()

    def _own(self):
        total = 0.0
        for p in self.own:
            try:
                total += cpu_seconds(p)
            except OSError:
                pass
        return total

    def other_cores(self):
        """Average cores used by anything else than the bench's processes (and itself)."""
        dt = time.monotonic() - self.t0
        other = (machine_busy() - self.busy0) - (self._own() - self.own0) - (_self_cpu() - self.self0)
        return max(0.0, other) / dt if dt > 0 else 0.0


def _self_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def quiet_machine(max_other=0.25, wait=None):
    """Waits (up to `wait` s, default $BENCH_QUIET_WAIT or 120) until the machine's busy CPU is under max_other cores over 3 s;
    returns the last figure. Called inside the measurement lock, before timing."""
    if wait is None:
        wait = float(os.environ.get("BENCH_QUIET_WAIT", "120"))
    deadline = time.time() + wait
    while True:
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(3)
        cores = (machine_busy() - b0) / (time.monotonic() - t0)
        if cores < max_other or time.time() > deadline:
            return cores
        log(f"machine busy ({cores:.2f} cores used by others), waiting")


def prom_samples(text, names):
    """{(name, labels-string): value} for the samples whose name is in `names`."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.rfind(" ")
        name = line[:brace] if 0 <= brace < space else line[:space]
        if name not in names:
            continue
        labels = line[brace + 1 : line.rfind("}")] if brace >= 0 else ""
        out[(name, labels)] = float(line[space + 1 :])
    return out


def label(labels, key):
    for part in _split_labels(labels):
        k, _, v = part.partition("=")
        if k == key:
            return v.strip('"')
    return None


def _split_labels(s):
    parts, cur, q = [], "", False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == "," and not q:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def sum_of(samples, name, **match):
    return sum(
        v for (n, l), v in samples.items() if n == name and all(label(l, k) == w for k, w in match.items())
    )


def histogram_quantile(q, buckets):
    """Prometheus' histogram_quantile over [(le, cumulative count)] (le may be inf)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return buckets[-1][0]


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


class Report:
    """Figures as a table, then the goals and the `<name>: N passed, M failed` line."""

    def __init__(self, name):
        self.name = name
        self.rows = [("binary", revision(), "")]
        self.goals = []
        self.notes = []

    def row(self, what, value, unit=""):
        self.rows.append((what, value, unit))

    def goal(self, what, ok, detail):
        self.goals.append((what, bool(ok), detail))

    def note(self, text):
        self.notes.append(text)

    def print(self):
        w = max([len(r[0]) for r in self.rows] + [10])
        print()
        print(f"{'figure':<{w}}  value")
        print(f"{'-' * w}  {'-' * 24}")
        for what, value, unit in self.rows:
            if isinstance(value, float):
                value = f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
            print(f"{what:<{w}}  {value} {unit}".rstrip())
        if self.goals:
            print()
            g = max(len(x[0]) for x in self.goals)
            for what, ok, detail in self.goals:
                print(f"goal {what:<{g}}  {'MET ' if ok else 'MISSED'}  {detail}")
        for n in self.notes:
            print(f"note: {n}")
        passed = sum(1 for g in self.goals if g[1])
        print(f"{self.name}: {passed} passed, {len(self.goals) - passed} failed")
        sys.stdout.flush()

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"rows": self.rows, "goals": self.goals, "notes": self.notes}, f, indent=1)
