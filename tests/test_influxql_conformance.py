"""sisock's InfluxQL answers equal a real InfluxDB 1.x's on the same samples.

The samples of tests/influx_data.py go to an influxd (Debian's 1.6.7, started on free loopback
ports) in the OCS publisher's schema, and to sisock's in-memory Source. Every query of
tests/data/influxql_corpus.txt, and queries generated from a small grammar, run on both: same
status, same JSON (floats equal to 1e-9 relative); a failure names the first difference.

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
                      epoch=params.get("epoch"), now=now)
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
        if a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0):
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
AGGREGATES = ["mean", "max", "min", "first", "last", "count", "sum", "spread", "stddev", "median"]
INTERVALS = ["1m", "5m", "10m", "30m", "1h", "90m", "6h", "1d"]
FILLS = ["", " fill(none)", " fill(null)", " fill(previous)", " fill(linear)", " fill(0)"]
SPAN = int(2 * influx_data.DAY)


@st.composite
def queries(draw) -> str:
    measurement, key = draw(st.sampled_from(FIELDS))
    calls = draw(st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=3, unique=True))
    start = influx_data.START + draw(st.integers(-3600, SPAN))
    length = draw(st.integers(1, SPAN // 2))
    interval = draw(st.sampled_from(INTERVALS))
    offset = draw(st.sampled_from(["", ", 15m", ", 7s"]))
    group = draw(st.sampled_from(["", ", feed", ", *"]))
    fill = draw(st.sampled_from(FILLS))
    select = ", ".join(f'{c}("{key}")' for c in calls)
    return (f'SELECT {select} FROM "{measurement}" WHERE time >= {start}s AND time < {start + length}s '
            f"GROUP BY time({interval}{offset}){group}{fill}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=queries())
def test_generated_queries(both: Both, q: str) -> None:
    found = both.compare(q, {"db": influx_data.DB})
    assert found is None, f"{q}\n{found}"
