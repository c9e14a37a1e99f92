"""bench.py vs-blackbox (scripts/bench-vs-blackbox.sh): the same HTTP POST probe run by td-pz-exporter and by
blackbox_exporter at the same rate, and the same request sent by wrk (the floor).

Phases, one after the other against one simulator (whose CPU is not counted):
  A  td-pz-exporter: `rate` probes of one service, each on the cron schedule "* * * * * *",
     /metrics scraped every 15 s (as Prometheus would) inside the window.
  B  prometheus-blackbox-exporter: an http module (POST, JSON body, headers,
     fail_if_body_not_matches_regexp "section") driven by `rate` /probe requests per second
     from this script (one keep-alive connection; the driver's CPU is not counted).
  C  wrk -t1 -c1 with a lua script (POST, headers, body, the same body check): paced at the
     same rate (lua delay()), then flat out.
"""

import argparse
import http.client
import os
import re
import subprocess
import time

import bench as B
from stack import free_port, http as get

PS, SVC, USER = "394649", "product_recommendations", "vip_user_001"
PATH = f"/audiences/{PS}/personalization/{SVC}"
BODY = '{"user_id":"vip_user_001"}'
SCRAPE = 5  # the series Prometheus adds to every scrape target: series()


def exporter_config(sim_url, rate):
    probes = "".join(f'\n  [[service.probe]]\n  name = "p{i:02d}"\n  user_id = "{USER}"\n' for i in range(rate))
    return (f'[td]\nsite = "us01"\napi_key_env = "TD_API_KEY"\npersonalization_url = "{sim_url}"\n'
            f'cdp_api_url = "{sim_url}"\ntimeout = "5s"\nmax_requests_per_second = {max(rate * 2, 5)}\n\n'
            f'[defaults]\nprobe_schedule = "* * * * * *"\n\n[[service]]\nname = "{SVC}"\nparent_segment_id = "{PS}"\n'
            f'api = "cdp"\n{probes}')


BLACKBOX_CONFIG = """modules:
  td_post:
    prober: http
    timeout: 5s
    http:
      method: POST
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
      headers:
        Authorization: "TD1 {key}"
        Content-Type: application/json
      body: '{body}'
      fail_if_body_not_matches_regexp:
        - '"section"'
"""

WRK_LUA = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "TD1 {key}"
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"section"', 1, true) then bad = bad + 1 end
end
{delay}
done = function(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("BAD %d\\n", b))
end
"""


def metrics(url):
    text = get(url + "/metrics")
    return B.prom_samples(text, {"td_pz_probes_total", "td_pz_probe_failures_total"}), text


def series(ours, bb):
    """Series Prometheus stores per probe target. blackbox_exporter: the samples of one /probe + the SCRAPE it adds to
    every target (up, scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling,
    scrape_series_added). Ours (all targets in one scrape), the mean over its probe targets of: the series with its
    `probe` label + its service's (pz_service/parent_segment, no `probe`) / the service's probes + (own + SCRAPE) / targets."""
    ids = [tuple(B.label(lb, k) for k in ("parent_segment", "pz_service", "probe")) for _, lb in B.prom_samples(ours, None)]
    targets, services = len({i for i in ids if i[2]}), len({i[:2] for i in ids if any(i)})
    probe, own, bb = sum(bool(i[2]) for i in ids), sum(not any(i) for i in ids), len(B.prom_samples(bb, None)) + SCRAPE
    parts = (probe / targets, (len(ids) - probe - own) / targets, (own + SCRAPE) / targets)
    return dict(parts=parts, total=sum(parts), below=sum(parts) < bb, targets=targets, services=services, own=own, bb=bb)


def self_check():  # series() on canned text: ours below blackbox's, then above
    s = series('a{pz_service="s",probe="p"} 1\na{pz_service="s",probe="q"} 2\nb{pz_service="s"} 3\n# c\nc 4\n', "x 1\ny 0")
    assert (s["parts"], s["targets"], s["services"], s["own"], s["bb"], s["below"]) == ((1, .5, 3), 2, 1, 1, 7, True) \
        and not series('a{pz_service="s",probe="p"} 1\nc 1\n', "x 1")["below"], s


def memory(pid, **figures):
    """The figures, with the process' peak RSS and its anonymous and file-backed RSS at the end."""
    return dict(figures, **{k: B.status_kib(pid, v) for k, v in
                            (("hwm", "VmHWM"), ("anon", "RssAnon"), ("file", "RssFile"))})


