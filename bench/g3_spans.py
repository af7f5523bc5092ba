"""Benchmark of long spans: a 10-field panel over 1 hour to 1 year, from summary tiers and the naive way.

Writes a long archive (``--days`` days, 5 providers of 10 fields at rates that
give ``--mb-per-day``; hourly files, 60 s frames, as the OCS aggregator writes)
and, with ``--year``, a year before it at a low rate (10-minute frames, to keep
writing it to a few minutes). Then prints:
  (a) the first scan's rate with summaries and without (the same scanner with
      its aggregation switched off), and the summaries' size as a share of
      the archive;
  (b) ``Reader.data`` of 10 fields (2 per provider) at ``maxDataPoints=1000``
      for each span: cold (empty frame cache; the reader has its name table, as a
      running server does; the OS page cache stays warm) and warm, median of
      ``--repeat``; beside it the naive row,
      today's full-resolution path (every overlapping frame decoded, then
      decimated), run once; and ``get_fields`` over the span;
  (c) ``/query`` through sisock-http (real router, hub, g3-reader, http): p50
      of ``--repeat`` requests per span, with summaries and the naive way;
  (d) ``--clients`` concurrent Grafana-like clients for ``--load-seconds``
      asking mixed g3 panels (1 h to 30 d, 2 to 5 targets, 1000 points):
      requests/s, p50, p95, errors;
  (e) ``Reader.buckets`` (``get_buckets``) of 8 fields on the buckets of InfluxQL's
      ``GROUP BY time($__interval)`` as Grafana computes the interval for 1000 points (epoch-aligned,
      the first and last truncated to the window), every column, for each span: cold (a new
      worker: empty frame cache and decoded rows) and warm, median of ``--repeat``;
  (f) with ``--upgrade``: the same index taken back to version 6 (summary rows without moments),
      then upgraded as the scanner does in the background: its time and rate, and the summaries'
      size without and with moments.

Usage: ``.venv/bin/python bench/g3_spans.py [--days 30] [--year] [--mb-per-day 110] [--dir DIR]``
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional  # noqa: E402

import numpy as np  # noqa: E402

from bench.g3 import providers, scale_for, scan  # noqa: E402
from sisock.buckets import COLUMNS  # noqa: E402
from sisock.config import load  # noqa: E402
from sisock.g3 import parallel, summaries, upgrade  # noqa: E402
from sisock.g3.index import open_index  # noqa: E402
from sisock.g3.reader import FrameCache, Reader  # noqa: E402
from sisock.g3.scanner import Scanner  # noqa: E402
from sisock.g3.writer import Archive  # noqa: E402
from sisock.lru import SizedLRU  # noqa: E402
from tests.g3_support import as_version_6  # noqa: E402
from tests.http_support import JsonHttp, query  # noqa: E402
from tests.support import Processes, Router, free_port, wait_until  # noqa: E402

HOUR, DAY = 3600.0, 86400.0
END = 1_700_006_400.0  # a UTC midnight
#: The panel's window ends here: not on any grid, as Grafana's "now" is not.
NOW = END - 123.4
SPANS = {"1 h": HOUR, "1 d": DAY, "7 d": 7 * DAY, "30 d": 30 * DAY, "1 y": 365 * DAY}
POINTS = 1000


def panel(archive: Archive) -> List[str]:
    """10 fields, 2 per provider (blocks of different rates), as in the issue's measurement."""
    return [f"{p.description}.{b.fields[0]}" for p in archive.providers for b in p.blocks[2:4]]


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def summary_bytes(index) -> int:
    def work(cur):
        return sum(len(r[0]) for table in ("summaries_file", "summaries")
                   for r in cur.all(f"SELECT data FROM {table}"))
    return index.run(work)


