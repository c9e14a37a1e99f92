#!/usr/bin/env python3
"""PagerDuty and Slack for the end-to-end test (docs/e2e.md, "Receivers"): Alertmanager's real receivers post
here; each payload is checked and answered as those services do, and recorded. stack.py starts it:

    fakes.py --listen=HOST:PORT --out=FILE.jsonl --routing-key-file=FILE [--print]

POST /v2/enqueue    PagerDuty's Events API v2: 202 {"status": "success", ...}, or 400 {"status": "invalid event",
                    "message": "Event object is invalid", "errors": [...]} (the rules: pagerduty() below)
POST /services/...  a Slack incoming webhook: 200 "ok", or 400 "invalid_payload" or "no_text"
Each POST appends {"t", "api": "pagerduty"|"slack", "code", "errors", "body"} to FILE (--print: a line to stdout).
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def pagerduty(e, key):
    """What PagerDuty refuses in event e (developer.pagerduty.com/docs/events-api-v2/trigger-events): routing_key
    the 32-character integration key; event_action trigger, acknowledge or resolve; dedup_key of at most 255
    characters, required here (Alertmanager always sends it, a resolve needs it); a payload (required on a
    trigger) with a summary of at most 1,024 characters, a source and a severity; an href for each link."""
    e = e if isinstance(e, dict) else {}
    # the payload is checked when there is one, and a trigger must have one
    p = e.get("payload") if isinstance(e.get("payload"), dict) else {} if e.get("event_action") == "trigger" else None
    return [error for ok, error in [
        (len(e.get("routing_key") or "") == 32 and e["routing_key"] == key, "'routing_key' is not the integration key"),
        (e.get("event_action") in ("trigger", "acknowledge", "resolve"), "'event_action' is not trigger, acknowledge or resolve"),
        (0 < len(e.get("dedup_key") or "") <= 255, "'dedup_key' is missing or longer than 255 characters"),
        (p is None or 0 < len(p.get("summary") or "") <= 1024, "'payload.summary' is missing or longer than 1024 characters"),
        (p is None or p.get("source"), "'payload.source' is missing"),
        (p is None or p.get("severity") in ("critical", "error", "warning", "info"), "'payload.severity' is invalid"),
        (all(isinstance(x, dict) and x.get("href") for x in e.get("links") or []), "a link has no 'href'")] if not ok]


def slack(m):
    """Slack's errors (api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks)."""
    if not isinstance(m, dict) or not all(isinstance(a, dict) for a in m.get("attachments") or []):
        return ["invalid_payload"]
    return [] if m.get("text") or m.get("attachments") else ["no_text"]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet: FILE is the log
        pass

    def answer(self, code, body):
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self.answer(200, "ok")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if self.path == "/v2/enqueue":
            with open(self.server.key_file) as f:
                api, errors = "pagerduty", pagerduty(body, f.read().strip())
            code, answer = (400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}) \
                if errors else (202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]})
        elif self.path.startswith("/services/"):
            api, errors = "slack", slack(body)
            code, answer = (400, errors[0]) if errors else (200, "ok")
        else:
            return self.answer(404, "no_service")
        with self.server.lock, open(self.server.out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"t": time.time(), "api": api, "code": code, "errors": errors, "body": body}) + "\n")
        if self.server.echo and isinstance(body, dict):
            what = (body.get("payload") or {}).get("summary") or (body.get("attachments") or [{}])[0].get("title")
            print(f"[{api} {time.strftime('%H:%M:%S')}] {code} {body.get('event_action', '')} {what}", flush=True)
        self.answer(code, answer)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for opt in ("--listen", "--out", "--routing-key-file"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--print", dest="echo", action="store_true")
    a = ap.parse_args()
    srv = ThreadingHTTPServer((a.listen.rpartition(":")[0], int(a.listen.rpartition(":")[2])), Handler)
    srv.daemon_threads, srv.lock, srv.out, srv.key_file, srv.echo = True, threading.Lock(), a.out, a.routing_key_file, a.echo
    srv.serve_forever()
