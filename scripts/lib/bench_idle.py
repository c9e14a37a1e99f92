"""scripts/bench-idle.sh: the daemon's standing cost with the demo configuration.

1. td-pz-exporter with src/demo.toml (2 services, 4 probes every 5 s, metrics every 15 s, logs
   every 10 s) against a separate simulator (whose CPU is not counted): CPU share and RSS over
   `duration` seconds, scraped every 15 s as Prometheus would. The goals apply to this.
2. For information, `td-pz-exporter demo` (the simulator in the same process) over the same time.
"""

import argparse
import os
import time

import benchlib as B

DEMO_KEY = "1/demo0000000000000000000000000000000000"
DEMO_TOKEN = "1/2/0123456789abcdef0123456789abcdef"


def measure(proc, url, a):
    B.wait_http(url + "/-/ready", proc=proc)
    time.sleep(a.warmup)
    w = B.Window([proc.pid])
    scrapes = 0
    t_end = time.monotonic() + a.duration
    nxt = time.monotonic() + 7.5
    while time.monotonic() < t_end:
        B.alive(proc)
        if time.monotonic() >= nxt:
            B.http_get(url + "/metrics")
            scrapes += 1
            nxt += 15
        time.sleep(0.1)
    w.close()
    B.alive(proc)
    return {
        "cpu": w.cpu[proc.pid], "elapsed": w.elapsed, "scrapes": scrapes,
        "rss": B.status_kib(proc.pid, "VmRSS"), "hwm": B.status_kib(proc.pid, "VmHWM"),
        "threads": int(open(f"/proc/{proc.pid}/status").read().split("Threads:")[1].split()[0]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-demo", action="store_true", help="skip the `demo` subcommand figure")
    ap.add_argument("--out")
    a = ap.parse_args()

    work = B.workdir("idle")
    sim, sim_url = B.start_simulator(work, args=[f"--api-key={DEMO_KEY}", f"--p13n-token={DEMO_TOKEN}"])
    with open(os.path.join(B.ROOT, "src", "demo.toml")) as f:
        cfg_text = f.read().replace("{sim}", sim_url)
    cfg = os.path.join(work, "demo.toml")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    port = B.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"TD_API_KEY": DEMO_KEY, "TD_P13N_TOKEN": DEMO_TOKEN}
    busy = B.Busy([sim.pid])
    exp = B.start("exporter", [B.BIN, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"], work, env)
    B.log(f"exporter with the demo configuration: {a.duration}s")
    busy = B.Busy([sim.pid, exp.pid])
    ours = measure(exp, url, a)
    other = busy.other_cores()
    B.stop(exp)
    B.stop(sim)

    demo = None
    if not a.no_demo:
        port = B.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = B.start(
            "demo",
            [B.BIN, "demo", f"--sim.listen-address=127.0.0.1:{B.free_port()}", f"--web.listen-address=127.0.0.1:{port}"],
            work,
        )
        B.log(f"`td-pz-exporter demo` (simulator in process): {a.duration}s")
        busy2 = B.Busy([proc.pid])
        demo = measure(proc, url, a)
        other = max(other, busy2.other_cores())
        B.stop(proc)

    share = ours["cpu"] / ours["elapsed"] * 100
    rep = B.Report("bench-idle")
    rep.row("window", f"{ours['elapsed']:.0f} s, {ours['scrapes']} scrapes")
    rep.row("exporter (demo config) CPU", ours["cpu"], "s")
    rep.row("exporter (demo config) CPU share", share, "% of one core")
    rep.row("exporter (demo config) RSS", ours["rss"] / 1024, "MiB")
    rep.row("exporter (demo config) peak RSS", ours["hwm"] / 1024, "MiB")
    rep.row("exporter (demo config) threads", ours["threads"])
    if demo:
        rep.row("`demo` (with simulator) CPU share", demo["cpu"] / demo["elapsed"] * 100, "% of one core")
        rep.row("`demo` (with simulator) RSS", demo["rss"] / 1024, "MiB")
        rep.row("`demo` (with simulator) peak RSS", demo["hwm"] / 1024, "MiB")
    rep.row("other load on the machine", other, "cores")
    rep.goal("RSS < 20 MB", ours["hwm"] * 1024 < 20e6, f"peak {ours['hwm'] * 1024 / 1e6:.1f} MB")
    rep.goal("CPU < 0.5%", share < 0.5, f"{share:.2f}%")
    if ours["elapsed"] * 0.005 < 10 / B.TICK:
        rep.note("the window is short for the 10 ms CPU tick: lengthen --duration")
    if other > 0.3:
        rep.note(f"the machine was busy ({other:.2f} cores used by others): re-run for clean figures")
    rep.print()
    if a.out:
        rep.save(a.out)


if __name__ == "__main__":
    main()
