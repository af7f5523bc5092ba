"""``sisock demo``: the whole stack in the foreground, on embedded defaults.

Makes certificates, a secret, a router config and example data under a state
folder, starts the crossbar router and every component as child processes
(their logs interleaved on this terminal), prints how to reach them, and on
Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops them all, router last.
A demo killed outright takes its children with it (:mod:`sisock.lifeline`). One
demo at a time holds a state folder: another refuses to start, naming it, and so
does a demo whose state folder any live process still uses.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Dict, List, cast

from sisock import lifeline, metrics
from sisock.config import Config, load
from sisock.files import private_dir, set_mode, write_private
from sisock.router import certs
from sisock.router.config_command import write_config

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
    """The demo's env file: a random secret, kept across runs, mode 0600 (an old file's too)."""
    path = state / "sisock.env"
    if path.exists():
        set_mode(path, 0o600)
    else:
        write_private(path, f"WAMP_SECRET={secrets.token_urlsafe(24)}\n".encode(), 0o600)
    return path


def environment(state: Path) -> Dict[str, str]:
    """The environment every demo process gets (the caller's settings win)."""
    private_dir(state, 0o700)
    certs.make_certs(state / "certs", ["127.0.0.1", "localhost"])
    env = dict(os.environ)
    env.setdefault("SISOCK_ENV_FILE", str(_env_file(state)))
    env.setdefault("CROSSBAR_CA_CERT", str(state / "certs" / "ca.pem"))
    env.setdefault("CROSSBAR_TLS_CERT", str(state / "certs" / "server.pem"))
    env.setdefault("CROSSBAR_TLS_KEY", str(state / "certs" / "server.key"))
    env.setdefault("SQLITE_PATH", str(state / "g3-index.sqlite"))
    return env


#: crossbar prints an empty line after its banner, which its log shows as "[Controller N]" alone.
_EMPTY_ROUTER_LINE = re.compile(rb"^\S+ \[Controller\s+\d+\]\s*$")


def _forward_router_output(stream) -> None:
    """Copy the router's output to ours, without its empty lines."""
    for line in iter(stream.readline, b""):
        if not _EMPTY_ROUTER_LINE.match(line):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()


def _name(proc: subprocess.Popen) -> str:
    return " ".join(Path(a).name for a in cast(List[str], proc.args)[:2])  # _start's argument lists


def _stop(processes: List[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM the data node servers and sisock-http at once, then the hub, then the
    router (the first process), so that each leaves a router and hub still there;
    SIGKILL, and name, whatever is still running after ``grace`` seconds."""
    hub = [p for p in processes[1:] if cast(List[str], p.args)[1:2] == ["hub"]]
    others = [p for p in processes[1:] if p not in hub]
    for group in (others, hub, processes[:1]):
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


#: The data node each part serves: the demo is up when sisock-http sees them all.
NODES = {"weather": "apex_archive", "g3-reader": "g3_reader", "sensors": "sensors"}
#: After this many seconds without everything joined, the demo says what it still waits for.
JOIN_PATIENCE = 60.0


def _attach_file(config: Config, state: Path) -> Path:
    """``state/attach.env``: what a component of one's own needs to join this demo's router
    (mode 0600: it holds the secret). Written at every start, with this run's ports."""
    path = state / "attach.env"
    lines = [
        "# Written by `sisock demo` at every start: the settings a component of your own",
        "# needs to join this demo's router. Any sisock command reads them with",
        f"#   SISOCK_ENV_FILE={path} {BIN / 'sisock'} COMMAND",
        "# (add that command's own settings, e.g. NAME, TARGET and FEED for data-feed).",
        f"CROSSBAR_HOST={config.crossbar_host}",
        f"CROSSBAR_TLS_PORT={config.crossbar_tls_port}",
        f"CROSSBAR_OCS_PORT={config.crossbar_ocs_port}",
        f"CROSSBAR_REALM={config.crossbar_realm}",
        f"CROSSBAR_CA_CERT={config.crossbar_ca_cert.resolve() if config.crossbar_ca_cert else ''}",
        f"WAMP_USER={config.wamp_user}",
        f"WAMP_SECRET={config.wamp_secret}",
    ]
    write_private(path, ("\n".join(lines) + "\n").encode(), 0o600)
    return path


def _missing(config: Config, expected: List[str]) -> List[str]:
    """What has not joined yet, as sisock-http sees it: itself (and the router), the hub, the data nodes."""
    host = "127.0.0.1" if config.http_host in ("0.0.0.0", "::", "") else config.http_host
    try:  # a request is a line in sisock-http's log: ask only once it listens
        socket.create_connection((host, config.port), timeout=1).close()
    except OSError:
        return ["sisock http"] + expected
    try:
        with urllib.request.urlopen(f"http://{host}:{config.port}/", timeout=2) as answer:
            nodes = json.loads(answer.read()).get("data_nodes", [])
    except (OSError, ValueError):
        return ["sisock http"] + expected
    return [name for name in expected if name not in nodes]


def _wait_until_joined(config: Config, processes: List[subprocess.Popen], stopping: list) -> bool:
    """Wait until sisock-http answers and lists every demo data node (so the router, the hub,
    sisock-http and the data node servers are all up); False if a process exited or we stop."""
    expected = [NODES[p.command] for p in PARTS if p.command in NODES]
    started, told = time.monotonic(), False
    while not stopping:
        if any(proc.poll() is not None for proc in processes):
            return False
        missing = _missing(config, expected)
        if not missing:
            return True
        if not told and time.monotonic() - started > JOIN_PATIENCE:
            print(f"sisock demo: still waiting for {', '.join(missing)} (see the output above)", file=sys.stderr,
                  flush=True)
            told = True
        time.sleep(1.0)
    return False


class StateInUse(RuntimeError):
    """The state folder is held by another demo or used by a live process (the text names it)."""


def _lock(state: Path) -> IO[str]:
    """Hold ``state/demo.lock`` for as long as this demo runs (the kernel lets go when it ends,
    however it ends); StateInUse naming the demo that holds it."""
    handle = open(state / "demo.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown pid"
        handle.close()
        raise StateInUse(f"another sisock demo ({holder}) is running on {state}; stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def holders(folder: Path) -> List[str]:
    """Live processes (other than this one) with a file under ``folder`` open or as their working
    folder, as ``"pid N (command)"``: from /proc, so only what this user may see."""
    found = []
    top = str(folder)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [entry / "cwd"] + list((entry / "fd").iterdir())
            used = any(_under(os.readlink(link), top) for link in links if _readable(link))
            if used:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append(f"pid {entry.name} ({command[:120] or '?'})")
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return found


def _readable(link: Path) -> bool:
    try:
        os.readlink(link)
    except OSError:
        return False
    return True


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + os.sep)


def claim(state: Path) -> IO[str]:
    """Take ``state`` for this demo before anything in it is made or removed: its lock, and no
    live process using it (e.g. one left behind by a demo of an older sisock)."""
    private_dir(state, 0o700)
    lock = _lock(state)
    users = holders(state)
    if users:
        lock.close()
        raise StateInUse(f"{state} is still used by {', '.join(users[:3])}"
                         f"{f' and {len(users) - 3} more' if len(users) > 3 else ''}; stop them first")
    return lock


def _router_dies_with_us(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` for the router: SIGTERM when this demo ends (the router is not a sisock
    command, so it cannot watch us itself)."""
    return lambda: lifeline.die_with(parent)


def _banner(config: Config, state: Path, attach: Path) -> str:
    return "\n".join([
        "",
        "sisock demo is running (Ctrl-C stops everything):",
        f"  WAMP router   wss://{config.crossbar_host}:{config.crossbar_tls_port}/ws  realm {config.crossbar_realm}"
        f" (WAMP-CRA user {config.wamp_user}, secret in {state / 'sisock.env'}, CA {state / 'certs' / 'ca.pem'})",
        f"  OCS agents    ws://127.0.0.1:{config.crossbar_ocs_port}/ws (anonymous, loopback only)",
        f"  components    {', '.join('sisock ' + p.command for p in PARTS)}",
        f"  Grafana       http://{config.http_host}:{config.port}  (SimpleJSON or JSON datasource URL)",
        f"                http://{config.http_host}:{config.port}/influxdb  (the built-in InfluxDB datasource, "
        f"InfluxQL, database {config.influxdb_database})",
        f"  your own      SISOCK_ENV_FILE={attach} {BIN / 'sisock'} COMMAND  joins this router",
        f"  health        SISOCK_ENV_FILE={attach} {BIN / 'sisock'} status  (and data node sisock_health)",
        f"  metrics       {_metrics_urls(config)}",
        "",
    ])


def _metrics_urls(config: Config) -> str:
    """Where the demo's components serve their metrics (docs/monitoring.md)."""
    if config.metrics_port == 0:
        return "off (METRICS_PORT=0)"
    return ", ".join(f"{p.command} :{metrics.LAYOUT[p.command]}" for p in PARTS) + \
        f" (http://{config.metrics_host}:PORT/metrics)"


def main(args, config: Config) -> int:
    """Run the demo until Ctrl-C, SIGTERM or SIGHUP."""
    state = args.state_dir.resolve()
    try:
        lock = claim(state)
    except StateInUse as exc:
        print(f"sisock demo: {exc}", file=sys.stderr)
        return 1
    env = lifeline.child_environment(environment(state))
    config = load(env)
    write_config(config, state / "router")
    attach = _attach_file(config, state)
    stopping = []
    # Set them explicitly: a shell that starts us in the background leaves SIGINT
    # ignored, and Python then never raises KeyboardInterrupt for Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.append(True))
    processes: List[subprocess.Popen] = []
    forwarder = None
    try:
        # crossbar reads ${WAMP_SECRET} from its own environment, not from the env file
        router = subprocess.Popen([str(BIN / "crossbar"), "start", "--cbdir", str(state / "router"),
                                   "--loglevel", "warn"], env=dict(env, WAMP_SECRET=config.wamp_secret),
                                  start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  preexec_fn=_router_dies_with_us(os.getpid()))
        forwarder = threading.Thread(target=_forward_router_output, args=(router.stdout,), daemon=True)
        forwarder.start()
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
        joined = _wait_until_joined(config, processes, stopping)
        if stopping:
            return 0
        if joined:
            print(_banner(config, state, attach), flush=True)
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
        if forwarder is not None:
            forwarder.join(5)  # the router's last lines
        lock.close()
