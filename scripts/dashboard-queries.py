#!/usr/bin/env python3
"""Print every panel query of the td-pz-exporter dashboards as JSON lines, variables filled in.

    python3 scripts/dashboard-queries.py [--var pz_service=product_recommendations]... [FILE.json]...

One line per query target:

    {"dashboard": "td-pz-overview", "panel": "Availability (5m)", "refId": "A", "expr": "..."}

`dashboard` is the dashboard's uid. Template variables are replaced the way Grafana would for "All":
$parent_segment, $pz_service and $probe become `.*` unless given with --var NAME=VALUE (VALUE is put in
as it is, so it may be a regex such as `(a|b)`). Grafana's built-ins become $__rate_interval=1m,
$__interval=15s, $__range=5m (and their _s/_ms forms); $datasource only appears in datasource fields and
is not touched. An unknown variable in a query is an error (exit 2), so a typo cannot slip through as
literal text. Without FILE arguments, reads dashboards/*.json. --annotations adds the dashboards'
annotation queries (panel "annotation: NAME"); those may legitimately return nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = ["overview.json", "service-detail.json", "exporter-health.json"]

DEFAULT_VARS = {
    "parent_segment": ".*",
    "pz_service": ".*",
    "probe": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}

# $name, ${name}, ${name:format}, [[name]]
VAR_RE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")


class UnknownVariable(Exception):
    pass


def fill(expr: str, values: dict) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise UnknownVariable(name)
        return values[name]
    return VAR_RE.sub(sub, expr)


def walk_panels(panels):
    for p in panels or []:
        yield p
        # collapsed rows keep their panels inside
        yield from walk_panels(p.get("panels"))


def queries(dash: dict, values: dict, annotations: bool):
    uid = dash.get("uid") or dash.get("title")
    for p in walk_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            if t.get("hide") or not t.get("expr"):
                continue
            yield {"dashboard": uid, "panel": fill(p.get("title", ""), values),
                   "refId": t.get("refId", ""), "expr": fill(t["expr"], values)}
    if annotations:
        for a in dash.get("annotations", {}).get("list", []):
            if a.get("expr"):
                yield {"dashboard": uid, "panel": "annotation: %s" % a.get("name", ""),
                       "refId": "", "expr": fill(a["expr"], values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="dashboard JSON files (default: dashboards/*.json)")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="value for a template variable (repeatable)")
    ap.add_argument("--annotations", action="store_true", help="also print annotation queries")
    args = ap.parse_args()

    values = dict(DEFAULT_VARS)
    for item in args.var:
        name, sep, value = item.partition("=")
        name = name.strip().lstrip("$")
        if not sep or not name:
            ap.error("--var wants NAME=VALUE, got %r" % item)
        values[name] = value

    files = args.files or [REPO_ROOT / "dashboards" / f for f in DEFAULT_FILES]
    n = 0
    for path in files:
        try:
            dash = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print("dashboard-queries: %s: %s" % (path, e), file=sys.stderr)
            return 2
        try:
            for q in queries(dash, values, args.annotations):
                print(json.dumps(q, ensure_ascii=False))
                n += 1
        except UnknownVariable as e:
            print("dashboard-queries: %s: unknown variable $%s (give it with --var)" % (path, e),
                  file=sys.stderr)
            return 2
    if n == 0:
        print("dashboard-queries: no queries found", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
