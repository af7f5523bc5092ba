"""Running a compiled SELECT (:mod:`sisock.influxql.plan`) against a Source.

Each output series is a group of the catalogue's series (:mod:`sisock.influxql.reader`). Each call
of the statement gives a stream of points per group (:mod:`sisock.influxql.streams`); rows join
the streams as InfluxDB's cursor joins its call iterators, and each field's expression is
evaluated on a row. Aggregates that buckets hold are asked of ``Source.buckets`` (the data side
answers those from summaries); samples are read only for what needs them, under a cap.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from sisock.influxql import ast
from sisock.influxql import functions as fn
from sisock.influxql.conditions import Env, QueryError, binary, evaluate, regex
from sisock.influxql.plan import Plan, field_refs
from sisock.influxql.reader import Group, Limits, Reader, Tags, at_times, groups
from sisock.influxql.source import FieldRef, Source
from sisock.influxql.streams import Vanished, call_points


@dataclass


class Table:
    """One series of an answer: ``rows`` start with the time (int ns) when ``timed``. A table is answered
    once: :func:`sisock.influxql.answer.statement` makes its rows the answer's values (times in place)."""

    name: str
    tags: Optional[Dict[str, str]]
    columns: List[str]
    rows: List[List[object]]
    timed: bool = True


_MISSING = object()  # a call without a point at a row (unlike a null point)


def rows_of(plan: Plan, streams: Dict[str, fn.Points], kinds: Dict[str, str],
            companions: Optional[Callable[[int], Env]] = None) -> List[List[object]]:
    """The rows of one group, as InfluxDB's cursor joins its calls' streams: in the statement's
    time order, each row takes the next point of every stream at the earliest (latest, when
    descending) time any has next, so a stream with several points at one time (distinct(), an
    integral's bucket) gives several rows. ``companions``: the values of a lone selector's other
    fields at its sample. A call without a point at a row is null there, or, as InfluxDB's row
    scanner fills it, the fill number (cast to the call's type, ``kinds``), or under fill(previous)
    its value on the row before."""
    step = 1 if plan.ascending else -1
    if len(streams) == 1 and companions is None and all(isinstance(f.expr, ast.Call) for f in plan.fields):
        return _rows_of_one(plan, next(iter(streams.values())), step)
    cursors = {k: (p.time[::step].tolist(), p.value[::step].tolist(), p.valid[::step].tolist(),
                   None if p.picked is None else p.picked[::step].tolist()) for k, p in streams.items()}
    at = {k: 0 for k in streams}
    how, number = plan.stmt.fill, plan.stmt.fill_value
    held: Env = {}
    out: List[List[object]] = []
    while True:
        heads = [c[0][at[k]] for k, c in cursors.items() if at[k] < len(c[0])]
        if not heads:
            return out
        t = min(heads) if plan.ascending else max(heads)
        env: Env = {}
        when: Optional[int] = None
        for k, (times, values, valid, picked) in cursors.items():
            i = at[k]
            if i < len(times) and times[i] == t:
                x: object = values[i] if valid[i] else None
                if picked is not None and valid[i]:
                    when = picked[i]
                at[k] = i + 1
            else:
                x = _cast(number, kinds[k]) if how == "number" else held.get(k) if how == "previous" else None
            env[k] = held[k] = x
        if companions and when is not None:
            env = {**companions(when), **env}
        out.append([t] + [_clean(_eval_field(f.expr, env)) for f in plan.fields])


def _rows_of_one(plan: Plan, points: fn.Points, step: int) -> List[List[object]]:
    """:func:`rows_of` of one stream whose fields are all its call (Grafana's builder's statements):
    a row per point, its value or null; the same rows, without the join's work per row."""
    value, valid = points.value[::step], points.valid[::step]
    if value.dtype.kind == "f":  # floats are Python floats already: only NaN and missing points become null
        values = value.tolist()
        for i in np.flatnonzero(~valid | np.isnan(value)).tolist():
            values[i] = None
    else:
        values = [_clean(v) if ok else None for v, ok in zip(value.tolist(), valid.tolist())]
    times = points.time[::step].tolist()
    if len(plan.fields) == 1:
        return [[t, v] for t, v in zip(times, values)]
    return [[t] + [v] * len(plan.fields) for t, v in zip(times, values)]


def _cast(number: object, kind: str) -> object:
    """A fill number as a value of a call's type (Go's conversion: an integer truncates)."""
    if not isinstance(number, (int, float)):
        return None
    return int(number) if kind == "integer" else float(number) if kind == "float" else None


def call_type(call: ast.Call, types: Dict[str, str]) -> str:
    """The type of a call's answers over a measurement's fields (``types``: key -> type)."""
    arg = call.args[0] if call.args else None
    inner = call_type(arg, types) if isinstance(arg, ast.Call) else \
        types.get(arg.name, "float") if isinstance(arg, ast.VarRef) else "float"
    return fn.result_type(call.name, inner)


@functools.lru_cache(maxsize=4096)
def _text(call: ast.Call) -> str:
    """A call's text, the key of its results (written once per call, not once per row)."""
    return str(call)


