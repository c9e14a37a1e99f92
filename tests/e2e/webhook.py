#!/usr/bin/env python3
"""The on-call receiver of the end-to-end test: a local Alertmanager webhook that records what it gets.

    python3 tests/e2e/webhook.py --listen=127.0.0.1:PORT --out=FILE.jsonl [--print]

Every POST (Alertmanager's webhook_configs, URL ...?receiver=<name> as written by
scripts/lib/alerts.py test-config) appends one JSON line to FILE:

    {"t": <unix time received>, "path": "/hook", "receiver": "<the receiver query parameter>",
     "body": <the JSON Alertmanager posted>}

and is answered 200. GET / answers 200 "ok" (readiness). --print also writes a short line per
notification to stdout (scripts/stack.sh shows them). Standard library only.
"""

import argparse
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "td-pz-e2e-webhook/1"

    def log_message(self, fmt, *args):  # quiet: the JSONL file is the log
        pass

    def _answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(200, "ok\n")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        receiver = urllib.parse.parse_qs(url.query).get("receiver", [""])[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = {"unparsable": raw.decode("utf-8", "replace")}
        line = json.dumps({"t": time.time(), "path": url.path, "receiver": receiver, "body": body},
                          sort_keys=True)
        with LOCK:
            with open(self.server.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
        if self.server.echo and isinstance(body, dict):
            for a in body.get("alerts") or []:
                lab = a.get("labels", {})
                extra = " ".join(f"{k}={lab[k]}" for k in ("pz_service", "probe", "slo") if lab.get(k))
                print(f"[webhook {time.strftime('%H:%M:%S')}] receiver={receiver} {a.get('status')} "
                      f"{lab.get('alertname')} severity={lab.get('severity')} {extra}", flush=True)
        self._answer(200, "ok\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT")
    ap.add_argument("--out", required=True, help="JSONL file to append to")
    ap.add_argument("--print", dest="echo", action="store_true", help="one stdout line per alert")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.out = a.out
    srv.echo = a.echo
    open(a.out, "a", encoding="utf-8").close()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
