"""Benchmark of InfluxQL on sisock beside a real InfluxDB 1.x holding the same samples.

The archive of bench/g3_spans.py (``--days`` days at ``--mb-per-day``, 5 providers of 10 fields,
hourly files, 60 s frames; with ``--year`` a year before it at a low rate) is scanned by sisock and
written to an influxd (Debian's, on free loopback ports, its data kept in ``--dir`` between runs) in
the OCS publisher's schema: measurement ``observatory.agentN``, tag ``feed=hk``, the block's fields.
Then, in one run, for sisock's ``/influxdb`` (real router, hub, g3-reader, sisock-http) and influxd:

  (a) an 8-field Grafana panel, ``mean`` and separately ``max`` per field, ``GROUP BY
      time($__interval)`` with the interval Grafana computes for 1000 points (its roundInterval),
      over 1 h, 1 d, 7 d, 30 d and 1 y: the first panel after a restart (page cache dropped when run
      as root) and the warm p50 and p90 of ``--repeat``; a last-value stat panel; an alert-rule query (mean
      over the last 5 minutes at the archive's end, by minute);
  (b) ``--clients`` concurrent clients asking the 30-day mean panel for ``--load-seconds``;
  (c) the summaries' size (with their moments) as a share of the archive.

Every panel's answer from sisock is checked equal to influxd's (floats to 1e-9) before it is timed.

The default rate is bench/g3_spans.py's (110 MB a day), the archive issue 22's targets are set on;
``--mb-per-day 16`` is bench/cold.py's smaller one. Loading influxd takes about 17 minutes at 110.

Usage: ``.venv/bin/python bench/influxql.py [--days 30] [--year] [--mb-per-day 110] [--dir DIR]``
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402

from bench.g3 import providers, scale_for, scan  # noqa: E402
from bench.g3_spans import DAY, END, HOUR, Stack, summary_bytes  # noqa: E402
from sisock.g3.writer import Archive  # noqa: E402
from tests.influx_support import Influxd, ensure_influxd  # noqa: E402
from tests.test_influxql_conformance import difference  # noqa: E402

DB = "ocs_feeds"
SPANS = {"1 h": HOUR, "1 d": DAY, "7 d": 7 * DAY, "30 d": 30 * DAY, "1 y": 365 * DAY}
POINTS = 1000
#: Grafana's roundInterval (pkg/tsdb/intervalv2): (up to this many ms, the interval in ms).
_ROUND = [(10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
          (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000),
          (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
          (2700000, 1800000), (5400000, 3600000), (9000000, 7200000), (16200000, 10800000),
          (32400000, 21600000), (86400000, 43200000), (172800000, 86400000), (604800000, 86400000),
          (1814400000, 604800000), (3628800000 - 1, 2592000000)]


def grafana_interval_ms(span_s: float, points: int = POINTS) -> int:
    """``$__interval`` for a panel of ``span_s`` seconds and ``points`` pixels, as Grafana computes it."""
    raw = span_s * 1000 / points
    return next((ms for limit, ms in _ROUND if raw <= limit), 31536000000)


def fields_of(archive: Archive) -> List[Tuple[str, str]]:
    """The panel's 8 fields: (measurement, field key), blocks of every rate."""
    out = []
    for p in archive.providers[:4]:
        agent = p.description.split(".feeds.")[0]
        out += [(agent, p.blocks[1].fields[0]), (agent, p.blocks[3].fields[0])]
    return out


def panel(fields: List[Tuple[str, str]], fn: str, t0: float, t1: float, interval_ms: Optional[int]) -> str:
    """The statements Grafana's builder writes for ``fields`` (one a target), ``$timeFilter`` expanded."""
    window = f"time >= {int(t0 * 1000)}ms and time <= {int(t1 * 1000)}ms"
    group = f" GROUP BY time({interval_ms}ms) fill(null)" if interval_ms else ""
    return "; ".join(f'SELECT {fn}("{key}") FROM "{m}" WHERE ("feed"::tag = \'hk\') AND {window}{group}'
                     for m, key in fields)


class Api:
    """An InfluxDB 1.x query endpoint (influxd's, or sisock-http's /influxdb)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def ask(self, q: str, timeout: float = 1800) -> Tuple[float, dict]:
        """(seconds, answer) of one query (POST, epoch=ms, as Grafana sends it)."""
        body = urllib.parse.urlencode({"q": q}).encode()
        url = f"{self.base}/query?" + urllib.parse.urlencode({"db": DB, "epoch": "ms"})
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read()
        return time.perf_counter() - began, json.loads(text)


def drop_page_cache() -> bool:
    """Drop the kernel's page cache (root only); whether it was dropped."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
        return True
    except OSError:
        return False


