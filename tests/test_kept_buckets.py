"""Final InfluxQL buckets kept by sisock-http (sisock/http/kept_buckets.py): answers with them equal
answers without.

In process: random GROUP BY time statements' buckets over an archive that grows, gets new files,
has a file rewritten in place, removed and copied in late, each asked through the InfluxQL source
(sisock.http.influx_source) of a g3 node answered as the real one answers ``get_buckets`` (the
reader's buckets, the base's cut, revisions and finalized_until, the pieces' split and join),
once keeping buckets and once not.
"""
from __future__ import annotations

import math
import random
from typing import Dict, List, Optional

import numpy as np
import pytest

from sisock import buckets
from sisock.datanode import DataNodeServer
from sisock.g3.reader import Reader
from sisock.http import fanout
from sisock.http.influx_source import WampSource
from sisock.http.kept_buckets import KEEP_WINDOWS, Grid, KeptBuckets
from sisock.influxql.source import FieldRef
from sisock.servers.g3_reader import G3ReaderServer
from tests.g3_support import END, make_index
from tests.test_results import FIELDS, START, Site

NUMBERS = [f for f in FIELDS if not f.endswith(("state", "open"))]
COLUMNS = ["count", "sum", "m2", "first", "min", "max", "last"]
NS = 1_000_000_000


class ReaderNode:
    """The g3 reader's ``get_buckets`` as it answers it over the router (its pieces split and joined)."""

    workers = None
    get_buckets = G3ReaderServer.get_buckets
    get_buckets_cut = G3ReaderServer.get_buckets_cut
    finalized_until = G3ReaderServer.finalized_until
    revisions = G3ReaderServer.revisions

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.calls: List[Optional[list]] = []  # each call's cut

    def answer(self, fields: List[str], edges: List[int], columns: List[str], cut=None) -> dict:
        grid, wanted = buckets.edges_of(edges), buckets.columns_of(columns)
        middle = None if cut is None else buckets.cut_of(cut, grid, False)
        self.calls.append(None if cut is None else list(cut))
        whole = DataNodeServer.bucket_answer(self, fields, grid, wanted, None, middle)  # type: ignore[arg-type]
        return buckets.join(buckets.split(whole, 2000))


class Catalogue:
    serving: Dict[str, List[str]] = {}

    @staticmethod
    def absence(node: str) -> None:
        return None


def source(node: ReaderNode, kept: KeptBuckets, monkeypatch) -> WampSource:
    def fetch_buckets(session, wanted, edges, columns, timeout, absence, live=None, cuts=None):
        return {n: node.answer(fields, edges, columns, (cuts or {}).get(n)) for n, fields in wanted.items()}

    monkeypatch.setattr(fanout, "fetch_buckets", fetch_buckets)
    return WampSource(None, Catalogue(), 10.0, 0.0, kept)  # type: ignore[arg-type]


def edges(start: float, end: float, interval: float, offset: float = 0.0) -> np.ndarray:
    """InfluxQL's edges (ns) of ``GROUP BY time(interval, offset)`` over ``time >= start AND time <= end``."""
    t0, t1, step, phase = (int(round(x * NS)) for x in (start, end, interval, offset))
    first = (t0 - phase) // step * step + phase + step
    inner = np.arange(first, t1 + 1, step, dtype=np.int64)
    return np.concatenate([[t0], inner[inner > t0], [t1 + 1]]).astype(np.int64)


def plain(found) -> dict:
    """Buckets as plain values (NaN as None), to compare."""
    out = {}
    for ref, b in found.items():
        out[ref.name] = {c: [None if isinstance(x, float) and math.isnan(x) else x for x in getattr(b, c).tolist()]
                         for c in ("count", "sum", "m2", "first_t", "first_v", "min_t", "min_v", "max_t", "max_v",
                                   "last_t", "last_v")}
    return out


def first_difference(got: dict, want: dict) -> str:
    """Where two answers first differ: field, column, bucket, the values."""
    for name in sorted(set(got) | set(want)):
        for column in sorted(set(got.get(name, {})) | set(want.get(name, {}))):
            a, b = got.get(name, {}).get(column), want.get(name, {}).get(column)
            if a != b:
                if a is None or b is None or len(a) != len(b):
                    return f"{name} {column}: {a if a is None else len(a)} against {b if b is None else len(b)}"
                k = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
                return f"{name} {column}[{k} of {len(a)}]: {a[k]} against {b[k]}"
    return "the same"