def bench_reader(index, naive_index, names: List[str], spans: Dict[str, float], repeat: int,
                 naive_too: bool = True) -> None:
    print(f"\n(b) Reader.data of {len(names)} fields at maxDataPoints={POINTS} (median of {repeat}; naive: once)")
    print(f"  {'span':>5} | {'cold ms':>9} | {'warm ms':>9} | {'naive ms':>10} | {'naive/cold':>10} | {'points':>7} | "
          f"{'get_fields ms':>13}")
    cold_reader = Reader(index, 256)
    cold_reader.resolve(names)  # a running server has its name table; cold means an empty frame cache

    def cold_read(t0: float):
        cold_reader.cache = FrameCache(cold_reader.cache.capacity)
        return cold_reader.data(names, t0, NOW, max_points=POINTS)

    for label, span in spans.items():
        t0 = NOW - span
        cold = median_time(lambda t0=t0: cold_read(t0), repeat)
        warm_reader = Reader(index, 256)
        answer = warm_reader.data(names, t0, NOW, max_points=POINTS)
        warm = median_time(lambda r=warm_reader, t0=t0: r.data(names, t0, NOW, max_points=POINTS), repeat)
        naive = median_time(lambda t0=t0: Reader(naive_index, 256).data(names, t0, NOW, max_points=POINTS), 1) \
            if naive_too else float("nan")
        points = sum(len(t) for t, _ in answer.values())
        fields = median_time(lambda r=warm_reader, t0=t0: r.fields(t0, NOW), repeat)
        print(f"  {label:>5} | {cold * 1000:9.1f} | {warm * 1000:9.1f} | {naive * 1000:10.0f} | "
              f"{naive / cold:9.0f}x | {points:7d} | {fields * 1000:13.1f}", flush=True)


#: Grafana's rounding of an interval (its rangeutil ``roundInterval``, seconds): below each bound, the value.
GRAFANA_ROUNDING = [(12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300), (1050, 600),
                    (2100, 1200), (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600),
                    (86400, 43200), (604800, 86400), (1814400, 604800), (3628800, 2592000)]


def grafana_interval(span: float, points: int) -> float:
    """``$__interval`` (s) for a panel of ``span`` seconds and ``points`` points, as Grafana rounds it."""
    raw = span / points
    return next((value for bound, value in GRAFANA_ROUNDING if raw < bound), 31536000)


