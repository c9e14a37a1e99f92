"""scripts/bench-profile.sh: where the exporter's CPU goes under a workload (perf, cpu-clock).

Workloads (the same as the benches'):
  probe   one service with `rate` probes each every second (bench-vs-blackbox's phase A)
  scale   N services on the default schedules (bench-scale), /metrics scraped every 15 s
  idle    the demo configuration (bench-idle), scraped every 15 s
perf samples the exporter process (software clock: this machine has no hardware counters) with
DWARF call stacks; the report gives, per area, the share of samples whose stack is in it
(inclusive, so areas nest and overlap: "HTTP client" includes the malloc it calls; "kernel" is
the share of samples taken in the kernel), the self time by library, and the hottest functions.
`--analyse=perf.data` reports on a kept recording without running anything.
"""

import argparse
import atexit
import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import benchlib as B
import bench_scale
import bench_vs_blackbox

# (area, regex on a frame's symbol); a sample counts once per area.
AREAS = [
    ("/metrics: Metrics::render", r"td_pz_exporter::metrics::Metrics::render"),
    ("  prometheus Registry::gather (collect, clone, sort)", r"prometheus::registry::Registry::gather"),
    ("  prometheus TextEncoder::encode", r"prometheus::encoder::text"),
    ("  dropping the gathered MetricFamily", r"drop_in_place<prometheus::proto::MetricFamily"),
    ("  process collector (/proc reads)", r"process_collector"),
    ("recording: Metrics::* (not render)", r"td_pz_exporter::metrics::Metrics::(?!render)"),
    ("  label lookup/hashing (MetricVec)", r"prometheus::vec::MetricVec.*(get_metric_with|hash_label|with_label_values|remove)"),
    ("history (status page ring)", r"td_pz_exporter::history"),
    ("HTTP client (reqwest, hyper client)", r"reqwest::|hyper::client|hyper_util::client"),
    ("TLS (rustls crate; not the hyper_rustls wrapper)", r"(?<![a-z_])rustls::"),
    ("JSON parse (serde_json::de)", r"serde_json::de"),
    ("JSON build/serialize (serde_json ser, json!)", r"serde_json::ser|serde_json::value::ser|serde_json::value::to_value"),
    ("probe: poll::probe", r"td_pz_exporter::poll::probe"),
    ("logs poller: poll::logs", r"td_pz_exporter::poll::logs"),
    ("metrics poller: poll::metrics", r"td_pz_exporter::poll::metrics"),
    ("scheduler: schedule::job_loop", r"td_pz_exporter::schedule"),
    ("request budget", r"td_pz_exporter::budget"),
    ("web server (hyper server, our handler)", r"hyper::server|td_pz_exporter::web"),
    ("logging (tracing)", r"tracing_subscriber|tracing_core|tracing::"),
    ("tokio timer wheel", r"tokio::runtime::time"),
    ("tokio runtime alone (no task code on the stack)", None),
    ("malloc/free (libc)", r"^(malloc|free|cfree|realloc|_int_malloc|_int_free|_int_realloc|malloc_consolidate|sysmalloc|__libc_malloc|__libc_free|unlink_chunk)"),
    ("memcpy/memmove/memcmp (libc)", r"__mem(cpy|move|cmp|set)"),
    ("kernel (syscalls, scheduling, page faults)", None),
]

# A stack with none of these is the runtime's own work (parking, waking, polling the I/O driver).
TASK_CODE = re.compile(r"td_pz_exporter|reqwest|hyper|prometheus|serde|rustls|tracing")


def leaf_group(sym, dso):
    """The library a leaf frame belongs to, for the self-time summary."""
    if "kernel" in dso:
        return "kernel"
    if dso.startswith("libc") or dso.startswith("libm"):
        if re.match(r"(__libc_)?(malloc|free|cfree|realloc|calloc)|_int_|malloc_|sysmalloc|unlink_chunk|tcache", sym):
            return "libc malloc/free"
        if sym.startswith("__mem") or sym.startswith("__strlen"):
            return "libc memcpy/memcmp"
        return "libc other"
    m = re.match(r"[<&*\s]*(?:impl\s+)?(?:dyn\s+)?([A-Za-z_][A-Za-z0-9_]*)::", sym)
    return m.group(1) if m else "other"


