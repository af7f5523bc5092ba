"""Benchmark of the live and archive data node servers' own work (no WAMP).

1. data-feed ingest: an OCS block message of 1 000 fields × 10 samples into a
   full 10-minute buffer, through ``FeedCache.add`` (parse + append + trim);
   beside it the naive way (the original server: per-field Python lists,
   trimmed by building an array of the whole time list every message) and two
   limits: turning the message's Python lists into one array (the least any
   server must do) and copying 10 000 values between numpy arrays.
2. apex-weather read: one field for one year of one-minute samples (365 day
   files, 525 600 lines) through ``get_data``, cold and cached; beside it the
   naive way (line-by-line ``float()``, as the original), ``np.loadtxt``, and
   the raw limit (reading the files' bytes without parsing).
3. data-feed latency: a real router, hub and ``sisock data-feed``; an agent
   publishes on the OCS port and a client polls ``get_data`` over TLS until
   the sample shows; beside it one ``get_data`` round trip (the limit).

Usage: ``.venv/bin/python bench/data_nodes.py``
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).resolve().parents[1])

from sisock.config import Config  # noqa: E402
from sisock.servers.apex_weather import ApexWeatherServer  # noqa: E402
from sisock.servers.data_feed import FeedCache  # noqa: E402

FIELDS, PER_MESSAGE, RATE, BUFFER = 1000, 10, 10.0, 600.0
FEED = {"agent_address": "observatory.bench", "feed_name": "f"}


def timed(fn, repeat: int) -> float:
    """Best seconds per call of ``fn`` over ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def message(t0: float) -> dict:
    t = (t0 + np.arange(PER_MESSAGE) / RATE).tolist()
    data = {f"Channel {i}": [float(i)] * PER_MESSAGE for i in range(FIELDS)}
    return {"b": {"block_name": "b", "timestamps": t, "data": data}}


class NaiveFeed:
    """The original server's cache: lists per field, trimmed through a full array every message."""

    def __init__(self) -> None:
        self.data = {}

    def add(self, msg: dict, now: float) -> None:
        for block in msg.values():
            for channel, values in block["data"].items():
                entry = self.data.setdefault(channel.lower().replace(" ", "_"), {"time": [], "data": []})
                entry["data"].extend(values)
                entry["time"].extend(block["timestamps"])
                cut = int(np.sum(now - np.array(entry["time"]) > BUFFER))
                entry["time"], entry["data"] = entry["time"][cut:], entry["data"][cut:]


def bench_feed() -> None:
    fill = int(BUFFER * RATE / PER_MESSAGE)
    messages = [message(1e9 + k * PER_MESSAGE / RATE) for k in range(fill + 20)]
    ours, naive = FeedCache("observatory.bench", BUFFER), NaiveFeed()
    for k, msg in enumerate(messages[:fill]):
        now = 1e9 + (k + 1) * PER_MESSAGE / RATE
        ours.add(msg, FEED, now=now)
        naive.add(msg, now)
    extra = iter(enumerate(messages[fill:], start=fill))

    def step(cache):
        k, msg = next(extra)
        now = 1e9 + (k + 1) * PER_MESSAGE / RATE
        return (lambda: cache.add(msg, FEED, now=now)) if cache is ours else (lambda: cache.add(msg, now))

    ours_s = min(timed(step(ours), 1) for _ in range(10))
    naive_s = min(timed(step(naive), 1) for _ in range(3))
    target = np.empty((FIELDS, 2 * PER_MESSAGE))
    source = np.ones((FIELDS, PER_MESSAGE))
    raw_s = timed(lambda: np.copyto(target[:, :PER_MESSAGE], source), 50)
    lists = list(messages[-1]["b"]["data"].values())
    convert_s = timed(lambda: np.array(lists, dtype=float), 50)
    print(f"data-feed ingest, {FIELDS} fields x {PER_MESSAGE} samples per message, buffer full "
          f"({int(BUFFER * RATE)} samples per field, {ours.nbytes / 1e6:.0f} MB):")
    for label, seconds in (("FeedCache.add", ours_s), ("naive (original)", naive_s),
                           ("lists->array limit", convert_s), ("raw copy limit", raw_s)):
        print(f"  {label:<18} {seconds * 1e3:9.3f} ms/message  {1 / seconds:10.0f} messages/s")


