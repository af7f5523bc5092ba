"""Benchmark of sisock-http's ``/query``: latency, throughput and where the time goes.

Starts a real router, hub, weather data node (serving 50 fields of 86 400
samples: one day at 1 Hz) and ``sisock http``, then for 1, 10 and 50 fields
times ``/query`` with ``maxDataPoints=1000`` (and the matching ``intervalMs``)
and without a cap. Beside it, the raw limit: the same ``get_data`` called
directly over WAMP, without HTTP. The share columns come from the server's
``Server-Timing`` header (wamp = fan-out including the data node's own work).

Usage: ``.venv/bin/python bench/http.py [--repeat N]``
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# standard library's ``http``: put the repository there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import numpy as np  # noqa: E402

from sisock import wamp  # noqa: E402
from sisock.decimate import choose_step  # noqa: E402
from sisock.wamp_thread import ThreadedSession  # noqa: E402
from tests.http_support import JsonHttp, query  # noqa: E402
from tests.support import Processes, Router, free_port, wait_until  # noqa: E402

DAY = 86400
FIELD_COUNTS = (1, 10, 50)
CAP = 1000


def write_fields(directory: Path, count: int, end: float) -> None:
    """``count`` 1 Hz fields over one day, sharing one timeline, in the weather server's format."""
    directory.mkdir(parents=True, exist_ok=True)
    t = np.arange(end - DAY, end)
    rng = np.random.default_rng(1)
    stamps = np.char.mod("%d ", t.astype(np.int64))
    for i in range(count):
        values = np.char.mod("%.4f", np.cumsum(rng.standard_normal(len(t))) * 0.01 + i)
        text = "\n".join(np.char.add(stamps, values).tolist())
        (directory / f"f{i:02d}.txt").write_text(f"# bench field {i}\n# bench_1hz\n# K\n{text}\n")


def percentile(values, p):
    return float(np.percentile(values, p)) * 1000


def timed(fn, repeat: int):
    """Latencies (s) of ``repeat`` calls after two warm-up calls, and the last result."""
    for _ in range(2):
        result = fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return times, result


def server_timing(header: str) -> dict:
    parts = (item.strip().split(";dur=") for item in header.split(","))
    return {name: float(ms) for name, ms in parts}


def scraping(port: int, every: float, stop: threading.Event) -> threading.Thread:
    """A Prometheus stand-in: scrape ``port`` every ``every`` seconds until ``stop``."""
    def loop():
        while not stop.wait(every):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                answer.read()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def metrics_cost(router: Router, client: JsonHttp, end: float, repeat: int, every: float) -> None:
    """``/query`` p50 of a 10-field panel on a sisock-http with its metrics served and scraped every ``every`` s,
    and on one without an endpoint, in turn on the same hub and data node; and the instruments' own cost."""
    procs = Processes(router.env)
    port, metrics_port = free_port(), free_port()
    procs.start("http", env={"PORT": str(port), "HTTP_TIMEOUT": "300", "METRICS_PORT": str(metrics_port)})
    on = JsonHttp(port)
    wait_until(lambda: _up(on) and "apex_archive::f09" in on.request("POST", "/search", {})[1], 300, "the second http")
    body = query(end - DAY, end, *[f"apex_archive::f{i:02d}" for i in range(10)], max_points=CAP)
    stop = threading.Event()
    scraping(metrics_port, every, stop)
    times: dict = {"on": [], "off": []}
    try:
        for _ in range(3):  # warm both
            http_case(on, body), http_case(client, body)
        for _ in range(repeat):  # in turn: the machine's drift hits both alike
            for way, target in (("on", on), ("off", client)):
                began = time.perf_counter()
                http_case(target, body)
                times[way].append(time.perf_counter() - began)
    finally:
        stop.set()
        procs.stop_all()
    p50 = {way: percentile(t, 50) for way, t in times.items()}
    from sisock.metrics import http as http_metrics
    calls = 20000
    began = time.perf_counter()
    for _ in range(calls):
        http_metrics.started()
        http_metrics.finished("/query", 200, 0.01)
    hooks = (time.perf_counter() - began) / calls * 1e6
    print(f"\nmetrics: 10 fields, maxDataPoints={CAP}, {repeat} requests each in turn: p50 {p50['on']:.2f} ms with "
          f"the endpoint served and scraped every {every:g} s, {p50['off']:.2f} ms without an endpoint "
          f"({(p50['on'] - p50['off']) / p50['off']:+.1%}); a request's counters and histogram: {hooks:.1f} us",
          flush=True)


