"""get_buckets from the summary tiers: on any edges, the g3 reader's buckets equal
``sisock.buckets.of_samples`` of every sample of the files (read here with spt3g alone), on both
backends, while files grow, are rewritten and go away, for fields whose rate changes, integer,
text and boolean fields and NaN samples, and through the upgrade of a version 6 index."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spt3g import core

from sisock import wamp
from sisock.buckets import COLUMNS, TextBuckets, decode, microseconds, of_samples
from sisock.datanode import outside
from sisock.decimate import Slots
from sisock.g3 import format as fmt
from sisock.g3 import schema, summaries, upgrade
from sisock.g3.reader import Reader
from sisock.g3.scanner import Scanner
from sisock.g3.workers import shares
from sisock.g3.writer import Archive, Block, Provider
from tests.g3_support import END, archive_dir, as_version_6, make_index
from tests.test_g3_scanner import run_scanner
from tests.test_g3_summaries import RATES, FrameCount, backend_env, drop, mixed_archive
from tests.test_g3_summaries import C as MIXED

DAY, HOUR, US = 86400.0, 3600.0, 1_000_000
A = "observatory.A.feeds.hk"
B = "observatory.B.feeds.hk"
N = "observatory.N.feeds.counts"
#: NaN samples (no samples, as InfluxDB has none): one alone, one in a minute two files share (5 s
#: after a file's start), two together, a sensor dead for 10 minutes.
NAN_AT = (END - 2.2 * DAY + 11.0, END - 2.5 * DAY + 5.0, END - 0.7 * DAY + 3.0, END - 0.7 * DAY + 4.0,
          *(END - 0.4 * DAY + k for k in range(600)))
PROVIDERS = [
    Provider(A, (Block("slow", ("x", "y"), 0.2, spikes=((END - 1.3 * DAY + 5.0, 1e6),)),
                 Block("mode", ("state",), 0.01, "string"), Block("flag", ("open",), 0.02, "bool"))),
    Provider(B, (Block("fast", ("z",), 1.0, spikes=tuple((t, math.nan) for t in NAN_AT)),)),
    Provider(N, (Block("count", ("n",), 0.5, "int"),)),
]
NAMES = [f"{A}.x", f"{A}.y", f"{A}.state", f"{A}.open", f"{B}.z", f"{N}.n"]
START = END - 3 * DAY


def archive(start: float = START, end: float = END, gaps=()) -> Archive:
    """Three days in files of 6 h, frames of 5 min: every tier has whole buckets."""
    return Archive(PROVIDERS, start, end, file_seconds=6 * HOUR, frame_seconds=300, gaps=list(gaps))


# -- the truth: every sample of the files, read with spt3g alone ---------------------------
def on_disk(folder: Path, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Every sample of field ``name`` in the .g3 files under ``folder`` (UNIX seconds, in time order)."""
    description, key = name.rsplit(".", 1)
    ticks: List[np.ndarray] = []
    values: List[np.ndarray] = []
    for path in sorted(folder.rglob("*.g3")):
        providers: Dict[int, str] = {}
        for frame in core.G3File(str(path)):
            kind = fmt.kind(frame)
            if kind == fmt.STATUS:
                providers.update(fmt.providers(frame))
            elif kind == fmt.DATA and providers.get(int(frame["prov_id"])) == description:
                for _, block in fmt.blocks(frame):
                    if key in block:
                        ticks.append(fmt.ticks(block).copy())
                        values.append(np.array(list(block[key])) if fmt.value_type(block[key]) == "string"
                                      else np.array(block[key]))
    if not ticks:
        return np.empty(0), np.empty(0)
    t = np.concatenate(ticks, dtype=np.float64) / fmt.TICKS
    order = np.argsort(t, kind="stable")
    return t[order], np.concatenate(values)[order]


def truth(folder: Path, name: str, edges: np.ndarray, spans=None):
    t, v = on_disk(folder, name)
    if spans is not None:
        keep = outside(t, spans)
        t, v = t[keep], v[keep]
    return of_samples(microseconds(t), v, edges)


