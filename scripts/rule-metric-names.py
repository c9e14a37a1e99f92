#!/usr/bin/env python3
"""List the metric names the rules use, and check them against a real /metrics scrape.

    python3 scripts/rule-metric-names.py [--rules=alerts/td-pz-rules.yaml]            # list names and users
    python3 scripts/rule-metric-names.py --metrics=scrape.txt [--rules=...]            # check; exit 1 if missing

Names come from every rule's `expr` and from the PromQL queries and metric names inside alert annotations
(only names starting with td_pz_ are taken from annotations). Left out: the outputs of the file's own
recording rules, `up`, `ALERTS`, `ALERTS_FOR_STATE`, PromQL functions, keywords and label names.

A name is present when the scrape has a sample or a `# TYPE`/`# HELP` line with that name; a name ending in
_bucket, _sum or _count is also present when its base name (the histogram's) is.

The scrape file is the text of GET /metrics of a running exporter (e.g. against its simulator), so that a
rule never refers to a metric the exporter does not export. No promtool needed; needs PyYAML.
"""

import argparse
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "start", "end", "atan2"}
ALWAYS_PRESENT = {"up", "ALERTS", "ALERTS_FOR_STATE"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def strip_strings_and_matchers(expr):
    """Drop string literals and {label matchers}; return the rest and any {__name__="..."} names."""
    out, names, i, depth, matcher = [], [], 0, 0, []
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            literal = expr[i + 1:j]
            if depth:
                matcher.append(f'"{literal}"')
            else:
                out.append(" ")
            i = j + 1
            continue
        if c == "{":
            depth += 1
            matcher = []
        elif c == "}":
            depth = max(0, depth - 1)
            m = re.search(r'__name__\s*=\s*"([^"]*)"', "".join(matcher))
            if m:
                names.append(m.group(1))
            out.append(" ")
        elif depth:
            matcher.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out), names


def expr_names(expr):
    rest, names = strip_strings_and_matchers(expr)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)                                    # ranges, subqueries
    rest = re.sub(r"\boffset\s+-?[0-9a-zA-Z]+", " ", rest)                     # offset 1d
    rest = re.sub(r"@\s*(start\(\)|end\(\)|[0-9.]+)", " ", rest)               # @ modifier
    rest = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
    for m in NAME.finditer(rest):
        word = m.group(0)
        if word.lower() in KEYWORDS or re.match(r"\s*\(", rest[m.end():]):
            continue                                                           # keyword, function
        names.append(word)
    return names


def template_names(text):
    """td_pz_* names in annotation text and in the PromQL of its `query` calls."""
    return [w for w in NAME.findall(text) if w.startswith("td_pz_")]


def rule_names(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    rules = [r for g in doc["groups"] for r in g["rules"]]
    records = {r["record"] for r in rules if "record" in r}
    used = {}
    for r in rules:
        who = r.get("record") or r.get("alert")
        found = expr_names(r["expr"])
        for v in (r.get("annotations") or {}).values():
            found += template_names(str(v))
        for n in found:
            if n in records or n in ALWAYS_PRESENT:
                continue
            used.setdefault(n, set()).add(who)
    return used


def scrape_names(path):
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 3 and parts[1] in ("TYPE", "HELP"):
                    names.add(parts[2])
                continue
            m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if m:
                names.add(m.group(0))
    return names


def present(name, scraped):
    if name in scraped:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in scraped:
            return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", default=os.path.join(ROOT, "alerts", "td-pz-rules.yaml"))
    ap.add_argument("--metrics", help="a /metrics scrape of the exporter to check the names against")
    a = ap.parse_args()

    used = rule_names(a.rules)
    if not a.metrics:
        for n in sorted(used):
            print(f"{n}\t{', '.join(sorted(used[n]))}")
        return 0

    scraped = scrape_names(a.metrics)
    if not scraped:
        print(f"rule-metric-names: {a.metrics} holds no metric at all", file=sys.stderr)
        return 1
    missing = sorted(n for n in used if not present(n, scraped))
    if missing:
        print(f"rule-metric-names: {len(missing)} metric name(s) used by {os.path.relpath(a.rules, ROOT)} "
              f"are not in {a.metrics}:", file=sys.stderr)
        for n in missing:
            print(f"  {n}  (used by {', '.join(sorted(used[n]))})", file=sys.stderr)
        return 1
    print(f"rule-metric-names: all {len(used)} metric names used by the rules are in {a.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
