"""One call of a SELECT over one group: the stream of points InfluxDB 1.x's iterators give for it
(aggregates and selectors per bucket, filled; distinct values; integrals; transformations of raw
points or of an aggregate's buckets, run in the statement's time order).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from sisock.influxql import ast
from sisock.influxql import functions as fn
from sisock.influxql.conditions import QueryError
from sisock.influxql.plan import EXTRA, Plan
from sisock.influxql.reader import Group, Reader
from sisock.influxql.windows import MIN_TIME, Grid


def call_points(reader: Reader, group: Group, call: ast.Call, lo: int, hi: int, inner: bool = False) -> fn.Points:
    """The stream of ``call`` over ``group`` in ``[lo, hi]``, filled as the statement says
    (``inner``: read by a transformation)."""
    name = call.name
    if name in fn.TRANSFORMS:
        return _transform(reader, group, call, lo, hi)
    if name == "integral":
        return _integral(reader, group, call, lo, hi)
    arg = call.args[0]
    if name == "count" and isinstance(arg, ast.Call):  # count(distinct(x))
        return _aggregate(reader, group, call, lo, hi, distinct_of=arg)
    if not isinstance(arg, ast.VarRef):
        raise QueryError(f"expected field argument in {name}()")
    if name == "distinct":
        return _distinct(reader, group, arg.name, lo, hi)
    return _aggregate(reader, group, call, lo, hi, inner=inner)


def _edges(reader: Reader, group: Group, key: str, lo: int, hi: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``(bucket starts, edges)`` for a field over ``[lo, hi]``: GROUP BY time's buckets (from the one
    holding ``lo``, or the field's first sample when the range has no start), or one bucket."""
    grid = reader.plan.grid
    if grid is None:
        return np.array([0 if lo == MIN_TIME else lo], dtype=np.int64), np.array([lo, hi + 1], dtype=np.int64)
    first = lo
    if lo == MIN_TIME:
        found = reader.buckets(group, key, np.array([lo, hi + 1], dtype=np.int64), ("count", "first"))
        if found is None or not found.count[0]:
            return None
        first = int(found.first_t[0])
    count = grid.count(first, hi)
    if count > reader.limits.buckets:
        raise QueryError(f"max-select-buckets limit exceeded: ({count}/{reader.limits.buckets})")
    starts = np.array(grid.starts(first, hi), dtype=np.int64)
    edges = np.concatenate([[lo], starts[1:], [hi + 1]]).astype(np.int64)
    return starts, edges