def close(got: np.ndarray, want: np.ndarray, count: np.ndarray, scale: np.ndarray) -> None:
    """Moments equal to 1e-9 relative (of the bucket's sum of squares where the moment is near 0);
    NaN where NaN."""
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    bound = 1e-9 * np.maximum(np.abs(want[ok]), 1e-3 * count[ok] * scale[ok])
    assert np.all(np.abs(got[ok] - want[ok]) <= bound), (got[ok][:5], want[ok][:5])


def assert_buckets(got, want, columns=COLUMNS) -> None:
    """The reader's buckets of one field equal the truth: counts, times and values exactly."""
    if isinstance(want, TextBuckets):
        if not len(want.index):
            assert got is None or not len(got.count)
            return
        assert isinstance(got, TextBuckets)
        for column in ("index", "count", "first_t", "last_t"):
            np.testing.assert_array_equal(getattr(got, column), getattr(want, column), err_msg=column)
        assert list(got.first_v) == list(want.first_v) and list(got.last_v) == list(want.last_v)
        return
    assert isinstance(got, Slots)
    for column in ("start", "count", "first_t", "min_t", "max_t", "last_t"):
        np.testing.assert_array_equal(getattr(got, column), getattr(want, column), err_msg=column)
    for column in ("first_v", "min_v", "max_v", "last_v"):
        np.testing.assert_array_equal(getattr(got, column), getattr(want, column), err_msg=column)
    if "sum" in columns:
        scale = np.maximum(np.abs(want.max_v), np.abs(want.min_v)) ** 2
        close(got.sum, want.sum, want.count, np.sqrt(scale))
        close(got.m2, want.m2, want.count, scale)


def check(reader: Reader, folder: Path, names: List[str], edges: np.ndarray, columns=COLUMNS, spans=None) -> None:
    got = reader.buckets(names, edges, columns, spans)
    assert set(got) == set(names)
    for name in names:
        assert_buckets(got[name], truth(folder, name, edges, spans), columns)


# -- edges as InfluxQL asks them ---------------------------------------------------------------
WIDTHS = (60, 300, 600, 1200, 3600, 2 * 3600, 6 * 3600, 86400)


