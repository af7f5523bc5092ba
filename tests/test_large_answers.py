"""The largest answers: no allowed request knocks a data node off the router, and sisock-http's
memory stays bounded while slow clients read big answers, and is given back after them
(issue 25, findings 1 and 2). The memory test prints its figures; its bounds are generous."""
from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import hypothesis.extra.numpy as hnp
import numpy as np
import orjson
import pytest
from autobahn.wamp.exception import ApplicationError
from hypothesis import given, settings
from hypothesis import strategies as st

from sisock import wamp
from sisock.http.answers import BigAnswers, Busy, Entry, Rows, series_json
from tests.http_support import JsonHttp, iso, query
from tests.support import Process, free_port, wait_until

BIG_NODE = Path(__file__).parent / "nodes" / "big_node.py"


def start_big_node(procs) -> Process:
    node = Process([sys.executable, str(BIG_NODE)], procs.env, "big_node")
    procs.running.append(node)
    node.wait_for("added data node big_node")
    return node


def start_http(procs, **env) -> tuple:
    port = free_port()
    process = procs.start("http", env=dict({"PORT": str(port), "HTTP_TIMEOUT": "60"}, **env))
    process.wait_for("serving Grafana datasources")
    http = JsonHttp(port)
    wait_until(lambda: "big_node::fast" in http.request("POST", "/search", {})[1], 30, "big_node in /search")
    return http, process


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_the_largest_allowed_query_passes_the_router_in_pieces(procs, client):
    procs.start("hub").wait_for("hub ready")
    node = start_big_node(procs)
    http, _ = start_http(procs)
    end = float(int(time.time()))
    start = end - 3 * 86400  # 2.6 million samples at 10 Hz
    status, body, _ = http.request("POST", "/query", query(start, end, "big_node::fast", max_points=2_000_000),
                                   timeout=180)
    assert status == 200, body
    points = body[0]["datapoints"]
    assert 1_000_000 < len(points) <= 2_000_000
    assert len(json.dumps(points)) > wamp.MAX_MESSAGE  # more than one message could ever carry
    # the node is still joined: no "session dropped" and the next query is answered as usual
    assert node.alive() and "left" not in node.output.lower()
    status, body, _ = http.request("POST", "/query", query(end - 60, end, "big_node::fast", max_points=100))
    assert status == 200 and len(body[0]["datapoints"]) > 0
    # a caller that takes no pieces gets an error saying so, and the node stays joined
    with pytest.raises(ApplicationError) as refused:
        client.call(wamp.get_data_uri("big_node"), "fast", start, end, timeout=120)
    assert refused.value.error.endswith("error.too_large") and "progressive" in refused.value.args[0]
    assert len(client.call(wamp.get_data_uri("big_node"), "fast", end - 10, end)["data"]["fast"]) == 100


def slow_reader(port: int, body: bytes, seconds: float, got: list) -> None:
    """Ask for a big answer, then read it one byte a second (or until the server gives up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 60) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        first = sock.recv(64)
        got.append(first.split(b"\r\n", 1)[0].decode(errors="replace"))
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if not sock.recv(1):
                return
            time.sleep(1.0)


@dataclass
class SlowReaders:
    """What one run of :func:`run_slow_readers` saw: sisock-http's RSS (MB), the big answers' first
    lines, and the small queries' statuses and seconds."""

    big_bytes: int
    before: float
    peak: float
    after: float
    statuses: List[str]
    small_statuses: List[int]
    small: List[float]

    def count(self, status: int) -> int:
        """Big answers that began with ``status``."""
        return sum(f" {status} " in f"{s} " for s in self.statuses)


