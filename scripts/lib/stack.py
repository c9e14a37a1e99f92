#!/usr/bin/env python3
"""The one launcher of the local stack: the TD simulator, td-pz-exporter, Prometheus, Alertmanager and the
PagerDuty and Slack fakes (scripts/lib/fakes.py), each on a free loopback port, logging to WORK/<name>.log,
ended by its pid (TERM, then KILL) when the Stack stops or Python exits. e2e, the browser, contract and
dashboards tests, the benches, load and soak use it; from the shell:

    stack.py up [--fast] [--drill NAME]   the e2e stack in the foreground, Ctrl-C stops it (scripts/stack.sh)
    stack.py drill NAME                   inject a drill of tests/e2e/drills.json into the stack `up` runs
    stack.py run [--scenario F] [--exporter-config F] -- CMD...
                                          start the simulator (and the exporter), run CMD with SIM_URL,
                                          EXPORTER_URL, TD_API_KEY, TD_P13N_TOKEN set

Env: TD_PZ_BIN (the exporter binary, default target/release/td-pz-exporter).
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # nothing written under scripts/
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TD_PZ_BIN") or os.path.join(ROOT, "target", "release", "td-pz-exporter")
# The simulator checks these like a real key and token; they are test values, not secrets.
API_KEY = "1/e2e00000000000000000000000000000000000000"
P13N_TOKEN = "1/2/e2e0123456789abcdef0123456789abc"
UP_DIR = os.path.join(ROOT, "target", "e2e", "stack")


def log(msg):
    print(f"[stack {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, body=None, timeout=10):
    """GET (or POST a JSON body); the answer parsed as JSON when it is JSON, else text."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def query(prom, expr):
    """A Prometheus instant query: (result, None), or (None, the error)."""
    try:
        r = http(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except urllib.error.HTTPError as e:
        return None, "HTTP %d: %s" % (e.code, e.read().decode("utf-8", "replace")[:300])
    except OSError as e:
        return None, str(e)
    return (r["data"]["result"], None) if r.get("status") == "success" else (None, r.get("error", str(r)))


class Stack:
    def __init__(self, work=None, bin=None):
        self.work, self.bin, self.procs, self.urls = work or tempfile.mkdtemp(prefix="td-pz-stack."), bin or BIN, [], {}
        os.makedirs(self.work, exist_ok=True)
        atexit.register(self.stop)

    def start(self, name, argv, env=None):
        """Starts argv with its output in WORK/<name>.log."""
        out = open(os.path.join(self.work, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})),
                             cwd=self.work)
        p.name = name
        self.procs.append(p)
        return p

    def alive(self, p):
        if p.poll() is not None:
            with open(os.path.join(self.work, f"{p.name}.log"), errors="replace") as f:
                raise SystemExit(f"{p.name} exited with {p.returncode}; the end of its log:\n{f.read()[-3000:]}")

    def wait(self, p, url, timeout=60):
        deadline = time.time() + timeout
        while True:
            self.alive(p)
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if time.time() > deadline:
                    raise SystemExit(f"{p.name} not ready at {url} after {timeout}s (log: {self.work}/{p.name}.log)")
                time.sleep(0.1)

    def _serve(self, name, argv_of_port, ready_path, env=None, timeout=60):
        port = free_port()
        p = self.start(name, argv_of_port(port), env)
        url = f"http://127.0.0.1:{port}"
        self.wait(p, url + ready_path, timeout)
        self.urls[name], self.__dict__[name + "_proc"] = url, p
        return url

    def simulator(self, scenario=None):
        """scenario: a dict or a file."""
        if isinstance(scenario, dict):
            with open(os.path.join(self.work, "scenario.json"), "w") as f:
                json.dump(scenario, f)
            scenario = f.name
        return self._serve("simulator", lambda port: [
            self.bin, "simulate", f"--listen=127.0.0.1:{port}", f"--api-key={API_KEY}", f"--p13n-token={P13N_TOKEN}",
            *([f"--scenario={scenario}"] if scenario else [])], "/_sim/stats")

    def exporter(self, config, args=(), env=None, timeout=60):
        """config: the TOML text; {sim} in it becomes the simulator's URL."""
        path = os.path.join(self.work, "exporter.toml")
        with open(path, "w") as f:
            f.write(config.replace("{sim}", self.urls.get("simulator", "")))
        env = dict({"TD_API_KEY": API_KEY, "TD_P13N_TOKEN": P13N_TOKEN}, **(env or {}))
        return self._serve("exporter", lambda port: [
            self.bin, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{port}", *args],
            "/-/ready", env, timeout)

    def prometheus(self, rules=None, scrape="2s"):
        """Scrapes the exporter and sends alerts to the Alertmanager, when those were started."""
        host = lambda name: [self.urls[name].split("//")[1]] if name in self.urls else []  # noqa: E731
        with open(os.path.join(self.work, "prometheus.yml"), "w") as f:
            json.dump({"global": {k: scrape for k in ("scrape_interval", "scrape_timeout", "evaluation_interval")},
                       "rule_files": [rules] if rules else [],
                       "alerting": {"alertmanagers": [{"static_configs": [{"targets": host("alertmanager")}]}]},
                       "scrape_configs": [{"job_name": "td-pz-exporter", "static_configs": [{"targets": host("exporter")}]}]},
                      f)  # JSON is YAML
        return self._serve("prometheus", lambda port: [
            "prometheus", f"--config.file={f.name}", f"--storage.tsdb.path={self.work}/prometheus-data",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], "/-/ready")

    def alertmanager(self, config):
        am = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or "alertmanager"
        return self._serve("alertmanager", lambda port: [
            am, f"--config.file={config}", f"--storage.path={self.work}/alertmanager-data",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            "/-/ready")

    def fakes(self, echo=False):
        """PagerDuty and Slack (scripts/lib/fakes.py), recording to WORK/notifications.jsonl."""
        self.notes_log = os.path.join(self.work, "notifications.jsonl")
        open(self.notes_log, "w").close()
        return self._serve("fakes", lambda port: [
            sys.executable, "-u", os.path.join(ROOT, "scripts", "lib", "fakes.py"), f"--listen=127.0.0.1:{port}",
            f"--out={self.notes_log}", f"--routing-key-file={self.work}/pagerduty-routing-key",
            *(["--print"] if echo else [])], "/")

    def e2e(self, fast=True, group_wait="10s", echo=False):
        """The e2e stack: simulator (tests/e2e/baseline.json) -> exporter (tests/e2e/exporter.toml) ->
        Prometheus (rules of the test profile, or the shipped ones) -> Alertmanager (the shipped receivers and
        template; fast: group_wait GROUP_WAIT, group_interval 1s) -> the PagerDuty and Slack fakes."""
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import alerts
        fakes = self.fakes(echo)
        rules = os.path.join(self.work, "td-pz-rules.yaml")
        if fast:
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-rules.py"), "--profile=test",
                            "--window-scale=60", f"--out={rules}"], check=True, stdout=subprocess.DEVNULL)
        else:
            shutil.copy(os.path.join(ROOT, "alerts", "td-pz-rules.yaml"), rules)
        am = os.path.join(self.work, "alertmanager.yml")
        with open(am, "w") as f:
            # group_wait stays above the rules' evaluation interval (5s in the test profile), or an
            # inhibited alert may be notified before its source exists (docs/e2e.md).
            f.write(alerts.test_config(fakes, self.work, fast=group_wait if fast else None))
        self.simulator(os.path.join(ROOT, "tests", "e2e", "baseline.json"))
        self.alertmanager(am)
        with open(os.path.join(ROOT, "tests", "e2e", "exporter.toml")) as f:
            self.exporter(f.read())
        self.prometheus(rules, "2s" if fast else "5s")
        with open(os.path.join(self.work, "stack.json"), "w") as f:
            json.dump(dict(self.urls, pids=[p.pid for p in self.procs]), f)
        log("up: " + ", ".join(f"{k} {v}" for k, v in self.urls.items()))

    def stop(self, *only):
        """Ends `only` those processes, or every one started."""
        procs = list(only or self.procs)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                log(f"{p.name} (pid {p.pid}) ignored TERM, killing")
                p.kill()
                p.wait()
        self.procs = [p for p in self.procs if p not in procs]


