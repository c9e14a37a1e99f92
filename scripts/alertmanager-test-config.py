#!/usr/bin/env python3
"""Turn alerts/alertmanager.yml into a test copy whose receivers all post to one local webhook.

    python3 scripts/alertmanager-test-config.py --url=http://127.0.0.1:9095/hook [--out=PATH] [--fast]
        [--in=alerts/alertmanager.yml]

Every receiver keeps its name and gets exactly one config:

    webhook_configs:
      - url: 'http://127.0.0.1:9095/hook?receiver=<name>'
        send_resolved: true

so a test sees which receiver each notification went to (the `receiver` query parameter; the webhook
body's "receiver" field says the same). The route tree and the inhibit rules are copied byte for byte;
only the top-level `receivers:` block is rewritten. The copy needs no secret file.

--fast also shortens the route timings for a quick test: every group_wait becomes 1s, every
group_interval 1s (repeat_interval is left as it is). Without --fast the file is unchanged apart from the
receivers.

Standard library only. If PyYAML is installed, the result is parsed back and checked (routes and
inhibit rules equal to the input's, one webhook per receiver).
"""

import argparse
import os
import re
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_KEY = re.compile(r"^[^\s#]")
ITEM_NAME = re.compile(r"""^(\s*)-\s+name:\s*(["']?)([^"'#\s]+)\2\s*(#.*)?$""")


def receiver_url(base, name):
    sep = "&" if urllib.parse.urlsplit(base).query else "?"
    return f"{base}{sep}receiver={urllib.parse.quote(name, safe='')}"


def rewrite(text, url, fast):
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if re.match(r"^receivers:\s*(#.*)?$", l)]
    if len(starts) != 1:
        raise SystemExit("alertmanager-test-config: expected exactly one top-level `receivers:` line")
    start = starts[0]
    end = next((j for j in range(start + 1, len(lines)) if TOP_KEY.match(lines[j])), len(lines))

    names, item_indent = [], None
    for l in lines[start + 1:end]:
        m = ITEM_NAME.match(l)
        if not m:
            continue
        if item_indent is None:
            item_indent = m.group(1)
        if m.group(1) == item_indent:
            names.append(m.group(3))
    if not names:
        raise SystemExit("alertmanager-test-config: no receiver found under `receivers:`")
    if len(set(names)) != len(names):
        raise SystemExit(f"alertmanager-test-config: duplicate receiver names: {names}")

    block = ["receivers:"]
    for n in names:
        u = receiver_url(url, n).replace("'", "''")
        block += [f"  - name: {n}",
                  "    webhook_configs:",
                  f"      - url: '{u}'",
                  "        send_resolved: true"]
    # keep a trailing blank line before the next top-level key, if any
    out = lines[:start] + block + ([""] if end < len(lines) else []) + lines[end:]
    result = "\n".join(out)
    if not result.endswith("\n"):
        result += "\n"

    if fast:
        result = re.sub(r"(?m)^(\s*group_wait:\s*)\S+", r"\g<1>1s", result)
        result = re.sub(r"(?m)^(\s*group_interval:\s*)\S+", r"\g<1>1s", result)

    header = ("# TEST COPY of alerts/alertmanager.yml made by scripts/alertmanager-test-config.py: every receiver\n"
              f"# posts to {url} with ?receiver=<name>"
              + ("; group_wait and group_interval set to 1s" if fast else "") + ". Not for production.\n")
    return header + result, names


def verify(original, result, url, names, fast):
    try:
        import yaml  # optional
    except ImportError:
        return
    a, b = yaml.safe_load(original), yaml.safe_load(result)
    if a.get("inhibit_rules") != b.get("inhibit_rules"):
        raise SystemExit("alertmanager-test-config: BUG: inhibit rules changed")
    ra, rb = a.get("route"), b.get("route")
    if fast:
        def strip(r):
            r = {k: v for k, v in r.items() if k not in ("group_wait", "group_interval")}
            if "routes" in r:
                r["routes"] = [strip(x) for x in r["routes"]]
            return r
        ra, rb = strip(ra), strip(rb)
    if ra != rb:
        raise SystemExit("alertmanager-test-config: BUG: route tree changed")
    got = {r["name"]: r for r in b["receivers"]}
    if sorted(got) != sorted(names) or sorted(names) != sorted(r["name"] for r in a["receivers"]):
        raise SystemExit("alertmanager-test-config: BUG: receiver names changed")
    for n, r in got.items():
        if set(r) != {"name", "webhook_configs"} or r["webhook_configs"][0]["url"] != receiver_url(url, n):
            raise SystemExit(f"alertmanager-test-config: BUG: receiver {n} is not the test webhook")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="the test webhook, e.g. http://127.0.0.1:9095/hook")
    ap.add_argument("--in", dest="src", default=os.path.join(ROOT, "alerts", "alertmanager.yml"))
    ap.add_argument("--out", default="-", help="output file, '-' (default) for stdout")
    ap.add_argument("--fast", action="store_true", help="group_wait and group_interval 1s")
    a = ap.parse_args()
    if not re.match(r"^https?://", a.url):
        ap.error("--url must be an http(s) URL")

    with open(a.src, encoding="utf-8") as f:
        original = f.read()
    result, names = rewrite(original, a.url, a.fast)
    verify(original, result, a.url, names, a.fast)
    if a.out == "-":
        sys.stdout.write(result)
    else:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(result)
        print(f"alertmanager-test-config: wrote {a.out} (receivers: {', '.join(names)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
