"""sisock.notify speaks systemd's notify protocol: tested against a real unix datagram socket,
then with real components (hub, a data node, sisock-http) that report READY, STATUS and feed
the watchdog from their reactor."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest
from twisted.internet import task

from sisock import notify
from tests.http_support import HttpStack


class Listener:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET, read in a thread as systemd
    reads it (an unread socket holds only a few datagrams)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages = []
        self._open = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._open:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
            except OSError:
                return

    def read(self, seconds: float) -> list:
        """Every message so far, after waiting ``seconds``."""
        time.sleep(seconds)
        return list(self.messages)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((m for m in list(self.messages) if text in m), None)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in {self.messages}")

    def close(self) -> None:
        self._open = False
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def path_listener(tmp_path):
    listener = Listener(str(tmp_path / "notify"))
    yield listener, str(tmp_path / "notify")
    listener.close()


def test_messages_reach_a_path_socket(path_listener):
    listener, path = path_listener
    assert notify.send("READY=1\nSTATUS=x", {"NOTIFY_SOCKET": path})
    assert listener.read(0.3) == ["READY=1\nSTATUS=x"]


def test_messages_reach_an_abstract_socket():
    name = f"sk11-notify-{uuid.uuid4().hex}"
    listener = Listener("\0" + name)
    try:
        assert notify.send("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert listener.read(0.3) == ["WATCHDOG=1"]
    finally:
        listener.close()


def test_a_full_queue_drops_the_message_instead_of_blocking(tmp_path):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    silent.bind(str(tmp_path / "silent"))
    try:
        began = time.monotonic()
        sent = [notify.send("WATCHDOG=1", {"NOTIFY_SOCKET": str(tmp_path / "silent")}) for _ in range(2000)]
        assert time.monotonic() - began < 5
        assert sent[0] and not sent[-1]
    finally:
        silent.close()


def test_without_systemd_nothing_is_sent(tmp_path):
    assert not notify.send("READY=1", {})
    assert not notify.send("READY=1", {"NOTIFY_SOCKET": "relative/path"})
    assert not notify.send("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})  # logged, not raised


def test_ready_and_status_are_one_line(path_listener, monkeypatch):
    listener, path = path_listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notify.ready("joined\nthe   router")
    notify.status("3 data nodes")
    assert listener.read(0.3) == ["READY=1\nSTATUS=joined the router", "STATUS=3 data nodes"]


def test_the_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only():
    assert notify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert notify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert notify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert notify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert notify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert notify.watchdog_interval({}) is None


def test_the_watchdog_is_fed_every_half_period(path_listener, monkeypatch):
    listener, path = path_listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    clock = task.Clock()
    loop = notify.start_watchdog(clock)
    clock.advance(5)
    clock.advance(5)
    loop.stop()
    assert listener.read(0.3) == ["WATCHDOG=1"] * 3
    monkeypatch.delenv("WATCHDOG_USEC")
    assert notify.start_watchdog(clock) is None


def test_components_say_ready_once_joined_and_feed_the_watchdog(router, tmp_path, path_listener):
    """hub, the weather data node and sisock-http as systemd would run them (Type=notify, WatchdogSec=1)."""
    listener, path = path_listener
    stack = HttpStack(router, tmp_path / "stack", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    stack.procs.env = dict(stack.procs.env, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    try:
        stack.start()
        listener.wait_for("READY=1\nSTATUS=hub: joined realm test_realm", 10)
        listener.wait_for("READY=1\nSTATUS=apex_archive: joined the router and added to the hub", 10)
        listener.wait_for("STATUS=hub: 2 data nodes: apex_archive, sisock_health", 10)  # its own health node too
        listener.wait_for("READY=1\nSTATUS=joined the router; serving Grafana on http://127.0.0.1:", 10)
        before = listener.messages.count("WATCHDOG=1")
        listener.read(2.0)
        # three processes, each every 0.5 s: about 12 in 2 s
        assert listener.messages.count("WATCHDOG=1") - before >= 8
    finally:
        stack.stop()
