"""Test helpers: a real crossbar router on free loopback ports, and sisock processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from sisock.config import Config, load
from sisock.router import certs, crossbar_config

BIN = Path(sys.executable).parent
TEST_SECRET = "test-secret-not-for-production"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it is truthy; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def attempt(fn: Callable[[], object]):
    """``fn()``, or None if it raised (for polling a service that is still starting)."""
    try:
        return fn()
    except Exception:
        return None


def base_environment() -> Dict[str, str]:
    """This process's environment without any sisock setting (tests set their own)."""
    names = set(f.upper() for f in Config.__dataclass_fields__) | {"SISOCK_ENV_FILE"}
    return {k: v for k, v in os.environ.items() if k not in names}


class Process:
    """A child process whose output is collected line by line."""

    def __init__(self, args: List[str], env: Dict[str, str], name: str) -> None:
        self.name = name
        self.lines: List[str] = []
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Wait for a line containing ``text``; return it."""
        def found():
            return next((line for line in list(self.lines) if text in line), None)
        try:
            return wait_until(found, timeout, f"{self.name} to print {text!r}")
        except AssertionError:
            raise AssertionError(f"{self.name} never printed {text!r}; output:\n{self.output[-4000:]}") from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.proc.wait(5)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(5)


class Router:
    """A crossbar router with generated certificates, on free loopback ports."""

    def __init__(self, directory: Path, secret: str = TEST_SECRET) -> None:
        self.directory = directory
        certs.make_certs(directory / "certs", ["127.0.0.1", "localhost"])
        self.env = base_environment()
        self.env.update({
            "WAMP_USER": "server",
            "WAMP_SECRET": secret,
            "CROSSBAR_HOST": "127.0.0.1",
            "CROSSBAR_TLS_PORT": str(free_port()),
            "CROSSBAR_OCS_PORT": str(free_port()),
            "CROSSBAR_REALM": "test_realm",
            "CROSSBAR_CA_CERT": str(directory / "certs" / "ca.pem"),
            "CROSSBAR_TLS_CERT": str(directory / "certs" / "server.pem"),
            "CROSSBAR_TLS_KEY": str(directory / "certs" / "server.key"),
            "LOGLEVEL": "info",
            # no metrics endpoint unless a test asks for one on a free port: the default
            # layout's ports would collide between tests (and other test runs) on this machine
            "METRICS_PORT": "0",
        })
        self.config: Config = load(self.env)
        crossbar_config.write(self.config, directory / "node")
        self.process: Optional[Process] = None

    def start(self, timeout: float = 60.0) -> "Router":
        args = [str(BIN / "crossbar"), "start", "--cbdir", str(self.directory / "node"), "--loglevel", "info"]
        self.process = Process(args, self.env, "crossbar")
        wait_until(lambda: port_open(self.config.crossbar_tls_port) and port_open(self.config.crossbar_ocs_port)
                   or not self.process.alive(), timeout, "crossbar to listen")
        if not self.process.alive():
            raise AssertionError(f"crossbar exited:\n{self.process.output[-4000:]}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            wait_until(lambda: not port_open(self.config.crossbar_tls_port), 10, "crossbar's port to close")
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class Processes:
    """sisock subcommands started by a test, all stopped at its end."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = env
        self.running: List[Process] = []

    def start(self, command: str, *args: str, env: Optional[Dict[str, str]] = None) -> Process:
        full_env = dict(self.env, **(env or {}))
        process = Process([str(BIN / "sisock"), command, *args], full_env, f"sisock {command}")
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            process.stop()


def most_per_slot(t, stride: float) -> int:
    """The most samples any slot of ``stride`` seconds (aligned on its multiples) holds."""
    import numpy as np
    return int(np.max(np.unique(np.floor(np.asarray(t) / stride), return_counts=True)[1])) if len(t) else 0
