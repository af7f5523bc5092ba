"""Conformance: every endpoint of the JSON datasource's OpenAPI file answers in the documented shape,
and no request, generated from the file's schemas or arbitrary, makes the server fail."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http_support import iso, query

#: The plugin's own API file, copied into the repository (its source and licence are in its header).
SPEC_FILE = Path(__file__).resolve().parents[1] / "docs" / "grafana-json-datasource-openapi.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())


def _example(path: str) -> dict:
    return SPEC["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"]


def requests_for(now: float) -> dict:
    """(method, path) -> the request bodies sent to it: the file's own examples where it has them."""
    table = query(now - 7200, now, "apex_archive::apex_temperature")
    table["targets"][0]["type"] = "table"
    payload = query(now - 7200, now, "apex_archive::apex_pressure")
    payload["targets"][0]["payload"] = {"any": "thing"}
    return {
        ("get", "/"): [None],
        ("post", "/metrics"): [_example("/metrics"), {}],
        ("post", "/metric-payload-options"): [_example("/metric-payload-options")],
        ("post", "/query"): [query(now - 7200, now, "apex_archive::apex_temperature", "no_node::x"), table, payload],
        ("post", "/variable"): [{"payload": {"target": "apex"}, "range": query(now - 60, now)["range"]}],
        ("post", "/tag-keys"): [{}],
        ("post", "/tag-values"): [{"key": "City"}],
    }


def response_schema(path: str, method: str):
    """The 200 response's JSON schema (with the file's components), or None when it documents none.

    One correction: the file's table ``rows`` say "items: string or number" while its own example,
    and Grafana, use a list of rows, each a list of cells. We check rows against that.
    """
    content = SPEC["paths"][path][method]["responses"]["200"].get("content")
    if not content:
        return None
    schema = copy.deepcopy(content["application/json"]["schema"])
    if path == "/query":
        table = schema["items"]["anyOf"][1]
        cell = table["properties"]["rows"]["items"]
        table["properties"]["rows"]["items"] = {"type": "array", "items": cell}
    schema["components"] = SPEC["components"]
    return schema


def test_every_endpoint_answers_in_the_documented_shape(stack):
    sent = requests_for(stack.now)
    documented = {(method, path) for path, item in SPEC["paths"].items() for method in item}
    assert documented == set(sent), "the OpenAPI file and this test list different endpoints"
    for (method, path), bodies in sent.items():
        schema = response_schema(path, method)
        for body in bodies:
            status, answer, headers = stack.request(method.upper(), path, body)
            assert status == 200, (path, body, answer)
            assert headers["Content-Type"] == "application/json"
            if schema is not None:
                jsonschema.validate(answer, schema, cls=jsonschema.Draft7Validator)


def test_query_answer_has_both_shapes(stack):
    table = query(stack.now - 7200, stack.now, "apex_archive::apex_temperature", "apex_archive::apex_humidity")
    table["targets"][1]["type"] = "table"
    status, answer, _ = stack.request("POST", "/query", table)
    assert status == 200
    assert set(answer[0]) == {"target", "datapoints"} and answer[1]["type"] == "table"
    jsonschema.validate(answer, response_schema("/query", "post"), cls=jsonschema.Draft7Validator)


def test_errors_are_json_too(stack):
    for method, path, body in [("POST", "/query", {}), ("GET", "/nowhere", None), ("GET", "/query", None),
                               ("POST", "/search/extra", {})]:
        status, answer, headers = stack.request(method, path, body)
        assert status in (400, 404, 405) and headers["Content-Type"] == "application/json"
        assert isinstance(answer["error"], str) and answer["error"]


# Fuzzing: requests generated from the OpenAPI file's request schemas, and arbitrary JSON, on every endpoint ------

#: Examples per endpoint: about a minute for all of them on a 2-vCPU machine.
EXAMPLES = 500
#: Statuses a request may get; anything else (a 500 above all) is a failure.
EXPECTED = {200, 400, 404, 405, 413, 415}

