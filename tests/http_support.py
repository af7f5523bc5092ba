"""Helpers for the sisock-http tests: the stack (hub, weather, http) and a tiny JSON HTTP client."""
from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import orjson
import pytest

from sisock.servers.weather_example import generate
from tests.support import Processes, Router, free_port, wait_until

#: The 1 Hz field with one spike that the stack serves beside the generated weather.
SPIKE_FIELD, SPIKE_VALUE = "spiky", 1000.0


def write_field(directory: Path, name: str, t: np.ndarray, values: np.ndarray, units: str = "K") -> None:
    """A field file in the weather server's format."""
    with open(directory / f"{name}.txt", "w") as handle:
        handle.write(f"# {name} for the tests\n# {name}_timeline\n# {units}\n")
        np.savetxt(handle, np.column_stack([t, values]), fmt=["%.0f", "%.3f"])


class JsonHttp:
    """A tiny JSON client for sisock-http on a loopback port (https with a ``tls`` context)."""

    def __init__(self, port: int, headers: Optional[Dict[str, str]] = None,
                 tls: Optional[ssl.SSLContext] = None) -> None:
        self.port = port
        self.headers = dict(headers or {})
        self.tls = tls

    def request(self, method: str, path: str, body: object = None, raw: Optional[bytes] = None,
                timeout: float = 30.0, content_type: str = "application/json") -> Tuple[int, object, dict]:
        """(status, decoded JSON body, headers) of one request."""
        status, text, headers = self.exchange(method, path, body, raw, timeout, content_type)
        # orjson: strict standard JSON (no NaN literals)
        return status, orjson.loads(text) if text else None, headers

    def exchange(self, method: str, path: str, body: object = None, raw: Optional[bytes] = None,
                 timeout: float = 30.0, content_type: str = "application/json") -> Tuple[int, bytes, dict]:
        """(status, body as sent, headers) of one request."""
        if self.tls is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        else:
            connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.tls)
        try:
            payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            connection.request(method, path, body=payload, headers={"Content-Type": content_type, **self.headers})
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            connection.close()


class HttpStack(JsonHttp):
    """hub + weather (generated data ending now, and a 1 Hz field with one spike) + sisock http."""

    def __init__(self, router: Router, directory: Path, timeout: float = 2.0,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.now = float(int(time.time()))
        self.spike_time = self.now - 40000.0
        data = directory / "weather"
        generate(data, end=self.now, days=2)
        t = np.arange(self.now - 86400, self.now)
        values = np.sin(t / 3000.0)
        values[t == self.spike_time] = SPIKE_VALUE
        write_field(data, SPIKE_FIELD, t, values)
        self.data = data
        self.timeout = timeout
        self.env = dict(env or {}, PORT=str(free_port()), HTTP_TIMEOUT=str(timeout))
        super().__init__(int(self.env["PORT"]))
        self.procs = Processes(router.env)

    def start(self) -> "HttpStack":
        """Start hub, weather and http; return once /search lists the weather fields."""
        self.procs.start("hub").wait_for("hub ready")
        self.procs.start("weather", env={"DATA_DIRECTORY": str(self.data)}).wait_for("added data node")
        self.http = self.procs.start("http", env=self.env)
        self.http.wait_for("serving Grafana datasources")
        wait_until(lambda: f"apex_archive::{SPIKE_FIELD}" in self.request("POST", "/search", {})[1], 30,
                   "the weather fields in /search")
        return self

    def stop(self) -> None:
        self.procs.stop_all()


@pytest.fixture(scope="module")
def stack(router, tmp_path_factory):
    """The module's HttpStack on the module's router."""
    s = HttpStack(router, tmp_path_factory.mktemp("http"))
    try:
        yield s.start()
    finally:
        s.stop()


def iso(seconds: float) -> str:
    """UTC ISO-8601 with Z, as Grafana sends it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def query(start: float, end: float, *targets: str, max_points: int = 1000, **extra) -> dict:
    """A Grafana ``/query`` body."""
    body = {"range": {"from": iso(start), "to": iso(end)}, "intervalMs": (end - start) * 1000 / max_points,
            "maxDataPoints": max_points, "targets": [{"target": t, "refId": "A"} for t in targets]}
    body.update(extra)
    return body
