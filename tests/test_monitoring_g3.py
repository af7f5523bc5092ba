"""The archive watched: the scanner's and the reader's metrics, a bad file counted everywhere, and a
stopped scanner seen as archive lag in the health node and ``sisock status`` (real processes)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from sisock import health, wamp
from sisock.g3.writer import Block, Provider
from tests.joined_support import Aggregator
from tests.support import free_port, wait_until
from tests.test_monitoring import health_figure, scrape, status, value

LIVE = Provider("observatory.LSWATCH.feeds.temperatures", (Block("temps", ("Channel_01_T",), 2.0),))
FIELD = f"{LIVE.description}.Channel_01_T"


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_scanner_and_reader_count_their_work_a_bad_file_counts_and_a_stopped_scanner_lags(
        procs, ocs, client, router, g3_env):
    top = Path(g3_env["DATA_DIRECTORY"])
    top.mkdir(parents=True)
    scanner_port, reader_port = free_port(), free_port()
    procs.start("hub").wait_for("hub ready")
    scanner = procs.start("g3-file-scanner", env=dict(g3_env, SCAN_INTERVAL="3600", METRICS_PORT=str(scanner_port)))
    scanner.wait_for("watching")
    procs.start("g3-reader", env=dict(g3_env, G3_READER_PROCESSES="2", METRICS_PORT=str(reader_port))).wait_for(
        "added data node g3_reader")
    procs.start("data-feed", env={"TARGET": "LSWATCH", "FEED": "temperatures", "NAME": "lswatch"}).wait_for(
        "added data node lswatch")

    now = time.time()
    agg = Aggregator(top, ocs, [LIVE])
    agg.new_file(now - 120)
    agg.write(now - 120, now - 60)
    agg.publish(LIVE, now - 61, now - 60)
    samples = wait_until(lambda: (s := scrape(scanner_port)) and value(
        s, "sisock_g3_provider_newest_sample_timestamp_seconds", provider=LIVE.description) >= now - 61 and s,
        30, "the scanner's newest time of the provider")
    assert value(samples, "sisock_g3_scanner_files_read_total") >= 1
    assert value(samples, "sisock_g3_scanner_frames_indexed_total") >= 20
    assert value(samples, "sisock_g3_scanner_read_bytes_total") > 0
    assert value(samples, "sisock_g3_scanner_passes_total", outcome="ok") == 1
    assert value(samples, "sisock_g3_scanner_watch_events_total") >= 1
    assert value(samples, "sisock_g3_scanner_watched_folders") >= 1

    # the reader: requests counted, and the workers' caches summed (3 requests on 2 workers: one hits)
    for _ in range(3):
        client.call(wamp.get_data_uri("g3_reader"), [FIELD], now - 120, now - 60)
    reader = scrape(reader_port)
    assert value(reader, "sisock_data_node_requests_total", node="g3_reader", procedure="get_data",
                 outcome="ok") == 3
    assert value(reader, "sisock_g3_reader_worker_processes") == 2
    assert value(reader, "sisock_g3_reader_frame_cache_misses_total") >= 20
    assert value(reader, "sisock_g3_reader_frame_cache_hits_total") >= 20
    assert value(reader, "sisock_g3_reader_frame_cache_bytes") > 0

    # the archive's newest time in the health node; all well so far
    wait_until(lambda: health_figure(client, f"archive_newest.{LIVE.description}") >= now - 61, 30,
               "the archive's newest time in the health node")
    code, report = wait_until(lambda: (r := status(router.env, "--archive-lag", "20"))[0] == 0 and r, 30,
                              "all well", interval=1.0)
    assert report["bad_files"] == 0 and [a["provider"] for a in report["archive"]] == [LIVE.description]

    # a bad file: counted by the scanner, the health node and status (a notice, not a failure)
    (top / "17000" / "damaged.g3").parent.mkdir(exist_ok=True)
    (top / "17000" / "damaged.g3").write_bytes(b"not a g3 frame at all" * 100)
    wait_until(lambda: value(scrape(scanner_port), "sisock_g3_bad_files") == 1, 30, "the bad file in the metrics")
    assert value(scrape(scanner_port), "sisock_g3_scanner_bad_file_reads_total") == 1
    wait_until(lambda: health_figure(client, "bad_files") == 1, 30, "the bad file in the health node")

    # the scanner stops; the aggregator and the agent go on: the archive lags behind the live feed
    scanner.stop()
    agg.write(now - 60, now)
    agg.publish(LIVE, now - 60, now)
    lag = wait_until(lambda: (x := health_figure(client, f"archive_lag.{LIVE.description}")) > 50 and x, 30,
                     "the archive lag in the health node")
    assert lag < 70
    code, report = status(router.env, "--archive-lag", "20")
    assert code == 1 and report["bad_files"] == 1
    assert any(p.startswith(f"archive of {LIVE.description}: ") for p in report["problems"]), report["problems"]
    assert health.NAME in [n["name"] for n in report["data_nodes"]]
    agg.close()
