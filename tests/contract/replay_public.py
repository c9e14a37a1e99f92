#!/usr/bin/env python3
"""Replays the request td-js-sdk makes on the p13n `/public` path to a running simulator and
asserts that it is accepted (200) and that the answer reads as the SDK reads it (text, then JSON;
an empty answer is tolerated).

    replay_public.py SIM_URL [--key KEY] [--token TOKEN] [--origin ORIGIN] [--request FILE]

FILE is what capture_public.js wrote (default fixtures/public-request.json). Its placeholder key
and token are replaced by the simulator's (`--key`/`--token`, or TD_API_KEY/TD_P13N_TOKEN as for
`td-pz-exporter simulate`), and the Origin header a browser adds is added (`--origin`, default the
captured page's origin). Everything else — method, path, headers, body — is sent as captured.
Only loopback addresses are ever contacted.
"""

import argparse
import ipaddress
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_REQUEST = Path(__file__).resolve().parent / "fixtures" / "public-request.json"


def require_loopback(url):
    host = urlsplit(url).hostname or ""
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as e:
        raise SystemExit(f"replay_public: cannot resolve {host!r}: {e}")
    if not addrs or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise SystemExit(f"replay_public: {url} is not a loopback address ({sorted(addrs)}); refusing")


def build(captured, base_url, key, token, origin):
    """The request to send: the captured one with the simulator's key, token and an origin."""
    headers = dict(captured["headers"])
    assert headers["Authorization"] == "TD1 " + captured["placeholders"]["key"], headers
    assert headers["WP13n-Token"] == captured["placeholders"]["token"], headers
    headers["Authorization"] = f"TD1 {key}"
    headers["WP13n-Token"] = token
    headers["Origin"] = origin or captured["origin"]
    url = base_url.rstrip("/") + captured["path"] + (captured["query"] or "")
    return urllib.request.Request(url, data=captured["body"].encode(), headers=headers,
                                  method=captured["method"])


def replay(base_url, key, token, origin=None, request_file=DEFAULT_REQUEST):
    """Sends the request; returns (status, body text). Raises AssertionError when not accepted."""
    require_loopback(base_url)
    captured = json.loads(Path(request_file).read_text())
    req = build(captured, base_url, key, token, origin)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    assert status == 200, f"{req.method} {req.full_url} -> {status}: {text[:300]}"
    answer = json.loads(text) if text.strip() else {}
    assert isinstance(answer, dict), f"the answer is JSON but not an object: {text[:300]}"
    return status, text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sim_url")
    ap.add_argument("--key", default=os.environ.get("TD_API_KEY"))
    ap.add_argument("--token", default=os.environ.get("TD_P13N_TOKEN"))
    ap.add_argument("--origin")
    ap.add_argument("--request", type=Path, default=DEFAULT_REQUEST)
    args = ap.parse_args(argv)
    if not args.key or not args.token:
        ap.error("the simulator's key and token are needed (--key/--token or TD_API_KEY/TD_P13N_TOKEN)")
    try:
        _, text = replay(args.sim_url, args.key, args.token, args.origin, args.request)
    except AssertionError as e:
        print(f"replay_public: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"replay_public: ok, the simulator accepted td-js-sdk's request: {text[:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