@st.composite
def edges(draw, lo: float, hi: float) -> np.ndarray:
    """Bucket edges (whole microseconds) over ``[lo, hi]`` and a little beyond: tier-aligned with
    truncated ends, offset, days of 23 and 25 hours, one range-wide bucket, ``[0, end)``, 10 s."""
    kind = draw(st.sampled_from(["aligned", "offset", "days", "single", "from zero", "fine"]))
    a = draw(st.integers(int((lo - 3 * HOUR) * US), int(hi * US) - 1))
    b = draw(st.integers(a + 1, int((hi + HOUR) * US)))
    if kind == "single":
        return np.array([a, b], dtype=np.int64)
    if kind == "from zero":
        return np.array([0, b], dtype=np.int64)
    if kind == "fine":
        b = min(b, a + 2 * int(HOUR * US))
        step, offset = 10 * US, 0
    elif kind == "days":  # local midnights: days of 24 h, a 23 h and a 25 h one
        lengths = draw(st.lists(st.sampled_from([23, 24, 24, 25]), min_size=1, max_size=5))
        first = (a // (3600 * US) + 1) * 3600 * US
        inner = first + np.cumsum([0] + lengths[:-1]) * 3600 * US
        return np.unique(np.r_[a, inner[inner < b], b]).astype(np.int64)
    else:
        step = draw(st.sampled_from(WIDTHS)) * US
        offset = 0 if kind == "aligned" else draw(st.integers(1, 59)) * 60 * US if draw(st.booleans()) \
            else draw(st.integers(1, step - 1))
    inner = np.arange((a - offset) // step + 1, (b - offset) // step + 1, dtype=np.int64) * step + offset
    inner = inner[(inner > a) & (inner < b)]
    if len(inner) > 3000:
        inner = inner[:3000]
        b = int(inner[-1]) + 1
    return np.r_[a, inner, b].astype(np.int64)


def tier_aligned(e: np.ndarray, width: float) -> bool:
    return len(e) == 2 or not np.any(e[1:-1] % int(width * US))


# -- a scanned archive, shared by the property tests -----------------------------------------
@pytest.fixture(scope="module", params=["sqlite", "mysql"])
def scanned(request, tmp_path_factory):
    env = backend_env(request.param, tmp_path_factory.mktemp(request.param))
    archive().write(archive_dir(env))
    index = make_index(env)
    Scanner(index, archive_dir(env)).scan_once()
    yield index, archive_dir(env)
    index.close()
    drop(env)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edges(START, END), st.sampled_from(NAMES), st.sampled_from([COLUMNS, ("count", "first", "last"),
                                                                    ("count", "sum", "m2")]))
def test_buckets_equal_those_of_every_sample(scanned, e, name, columns):
    index, folder = scanned
    reader = Reader(index, 0)
    counter = FrameCount(reader)
    check(reader, folder, [name], e, columns)
    if name != f"{A}.state" and name != f"{A}.open" and tier_aligned(e, 600) and e[0] > 0:
        # the tiers answer the inside: only frames at the window's two ends are read, and the minutes
        # holding some NaN (at most 4 in a window)
        assert counter.count <= 12 + 4 * 2, f"{counter.count} frames read"


def test_every_field_on_one_call_and_the_same_field_twice(scanned):
    index, folder = scanned
    e = np.arange(int(START * US) + 17, int(END * US), int(HOUR * US), dtype=np.int64)
    check(Reader(index, 0), folder, NAMES, e)
    got = Reader(index, 0).buckets([f"{A}.x", "observatory.A.x", "no.such.field"], e)
    assert set(got) == {f"{A}.x", "observatory.A.x"}
    np.testing.assert_array_equal(got[f"{A}.x"].count, got["observatory.A.x"].count)


def test_a_month_of_buckets_reads_no_frame_inside(scanned):
    """Constant time per span: 1 h buckets over the whole archive read only the frames at its ends."""
    index, folder = scanned
    reader = Reader(index, 0)
    counter = FrameCount(reader)
    e = np.r_[int((START + 123.4) * US), np.arange(on(START, HOUR) + HOUR, END, HOUR) * US,
              int((END - 7.7) * US)].astype(np.int64)
    check(reader, folder, [f"{A}.x", f"{B}.z", f"{N}.n"], e)
    assert counter.count <= 3 * 2 * 2 + 6  # and B's minutes holding some NaN (one of them in two files)


def test_excluded_ranges_are_left_out(scanned):
    index, folder = scanned
    spans = np.array([[END - 2 * DAY + 0.5, END - 1.5 * DAY], [END - 0.25 * DAY, END - 0.25 * DAY + 20]])
    e = np.arange(int(START * US), int(END * US) + 1, int(6 * HOUR * US), dtype=np.int64)
    check(Reader(index, 0), folder, [f"{A}.x", f"{B}.z", f"{A}.state"], e, spans=spans)


def test_every_g3_field_has_its_influxdb_value_type(scanned):
    index, _ = scanned
    fields, _ = Reader(index, 0).fields(START, END)
    assert {name: fields[name]["value_type"] for name in NAMES} == {
        f"{A}.x": "float", f"{A}.y": "float", f"{A}.state": "string", f"{A}.open": "boolean", f"{B}.z": "float",
        f"{N}.n": "integer"}
    assert fields[f"{N}.n"]["type"] == "number"  # the WAMP contract's type: both numbers are "number"


# -- a field whose rate changes between files -------------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", "mysql"])
def mixed(request, tmp_path_factory):
    env = backend_env(request.param, tmp_path_factory.mktemp(request.param))
    mixed_archive(archive_dir(env))
    index = make_index(env)
    Scanner(index, archive_dir(env)).scan_once()
    yield index, archive_dir(env)
    index.close()
    drop(env)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edges(RATES[0][0], RATES[-1][1]))
def test_a_field_whose_rate_changes_has_exact_buckets(mixed, e):
    index, folder = mixed
    check(Reader(index, 0), folder, [f"{MIXED}.w"], e)


# -- files that grow, are rewritten and go away ---------------------------------------------
def on(t: float, width: float) -> float:
    """The first multiple of ``width`` (s) from ``t`` on."""
    return math.ceil(t / width) * width


