"""Benchmark of the first panel after a restart, of warm panels and of concurrent clients (issue 23).

Writes (or reuses, ``--dir``) an archive like the issue's: ``--days`` days of 5
providers of 10 fields at ``--mb-per-day`` (hourly files, 60 s frames), and with
``--year`` a year before it at 1/23 of those rates (10-minute frames, as ``bench/g3_spans.py``'s year
beside its 110 MB days); scans it, then
starts a real router, hub, g3-reader and two sisock-http (the results cache on,
and off: ``HTTP_CACHE_MB=0``) and prints, for a panel of 8 fields (2 per
provider of 4) at ``maxDataPoints=1000`` ending 123.4 s before the archive's end,
for 1 h, 1 d, 7 d, 30 d and 1 y:

  (a) the first panel after restarting the g3-reader, sisock-http, and the router:
      stop it (SIGTERM), wait until sisock-http's ``GET /`` no longer lists the
      reader (or answers), start it, wait until ``GET /`` lists it again, drop
      the page cache of the archive and the index (``posix_fadvise`` per file, so
      other work on the machine keeps its own), time one panel; and the reader
      once more without dropping the page cache (the panel asked at once);
  (b) warm ``/query`` p50 and p95 with the results cache and without it
      (requests interleaved, ``--repeat`` each);
  (c) ``--clients`` concurrent clients (each a new connection per request, as
      Grafana's proxy does) asking the 30-day panel for ``--load-seconds``,
      its end moving (a random ``now`` within 10 minutes) as a dashboard's does,
      and always the same: panels/s, p50, p95, errors, and each process's share
      of a core. The clients are threads of this process. Each run is made twice:
      clients that read each answer whole (checking their first), as a load
      generator does, and clients that also decode every answer (orjson), which
      costs this process about 4 ms of its one interpreter per panel on the
      same cores.

``--before DIR`` names another sisock tree (``git archive main | tar -x -C DIR``):
(a) and (c) are then measured on its stack too, each restart interleaved with this
tree's, so both see the same machine at the same time.

Usage: ``.venv/bin/python bench/cold.py [--dir DIR] [--year] [--before DIR] [--clients 10,50]``
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Optional  # noqa: E402

import orjson  # noqa: E402

if __name__ != "__mp_main__":  # the scanner's workers run this script's top level again
    from bench.g3 import providers, scale_for, scan
    from bench.g3_spans import DAY, END, HOUR, NOW, POINTS, SPANS, cpu_seconds
    from sisock.config import load
    from sisock.g3.index import open_index
    from sisock.g3.writer import Archive
    from tests.http_support import JsonHttp, query
    from tests.support import BIN, Process, Router, free_port, wait_until

#: The panel: 8 fields, as in the issue's measurement.
FIELDS = 8
#: Scans the archive into an index of its own with the scanner of another tree (in that tree's interpreter).
_SCAN = ("import sys; from pathlib import Path; from sisock.config import load; "
         "from sisock.g3.index import open_index; from sisock.g3.scanner import Scanner; "
         "index = open_index(load({'SQLITE_PATH': sys.argv[1]})); index.ensure_schema(); "
         "Scanner(index, Path(sys.argv[2])).scan_once()")


def archives(days: float, mb_per_day: float, year: bool) -> List[Archive]:
    """The long archive and, with ``year``, the year before it at 1/23 of the rates (10-minute frames)."""
    factor = scale_for(mb_per_day / 1000)
    out = [Archive(providers(factor), END - days * DAY, END, file_seconds=HOUR, frame_seconds=60.0)]
    if year:
        out.append(Archive(providers(factor * 0.02 / 0.46), END - days * DAY - 365 * DAY, END - days * DAY,
                           file_seconds=HOUR, frame_seconds=600.0))
    return out


def panel(archive: Archive) -> List[str]:
    """8 fields, 2 per provider (blocks of different rates)."""
    return [f"{p.description}.{b.fields[0]}" for p in archive.providers for b in p.blocks[2:4]][:FIELDS]


def evict(paths: List[Path]) -> None:
    """Drop these files' pages from the page cache (written back first), leaving every other file's."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class Tree:
    """How to run the ``sisock`` of a source tree: this one (the venv's script) or another (``--before``)."""

    def __init__(self, checkout: Optional[Path]) -> None:
        self.checkout = checkout
        self.label = "this tree" if checkout is None else f"before ({checkout})"

    def start(self, command: str, env: Dict[str, str]) -> Process:
        if self.checkout is None:
            return Process([str(BIN / "sisock"), command], env, f"sisock {command}")
        # the other tree's modules first, and not this folder's (PYTHONSAFEPATH): spawned workers inherit it
        env = dict(env, PYTHONPATH=str(self.checkout), PYTHONSAFEPATH="1")
        return Process([sys.executable, "-c", "import sys; from sisock.cli import main; sys.exit(main())", command],
                       env, f"sisock {command} ({self.label})")


