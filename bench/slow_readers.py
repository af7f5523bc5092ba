"""Benchmark of sisock-http's memory under clients that ask for big answers and read them slowly.

Starts a real router, hub, a data node with one 10 Hz field over any window (tests/nodes/big_node.py)
and ``sisock http``; then ``--clients`` clients each ask for a day of that field at
``maxDataPoints=1000000`` (about 24 MB of JSON) and read the answer one byte a second, for
``--seconds``, while a small ``/query`` is timed every half second. Prints sisock-http's resident
memory before, at its peak and after, how many big answers were begun or refused busy, and the
small query's latency.

Usage: ``.venv/bin/python bench/slow_readers.py [--clients 60] [--seconds 40]``
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from tests.http_support import query  # noqa: E402
from tests.support import Processes, Router  # noqa: E402
from tests.test_large_answers import rss_mb, slow_reader, start_big_node, start_http  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=60, help="slow readers at once (default 60)")
    parser.add_argument("--seconds", type=float, default=40, help="how long each reads (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sisock-bench-slow-") as tmp:
        router = Router(Path(tmp) / "router").start()
        procs = Processes(router.env)
        try:
            procs.start("hub").wait_for("hub ready")
            start_big_node(procs)
            http, process = start_http(procs, HTTP_TIMEOUT="20")
            pid = process.proc.pid
            end = float(int(time.time()))
            big = query(end - 86400, end, "big_node::fast", max_points=1_000_000)
            status, _, _ = http.request("POST", "/query", big, timeout=120)  # every code path loaded
            assert status == 200, status
            time.sleep(1.0)
            before = rss_mb(pid)
            statuses: list = []
            payload = json.dumps(big).encode()
            readers = [threading.Thread(target=slow_reader, args=(http.port, payload, args.seconds, statuses))
                       for _ in range(args.clients)]
            for reader in readers:
                reader.start()
            peak, small = before, []
            small_query = query(end - 60, end, "big_node::fast", max_points=100)
            while any(reader.is_alive() for reader in readers):
                peak = max(peak, rss_mb(pid))
                began = time.monotonic()
                http.request("POST", "/query", small_query, timeout=60)
                small.append(time.monotonic() - began)
                time.sleep(0.5)
            time.sleep(2.0)
            after = rss_mb(pid)
            begun = sum(" 200 " in f"{s} " for s in statuses)
            busy = sum(" 503 " in f"{s} " for s in statuses)
            print(f"{args.clients} slow readers of a 24 MB answer for {args.seconds:.0f} s: sisock-http RSS before "
                  f"{before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB; {begun} answers begun, {busy} refused "
                  f"busy (503); a small /query meanwhile: p50 {statistics.median(small) * 1000:.0f} ms, "
                  f"p95 {sorted(small)[int(0.95 * (len(small) - 1))] * 1000:.0f} ms, max {max(small) * 1000:.0f} ms "
                  f"({len(small)} queries)")
        finally:
            procs.stop_all()
            router.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
