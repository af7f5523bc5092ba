"""Benchmark of the archive following the aggregator, and of the joined series' ``/query``.

(a) Lag: a watching ``g3-file-scanner`` (SQLite index, a pass an hour) and a writer that appends
one frame of 10 fields at 10 Hz every ``--frame`` seconds to a growing file for ``--minutes``;
the lag is from a frame's flush to the index holding its samples (polled every 20 ms).

(b) ``/query`` p50 of a 10-field panel over the last 3 hours (1 Hz fields, ``maxDataPoints``
1000): the joined names, whose archive ends 2 minutes ago and whose data-feed holds the last
hour (so the panel crosses the seam), beside the same fields from the archive alone
(``g3_reader::``). Real router, hub, scanner, g3-reader, data-feed and sisock-http.

(c) Watching: the watches, set-up time, idle CPU and one event's delay on a tree of 10 000
files in 100 folders (the watcher alone, in this process).

Usage: ``.venv/bin/python bench/joined.py [--minutes 3] [--frame 5] [--repeat 30]``
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository, not bench/, first

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from bench.http import machine  # noqa: E402
from sisock.config import load  # noqa: E402
from sisock.g3 import watch  # noqa: E402
from sisock.g3.index import open_index  # noqa: E402
from sisock.g3.writer import Block, Provider  # noqa: E402
from sisock.wamp_thread import ThreadedSession  # noqa: E402
from tests.http_support import JsonHttp, query  # noqa: E402
from tests.joined_support import Aggregator  # noqa: E402
from tests.support import Processes, Router, free_port, wait_until  # noqa: E402

FIELDS = tuple(f"Channel_{i:02d}_T" for i in range(10))


def provider(rate: float) -> Provider:
    return Provider("observatory.LSBENCH.feeds.temperatures", (Block("temps", FIELDS, rate),))


def bench_lag(work: Path, minutes: float, frame: float) -> None:
    env = {"DATA_DIRECTORY": str(work / "lag"), "SQLITE_PATH": str(work / "lag.sqlite"), "SCAN_INTERVAL": "3600",
           "LOGLEVEL": "info"}
    (work / "lag").mkdir()
    p = provider(10.0)
    agg = Aggregator(work / "lag", None, [p], frame=frame)
    t0 = math.floor(time.time())
    agg.new_file(t0)
    agg.write(t0, t0 + frame)
    procs = Processes({})
    lags = []
    try:
        procs.start("g3-file-scanner", env=env).wait_for("pass done")
        index = open_index(load(env))
        written = {}  # frame end -> monotonic time of its flush
        lock = threading.Lock()
        done = threading.Event()

        def poll():
            seen = 0.0
            while not done.is_set() or len(lags) < len(written):
                newest = index.indexed_until([p.description]).get(p.description, 0.0)
                now = time.monotonic()
                with lock:
                    frames = sorted(written.items())
                for end, flushed in frames:
                    if seen < end - 0.5 <= newest:
                        lags.append(now - flushed)
                seen = max(seen, newest)
                if done.is_set() and now - max((f for _, f in frames), default=now) > 30:
                    break
                time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        a = t0 + frame
        stop_at = time.monotonic() + minutes * 60
        while time.monotonic() < stop_at:
            time.sleep(frame)
            agg.write(a, a + frame)
            with lock:
                written[a + frame - 1e-9] = time.monotonic()
            a += frame
        done.set()
        poller.join()
        index.close()
    finally:
        agg.close()
        procs.stop_all()
    lags.sort()
    print(f"(a) write-to-index lag over {len(lags)} frames of {frame:g} s ({minutes:g} min): "
          f"median {statistics.median(lags):.2f} s, max {max(lags):.2f} s; the newest indexed sample is then at "
          f"most {frame:g} s (the frame) + {max(lags):.2f} s behind the newest sample the writer had")


def bench_watch(work: Path, files: int = 10_000, per_folder: int = 100) -> None:
    """What watching costs on a tree of ``files`` files: set-up time, watches, idle CPU, one event."""
    top = work / "many"
    for i in range(files):
        folder = top / f"{17000 + i // per_folder}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"{1700000000 + i}.g3").touch()
    changes = watch.Changes()
    watcher = watch.TreeWatcher(top, changes)
    began = time.perf_counter()
    watcher.start()
    setup = time.perf_counter() - began
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(10)
    idle = (time.process_time() - cpu) / (time.monotonic() - wall)
    stop = threading.Event()
    began = time.monotonic()
    with open(top / "17050" / "1700005000.g3", "ab") as handle:
        handle.write(b"x")
    got = changes.take(stop, time.monotonic() + 10)
    print(f"(c) watching {files} files in {watcher.folders} folders: {watcher.folders} inotify watches, set up in "
          f"{setup:.2f} s; idle CPU {idle * 100:.2f}% of a core over 10 s; one write reported after "
          f"{time.monotonic() - began:.2f} s (the {watch.DEBOUNCE:g} s debounce), {len(got)} file")


def bench_query(work: Path, repeat: int) -> None:
    router = Router(work / "router").start()
    env = {"DATA_DIRECTORY": str(work / "q"), "SQLITE_PATH": str(work / "q.sqlite"), "LOGLEVEL": "info"}
    p = provider(1.0)
    now = math.floor(time.time())
    procs = Processes(router.env)
    ocs = ThreadedSession(router.config, transport="ocs").start()
    assert ocs.wait_connected(30)
    agg = Aggregator(work / "q", ocs, [p], frame=60.0)
    try:
        procs.start("hub").wait_for("hub ready")
        feed = procs.start("data-feed", env={"TARGET": "LSBENCH", "FEED": "temperatures", "NAME": "bench_feed"})
        feed.wait_for("added data node bench_feed")
        start = now - 4 * 3600
        for hour in range(4):  # hourly files, as the aggregator writes them; the last one still growing
            agg.new_file(start + hour * 3600)
            agg.write(start + hour * 3600, min(start + (hour + 1) * 3600, now - 120))
        agg.publish(p, now - 3600, now, per_message=60.0)
        procs.start("g3-file-scanner", env=dict(env, SCAN_INTERVAL="3600")).wait_for("pass done")
        procs.start("g3-reader", env=env).wait_for("added data node g3_reader")
        port = free_port()
        procs.start("http", env={"PORT": str(port)}).wait_for("serving Grafana datasources")
        http = JsonHttp(port)
        joined = [f"{p.description}.{f}" for f in FIELDS]
        wait_until(lambda: all(n in http.request("POST", "/search", {})[1] for n in joined), 60, "the joined names")
        wait_until(lambda: "bench_feed::channel_00_t" in http.request("POST", "/search", {})[1], 60, "the feed")
        end = time.time()
        print(f"(b) /query of 10 fields over the last 3 h, maxDataPoints 1000, after 2 warm-up requests;"
              f" {repeat} timed:")
        for label, targets in (("joined (archive to now-2 min, live after)", joined),
                               ("archive alone (g3_reader::)", [f"g3_reader::{n}" for n in joined])):
            body = query(end - 3 * 3600, end, *targets, max_points=1000)
            for _ in range(2):
                status, answer, _ = http.request("POST", "/query", body)
                assert status == 200, answer
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                status, answer, headers = http.request("POST", "/query", body)
                times.append(time.perf_counter() - began)
            newest = max(pt[1] for s in answer for pt in s["datapoints"]) / 1000
            points = sum(len(s["datapoints"]) for s in answer)
            print(f"    {label:<45} p50 {statistics.median(times) * 1000:7.1f} ms, "
                  f"p90 {sorted(times)[int(0.9 * len(times))] * 1000:7.1f} ms; {points} points, newest "
                  f"{end - newest:.0f} s ago; Server-Timing {headers.get('Server-Timing')}")
    finally:
        agg.close()
        ocs.stop()
        procs.stop_all()
        router.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long frames are written in (a)")
    parser.add_argument("--frame", type=float, default=5.0, help="seconds between two frames in (a)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per case in (b)")
    args = parser.parse_args()
    print(f"joined-series benchmark on {machine()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as work:
        bench_lag(Path(work), args.minutes, args.frame)
        bench_watch(Path(work))
        bench_query(Path(work), args.repeat)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
