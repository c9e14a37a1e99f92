"""bench.py load | soak (`make load`, `make soak`; docs/reliability.md): the simulator and the exporter on
many generated services (scripts/lib/stack.py), under the measurement lock.

load: LOAD_SERVICES (50) services x LOAD_PROBES (2, at most 3) probes every second, metrics and logs every
  5 s; after LOAD_WARMUP (10) s, `wrk -t LOAD_THREADS (2) -c LOAD_CONNECTIONS (200) -d LOAD_SECONDS (30)
  --timeout LOAD_WRK_TIMEOUT (10s, Prometheus' scrape_timeout)` on /metrics between two scrapes. Asserts zero
  wrk errors, probe fire lateness p99 < 100 ms, no skipped run, every scheduled probe ran, no panic.
soak: SOAK_SERVICES (1000) services, each with one probe, metrics and logs pollers every second, for
  SOAK_SECONDS (600) s while the scenario cycles through the faults every SOAK_PHASE (5) s, with quiet
  settles of SOAK_SETTLE (30) s after the first 20% (the baseline) and at the end. Samples every SOAK_SAMPLE
  (5) s, SOAK_OFFSET (0.8) s into a wall-clock second (every job fires on whole seconds). Asserts the
  exporter alive without panic, every sample scraped, no task leak (runs in flight never above the jobs,
  not growing, back to the baseline after the settle), RSS growth < 10%, open fds flat.
Quantiles are histogram_quantile() over the increase between two scrapes; `>=` marks a rank in +Inf.
The last line is `load|soak: N passed, M failed`.
"""

import math
import os
import re
import statistics
import subprocess
import threading
import time

import bench as B
from stack import http

NAMES = {"td_pz_scheduler_lateness_seconds_bucket", "td_pz_schedule_skipped_total", "td_pz_probes_total",
         "td_pz_probe_failures_total", "td_pz_scheduler_jobs", "td_pz_scheduler_runs_in_flight",
         "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"}
PROBES = [("vip", "vip_user_001", "live", "premium_users", '["recommended_products", "exclusive_offers"]'),
          ("cart", "cart_abandon_456", "test", "cart_abandoners", '["discount_code"]'),
          ("new_user", "new_user_123", "live", "new_users", '["recommended_products"]')]


class Checks:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, ok, what):
        print(f"  [{'PASS' if ok else 'FAIL'}] {what}")
        self.passed, self.failed = self.passed + bool(ok), self.failed + (not ok)

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def config(services, probes, probe_sched, other_sched):
    """Services svc0000...; each service_id is its name, so a fault for the service hits its metrics
    and logs endpoints too."""
    out = ['[td]\nsite = "us01"\napi_key_env = "TD_API_KEY"\npersonalization_url = "{sim}"\np13n_url = "{sim}"',
           'cdp_api_url = "{sim}"\ntimeout = "5s"\nmax_requests_per_second = 5\n\n[defaults]',
           f'probe_schedule = "{probe_sched}"\nmetrics_schedule = "{other_sched}"\nlogs_schedule = "{other_sched}"',
           'section_share_window = "5m"\n']
    for i in range(services):
        out.append(f'[[service]]\nname = "svc{i:04d}"\nparent_segment_id = "394649"\nservice_id = "svc{i:04d}"\n'
                   'api = "cdp"\nsections = ["premium_users", "new_users", "cart_abandoners", "fallback"]\n')
        out += [f'  [[service.probe]]\n  name = "{n}"\n  user_id = "{u}"\n  endpoint = "{e}"\n  expect_section = "{s}"\n'
                f'  expect_outputs = {o}\n  max_latency = "500ms"\n' for n, u, e, s, o in PROBES[:probes]]
    return "\n".join(out)