class Stack:
    """Router, hub, g3-reader and two sisock-http (results cache on and off) of one tree, on one index."""

    def __init__(self, tree: Tree, tmp: Path, data: Path, index: Path, files: List[Path]) -> None:
        self.tree, self.data, self.index, self.files = tree, data, index, files
        self.router = Router(tmp).start()
        self.env = dict(self.router.env, SQLITE_PATH=str(index), DATA_DIRECTORY=str(data), HTTP_TIMEOUT="600")
        self.hub = tree.start("hub", self.env)
        self.hub.wait_for("hub ready")
        self.port, self.plain_port = free_port(), free_port()
        self.http = self._http(self.port, {})
        self.plain = self._http(self.plain_port, {"HTTP_CACHE_MB": "0"})
        self.reader = self._reader()
        self.client = JsonHttp(self.port)
        self._wait_listed(self.port)
        self._wait_listed(self.plain_port)

    def _http(self, port: int, env: Dict[str, str]) -> Process:
        return self.tree.start("http", dict(self.env, PORT=str(port), **env))

    def _reader(self) -> Process:
        return self.tree.start("g3-reader", self.env)

    def listed(self, port: int) -> bool:
        """sisock-http answers ``GET /`` and lists the g3-reader."""
        try:
            status, body, _ = JsonHttp(port).request("GET", "/", timeout=5)
        except OSError:
            return False
        return status == 200 and "g3_reader" in (body or {}).get("data_nodes", [])

    def _wait_listed(self, port: int) -> None:
        wait_until(lambda: self.listed(port), 300, f"sisock-http on {port} to list g3_reader", interval=0.05)

    def restart(self, part: str) -> None:
        """Stop ``part`` (reader, http or router), wait until it is gone, start it, wait until it is listed."""
        if part == "reader":
            self.reader.stop()
            wait_until(lambda: not self.listed(self.port), 60, "the g3-reader to leave", interval=0.05)
            self.reader = self._reader()
        elif part == "http":
            self.http.stop()
            wait_until(lambda: not self.listed(self.port), 60, "sisock-http to stop", interval=0.05)
            self.http = self._http(self.port, {})
        else:
            self.router.restart()
        self._wait_listed(self.port)

    def ask(self, names: List[str], t0: float, t1: float, port: Optional[int] = None) -> float:
        """Seconds of one ``/query`` of ``names`` over ``[t0, t1]``."""
        body = query(t0, t1, *[f"g3_reader::{n}" for n in names], max_points=POINTS)
        began = time.perf_counter()
        status, body = JsonHttp(port or self.port).request("POST", "/query", body, timeout=600)[:2]
        if status != 200:
            raise RuntimeError(f"/query answered {status}: {body}")
        return time.perf_counter() - began

    def processes(self) -> Dict[str, int]:
        return {"router": self.router.process.proc.pid, "g3-reader": self.reader.proc.pid,
                "sisock-http": self.http.proc.pid, "hub": self.hub.proc.pid}

    def stop(self) -> None:
        for process in (self.http, self.plain, self.reader, self.hub):
            process.stop()
        self.router.stop()