#: Numbers of every size: beyond a float's range too (JSON has no limit).
NUMBERS = (st.integers() | st.floats(allow_nan=False)
           | st.sampled_from([2 ** 63, 2 ** 64, 10 ** 300, 10 ** 400, -10 ** 400]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


def from_schema(schema: dict) -> st.SearchStrategy:
    """Values of an OpenAPI schema (the subset the file uses: $ref, oneOf/anyOf, enum, the JSON types)."""
    if "$ref" in schema:
        return from_schema(SPEC["components"]["schemas"][schema["$ref"].rpartition("/")[2]])
    if "oneOf" in schema or "anyOf" in schema:
        return st.one_of([from_schema(s) for s in schema.get("oneOf", schema.get("anyOf"))])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = {k: from_schema(v) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({k: v for k, v in properties.items() if k in required},
                                     optional={k: v for k, v in properties.items() if k not in required})
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=4)
    if kind == "string":
        return st.datetimes().map(lambda d: d.isoformat() + "Z") if schema.get("format") == "date-time" \
            else st.text(max_size=30)
    return {"number": NUMBERS, "integer": st.integers() | st.sampled_from([2 ** 64, 10 ** 400]),
            "boolean": st.booleans()}.get(kind, JSON_VALUES)


def request_schema(path: str):
    """The OpenAPI schema of a path's request body; None when it has none."""
    body = SPEC["paths"][path]["post"].get("requestBody")
    return None if body is None else body["content"]["application/json"]["schema"]


def fuzzed_queries():
    """/query bodies near what Grafana sends, with any value in any place."""
    now = int(time.time())
    recent = st.integers(now - 86400, now).map(iso)
    times = st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30), JSON_VALUES, recent)
    window = st.one_of(st.fixed_dictionaries({"from": times, "to": times}),
                       st.tuples(recent, recent).map(sorted).map(lambda t: {"from": t[0], "to": t[1]}))
    targets = st.lists(st.fixed_dictionaries(
        {"target": st.one_of(st.sampled_from(["apex_archive::apex_temperature", "apex_archive::nothing",
                                              "no_node::x", "::", "a::b::c"]), st.text(max_size=30), JSON_VALUES)},
        optional={"type": st.sampled_from(["table", "timeseries", None]), "hide": JSON_VALUES,
                  "payload": JSON_VALUES}), max_size=5)
    return st.fixed_dictionaries({"range": window, "targets": targets},
                                 optional={"maxDataPoints": NUMBERS | JSON_VALUES, "intervalMs": NUMBERS | JSON_VALUES})


def bodies(path: str):
    """What the fuzzing sends to ``path``: the file's schema (if any), arbitrary JSON, and near-Grafana queries."""
    choices = [JSON_VALUES, st.dictionaries(st.sampled_from(["target", "range", "targets", "payload", "key"]),
                                            JSON_VALUES, max_size=3)]
    if path in SPEC["paths"] and request_schema(path) is not None:
        choices.append(from_schema(request_schema(path)))
    if path == "/query":
        choices.append(fuzzed_queries())
    return st.one_of(choices)


#: The JSON datasource's POST endpoints, plus SimpleJSON's own.
FUZZED = sorted({path for path, item in (SPEC or {"paths": {}})["paths"].items() if "post" in item}
                | {"/search", "/annotations"})


@pytest.mark.parametrize("path", FUZZED)
def test_no_request_makes_the_server_fail(stack, path):
    schema = response_schema(path, "post") if path in SPEC["paths"] else None
    statuses = {}
    began = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies(path))
    def check(body):
        raw = json.dumps(body).encode()
        status, answer, headers = stack.request("POST", path, raw=raw)
        statuses[status] = statuses.get(status, 0) + 1
        assert status in EXPECTED, (path, body, answer)
        assert headers["Content-Type"] == "application/json"
        if status == 200 and schema is not None:
            jsonschema.validate(answer, schema, cls=jsonschema.Draft7Validator)
        elif status != 200:
            assert isinstance(answer["error"], str) and answer["error"]

    check()
    print(f"\n{path}: {sum(statuses.values())} requests in {time.monotonic() - began:.1f} s, statuses {statuses}")
    assert stack.request("GET", "/")[0] == 200
