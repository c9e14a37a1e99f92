#!/usr/bin/env python3
"""The Python side of the measurements (vs-blackbox, micro), under the one measurement lock.

    bench.py vs-blackbox [--rate=20] [--duration=60] [--wrk-seconds=30] [--out=F]   (bench_vs_blackbox.py)
    bench.py micro [CRITERION ARGS]                        cargo bench: benches/render.rs, parse.rs, schedule.rs

The lock: flock on $TD_PZ_MEASURE_LOCK (default /tmp/td-pz-measure.lock), held until the last process is
stopped. The daemon measured is a private copy of $TD_PZ_BIN (default target/$BENCH_PROFILE/td-pz-exporter,
BENCH_PROFILE=dist: the shipped build). CPU: utime+stime of /proc/PID/stat; peak RSS: VmHWM; the CPU the
rest of the machine used is reported, so a disturbed run says "re-run". Each prints a table of figures
and `<name>: N passed, M failed` (goals met or missed). The others (scale, load, soak, idle) are
Rust: benches/labs/, under the same lock.
"""

import atexit
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # nothing written under scripts/
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402

ROOT = stack.ROOT
LOCK = os.environ.get("TD_PZ_MEASURE_LOCK", "/tmp/td-pz-measure.lock")
SOURCE_BIN = os.environ.get("TD_PZ_BIN") or os.path.join(
    ROOT, "target", os.environ.get("BENCH_PROFILE", "dist"), "td-pz-exporter")
TICK = os.sysconf("SC_CLK_TCK")
API_KEY = stack.API_KEY
BIN = None


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measurement_lock():
    """Holds the machine-wide measurement lock until this process exits (waits for it)."""
    log(f"waiting for {LOCK}; load average {loadavg()}")
    f = open(LOCK, "a")
    fcntl.flock(f, fcntl.LOCK_EX)
    os.set_inheritable(f.fileno(), False)  # a process left running can never keep it held
    return f


def snapshot_binary():
    """A private copy of the binary: others rebuild target/ while a bench runs."""
    global BIN
    if not os.path.exists(SOURCE_BIN):
        raise SystemExit(f"measurement failed: no binary at {SOURCE_BIN} (cargo build --profile dist)")
    d = tempfile.mkdtemp(prefix="td-pz-bench-bin.")
    BIN = shutil.copy2(SOURCE_BIN, os.path.join(d, "td-pz-exporter"))
    atexit.register(shutil.rmtree, d, True)


def new_stack(name):
    """A Stack on the copied binary, in a fresh work dir, logged with the machine's load."""
    st = stack.Stack(tempfile.mkdtemp(prefix=f"td-pz-bench-{name}."), BIN)
    log(f"load average {loadavg()}; others use {quiet_machine():.2f} cores; work dir {st.work}")
    return st


def revision():
    git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    dirty = "+src changes" if git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock") else ""
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(SOURCE_BIN)))
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}, built {built}"


def cpu_seconds(pid):
    """utime+stime of a process (all its threads, exited ones included), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        return next((int(line.split()[1]) for line in f if line.startswith(key + ":")), 0)


def machine_busy():
    """Busy CPU seconds of the whole machine (all cores) so far."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / TICK


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def quiet_machine(max_other=0.25):
    """Waits (up to $BENCH_QUIET_WAIT s, default 120) until others use under max_other cores over 3 s."""
    deadline = time.time() + float(os.environ.get("BENCH_QUIET_WAIT", "120"))
    while True:
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(3)
        cores = (machine_busy() - b0) / (time.monotonic() - t0)
        if cores < max_other or time.time() > deadline:
            return cores
        log(f"machine busy ({cores:.2f} cores used by others), waiting")


def _cpu(pid):
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


class Window:
    """CPU seconds of `pids` over a window (`cpu`, `elapsed`), and the cores the rest of the machine used
    meanwhile (`other`: beyond `pids`, the processes `also` and this one)."""

    def __init__(self, pids, also=()):
        self.pids, self.also, self.t0 = list(pids), list(also), time.monotonic()
        self.cpu0, self.rest0 = {p: cpu_seconds(p) for p in self.pids}, self._rest()

    def _rest(self):
        t = os.times()
        return machine_busy() - sum(_cpu(p) for p in self.pids + self.also) - sum(t[:4])

    def close(self):
        self.elapsed = time.monotonic() - self.t0
        self.cpu = {p: cpu_seconds(p) - self.cpu0[p] for p in self.pids}
        self.other = max(0.0, self._rest() - self.rest0) / self.elapsed
        return self


def prom_samples(text, names):
    """{(name, labels-string): value} for the samples whose name is in `names` (all: None)."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace, space = line.find("{"), line.rfind(" ")
        name = line[:brace] if 0 <= brace < space else line[:space]
        if names is None or name in names:
            out[(name, line[brace + 1:line.rfind("}")] if brace >= 0 else "")] = float(line[space + 1:])
    return out


def label(labels, key):
    m = re.search(r'(?:^|,)' + key + r'="((?:[^"\\]|\\.)*)"', labels)
    return m.group(1) if m else None


def sum_of(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


class Report:
    """Figures as a table, then the goals and the `<name>: N passed, M failed` line."""

    def __init__(self, name):
        self.name, self.rows, self.goals, self.notes = name, [("binary", revision(), "")], [], []

    def row(self, what, value, unit=""):
        self.rows.append((what, value, unit))

    def goal(self, what, ok, detail):
        self.goals.append((what, bool(ok), detail))

    def note(self, text):
        self.notes.append(text)

    def other(self, cores, what="other load on the machine"):
        self.row(what, cores, "cores")
        if cores > 0.3:
            self.note(f"the machine was busy ({cores:.2f} cores used by others): re-run for clean figures")

    def print(self, out=None):
        w = max([len(r[0]) for r in self.rows] + [10])
        print(f"\n{'figure':<{w}}  value\n{'-' * w}  {'-' * 24}")
        for what, value, unit in self.rows:
            if isinstance(value, float):
                value = f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
            print(f"{what:<{w}}  {value} {unit}".rstrip())
        if self.goals:
            g = max(len(x[0]) for x in self.goals)
            print()
            for what, ok, detail in self.goals:
                print(f"goal {what:<{g}}  {'MET ' if ok else 'MISSED'}  {detail}")
        for n in self.notes:
            print(f"note: {n}")
        passed = sum(1 for g in self.goals if g[1])
        print(f"{self.name}: {passed} passed, {len(self.goals) - passed} failed", flush=True)
        if out:
            with open(out, "w") as f:
                json.dump({"rows": self.rows, "goals": self.goals, "notes": self.notes}, f, indent=1)


def main():
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("-h", [])
    if cmd not in ("vs-blackbox", "micro"):
        print(__doc__)
        return 2
    sys.modules["bench"] = sys.modules[__name__]  # the bench modules `import bench` and share its state
    lock = measurement_lock()  # noqa: F841 - held until exit
    if cmd == "micro":
        log(f"load average {loadavg()}; others use {quiet_machine():.2f} cores")
        return subprocess.call(["cargo", "bench", "--bench", "render", "--bench", "parse", "--bench", "schedule",
                                "--", *args], cwd=ROOT)
    snapshot_binary()
    sys.argv = [f"bench.py {cmd}", *args]
    return __import__("bench_vs_blackbox").main()


if __name__ == "__main__":
    sys.exit(main())
