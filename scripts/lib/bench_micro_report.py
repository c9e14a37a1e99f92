"""Reads criterion's results (target/criterion/<group>/.../new/{benchmark,estimates}.json) of the
render, parse and schedule benches and prints them as a table with the ratios and goals of
scripts/bench-micro.sh."""

import json
import os
import sys

import benchlib as B

CRIT = os.path.join(B.ROOT, "target", "criterion")
GROUPS = ("scrape", "http", "parse", "schedule")


def load():
    out = {}
    for group in GROUPS:
        base = os.path.join(CRIT, group)
        for dirpath, _, files in os.walk(base):
            if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
                continue
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                meta = json.load(f)
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
            out[meta["full_id"]] = {
                "group": meta["group_id"], "function": meta.get("function_id"),
                "value": meta.get("value_str"), "ns": est["mean"]["point_estimate"],
                "median_ns": est["median"]["point_estimate"],
            }
    return out


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main():
    r = load()
    if not r:
        raise SystemExit("measurement failed: no criterion results under target/criterion")
    rep = B.Report("bench-micro")
    sizes = sorted({int(v["value"]) for v in r.values() if v["group"] == "scrape"})
    ten_k = None
    for n in sizes:
        render = r[f"scrape/render/{n}"]["ns"]
        copy = r[f"scrape/static_copy/{n}"]["ns"]
        rep.row(f"render, {n} series", fmt_ns(render), f"({render / n:.0f} ns/series)")
        rep.row(f"static copy, {n} series", fmt_ns(copy))
        rep.row(f"render / static copy, {n} series", render / copy, "x")
        h_r, h_s = r.get(f"http/render/{n}"), r.get(f"http/static/{n}")
        if h_r and h_s:
            rep.row(f"HTTP GET rendering, {n} series", fmt_ns(h_r["ns"]))
            rep.row(f"HTTP GET static bytes, {n} series", fmt_ns(h_s["ns"]))
            rep.row(f"HTTP render / static, {n} series", h_r["ns"] / h_s["ns"], "x")
        if 9_000 <= n <= 11_000:
            ten_k = (n, render, h_r["ns"] / h_s["ns"] if h_r and h_s else None, render / copy)
    for k, v in sorted(r.items()):
        if v["group"] in ("parse", "schedule"):
            rep.row(k, fmt_ns(v["ns"]))
    if ten_k:
        n, render, http_ratio, mem_ratio = ten_k
        rep.goal(f"scrape of {n} series < 10 ms", render < 10e6, fmt_ns(render))
        if http_ratio is not None:
            rep.goal("scrape / static (HTTP) < 5x", http_ratio < 5, f"{http_ratio:.1f}x (in-process copy: {mem_ratio:.0f}x)")
    else:
        rep.note("no ~10k-series result: goals not evaluated")
    rep.print()
    if len(sys.argv) > 1:
        rep.save(sys.argv[1])


if __name__ == "__main__":
    main()
