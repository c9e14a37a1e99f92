"""Both sides of contract_check.py, without the Rust code: the overlay changes what it says and
nothing else, hand-written exchanges that keep the contract pass, and each one-defect fixture fails
with its own error. Run by scripts/contract-test.sh (pytest in target/contract/venv)."""

import copy
import json
from pathlib import Path

import pytest

import contract_check as cc

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DISCOVERY = cc.OPERATIONS["discovery"]
P13N = cc.OPERATIONS["p13n"]


@pytest.fixture(scope="module")
def raw():
    return cc.load_docs()


@pytest.fixture(scope="module")
def patched(raw):
    return cc.apply_overlay(raw)


@pytest.fixture(scope="module")
def contract(patched):
    return cc.Contract(patched[0])


@pytest.fixture(scope="module")
def raw_contract(raw):
    return cc.Contract(raw)


def exchange(name, line=0):
    return json.loads((FIXTURES / name).read_text().splitlines()[line])


def run(contract, *names):
    return cc.check(contract, cc.load_allowlist(), [FIXTURES / n for n in names])


def lookup(doc, pointer):
    try:
        return cc.get(doc, pointer)
    except KeyError:
        return "absent"


def delete(doc, pointer):
    *parents, last = cc.pointer_parts(pointer)
    node = doc
    for p in parents:
        node = cc.step(node, p)
    node.pop(last, None)


# ---- the overlay -------------------------------------------------------------------------------

def test_the_overlay_changes_its_pointers_and_nothing_else(raw, patched):
    docs, touched = patched
    assert [p for _, p in touched] == [
        "/paths/~1audiences~1{audienceId}~1realtime_personalization_services/get/responses/200"
        "/content/application~1json/schema/allOf/1/properties/data/items",
        "/components/securitySchemes/td1",
        "/paths/~1{database}~1{table}/post/responses/204",
    ]
    for doc, pointer in touched:
        assert lookup(raw[doc], pointer) != cc.get(docs[doc], pointer), pointer
    a, b = copy.deepcopy(raw), copy.deepcopy(docs)
    for doc, pointer in touched:
        delete(a[doc], pointer)
        delete(b[doc], pointer)
    assert a == b


def test_the_shared_copies_are_not_edited(raw):
    assert cc.load_docs() == raw  # apply_overlay worked on a copy


def test_the_merged_item_is_the_union_of_the_three_parts(patched):
    item = cc.get(patched[0]["cdp-api.yml"], touched_item_pointer(patched))
    assert set(item["properties"]) == {"id", "name", "description", "public", "tokens",
                                       "createdBy", "updatedBy", "createdAt", "updatedAt"}
    assert item["required"] == ["id", "name", "description", "public", "tokens"]
    assert item["additionalProperties"] is False


def touched_item_pointer(patched):
    return patched[1][0][1]


def test_a_real_item_fails_the_raw_copy_and_passes_with_the_overlay(contract, raw_contract):
    x = exchange("valid.jsonl", 8)
    assert x["endpoint"] == "discovery" and len(json.loads(x["response_body"])["data"]) == 2
    raw_errors = raw_contract.response_errors(DISCOVERY, x)
    assert any("Additional properties are not allowed" in e for e in raw_errors), raw_errors
    assert contract.response_errors(DISCOVERY, x) == []


def test_an_unknown_item_property_is_still_refused(contract):
    errors = contract.response_errors(DISCOVERY, exchange("invalid-discovery-extra-property.jsonl"))
    assert errors == ["InvalidData: at data/0: Additional properties are not allowed "
                      "('secret' was unexpected)"]


def test_td1_fails_the_raw_copy_and_passes_with_the_overlay(contract, raw_contract):
    x = exchange("valid.jsonl", 0)
    assert x["headers"]["authorization"].startswith("TD1 ")
    assert any("Security not found" in e for e in raw_contract.request_errors(P13N, x))
    assert contract.request_errors(P13N, x) == []
    bearer = exchange("invalid-p13n-bearer.jsonl")
    assert bearer["headers"]["authorization"].startswith("Bearer ")
    assert contract.request_errors(P13N, bearer) != []


def test_204_fails_the_raw_copy_and_passes_with_the_overlay(contract, raw_contract):
    x = exchange("valid.jsonl", 2)
    assert x["status"] == 204
    assert any("Unknown response http status: 204" in e for e in raw_contract.response_errors(P13N, x))
    assert contract.response_errors(P13N, x) == []


# ---- exchanges that keep the contract ----------------------------------------------------------

def test_the_valid_fixture_passes_with_exact_counts(contract):
    r = run(contract, "valid.jsonl")
    assert r.errors == [] and r.ok
    assert r.exchanges == 12
    p, d = r.tallies["p13n"], r.tallies["discovery"]
    assert (p.requests_valid, p.requests_refused, p.requests_invalid) == (7, 1, 0)
    assert (p.responses_valid, p.responses_invalid) == (7, 0)  # one faulted answer skipped
    assert (d.requests_valid, d.requests_invalid, d.responses_valid) == (2, 0, 2)
    counts = {e.id: e.count for e in r.entries}
    assert counts == {"cdp-personalize": 1, "cdp-metrics": 0, "cdp-logs": 0, "p13n-public": 1,
                      "unknown-route": 0, "faulted-response": 1, "undeclared-refusal": 0,
                      "refused-invalid-request": 1, "undocumented-method": 0,
                      "discovery-page-size-refusal": 0}


