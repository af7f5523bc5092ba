"""sisock's InfluxQL answers equal a real InfluxDB 1.x's on the same samples.

The samples of tests/influx_data.py go to an influxd (Debian's 1.6.7, started on free loopback
ports) in the OCS publisher's schema, and to sisock's in-memory Source. Every query of
tests/data/influxql_corpus.txt, and queries generated from a small grammar, run on both: same
status, same JSON (floats equal to 1e-9 relative, 1e-12 absolute near zero); a failure names the first difference.

Corpus lines: one query each (``;`` separates statements); ``#`` starts a comment line; a line may
begin with ``?key=value&... `` to set request parameters (``db`` defaults to ocs_feeds; ``db=``
sends none).
"""
from __future__ import annotations

import json
import math
import time
import urllib.parse
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sisock.influxql import answer
from sisock.influxql.conditions import QueryError, parse_time
from sisock.influxql.executor import execute
from sisock.influxql.parser import ParseError, parse
from sisock.influxql.source import MemorySource
from tests import influx_data
from tests.influx_support import Influxd, ensure_influxd

CORPUS = Path(__file__).parent / "data" / "influxql_corpus.txt"

pytestmark = pytest.mark.skipif(not ensure_influxd(), reason="influxd is not installed (tests/provision/"
                                                            "install_influxdb.sh installs it as root)")


def corpus() -> List[Tuple[int, str]]:
    """``(line number, text)`` of each query of the corpus."""
    out = []
    for n, line in enumerate(CORPUS.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            out.append((n, line.strip()))
    return out


def request(line: str) -> Tuple[str, Dict[str, str]]:
    """A corpus line's query text and request parameters."""
    params = {"db": influx_data.DB}
    if line.startswith("?"):
        head, _, line = line.partition(" ")
        params.update(urllib.parse.parse_qsl(head[1:], keep_blank_values=True))
    if not params.get("db"):
        params.pop("db")
    return line, params


class Both:
    """The same samples in an influxd and in a MemorySource."""

    def __init__(self, server: Influxd, source: MemorySource) -> None:
        self.server, self.source = server, source

    def influx(self, q: str, params: Dict[str, str]) -> Tuple[int, object]:
        """influxd's status and JSON."""
        return self.server.request("/query", dict(params, q=q))

    def sisock(self, q: str, params: Dict[str, str], now: int) -> Tuple[int, object]:
        """The executor's status and JSON (through the JSON text it writes)."""
        try:
            statements = parse(q)
        except ParseError as e:
            return 400, answer.error(str(e))
        got = execute(statements, self.source, params.get("db", ""), databases=(influx_data.DB,),
                      epoch=params.get("epoch"), now=now, concurrent=4)  # as sisock-http runs them
        return 200, json.loads(answer.dumps(got))

    def compare(self, q: str, params: Dict[str, str]) -> Optional[str]:
        """The first difference between the two answers, or None. A query using now() is asked
        again when the clock may have crossed a bucket boundary between the two."""
        for _ in range(3):
            now = time.time_ns()
            theirs = self.influx(q, params)
            ours = self.sisock(q, params, now)
            relative = "now()" in q.lower()
            found = difference(theirs, ours, clock=relative)
            if found is None or not relative:
                return found
        return found


def _stamp(text: object) -> Optional[int]:
    """Nanoseconds of an RFC3339 time InfluxDB writes, or None."""
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text, None)
    except QueryError:
        return None


def difference(a: object, b: object, path: str = "", clock: bool = False) -> Optional[str]:
    """Where ``a`` (InfluxDB's) and ``b`` (ours) first differ: numbers to 1e-9 relative. With
    ``clock`` (the query reads now()), times may differ by the few seconds between the two
    requests (now() - 5m is the time of an aggregate's row)."""
    if clock and _stamp(a) is not None and _stamp(b) is not None:
        return None if abs(_stamp(a) - _stamp(b)) < 5 * 10**9 else f"{path}: influxdb {a!r}, sisock {b!r}"
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a is b else f"{path}: influxdb {a!r}, sisock {b!r}"
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        # 1e-9 relative, and 1e-12 absolute near zero: a difference of two equal results summed in
        # another order (derivative(stddev(...)) of equal buckets) is 0 to InfluxDB, 1e-16 to us
        if a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            return None
        return f"{path}: influxdb {a!r}, sisock {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys influxdb {list(a)}, sisock {list(b)}"
        for k in a:
            found = difference(a[k], b[k], f"{path}.{k}", clock)
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            found = difference(x, y, f"{path}[{i}]", clock)
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: influxdb {len(a)} items, sisock {len(b)}"
        return None
    return None if a == b else f"{path}: influxdb {a!r}, sisock {b!r}"


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Iterator[Both]:
    """influxd and the in-memory Source holding the same samples."""
    data = influx_data.blocks(time.time())
    with Influxd(root=tmp_path_factory.mktemp("influxd")) as server:
        status, body = server.query(f"CREATE DATABASE {influx_data.DB}", method="POST")
        assert status == 200, body
        server.write(influx_data.DB, influx_data.line_protocol(data))
        yield Both(server, influx_data.memory_source(data))


@pytest.mark.parametrize("line", [pytest.param(text, id=f"line{n}") for n, text in corpus()])
def test_corpus(both: Both, line: str) -> None:
    q, params = request(line)
    found = both.compare(q, params)
    assert found is None, f"{q}\n{found}"