def _eval_field(expr: ast.Expr, env: Env) -> object:
    """A field's value on a row whose calls' results are in ``env`` (by the call's text)."""
    if isinstance(expr, ast.Call):
        return env.get(_text(expr))
    if isinstance(expr, ast.ParenExpr):
        return _eval_field(expr.expr, env)
    if isinstance(expr, ast.BinaryExpr):
        return binary(expr.op.upper(), _eval_field(expr.lhs, env), _eval_field(expr.rhs, env))
    return evaluate(expr, env)


def _clean(v: object) -> object:
    """NaN answers are null (InfluxDB's cursor turns them so)."""
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def raw_rows(reader: Reader, plan: Plan, group: Group) -> List[List[object]]:
    """Rows of a raw query: one per point of a series where a selected field has a value."""
    keys = [k for k in dict.fromkeys(field_refs(plan.fields)) if k in reader.types.get(group.measurement, {})]
    if not keys:
        return []
    got = reader.samples(group, keys, plan.lo, plan.hi)
    rows: List[Tuple[int, Tags, List[object]]] = []
    for tags, fields in sorted(group.fields.items()):
        mine = {k: got[fields[k]] for k in keys if k in fields and fields[k] in got}
        if not mine:
            continue
        times = np.unique(np.concatenate([t for t, _ in mine.values()]))
        columns = {k: at_times(times, t, v) for k, (t, v) in mine.items()}
        for i, t in enumerate(times.tolist()):
            env: Env = dict(tags)
            env.update({k: c[i] for k, c in columns.items()})
            rows.append((t, tags, [t] + [_clean(evaluate(f.expr, env)) for f in plan.fields]))
    rows.sort(key=lambda r: r[0])
    return [r[2] for r in rows]


def measurements_of(stmt: ast.SelectStatement, names: Sequence[str], database: str) -> List[str]:
    """The measurements the FROM clause names (exact names, or those a regex matches), sorted."""
    out: Set[str] = set()
    for s in stmt.sources:
        if not isinstance(s, ast.Measurement):
            raise QueryError("subqueries are not supported")
        if s.database and s.database != database:
            raise QueryError(f"database not found: {s.database}")
        if s.retention_policy and s.retention_policy != "autogen":
            raise QueryError(f"retention policy not found: {s.retention_policy}")
        if s.regex is not None:
            pattern = regex(s.regex.pattern)
            out |= {n for n in names if pattern.search(n)}
        elif s.name in names:
            out.add(s.name)
    return sorted(out)


def run(plan: Plan, source: Source, catalogue: Sequence[FieldRef], measurements: Sequence[str],
        limits: Limits) -> List[Table]:
    """The answer's series."""
    types: Dict[str, Dict[str, str]] = {}
    for f in catalogue:
        types.setdefault(f.measurement, {})[f.key] = f.type
    reader = Reader(source, plan, limits, types)
    tables: List[Table] = []
    if plan.lo > plan.hi:
        return tables
    ordered = groups(plan, catalogue, measurements)
    if not plan.ascending:  # series too come latest name and tags first
        ordered.reverse()
    for group in ordered:
        if plan.raw:
            rows = raw_rows(reader, plan, group)
        else:
            try:
                streams = {str(c): _page(plan, call_points(reader, group, c, plan.lo, plan.hi)) for c in plan.calls}
            except Vanished:
                return []
            companions = _companions(reader, plan, group) if plan.selector and field_refs(plan.fields) else None
            kinds = {str(c): call_type(c, reader.types.get(group.measurement, {})) for c in plan.calls}
            rows = rows_of(plan, streams, kinds, companions) if any(len(p) for p in streams.values()) else []
        if plan.raw:
            if not plan.ascending:
                rows.reverse()
            rows = rows[plan.stmt.offset:]
            rows = rows[:plan.stmt.limit] if plan.stmt.limit else rows
        if rows:
            tags = group.tags if plan.dims else None
            tables.append(Table(group.measurement, tags, plan.columns, rows))
        if reader.stopped:
            break
    tables = tables[plan.stmt.soffset:]
    if plan.stmt.slimit:
        tables = tables[:plan.stmt.slimit]
    return tables


def _page(plan: Plan, p: fn.Points) -> fn.Points:
    """A call's points after OFFSET and LIMIT, counted in the statement's time order (InfluxDB
    limits each call's points, then joins them into rows)."""
    offset, limit = plan.stmt.offset, plan.stmt.limit
    if not offset and not limit:
        return p
    n = len(p)
    end = n if not limit else min(n, offset + limit)
    keep = slice(offset, end) if plan.ascending else slice(max(n - end, 0), max(n - offset, 0))
    return p.take(keep)


def _companions(reader: Reader, plan: Plan, group: Group) -> Callable[[int], Env]:
    """For a lone selector's row at time t: the other fields and the tags of the sample it
    selected (the first series holding a sample of the selected field at t)."""
    arg = plan.calls[0].args[0]
    assert isinstance(arg, ast.VarRef)
    known = reader.types.get(group.measurement, {})
    wanted = sorted({n for n in field_refs(plan.fields) if n in known} | {arg.name})

    def at(t: int) -> Env:
        got = reader.samples(group, wanted, t, t)
        for tags, fields in sorted(group.fields.items()):
            ref = fields.get(arg.name)
            if ref is not None and ref in got and len(got[ref][0]):
                env: Env = dict(tags)
                env.update({n: _clean(got[fields[n]][1][0]) for n in wanted
                            if n in fields and fields[n] in got and len(got[fields[n]][0])})
                return env
        return {}
    return at