def statements(rng: random.Random, site: Site):
    """A dashboard's statements: windows ending at the archive's end (a few seconds on each time), after
    it, or anywhere in it, at Grafana's intervals; asked again too."""
    span = rng.choice([1800, 3600, 3 * 3600, 6 * 3600])
    interval = rng.choice([2, 5, 10, 30, 60, 120, 600])
    offset = rng.choice([0.0, 0.0, 7.0])
    end = rng.choice([site.end + rng.uniform(-30, 90), rng.uniform(START + span, site.end), site.end - 0.5])
    for k in range(rng.randint(1, 3)):
        yield end - span + 5 * k, end + 5 * k, interval, offset


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_buckets_equal_fresh_ones_over_random_statements_and_changes(tmp_path, seed, monkeypatch):
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    site = Site(tmp_path / "archive", index)
    node = ReaderNode(Reader(index, 64))
    kept, fresh = source(node, KeptBuckets(64_000_000), monkeypatch), source(node, KeptBuckets(0), monkeypatch)
    rng = random.Random(seed)
    for round_ in range(12):
        for _ in range(4):
            refs = [FieldRef("m", (), name, "float", f"g3_reader::{name}") for name in rng.sample(NUMBERS, 2)]
            for start, end, interval, offset in statements(rng, site):
                e = edges(start, end, interval, offset)
                got = plain(kept.buckets(refs, e, COLUMNS))
                want = plain(fresh.buckets(refs, e, COLUMNS))
                if got != want:
                    pytest.fail(f"seed {seed}, round {round_}, [{start}, {end}] by {interval} s + {offset}: "
                                f"{first_difference(got, want)}")
        site.change(rng)
    cuts = [c for c in node.calls if c is not None]
    assert len(cuts) > 20, "the random statements should have reused kept buckets"


def test_a_repeated_statement_asks_only_the_edges_and_a_rewrite_asks_all_again(tmp_path, monkeypatch):
    """Asked again a few seconds on, a 6-hour statement's call leaves the kept buckets out; after a
    file inside them is rewritten (another revision) the answer is the new one, asked whole."""
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    site = Site(tmp_path / "archive", index)
    node = ReaderNode(Reader(index, 64))
    kept = source(node, KeptBuckets(64_000_000), monkeypatch)
    fresh = source(node, KeptBuckets(0), monkeypatch)
    ref = [FieldRef("m", (), NUMBERS[0], "float", f"g3_reader::{NUMBERS[0]}")]
    e0, e1 = edges(END - 6 * 3600, END - 100, 60), edges(END - 6 * 3600 + 10, END - 90, 60)
    kept.buckets(ref, e0, COLUMNS)
    assert node.calls[-1] is None
    assert plain(kept.buckets(ref, e1, COLUMNS)) == plain(fresh.buckets(ref, e1, COLUMNS))
    a, b = node.calls[-2]
    assert a == e1[1] // 1000 and b >= (END - 200) * 1_000_000  # every whole bucket but the edge's
    rng = random.Random(4)
    while site.change(rng) != "rewrite":
        pass
    calls = len(node.calls)
    assert plain(kept.buckets(ref, e1, COLUMNS)) == plain(fresh.buckets(ref, e1, COLUMNS))
    assert node.calls[calls:calls + 2] == [[a, b], None]  # the cut answer's revision was stale


def test_runs_stay_within_the_bound_and_keep_a_few_windows(tmp_path, monkeypatch):
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    Site(tmp_path / "archive", index)
    node = ReaderNode(Reader(index, 64))
    capacity = 200_000  # a run of an hour at 10 s takes 35 kB
    small = KeptBuckets(capacity)
    bounded = source(node, small, monkeypatch)
    refs = [FieldRef("m", (), name, "float", f"g3_reader::{name}") for name in NUMBERS]
    for k in range(30):
        bounded.buckets(refs[k % len(refs):][:1], edges(END - 3600 - 60 * k, END - 60 * k, 10), COLUMNS)
        assert small.kept.size <= capacity
    assert small.kept.size > capacity / 2
    wide = KeptBuckets(64_000_000)
    moving = source(node, wide, monkeypatch)
    for k in range(40):  # a panel moving on: older buckets go
        end = START + 1800 + 300 * k
        moving.buckets(refs[:1], edges(end - 1800, end, 10), COLUMNS)
    (run,) = [v for _, v in wide.kept._entries.values()]
    assert run.b - run.a <= KEEP_WINDOWS * (1800 + 10) * 1_000_000


def test_a_grid_is_found_only_on_evenly_spaced_inner_edges():
    assert Grid.of(np.array([5, 10, 20, 30, 33])) is not None
    grid = Grid.of(np.array([5, 10, 20, 30, 33]))
    assert grid is not None and (grid.step, grid.phase, grid.first, grid.last) == (10, 0, 10, 30)
    assert Grid.of(np.array([10, 20, 30, 40])).first == 10  # on the grid: the first bucket is whole
    assert Grid.of(np.array([5, 10, 20, 35, 40])) is None  # uneven (a time zone's day across DST)
    assert Grid.of(np.array([0, 10, 20])) is None  # too few edges to tell
