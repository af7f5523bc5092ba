"""sisock-http's InfluxDB API as Grafana and curl use it: ping, GET and POST, credentials (basic auth,
the token, InfluxDB's u/p), the read-only rule, the caps, a data node that fails mid-query, chunked
and pretty answers, and text that never makes it answer 5xx (real router, hub, weather server,
a failing node)."""
from __future__ import annotations

import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sisock.servers.weather_example import generate
from tests.support import Process, Processes, free_port, wait_until

USER, PASSWORD, TOKEN = "grafana", "s3cret-pass", "tok-123456"
DB = "ocs_feeds"
MAX_POINTS = 500


class Api:
    """The /influxdb of one sisock-http."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/influxdb"

    def call(self, path: str, params: Optional[Dict[str, str]] = None, auth: Optional[Tuple[str, str]] = None,
             data: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
             method: Optional[str] = None) -> Tuple[int, dict, bytes]:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        head = dict(headers or {})
        if auth is not None:
            head["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req = urllib.request.Request(url, data=data, headers=head, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def query(self, q: str, **params: str) -> Tuple[int, dict]:
        status, _, body = self.call("/query", dict({"db": DB, "q": q}, **params), auth=(USER, PASSWORD))
        return status, json.loads(body)


@pytest.fixture(scope="module")
def api(router, tmp_path_factory):
    root = tmp_path_factory.mktemp("influx-http")
    generate(root / "weather", end=time.time(), days=2)
    procs = Processes(router.env)
    try:
        procs.start("hub").wait_for("hub ready")
        procs.start("weather", env={"DATA_DIRECTORY": str(root / "weather")}).wait_for("added data node")
        failing = Process([sys.executable, str(Path(__file__).parent / "nodes" / "failing_node.py")], router.env,
                          "failing_node")
        procs.running.append(failing)
        failing.wait_for("added data node failing_node")
        port = free_port()
        procs.start("http", env={"PORT": str(port), "HTTP_USER": USER, "HTTP_PASSWORD": PASSWORD,
                                 "HTTP_TOKEN": TOKEN, "INFLUXDB_MAX_SELECT_POINT": str(MAX_POINTS)}).wait_for(
            "serving Grafana datasources")
        it = Api(port)
        wait_until(lambda: "apex_archive" in json.dumps(it.query("SHOW MEASUREMENTS")[1]), 30, "the weather node")
        yield it
    finally:
        procs.stop_all()


def test_ping_answers_204_with_the_version(api):
    status, headers, body = api.call("/ping")
    assert status == 204 and body == b"" and headers["X-Influxdb-Version"].startswith("1.")
    assert api.call("/ping", method="HEAD")[0] == 204


def test_get_and_post_as_grafana_sends_them(api):
    status, body = api.query('SELECT last("apex_temperature") FROM "apex_archive"', epoch="ms")
    assert status == 200 and isinstance(body["results"][0]["series"][0]["values"][0][0], int)
    form = urllib.parse.urlencode({"q": 'SELECT count("apex_temperature") FROM "apex_archive"'}).encode()
    status, _, raw = api.call("/query", {"db": DB, "epoch": "ms"}, auth=(USER, PASSWORD), data=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(raw)["results"][0]["series"][0]["values"][0][1] > 10
    # q in the URL of a POST works too
    status, _, raw = api.call("/query", {"db": DB, "q": "SHOW DATABASES"}, auth=(USER, PASSWORD), data=b"")
    assert status == 200 and json.loads(raw)["results"][0]["series"][0]["values"] == [[DB]]


def test_the_server_timing_header_says_where_a_querys_time_went(api):
    """What a panel's request cost, as the browser's developer tools show it: parse, execute (with the
    statements' waits on the data nodes), encode; the kept runs' share first."""
    q = "; ".join(f'SELECT {fn}("apex_temperature") FROM "apex_archive" WHERE time > now() - 1h GROUP BY time(1m)'
                  for fn in ("mean", "max"))
    status, headers, raw = api.call("/query", {"db": DB, "q": q, "epoch": "ms"}, auth=(USER, PASSWORD))
    assert status == 200 and len(json.loads(raw)["results"]) == 2
    timing = headers["Server-Timing"]
    assert timing.startswith('kept;desc="'), timing
    steps = dict(part.split(";dur=") for part in timing.split(", ")[1:])
    assert list(steps) == ["parse", "execute", "data", "encode"]
    assert 0 < float(steps["data"]) <= float(steps["execute"]) * 2  # two statements' waits, added up
    status, headers, _ = api.call("/query", {"db": DB, "q": "SELEC"}, auth=(USER, PASSWORD))
    assert status == 400 and "execute" not in headers.get("Server-Timing", "")


def test_credentials_as_influxdb_and_as_sisock_take_them(api):
    q = {"db": DB, "q": "SHOW MEASUREMENTS"}
    status, headers, raw = api.call("/query", q)
    assert status == 401 and json.loads(raw) == {"error": "unable to parse authentication credentials"}
    assert "www-authenticate" in {k.lower() for k in headers}
    assert api.call("/query", q, auth=(USER, "wrong"))[0] == 401
    assert json.loads(api.call("/query", dict(q, u=USER, p="wrong"))[2]) == {"error": "authorization failed"}
    assert api.call("/query", dict(q, u=USER, p=PASSWORD))[0] == 200
    assert api.call("/query", q, auth=(USER, PASSWORD))[0] == 200
    assert api.call("/query", q, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert api.call("/query", q, headers={"Authorization": "Bearer nope"})[0] == 401


@pytest.mark.parametrize("statement, needs", [
    ("DROP MEASUREMENT apex_archive", "requires admin privilege"),
    ("CREATE DATABASE other", "requires admin privilege"),
    ("DELETE FROM apex_archive", "requires WRITE on ocs_feeds"),
    ('SELECT * INTO "copy" FROM "apex_archive"', "requires WRITE on ocs_feeds"),
    ("DROP SERIES FROM apex_archive", "requires WRITE on ocs_feeds"),
    ("KILL QUERY 1", "requires admin privilege"),
])
def test_statements_that_would_change_anything_are_refused_as_influxdb_refuses_a_reader(api, statement, needs):
    status, body = api.query(statement)
    assert status == 403 and body["error"].startswith(f"error authorizing query: {USER} not authorized to execute")
    assert needs in body["error"]
    status, body = api.query('SELECT count("apex_temperature") FROM "apex_archive"')  # nothing changed
    assert status == 200 and body["results"][0]["series"][0]["values"][0][1] > 10


def test_a_query_that_does_not_parse_is_a_400_in_influxdbs_words(api):
    status, body = api.query("SELECT FROM")
    assert status == 400 and body == {"error": "error parsing query: found FROM, expected identifier, string, "
                                               "number, bool at line 1, char 8"}
    status, _, raw = api.call("/query", {"db": DB}, auth=(USER, PASSWORD))
    assert status == 400 and json.loads(raw) == {"error": 'missing required parameter "q"'}


def test_the_sample_cap_is_a_statement_error_and_aggregates_need_no_samples(api):
    status, body = api.query('SELECT "apex_radiometer" FROM "apex_archive" WHERE time > now() - 2d')
    assert status == 200 and body["results"][0]["error"].startswith("max-select-point limit exceeed: (")
    assert f"/{MAX_POINTS})" in body["results"][0]["error"]
    status, body = api.query('SELECT max("apex_radiometer") FROM "apex_archive" WHERE time > now() - 2d')
    assert status == 200 and "series" in body["results"][0]


def test_a_failing_data_node_is_that_statements_error_naming_it(api):
    status, body = api.query('SELECT mean("broken") FROM "failing_node" WHERE time > now() - 1h; '
                             'SELECT count("apex_temperature") FROM "apex_archive" WHERE time > now() - 1h')
    assert status == 200
    assert "failing_node" in body["results"][0]["error"] and "unreadable" in body["results"][0]["error"]
    assert body["results"][1]["series"][0]["values"][0][1] > 0  # the next statement still runs


def test_chunked_and_pretty_answers_as_influxdb_writes_them(api):
    q = 'SELECT "apex_radiometer" FROM "apex_archive" WHERE time > now() - 1h'
    status, _, raw = api.call("/query", {"db": DB, "q": q, "chunked": "true", "chunk_size": "7"}, auth=(USER, PASSWORD))
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert status == 200 and len(lines) > 2
    assert all(line["results"][0]["partial"] is True for line in lines[:-1])
    assert "partial" not in lines[-1]["results"][0]
    assert all(len(line["results"][0]["series"][0]["values"]) == 7 for line in lines[:-1])
    whole = api.query(q)[1]["results"][0]["series"][0]["values"]
    assert [v for line in lines for v in line["results"][0]["series"][0]["values"]] == whole
    status, _, raw = api.call("/query", {"db": DB, "q": "SHOW DATABASES", "pretty": "true"}, auth=(USER, PASSWORD))
    assert raw.decode().startswith('{\n    "results": [\n        {\n')


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=80),
    st.sampled_from(['SELECT mean("apex_temperature") FROM "apex_archive" WHERE time > now() - 1h GROUP BY time(1m)',
                     "SHOW TAG VALUES WITH KEY = feed", 'SELECT * FROM /.*/ LIMIT 3']).flatmap(
        lambda q: st.integers(0, len(q)).flatmap(lambda i: st.text(max_size=5).map(lambda s: q[:i] + s + q[i:])))))
def test_any_text_is_answered_without_a_server_error(api, text):
    status, _, raw = api.call("/query", {"db": DB, "q": text}, auth=(USER, PASSWORD))
    assert status in (200, 400, 403), (status, raw[:300])  # 403: a statement a read-only user may not run
    body = json.loads(raw)
    assert ("results" in body) if status == 200 else ("error" in body)
    assert status != 403 or "not authorized" in body["error"]
