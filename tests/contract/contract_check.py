#!/usr/bin/env python3
"""Holds recorded simulator exchanges to TD's OpenAPI documents, with openapi-core.

Reads JSONL files written by the simulator (`TD_PZ_SIM_RECORD` or `simulate --record=FILE`), one
exchange a line. Each p13n `POST /{database}/{table}` (p13n-api.yml) and discovery `GET
/audiences/{audienceId}/realtime_personalization_services` (cdp-api.yml) exchange has its request
and, unless a fault was injected, its response validated against the document with overlay.yaml
applied. Everything else must be covered by an entry of allowlist.yaml. Prints per-operation counts,
the allow-list with the exchanges each entry covered and the first errors; exits 1 on any error
or when no p13n or no discovery exchange was validated.

    contract_check.py [--spec-dir DIR] [--max-errors N] FILE.jsonl...

It must not loosen a check to make an exchange pass: a document defect is fixed in overlay.yaml
with its reason, and an exchange no document describes goes on the allow-list with its reason.
"""

import argparse
import copy
import json
import os
import re
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qsl

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.testing import MockRequest, MockResponse

HERE = Path(__file__).resolve().parent
DEFAULT_SPEC_DIR = Path(
    os.environ.get("TD_PZ_SPEC_DIR", HERE.parent.parent.parent / "shared" / "spec" / "openapi")
)
OVERLAY = HERE / "overlay.yaml"
ALLOWLIST = HERE / "allowlist.yaml"
P13N_MEDIA_TYPE = "application/vnd.treasuredata.v1+json"


@dataclass(frozen=True)
class Operation:
    name: str
    doc: str
    method: str
    template: str

    def matches(self, path):
        return re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", self.template), path) is not None


OPERATIONS = {
    "p13n": Operation("p13n", "p13n-api.yml", "post", "/{database}/{table}"),
    "discovery": Operation(
        "discovery",
        "cdp-api.yml",
        "get",
        "/audiences/{audienceId}/realtime_personalization_services",
    ),
}
EXCHANGE_KEYS = ("method", "path", "query", "headers", "request_body", "status",
                 "response_headers", "response_body", "endpoint", "fault")


# ---- documents and the overlay -----------------------------------------------------------------

def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_docs(spec_dir=DEFAULT_SPEC_DIR):
    return {name: load_yaml(Path(spec_dir) / name) for name in ("p13n-api.yml", "cdp-api.yml")}


def pointer_parts(pointer):
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def resolve(doc, node):
    """Follows a local `$ref` (one level is all these documents need)."""
    if isinstance(node, dict) and "$ref" in node:
        return get(doc, node["$ref"].strip().lstrip("#"))
    return node


def step(node, part):
    return node[int(part)] if isinstance(node, list) else node[part]


def get(doc, pointer):
    node = doc
    for part in pointer_parts(pointer):
        node = step(node, part)
    return node


def merge_allof(doc, node):
    parts = [resolve(doc, p) for p in node["allOf"]]
    merged = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    for part in parts:
        if part.get("type", "object") != "object":
            raise ValueError(f"merge_allof: a part is not an object schema: {part}")
        merged["properties"].update(copy.deepcopy(part.get("properties", {})))
        merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
    return merged


def apply_overlay(docs, overlay_path=OVERLAY):
    """Returns patched copies of `docs` and the (doc, pointer) pairs the overlay touched."""
    docs = copy.deepcopy(docs)
    touched = []
    for fix in load_yaml(overlay_path):
        doc = docs[fix["doc"]]
        *parent_parts, last = pointer_parts(fix["pointer"])
        parent = doc
        for part in parent_parts:
            parent = step(parent, part)
        op = fix["op"]
        if op == "add" and last in parent:
            raise ValueError(f"overlay add: {fix['pointer']} exists already")
        if op in ("replace", "merge_allof") and last not in parent:
            raise ValueError(f"overlay {op}: {fix['pointer']} does not exist")
        if op == "merge_allof":
            parent[last] = merge_allof(doc, parent[last])
        elif op in ("add", "replace"):
            parent[last] = copy.deepcopy(fix["value"])
        else:
            raise ValueError(f"overlay: unknown op {op!r}")
        touched.append((fix["doc"], fix["pointer"]))
    return docs, touched