def phases(n):
    """The fault cycle: (name, scenario)."""
    names = [f"svc{i:04d}" for i in range(n)]
    some = lambda k, m: [s for i, s in enumerate(names) if i % m == k]  # noqa: E731
    sc = lambda faults, **x: dict({"accept_any_service": True, "log_rate": 0.2, "faults": faults}, **x)  # noqa: E731
    few = names[::max(1, n // 5)][:5]
    return [("none", sc([])),
            ("503 x1/3", sc([{"service": s, "status": 503} for s in some(0, 3)])),
            ("429 RA=2 x1/3", sc([{"service": s, "status": 429, "retry_after": 2} for s in some(1, 3)])),
            ("hang x1/10", sc([{"service": s, "hang": True} for s in some(3, 10)])),
            ("malformed x1/3", sc([{"service": s, "malformed": True} for s in some(2, 3)])),
            (f"50MB x{len(few)}", sc([{"service": s, "body_bytes": 50 * 1024 * 1024} for s in few])),
            ("revoked", sc([], revoked=True))]


def late(s0, s1, poller=None):
    """(p50, p99, fires, capped99) of the fire lateness between two samples, in seconds."""
    match = {"poller": poller} if poller else {}
    b1, b0 = B.buckets(s1, "td_pz_scheduler_lateness_seconds_bucket", **match), dict(
        B.buckets(s0, "td_pz_scheduler_lateness_seconds_bucket", **match))
    d = [(le, c - b0.get(le, 0.0)) for le, c in b1]
    n = d[-1][1] if d else 0
    capped = len(d) > 1 and d[-2][1] < 0.99 * n
    return B.histogram_quantile(0.5, d), B.histogram_quantile(0.99, d), n, capped


def ms(v, capped=False):
    return "n/a" if math.isnan(v) else (">= " if capped else "") + f"{v * 1000:.1f} ms"


def panics(path):
    with open(path, errors="replace") as f:
        return [line.rstrip()[:300] for line in f if "panicked" in line]


def load(st, url, n_probes, env):
    time.sleep(env("WARMUP", 10))
    conns = env("CONNECTIONS", 200)
    wrk = ["wrk", f"-t{min(env('THREADS', 2), conns)}", f"-c{conns}", f"-d{env('SECONDS', 30)}s", "--timeout",
           env("WRK_TIMEOUT", "10s"), "--latency", url + "/metrics"]
    t0, before = time.time(), B.prom_samples(http(url + "/metrics"), NAMES)
    out = subprocess.run(wrk, capture_output=True, text=True).stdout
    t1, after = time.time(), B.prom_samples(http(url + "/metrics"), NAMES)
    dt, delta = t1 - t0, lambda name: B.sum_of(after, name) - B.sum_of(before, name)  # noqa: E731
    print("command: " + " ".join(wrk) + "\n" + "".join(
        "  wrk| " + line + "\n" for line in out.split("Latency Distribution")[-1].splitlines()))
    print(f"exporter peak RSS since its start (VmHWM): {B.status_kib(st.exporter_proc.pid, 'VmHWM') / 1024:.1f} MiB")
    ch = Checks("load")
    lat = dict(re.findall(r"^\s*(50|90|99)%\s+(\S+)$", out, re.M))
    errs = [int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)]
    errs += [int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out)]
    requests = int((re.findall(r"(\d+) requests in", out) or ["0"])[0])
    rps = (re.findall(r"Requests/sec:\s+(\S+)", out) or ["?"])[0]
    print(f"load: window {dt:.1f} s; {B.sum_of(after, 'td_pz_scheduler_jobs'):.0f} jobs; wrk: {requests} requests, "
          f"{rps}/s, latency p50 {lat.get('50')} p90 "
          f"{lat.get('90')} p99 {lat.get('99')}")
    ch.check(requests > 0 and sum(errs) == 0, f"wrk: zero errors (socket errors + non-2xx = {sum(errs)}) over {requests} scrapes")
    for p in ("probe", "metrics", "logs"):
        p50, p99, n, capped = late(before, after, p)
        print(f"  lateness {p:8s} fires {n:6.0f}  p50 {ms(p50)}  p99 {ms(p99, capped)}")
    p50, p99, n, capped = late(before, after, "probe")
    ch.check(not math.isnan(p99) and not capped and p99 < 0.1,
             f"probes keep their schedule: fire lateness p99 {ms(p99, capped)} < 100 ms (p50 {ms(p50)}, {n:.0f} fires)")
    skipped = delta("td_pz_schedule_skipped_total")
    ch.check(skipped == 0, f"no skipped runs during the load ({skipped:.0f} skipped)")
    runs, expect = delta("td_pz_probes_total"), n_probes * (math.floor(dt) - 1)
    print(f"  probes run in the window: {runs:.0f} (schedule: {n_probes * dt:.0f}); failed: "
          f"{delta('td_pz_probe_failures_total'):.0f}")
    ch.check(runs >= expect, f"every scheduled probe ran: {runs:.0f} >= {expect} (one round of slack)")
    bad = panics(os.path.join(st.work, "exporter.log"))
    ch.check(not bad, f"no panic in the exporter's output ({len(bad)} 'panicked' lines)" + "".join("\n      " + x for x in bad[:5]))
    cpu = delta("process_cpu_seconds_total")
    print(f"  exporter: CPU {cpu:.1f} s over {dt:.1f} s ({100 * cpu / dt:.0f}% of one core), RSS "
          f"{B.sum_of(after, 'process_resident_memory_bytes') / 2**20:.1f} MiB, open fds {B.sum_of(after, 'process_open_fds'):.0f}")
    return ch.finish()