#: Requests of every shape over the last two days: hours with truncated ends, days of 24, 23 and
#: 25 hours, one range-wide bucket, [0, end), 10-minute buckets 7 minutes off the hour's grid, 10 s.
FIXED = [
    np.r_[int((END - 2 * DAY + 77.7) * US), np.arange(on(END - 2 * DAY, HOUR) + HOUR, END, HOUR) * US,
          int(END * US) - 3],
    np.r_[int((END - 2 * DAY) * US) - 5, (on(END - 2 * DAY, HOUR) + np.cumsum([3, 24, 23, 25]) * HOUR) * US,
          int((END + HOUR) * US)],
    np.array([int((END - 1.7 * DAY) * US) + 1, int(END * US)]),
    np.array([0, int((END + 10) * US)]),
    np.r_[int((END - DAY) * US) + 3, np.arange(on(END - DAY, 600) + 420, END, 600) * US],
    np.arange(int((END - 1800) * US) + 3, int(END * US), 10 * US),
]


@pytest.fixture(params=["sqlite", "mysql"])
def env(request, tmp_path):
    env = backend_env(request.param, tmp_path)
    yield env
    drop(env)


def check_fixed(index, folder: Path) -> None:
    reader = Reader(index, 0)
    for e in FIXED:
        check(reader, folder, NAMES, np.asarray(e, dtype=np.int64))


def test_buckets_follow_files_that_grow_are_rewritten_and_go(env):
    folder = archive_dir(env)
    paths = archive(END - 2 * DAY, END - HOUR).write(folder)
    index = make_index(env)
    scanner = Scanner(index, folder)
    scanner.scan_once()
    check_fixed(index, folder)
    t = END - HOUR
    while t < END:  # the aggregator appends 20-minute pieces to the newest file
        archive(END - 2 * DAY, END).write_file(paths[-1], t, t + 1200, append=True)
        t += 1200
        scanner.scan_once()
        check_fixed(index, folder)
    # a file rewritten in place with a hole in its middle, another deleted
    rewritten = archive(END - 2 * DAY, END, gaps=[(END - 1.6 * DAY, END - 1.5 * DAY - 611)])
    rewritten.write_file(paths[1], END - 2 * DAY + 6 * HOUR, END - 2 * DAY + 12 * HOUR)
    paths[5].unlink()
    stats = scanner.scan_once()
    assert stats.removed == 1 and stats.read >= 1
    check_fixed(index, folder)


# -- the upgrade of a version 6 index ----------------------------------------------------------
class Killed(Exception):
    pass


def assert_answers(index, folder: Path) -> Tuple[int, int]:
    """Every fixed request is exact; returns the frames read for M4 columns and for moments."""
    reader = Reader(index, 0)
    counter = FrameCount(reader)
    e = np.asarray(FIXED[0], dtype=np.int64)
    # B's rows without moments cannot say where a NaN inside a minute is (docs/g3.md): its M4 columns
    # are checked below, with the moments (read from the frames until its file is read again)
    check(reader, folder, [f"{A}.x", f"{N}.n"], e, ("count", "first", "min", "max", "last"))
    dead = e[(e >= (END - 0.5 * DAY) * US) & (e <= (END - 0.3 * DAY) * US)]  # B's dead 10 minutes, alone
    check(reader, folder, [f"{B}.z"], dead, ("count", "first", "min", "max", "last"))
    m4 = counter.count
    check(reader, folder, [f"{A}.x", f"{B}.z", f"{N}.n"], e)
    check_fixed(index, folder)
    return m4, counter.count - m4