def declared_query(doc, op):
    item = doc["paths"][op.template]
    params = [resolve(doc, p) for p in item.get("parameters", []) + item[op.method].get("parameters", [])]
    return {p["name"] for p in params if p["in"] == "query"}


class Contract:
    """The documented operations, ready to validate exchanges."""

    def __init__(self, docs):
        self.docs = docs
        # The p13n media type is JSON (RFC 6839 `+json`); openapi-core only knows it by name, so it
        # gets openapi-core's own JSON deserializer.
        config = Config(extra_media_type_deserializers={P13N_MEDIA_TYPE: json_loads})
        self.apps = {name: OpenAPI.from_dict(doc, config=config) for name, doc in docs.items()}
        self.hosts = {name: doc["servers"][0]["url"] for name, doc in docs.items()}

    def request(self, op, x):
        """The recorded request; the host is the document's first server (the recording's is
        loopback), the path stays percent-encoded as received."""
        return MockRequest(
            self.hosts[op.doc], x["method"], x["path"],
            args=parse_qsl(x["query"] or "", keep_blank_values=True),
            headers=x["headers"], data=(x["request_body"] or "").encode(),
            content_type=x["headers"].get("content-type", ""),
        )

    def request_errors(self, op, x):
        if not op.matches(x["path"]) or x["method"].lower() != op.method:
            return [f"{x['method']} {x['path']} is not {op.method.upper()} {op.template}"]
        query = parse_qsl(x["query"] or "", keep_blank_values=True)
        errors = [describe(e) for e in self.apps[op.doc].iter_request_errors(self.request(op, x))]
        # Not an error to OpenAPI, but TD ignores a parameter it does not declare: a client that
        # pages with one would read the first page again and again.
        declared = declared_query(self.docs[op.doc], op)
        errors += [f"query parameter {k!r} is not declared (declared: {sorted(declared)})"
                   for k, _ in query if k not in declared]
        return errors

    def response_errors(self, op, x):
        if x["response_body"] is None:
            return ["the response body was not recorded (streamed) although no fault was injected"]
        headers = {k.lower(): v for k, v in (x["response_headers"] or {}).items()}
        req = self.request(op, x)
        resp = MockResponse(x["response_body"].encode(), status_code=x["status"],
                            headers=headers, content_type=headers.get("content-type", ""))
        return [describe(e) for e in self.apps[op.doc].iter_response_errors(req, resp)]


def load_contract(spec_dir=DEFAULT_SPEC_DIR, overlay_path=OVERLAY):
    docs, _ = apply_overlay(load_docs(spec_dir), overlay_path)
    return Contract(docs)