def phase_exporter(a, st, sim_url):
    url = st.exporter(exporter_config(sim_url, a.rate))
    exp = st.exporter_proc
    time.sleep(a.warmup)
    (s0, _), w = metrics(url), B.Window([exp.pid], also=[a.sim_pid])
    t_end, next_scrape, scrapes = time.monotonic() + a.duration, time.monotonic() + 7.5, 0
    while time.monotonic() < t_end:  # /metrics scraped every 15 s, as Prometheus would
        st.alive(exp)
        if time.monotonic() >= next_scrape:
            get(url + "/metrics")
            scrapes, next_scrape = scrapes + 1, next_scrape + 15
        time.sleep(0.05)
    w.close()
    other, (s1, text) = w.other, metrics(url)
    delta = lambda n: B.sum_of(s1, n) - B.sum_of(s0, n)  # noqa: E731
    r = memory(exp.pid, probes=delta("td_pz_probes_total"), failed=delta("td_pz_probe_failures_total"),
               cpu=w.cpu[exp.pid], scrapes=scrapes, other=other, text=text)
    st.stop(exp)
    if r["probes"] <= 0:
        raise SystemExit("measurement failed: td-pz-exporter ran no probes")
    return r


def phase_blackbox(a, st, sim_url):
    cfg = os.path.join(st.work, "blackbox.yml")
    with open(cfg, "w") as f:
        f.write(BLACKBOX_CONFIG.format(key=B.API_KEY, body=BODY))
    port = free_port()
    bb = st.start("blackbox", ["prometheus-blackbox-exporter", f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"])
    st.wait(bb, f"http://127.0.0.1:{port}/-/healthy")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def drive(seconds):
        """`rate` /probe requests a second on one keep-alive connection: (ok, bad, the last answer)."""
        ok, bad, t0 = 0, 0, time.monotonic()
        for n in range(int(seconds * a.rate)):
            time.sleep(max(0.0, t0 + n / a.rate - time.monotonic()))
            conn.request("GET", f"/probe?module=td_post&target={sim_url}{PATH}")
            r = conn.getresponse()
            text = r.read().decode()
            good = r.status == 200 and re.search(r"^probe_success 1$", text, re.M)
            ok, bad = ok + bool(good), bad + (not good)
        return ok, bad, text

    drive(a.warmup)
    w = B.Window([bb.pid], also=[a.sim_pid])
    ok, bad, text = drive(a.duration)
    w.close()
    st.alive(bb)
    r = memory(bb.pid, probes=ok + bad, failed=bad, cpu=w.cpu[bb.pid], other=w.other, text=text)
    conn.close()
    st.stop(bb)
    if ok + bad == 0:
        raise SystemExit("measurement failed: blackbox ran no probes")
    return r


def run_wrk(a, work, sim_url, seconds, paced):
    lua = os.path.join(work, f"post{'_paced' if paced else ''}.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA.format(body=BODY, key=B.API_KEY, delay=f"delay = function() return {1000 / a.rate:.0f} end"
                               if paced else ""))
    busy = B.Window([], also=[a.sim_pid])
    with open(lua + ".out", "w+") as out:
        p = subprocess.Popen(["wrk", "-t1", "-c1", f"-d{seconds}s", "-s", lua, sim_url + PATH], stdout=out, stderr=out)
        _, status, ru = os.wait4(p.pid, 0)
        other = busy.close().other
        out.seek(0)
        text = out.read()
    m = re.search(r"(\d+) requests in", text)
    if os.waitstatus_to_exitcode(status) != 0 or not m:
        raise SystemExit(f"measurement failed: wrk: {text}")
    bad = sum(int(x) for x in re.findall(r"(?:BAD|Non-2xx or 3xx responses:) (\d+)", text))
    return {"requests": int(m.group(1)), "cpu": ru.ru_utime + ru.ru_stime, "bad": bad, "other": other}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=20, help="probes per second, each")
    ap.add_argument("--duration", type=int, default=60, help="seconds measured per prober")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--wrk-seconds", type=int, default=30)
    ap.add_argument("--out", help="also write the figures as JSON here")
    a = ap.parse_args()
    self_check()
    st = B.new_stack("bb")
    sim_url = st.simulator({"accept_any_service": True, "log_rate": 0.1})
    sim, work = st.simulator_proc, st.work
    a.sim_pid = sim.pid

    B.log(f"A: td-pz-exporter, {a.rate} probes/s for {a.duration}s")
    ours = phase_exporter(a, st, sim_url)
    B.log(f"B: blackbox_exporter, {a.rate} /probe/s for {a.duration}s")
    bb = phase_blackbox(a, st, sim_url)
    B.log(f"C: wrk paced at {a.rate}/s for {a.wrk_seconds}s, then flat out for 10s")
    wrk_paced = run_wrk(a, work, sim_url, a.wrk_seconds, paced=True)
    wrk_flat = run_wrk(a, work, sim_url, 10, paced=False)
    st.alive(sim)

    per_k = lambda r: r["cpu"] / r["probes"] * 1000  # noqa: E731
    ours_k, bb_k = per_k(ours), per_k(bb)
    wrk_paced_k, wrk_flat_k = (w["cpu"] / w["requests"] * 1000 for w in (wrk_paced, wrk_flat))
    rep = B.Report("bench-vs-blackbox")
    rep.row("rate (each prober)", f"{a.rate}/s for {a.duration}s")
    for name, r, k in (("td-pz-exporter", ours, ours_k), ("blackbox_exporter", bb, bb_k)):
        rep.row(f"{name} probes (failed)", f"{r['probes']:.0f} ({r['failed']:.0f})")
        rep.row(f"{name} CPU", r["cpu"], "s")
        rep.row(f"{name} CPU per 1,000 probes", k, "s")
        rep.row(f"{name} peak RSS (VmHWM)", r["hwm"] / 1024, "MiB")
        rep.row(f"{name} RSS at end: anonymous + file", f"{r['anon'] / 1024:.1f} + {r['file'] / 1024:.1f}", "MiB")
    rep.row("td-pz-exporter /metrics scrapes in window", ours["scrapes"])
    rep.row("CPU per probe: ours / blackbox", ours_k / bb_k, "x")
    rep.row("peak RSS: ours / blackbox", ours["hwm"] / bb["hwm"], "x")
    rep.row("anonymous RSS at end: ours / blackbox", ours["anon"] / bb["anon"], "x")
    s = series(ours["text"], bb["text"])
    rep.row("td-pz-exporter scrape: probe targets (services); own series", f"{s['targets']} ({s['services']}); {s['own']}")
    rep.row("td-pz-exporter series per target: probe + service + fixed", "{:.1f} + {:.2f} + {:.2f} = {:.1f}".format(*s["parts"], s["total"]))
    rep.row("blackbox_exporter series per target: /probe + scrape", f"{s['bb'] - SCRAPE} + {SCRAPE} = {s['bb']}")
    rep.row("series per target: ours / blackbox", s["total"] / s["bb"], "x")
    for name, w, k in ((f"wrk paced {a.rate}/s", wrk_paced, wrk_paced_k), ("wrk flat out", wrk_flat, wrk_flat_k)):
        rep.row(f"{name}: requests (bad)", f"{w['requests']} ({w['bad']})")
        rep.row(f"{name}: CPU per 1,000 requests", k, "s")
    rep.row("ours per probe / wrk paced per request", ours_k / wrk_paced_k, "x")
    rep.row("ours per probe / wrk flat-out per request", ours_k / wrk_flat_k, "x")
    rep.row("blackbox per probe / wrk paced per request", bb_k / wrk_paced_k, "x")
    rep.other(max(ours["other"], bb["other"], wrk_paced["other"]), "other load on the machine (max of phases)")
    rep.goal("CPU per probe <= 0.5x blackbox", ours_k <= 0.5 * bb_k, f"{ours_k / bb_k:.2f}x")
    rep.goal("peak RSS <= 0.5x blackbox", ours["hwm"] <= 0.5 * bb["hwm"], f"{ours['hwm'] / bb['hwm']:.2f}x")
    rep.goal("CPU per probe <= 3x wrk (same rate)", ours_k <= 3 * wrk_paced_k, f"{ours_k / wrk_paced_k:.2f}x")
    rep.goal("series per target < blackbox's", s["below"], f"{s['total']:.1f} against {s['bb']}")
    if ours["failed"] or bb["failed"] or wrk_paced["bad"] or wrk_flat["bad"]:
        rep.note("some probes or requests failed: see the counts above")
    rep.print(a.out)


if __name__ == "__main__":
    main()