def group_by_time(t0: float, t1: float, interval: float) -> np.ndarray:
    """InfluxQL's buckets of ``GROUP BY time(interval)`` over ``[t0, t1]`` as edges in whole microseconds:
    multiples of the interval since the epoch, the first and last truncated to the window."""
    step = int(interval * 1e6)
    a, b = int(t0 * 1e6), int(t1 * 1e6) + 1
    return np.r_[a, np.arange(a // step + 1, (b - 1) // step + 1, dtype=np.int64) * step, b].astype(np.int64)


def bench_buckets(index, names: List[str], spans: Dict[str, float], repeat: int) -> None:
    print(f"\n(e) Reader.buckets of {len(names)} fields, every column, GROUP BY time($__interval) for {POINTS} "
          f"points (median of {repeat})")
    print(f"  {'span':>5} | {'interval':>8} | {'buckets':>7} | {'cold ms':>9} | {'warm ms':>9} | {'samples':>12}")

    def cold(edges):
        summaries._DECODED = SizedLRU(summaries.DECODED_BYTES)  # a new worker: nothing decoded yet
        return Reader(index, 256).buckets(names, edges, COLUMNS)

    for label, span in spans.items():
        interval = grafana_interval(span, POINTS)
        edges = group_by_time(NOW - span, NOW, interval)
        cold_s = median_time(lambda e=edges: cold(e), repeat)
        warm_reader = Reader(index, 256)
        found = warm_reader.buckets(names, edges, COLUMNS)
        warm_s = median_time(lambda r=warm_reader, e=edges: r.buckets(names, e, COLUMNS), repeat)
        samples = sum(int(b.count.sum()) for b in found.values())
        print(f"  {label:>5} | {interval:>7.0f}s | {len(edges) - 1:7d} | {cold_s * 1000:9.1f} | {warm_s * 1000:9.1f} | "
              f"{samples:12,d}", flush=True)


def bench_upgrade(directory: Path, data: Path) -> None:
    """(f): a copy of the index taken back to version 6, then upgraded as the scanner does."""
    path = directory / "upgrade.sqlite"
    for suffix in ("", "-wal", "-shm"):
        (directory / ("upgrade.sqlite" + suffix)).unlink(missing_ok=True)
    index_bytes(directory / "index.sqlite")
    shutil.copyfile(directory / "index.sqlite", path)
    index = open_index(load({"SQLITE_PATH": str(path)}))
    with_moments = summary_bytes(index)
    as_version_6(index)
    without = summary_bytes(index)
    began = time.perf_counter()
    index.ensure_schema()
    moments = upgrade.Resummarise(Scanner(index, data))
    batches = 0
    while moments.batch():
        batches += 1
    seconds = time.perf_counter() - began
    print(f"\n(f) upgrade of the version 6 index: {moments.done} files ({moments.bytes / 1e6:.0f} MB) read again in "
          f"{batches} batches, {seconds:.0f} s ({moments.bytes / 1e6 / seconds:.1f} MB/s); summaries "
          f"{without / 1e6:.1f} MB without moments, {with_moments / 1e6:.1f} MB with them "
          f"(+{with_moments / without - 1:.0%}), {summary_bytes(index) / 1e6:.1f} MB after the upgrade")
    index.close()


class Stack:
    """Router, hub, g3-reader and sisock-http on the benchmark's index."""

    def __init__(self, tmp: Path, data: Path) -> None:
        self.tmp, self.data = tmp, data
        self.router = Router(tmp / "router").start()
        self.procs = Processes(self.router.env)
        self.procs.start("hub").wait_for("hub ready")
        self.port = free_port()
        self.procs.start("http", env={"PORT": str(self.port), "HTTP_TIMEOUT": "600"})
        self.client = JsonHttp(self.port)
        self.reader = None

    def serve(self, index_path: Path, names: List[str]) -> None:
        """(Re)start the g3-reader on ``index_path`` and wait until sisock-http lists ``names``."""
        if self.reader is not None:
            self.reader.stop()
            wait_until(lambda: f"g3_reader::{names[0]}" not in self._search(), 60, "the old g3-reader to leave")
        self.reader = self.procs.start("g3-reader", env={"SQLITE_PATH": str(index_path),
                                                         "DATA_DIRECTORY": str(self.data)})
        wait_until(lambda: f"g3_reader::{names[0]}" in self._search(), 120, "sisock http to list the g3 fields")

    def _search(self) -> str:
        try:
            return str(self.client.request("POST", "/search", {})[1])
        except OSError:
            return ""

    def ask(self, names: List[str], t0: float, t1: float) -> float:
        body = query(t0, t1, *[f"g3_reader::{n}" for n in names], max_points=POINTS)
        began = time.perf_counter()
        status = self.client.request("POST", "/query", body, timeout=600)[0]
        if status != 200:
            raise RuntimeError(f"/query answered {status}")
        return time.perf_counter() - began

    def stop(self) -> None:
        self.procs.stop_all()
        self.router.stop()


def bench_http(stack: Stack, index_path: Path, naive_path: Optional[Path], names: List[str], spans: Dict[str, float],
               repeat: int) -> None:
    print(f"\n(c) /query of {len(names)} targets through sisock-http, maxDataPoints={POINTS}")
    print(f"  {'span':>5} | {'p50 ms':>9} | {'naive ms':>10}")
    rows = {}
    stack.serve(index_path, names)
    for label, span in spans.items():
        stack.ask(names, NOW - span, NOW)  # the reader's name table and the page cache
        rows[label] = statistics.median(stack.ask(names, NOW - span, NOW) for _ in range(repeat))
    if naive_path is not None:
        stack.serve(naive_path, names)
    for label, span in spans.items():
        naive = stack.ask(names, NOW - span, NOW) if naive_path is not None else float("nan")
        print(f"  {label:>5} | {rows[label] * 1000:9.1f} | {naive * 1000:10.0f}", flush=True)
    if naive_path is not None:
        stack.serve(index_path, names)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) used so far by ``pid`` and the processes it started, alive ones."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / tick
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                total += sum(cpu_seconds(int(child)) for child in handle.read().split())
    except (OSError, IndexError, ValueError):  # gone meanwhile
        return 0.0
    return total


def bench_load(stack: Stack, archive: Archive, clients: int, seconds: float) -> None:
    """``clients`` threads, each asking a random panel as soon as the last one came back; then
    the share of a core each process used (the reader with its worker processes)."""
    every = [f"{p.description}.{b.fields[0]}" for p in archive.providers for b in p.blocks]
    spans = [HOUR, 6 * HOUR, DAY, 7 * DAY, 30 * DAY]
    latencies: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        http = JsonHttp(stack.port)
        while time.monotonic() < stop_at:
            names = rng.sample(every, rng.randint(2, 5))
            span = rng.choice(spans)
            t1 = NOW - rng.uniform(0, DAY)
            body = query(t1 - span, t1, *[f"g3_reader::{n}" for n in names], max_points=POINTS)
            began = time.perf_counter()
            try:
                status = http.request("POST", "/query", body, timeout=60)[0]
                ok = status == 200
            except OSError as exc:
                ok, status = False, type(exc).__name__
            with lock:
                (latencies if ok else errors).append(time.perf_counter() - began if ok else str(status))

    parts = {"router": stack.router.process.proc.pid, **{p.name: p.proc.pid for p in stack.procs.running
                                                          if p.proc.poll() is None}}
    before, began = {name: cpu_seconds(pid) for name, pid in parts.items()}, time.monotonic()
    clients_before = time.process_time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    shares = {name: (cpu_seconds(pid) - before[name]) / elapsed for name, pid in parts.items()}
    shares["the clients (this benchmark)"] = (time.process_time() - clients_before) / elapsed
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(f"\n(d) {clients} clients for {seconds:.0f} s, mixed panels (1 h to 30 d, 2 to 5 targets, {POINTS} points): "
          f"{len(latencies) / seconds:.1f} requests/s, p50 {p(0.5):.0f} ms, p95 {p(0.95):.0f} ms, "
          f"{len(errors)} errors{(' ' + str(sorted(set(errors)))) if errors else ''}")
    print("  share of a core: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items() if share >= 0.005))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30, help="days of the long archive (default 30)")
    parser.add_argument("--mb-per-day", type=float, default=110, help="its size per day (default 110)")
    parser.add_argument("--year", action="store_true", help="also a year before it at a low rate")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients of (d) (0 = skip)")
    parser.add_argument("--load-seconds", type=float, default=60, help="length of (d) (default 60)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--reader-only", action="store_true", help="only (b), without its naive row, and (e)")
    parser.add_argument("--upgrade", action="store_true", help="also (f), the upgrade of a version 6 index")
    parser.add_argument("--skip-naive", action="store_true", help="(b) to (d) without the naive rows (minutes)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --dir: read the archive and indexes an earlier run left there, skip (a)")
    parser.add_argument("--reuse-archive", action="store_true",
                        help="with --dir: the archive an earlier run wrote there (same options), scanned anew")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="sisock-bench-spans-"))
    try:
        data = directory / "archive"
        factor = scale_for(args.mb_per_day / 1000)
        archive = Archive(providers(factor), END - args.days * DAY, END, file_seconds=HOUR, frame_seconds=60.0)
        spans = {k: v for k, v in SPANS.items() if v <= args.days * DAY or (args.year and k == "1 y")}
        if args.reuse:
            index, naive_index = (open_index(load({"SQLITE_PATH": str(directory / name)}))
                                  for name in ("index.sqlite", "naive.sqlite"))
            for i in (index, naive_index):
                i.ensure_schema()
            print(f"reusing the archive and indexes in {directory}")
            return measure(args, directory, data, archive, index, naive_index, spans)
        if args.reuse_archive:
            size = sum(p.stat().st_size for p in data.rglob("*.g3"))
            print(f"reusing the archive in {data}: {size / 1e6:.0f} MB")
            for name in ("index.sqlite", "naive.sqlite"):
                for suffix in ("", "-wal", "-shm"):
                    (directory / (name + suffix)).unlink(missing_ok=True)
            return scan_and_measure(args, directory, data, archive, size, spans)
        began = time.perf_counter()
        paths = archive.write(data)
        size = sum(p.stat().st_size for p in paths)
        print(f"long archive: {args.days:g} days, 5 providers x 10 fields at {factor:.3f} x (1, 2, 5, 10) Hz, "
              f"hourly files, 60 s frames: {len(paths)} files, {size / 1e6:.0f} MB, written in "
              f"{time.perf_counter() - began:.0f} s")
        if args.year:
            year = Archive(providers(0.02), END - args.days * DAY - 365 * DAY, END - args.days * DAY,
                           file_seconds=HOUR, frame_seconds=600.0)
            began = time.perf_counter()
            year_paths = year.write(data)
            year_size = sum(p.stat().st_size for p in year_paths)
            print(f"a year before it: 0.02 x the rates, 10-minute frames: {len(year_paths)} files, "
                  f"{year_size / 1e6:.0f} MB, written in {time.perf_counter() - began:.0f} s")
            size += year_size
        return scan_and_measure(args, directory, data, archive, size, spans)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


