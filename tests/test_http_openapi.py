"""Conformance: every endpoint of the JSON datasource's OpenAPI file answers in the documented shape."""
from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from tests.http_support import query

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
