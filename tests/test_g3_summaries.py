"""Summary tiers: answers built from them equal decimating every sample, slot by slot, on both
backends, while files grow, break, go away, and while an older index is being summarised."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sisock.decimate import aggregate, choose_step
from sisock.g3 import schema, summaries
from sisock.g3.reader import Reader
from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive, Block, Provider
from tests.g3_support import END, archive_dir, make_index

DAY = 86400.0
A = "observatory.A.feeds.hk"
B = "observatory.B.feeds.hk"
SPIKES = ((END - 1.3 * DAY + 7.0, 1e6), (END - 0.5 * DAY + 3.0, -1e6))
PROVIDERS = [
    Provider(A, (Block("slow", ("x", "y"), 0.2, spikes=SPIKES), Block("mode", ("state",), 0.01, "string"))),
    Provider(B, (Block("fast", ("z",), 1.0),)),
]
NAMES = [f"{A}.x", f"{A}.y", f"{B}.z"]


def long_archive(start: float = END - 3 * DAY, end: float = END) -> Archive:
    """Three days in files of 6 h, frames of 5 min: every tier has whole buckets."""
    return Archive(PROVIDERS, start, end, file_seconds=6 * 3600, frame_seconds=300)


def backend_env(kind: str, folder: Path) -> dict:
    env = {"DATA_DIRECTORY": str(folder / "archive")}
    if kind == "sqlite":
        env["SQLITE_PATH"] = str(folder / "index.sqlite")
    else:
        env.update({"SQL_HOST": "127.0.0.1", "SQL_PORT": "3306", "SQL_USER": "root", "SQL_PASSWD": "",
                    "SQL_DB": f"sisock_test_{uuid.uuid4().hex[:12]}"})
    return env


def drop(env: dict) -> None:
    if "SQL_HOST" in env:
        with pymysql.connect(host="127.0.0.1", user="root", password="") as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{env['SQL_DB']}`")


@pytest.fixture(scope="module", params=["sqlite", "mysql"])
def scanned(request, tmp_path_factory):
    """A scanned three-day archive on each backend, shared by the property tests."""
    env = backend_env(request.param, tmp_path_factory.mktemp(request.param))
    long_archive().write(archive_dir(env))
    index = make_index(env)
    Scanner(index, archive_dir(env)).scan_once()
    yield index
    index.close()
    drop(env)


def expected(reader: Reader, name: str, t0: float, t1: float, step: float):
    """Decimating every sample of the field on the request's grid: the truth to compare with."""
    got = reader.data([name], t0, t1)  # undecimated: every sample the index serves
    for t, columns in got.values():
        if name in columns:
            return aggregate(t, columns[name], step).points()
    return np.empty(0), np.empty(0)


class FrameCount:
    """Counts the frames a reader decodes or takes from its cache."""

    def __init__(self, reader: Reader) -> None:
        self.count = 0
        real = reader.frames

        def counted(*args):
            for item in real(*args):
                self.count += 1
                yield item
        reader.frames = counted


