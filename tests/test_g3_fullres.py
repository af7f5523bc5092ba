"""The reader reads data frames from their bytes as the scanner does (sisock/g3/rawframe.py): every
sample it returns at full resolution is the one spt3g decodes, numbers, integers, text and bools."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spt3g import core

from sisock.g3 import rawframe
from sisock.g3.reader import Reader
from sisock.g3.scanner import Scanner
from sisock.g3.writer import HKFileWriter, Provider
from tests.g3_support import PROVIDERS, make_index, small_archive
from tests.test_g3_rawframe import data_frame, vector

T0 = 1_700_000_000.0


def read_both_ways(index, names, t0, t1, monkeypatch):
    """``Reader.data`` of ``names`` over ``[t0, t1)``: from the frames' bytes, and with every frame left to spt3g."""
    real, read = rawframe.read_data_frame, []
    with monkeypatch.context() as patched:
        patched.setattr(rawframe, "read_data_frame", lambda *args: read.append(real(*args)) or read[-1])
        mine = Reader(index, 16).data(names, t0, t1)
    assert read and all(r is not None for r in read), "every frame is read from its bytes"
    with monkeypatch.context() as patched:
        patched.setattr(rawframe, "read_data_frame", lambda *args: None)
        theirs = Reader(index, 16).data(names, t0, t1)
    return mine, theirs


def assert_same(mine: dict, theirs: dict) -> None:
    assert mine.keys() == theirs.keys()
    for timeline, (t, columns) in mine.items():
        t2, columns2 = theirs[timeline]
        assert np.array_equal(t, t2)
        assert columns.keys() == columns2.keys()
        for name, values in columns.items():
            other = columns2[name]
            assert values.dtype == other.dtype, name
            assert np.array_equal(values, other, equal_nan=values.dtype.kind == "f"), name


def test_every_field_of_the_test_archive_reads_as_spt3g_decodes_it(tmp_path, monkeypatch):
    archive = small_archive()
    archive.write(tmp_path / "archive")
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    Scanner(index, tmp_path / "archive").scan_once()
    names = [f"{p.description}.{f}" for p in PROVIDERS for b in p.blocks for f in b.fields]
    for t0, t1 in ((archive.start, archive.end), (archive.start + 95.3, archive.end - 411.7)):
        mine, theirs = read_both_ways(index, names, t0, t1, monkeypatch)
        assert_same(mine, theirs)
        assert {k for _, columns in mine.values() for k in columns} == set(names)
    for name in names:  # and what was written
        description, key = name.rsplit(".", 1)
        t, v = archive.samples(description, key, archive.start, archive.end)
        block = next(b for p in PROVIDERS if p.description == description for b in p.blocks if key in b.fields)
        got_t, got = Reader(index, 16).data([name], archive.start, archive.end)[f"{description}.{block.name}"]
        assert np.array_equal(got_t, t) and np.array_equal(got[name], v)


KINDS = ("double", "int", "string", "bool")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(columns=st.dictionaries(st.text("abcxyz", min_size=1, max_size=5), st.sampled_from(KINDS), min_size=1,
                               max_size=4),
       frames=st.lists(st.integers(1, 40), min_size=1, max_size=5), seed=st.integers(0, 2 ** 32 - 1))
def test_frames_of_any_column_kinds_read_as_spt3g_decodes_them(tmp_path_factory, monkeypatch, columns, frames, seed):
    folder = tmp_path_factory.mktemp("kinds")
    rng = np.random.default_rng(seed)
    writer = HKFileWriter(folder / "archive" / "17000" / "1700000000.g3", [Provider("observatory.k.feeds.f", ())], T0)
    at = T0
    for n in frames:  # frames of one block, its keys of random kinds, integers of every size
        ticks = ((at + np.sort(rng.uniform(0, 60, n))) * core.G3Units.s).astype(np.int64)
        values = {key: vector(kind, rng.integers(-2 ** 40, 2 ** 40, n).tolist() if kind == "int" and seed % 2
                              else rng.integers(-100, 100, n).tolist() if kind != "double"
                              else rng.normal(0, 1e6, n).tolist()) for key, kind in columns.items()}
        writer._writer(data_frame(0, [("blk", ticks.tolist(), values)]))
        at += 60
    writer.close()
    index = make_index({"SQLITE_PATH": str(folder / "index.sqlite")})
    Scanner(index, folder / "archive").scan_once()
    names = [f"observatory.k.feeds.f.{key}" for key in columns]
    mine, theirs = read_both_ways(index, names, T0, at, monkeypatch)
    assert_same(mine, theirs)
    assert sum(len(t) for t, _ in mine.values()) == sum(frames)