def _aggregate(reader: Reader, group: Group, call: ast.Call, lo: int, hi: int,
               distinct_of: Optional[ast.Call] = None, inner: bool = False) -> fn.Points:
    """An aggregate or selector per bucket, filled."""
    plan = reader.plan
    arg = distinct_of.args[0] if distinct_of is not None else call.args[0]
    assert isinstance(arg, ast.VarRef)
    key, name = arg.name, call.name
    kind = reader.types.get(group.measurement, {}).get(key)
    if kind is None:
        return _nothing()
    found = _edges(reader, group, key, lo, hi)
    if found is None:
        return _nothing()
    starts, edges = found
    if distinct_of is not None:
        t, v = _merged(reader, group, key, lo, hi)
        bounds = np.searchsorted(t, edges)
        values = np.array([len(fn.distinct(t[a:b], v[a:b])) for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.int64)
        times, valid = np.zeros(len(values), dtype=np.int64), values > 0
    elif name in fn.FROM_BUCKETS and (kind in ("float", "integer") or name in ("count", "first", "last")):
        b = reader.buckets(group, key, edges, fn.FROM_BUCKETS[name])
        if b is None:
            return _nothing()
        values, times, valid = fn.from_buckets(name, b, kind)
        if name == "count":
            valid = b.count > 0
    else:
        t, v = _merged(reader, group, key, lo, hi)
        if name in ("min", "max", "first", "last"):
            values, times, valid = _slow_bucket_aggregate(name, t, v, edges)
        elif name in fn.FROM_BUCKETS:
            return _nothing()  # mean, sum... of strings or booleans: InfluxDB answers nothing
        else:
            p = _number(call.args[1]) if name == "percentile" else None
            values, times, valid = fn.sample_aggregate(name, t, v, edges, kind, p, plan.ascending)
            if name == "percentile":
                valid = _percentile_stops(reader, str(call), inner, np.diff(np.searchsorted(t, edges)) > 0, valid)
    if not valid.any():
        return _nothing()
    out = _filled(plan, call, times if (plan.selector and plan.grid is None) else starts, values, valid, starts)
    if plan.selector:
        out.picked = times if plan.stmt.fill != "none" or plan.grid is None else times[valid]
    return out


class Vanished(Exception):
    """The statement answers nothing (see :func:`_percentile_stops`)."""


def _percentile_stops(reader: Reader, key: str, inner: bool, held: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """InfluxDB 1.6's percentile() stream reports its end at a bucket holding samples but no answer,
    and what reads it may not read on. A transformation stops for good at the first such bucket
    (with fill(none)), or at a series whose first bucket is one (a fill reads on past later ones).
    A lone percentile answers nothing when the first bucket is one (its emitter sees no row), and
    with fill(none) its rows end at the second such bucket in a row. Returns ``valid`` without the
    buckets no longer read (``reader.stopped``: no later series either); raises Vanished."""
    if not inner and not reader.lone:
        return valid
    order = np.flatnonzero(held)
    if not reader.plan.ascending:
        order = order[::-1]
    nofill = reader.plan.stmt.fill == "none"
    stop: Optional[int] = None
    if inner:
        if key in reader.ended:
            return np.zeros_like(valid)
        failed = [i for i, k in enumerate(order) if not valid[k]]
        if failed and (nofill or failed[0] == 0):
            reader.ended.add(key)
            stop = failed[0]
    elif not nofill:
        if len(order) and reader.after_nil and not valid[order[0]]:
            raise Vanished()
        reader.after_nil = reader.after_nil and not len(order)
    else:
        for i, k in enumerate(order):
            if valid[k]:
                reader.after_nil = False
            elif reader.after_nil:
                reader.stopped, stop = True, i
                break
            else:
                reader.after_nil = True
    if stop is None:
        return valid
    keep = np.zeros_like(valid)
    keep[order[:stop]] = True
    return valid & keep


def _slow_bucket_aggregate(name: str, t: np.ndarray, v: np.ndarray, edges: np.ndarray):
    """min, max, first and last of booleans (which buckets do not hold), from the samples:
    ``(values, selected times, valid)`` per bucket."""
    bounds = np.searchsorted(t, edges)
    n = len(edges) - 1
    values: List[object] = [None] * n
    times = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    for k in range(n):
        a, b = int(bounds[k]), int(bounds[k + 1])
        if b <= a:
            continue
        if name == "first":
            i = a
        elif name == "last":
            i = b - 1
        else:  # the extreme value, the earliest sample of it
            sign = 1 if name == "min" else -1
            i = min(range(a, b), key=lambda j: (sign * int(v[j]), t[j]))
        values[k], times[k], valid[k] = v[i], t[i], True
    return np.array(values, dtype=object), times, valid


def _filled(plan: Plan, call: ast.Call, times: np.ndarray, values: np.ndarray, valid: np.ndarray,
            starts: np.ndarray) -> fn.Points:
    """Points of an aggregate's buckets under the statement's fill (none: held buckets only;
    without GROUP BY time: the one bucket when it holds something)."""
    if plan.grid is None:
        return fn.Points(times, values, valid)
    how = plan.stmt.fill
    if how == "none":
        return fn.Points(times[valid], values[valid], valid[valid])
    number: object = plan.stmt.fill_value
    if how == "null" and call.name == "count":
        how, number = "number", 0
    values, valid = fn.fill(starts, values, valid, how, number, plan.grid.interval, plan.ascending)
    return fn.Points(times, values, valid)


def _number(expr: ast.Expr) -> float:
    return float(expr.value) if isinstance(expr, (ast.IntegerLiteral, ast.NumberLiteral)) else 0.0


def _nothing() -> fn.Points:
    return fn.Points(np.empty(0, np.int64), np.empty(0), np.empty(0, dtype=bool))


def _merged(reader: Reader, group: Group, key: str, lo: int, hi: int) -> Tuple[np.ndarray, np.ndarray]:
    """The group's samples of ``key`` in one time-ordered stream."""
    got = reader.samples(group, [key], lo, hi)
    return fn.merge_samples([got[r] for r in group.refs(key) if r in got])


def _distinct(reader: Reader, group: Group, key: str, lo: int, hi: int) -> fn.Points:
    """Each bucket's distinct values, at the bucket's time."""
    found = _edges(reader, group, key, lo, hi)
    if found is None:
        return _nothing()
    starts, edges = found
    t, v = _merged(reader, group, key, lo, hi)
    bounds = np.searchsorted(t, edges)
    times: List[int] = []
    values: List[object] = []
    for k in range(len(starts)):
        got = fn.distinct(t[bounds[k]:bounds[k + 1]], v[bounds[k]:bounds[k + 1]], reader.plan.ascending)
        if not reader.plan.ascending:  # rows are read backwards; a bucket's values keep their order
            got = got[::-1]
        times.extend([int(starts[k])] * len(got))
        values.extend(got)
    return fn.Points(np.array(times, dtype=np.int64), np.array(values, dtype=object), np.ones(len(times), bool))


def _integral(reader: Reader, group: Group, call: ast.Call, lo: int, hi: int) -> fn.Points:
    """integral(): trapezoids over the samples, per bucket (no fill)."""
    arg = call.args[0]
    assert isinstance(arg, ast.VarRef)
    unit = call.args[1].ns if len(call.args) > 1 and isinstance(call.args[1], ast.DurationLiteral) else 10**9
    t, v = _merged(reader, group, arg.name, lo, hi)
    grid = reader.plan.grid
    integer = reader.types.get(group.measurement, {}).get(arg.name) == "integer"
    window: Optional[Callable[[int], Tuple[int, int]]] = grid.window if grid is not None else None
    if window is None and integer:  # InfluxDB's integer integral answers at the range's start
        whole = (0 if lo == MIN_TIME else lo, hi + 1)
        window = lambda _: whole  # noqa: E731
    starts, areas = fn.integral(t, v, unit, window, integer, reader.plan.ascending)
    if not reader.plan.ascending:
        starts, areas = starts[::-1], areas[::-1]
    return fn.Points.of(np.array(starts, dtype=np.int64), np.array(areas, dtype=float))


def _transform(reader: Reader, group: Group, call: ast.Call, lo: int, hi: int) -> fn.Points:
    """A transformation of raw samples or of an aggregate's filled buckets, run in the statement's
    time order (ORDER BY time DESC runs it backwards); the aggregate reads one interval beyond the
    range as InfluxDB does (before it, or after it when descending), so the first answer falls in it."""
    plan = reader.plan
    name, arg = call.name, call.args[0]
    grid = plan.grid
    if isinstance(arg, ast.Call):
        assert grid is not None
        extra = EXTRA.get(name, 1)
        wider = (lo - extra * grid.interval, hi) if plan.ascending else (lo, hi + extra * grid.interval)
        inner = call_points(reader, group, arg, *wider, inner=True).held()
    elif isinstance(arg, ast.VarRef):
        t, v = _merged(reader, group, arg.name, lo, hi)
        inner = fn.Points.of(t, v)
    else:
        raise QueryError(f"expected field argument in {name}()")
    if not plan.ascending:
        inner = inner.take(slice(None, None, -1))
    out = _apply(name, call, inner, grid, plan.ascending)
    return out.take(slice(None, None, -1)) if not plan.ascending else out


def _apply(name: str, call: ast.Call, p: fn.Points, grid: Optional[Grid], ascending: bool) -> fn.Points:
    unit_arg = call.args[1] if len(call.args) > 1 and isinstance(call.args[1], ast.DurationLiteral) else None
    if name in ("derivative", "non_negative_derivative"):
        unit = unit_arg.ns if unit_arg else (grid.interval if grid is not None else 10**9)
        return fn.derivative(p, unit, name.startswith("non"), ascending)
    if name in ("difference", "non_negative_difference"):
        return fn.difference(p, name.startswith("non"))
    if name == "moving_average":
        return fn.moving_average(p, int(call.args[1].value))  # type: ignore[attr-defined]
    if name == "cumulative_sum":
        return fn.cumulative_sum(p)
    if name == "elapsed":
        return fn.elapsed(p, unit_arg.ns if unit_arg else 1)
    raise QueryError(f"unsupported call: {name}")
