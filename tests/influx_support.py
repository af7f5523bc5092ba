"""A real InfluxDB 1.x (Debian's influxd) on free loopback ports with its own directories, for conformance tests."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from tests.support import free_port, wait_until

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


def influxd_available() -> bool:
    """Whether an influxd binary is installed (tests that need one skip otherwise)."""
    return os.access(INFLUXD, os.X_OK)


def _config(root: Path, http_port: int, rpc_port: int, auth: bool) -> str:
    """influxd's TOML: everything under ``root``, loopback only, no reporting, no _internal database."""
    return f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "error"
  suppress-logo = true
"""


class Influxd:
    """One influxd process; ``query()`` and ``write()`` talk to its HTTP API. Use as a context manager."""

    def __init__(self, auth: bool = False, root: Optional[Path] = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="influxd-")) if root is None else root
        self.port = free_port()
        self.auth = auth
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        """The HTTP API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Influxd":
        """Start influxd and wait until /ping answers."""
        config = self.root / "influxdb.conf"
        config.write_text(_config(self.root, self.port, free_port(), self.auth))
        log = open(self.root / "influxd.log", "wb")
        self.proc = subprocess.Popen([INFLUXD, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        wait_until(self._pinged, timeout, f"influxd on port {self.port}")
        return self

    def _pinged(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"influxd exited {self.proc.returncode}: {(self.root / 'influxd.log').read_text()}")
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                return r.status == 204
        except OSError:
            return False

    def stop(self) -> None:
        """Stop influxd (SIGTERM, then SIGKILL) and remove its directory if this object made it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Influxd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def version(self) -> str:
        """influxd's X-Influxdb-Version."""
        with urllib.request.urlopen(self.url + "/ping", timeout=5) as r:
            return r.headers.get("X-Influxdb-Version", "")

    def request(self, path: str, params: Dict[str, str], method: str = "GET",
                body: Optional[bytes] = None, auth: Optional[Tuple[str, str]] = None) -> Tuple[int, Dict[str, Any]]:
        """(status, JSON body or {}) of one request; HTTP errors are answers, not exceptions."""
        if auth is not None:
            params = {**params, "u": auth[0], "p": auth[1]}
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, (json.loads(raw) if raw.strip() else {})

    def query(self, q: str, db: Optional[str] = None, method: str = "GET",
              auth: Optional[Tuple[str, str]] = None, **params: str) -> Tuple[int, Dict[str, Any]]:
        """(status, JSON) of /query for ``q`` (POST for statements InfluxDB refuses over GET)."""
        extra = dict(params, q=q, **({"db": db} if db else {}))
        return self.request("/query", extra, method=method, auth=auth)

    def write(self, db: str, lines: str, precision: str = "ns") -> None:
        """Write line protocol to ``db`` (which must exist); raises on anything but 204."""
        status, body = self.request("/write", {"db": db, "precision": precision}, method="POST",
                                    body=lines.encode())
        if status != 204:
            raise AssertionError(f"influxd /write answered {status}: {body}")



INSTALL = Path(__file__).parent / "provision" / "install_influxdb.sh"


def ensure_influxd() -> bool:
    """Install Debian's influxdb when influxd is missing and we are root (tests/provision/
    install_influxdb.sh); whether influxd is there now."""
    if not influxd_available() and os.geteuid() == 0:
        subprocess.run(["sh", str(INSTALL)], check=False, timeout=900)
    return influxd_available()