def assert_same(reader, name, t0, t1, max_points):
    step = choose_step(t0, t1, None, max_points)
    want_t, want_v = expected(Reader(reader.index, 0), name, t0, t1, step)
    got = reader.data([name], t0, t1, max_points=max_points).get(name)
    got_t, got_v = (np.empty(0), np.empty(0)) if got is None else (got[0], got[1][name])
    np.testing.assert_array_equal(got_t, want_t)
    np.testing.assert_array_equal(got_v, want_v)
    assert len(got_t) <= max_points and (not len(got_t) or (got_t[0] >= t0 and got_t[-1] < t1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(-3.2 * DAY, 0), st.floats(0, 3.2 * DAY), st.sampled_from(NAMES),
       st.sampled_from([20, 100, 1000, 5000]))
def test_answer_from_summaries_equals_decimating_every_sample(scanned, offset, span, name, max_points):
    t0 = END + offset
    t1 = t0 + span
    reader = Reader(scanned, 16)
    counter = FrameCount(reader)
    assert_same(reader, name, t0, t1, max_points)
    step = choose_step(t0, t1, None, max_points)
    tier = summaries.tier_for(step)
    if tier is not None and summaries.TIERS[tier] >= finest(scanned, name) and t1 - t0 > 2 * step:
        # summaries answer the inside: only frames at the window's edges are decoded
        # (6 of the 5-minute frames at each edge at most, A's or B's)
        assert counter.count <= 12, f"{counter.count} frames read for a step of {step} s"


def finest(index, name: str) -> float:
    """The widest file row of a field: the finest step its summaries answer everywhere."""
    description, key = name.rsplit(".", 1)
    return index.run(lambda cur: cur.one(
        "SELECT MAX(sf.width) FROM summaries_file sf JOIN feeds fe ON fe.id = sf.feed_id "
        "WHERE fe.description = ? AND sf.field = ?", (description, key)))[0]


def test_every_span_reads_a_bounded_number_of_frames(scanned):
    # 400 points: steps of 1200 s and more, which A's 600 s and B's 60 s buckets both tile
    for span in (DAY, 2 * DAY, 3 * DAY):
        reader = Reader(scanned, 0)
        counter = FrameCount(reader)
        reader.data(NAMES, END - span + 17.5, END - 3.25, max_points=400)
        assert counter.count <= 3 * 2 * 2, f"span {span}: {counter.count} frames"


def test_each_field_starts_at_the_tier_its_rate_fills(scanned):
    """A 0.2 Hz field would put 12 samples in a 60 s bucket, a 1 Hz field 60: the slow one's
    finest tier is 10 minutes, so no bucket stores nearly as much as the samples it stands for."""
    assert finest(scanned, f"{A}.x") == 600 and finest(scanned, f"{B}.z") == 60
    rows = scanned.run(lambda cur: cur.all("SELECT sf.field, sf.data FROM summaries_file sf"))
    for key, blob in rows:
        width, slots = summaries.decode_buckets(blob)
        inner = slots.count[1:-1]  # a file's first and last buckets may be cut by its edges
        assert not len(inner) or inner.mean() >= summaries.MIN_PER_BUCKET, (key, width, inner.mean())


def test_a_step_finer_than_a_field_s_tier_reads_its_frames_exactly(scanned):
    reader = Reader(scanned, 0)
    counter = FrameCount(reader)
    t0, t1 = END - DAY + 17.5, END - 3.25
    assert summaries.TIERS[summaries.tier_for(choose_step(t0, t1, None, 1000))] < finest(scanned, f"{A}.x")
    assert_same(reader, f"{A}.x", t0, t1, 1000)
    assert counter.count > 12  # the day's frames: A has no 60 s buckets


def assert_all_same(index, windows, max_points=500):
    reader = Reader(index, 0)
    for name in NAMES:
        for t0, t1 in windows:
            assert_same(reader, name, t0, t1, max_points)


WINDOWS = [(END - 3 * DAY, END), (END - 2.5 * DAY + 33.3, END - 0.2 * DAY), (END - DAY, END - 0.5 * DAY + 61)]


@pytest.fixture(params=["sqlite", "mysql"])
def env(request, tmp_path):
    env = backend_env(request.param, tmp_path)
    yield env
    drop(env)


def test_a_file_growing_frame_by_frame_keeps_its_summaries_exact(env):
    archive = long_archive(END - 2 * DAY, END - 3 * 3600)
    paths = archive.write(archive_dir(env))
    index = make_index(env)
    scanner = Scanner(index, archive_dir(env))
    scanner.scan_once()
    grown = long_archive(END - 2 * DAY, END)
    t = END - 3 * 3600
    while t < END:  # the aggregator appends 5-minute frames to the newest file
        grown.write_file(paths[-1], t, t + 900, append=True)
        t += 900
        scanner.scan_once()
    assert_all_same(index, [(END - 2 * DAY, END), (END - 6 * 3600 + 5, END - 1)])
    fresh = make_index(dict(env, SQL_HOST="", SQLITE_PATH=str(Path(env["DATA_DIRECTORY"]).parent / "fresh.sqlite")))
    Scanner(fresh, archive_dir(env)).scan_once()
    for name in NAMES:
        got = Reader(index, 0).data([name], END - 2 * DAY, END, max_points=300)[name]
        want = Reader(fresh, 0).data([name], END - 2 * DAY, END, max_points=300)[name]
        np.testing.assert_array_equal(got[0], want[0])


def test_a_corrupt_frame_in_the_middle_leaves_exact_summaries_of_the_rest(env):
    paths = long_archive().write(archive_dir(env))
    data = bytearray(paths[5].read_bytes())
    middle = len(data) // 2
    data[middle:middle + 50] = b"\x00" * 50
    paths[5].write_bytes(bytes(data))
    index = make_index(env)
    assert Scanner(index, archive_dir(env), growth_grace=0).scan_once().bad == 1
    assert_all_same(index, WINDOWS)


def test_deleting_a_file_removes_its_summaries(env):
    paths = long_archive().write(archive_dir(env))
    index = make_index(env)
    scanner = Scanner(index, archive_dir(env))
    scanner.scan_once()
    paths[6].unlink()
    assert scanner.scan_once().removed == 1
    rows = index.run(lambda cur: cur.one("SELECT COUNT(*) FROM summaries_file sf JOIN feeds fe ON fe.id = sf.feed_id "
                                         "JOIN files f ON f.id = fe.file_id WHERE f.path = ?", (str(paths[6]),)))
    assert rows[0] == 0
    assert_all_same(index, WINDOWS)
    for name in NAMES:  # nothing of the deleted file's span comes back from the coarse tiers
        t0, t1 = END - 3 * DAY + 6 * 6 * 3600, END - 3 * DAY + 7 * 6 * 3600
        answer = Reader(index, 0).data([name], END - 3 * DAY, END, max_points=200)[name][0]
        assert not np.any((answer >= t0 + 60) & (answer < t1 - 60))


def test_an_index_without_summaries_is_served_from_frames_then_summarised(env):
    long_archive().write(archive_dir(env))
    index = make_index(env)
    Scanner(index, archive_dir(env)).scan_once()
    truth = {name: Reader(index, 0).data([name], *WINDOWS[1], max_points=500)[name] for name in NAMES}

    def forget(cur):  # what an index made before version 4 looks like after the upgrade
        cur.execute("DELETE FROM summaries")
        cur.execute("DELETE FROM summaries_file")
        cur.execute("UPDATE files SET summarized = 0")
        cur.execute("UPDATE feeds SET t_start = NULL, t_end = NULL")
        schema._fill_feed_spans(cur, index.dialect)  # what the upgrade does before anything reads
    index.run(forget)
    for name in NAMES:  # served from the frames meanwhile, with the same answer
        np.testing.assert_array_equal(Reader(index, 0).data([name], *WINDOWS[1], max_points=500)[name][0],
                                      truth[name][0])
    stats = Scanner(index, archive_dir(env)).scan_once()
    assert stats.read == stats.files  # every file read again, from the start
    assert index.run(lambda cur: cur.one("SELECT COUNT(*) FROM summaries"))[0] > 0
    reader = Reader(index, 0)
    counter = FrameCount(reader)
    for name in NAMES:
        np.testing.assert_array_equal(reader.data([name], *WINDOWS[1], max_points=500)[name][0], truth[name][0])
    assert counter.count <= 3 * 2 * 2


def test_text_fields_keep_their_block_timeline(scanned):
    got = Reader(scanned, 0).data([f"{A}.state"], END - DAY, END, max_points=100)
    assert list(got) == [f"{A}.mode"] and len(got[f"{A}.mode"][0]) <= 100


def test_the_index_query_of_a_window_uses_each_feed_s_time_range(scanned):
    rows = scanned.run(lambda cur: cur.all("SELECT t_start, t_end FROM feeds"))
    assert rows and all(lo is not None and hi is not None and lo <= hi for lo, hi in rows)
    start = END - 3 * DAY
    frames = scanned.frames_in([A], start + 3600, start + 3700)
    assert frames and all(t_start < start + 3700 and t_end >= start + 3600 for *_, t_start, t_end in frames)


def test_coarse_tiers_waiting_for_their_refresh_are_answered_from_the_60_s_rows(env, monkeypatch):
    long_archive().write(archive_dir(env))
    index = make_index(env)
    monkeypatch.setattr(index, "refresh_summaries", lambda: 0)  # a scanner stopped before its refresh
    Scanner(index, archive_dir(env)).scan_once()
    assert index.run(lambda cur: cur.one("SELECT COUNT(*) FROM summaries"))[0] == 0
    assert index.run(lambda cur: cur.one("SELECT COUNT(*) FROM summaries_dirty"))[0] > 0
    assert_all_same(index, WINDOWS)
    monkeypatch.undo()
    stretches = []
    real = summaries._refresh_stretch

    def stopped_after_two(cur, *args):  # a refresh killed part way: each stretch is its own transaction
        if len(stretches) == 2:
            raise KeyboardInterrupt
        stretches.append(args)
        real(cur, *args)
    monkeypatch.setattr(summaries, "_refresh_stretch", stopped_after_two)
    with pytest.raises(KeyboardInterrupt):
        summaries.refresh(index, days=1)
    assert_all_same(index, WINDOWS)  # part refreshed, part still answered from the 60 s rows
    monkeypatch.undo()
    assert index.refresh_summaries() > 0
    assert index.run(lambda cur: cur.one("SELECT COUNT(*) FROM summaries_dirty"))[0] == 0
    assert_all_same(index, WINDOWS)
    reader = Reader(index, 0)
    counter = FrameCount(reader)
    reader.data(NAMES, END - 3 * DAY + 17.5, END - 3.25, max_points=1000)
    assert counter.count <= 3 * 2 * 2


C = "observatory.C.feeds.hk"
#: One field whose rate changes between files: 0.02 Hz (hour buckets) for 1.5 days, 0.2 Hz
#: (10 minutes) for half a day, then 1 Hz (60 s): a window's two edges and its middle may each
#: have another finest tier.
RATES = ((END - 3 * DAY, END - 1.5 * DAY, 0.02), (END - 1.5 * DAY, END - DAY, 0.2), (END - DAY, END, 1.0))


def mixed_archive(folder: Path) -> None:
    for t0, t1, rate in RATES:
        Archive([Provider(C, (Block("b", ("w",), rate, spikes=((t0 + 4321.0, 5e5),)),))], t0, t1,
                file_seconds=6 * 3600, frame_seconds=300).write(folder)


@pytest.fixture(scope="module", params=["sqlite", "mysql"])
def mixed(request, tmp_path_factory):
    env = backend_env(request.param, tmp_path_factory.mktemp(request.param))
    mixed_archive(archive_dir(env))
    index = make_index(env)
    Scanner(index, archive_dir(env)).scan_once()
    yield index
    index.close()
    drop(env)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(-3.2 * DAY, 0), st.floats(0, 3.2 * DAY), st.sampled_from([20, 100, 1000, 5000]))