def write_year(top: Path) -> None:
    targets = top / "targets"
    targets.mkdir(parents=True)
    start0 = 1_500_000_000
    for d in range(365):
        start = start0 + d * 86400
        t = np.arange(start, start + 86400, 60)
        v = np.round(10 + np.sin(t / 5000.0), 3)
        lines = "".join(f"{a} {b}\n" for a, b in zip(t.tolist(), v.tolist()))
        (targets / f"APEX_windspeed_{start}_{start + 86340}.dat").write_text(lines)


def naive_read(files) -> int:
    n = 0
    for path in files:
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                float(parts[0]), float(parts[1])
                n += 1
    return n


def bench_archive() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        write_year(top)
        files = sorted((top / "targets").iterdir())
        span = (1_500_000_000, 1_500_000_000 + 365 * 86400)
        server = ApexWeatherServer(Config(data_directory=top))
        cold = timed(lambda: server.get_data(["windspeed"], *span, None), 1)
        warm = timed(lambda: server.get_data(["windspeed"], *span, None), 5)
        naive = timed(lambda: naive_read(files), 1)
        loadtxt = timed(lambda: [np.loadtxt(p) for p in files], 1)
        raw = timed(lambda: [p.read_bytes() for p in files], 3)
        n = len(server.get_data(["windspeed"], *span, None)["data"]["windspeed"])
    print(f"apex-weather, one field, one year ({n} samples in 365 files):")
    for label, seconds in (("get_data, cold", cold), ("get_data, cached", warm), ("naive float() lines", naive),
                           ("np.loadtxt", loadtxt), ("raw read limit", raw)):
        print(f"  {label:<20} {seconds:8.3f} s  {n / seconds / 1e6:8.2f} M samples/s")


def bench_latency(samples: int = 30) -> None:
    """A real router, hub and ``sisock data-feed``: publish on the OCS port, poll ``get_data`` until seen."""
    from sisock import wamp
    from sisock.wamp_thread import ThreadedSession
    from tests.support import Processes, Router

    with tempfile.TemporaryDirectory() as tmp:
        router = Router(Path(tmp)).start()
        procs = Processes(router.env)
        try:
            procs.start("hub").wait_for("hub ready")
            procs.start("data-feed", env={"TARGET": "bench", "FEED": "f", "NAME": "bench"}).wait_for(
                "added data node bench")
            agent = ThreadedSession(router.config, transport="ocs").start()
            client = ThreadedSession(router.config).start()
            if not (agent.wait_connected(30) and client.wait_connected(30)):
                raise SystemExit("could not join the router")
            uri, topic = wamp.get_data_uri("bench"), "observatory.bench.feeds.f"
            latencies, calls = [], []
            for k in range(samples):
                stamp = time.time()
                agent.publish(topic, [{"block_name": "b", "timestamp": stamp, "data": {"v": float(k)}}, FEED])
                while True:
                    t0 = time.perf_counter()
                    seen = client.call(uri, "v", stamp - 1, stamp + 1)["data"].get("v")
                    calls.append(time.perf_counter() - t0)
                    if seen:
                        latencies.append(time.time() - stamp)
                        break
            agent.stop()
            client.stop()
        finally:
            procs.stop_all()
            router.stop()
    print(f"data-feed, publish on the OCS port -> visible in get_data over TLS ({samples} samples):")
    print(f"  publish to visible   median {np.median(latencies) * 1e3:7.1f} ms   max {max(latencies) * 1e3:7.1f} ms")
    print(f"  one get_data call    median {np.median(calls) * 1e3:7.1f} ms   (the raw limit of this measurement)")


if __name__ == "__main__":
    bench_feed()
    bench_archive()
    bench_latency()
