"""scripts/bench-timing.sh: how much a probe's measured latency overstates the server's.

The simulator holds every personalize answer until 50 ms after the request reached its socket
(fault latency_ms = 50; the kernel's receive timestamp, then a timerfd for all but the last
1.5 ms and a yield loop), so its own wake-up and work are inside the delay. The exporter probes it
(`rate` probes, each every second) and the overhead is (duration_seconds - 0.050) from
/status.json; the exporter times its answers by the kernel's receive timestamps (the clock of each
target's last exchange is reported). The same request sent by wrk (-t1 -c1, lua: POST, headers,
body) gives the reference: what loopback and a minimal C client timing in user space see.

A virtual machine's wake-up latency drifts over minutes, so the two are measured in alternating
rounds (exporter, then wrk, `rounds` times) and each side's rounds are merged: both see the same
stretches of the machine's weather.
"""

import argparse
import json
import os
import re
import subprocess
import time

import benchlib as B

PS, SVC, USER = "394649", "product_recommendations", "vip_user_001"
PATH = f"/audiences/{PS}/personalization/{SVC}"
BODY = '{"user_id":"vip_user_001"}'
DELAY = 0.050

WRK_LUA = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "TD1 {key}"
done = function(summary, latency, requests)
  io.write(string.format("N %d\\n", summary.requests))
  for i = 1, 1000 do
    io.write(string.format("Q %d %d\\n", i, latency:percentile(i / 10)))
  end
end
"""


def wrk_round(a, lua, url):
    """One wrk run: (request count, latency in ms at each 0.1 percentile)."""
    r = subprocess.run(
        [a.wrk, "-t1", "-c1", f"-d{a.wrk_seconds}s", "-s", lua, url],
        capture_output=True, text=True,
    )
    n = re.search(r"^N (\d+)$", r.stdout, re.M)
    qs = [int(v) / 1000 for _, v in re.findall(r"^Q (\d+) (\d+)$", r.stdout, re.M)]
    if r.returncode != 0 or not n or len(qs) != 1000:
        raise SystemExit(f"measurement failed: wrk: {r.stdout[-2000:]}{r.stderr}")
    return int(n.group(1)), qs


def merged(rounds):
    """Rounds of (count, 1,000 quantiles) as one sample: each quantile stands for count/1000."""
    out = []
    for n, qs in rounds:
        out += [(q, n / len(qs)) for q in qs]
    out.sort()
    return out


def wpct(weighted, p):
    total = sum(w for _, w in weighted)
    acc = 0.0
    for v, w in weighted:
        acc += w
        if acc >= total * p / 100:
            return v
    return weighted[-1][0]


def exporter_round(a, cfg, work):
    """One exporter run: the overheads (ms) of the probes in its window, the failed count, and the
    clocks of the targets' last exchanges ("kernel": the socket's receive timestamps)."""
    port = B.free_port()
    url = f"http://127.0.0.1:{port}"
    exp = B.start(
        "exporter",
        [B.BIN, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
         f"--history.limit={a.round_seconds + 30}"],
        work,
        {"TD_API_KEY": B.API_KEY},
    )
    B.wait_http(url + "/-/ready", proc=exp)
    time.sleep(3)  # connections opened: the window has pooled connections, as in steady state
    since = time.time()
    time.sleep(a.round_seconds)
    until = time.time()
    B.alive(exp)
    _, body = B.http_get(url + "/status.json")
    B.stop(exp)
    over, failed, clocks = [], 0, {}
    for t in json.loads(body)["targets"]:
        if t.get("poller") != "probe":
            continue
        clock = ((t.get("last_exchange") or {}).get("timings") or {}).get("clock", "none")
        clocks[clock] = clocks.get(clock, 0) + 1
        for r in t["recent"]:
            if not since <= r["at"] <= until:
                continue
            if r["ok"] and r["duration_seconds"] is not None:
                over.append((r["duration_seconds"] - DELAY) * 1000)
            else:
                failed += 1
    return over, failed, clocks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=10, help="probes per second")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--round-seconds", type=int, default=20, help="exporter seconds a round")
    ap.add_argument("--wrk-seconds", type=int, default=10, help="wrk seconds a round")
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--shared-cpu", action="store_true",
                    help="do not pin the simulator to the last CPU")
    ap.add_argument("--out")
    a = ap.parse_args()

    work = B.workdir("timing")
    # The simulator stands for TD, which runs on other machines: it gets the last CPU to itself
    # (the clients may use every CPU; the scheduler puts them on an idle one), so that a client
    # waking up does not preempt the simulator while it holds an answer.
    last_cpu = str(os.cpu_count() - 1)
    sim, sim_url = B.start_simulator(
        work,
        {"accept_any_service": True, "log_rate": 0.1,
         "faults": [{"endpoint": "personalize", "latency_ms": int(DELAY * 1000)}]},
        cpus=None if a.shared_cpu else last_cpu,
    )

    probes = "".join(
        f'\n  [[service.probe]]\n  name = "p{i:02d}"\n  user_id = "{USER}"\n' for i in range(a.rate)
    )
    cfg = os.path.join(work, "exporter.toml")
    with open(cfg, "w") as f:
        f.write(f"""[td]