def test_a_field_whose_rate_changes_is_answered_exactly_across_its_tiers(mixed, offset, span, max_points):
    widths = {r[0] for r in mixed.run(lambda cur: cur.all("SELECT DISTINCT width FROM summaries_file"))}
    assert widths == {60.0, 600.0, 3600.0}
    assert_same(Reader(mixed, 16), f"{C}.w", END + offset, END + offset + span, max_points)


#: Windows whose edges have finer tiers than a stretch in their middle (hour rows, 10-minute
#: rows, none before the archive), at steps whose tier is an hour.
MIXED_WINDOWS = [(END - 3.2 * DAY, END - 1.2 * DAY), (END - 2.1 * DAY + 5.5, END - 1.3 * DAY),
                 (END - 1.4 * DAY + 77.7, END - 0.3 * DAY)]


def test_a_stretch_of_rows_as_wide_as_the_step_s_tier_is_read_from_them(mixed):
    reader = Reader(mixed, 0)
    for t0, t1 in MIXED_WINDOWS:
        for points in (20, 100):
            assert_same(reader, f"{C}.w", t0, t1, points)


def test_a_field_whose_rate_changes_is_exact_while_its_coarse_tiers_wait(env, monkeypatch):
    mixed_archive(archive_dir(env))
    index = make_index(env)
    monkeypatch.setattr(index, "refresh_summaries", lambda: 0)  # a scanner stopped before its refresh
    Scanner(index, archive_dir(env)).scan_once()
    reader = Reader(index, 0)
    for t0, t1 in WINDOWS + MIXED_WINDOWS + [(END - 2.9 * DAY + 11.1, END - 1.2 * DAY),
                                             (END - 1.6 * DAY, END - 0.9 * DAY)]:
        for points in (20, 100, 1000):
            assert_same(reader, f"{C}.w", t0, t1, points)