def test_a_version_6_index_answers_before_during_and_after_its_upgrade(env, monkeypatch):
    folder = archive_dir(env)
    archive(END - 2 * DAY, END).write(folder)
    index = make_index(env)
    Scanner(index, folder).scan_once()
    m4_now, moments_now = assert_answers(index, folder)
    as_version_6(index)
    assert f"upgraded schema version 6 to {schema.CURRENT}" in index.ensure_schema()
    m4, moments = assert_answers(index, folder)  # before: moments from the frames, M4 from the rows
    assert m4 == m4_now and moments > 10 * max(moments_now, 1)
    fields, _ = Reader(index, 0).fields(END - DAY, END)
    assert fields[f"{N}.n"]["value_type"] == "float"  # not known until its file is read again
    stored = []
    real = index.store_file

    def killed_after_three(*args):
        if len(stored) == 3:
            raise Killed()
        stored.append(args[0])
        real(*args)
    monkeypatch.setattr(index, "store_file", killed_after_three)
    with pytest.raises(Killed):
        upgrade.Resummarise(Scanner(index, folder)).batch()
    monkeypatch.undo()
    assert stored == sorted(stored, reverse=True)  # newest first
    assert_answers(index, folder)  # during: three files with moments, their coarse rows waiting for a refresh
    resumed = upgrade.Resummarise(Scanner(index, folder))  # the scanner's next start
    while resumed.batch():
        pass
    assert resumed.done == 8 - 3
    assert index.run(lambda cur: cur.one("SELECT COUNT(*) FROM files WHERE moments = 0"))[0] == 0
    blobs = index.run(lambda cur: cur.all("SELECT data FROM summaries_file UNION ALL SELECT data FROM summaries"))
    assert blobs and all(bytes(b)[0] == 3 for b, in blobs)
    assert not np.isnan(summaries.decode_buckets(bytes(blobs[0][0])).slots.sum).all()
    assert assert_answers(index, folder) == (m4_now, moments_now)  # after: as a new index
    fields, _ = Reader(index, 0).fields(END - DAY, END)
    assert fields[f"{N}.n"]["value_type"] == "integer"


def test_the_scanner_upgrades_a_version_6_index_in_one_pass_with_once(tmp_path):
    env = backend_env("sqlite", tmp_path)
    archive(END - DAY, END).write(archive_dir(env))
    index = make_index(env)
    Scanner(index, archive_dir(env)).scan_once()
    as_version_6(index)
    result = run_scanner(env, "--once")
    assert result.returncode == 0, result.stderr
    assert f"upgraded schema version 6 to {schema.CURRENT}" in result.stderr
    assert "moments: 4 files" in result.stderr and "every file's summaries have their moments now" in result.stderr
    check_fixed(index, archive_dir(env))


# -- the data node over a real router ------------------------------------------------------------
def test_get_buckets_of_the_g3_reader_over_the_router(tmp_path, procs, client):
    env = backend_env("sqlite", tmp_path)
    folder = archive_dir(env)
    archive(END - DAY, END).write(folder)
    procs.start("g3-file-scanner", "--once", env=env).wait_for("pass done")
    procs.start("hub").wait_for("hub ready")
    node = procs.start("g3-reader", env=dict(env, G3_READER_PROCESSES="2"))
    node.wait_for("added data node g3_reader")
    e = FIXED[0].tolist()
    answer = client.call(wamp.procedure_uri("g3_reader", "get_buckets"), [f"{A}.x", f"{N}.n", f"{A}.state"], e)
    assert set(answer["buckets"]) == {f"{A}.x", f"{N}.n", f"{A}.state"}
    assert answer["finalized_until"][f"{A}.x"] == pytest.approx(END - 5, abs=5)
    for name, found in answer["buckets"].items():
        assert_buckets(decode(found, np.asarray(e)), truth(folder, name, np.asarray(e, dtype=np.int64)))


def test_a_request_of_many_providers_is_shared_among_the_workers_by_provider():
    """A panel's fields come in one request; the reader's workers share it, a provider's fields together
    (they read the same frames), every name once."""
    names = [f"obs.a.feeds.hk.{k}" for k in "xyz"] + ["obs.b.feeds.hk.p", "obs.c.feeds.hk.q", "obs.c.feeds.hk.r"]
    split = shares(names, 2)
    assert len(split) == 2 and sorted(n for share in split for n in share) == sorted(names)
    assert sorted(len(share) for share in split) == [3, 3]
    for provider in ("obs.a.", "obs.c."):
        assert sum(any(n.startswith(provider) for n in share) for share in split) == 1
    assert shares(names[:3], 4) == [names[:3]] and shares([], 2) == [[]]