def proc_stats(pid):
    """rss (bytes), threads, fds, cpu (s), or None when the process is gone."""
    try:
        if "State:\tZ" in open(f"/proc/{pid}/status").read():
            return None
        return {"rss": B.status_kib(pid, "VmRSS") * 1024, "threads": B.status_kib(pid, "Threads"),
                "fds": len(os.listdir(f"/proc/{pid}/fd")), "cpu": B.cpu_seconds(pid)}
    except OSError:
        return None


def soak(st, url, sim, n, env):
    T, P, every, offset = env("SECONDS", 600.0), env("PHASE", 5.0), env("SAMPLE", 5.0), env("OFFSET", 0.8)
    W, S = T * 0.2, min(env("SETTLE", 30.0), max(10.0, T * 0.1))
    cycle, plan, k = phases(n), [], 1
    # Timeline: faults [0, W) | settle [W, W+S): the baseline | faults [W+S, T-S) | settle [T-S, T): the end.
    for lo, hi in ((0.0, W), (W + S, T - S)):
        t = lo
        while t < hi:
            plan.append((t, *cycle[k % len(cycle)]))
            t, k = t + P, k + 1
        plan.append((hi, "none (settle)", cycle[0][1]))
    phase_at = lambda t: ([name for start, name, _ in plan if start <= t] or ["none"])[-1]  # noqa: E731
    print(f"soak: {n} services, {T:.0f} s: faults every {P:.0f} s through " + ", ".join(x for x, _ in cycle[1:])
          + f"; settles of {S:.0f} s at {W:.0f} s (baseline) and at the end; a sample every {every:.0f} s")
    t0, errors = time.monotonic(), []

    def cycler():
        for start, _, sc in plan:
            time.sleep(max(0.0, t0 + start - time.monotonic()))
            try:
                http(sim + "/_sim/scenario", sc)
            except OSError:
                errors.append(start)
    threading.Thread(target=cycler, daemon=True).start()
    print(f"{'t':>5} {'phase':16} {'RSS MiB':>8} {'fds':>5} {'thr':>4} {'CPU%':>5} {'inflight':>8} {'jobs':>5} "
          f"{'probes/s':>8} {'late p99':>10} {'scrape':>7} | {'sim RSS':>7} {'sim CPU%':>8}")
    samples, failed, alive, prev = [], 0, True, None
    wall0 = math.floor(time.time()) + offset
    for i in range(int(T / every) + 1):
        time.sleep(max(0.0, wall0 + i * every - time.time()))
        t, ps, ss = time.monotonic() - t0, proc_stats(st.exporter_proc.pid), proc_stats(st.simulator_proc.pid)
        if ps is None:
            alive = False
            break
        try:
            t_scrape = time.monotonic()
            m = B.prom_samples(http(url + "/metrics", timeout=every * 4), NAMES)
            took = time.monotonic() - t_scrape
        except OSError as e:
            failed += 1
            print(f"{t:5.0f} scrape failed: {e}")
            continue
        s = dict(t=t, phase=phase_at(t if prev is None else (prev["t"] + t) / 2), m=m, sim=ss, scrape=took,
                 in_flight=B.sum_of(m, "td_pz_scheduler_runs_in_flight"), jobs=B.sum_of(m, "td_pz_scheduler_jobs"), **ps)
        if prev:
            dt = t - prev["t"]
            s["cpu_pct"], s["p99"] = 100 * (s["cpu"] - prev["cpu"]) / dt, late(prev["m"], m)[1]
            s["probes_ps"] = (B.sum_of(m, "td_pz_probes_total") - B.sum_of(prev["m"], "td_pz_probes_total")) / dt
            sim_cpu = 100 * (ss["cpu"] - prev["sim"]["cpu"]) / dt if ss and prev["sim"] else float("nan")
            print(f"{t:5.0f} {s['phase'][:16]:16} {s['rss'] / 2**20:8.1f} {s['fds']:5d} {s['threads']:4d} "
                  f"{s['cpu_pct']:5.0f} {s['in_flight']:8.0f} {s['jobs']:5.0f} {s['probes_ps']:8.0f} {ms(s['p99']):>10} "
                  f"{took:6.2f}s | {(ss or {}).get('rss', 0) / 2**20:7.1f} {sim_cpu:8.0f}", flush=True)
        samples.append(s)
        prev = s
    print()
    ch = Checks("soak")
    ch.check(alive and proc_stats(st.exporter_proc.pid) is not None, "the exporter is alive at the end")
    bad = panics(os.path.join(st.work, "exporter.log"))
    ch.check(not bad, f"no panic in the exporter's output ({len(bad)} 'panicked' lines)" + "".join("\n      " + x for x in bad[:5]))
    ch.check(failed == 0 and len(samples) > 2, f"every sample scraped /metrics ({failed} failed)")
    if len(samples) < 4:
        return ch.finish()
    window = lambda lo, hi: [s for s in samples if lo <= s["t"] <= hi]  # noqa: E731
    base, end = window(W + S / 2, W + S) or window(W, W + S), window(T - S / 2, T + 1) or samples[-2:]
    med = lambda xs, key: statistics.median(x[key] for x in xs)  # noqa: E731
    jobs = max(s["jobs"] for s in samples)
    over = [round(s["t"]) for s in samples if s["in_flight"] > s["jobs"]]
    ch.check(not over, f"runs in flight never above the jobs ({jobs:.0f}): max "
             f"{max(s['in_flight'] for s in samples):.0f}" + (f", exceeded at t={over[:5]}" if over else ""))
    second = [s for s in samples if s["t"] >= T / 2]
    mx3, mx4 = (max(s["in_flight"] for s in part) for part in (second[:len(second) // 2], second[len(second) // 2:]))
    b_in, e_in = med(base, "in_flight"), med(end, "in_flight")
    ch.check(mx4 <= mx3 + 0.1 * jobs and e_in <= max(1.5 * b_in, b_in + 0.02 * jobs),
             f"runs in flight not growing: peak {mx3:.0f} (3rd quarter) -> {mx4:.0f} (4th); settled median "
             f"{b_in:.0f} (baseline) -> {e_in:.0f} (end)")
    b_rss, e_rss = med(base, "rss"), med(end, "rss")
    ch.check((e_rss - b_rss) / b_rss < 0.10, f"RSS growth {100 * (e_rss - b_rss) / b_rss:+.1f}% < 10%: "
             f"{b_rss / 2**20:.1f} MiB at the baseline -> {e_rss / 2**20:.1f} MiB at the end "
             f"(peak {max(s['rss'] for s in samples) / 2**20:.1f} MiB)")
    b_fd, e_fd = med(base, "fds"), med(end, "fds")
    ch.check(e_fd <= b_fd + max(10, 0.1 * b_fd), f"open fds flat: {b_fd:.0f} at the baseline -> {e_fd:.0f} at the end "
             f"(peak {max(s['fds'] for s in samples)} during faults)")
    valid = samples[1:]
    p50, p99, _, capped = late(samples[0]["m"], samples[-1]["m"])
    print(f"  info: peak RSS (VmHWM) {B.status_kib(st.exporter_proc.pid, 'VmHWM') / 1024:.1f} MiB; threads "
          f"{med(base, 'threads'):.0f} -> {med(end, 'threads'):.0f}; exporter CPU mean "
          f"{statistics.mean(s['cpu_pct'] for s in valid):.0f}% of one core; fire lateness over the run p50 "
          f"{ms(p50)}, p99 {ms(p99, capped)}; skipped runs {B.sum_of(samples[-1]['m'], 'td_pz_schedule_skipped_total'):.0f}; "
          f"/metrics scrape median {statistics.median(s['scrape'] for s in samples):.2f} s"
          + (f"; {len(errors)} scenario posts failed" if errors else ""))
    return ch.finish()


def main(cmd):
    env = lambda k, d: type(d)(os.environ.get(f"{cmd.upper()}_{k}", d))  # noqa: E731
    st = B.new_stack(cmd)
    n = env("SERVICES", 50 if cmd == "load" else 1000)
    probes = min(3, env("PROBES", 2)) if cmd == "load" else 1
    sim = st.simulator(phases(n)[0][1])
    url = st.exporter(config(n, probes, "* * * * * *", "*/5 * * * * *" if cmd == "load" else "* * * * * *"),
                      ["--log.level=info"])
    busy = B.Window([], also=[st.simulator_proc.pid, st.exporter_proc.pid])
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {n} services x {probes} probes every second; "
          f"binary {B.revision()}; work dir {st.work}", flush=True)
    rc = load(st, url, n * probes, env) if cmd == "load" else soak(st, url, sim, n, env)
    print(f"machine: {os.cpu_count()} cores; other processes used {busy.close().other:.2f} cores")
    st.stop()
    return rc
