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
import statistics  # noqa: E402
import tempfile  # noqa: E402

from tests.support import Processes, Router  # noqa: E402
from tests.test_large_answers import run_slow_readers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=60, help="slow readers at once (default 60)")
    parser.add_argument("--seconds", type=float, default=40, help="how long each reads (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sisock-bench-slow-") as tmp:
        router = Router(Path(tmp) / "router").start()
        procs = Processes(router.env)
        try:
            run = run_slow_readers(procs, args.clients, args.seconds)
        finally:
            procs.stop_all()
            router.stop()
    small = sorted(run.small)
    print(f"{args.clients} slow readers of a 24 MB answer for {args.seconds:.0f} s: sisock-http RSS before "
          f"{run.before:.0f} MB, peak {run.peak:.0f} MB, after {run.after:.0f} MB; {run.count(200)} answers begun, "
          f"{run.count(503)} refused busy (503); a small /query meanwhile: p50 {statistics.median(small) * 1000:.0f} "
          f"ms, p95 {small[int(0.95 * (len(small) - 1))] * 1000:.0f} ms, max {small[-1] * 1000:.0f} ms "
          f"({len(small)} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