# ---- each defect, caught -----------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("invalid-p13n-no-uuid.jsonl", "request: InvalidRequestBody: at (root): 'uuid' is a required property"),
    ("invalid-p13n-error-code.jsonl", "response: InvalidData: at code: 1234 is not one of [3000,"),
    ("invalid-p13n-bearer.jsonl", "request: SecurityValidationError: Security not found"),
    ("invalid-p13n-no-token.jsonl", "request: SecurityValidationError: Security not found"),
    ("invalid-p13n-content-type.jsonl", "Content for the following mimetype not found: application/json"),
    ("invalid-discovery-extra-property.jsonl", "Additional properties are not allowed ('secret' was unexpected)"),
    ("invalid-discovery-no-public.jsonl", "at data/0: 'public' is a required property"),
    ("invalid-discovery-no-next-page.jsonl", "at pagination: 'nextPage' is a required property"),
    ("invalid-discovery-page-size.jsonl", "5000.0 is greater than the maximum of 1000"),
    ("invalid-discovery-undeclared-query.jsonl", "query parameter 'page' is not declared"),
    ("invalid-unlisted-endpoint.jsonl", "p13n_v2 POST /rt_events/web_personalization -> 200: "
                                        "no documented operation and no allow-list entry"),
])
def test_each_invalid_fixture_fails_with_its_error(contract, name, expected):
    r = run(contract, "valid.jsonl", name)
    assert not r.ok
    assert len(r.errors) == 1, r.errors
    assert r.errors[0].startswith(f"{FIXTURES / name}:1: ") and expected in r.errors[0], r.errors[0]


def test_a_recording_without_p13n_or_discovery_fails(contract, tmp_path):
    only_allowed = tmp_path / "x.jsonl"
    only_allowed.write_text((FIXTURES / "valid.jsonl").read_text().splitlines()[-1] + "\n")
    r = cc.check(contract, cc.load_allowlist(), [only_allowed])
    assert r.errors == [] and r.missing() == ["p13n", "discovery"] and not r.ok
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cc.check(contract, cc.load_allowlist(), [empty]).missing() == ["p13n", "discovery"]


def test_lines_that_are_not_exchanges_fail(contract, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"method": "GET"\n{"method": "GET"}\n')
    r = cc.check(contract, cc.load_allowlist(), [f])
    assert len(r.errors) == 2
    assert r.errors[0].startswith(f"{f}:1: not JSON")
    assert r.errors[1].startswith(f"{f}:2: not an exchange, keys missing: ['path',")


def test_main_exits_0_on_valid_and_1_on_invalid(capsys):
    assert cc.main([str(FIXTURES / "valid.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "       1  p13n-public [exchange]" in out and out.rstrip().endswith("contract: ok")
    assert cc.main([str(FIXTURES / "valid.jsonl"), str(FIXTURES / "invalid-p13n-no-uuid.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "contract: 1 invalid; the first 1:" in out and out.rstrip().endswith("contract: FAILED")


def test_no_allow_list_entry_excuses_an_invalid_request_answered_2xx(contract):
    loose = [cc.Entry(id="loose", what="", why="", match={"endpoint": ["p13n"]}, covers="refused")]
    r = cc.check(contract, loose, [FIXTURES / "invalid-p13n-no-uuid.jsonl"])
    assert loose[0].count == 0 and r.tallies["p13n"].requests_invalid == 1
    assert "'uuid' is a required property" in r.errors[0]


def test_media_type_parameters_are_accepted_and_a_malformed_body_is_not(contract):
    x = exchange("valid.jsonl", 0)
    x["headers"]["content-type"] += "; charset=utf-8"
    x["response_headers"]["content-type"] = "application/json; charset=utf-8"
    assert contract.request_errors(P13N, x) == [] and contract.response_errors(P13N, x) == []
    x["request_body"] = '{"time": 1700760737, '
    assert ["Failed to deserialize" in e for e in contract.request_errors(P13N, x)] == [True]


def test_a_request_without_a_key_refused_401_passes_and_answered_200_fails(contract, tmp_path):
    x = exchange("valid.jsonl", 8)
    del x["headers"]["authorization"]
    refused = dict(x, status=401, response_body='{"error": "Unauthorized"}')
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps(refused) + "\n" + json.dumps(x) + "\n")
    r = cc.check(contract, cc.load_allowlist(), [f])
    counts = {e.id: e.count for e in r.entries}
    assert (counts["refused-invalid-request"], counts["undeclared-refusal"]) == (1, 1)
    assert r.tallies["discovery"].requests_refused == 1
    assert len(r.errors) == 1 and r.errors[0].startswith(f"{f}:2: ") and "Security not found" in r.errors[0]
