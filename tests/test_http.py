"""sisock-http with the real router, hub and weather server: what a Grafana panel relies on."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest
from twisted.internet import defer, reactor

from sisock import wamp
from tests.http_support import SPIKE_FIELD, SPIKE_VALUE, JsonHttp, query
from tests.support import free_port, wait_until

WEATHER = "apex_archive::apex_temperature"


def serve_node(client, name, get_data, fields=("value",)):
    """Register a data node from the test's own session and add it to the hub; return its get_data registration."""
    info = {f: {"description": f, "timeline": "tl", "type": "number", "units": "V"} for f in fields}
    client.register(wamp.get_fields_uri(name),
                    lambda start, end: [info, {"tl": {"interval": 1.0, "field": list(fields)}}])
    registration = client.register(wamp.get_data_uri(name), get_data)
    assert client.call(wamp.HUB_ADD, name, f"test node {name}", client.session._session_id) is True
    return registration


def answer(field, t, values):
    return {"data": {field: values}, "timeline": {"tl": {"t": t, "finalized_until": None, "fields": [field]}}}


def test_health_and_search(stack):
    status, body, _ = stack.request("GET", "/")
    assert status == 200 and "apex_archive" in body["data_nodes"]
    status, names, _ = stack.request("POST", "/search", {"target": "TEMP"})
    assert status == 200 and names == [WEATHER]
    # "; charset=..." is still JSON
    assert stack.request("POST", "/search", raw=b'{"target": "temp"}',
                         content_type="application/json; charset=utf-8")[1] == [WEATHER]
    status, everything, _ = stack.request("POST", "/search", {"target": ""})
    assert f"apex_archive::{SPIKE_FIELD}" in everything and "apex_archive::apex_windspeed" in everything


