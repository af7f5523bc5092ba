"""Running parsed InfluxQL statements against a Source: InfluxDB 1.x's answer object, one result
per statement (its series, or its error; the others still run)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from sisock.influxql import answer, ast
from sisock.influxql.batched import Batched
from sisock.influxql.conditions import QueryError
from sisock.influxql.plan import compile_select
from sisock.influxql.schema import show
from sisock.influxql.select import Limits, measurements_of, run
from sisock.influxql.source import FieldRef, Source
from sisock.influxql.windows import MAX_TIME, MIN_TIME

SHOWS = (ast.ShowDatabasesStatement, ast.ShowRetentionPoliciesStatement, ast.ShowMeasurementsStatement,
         ast.ShowFieldKeysStatement, ast.ShowTagKeysStatement, ast.ShowTagValuesStatement, ast.ShowSeriesStatement)


def execute(statements: Sequence[ast.Statement], source: Source, database: str = "", *,
            databases: Sequence[str] = ("ocs_feeds",), epoch: Optional[str] = None, now: Optional[int] = None,
            limits: Optional[Limits] = None, concurrent: int = 1) -> Dict[str, object]:
    """``{"results": [...]}`` of ``statements`` run in ``database`` (the request's ``db``) at ``now``
    (ns; default the clock), times in ``epoch`` units (None: RFC3339). With ``concurrent`` above 1,
    that many statements run at once (they read and write nothing shared; a source's waits then
    overlap, as the data nodes answer in parallel), and the bucket requests they make together
    go to the source as one (:mod:`sisock.influxql.batched`); the answer is the same."""
    now = time.time_ns() if now is None else now
    limits = limits or Limits()
    catalogue = source.catalogue() if statements else []
    at_once = min(concurrent, len(statements))
    batched = Batched(source, len(statements), at_once) if at_once > 1 else None

    def one(i: int) -> Dict[str, object]:
        try:
            if batched is None:
                return _one(i, statements[i], source, catalogue, database, databases, epoch, now, limits)
            with batched.statement():
                return _one(i, statements[i], batched, catalogue, database, databases, epoch, now, limits)
        except QueryError as e:
            return answer.statement(i, error=str(e))

    if batched is not None:
        with ThreadPoolExecutor(at_once) as pool:
            return answer.results(list(pool.map(one, range(len(statements)))))
    return answer.results([one(i) for i in range(len(statements))])


def _one(i: int, stmt: ast.Statement, source: Source, catalogue: List[FieldRef], database: str,
         databases: Sequence[str], epoch: Optional[str], now: int, limits: Limits) -> Dict[str, object]:
    if isinstance(stmt, SHOWS):
        if not isinstance(stmt, ast.ShowDatabasesStatement) and not (getattr(stmt, "database", "") or database):
            raise QueryError("database name required")
        return answer.statement(i, show(stmt, catalogue, database, databases))
    if isinstance(stmt, ast.SelectStatement):
        return _select(i, stmt, source, catalogue, database, databases, epoch, now, limits)
    if isinstance(stmt, ast.OtherStatement):
        if stmt.writes:
            raise QueryError(f"{stmt.kind} is not supported: sisock's InfluxDB API is read-only")
        raise QueryError(f"{stmt.kind} is not supported")
    raise QueryError(f"not supported: {stmt}")


def _select(i: int, stmt: ast.SelectStatement, source: Source, catalogue: List[FieldRef], database: str,
            databases: Sequence[str], epoch: Optional[str], now: int, limits: Limits) -> Dict[str, object]:
    if stmt.target is not None:
        raise QueryError("SELECT INTO is not supported: sisock's InfluxDB API is read-only")
    named = {s.database for s in stmt.sources if isinstance(s, ast.Measurement) and s.database}
    db = next(iter(named), "") or database
    if not db:
        raise QueryError("database name required")
    if db not in databases:
        raise QueryError(f"database not found: {db}")
    names = sorted({f.measurement for f in catalogue})
    measurements = measurements_of(stmt, names, db)
    mine = [f for f in catalogue if f.measurement in measurements]
    plan = compile_select(stmt, now, lambda lo, hi: _schema(source, mine, lo, hi))
    tables = run(plan, source, catalogue, measurements, limits)
    return answer.statement(i, tables, epoch=epoch, zone=plan.zone)


#: InfluxDB's shard groups under autogen: 7 days from a Monday 00:00 UTC. A wildcard expands to the
#: fields of the shards a query's range meets, so only fields with samples in those weeks count.
SHARD = 7 * 86400 * 10**9
SHARD_ORIGIN = -3 * 86400 * 10**9  # Monday 1969-12-29


def shard_span(lo: int, hi: int) -> Tuple[int, int]:
    """``[start, end)`` of the shard groups that ``[lo, hi]`` meets."""
    a = lo if lo <= MIN_TIME + SHARD else (lo - SHARD_ORIGIN) // SHARD * SHARD + SHARD_ORIGIN
    b = MAX_TIME + 1 if hi >= MAX_TIME - SHARD else ((hi - SHARD_ORIGIN) // SHARD + 1) * SHARD + SHARD_ORIGIN
    return a, b


def _schema(source: Source, refs: List[FieldRef], lo: int, hi: int) -> Tuple[Dict[str, str], Set[str]]:
    """Field keys (and types) and tag keys of ``refs`` with samples in the shard groups ``[lo, hi]`` meets."""
    a, b = shard_span(lo, hi)
    if a > MIN_TIME or b <= MAX_TIME:
        found = source.buckets(refs, np.array([a, b], dtype=np.int64), ("count",))
        refs = [r for r in refs if r in found and found[r].count[0] > 0]
    fields_of: Dict[str, str] = {}
    tags: Set[str] = set()
    for f in refs:
        fields_of.setdefault(f.key, f.type)
        tags.update(k for k, _ in f.tags)
    return fields_of, tags
