"""The executor's own guarantees (no influxd needed): aggregates that buckets hold never read
samples, the caps answer with InfluxDB's errors, and answers are written as InfluxDB writes them."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sisock.influxql import answer
from sisock.influxql.conditions import QueryError
from sisock.influxql.executor import execute
from sisock.influxql.parser import parse
from sisock.influxql.select import Limits
from sisock.influxql.source import FieldRef, MemorySource

S = 10**9
DAY = 86400 * S
T = FieldRef("observatory.A", (("feed", "hk"),), "T", "float", "observatory.A.feeds.hk.T")
N = FieldRef("observatory.A", (("feed", "hk"),), "n", "integer", "observatory.A.feeds.hk.n")


class BucketsOnly(MemorySource):
    """A source that refuses to hand out samples: what the summary tiers can answer must not need them."""

    def samples(self, fields, start, end, limit):
        raise AssertionError(f"samples of {[f.key for f in fields]} were read")


def source(cls=MemorySource):
    t = np.arange(0, 30 * DAY, 10 * S)
    return cls({T: (t, np.sin(np.arange(len(t)) / 1000.0)), N: (t, np.arange(len(t)) % 7)})


def run(q, src, limits=None, **kw):
    return execute(parse(q), src, "ocs_feeds", limits=limits, now=40 * DAY, **kw)


@pytest.mark.parametrize("call", ["mean", "max", "min", "first", "last", "count", "sum", "stddev", "spread"])
@pytest.mark.parametrize("fill", ["", " fill(none)", " fill(previous)", " fill(linear)", " fill(0)"])
def test_bucket_aggregates_never_read_samples(call, fill):
    got = run(f'SELECT {call}("T"), {call}("n") FROM "observatory.A" WHERE time >= 0s AND time < 30d '
              f"GROUP BY time(6h), * {fill}", source(BucketsOnly))
    series = got["results"][0]["series"]
    assert len(series) == 1 and len(series[0]["values"]) == 120


def test_a_month_of_a_selector_without_group_by_time_reads_buckets_only():
    got = run('SELECT max("T") FROM "observatory.A" WHERE time > now() - 40d', source(BucketsOnly))
    assert got["results"][0]["series"][0]["values"][0][1] == pytest.approx(1.0, abs=1e-6)


def test_the_sample_cap_is_influxdbs_max_select_point_error():
    got = run('SELECT median("T") FROM "observatory.A" WHERE time >= 0s AND time < 1d', source(), Limits(points=1000))
    assert got == {"results": [{"statement_id": 0, "error": "max-select-point limit exceeed: (8640/1000)"}]}


def test_the_bucket_cap_is_influxdbs_max_select_buckets_error():
    got = run('SELECT mean("T") FROM "observatory.A" WHERE time >= 0s AND time < 1d GROUP BY time(1m); '
              'SELECT count("T") FROM "observatory.A" WHERE time >= 0s AND time < 1d', source(), Limits(buckets=100))
    assert got["results"][0] == {"statement_id": 0, "error": "max-select-buckets limit exceeded: (1440/100)"}
    assert got["results"][1]["series"][0]["values"] == [["1970-01-01T00:00:00Z", 8640]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**62, 2**62), st.one_of(st.none(), st.floats(allow_nan=False,
                                                                                     allow_infinity=False))),
                min_size=1, max_size=50))
def test_rows_of_numbers_are_written_alike_by_either_way(rows):
    """A series' rows go through orjson when they hold only numbers and nulls: the same text as the
    value by value encoder's (Go's), whichever way a row's numbers are written."""
    rows = [list(row) for row in rows]
    by_value = "[" + ",".join(answer._row(row) for row in rows) + "]"
    assert answer.dumps(rows) == by_value
    typical = [[t, None if v is None else round(v % 1000, 3)] for t, v in rows]  # positional: the fast way
    assert answer._numbers(typical) == "[" + ",".join(answer._row(row) for row in typical) + "]"


def test_times_and_numbers_are_written_as_influxdb_writes_them():
    assert answer.rfc3339(1_793_491_200_500_000_000) == "2026-11-01T00:00:00.5Z"
    assert answer.rfc3339(1_793_491_200_000_000_001) == "2026-11-01T00:00:00.000000001Z"
    assert answer.epoch_times([-1_500_000_000, 1_500_000_000], "s") == [-1, 1]  # Go truncates toward zero
    assert [answer.go_float(x) for x in (20.0, 0.1, 1e21, 1.5e-7, -0.0, 123456789.125)] == \
        ["20", "0.1", "1e+21", "1.5e-7", "-0", "123456789.125"]
    assert answer.dumps({"a": ["<&>", None, True, 1]}) == '{"a":["\\u003c\\u0026\\u003e",null,true,1]}'
    assert answer.dumps([[1, 20.0], [2, None], [3, -0.0], [4, 273.15]]) == "[[1,20],[2,null],[3,-0],[4,273.15]]"
    assert answer.dumps([[1, 1.5e-7], [2, 1e21], [3, 2.5]]) == "[[1,1.5e-7],[2,1e+21],[3,2.5]]"