def test_each_time_format_gives_the_same_series(stack):
    start = datetime.fromtimestamp(stack.now - 7200, timezone.utc)
    end = datetime.fromtimestamp(stack.now, timezone.utc)
    chile = timezone(timedelta(hours=-3))
    forms = [(start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")),
             (start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), end.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
             (start.isoformat(), end.isoformat()),
             (start.astimezone(chile).isoformat(), end.astimezone(chile).isoformat())]
    series = []
    for frm, to in forms:
        status, body, _ = stack.request("POST", "/query",
                                        {"range": {"from": frm, "to": to}, "targets": [{"target": WEATHER}]})
        assert status == 200, body
        series.append(body[0]["datapoints"])
    assert series[0] and all(s == series[0] for s in series)
    assert all(stack.now - 7200 <= ms / 1000 < stack.now for _, ms in series[0])


def test_max_data_points_honoured_and_spike_kept(stack):
    for cap in (1000, 97, 10):
        status, body, headers = stack.request("POST", "/query", query(stack.now - 86400, stack.now,
                                                                        f"apex_archive::{SPIKE_FIELD}", max_points=cap))
        assert status == 200, body
        points = body[0]["datapoints"]
        assert 0 < len(points) <= cap
        assert max(v for v, _ in points) == SPIKE_VALUE
        assert [ms for _, ms in points] == sorted(ms for _, ms in points)
    assert "wamp;dur=" in headers["Server-Timing"]


def test_uncapped_query_returns_every_sample(stack):
    status, body, _ = stack.request("POST", "/query", {"range": query(stack.now - 600, stack.now)["range"],
                                                       "targets": [{"target": f"apex_archive::{SPIKE_FIELD}"}]})
    assert status == 200 and len(body[0]["datapoints"]) == 600


def test_table_format(stack):
    body = query(stack.now - 7200, stack.now, WEATHER)
    body["targets"][0]["type"] = "table"
    status, tables, _ = stack.request("POST", "/query", body)
    assert status == 200
    table = tables[0]
    assert table["type"] == "table"
    assert table["columns"] == [{"text": "Time", "type": "time"}, {"text": WEATHER, "type": "number"}]
    assert len(table["rows"]) == 2 and all(isinstance(ms, int) and isinstance(v, float) for ms, v in table["rows"])


def test_unknown_node_or_field_is_an_empty_series(stack):
    status, body, _ = stack.request("POST", "/query", query(stack.now - 7200, stack.now, "no_such_node::x",
                                                            "apex_archive::no_such_field", WEATHER))
    assert status == 200
    assert [s["target"] for s in body] == ["no_such_node::x", "apex_archive::no_such_field", WEATHER]
    assert body[0]["datapoints"] == [] and body[1]["datapoints"] == [] and len(body[2]["datapoints"]) == 2


@pytest.mark.parametrize("raw, problem", [
    (b"{not json", "not valid JSON"),
    (b'{"targets": [{"target": "apex_archive::apex_temperature"}]}', "range"),
    (b'{"range": {"from": "2025-11-10T00:00:00Z", "to": "2025-11-11T00:00:00Z"}}', "targets"),
    (b'{"range": {"from": "2025-11-10T00:00:00Z", "to": "2025-11-11T00:00:00Z"},'
     b' "targets": [{"target": "apex_temperature"}]}',
     "<data node>::<field>"),
    (b'{"range": {"from": "yesterday", "to": "2025-11-11T00:00:00Z"}, "targets": []}', "range.from"),
    (b'{"range": {"from": "2025-11-10T00:00:00", "to": "2025-11-11T00:00:00Z"}, "targets": []}', "time zone"),
    (b'{"range": {"from": "2025-11-10T00:00:00Z", "to": "2025-11-11T00:00:00Z"},'
     b' "maxDataPoints": "many", "targets": []}',
     "maxDataPoints"),
    (b'{"range": {"from": "1969-12-31T23:00:00Z", "to": "2025-11-11T00:00:00Z"}, "targets": []}', "after 1970"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
])
def test_malformed_query_is_400_naming_the_problem(stack, raw, problem):
    status, body, _ = stack.request("POST", "/query", raw=raw)
    assert status == 400 and problem in body["error"]


def test_nodes_are_queried_in_parallel_and_new_nodes_appear_in_search(stack, client):
    started = {}

    def barrier_node(name):
        def get_data(field, start, end, min_stride=None):
            # Answers only once both nodes have been called: a serial fan-out would time out (502).
            started[name] = defer.Deferred()
            if len(started) == 2:
                for d in started.values():
                    reactor.callLater(0, d.callback, None)
            done = started[name]
            done.addCallback(lambda _: answer(field[0], [stack.now - 60, stack.now - 30], [1.0, float(len(name))]))
            return done
        return get_data

    serve_node(client, "left_node", barrier_node("left_node"))
    serve_node(client, "right_node", barrier_node("right_node"))
    wait_until(lambda: "right_node::value" in stack.request("POST", "/search", {"target": "_node::"})[1], 15,
               "nodes added after the start to appear in /search")
    status, body, _ = stack.request("POST", "/query", query(stack.now - 3600, stack.now, "left_node::value",
                                                            "right_node::value", WEATHER))
    assert status == 200, body
    assert body[0]["datapoints"][1][0] == float(len("left_node"))
    assert body[1]["datapoints"][1][0] == float(len("right_node"))
    assert len(body[2]["datapoints"]) == 1  # hourly samples


def test_slow_or_failing_node_is_502_naming_it_and_server_keeps_serving(stack, client):
    serve_node(client, "silent_node", lambda field, start, end, min_stride=None: defer.Deferred())

    def broken(field, start, end, min_stride=None):
        raise RuntimeError("disk on fire")

    serve_node(client, "broken_node", broken)
    status, body, _ = stack.request("POST", "/query", query(stack.now - 3600, stack.now, WEATHER, "silent_node::value"))
    assert status == 502 and "silent_node" in body["error"] and "no answer" in body["error"]
    status, body, _ = stack.request("POST", "/query", query(stack.now - 3600, stack.now, "broken_node::value"))
    assert status == 502 and "broken_node" in body["error"]
    assert stack.request("GET", "/")[0] == 200
    status, body, _ = stack.request("POST", "/query", query(stack.now - 3600, stack.now, WEATHER))
    assert status == 200 and len(body[0]["datapoints"]) == 1
    assert stack.http.alive()


def test_one_log_line_per_request(stack):
    stack.request("POST", "/query", query(stack.now - 3600, stack.now, WEATHER, "apex_archive::apex_humidity"))
    line = stack.http.wait_for("POST /query 200: 2 targets, 2 points")
    assert " ms (wamp " in line


def test_reconnects_after_router_restart(own_router, own_procs):
    port = free_port()
    http = own_procs.start("http", env={"PORT": str(port)})
    http.wait_for("serving Grafana datasources")
    probe = JsonHttp(port)
    wait_until(lambda: probe.request("GET", "/")[0] == 200, 30, "GET / to be 200")
    own_router.stop()
    status, body, _ = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(probe.request("GET", "/")), 30,
                                 "GET / to be 503")
    assert "not connected" in body["error"]
    own_router.start()
    wait_until(lambda: probe.request("GET", "/")[0] == 200, 60, "GET / to be 200 again")
    assert http.stop() == 0


def test_port_in_use_is_one_clear_line_and_exit_1(procs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        http = procs.start("http", env={"PORT": str(taken.getsockname()[1])})
        assert http.proc.wait(30) == 1
    assert "cannot listen on 127.0.0.1" in http.output and "Address already in use" in http.output


def test_oversized_body_is_refused(stack):
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as s:
        s.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2000000\r\n\r\n{")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    assert stack.request("GET", "/")[0] == 200


def test_refused_secret_stops_the_server(procs):
    http = procs.start("http", env={"PORT": str(free_port()), "WAMP_SECRET": "wrong-secret"})
    assert http.proc.wait(30) == 1
    assert "stopping" in http.output and "not_authorized" in http.output