def first_panels(stacks: List[Stack], names: List[str], spans: Dict[str, float]) -> None:
    """(a): for each kind of restart and each span, one restart and one timed panel per stack, interleaved."""
    print(f"\n(a) first panel after a restart, page cache of the archive and index dropped ({len(names)} fields, "
          f"maxDataPoints={POINTS}), ms")
    print(f"  {'restarted':<24} {'tree':<40} " + " ".join(f"{label:>8}" for label in spans))
    for part in ("reader", "reader, page cache kept", "http", "router"):
        rows: Dict[str, List[float]] = {s.tree.label: [] for s in stacks}
        for span in spans.values():
            for stack in stacks:
                stack.restart(part.split(",")[0])
                if "kept" not in part:
                    evict(stack.files)
                try:
                    rows[stack.tree.label].append(stack.ask(names, NOW - span, NOW))
                except RuntimeError as exc:  # a failed first panel is a figure too
                    print(f"  {stack.tree.label}, {part}, {span:.0f} s: {exc}")
                    rows[stack.tree.label].append(math.nan)
        for label, times in rows.items():
            print(f"  {part:<24} {label:<40} " + " ".join(f"{t * 1000:8.0f}" for t in times), flush=True)


def warm(stack: Stack, names: List[str], spans: Dict[str, float], repeat: int) -> None:
    """(b): warm p50/p95 through the sisock-http with the results cache and the one without, interleaved."""
    print(f"\n(b) warm /query of {len(names)} fields, maxDataPoints={POINTS}, {repeat} requests each, interleaved")
    print(f"  {'span':>5} | {'cache p50':>9} | {'cache p95':>9} | {'no cache p50':>12} | {'no cache p95':>12}")
    for label, span in spans.items():
        on: List[float] = []
        off: List[float] = []
        for port in (stack.port, stack.plain_port):
            stack.ask(names, NOW - span, NOW, port)
        for _ in range(repeat):
            on.append(stack.ask(names, NOW - span, NOW, stack.port))
            off.append(stack.ask(names, NOW - span, NOW, stack.plain_port))
        print(f"  {label:>5} | {_q(on, 0.5):9.1f} | {_q(on, 0.95):9.1f} | {_q(off, 0.5):12.1f} | "
              f"{_q(off, 0.95):12.1f}", flush=True)


def _q(times: List[float], q: float) -> float:
    times = sorted(times)
    return times[min(len(times) - 1, int(q * len(times)))] * 1000


def crowd(stack: Stack, names: List[str], clients: int, seconds: float, moving: bool = True,
          decode: bool = False) -> None:
    """(c): ``clients`` threads asking the 30-day panel, its end a random moment of the last 10 minutes
    (``moving``) or always the same. Each reads every answer whole; with ``decode`` it also decodes
    it (orjson), else only its first, which must hold every target with points."""
    latencies: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        http = JsonHttp(stack.port)
        checked = False
        while time.monotonic() < stop_at:
            t1 = NOW - rng.uniform(0, 600) if moving else NOW
            body = query(t1 - 30 * DAY, t1, *[f"g3_reader::{n}" for n in names], max_points=POINTS)
            began = time.perf_counter()
            try:
                status, text, _ = http.exchange("POST", "/query", body, timeout=60)
                ok = status == 200
                if ok and (decode or not checked):
                    answer = orjson.loads(text)
                    ok = checked = len(answer) == len(names) and all(len(a["datapoints"]) for a in answer)
                    status = status if ok else "an answer without every target's points"
            except OSError as exc:
                ok, status = False, type(exc).__name__
            with lock:
                (latencies if ok else errors).append(time.perf_counter() - began if ok else str(status))

    parts = stack.processes()
    before, began = {name: cpu_seconds(pid) for name, pid in parts.items()}, time.monotonic()
    own = time.process_time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    shares = {name: (cpu_seconds(pid) - before[name]) / elapsed for name, pid in parts.items()}
    shares["the clients"] = (time.process_time() - own) / elapsed
    print(f"  {stack.tree.label}, {'moving end' if moving else 'one window'}, "
          f"{'decoding' if decode else 'reading'}: {clients} clients, {seconds:.0f} s: "
          f"{len(latencies)} panels, "
          f"{len(latencies) / seconds:.1f} panels/s, p50 {_q(latencies, 0.5):.0f} ms, "
          f"p95 {_q(latencies, 0.95):.0f} ms, "
          f"{len(errors)} errors{(' ' + str(sorted(set(errors)))) if errors else ''}; share of a core: "
          + ", ".join(f"{name} {share:.0%}" for name, share in shares.items() if share >= 0.005), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="work folder, kept: its archive and index are reused (default: a "
                        "temporary one, removed after)")
    parser.add_argument("--days", type=float, default=30, help="days of the long archive (default 30)")
    parser.add_argument("--mb-per-day", type=float, default=16, help="its size per day (default 16)")
    parser.add_argument("--year", action="store_true", help="also a year before it at a low rate")
    parser.add_argument("--before", type=Path, help="another sisock tree, measured beside this one")
    parser.add_argument("--repeat", type=int, default=30, help="warm requests per span and way (default 30)")
    parser.add_argument("--clients", default="10,50", help="concurrent clients of (c), comma-separated ('' = skip)")
    parser.add_argument("--load-seconds", type=float, default=20, help="length of each load (default 20)")
    parser.add_argument("--parts", default="abc", help="which parts to run (default abc)")
    args = parser.parse_args()
    temporary = args.dir is None
    args.dir = args.dir or Path(tempfile.mkdtemp(prefix="sisock-bench-cold-"))
    try:
        return measure(args)
    finally:
        if temporary:
            shutil.rmtree(args.dir, ignore_errors=True)


