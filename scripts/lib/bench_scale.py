"""bench.py scale (scripts/bench-scale.sh): many services on the default schedules.

N services (default 5,000), each with a service_id and one probe: probe "*/30 * * * * *",
metrics "0 * * * * *", logs "15,45 * * * * *" (the README's defaults: a probe every 30 s,
metrics every 60 s, logs every 30 s), against the simulator (accept_any_service, a low log_rate).
After a warm-up of at least one full minute, a snapshot of /metrics at second :50, then a window
of `duration` seconds starting at :58; /metrics is scraped at :07, :22, :37 and :52 (every 15 s, between the bursts
of :00/:30 and :15/:45) and each scrape is timed. Figures are deltas over the window.
"""

import argparse
import gzip
import threading
import time
import urllib.request

import bench as B

NAMES = {"td_pz_scheduler_lateness_seconds_bucket", "td_pz_schedule_skipped_total", "td_pz_probes_total",
         "td_pz_polls_total", "td_pz_probe_failures_total", "td_pz_poll_failures_total", "td_pz_scheduler_jobs"}


class Sampler(threading.Thread):
    """The exporter's CPU each second, for the peak (the cron seconds' bursts)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop, self.points = pid, threading.Event(), []

    def run(self):
        while not self.stop.wait(0 if not self.points else 1.0):
            self.points.append((time.monotonic(), B._cpu(self.pid)))

    def peak(self):
        p = self.points
        return max([(c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in zip(p, p[1:]) if t1 > t0] or [float("nan")])


def config(n):
    out = ['[td]\nsite = "us01"\napi_key_env = "TD_API_KEY"\npersonalization_url = "{sim}"\ncdp_api_url = "{sim}"\n'
           'timeout = "10s"\n\n[defaults]\nprobe_schedule = "*/30 * * * * *"\nmetrics_schedule = "0 * * * * *"\n'
           'logs_schedule = "15,45 * * * * *"\n']
    out += [f'\n[[service]]\nname = "svc_{i:05d}"\nparent_segment_id = "394649"\nservice_id = "{100000 + i}"\napi = "cdp"\n'
            '\n  [[service.probe]]\n  name = "vip"\n  user_id = "vip_user_001"\n  expect_section = "premium_users"\n'
            for i in range(n)]
    return "".join(out)


def scrape(url, pid):
    """GET /metrics as Prometheus does (Accept-Encoding: gzip): (the body decompressed, seconds, the
    exporter's CPU seconds, bytes on the wire)."""
    c0, t0 = B.cpu_seconds(pid), time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers={"Accept-Encoding": "gzip"}),
                                timeout=120) as r:
        body, gz = r.read(), r.headers.get("Content-Encoding") == "gzip"
    took, cpu = time.monotonic() - t0, B.cpu_seconds(pid) - c0
    return (gzip.decompress(body) if gz else body), took, cpu, len(body)


def wait_target(sec, not_before=0.0):
    """The next wall-clock second `sec` of a minute, after `not_before` (unix)."""
    t = max(time.time(), not_before)
    target = t - (t % 60) + sec
    return target + 60 if target <= t else target