def run_slow_readers(procs, clients: int, seconds: float) -> SlowReaders:
    """``clients`` clients each ask for a day of a 10 Hz field (about 24 MB of JSON) and read it a byte a
    second for ``seconds``, while a small ``/query`` is timed every half second (tests and bench)."""
    procs.start("hub").wait_for("hub ready")
    start_big_node(procs)
    http, process = start_http(procs, HTTP_TIMEOUT="20")
    pid = process.proc.pid
    end = float(int(time.time()))
    big = query(end - 86400, end, "big_node::fast", max_points=1_000_000)
    status, body, _ = http.request("POST", "/query", big, timeout=120)  # once, so every code path is loaded
    assert status == 200, status
    big_bytes = len(json.dumps(body))
    del body
    time.sleep(1.0)
    before = rss_mb(pid)
    statuses: List[str] = []
    payload = json.dumps(big).encode()
    readers = [threading.Thread(target=slow_reader, args=(http.port, payload, seconds, statuses))
               for _ in range(clients)]
    for reader in readers:
        reader.start()
    peak, small, small_statuses = before, [], []
    small_query = query(end - 60, end, "big_node::fast", max_points=100)
    while any(reader.is_alive() for reader in readers):
        peak = max(peak, rss_mb(pid))
        began = time.monotonic()
        small_statuses.append(http.request("POST", "/query", small_query, timeout=60)[0])
        small.append(time.monotonic() - began)
        time.sleep(0.5)
    for reader in readers:
        reader.join()
    time.sleep(2.0)
    return SlowReaders(big_bytes, before, peak, rss_mb(pid), statuses, small_statuses, small)


@pytest.mark.timeout(400)
def test_slow_readers_of_big_answers_cost_bounded_memory_given_back_after(procs):
    clients = 20
    run = run_slow_readers(procs, clients, 40.0)
    assert run.big_bytes > 22e6
    assert all(status == 200 for status in run.small_statuses)
    before, peak, after, small, statuses = run.before, run.peak, run.after, run.small, run.statuses
    answered, busy = run.count(200), run.count(503)
    print(f"\nsisock-http RSS: before {before:.0f} MB, peak {peak:.0f} MB with {clients} slow readers of a 24 MB "
          f"answer, after {after:.0f} MB; answers begun {answered}, 503 busy {busy}; a small /query "
          f"meanwhile p50 {statistics.median(small) * 1000:.0f} ms, max {max(small) * 1000:.0f} ms ({len(small)})")
    assert answered + busy == clients, statuses
    assert answered, "no big answer was served at all"
    assert peak - before < 400, f"memory grew by {peak - before:.0f} MB"
    assert after - before < 100, f"memory not given back: {after - before:.0f} MB more than before"
    assert statistics.median(small) < 2.0


def test_a_big_answer_encodes_the_same_json_as_a_small_one(procs):
    """Streamed or whole, the bytes a client gets decode to the same answer."""
    procs.start("hub").wait_for("hub ready")
    start_big_node(procs)
    http, _ = start_http(procs)
    end = float(int(time.time()))
    targets = [{"target": "big_node::fast", "refId": "A"}, {"target": "big_node::fast", "refId": "B", "type": "table"},
               {"target": "big_node::missing", "refId": "C"}]
    # every sample comes back, whole or streamed: at most four to a slot of either step
    body = {"range": {"from": iso(end - 20000), "to": iso(end)}, "maxDataPoints": 1_000_000, "targets": targets}
    status, streamed, headers = http.request("POST", "/query", body, timeout=120)
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    assert len(streamed[0]["datapoints"]) > 100_000 and streamed[2] == {"target": "big_node::missing",
                                                                        "datapoints": []}
    rows = streamed[1]["rows"]
    assert [[ms, v] for v, ms in streamed[0]["datapoints"]] == rows
    # the same query in windows small enough to come whole gives the same points
    whole = []
    for a in range(int(end - 20000), int(end), 5000):
        part = {"range": {"from": iso(a), "to": iso(a + 5000)}, "maxDataPoints": 90_000,
                "targets": targets[:1]}
        status, answer, headers = http.request("POST", "/query", part)
        assert status == 200 and "Transfer-Encoding" not in headers
        whole += answer[0]["datapoints"]
    assert whole == streamed[0]["datapoints"]


