"""Ready means fast: a component says READY=1 only once its first answer will be fast, and that answer is right.

The g3-reader registers and adds itself to the hub (READY=1) once its worker processes have
started and warmed up; a panel asked the moment READY=1 arrives, after a start and after a
restart, is the reader's exact answer. sisock-http says READY=1, and GET / says 200, only once
its node list is loaded, after its own start and after a router restart. (How fast is the
benchmark's: bench/cold.py.)
"""
from __future__ import annotations

import pytest

from sisock import wamp
from sisock.datanode import finish
from sisock.decimate import choose_step
from sisock.g3 import workers
from sisock.g3.reader import Reader
from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive, example_providers
from tests.g3_support import END, archive_dir, make_index
from tests.http_support import JsonHttp, query
from tests.support import free_port, wait_until
from tests.test_notify import Listener

PROVIDERS = example_providers(3)
NAMES = [f"{p.description}.{p.blocks[0].fields[0]}" for p in PROVIDERS]


def reference(index, t0: float, t1: float, points: int) -> dict:
    """The reader's answer computed here: what get_data must return."""
    stride = choose_step(t0, t1, None, points)
    answer = finish(workers.answer(Reader(index, 16), NAMES, t0, t1, stride, 0), stride, 0, (t0, t1))
    return {name: (tl["t"], [answer["data"][f] for f in tl["fields"]]) for name, tl in answer["timeline"].items()}


def as_served(answer: dict) -> dict:
    return {name: (tl["t"], [answer["data"][f] for f in tl["fields"]]) for name, tl in answer["timeline"].items()}


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_a_panel_asked_at_ready_is_right_after_a_start_and_a_restart(g3_env, router, procs, client, tmp_path):
    Archive(PROVIDERS, END - 86400, END, file_seconds=3600, frame_seconds=60).write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    procs.start("hub").wait_for("hub ready")
    t0, t1 = END - 6 * 3600 - 17.5, END - 60.25
    want = reference(index, t0, t1, 400)
    stride = choose_step(t0, t1, None, 400)
    for attempt in range(2):
        listener = Listener(str(tmp_path / f"notify{attempt}"))
        try:
            reader = procs.start("g3-reader", env=dict(g3_env, NOTIFY_SOCKET=listener.sock.getsockname(),
                                                        G3_READER_PROCESSES="2"))
            listener.wait_for("READY=1", 120)
            answer = client.call(wamp.get_data_uri("g3_reader"), NAMES, t0, t1, stride)
            assert as_served(answer) == want
            warmed = next(i for i, line in enumerate(reader.lines) if "warmed up in" in line)
            added = next(i for i, line in enumerate(reader.lines) if "added data node g3_reader" in line)
            assert warmed < added, "the reader joined before its workers had warmed up"
            assert reader.stop() == 0
        finally:
            listener.close()


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_sisock_http_is_ready_with_its_node_list_after_a_start_and_a_router_restart(g3_env, own_router, own_procs,
                                                                                    tmp_path):
    Archive(PROVIDERS, END - 7200, END, file_seconds=3600, frame_seconds=60).write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    own_procs.start("hub").wait_for("hub ready")
    own_procs.start("g3-reader", env=g3_env).wait_for("added data node g3_reader")
    listener = Listener(str(tmp_path / "notify"))
    port = free_port()
    http = JsonHttp(port)
    t0, t1 = END - 3600.5, END - 10.25
    body = query(t0, t1, *[f"g3_reader::{n}" for n in NAMES], max_points=200)
    try:
        own_procs.start("http", env={"PORT": str(port), "NOTIFY_SOCKET": listener.sock.getsockname()})
        listener.wait_for("READY=1", 60)
        status, listing, _ = http.request("GET", "/")
        assert status == 200 and "g3_reader" in listing["data_nodes"]
        status, first, _ = http.request("POST", "/query", body)
        assert status == 200 and all(e["datapoints"] for e in first)
        own_router.stop()
        wait_until(lambda: http.request("GET", "/")[0] == 503, 30, "GET / to be 503")
        own_router.start()

        def listed_again():
            status, listing, _ = http.request("GET", "/")
            return status == 200 and "g3_reader" in listing["data_nodes"]
        wait_until(listed_again, 60, "GET / to list the reader again")
        status, again, _ = http.request("POST", "/query", body)
        assert status == 200 and again == first
    finally:
        listener.close()
