"""One series per name: sisock-http joins the archive (g3-reader over the scanner's index) and
the live feeds (data-feed) under the aggregator's full field name.

Real router, hub, g3-file-scanner (watching), g3-reader, data-feed instances and sisock-http. An
"aggregator" here writes frames to a growing .g3 file as OCS's aggregator does and publishes
OCS-shaped messages of the same samples on the router's OCS port.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from sisock.decimate import choose_step, decimate
from sisock.g3.writer import Block, Provider
from sisock.http.join import listing
from tests.http_support import JsonHttp, query
from tests.joined_support import Aggregator, indexed_until, truth
from tests.support import free_port, wait_until

LIVE = Provider("observatory.LSJOIN.feeds.temperatures", (Block("temps", ("Channel_01_T", "Channel_02_T"), 2.0),))
ARCHIVE_ONLY = Provider("observatory.LSOLD.feeds.temperatures", (Block("temps", ("Channel_01_T",), 1.0),))
NO_ARCHIVE = Provider("observatory.LSNEW.feeds.pressures", (Block("gauges", ("Pressure_1",), 1.0),))
CH1 = f"{LIVE.description}.Channel_01_T"


def points(http: JsonHttp, start: float, end: float, target: str, max_points: int = 100_000):
    status, body, _ = http.request("POST", "/query", query(start, end, target, max_points=max_points))
    assert status == 200, body
    pairs = body[0]["datapoints"]
    return [p[1] for p in pairs], [p[0] for p in pairs]


def expect(t: np.ndarray, v: np.ndarray):
    return np.rint(t * 1000.0).astype(np.int64).tolist(), v.tolist()


def listed(http: JsonHttp, *names: str) -> list:
    """/search's names once it lists all of ``names`` (a search also refreshes sisock-http's catalogue)."""
    return wait_until(lambda: (lambda found: found if all(n in found for n in names) else None)(
        http.request("POST", "/search", {})[1]), 30, f"{names} in /search")


def start_stack(procs, env, feeds, buffer_time: float = 3600.0, reader_processes: int = 1) -> JsonHttp:
    """hub, scanner (a pass an hour: what comes early came through the watch), g3-reader, one
    data-feed per (target, feed, name), and sisock-http."""
    Path(env["DATA_DIRECTORY"]).mkdir(parents=True, exist_ok=True)
    procs.start("hub").wait_for("hub ready")
    scanner = procs.start("g3-file-scanner", env=dict(env, SCAN_INTERVAL="3600"))
    scanner.wait_for("pass done")
    procs.start("g3-reader", env=dict(env, G3_READER_PROCESSES=str(reader_processes))).wait_for(
        "added data node g3_reader")
    for target, feed, name in feeds:
        server = procs.start("data-feed", env={"TARGET": target, "FEED": feed, "NAME": name,
                                               "BUFFER_TIME": str(buffer_time)})
        server.wait_for(f"added data node {name}")
    port = free_port()
    procs.start("http", env={"PORT": str(port), "HTTP_TIMEOUT": "10", "BUFFER_TIME": str(buffer_time)}).wait_for(
        "serving Grafana datasources")
    return JsonHttp(port)


# the join does not depend on the index's backend (tests/test_g3_*.py cover both): SQLite only, to keep it short
@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_joined_series_is_the_union_across_the_seam_and_files(procs, ocs, g3_env):
    now = math.floor(time.time())
    h0 = now - 300.0
    top = Path(g3_env["DATA_DIRECTORY"])
    agg = Aggregator(top, ocs, [LIVE, ARCHIVE_ONLY])
    agg.new_file(h0)
    agg.write(h0, h0 + 60)  # history: only the archive has it
    http = start_stack(procs, g3_env, [("LSJOIN", "temperatures", "join_a"), ("LSJOIN", "temperatures", "join_b"),
                                       ("LSNEW", "pressures", "new_gauges")])
    try:
        # the seam: the archive up to h0 + 180, two live instances from h0 + 120 to h0 + 200
        agg.write(h0 + 60, h0 + 180)
        agg.publish(LIVE, h0 + 120, h0 + 200)
        names = listed(http, CH1, "join_a::channel_01_t", "join_b::channel_01_t")
        # listed once, bare; the feeds' own names stay, their aliases of archive names do not show
        assert names.count(CH1) == 1 and f"g3_reader::{CH1}" in names
        assert not any(n.endswith(f"::{CH1}") and not n.startswith("g3_reader::") for n in names)
        metrics = [m["value"] for m in http.request("POST", "/metrics", {})[1]]
        assert metrics.count(CH1) == 1 and sorted(metrics) == sorted(names)
        wait_until(lambda: indexed_until(g3_env, LIVE.description) >= h0 + 179, 30, "the archive up to h0 + 180")
        wait_until(lambda: len(points(http, h0, now, "join_b::channel_01_t")[0]) == 160, 10, "the live samples")
        assert points(http, h0, now, CH1) == expect(*truth(LIVE, "Channel_01_T", h0, h0 + 200))
        assert points(http, h0, now, f"g3_reader::{CH1}") == expect(*truth(LIVE, "Channel_01_T", h0, h0 + 180))

        # the scanner catches up: the same series
        agg.write(h0 + 180, h0 + 200)
        wait_until(lambda: indexed_until(g3_env, LIVE.description) >= h0 + 199, 30, "the archive up to h0 + 200")
        assert points(http, h0, now, CH1) == expect(*truth(LIVE, "Channel_01_T", h0, h0 + 200))

        # a new file starts: the seam moves into it without a hole
        agg.new_file(h0 + 200)
        agg.write(h0 + 200, h0 + 230)
        agg.publish(LIVE, h0 + 200, h0 + 240)
        wait_until(lambda: indexed_until(g3_env, LIVE.description) >= h0 + 229, 30, "the new file indexed")
        wait_until(lambda: len(points(http, h0, now, "join_a::channel_01_t")[0]) == 240, 10, "the live samples")
        for field in LIVE.blocks[0].fields:
            assert points(http, h0, now, f"{LIVE.description}.{field}") == expect(*truth(LIVE, field, h0, h0 + 240))

        # decimated: the joined series reduced once equals reducing every sample
        t, v = truth(LIVE, "Channel_01_T", h0, h0 + 240)
        step = choose_step(h0, now, (now - h0) / 40, 40)
        assert points(http, h0, now, CH1, max_points=40) == expect(*decimate(t, v, step, 40, (h0, now)))

        # a provider with no live feed, and a feed with no archive, both answer under the full name
        assert points(http, h0, now, f"{ARCHIVE_ONLY.description}.Channel_01_T") == \
            expect(*truth(ARCHIVE_ONLY, "Channel_01_T", h0, h0 + 230))
        agg.publish(NO_ARCHIVE, now - 20, now)
        new = f"{NO_ARCHIVE.description}.Pressure_1"
        listed(http, "new_gauges::pressure_1")
        assert points(http, now - 60, now + 1, new) == expect(*truth(NO_ARCHIVE, "Pressure_1", now - 20, now))
        assert points(http, now - 60, now + 1, "new_gauges::pressure_1") == points(http, now - 60, now + 1, new)
    finally:
        agg.close()


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_scanner_stopped_longer_than_buffer_time_is_a_gap_not_wrong_data(procs, ocs, g3_env):
    t0 = math.floor(time.time())
    buffer_time = 20.0
    top = Path(g3_env["DATA_DIRECTORY"])
    agg = Aggregator(top, ocs, [LIVE, ARCHIVE_ONLY])
    agg.new_file(t0 - 100)
    agg.write(t0 - 100, t0 - 60)
    http = start_stack(procs, g3_env, [("LSJOIN", "temperatures", "join_a")], buffer_time=buffer_time)
    try:
        scanner = next(p for p in procs.running if p.name == "sisock g3-file-scanner")
        scanner.stop()
        # the aggregator goes on while the scanner is away: the archive on disk, the feed live
        now = math.floor(time.time())
        agg.write(t0 - 60, now)
        agg.publish(LIVE, t0 - 60, now)
        listed(http, CH1, "join_a::channel_01_t")
        t_live, _ = wait_until(lambda: (lambda p: p if p[0] else None)(
            points(http, t0 - 120, now + 1, "join_a::channel_01_t")), 10, "the live samples")
        t, v = points(http, t0 - 120, now + 1, CH1)
        t_true, v_true = expect(*truth(LIVE, "Channel_01_T", t0 - 100, now))
        got = dict(zip(t, v))
        assert len(got) == len(t) and t == sorted(t)  # no duplicate, in order
        assert all(dict(zip(t_true, v_true))[ms] == value for ms, value in got.items())  # nothing wrong
        archive_end, live_start = (t0 - 60) * 1000, min(t_live)
        assert live_start >= (t0 - 60 + 5) * 1000  # the feed kept only its last BUFFER_TIME seconds
        assert not [ms for ms in t if archive_end <= ms < live_start]  # a visible gap between them
        assert [ms for ms in t if ms < archive_end] == [ms for ms in t_true if ms < archive_end]
        assert [ms for ms in t if ms >= live_start] == [ms for ms in t_true if ms >= live_start]

        # the scanner back: its pass fills the gap from the archive
        procs.start("g3-file-scanner", env=dict(g3_env, SCAN_INTERVAL="3600")).wait_for("pass done")
        assert points(http, t0 - 120, now + 1, CH1) == (t_true, v_true)
    finally:
        agg.close()


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_live_samples_fill_what_the_archive_lacks_before_recording_and_in_an_outage(procs, ocs, g3_env):
    """The joined series is the union: the feed published before the aggregator recorded, and
    through an aggregator outage shorter than BUFFER_TIME; the archive's samples everywhere else."""
    now = math.floor(time.time())
    h0 = now - 200.0
    top = Path(g3_env["DATA_DIRECTORY"])
    agg = Aggregator(top, ocs, [LIVE])
    http = start_stack(procs, g3_env, [("LSJOIN", "temperatures", "join_a")])
    try:
        agg.publish(LIVE, h0, h0 + 150)  # the agent publishes from h0 on
        agg.new_file(h0 + 10)  # the aggregator records from h0 + 10 ...
        agg.write(h0 + 10, h0 + 60)
        agg.new_file(h0 + 100)  # ... stops at h0 + 60, and is back (a new file) at h0 + 100
        agg.write(h0 + 100, h0 + 140)
        wait_until(lambda: indexed_until(g3_env, LIVE.description) >= h0 + 139, 30, "the archive up to h0 + 140")
        wait_until(lambda: len(points(http, h0 - 10, now, "join_a::channel_01_t")[0]) == 300, 10, "the live samples")
        every = truth(LIVE, "Channel_01_T", h0, h0 + 150)
        assert points(http, h0 - 10, now, CH1) == expect(*every)
        archived = points(http, h0 - 10, now, f"g3_reader::{CH1}")[0]
        outage = [ms for ms in archived if (h0 + 60) * 1000 <= ms < (h0 + 100) * 1000]
        assert min(archived) == (h0 + 10) * 1000 and not outage
        # decimated, each slot from whichever source holds its samples: the reduction of them all
        step = choose_step(h0 - 10, now, (now - h0 + 10) / 40, 40)
        assert points(http, h0 - 10, now, CH1, max_points=40) == \
            expect(*decimate(*every, step, 40, (h0 - 10, now)))
    finally:
        agg.close()


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_every_reader_process_answers_a_new_name_alike(procs, ocs, g3_env, tmp_path):
    """With two reader workers, a provider that appears in the index is answered by both at once:
    once an answer has held it, every answer asked after is the same."""
    top = Path(g3_env["DATA_DIRECTORY"])
    http = start_stack(procs, g3_env, [], reader_processes=2)
    name = f"g3_reader::{ARCHIVE_ONLY.description}.Channel_01_T"
    now = math.floor(time.time())

    def timed(_: int) -> tuple:
        """(when the request began, when its answer came, the answer)."""
        began = time.monotonic()
        answer = points(http, now - 300, now, name)
        return began, time.monotonic(), answer

    def poll(seconds: float, clients: int = 4) -> list:
        """Timed answers of ``clients`` at a time for ``seconds`` (four: both workers serve)."""
        answers, until = [], time.monotonic() + seconds
        with ThreadPoolExecutor(clients) as pool:
            while time.monotonic() < until:
                answers += pool.map(timed, range(clients))
        return answers

    # the workers look the name up while it is unknown, at moments apart: one client, then four
    assert all(answer == ([], []) for _, _, answer in poll(0.3, clients=1))
    time.sleep(2.5)
    assert all(answer == ([], []) for _, _, answer in poll(0.5))
    agg = Aggregator(tmp_path / "staging", ocs, [ARCHIVE_ONLY])
    made = agg.new_file(now - 200)
    agg.write(now - 200, now - 100)
    agg.close()
    target = top / made.relative_to(tmp_path / "staging")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(made, target)  # whole at once: one scan, one index generation
    answers = poll(12.0)
    known = [(ended, answer) for _, ended, answer in answers if answer[0]]
    assert known, "the new provider was never answered"
    seen, first = min(known, key=lambda k: k[0])
    assert first == expect(*truth(ARCHIVE_ONLY, "Channel_01_T", now - 200, now - 100))
    # asked after an answer held it: requests in flight with that one may have been answered before it
    later = [answer for began, _, answer in answers if began > seen]
    differ = [(len(answer[0]), answer[0][:1], answer[0][-1:]) for answer in later if answer != first]
    assert not differ, f"{len(differ)} of {len(later)} answers asked after the first that held the name " \
        f"({len(first[0])} points) differ from it: (points, first, last) {differ[:5]}"


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_a_new_feed_is_joined_as_soon_as_it_publishes(procs, ocs, g3_env):
    """A data-feed's first samples are in the joined name at once (the feed announces its new
    fields through the hub), not after sisock-http's next catalogue refresh."""
    top = Path(g3_env["DATA_DIRECTORY"])
    http = start_stack(procs, g3_env, [("LSNEW", "pressures", "new_gauges")])
    agg = Aggregator(top, ocs, [NO_ARCHIVE])
    now = math.floor(time.time())
    began = time.monotonic()
    agg.publish(NO_ARCHIVE, now - 20, now)  # the catalogue was read as sisock-http started: no fields yet
    new = f"{NO_ARCHIVE.description}.Pressure_1"
    got = wait_until(lambda: (lambda p: p if p[0] else None)(points(http, now - 60, now + 1, new)), 5,
                     "the feed's samples under the joined name")
    assert got == expect(*truth(NO_ARCHIVE, "Pressure_1", now - 20, now))
    print(f"joined {time.monotonic() - began:.2f} s after the first publish")


def test_listing_names_each_archive_field_once_with_the_units_a_source_knows():
    """The catalogue's pairs as /search and /metrics list them (pure: the stack tests above
    check the same listing end to end; here units, which no test source sets)."""
    archive = {"description": "LS372", "units": "", "type": "number", "timeline": "t"}
    live = dict(archive, units="K")
    entries = [(f"g3_reader::{CH1}", archive), (f"join_a::{CH1}", live), ("join_a::channel_01_t", live),
               (f"weather::{NO_ARCHIVE.description}.Pressure_1", live)]
    names = dict(listing(entries))
    assert names[CH1]["units"] == "K" and names[f"g3_reader::{CH1}"]["units"] == ""
    assert f"join_a::{CH1}" not in names and "join_a::channel_01_t" in names
    # a feed's alias of a name the archive does not have is not offered bare: it keeps its own names
    assert f"{NO_ARCHIVE.description}.Pressure_1" not in names
    assert list(names) == sorted(names)
