#!/usr/bin/env python3
"""Check the inhibit rules of alerts/alertmanager.yml against a real Alertmanager.

    python3 scripts/test-inhibitions.py [--cases=alerts/tests/alertmanager/inhibit.yaml] [--alertmanager=prometheus-alertmanager]

Starts the Alertmanager binary on a free loopback port with the test copy of the config (every receiver a
webhook to a closed local port: nothing leaves the machine, no secret is needed), posts the alerts of each
case through /api/v2/alerts, and reads back which are inhibited (status.inhibitedBy). Each case resolves
its alerts before the next starts. Static labels (severity, slo) come from alerts/td-pz-rules.yaml, and an
alert name that is not in that file fails the run.

Needs PyYAML and the alertmanager binary (Debian: prometheus-alertmanager). Exit 0 if every case passes.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now(delta=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta)
    return t.isoformat().replace("+00:00", "Z")


def request(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        raw = r.read()
        return json.loads(raw) if raw.strip() else None


def key(labels):
    return tuple(sorted(labels.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=os.path.join(ROOT, "alerts", "tests", "alertmanager", "inhibit.yaml"))
    ap.add_argument("--config", default=os.path.join(ROOT, "alerts", "alertmanager.yml"))
    ap.add_argument("--rules", default=os.path.join(ROOT, "alerts", "td-pz-rules.yaml"))
    ap.add_argument("--alertmanager", default=os.environ.get("ALERTMANAGER_BIN", "prometheus-alertmanager"))
    a = ap.parse_args()

    binary = shutil.which(a.alertmanager) or shutil.which("alertmanager")
    if not binary:
        sys.exit(f"test-inhibitions: no {a.alertmanager} binary (apt-get install -y prometheus-alertmanager)")

    with open(a.rules, encoding="utf-8") as f:
        static = {r["alert"]: r.get("labels", {}) for g in yaml.safe_load(f)["groups"]
                  for r in g["rules"] if "alert" in r}
    with open(a.cases, encoding="utf-8") as f:
        cases = yaml.safe_load(f)["cases"]

    tmp = tempfile.mkdtemp(prefix="td-pz-inhibit-")
    proc = None
    try:
        cfg = os.path.join(tmp, "alertmanager.yml")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "alertmanager-test-config.py"),
                        f"--url=http://127.0.0.1:{free_port()}/hook", f"--in={a.config}", f"--out={cfg}"],
                       check=True, stderr=subprocess.DEVNULL)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(tmp, "alertmanager.log"), "w")
        proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.path={tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=1).read()
                break
            except Exception:
                if proc.poll() is not None or time.time() > deadline:
                    log.close()
                    sys.stderr.write(open(os.path.join(tmp, "alertmanager.log")).read())
                    sys.exit("test-inhibitions: Alertmanager did not start")
                time.sleep(0.2)

        passed = failed = 0
        for case in cases:
            posted, expected, errors = [], {}, []
            for spec in case["alerts"]:
                spec = dict(spec)
                expect = spec.pop("expect")
                name = spec["alertname"]
                if name not in static:
                    errors.append(f"unknown alert {name} (not in {os.path.relpath(a.rules, ROOT)})")
                    continue
                labels = {k: str(v) for k, v in {**static[name], **spec}.items()}
                posted.append({"labels": labels, "startsAt": now(-60), "endsAt": now(3600),
                               "annotations": {"summary": "test"}})
                expected[key(labels)] = expect
            if posted:
                request(base, "/api/v2/alerts", posted)
            # the inhibitor learns of new alerts asynchronously: poll until the states settle
            got, deadline = {}, time.time() + 10
            while posted:
                got = {}
                for al in request(base, "/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true"):
                    k = key(al["labels"])
                    if k in expected:
                        got[k] = "inhibited" if al["status"]["inhibitedBy"] else "active"
                if got == expected or time.time() > deadline:
                    break
                time.sleep(0.3)
            for k, want in expected.items():
                if got.get(k) != want:
                    errors.append(f"{dict(k)}: expected {want}, got {got.get(k, 'missing')}")
            if errors:
                failed += 1
                print(f"FAIL  {case['name']}")
                for e in errors:
                    print(f"        {e}")
            else:
                passed += 1
                print(f"ok    {case['name']}")
            # resolve this case's alerts so that they inhibit nothing in the next case
            for p in posted:
                p["endsAt"] = now(-1)
            if posted:
                request(base, "/api/v2/alerts", posted)
                deadline = time.time() + 10
                while request(base, "/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true"):
                    if time.time() > deadline:
                        sys.exit("test-inhibitions: alerts did not resolve")
                    time.sleep(0.2)
        print(f"test-inhibitions: {passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