def perf_record(pid, seconds, out, freq):
    p = subprocess.Popen(
        ["perf", "record", "-e", "cpu-clock", "-F", str(freq), "--call-graph", "dwarf,32768",
         "-p", str(pid), "-o", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return p


def analyse(data):
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso", "--no-inline"],
        capture_output=True, text=True, errors="replace",
    ).stdout
    samples = [s for s in script.split("\n\n") if s.strip()]
    areas = collections.Counter()
    selfs = collections.Counter()
    groups = collections.Counter()
    compiled = [(name, re.compile(rx) if rx else None) for name, rx in AREAS]
    total = 0
    for s in samples:
        lines = s.strip().split("\n")[1:]
        frames = []
        for line in lines:
            parts = line.strip().split(None, 1)
            if len(parts) < 2:
                continue
            rest = parts[1]
            dso = rest[rest.rfind("(") + 1 : -1] if rest.endswith(")") else ""
            sym = rest[: rest.rfind("(")].strip() if rest.endswith(")") else rest
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            frames.append((sym, dso))
        if not frames:
            continue
        total += 1
        leaf, leaf_dso = frames[0]
        selfs[f"{leaf} [{os.path.basename(leaf_dso)}]"] += 1
        groups[leaf_group(leaf, os.path.basename(leaf_dso))] += 1
        for name, rx in compiled:
            if name.startswith("kernel"):
                hit = "kernel" in leaf_dso
            elif rx is None:
                hit = not any(TASK_CODE.search(sym) for sym, _ in frames)
            else:
                hit = any(rx.search(sym) for sym, _ in frames)
            if hit:
                areas[name] += 1
    return total, areas, selfs, groups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["probe", "scale", "idle"])
    ap.add_argument("--analyse", help="only report on this perf.data")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rate", type=int, default=20)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--freq", type=int, default=1999)
    ap.add_argument("--no-scrape", action="store_true", help="scale/idle: do not scrape /metrics")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--keep", help="keep perf.data here")
    a = ap.parse_args()

    if a.analyse:
        report(a, a.analyse, "(kept recording)")
        return
    work = tempfile.mkdtemp(prefix="td-pz-bench-profile.")
    quiet = B.quiet_machine()
    B.log(f"load average {B.loadavg()}; others use {quiet:.2f} cores; work dir {work}")
    sim_port = B.free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    key = B.API_KEY
    env = {"TD_API_KEY": key}
    scen = os.path.join(work, "scenario.json")
    with open(scen, "w") as f:
        json.dump({"accept_any_service": True, "log_rate": 0.05 if a.workload == "scale" else 0.1}, f)
    sim_argv = [B.BIN, "simulate", f"--listen=127.0.0.1:{sim_port}", f"--scenario={scen}"]
    if a.workload == "idle":
        key = "1/demo0000000000000000000000000000000000"
        token = "1/2/0123456789abcdef0123456789abcdef"
        env = {"TD_API_KEY": key, "TD_P13N_TOKEN": token}
        sim_argv = [B.BIN, "simulate", f"--listen=127.0.0.1:{sim_port}", f"--p13n-token={token}"]
    sim = B.start("simulator", sim_argv + [f"--api-key={key}"], work)
    B.wait_http(sim_url + "/_sim/stats", proc=sim)
    cfg = os.path.join(work, "exporter.toml")
    with open(cfg, "w") as f:
        if a.workload == "probe":
            f.write(bench_vs_blackbox.exporter_config(sim_url, a.rate))
        elif a.workload == "scale":
            f.write(bench_scale.config(sim_url, a.services))
        else:
            with open(os.path.join(B.ROOT, "src", "demo.toml")) as d:
                f.write(d.read().replace("{sim}", sim_url))
    port = B.free_port()
    url = f"http://127.0.0.1:{port}"
    exp = B.start("exporter", [B.BIN, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"], work, env)
    B.wait_http(url + "/-/ready", timeout=300, proc=exp)
    time.sleep(65 if a.workload == "scale" else 10)
    data = a.keep or os.path.join(work, "perf.data")
    if a.keep:
        # perf resolves symbols by the path that ran: keep the binary snapshot for --analyse.
        atexit.unregister(shutil.rmtree)
        B.log(f"keeping {data} and the binary it profiled, {B.BIN}")
    B.log(f"perf record -p {exp.pid} for {a.seconds}s ({a.workload})")
    c0 = B.cpu_seconds(exp.pid)
    perf = perf_record(exp.pid, a.seconds, data, a.freq)
    t_end = time.monotonic() + a.seconds
    nxt = time.monotonic() + 7.5
    scrapes = 0
    while time.monotonic() < t_end:
        B.alive(exp)
        if a.workload != "probe" and not a.no_scrape and time.monotonic() >= nxt:
            B.http_get(url + "/metrics", timeout=120)
            scrapes += 1
            nxt += 15
        time.sleep(0.1)
    perf.send_signal(2)
    perf.wait()
    cpu = B.cpu_seconds(exp.pid) - c0
    B.stop(exp)
    report(a, data, f"{a.seconds}s, {scrapes} scrapes, CPU {cpu:.2f}s ({cpu / a.seconds * 100:.1f}% of one core)")


def report(a, data, what):
    B.log("perf script (this takes a while)")
    total, areas, selfs, groups = analyse(data)
    if total == 0:
        raise SystemExit("measurement failed: perf recorded no samples")
    print()
    print(f"profile of td-pz-exporter, workload {a.workload}: {what}, {total} samples")
    print()
    print(f"{'area (inclusive share of samples)':<58} share")
    for name, _ in AREAS:
        print(f"{name:<58} {areas[name] / total * 100:5.1f}%")
    print()
    print("self time by library (leaf frame)")
    for g, n in groups.most_common(15):
        print(f"  {n / total * 100:5.1f}%  {g}")
    print()
    print(f"hottest functions (self), top {a.top}")
    for sym, n in selfs.most_common(a.top):
        print(f"  {n / total * 100:5.1f}%  {sym[:150]}")


if __name__ == "__main__":
    main()