def measure(args) -> int:
    """Everything but the work folder's making: (a) to (c) on its archive and index."""
    data = args.dir / "archive"
    made = archives(args.days, args.mb_per_day, args.year)
    if not data.is_dir():
        began = time.perf_counter()
        for archive in made:
            archive.write(data)
        print(f"archive written in {time.perf_counter() - began:.0f} s")
    files = sorted(data.rglob("*.g3"))
    print(f"archive: {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.0f} MB in {data}; "
          f"load average {os.getloadavg()[0]:.2f}")
    index = args.dir / "index.sqlite"
    if not index.exists():
        _, stats, seconds = scan(data, index)
        print(f"scanned in {seconds:.0f} s")
    indexes = {None: index}
    if args.before:  # an index of its own, at its own schema version (made by its own scanner)
        indexes[args.before] = args.dir / f"index-{args.before.name}.sqlite"
        if not indexes[args.before].exists():
            subprocess.run([sys.executable, "-c", _SCAN, str(indexes[args.before]), str(data)], check=True,
                           cwd=args.before, env=dict(os.environ, PYTHONPATH=str(args.before), PYTHONSAFEPATH="1"))
    open_index(load({"SQLITE_PATH": str(index)})).ensure_schema()  # this tree's schema
    names = panel(made[0])
    spans = {k: v for k, v in SPANS.items() if v <= args.days * DAY or (args.year and k == "1 y")}
    trees = [Tree(None)] + ([Tree(args.before)] if args.before else [])
    stacks: List[Stack] = []
    try:
        for tree in trees:
            used = indexes[tree.checkout]
            evicted = files + [used.with_name(used.name + suffix) for suffix in ("", "-wal", "-shm")]
            stacks.append(Stack(tree, args.dir / f"router-{len(stacks)}", data, used, evicted))
        if "a" in args.parts:
            first_panels(stacks, names, spans)
        if "b" in args.parts:
            warm(stacks[0], names, spans, args.repeat)
        if "c" in args.parts and args.clients:
            print(f"\n(c) concurrent clients on the 30-day panel ({len(names)} fields, maxDataPoints={POINTS}); "
                  f"load average before: {os.getloadavg()[0]:.2f}")
            for clients in (int(c) for c in args.clients.split(",")):
                for moving in (True, False):
                    for decode in (False, True):
                        for stack in stacks:
                            crowd(stack, names, clients, args.load_seconds, moving, decode)
    finally:
        for stack in stacks:
            stack.stop()
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