site = "us01"
api_key_env = "TD_API_KEY"
personalization_url = "{sim_url}"
cdp_api_url = "{sim_url}"
timeout = "5s"
max_requests_per_second = {max(2 * a.rate, 5)}

[defaults]
probe_schedule = "* * * * * *"

[[service]]
name = "{SVC}"
parent_segment_id = "{PS}"
api = "cdp"
{probes}""")
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA.format(body=BODY, key=B.API_KEY))

    def holds():
        """The simulator's hold precision since the last call: (late_us, pickup_us) lists."""
        _, body = B.http_get(sim_url + "/_sim/holds")
        B.http_get(sim_url + "/_sim/reset-stats", data=b"")
        h = json.loads(body)
        return h["late_us"], h["pickup_us"]

    over, failed, wrk_rounds, clocks = [], 0, [], {}
    sim_late = {"exporter": [], "wrk": []}
    sim_pickup = {"exporter": [], "wrk": []}
    busy = B.Busy([sim.pid])
    for i in range(a.rounds):
        B.log(f"round {i + 1}/{a.rounds}: exporter {a.rate} probes/s for {a.round_seconds}s, "
              f"then wrk -t1 -c1 for {a.wrk_seconds}s, against a {DELAY * 1000:.0f} ms answer")
        holds()
        o, f_, c = exporter_round(a, cfg, work)
        for k, n in c.items():
            clocks[k] = clocks.get(k, 0) + n
        late, pickup = holds()
        sim_late["exporter"] += late
        sim_pickup["exporter"] += pickup
        over += o
        failed += f_
        wrk_rounds.append(wrk_round(a, lua, sim_url + PATH))
        late, pickup = holds()
        sim_late["wrk"] += late
        sim_pickup["wrk"] += pickup
        B.alive(sim)
    other = busy.other_cores()
    if len(over) < 50:
        raise SystemExit(f"measurement failed: only {len(over)} probe results")
    w = merged([(n, [q - DELAY * 1000 for q in qs]) for n, qs in wrk_rounds])
    wn = sum(n for n, _ in wrk_rounds)
    ref = {"p50": wpct(w, 50), "p90": wpct(w, 90), "p99": wpct(w, 99), "max": w[-1][0]}
    ours = {
        "p50": B.percentile(over, 50), "p90": B.percentile(over, 90),
        "p99": B.percentile(over, 99), "max": max(over),
    }
    rep = B.Report("bench-timing")
    rep.row("rounds (exporter s + wrk s each)", f"{a.rounds} ({a.round_seconds} + {a.wrk_seconds})")
    rep.row("probes measured (failed)", f"{len(over)} ({failed})")
    rep.row("clock of the probes' last exchanges", ", ".join(f"{k} {n}" for k, n in sorted(clocks.items())))
    rep.row("simulator delay", DELAY * 1000, "ms")
    for k in ("p50", "p90", "p99", "max"):
        rep.row(f"td-pz-exporter: measured - 50 ms, {k}", ours[k], "ms")
    rep.row("td-pz-exporter: min overhead", min(over), "ms")
    rep.row("wrk reference requests", wn)
    for k in ("p50", "p90", "p99", "max"):
        rep.row(f"wrk reference: measured - 50 ms, {k}", ref[k], "ms")
    for k in ("p50", "p99"):
        rep.row(f"ours minus wrk, {k}", ours[k] - ref[k], "ms")
    over_1ms = sum(1 for o in over if o >= 1.0) / len(over) * 100
    wrk_over_1ms = sum(wt for v, wt in w if v >= 1.0) / sum(wt for _, wt in w) * 100
    rep.row("share at or over 1 ms: td-pz-exporter / wrk", f"{over_1ms:.2f}% / {wrk_over_1ms:.2f}%")
    for side in ("exporter", "wrk"):
        late = [v / 1000 for v in sim_late[side]]
        pickup = [v / 1000 for v in sim_pickup[side]]
        if late:
            rep.row(f"simulator, {side} rounds: answer late p50 / p99 / max",
                    f"{B.percentile(late, 50):.3f} / {B.percentile(late, 99):.3f} / {max(late):.3f} ms")
            rep.row(f"simulator, {side} rounds: pickup p50 / p99 / max",
                    f"{B.percentile(pickup, 50):.3f} / {B.percentile(pickup, 99):.3f} / "
                    f"{max(pickup):.3f} ms")
    rep.row("other load on the machine", other, "cores")
    rep.goal("p99 of (measured - 50 ms) < 1 ms", ours["p99"] < 1.0,
             f"p99 {ours['p99']:.3f} ms (wrk, same answers: {ref['p99']:.3f} ms)")
    own = ours["p99"] - ref["p99"]
    rep.goal("p99 beyond wrk's p99 < 1 ms (the exporter's own share)", own < 1.0, f"{own:+.3f} ms")
    if failed:
        rep.note(f"{failed} probes failed in the windows")
    if ref["p99"] >= 1.0:
        rep.note(f"wrk itself had p99 {ref['p99']:.3f} ms: the machine's wake-up latency alone is "
                 "over the goal in this run")
    if other > 0.3:
        rep.note(f"the machine was busy ({other:.2f} cores used by others): re-run for clean figures")
    rep.print()
    if a.out:
        rep.save(a.out)


if __name__ == "__main__":
    main()