def describe(exc):
    """One line for an openapi-core error and its causes; a schema error gives its place and
    message instead of the whole value."""
    words, seen = [], exc
    while seen is not None:
        errors = getattr(seen, "schema_errors", None) or []
        text = str(seen).strip()
        if seen.__cause__ is not None and text.endswith(str(seen.__cause__).strip()):
            text = ""  # a wrapper that only repeats its cause
        lines = [f"at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                 for e in errors] or [text[:300]]
        words += [w for w in lines if w and w not in words]
        seen = seen.__cause__
    return f"{type(exc).__name__}: " + "; ".join(words)


# ---- the allow-list ----------------------------------------------------------------------------

@dataclass
class Entry:
    id: str
    what: str
    why: str
    match: dict
    covers: str
    count: int = 0

    def applies(self, x):
        m = self.match
        return (("endpoint" not in m or x["endpoint"] in m["endpoint"])
                and ("fault" not in m or x["fault"] == m["fault"])
                and ("status" not in m or x["status"] in m["status"])
                and ("method" not in m or x["method"] in m["method"]))


def load_allowlist(path=ALLOWLIST):
    entries = [Entry(**e) for e in load_yaml(path)]
    for e in entries:
        if e.covers not in ("exchange", "response", "refused"):
            raise ValueError(f"{path}: entry {e.id}: covers must be exchange, response or refused")
    return entries


def first(entries, covers, x):
    return next((e for e in entries if e.covers == covers and e.applies(x)), None)


# ---- the check ---------------------------------------------------------------------------------

@dataclass
class Tally:
    requests_valid: int = 0
    requests_refused: int = 0
    requests_invalid: int = 0
    responses_valid: int = 0
    responses_invalid: int = 0


@dataclass
class Result:
    exchanges: int = 0
    tallies: dict = field(default_factory=lambda: {n: Tally() for n in OPERATIONS})
    errors: list = field(default_factory=list)
    entries: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.errors and not self.missing()

    def missing(self):
        return [n for n, t in self.tallies.items() if t.requests_valid == 0]


def read_exchanges(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield f"{path}:{n}", line


def check(contract, entries, paths):
    result = Result(entries=entries)
    for where, line in read_exchanges(paths):
        result.exchanges += 1
        try:
            x = json.loads(line)
        except ValueError as e:
            result.errors.append(f"{where}: not JSON: {e}")
            continue
        absent = [k for k in EXCHANGE_KEYS if k not in x] if isinstance(x, dict) else ["all"]
        if absent:
            result.errors.append(f"{where}: not an exchange, keys missing: {absent}")
            continue
        check_one(contract, entries, result, where, x)
    return result


def check_one(contract, entries, result, where, x):
    label = f"{where}: {x['endpoint']} {x['method']} {x['path']} -> {x['status']}"
    whole = first(entries, "exchange", x)
    if whole:
        whole.count += 1
        return
    op = OPERATIONS.get(x["endpoint"])
    if op is None:
        result.errors.append(f"{label}: no documented operation and no allow-list entry")
        return
    tally = result.tallies[op.name]
    errors = contract.request_errors(op, x)
    if not errors:
        tally.requests_valid += 1
    else:
        refused = first(entries, "refused", x)
        if refused and not 200 <= x["status"] < 300:
            refused.count += 1
            tally.requests_refused += 1
        else:
            tally.requests_invalid += 1
            result.errors.append(f"{label}: request: " + " | ".join(errors))
    skip = first(entries, "response", x)
    if skip:
        skip.count += 1
        return
    errors = contract.response_errors(op, x)
    if not errors:
        tally.responses_valid += 1
    else:
        tally.responses_invalid += 1
        result.errors.append(f"{label}: response: " + " | ".join(errors))


def report(result, max_errors, out=None):
    p = lambda *a: print(*a, file=out or sys.stdout)  # noqa: E731
    p(f"contract: {result.exchanges} exchanges; openapi-core {version('openapi-core')}, "
      f"documents with {OVERLAY.name}")
    for name, t in result.tallies.items():
        op = OPERATIONS[name]
        p(f"  {name:<10} {op.method.upper()} {op.template}")
        p(f"  {'':<10} requests: {t.requests_valid} valid, {t.requests_refused} invalid and refused, "
          f"{t.requests_invalid} invalid; responses: {t.responses_valid} valid, "
          f"{t.responses_invalid} invalid")
    p(f"allow-list ({ALLOWLIST.name}): exchanges not held to a document")
    for e in result.entries:
        p(f"  {e.count:>6}  {e.id} [{e.covers}]: {e.what}")
        p(f"          why: {e.why}")
    for name in result.missing():
        p(f"contract: no valid {name} request was recorded (a broken or empty recording?)")
    if result.errors:
        p(f"contract: {len(result.errors)} invalid; the first {min(max_errors, len(result.errors))}:")
        for err in result.errors[:max_errors]:
            p(f"  {err}")
    p("contract: ok" if result.ok else "contract: FAILED")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--spec-dir", type=Path, default=DEFAULT_SPEC_DIR)
    ap.add_argument("--max-errors", type=int, default=20)
    args = ap.parse_args(argv)
    result = check(load_contract(args.spec_dir), load_allowlist(), args.files)
    report(result, args.max_errors)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