def lateness(d, poller=None):
    return B.buckets(d, "td_pz_scheduler_lateness_seconds_bucket", **({"poller": poller} if poller else {}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--duration", type=int, default=300)
    ap.add_argument("--log-rate", type=float, default=0.05, help="simulated log entries/s per service")
    ap.add_argument("--out")
    a = ap.parse_args()

    st = B.new_stack("scale")
    sim_url = st.simulator({"accept_any_service": True, "log_rate": a.log_rate})
    sim, work, t_start = st.simulator_proc, st.work, time.time()
    url = st.exporter(config(a.services), timeout=300)
    exp, ready_after = st.exporter_proc, time.time() - t_start
    B.log(f"{a.services} services ready after {ready_after:.1f}s; warming up for a minute")

    # The start snapshot at :50 (a full scrape, outside the window), the window from :58.
    at = wait_target(50, time.time() + 60)
    time.sleep(max(0.0, at - time.time()))
    rss_unscraped = B.status_kib(exp.pid, "VmRSS")
    s0 = B.prom_samples(scrape(url, exp.pid)[0].decode(), NAMES)
    rss_one_scrape = B.status_kib(exp.pid, "VmRSS")
    if time.time() > at + 8:
        raise SystemExit("measurement failed: the start snapshot took over 8 s")
    time.sleep(max(0.0, at + 8 - time.time()))
    B.log(f"window: {a.duration}s from {time.strftime('%H:%M:%S')}")
    w, sampler, t_end, scrapes, size, wire = B.Window([exp.pid, sim.pid]), Sampler(exp.pid), time.time() + a.duration, [], 0, 0
    sampler.start()
    while True:
        nxt = min(wait_target(s) for s in (7, 22, 37, 52))
        if nxt >= t_end:
            break
        time.sleep(max(0.0, nxt - time.time()))
        st.alive(exp)
        body, took, cpu, wire = scrape(url, exp.pid)
        size = len(body)
        scrapes.append((took, cpu))
    time.sleep(max(0.0, t_end - time.time()))
    other = w.close().other
    sampler.stop.set()
    st.alive(exp)
    rss, hwm, text = B.status_kib(exp.pid, "VmRSS"), B.status_kib(exp.pid, "VmHWM"), scrape(url, exp.pid)[0].decode()
    series, s1 = sum(1 for line in text.splitlines() if line and line[0] != "#"), B.prom_samples(text, NAMES)
    del text
    d = {k: v - s0.get(k, 0.0) for k, v in s1.items()}

    cpu = w.cpu[exp.pid]
    scrape_cpu = sum(c for _, c in scrapes)
    late = lateness(d)
    q = lambda x, p=None: B.histogram_quantile(x, lateness(d, p)) * 1000  # noqa: E731
    skipped, probes = B.sum_of(d, "td_pz_schedule_skipped_total"), B.sum_of(d, "td_pz_probes_total")
    metrics_polls, logs_polls = (B.sum_of(d, "td_pz_polls_total", poller=p) for p in ("metrics", "logs"))
    fails = B.sum_of(d, "td_pz_probe_failures_total") + B.sum_of(d, "td_pz_poll_failures_total")
    fires = late[-1][1] if late else 0
    # Runs are counted between the two snapshots: expected ones over that span.
    minutes = a.duration / 60
    took = sorted(t for t, _ in scrapes)

    rep = B.Report("bench-scale")
    rep.row("services", a.services)
    rep.row("probes per service", 1)
    rep.row("jobs", f"{B.sum_of(s1, 'td_pz_scheduler_jobs'):.0f}")
    rep.row("ready after start", ready_after, "s")
    rep.row("window", a.duration, "s")
    rep.row("probes run (expected)", f"{probes:.0f} ({a.services * 2 * minutes:.0f})")
    rep.row("metrics polls (expected)", f"{metrics_polls:.0f} ({a.services * minutes:.0f})")
    rep.row("logs polls (expected)", f"{logs_polls:.0f} ({a.services * 2 * minutes:.0f})")
    rep.row("failed probes + polls", f"{fails:.0f}")
    rep.row("exporter CPU", cpu, "s")
    rep.row("exporter CPU share of one core", cpu / w.elapsed * 100, "%")
    rep.row("exporter CPU peak (busiest second)", sampler.peak() * 100, "%")
    rep.row("  of which /metrics scrapes", scrape_cpu / w.elapsed * 100, "%")
    rep.row("  without scrapes", (cpu - scrape_cpu) / w.elapsed * 100, "%")
    rep.row("exporter CPU per 1,000 runs (no scrapes)",
            (cpu - scrape_cpu) / max(1.0, probes + metrics_polls + logs_polls) * 1000, "s")
    rep.row("simulator CPU share (not counted)", w.cpu[sim.pid] / w.elapsed * 100, "%")
    rep.row("exporter RSS before any scrape (warm-up end)", rss_unscraped / 1024, "MiB")
    rep.row("exporter RSS after the first scrape", rss_one_scrape / 1024, "MiB")
    rep.row("exporter RSS at end", rss / 1024, "MiB")
    rep.row("exporter peak RSS (VmHWM)", hwm / 1024, "MiB")
    rep.row("series", series)
    rep.row("scheduler fires counted", f"{fires:.0f}")
    rep.row("lateness p50", q(0.5), "ms")
    rep.row("lateness p99", q(0.99), "ms")
    for p in ("probe", "metrics", "logs"):
        rep.row(f"lateness p99 ({p})", q(0.99, p), "ms")
    rep.row("skipped runs", f"{skipped:.0f}")
    rep.row("/metrics size", size / 1e6, "MB")
    rep.row("/metrics size on the wire (gzip)", wire / 1e6, "MB")
    rep.row("/metrics scrapes", len(scrapes))
    if took:
        rep.row("/metrics scrape time p50", B.percentile(took, 50) * 1000, "ms")
        rep.row("/metrics scrape time max", took[-1] * 1000, "ms")
        rep.row("/metrics scrape CPU (mean)", scrape_cpu / len(scrapes) * 1000, "ms")
    rep.other(other, "other load on the machine")
    share = cpu / w.elapsed * 100
    rep.goal("CPU < 25% of one core", share < 25, f"{share:.1f}%")
    rep.goal("RSS < 150 MB", hwm * 1024 < 150e6, f"peak {hwm * 1024 / 1e6:.0f} MB")
    rep.goal("lateness p99 < 50 ms", q(0.99) < 50, f"{q(0.99):.1f} ms")
    rep.goal("no skipped runs", skipped == 0, f"{skipped:.0f}")
    if fails:
        rep.note(f"{fails:.0f} probes/polls failed in the window (see the exporter log in {work})")
    rep.print(a.out)



if __name__ == "__main__":
    main()