# -- generated queries ---------------------------------------------------------------------------
FIELDS = [("observatory.LSA22YE", "Channel_01_T"), ("observatory.LSA22YE", "Channel_02_T"),
          ("observatory.LSA22YE", "heater_range"), ("observatory.bluefors", "p1"),
          ("observatory.bluefors", "counter"), ("apex_archive", "temperature"), ("observatory.late", "v")]
# (percentiles of 50 and above: one below has no answer for a bucket of few samples, and InfluxDB 1.6's
# stream then ends or restarts out of order depending on what reads it; the corpus pins the simple cases)
AGGREGATES = ["mean", "max", "min", "first", "last", "count", "sum", "spread", "stddev", "median",
              "percentile(%s, 75)", "percentile(%s, 50)", "integral(%s, 1m)"]
TRANSFORMS = ["derivative(%s)", "derivative(%s, 1s)", "non_negative_derivative(%s)", "difference(%s)",
              "non_negative_difference(%s)", "moving_average(%s, 3)", "cumulative_sum(%s)", "elapsed(%s, 1s)"]
INTERVALS = ["1m", "5m", "7m", "10m", "30m", "1h", "90m", "6h", "1d"]
FILLS = ["", " fill(none)", " fill(null)", " fill(previous)", " fill(linear)", " fill(0)", " fill(-2.5)"]
ZONES = ["", "", " tz('America/Santiago')", " tz('Asia/Kolkata')"]
TAGS = ["", " AND \"feed\" = 'temperatures'", " AND \"feed\" != 'temperatures'", " AND \"feed\" =~ /e/"]
SPAN = int(2 * influx_data.DAY)


def _call(template: str, key: str) -> str:
    return template % f'"{key}"' if "%s" in template else f'{template}("{key}")'


@st.composite
def windows(draw) -> str:
    """A time condition over (or around) the archive's two days."""
    start = influx_data.START + draw(st.integers(-3600, SPAN))
    length = draw(st.integers(1, SPAN // 2))
    op = draw(st.sampled_from([">=", ">"]))
    close = draw(st.sampled_from(["<", "<="]))
    return f"time {op} {start}s AND time {close} {start + length}s"


@st.composite
def grouped(draw) -> str:
    """Aggregates per GROUP BY time bucket, possibly transformed."""
    measurement, key = draw(st.sampled_from(FIELDS))
    calls = [_call(c, key) for c in draw(st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=3, unique=True))]
    if draw(st.booleans()):
        outer = draw(st.sampled_from(TRANSFORMS))
        calls = [outer % calls[0]] + calls[1:] * draw(st.sampled_from([0, 1]))
    interval = draw(st.sampled_from(INTERVALS))
    offset = draw(st.sampled_from(["", ", 15m", ", 7s", ", -20m"]))
    # integral() over several series flushes its last buckets in Go's map order (InfluxDB answers
    # differently from run to run): grouped by tags only without it
    group = "" if any("integral" in c for c in calls) else draw(st.sampled_from(["", ", feed", ", *"]))
    fill = draw(st.sampled_from(FILLS))
    tags = draw(st.sampled_from(TAGS))
    zone = draw(st.sampled_from(ZONES))
    order = draw(st.sampled_from(["", " ORDER BY time DESC"]))
    limit = draw(st.sampled_from(["", " LIMIT 3", " LIMIT 2 OFFSET 1"]))
    return (f'SELECT {", ".join(calls)} FROM "{measurement}" WHERE {draw(windows())}{tags} '
            f"GROUP BY time({interval}{offset}){group}{fill}{order}{limit}{zone}")


@st.composite
def whole(draw) -> str:
    """Aggregates, selectors and transformations of raw points over a window, without GROUP BY time."""
    measurement, key = draw(st.sampled_from(FIELDS))
    kind = draw(st.sampled_from(["aggregates", "selector", "transform", "raw"]))
    if kind == "aggregates":
        select = ", ".join(_call(c, key) for c in draw(st.lists(st.sampled_from(AGGREGATES + ["mode"]), min_size=1,
                                                                   max_size=3, unique=True)))
    elif kind == "selector":  # (a lone percentile names its sample's time: on ties of 12 samples or more,
        # InfluxDB's unstable sort picks one, see the report; floats have no ties)
        floats = key not in ("heater_range", "counter")
        select = _call(draw(st.sampled_from(["max", "min", "first", "last"] + ["percentile(%s, 90)"] * floats)), key)
        select += draw(st.sampled_from(["", " * 2", ', "feed"']))
    elif kind == "transform":
        select = draw(st.sampled_from(TRANSFORMS)) % f'"{key}"'
    else:
        select = draw(st.sampled_from([f'"{key}"', f'"{key}" / 2', "*"]))
    cond = draw(st.sampled_from(["", f' AND "{key}" > 0', f' AND "{key}" < 5']))
    group = "" if "integral" in select else draw(st.sampled_from(["", " GROUP BY feed"]))  # (see grouped())
    order = draw(st.sampled_from(["", " ORDER BY time DESC"]))
    limit = draw(st.sampled_from(["", " LIMIT 4", " LIMIT 3 OFFSET 2"]))
    hours = draw(st.integers(0, 47))
    window = f"time >= {influx_data.START + hours * 3600}s AND time < {influx_data.START + hours * 3600 + 1200}s"
    return f'SELECT {select} FROM "{measurement}" WHERE {window}{cond}{group}{order}{limit}'


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=grouped() | whole())
def test_generated_queries(both: Both, q: str) -> None:
    found = both.compare(q, {"db": influx_data.DB})
    assert found is None, f"{q}\n{found}"