def test_epoch_and_tz_apply_to_the_time_column():
    src = source()
    q = 'SELECT last("n") FROM "observatory.A" WHERE time >= 0s AND time < 2d GROUP BY time(1d) tz(\'Asia/Tokyo\')'
    got = run(q, src)["results"][0]["series"][0]["values"]
    assert [row[0] for row in got] == ["1970-01-01T00:00:00+09:00", "1970-01-02T00:00:00+09:00",
                                       "1970-01-03T00:00:00+09:00"]
    got = run(q, src, epoch="h")["results"][0]["series"][0]["values"]
    assert [row[0] for row in got] == [-9, 15, 39]


def test_read_only_statements_answer_an_error_and_change_nothing():
    got = run('DROP MEASUREMENT "observatory.A"; SELECT count("n") INTO "x" FROM "observatory.A"', source())
    assert all("read-only" in r["error"] for r in got["results"])


@pytest.mark.parametrize("q", ['SELECT abs("T") FROM "observatory.A"', 'SELECT top("T", 3) FROM "observatory.A"',
                               'SELECT derivative(sample("T", 2)) FROM "observatory.A" GROUP BY time(1h)',
                               'SELECT mean("T") FROM "observatory.A" WHERE sqrt("T") > 1',
                               'SELECT mean("T") FROM (SELECT "T" FROM "observatory.A")'])
def test_what_sisock_does_not_compute_is_a_statement_error(q):
    got = run(q + '; SELECT count("n") FROM "observatory.A"', source())["results"]
    assert set(got[0]) == {"statement_id", "error"} and got[1]["series"][0]["values"][0][1] == 259200


class Counted(MemorySource):
    """A source that counts its bucket requests, and fails those holding a field named ``broken``."""

    def __init__(self, data, broken=None):
        super().__init__(data)
        self.asked = []
        self.broken = broken
        self._lock = threading.Lock()

    def buckets(self, fields, edges, columns):
        with self._lock:
            self.asked.append(sorted(f.key for f in fields))
        if self.broken in fields:
            raise QueryError(f"data node of {self.broken.key}: gone")
        return super().buckets(fields, edges, columns)


def panel_of(fields, fn="mean"):
    """Grafana's panel of one statement per field (the same window and interval)."""
    return "; ".join(f'SELECT {fn}("{f.key}") FROM "{f.measurement}" WHERE time >= 1d AND time < 9d '
                     f"GROUP BY time(1h) fill(null)" for f in fields)


def many_fields(n):
    t = np.arange(0, 10 * DAY, 60 * S)
    agents = [f"observatory.A{i % 3}" for i in range(n)]
    refs = [FieldRef(a, (("feed", "hk"),), f"f{i}", "float", f"{a}.feeds.hk.f{i}") for i, a in enumerate(agents)]
    return {ref: (t, np.cos(np.arange(len(t)) / (50.0 + i))) for i, ref in enumerate(refs)}


def test_a_panels_statements_ask_their_buckets_together_and_answer_as_alone():
    """The statements of one request asking the same buckets of different fields go to the source as
    one request (one trip to the data node, not one a statement); each answer is what it is alone."""
    data = many_fields(8)
    q = panel_of(list(data)) + "; " + panel_of(list(data)[:2], "max")
    alone, together = Counted(data), Counted(data)
    expected = run(q, alone)
    assert run(q, together, concurrent=8) == expected
    assert len(alone.asked) == 10
    assert len(together.asked) < len(alone.asked)
    assert sorted(k for keys in together.asked for k in keys) == sorted(k for keys in alone.asked for k in keys)


def test_a_failed_data_node_is_the_error_of_its_statements_only_when_asked_together():
    data = many_fields(4)
    broken = list(data)[1]
    answered = run(panel_of(list(data)), Counted(data, broken), concurrent=8)["results"]
    assert ["error" in r for r in answered] == [False, True, False, False]
    assert "f1: gone" in answered[1]["error"]
    assert answered[0] == run(panel_of(list(data)[:1]), MemorySource(data))["results"][0]