def index_bytes(path: Path) -> int:
    """An SQLite index's size on disk, its write-ahead log checkpointed first."""
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def scan_and_measure(args, directory: Path, data: Path, archive: Archive, size: int, spans: Dict[str, float]) -> int:
    """(a), then :func:`measure`."""
    naive_index, before, before_s = scan(data, directory / "naive.sqlite", summarise=False)
    index, after, after_s = scan(data, directory / "index.sqlite", summarise=True)
    stored = summary_bytes(index)  # reads every blob: once
    grown = index_bytes(directory / "index.sqlite") - index_bytes(directory / "naive.sqlite")
    print(f"\n(a) first scan: {after.bytes / 1e6 / after_s:.0f} MB/s with summaries, "
          f"{before.bytes / 1e6 / before_s:.0f} MB/s without ({after_s / before_s:.2f}x the time; "
          f"{parallel.cores()} worker processes); summaries: {stored / 1e6:.1f} MB of blobs, "
          f"{stored / size:.2%} of the archive; the index file {grown / 1e6:.1f} MB larger than without them "
          f"({grown / size:.2%}, rows and keys included)")
    return measure(args, directory, data, archive, index, naive_index, spans)


def measure(args, directory: Path, data: Path, archive: Archive, index, naive_index, spans: Dict[str, float]) -> int:
    """Parts (b) to (d) on scanned indexes."""
    names = panel(archive)
    bench_reader(index, naive_index, names, spans, args.repeat, naive_too=not (args.reader_only or args.skip_naive))
    bench_buckets(index, names[:8], spans, args.repeat)
    if args.upgrade:
        bench_upgrade(directory, data)
    if args.reader_only:
        return 0
    stack = Stack(directory, data)
    try:
        bench_http(stack, directory / "index.sqlite", None if args.skip_naive else directory / "naive.sqlite",
                   names, spans, args.repeat)
        if args.clients:
            bench_load(stack, archive, args.clients, args.load_seconds)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