def load_influx(server: Influxd, archives: List[Archive]) -> int:
    """Write every sample of ``archives`` to influxd in the publisher's schema; return the values written."""
    server.query(f"CREATE DATABASE {DB}", method="POST")
    written = 0
    for archive in archives:
        t0 = archive.start
        while t0 < archive.end:
            t1 = min(t0 + DAY, archive.end)
            lines: List[str] = []
            for p in archive.providers:
                agent = p.description.split(".feeds.")[0]
                for block in p.blocks:
                    columns = [archive.samples(p.description, f, t0, t1) for f in block.fields]
                    if not len(columns[0][0]):
                        continue
                    stamps = (np.rint(columns[0][0] * 1e6).astype(np.int64) * 1000).tolist()
                    values = [c[1].tolist() for c in columns]
                    head = f"{agent},feed=hk "
                    for i, stamp in enumerate(stamps):
                        lines.append(head + ",".join(f"{k}={v[i]!r}" for k, v in zip(block.fields, values))
                                     + f" {stamp}")
                    written += len(stamps) * len(block.fields)
            for a in range(0, len(lines), 20000):
                server.write(DB, "\n".join(lines[a:a + 20000]) + "\n")
            t0 = t1
        print(f"  influxd: {written / 1e6:.1f} M values written", flush=True)
    return written