def run(repeat: int, metrics: float = 0.0) -> None:
    end = float(int(time.time()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"writing {max(FIELD_COUNTS)} fields x {DAY} samples ...", file=sys.stderr)
        write_fields(tmp / "data", max(FIELD_COUNTS), end)
        router = Router(tmp / "router").start()
        procs = Processes(router.env)
        session = None
        try:
            procs.start("hub").wait_for("hub ready")
            procs.start("weather", env={"DATA_DIRECTORY": str(tmp / "data")})
            port = free_port()
            procs.start("http", env={"PORT": str(port), "HTTP_TIMEOUT": "300"})
            client = JsonHttp(port)
            wait_until(lambda: _up(client) and "apex_archive::f49" in client.request("POST", "/search", {})[1],
                       300, "sisock http to list the bench fields")
            session = ThreadedSession(router.config).start()
            session.wait_connected(30)
            if metrics:
                metrics_cost(router, client, end, repeat, metrics)
            else:
                report(client, session, end, repeat)
        except Exception:
            print("\n".join(p.name + ": " + line for p in procs.running for line in p.lines[-15:]), file=sys.stderr)
            raise
        finally:
            if session is not None:
                session.stop()
            procs.stop_all()
            router.stop()


def _up(client: JsonHttp) -> bool:
    try:
        return client.request("GET", "/")[0] == 200
    except OSError:
        return False


def report(client: JsonHttp, session: ThreadedSession, end: float, repeat: int) -> None:
    header = (f"{'fields':>6} {'way':<28} {'p50 ms':>9} {'p95 ms':>9} {'points out':>10} {'samples/s':>11} "
              f"{'wamp':>5} {'decim':>5} {'shape':>5} {'json':>5} {'other':>5}")
    print(header)
    print("-" * len(header), flush=True)
    for count in FIELD_COUNTS:
        names = [f"f{i:02d}" for i in range(count)]
        targets = [f"apex_archive::{n}" for n in names]
        capped = query(end - DAY, end, *targets, max_points=CAP)
        uncapped = {"range": capped["range"], "targets": capped["targets"]}
        stride = choose_step(end - DAY, end, capped["intervalMs"] / 1000, CAP)  # what sisock-http asks for
        cases = ((f"http maxDataPoints={CAP}", lambda q=capped: http_case(client, q), repeat),
                 ("raw limit: WAMP get_data", lambda n=names, s=stride: wamp_case(session, n, end, s), repeat),
                 ("http uncapped (naive)", lambda q=uncapped: http_case(client, q), max(3, repeat // 10)))
        for way, case, runs in cases:
            try:
                times, (points, share) = timed(case, runs)
            except Exception as exc:
                print(f"{count:>6} {way:<28} failed: {exc}", flush=True)
                wait_until(lambda: _node_back(session), 60, "the data node to come back")
                continue
            total = times[-1] * 1000  # the share of the last request, from its own Server-Timing
            cells = [share[k] / total * 100 for k in ("wamp", "decimate", "shape", "encode")] if share else []
            cells = cells + [max(0.0, 100 - sum(cells))] if cells else []
            print(f"{count:>6} {way:<28} {percentile(times, 50):>9.1f} {percentile(times, 95):>9.1f} {points:>10} "
                  f"{count * DAY / statistics.median(times):>11.3g} " + " ".join(f"{c:>4.0f}%" for c in cells),
                  flush=True)


def http_case(client: JsonHttp, body: dict):
    """One /query: (points returned, server-side milliseconds per step)."""
    status, answer, headers = client.request("POST", "/query", body, timeout=600)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {answer}")
    return sum(len(s["datapoints"]) for s in answer), server_timing(headers["Server-Timing"])


def wamp_case(session: ThreadedSession, names: list, end: float, stride: float):
    """The same get_data straight over WAMP: what crosses the router, without HTTP."""
    answer = session.call(wamp.get_data_uri("apex_archive"), names, end - DAY, end, stride, timeout=600)
    return sum(len(v) for v in answer["data"].values()), None


def _node_back(session: ThreadedSession) -> bool:
    return any(n["name"] == "apex_archive" for n in session.call(wamp.HUB_LIST))


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "?")
    return f"{os.cpu_count()} CPUs, {model}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per case (default 30)")
    parser.add_argument("--metrics", type=float, default=0.0, metavar="SECONDS",
                        help="only the cost of metrics: /query p50 with the endpoint served and scraped every "
                        "SECONDS (15: Prometheus's usual interval), and without one, in turn")
    args = parser.parse_args()
    print(f"sisock-http /query benchmark on {machine()}; one day at 1 Hz per field, warm (2 warm-up requests)")
    run(args.repeat, args.metrics)


if __name__ == "__main__":
    main()
