"""``sisock demo``: the whole stack in the foreground, on embedded defaults.

Makes certificates, a secret, a router config and example data under a state
folder, starts the crossbar router and every component as child processes
(their logs interleaved on this terminal), prints how to reach them, and on
Ctrl-C or SIGTERM stops them all, router last.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

from sisock.config import Config, load
from sisock.router import certs, crossbar_config

BIN = Path(sys.executable).parent


@dataclass
class Part:
    """One component the demo runs: ``sisock <command>`` with extra environment."""

    command: str
    env: Callable[[Path], Dict[str, str]] = field(default=lambda state: {})


def _weather_env(state: Path) -> Dict[str, str]:
    from sisock.servers.weather_example import generate

    directory = state / "weather"
    generate(directory, end=time.time())
    return {"DATA_DIRECTORY": str(directory)}


def _g3_env(state: Path) -> Dict[str, str]:
    """A fresh example .g3 archive of the last day (hourly files), scanned every minute.

    The files are new, so the demo's own index starts afresh with them: an index of the
    previous run's files would describe bytes that are no longer there.
    """
    from sisock.g3.writer import Archive, example_providers

    directory = state / "g3"
    shutil.rmtree(directory, ignore_errors=True)
    for index_file in state.glob("g3-index.sqlite*"):  # with its -wal and -shm files
        index_file.unlink()
    end = time.time()
    Archive(example_providers(rates=(0.2, 1.0)), (end // 3600 - 23) * 3600, end).write(directory)
    return {"DATA_DIRECTORY": str(directory), "SCAN_INTERVAL": "60"}


#: What the demo starts after the router, in order.
PARTS: List[Part] = [
    Part("hub"),
    Part("weather", _weather_env),
    Part("g3-file-scanner", _g3_env),
    Part("g3-reader"),
    Part("sensors"),
    Part("http"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=Path("state"),
                        help="folder for certificates, router config and example data (default: ./state)")


def _env_file(state: Path) -> Path:
    """The demo's env file: a random secret, kept across runs, mode 0600."""
    path = state / "sisock.env"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"WAMP_SECRET={secrets.token_urlsafe(24)}\n")
    return path


def environment(state: Path) -> Dict[str, str]:
    """The environment every demo process gets (the caller's settings win)."""
    state.mkdir(parents=True, exist_ok=True)
    certs.make_certs(state / "certs", ["127.0.0.1", "localhost"])
    env = dict(os.environ)
    env.setdefault("SISOCK_ENV_FILE", str(_env_file(state)))
    env.setdefault("CROSSBAR_CA_CERT", str(state / "certs" / "ca.pem"))
    env.setdefault("CROSSBAR_TLS_CERT", str(state / "certs" / "server.pem"))
    env.setdefault("CROSSBAR_TLS_KEY", str(state / "certs" / "server.key"))
    env.setdefault("SQLITE_PATH", str(state / "g3-index.sqlite"))
    return env


def _name(proc: subprocess.Popen) -> str:
    return " ".join(Path(a).name for a in proc.args[:2])


def _stop(processes: List[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM the components all at once, then the router (the first process);
    SIGKILL, and name, whatever is still running after ``grace`` seconds."""
    for group in (processes[1:], processes[:1]):
        running = [p for p in group if p.poll() is None]
        for proc in running:
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                print(f"sisock demo: {_name(proc)} did not stop within {grace:.0f} s; killing it", file=sys.stderr)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _banner(config: Config, state: Path) -> str:
    return "\n".join([
        "",
        "sisock demo is running (Ctrl-C stops everything):",
        f"  WAMP router   wss://{config.crossbar_host}:{config.crossbar_tls_port}/ws  realm {config.crossbar_realm}"
        f" (WAMP-CRA user {config.wamp_user}, secret in {state / 'sisock.env'}, CA {state / 'certs' / 'ca.pem'})",
        f"  OCS agents    ws://127.0.0.1:{config.crossbar_ocs_port}/ws (anonymous, loopback only)",
        f"  components    {', '.join('sisock ' + p.command for p in PARTS)}",
        f"  Grafana       http://{config.http_host}:{config.port}  (SimpleJSON or JSON datasource URL)",
        "",
    ])


def main(args, config: Config) -> int:
    """Run the demo until Ctrl-C or SIGTERM."""
    state = args.state_dir.resolve()
    env = environment(state)
    config = load(env)
    crossbar_config.write(config, state / "router")
    stopping = []
    # Set both explicitly: a shell that starts us in the background leaves SIGINT
    # ignored, and Python then never raises KeyboardInterrupt for Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    processes: List[subprocess.Popen] = []
    try:
        # crossbar reads ${WAMP_SECRET} from its own environment, not from the env file
        router = subprocess.Popen([str(BIN / "crossbar"), "start", "--cbdir", str(state / "router"),
                                   "--loglevel", "warn"], env=dict(env, WAMP_SECRET=config.wamp_secret),
                                  start_new_session=True)
        processes.append(router)
        if not _wait_for_port(config.crossbar_tls_port, router):
            print("sisock demo: the router did not start (see its output above)", file=sys.stderr)
            return 1
        for part in PARTS:
            if stopping:
                return 0
            part_env = dict(env, **part.env(state))
            processes.append(subprocess.Popen([str(BIN / "sisock"), part.command], env=part_env,
                                              start_new_session=True))
        print(_banner(config, state), flush=True)
        while not stopping:
            for proc in processes:
                if proc.poll() is not None:
                    print(f"sisock demo: {_name(proc)} exited with {proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("sisock demo: stopping", file=sys.stderr, flush=True)
        _stop(processes)