def drill(sim, name):
    """Posts tests/e2e/baseline.json plus the faults of drill NAME (or all, revoked_all, clear)."""
    with open(os.path.join(ROOT, "tests", "e2e", "drills.json")) as f:
        drills = {d["name"]: d for d in json.load(f)["drills"]}
    with open(os.path.join(ROOT, "tests", "e2e", "baseline.json")) as f:
        scenario = json.load(f)
    if name == "all":
        scenario["faults"] = [x for d in drills.values() for x in d["faults"]]
    elif name == "revoked_all":
        scenario["revoked"] = True  # every request of every service answered 401
    elif name in drills:
        scenario["faults"] = drills[name]["faults"]
    elif name != "clear":
        raise SystemExit(f"unknown drill {name}: one of {', '.join(drills)}, all, revoked_all, clear")
    http(sim + "/_sim/scenario", scenario)
    d = drills.get(name, {"title": "posted", "arrive": [], "inhibited": []})
    print(f"drill {name}: {d['title']}" + (f"; expect at the receiver: {', '.join(x['alertname'] for x in d['arrive'])}; "
          f"inhibited: {', '.join(x['alertname'] + ' (by ' + x['by'] + ')' for x in d.get('inhibited', []))}" if d["arrive"] else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--fast", action="store_true", help="the test profile: for <= 15s, group_wait 10s")
    up.add_argument("--drill")
    sub.add_parser("drill").add_argument("drill")
    run = sub.add_parser("run")
    run.add_argument("--scenario")
    run.add_argument("--exporter-config")
    run.add_argument("command", nargs="+")
    a = ap.parse_args()
    state, running = os.path.join(UP_DIR, "stack.json"), None
    if os.path.exists(state):
        with open(state) as f:
            running = json.load(f)
        running = running if any(os.path.exists(f"/proc/{pid}") for pid in running["pids"]) else None
    if a.cmd == "drill" or (a.cmd == "up" and running):
        if not running or not a.drill:
            raise SystemExit("a stack is already running: inject a drill with --drill NAME" if running else
                             f"no stack is running from {UP_DIR} (scripts/stack.sh starts one)")
        return drill(running["simulator"], a.drill)
    if a.cmd == "run":
        st = Stack()
        st.simulator(a.scenario)
        if a.exporter_config:
            with open(a.exporter_config) as f:
                st.exporter(f.read())
        env = dict(os.environ, SIM_URL=st.urls["simulator"], EXPORTER_URL=st.urls.get("exporter", ""),
                   TD_API_KEY=API_KEY, TD_P13N_TOKEN=P13N_TOKEN)
        rc = subprocess.call(a.command, env=env)
        st.stop()
        shutil.rmtree(st.work, ignore_errors=True)
        return rc
    shutil.rmtree(UP_DIR, ignore_errors=True)
    st = Stack(UP_DIR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    st.e2e(fast=a.fast, echo=True)
    u = st.urls
    print(f"\n  Prometheus {u['prometheus']}/alerts   Alertmanager {u['alertmanager']}/#/alerts   exporter "
          f"{u['exporter']}/   simulator {u['simulator']}/_sim/stats\n  PagerDuty and Slack fakes {u['fakes']} -> "
          f"{st.notes_log} (each notification printed below)\n  drills, from another terminal: scripts/stack.sh "
          f"--drill revoked_key|wrong_section|outage|slow|rate_limited|all|revoked_all|clear\n  Grafana: import dashboards/*.json with a Prometheus data "
          f"source at {u['prometheus']}. Ctrl-C stops it all.\n", flush=True)
    if a.drill:
        drill(u["simulator"], a.drill)
    try:
        with open(os.path.join(st.work, "fakes.log"), errors="replace") as f:
            while all(st.alive(p) is None for p in st.procs):
                sys.stdout.write(f.read())
                sys.stdout.flush()
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        st.stop()
        os.remove(state)


if __name__ == "__main__":
    sys.exit(main())