def test_big_queries_beyond_the_waiting_ones_are_refused_at_once():
    """Each big query waiting for a slot holds a worker thread: with every slot taken and as many
    waiting as allowed, the next is refused at once, never after ``HTTP_TIMEOUT``, so a burst of
    exports leaves the workers to small queries; a slot given back goes to a waiting one."""
    big = BigAnswers(slots=1, waiting=1)
    big.take(0.0)
    waiter_got: list = []
    waiter = threading.Thread(target=lambda: waiter_got.append(big.take(30.0)))
    waiter.start()
    wait_until(lambda: big._waiters == 1, 5, "the waiting query")
    began = time.monotonic()
    with pytest.raises(Busy):
        big.take(30.0)
    assert time.monotonic() - began < 5.0
    big.give()  # the slot goes to the waiting query
    waiter.join(10)
    assert waiter_got == [None] and big.busy == 1
    with pytest.raises(Busy):
        big.take(0.1)  # nothing waits now, so it waits its time, and the slot is still held
    big.give()
    big.take(0.1)
    assert big.busy == 1


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_VALUES = st.one_of(
    hnp.arrays(np.float64, st.integers(0, 40), elements=_FLOATS),
    hnp.arrays(np.float32, st.integers(0, 40), elements=st.floats(width=32)),
    hnp.arrays(np.int64, st.integers(0, 40)),
    hnp.arrays(np.uint32, st.integers(0, 40)),
    hnp.arrays(np.uint64, st.integers(0, 40)),
    hnp.arrays(np.bool_, st.integers(0, 40)),
    hnp.arrays("U3", st.integers(0, 40), elements=st.text(st.characters(exclude_categories=("Cs", "Cc")),
                                                           max_size=3)))


@settings(max_examples=400, deadline=None)
@given(values=_VALUES, data=st.data(), table=st.booleans())
def test_points_are_written_as_grafana_reads_them(values, data, table):
    """Every answer's points are ``[value, ms]`` (``[ms, value]`` in a table), ms a whole number and
    NaN or infinity null, whichever way they are written (straight from numpy for numbers)."""
    times = data.draw(hnp.arrays(np.float64, len(values), elements=st.one_of(
        st.floats(-1e12, 4e9), st.sampled_from([-0.0001, 0.0, 1.7e9 + 0.0005, 9.9e11, 1e13]))))
    entry = Entry("node::field", times, values, table)
    ms = [int(round(t * 1000.0)) for t in times.tolist()]
    rows = [[m, v] if table else [v, m] for m, v in zip(ms, values.tolist())]
    expected = orjson.dumps(rows)
    assert entry.points(0, len(values)) == expected
    assert orjson.dumps(entry.as_dict())[-len(expected) - 1:-1] == expected
    cut = data.draw(st.integers(0, len(values)))
    assert entry.points(cut, len(values)) == orjson.dumps(rows[cut:])


@settings(max_examples=200, deadline=None)
@given(values=hnp.arrays(np.float64, st.integers(0, 60), elements=_FLOATS), data=st.data())
def test_kept_points_written_once_give_the_bytes_of_any_run_of_them(values, data):
    """Kept slots are written as JSON once (Rows); a panel stitched from runs of them and fresh
    points writes the same bytes as writing its points whole."""
    times = np.sort(data.draw(hnp.arrays(np.float64, len(values), elements=st.floats(1e9, 2e9))))
    rows = Rows.of(times, values)
    assert rows is not None
    cuts = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=4)))
    bounds = [0, *cuts, len(values)]
    parts = [rows.inner(i, j) if k % 2 else (series_json(times[i:j], values[i:j]) or b"")[1:-1]
             for k, (i, j) in enumerate(zip(bounds, bounds[1:]))]
    whole = Entry("node::field", times, values, False)
    assert Entry("node::field", times, values, False, parts).points(0, len(values)) == whole.points(0, len(values))