def timed(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def compare(ours: dict, theirs: dict, what: str) -> None:
    found = difference(theirs, ours)
    if found is not None:
        raise AssertionError(f"{what}: sisock's answer differs from influxd's: {found}")


def bench_panels(sisock: Api, influx: Api, fields: List[Tuple[str, str]], spans: Dict[str, float], now: float,
                 repeat: int, restart: Dict[str, Callable[[], None]]) -> None:
    print(f"\n(a) an {len(fields)}-field panel, {POINTS} points, GROUP BY time($__interval) "
          f"(p50 of {repeat} warm; first: after a restart{' and a dropped page cache' if os.geteuid() == 0 else ''})")
    print(f"  {'query':<14} {'span':>5} {'interval':>9} | {'sisock first':>12} {'sisock p50':>10} {'p90':>7} | "
          f"{'influxdb first':>14} {'influxdb p50':>12} | {'ratio':>6}")
    for fn in ("mean", "max"):
        for label, span in spans.items():
            interval = grafana_interval_ms(span)
            q = panel(fields, fn, now - span, now, interval)
            firsts = {}
            for name, api in (("sisock", sisock), ("influxdb", influx)):
                restart[name]()
                drop_page_cache()
                firsts[name] = api.ask(q)[0]
            ours, theirs = sisock.ask(q)[1], influx.ask(q)[1]
            compare(ours, theirs, f"{fn} over {label}")
            times = sorted(sisock.ask(q)[0] for _ in range(repeat))
            warm, tail = statistics.median(times), times[int(0.9 * (len(times) - 1))]
            slow = timed(lambda q=q: influx.ask(q)[0], max(1, min(repeat, 3)) if span >= 7 * DAY else repeat)
            print(f"  {fn + ' panel':<14} {label:>5} {interval / 1000:>8g}s | {firsts['sisock'] * 1000:10.1f}ms "
                  f"{warm * 1000:8.1f}ms {tail * 1000:5.1f}ms | {firsts['influxdb'] * 1000:12.0f}ms "
                  f"{slow * 1000:10.0f}ms | {slow / warm:5.0f}x", flush=True)
    stat = panel(fields, "last", now - 7 * DAY, now, None)
    alert = panel(fields[:1], "mean", now - 300, now, 60000)
    for label, q in (("stat (last, 7 d)", stat), ("alert (5 min)", alert)):
        compare(sisock.ask(q)[1], influx.ask(q)[1], label)
        ours, theirs = timed(lambda q=q: sisock.ask(q)[0], repeat), timed(lambda q=q: influx.ask(q)[0], repeat)
        print(f"  {label:<20} sisock p50 {ours * 1000:.1f} ms, influxdb p50 {theirs * 1000:.1f} ms", flush=True)


def bench_load(api: Api, fields: List[Tuple[str, str]], now: float, clients: int, seconds: float, name: str) -> None:
    q = panel(fields, "mean", now - 30 * DAY, now, grafana_interval_ms(30 * DAY))
    latencies: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop_at:
            try:
                took = api.ask(q, timeout=600)[0]
                with lock:
                    latencies.append(took)
            except (OSError, urllib.error.HTTPError) as exc:
                with lock:
                    errors.append(type(exc).__name__)

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    p = (lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000) if latencies else \
        (lambda f: math.nan)
    print(f"  {name:<9} {len(latencies)} panels in {elapsed:.0f} s ({len(latencies) / elapsed:.1f}/s), "
          f"p50 {p(0.5):.0f} ms, p95 {p(0.95):.0f} ms, {len(errors)} errors", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30, help="days of the archive (default 30)")
    parser.add_argument("--mb-per-day", type=float, default=110, help="its size per day (default 110)")
    parser.add_argument("--year", action="store_true", help="also a year before it at a low rate")
    parser.add_argument("--repeat", type=int, default=10, help="warm runs per figure (default 10)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients of (b) (0 = skip)")
    parser.add_argument("--load-seconds", type=float, default=20, help="length of (b) (default 20)")
    parser.add_argument("--dir", type=Path, help="work folder kept between runs (default: a temporary one)")
    args = parser.parse_args()
    if not ensure_influxd():
        print("influxd is not installed: run as root once (tests/provision/install_influxdb.sh)")
        return 1
    directory = args.dir or Path(tempfile.mkdtemp(prefix="sisock-bench-influxql-"))
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "archive"
    factor = scale_for(args.mb_per_day / 1000)
    archives = [Archive(providers(factor), END - args.days * DAY, END, file_seconds=HOUR, frame_seconds=60.0)]
    if args.year:
        archives.append(Archive(providers(0.02), END - args.days * DAY - 365 * DAY, END - args.days * DAY,
                                file_seconds=HOUR, frame_seconds=600.0))
    spans = {k: v for k, v in SPANS.items() if v <= args.days * DAY or (args.year and k == "1 y")}
    try:
        if not (directory / "written").exists():
            shutil.rmtree(data, ignore_errors=True)
            size = sum(p.stat().st_size for a in archives for p in a.write(data))
            (directory / "written").write_text(str(size))
        size = int((directory / "written").read_text())
        index_path = directory / "index.sqlite"
        if not index_path.exists():
            index, stats, seconds = scan(data, index_path)
            print(f"sisock's first scan: {stats.bytes / 1e6:.0f} MB in {seconds:.0f} s")
        else:
            from sisock.config import load
            from sisock.g3.index import open_index
            index = open_index(load({"SQLITE_PATH": str(index_path)}))
        stored = summary_bytes(index)
        print(f"archive: {size / 1e6:.0f} MB; (c) summaries with their moments: {stored / 1e6:.1f} MB, "
              f"{stored / size:.2%} of the archive")
        influx_root = directory / "influxd"
        loaded = (influx_root / "loaded").exists()
        influx_root.mkdir(exist_ok=True)
        servers = {"influxd": Influxd(root=influx_root).start()}
        server = servers["influxd"]
        if not loaded:
            began = time.perf_counter()
            values = load_influx(server, archives)
            print(f"influxd loaded: {values / 1e6:.1f} M values in {time.perf_counter() - began:.0f} s")
            (influx_root / "loaded").write_text("yes")
        stack = Stack(directory, data)
        fields = fields_of(archives[0])
        try:
            stack.serve(index_path, [f"{m}.feeds.hk.{k}" for m, k in fields])
            sisock, influx = Api(f"http://127.0.0.1:{stack.port}/influxdb"), Api(server.url)

            def restart_sisock() -> None:
                stack.serve(index_path, [f"{m}.feeds.hk.{k}" for m, k in fields])

            def restart_influx() -> None:
                servers["influxd"].stop()
                servers["influxd"] = Influxd(root=influx_root).start()
                influx.base = servers["influxd"].url

            bench_panels(sisock, influx, fields, spans, END - 123.4, args.repeat,
                         {"sisock": restart_sisock, "influxdb": restart_influx})
            if args.clients:
                print(f"\n(b) {args.clients} clients for {args.load_seconds:.0f} s asking the 30-day mean panel")
                bench_load(sisock, fields, END - 123.4, args.clients, args.load_seconds, "sisock")
                bench_load(influx, fields, END - 123.4, min(args.clients, 10), args.load_seconds, "influxdb")
        finally:
            stack.stop()
            servers["influxd"].stop()
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
