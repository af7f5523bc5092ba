"""Running a compiled SELECT (:mod:`sisock.influxql.plan`) against a Source.

Each output series is a group of the catalogue's series (one measurement, equal values of the
GROUP BY tags). Each call of the statement gives a stream of points per group; rows are the
union of their times, and each field's expression is evaluated on a row (InfluxDB's cursor
joining its call iterators). Aggregates that buckets hold are asked of ``Source.buckets`` (the
data side answers those from summaries); samples are read only for what needs them, under a cap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from sisock.influxql import ast
from sisock.influxql import functions as fn
from sisock.influxql.conditions import Env, QueryError, binary, evaluate, regex, truth
from sisock.influxql.plan import EXTRA, Plan, field_refs, resolve_dims
from sisock.influxql.source import Buckets, FieldRef, PointLimit, Source, buckets_of
from sisock.influxql.windows import MIN_TIME, Grid

Tags = Tuple[Tuple[str, str], ...]


@dataclass
class Limits:
    """Caps on one statement, answered with InfluxDB's errors: samples read (its max-select-point;
    only median, percentile, mode, distinct, integral, raw SELECTs, transformations of raw points
    and field-value conditions read samples) and GROUP BY time buckets (its max-select-buckets;
    InfluxDB's defaults are unlimited, sisock's bound the memory a statement may take)."""

    points: int = 1_000_000
    buckets: int = 100_000


@dataclass
class Table:
    """One series of an answer: ``rows`` start with the time (int ns) when ``timed``."""

    name: str
    tags: Optional[Dict[str, str]]
    columns: List[str]
    rows: List[List[object]]
    timed: bool = True


@dataclass
class Group:
    """The catalogue series of one output series: ``fields[series tags][key]``."""

    measurement: str
    tags: Dict[str, str]
    fields: Dict[Tags, Dict[str, FieldRef]]

    def refs(self, key: str) -> List[FieldRef]:
        """The field ``key`` of each series of the group that has it, in series order."""
        return [f[key] for _, f in sorted(self.fields.items()) if key in f]


class Reader:
    """Reads one statement's data from a source, keeping count of samples against the cap."""

    def __init__(self, source: Source, plan: Plan, limits: Limits, types: Dict[str, Dict[str, str]]) -> None:
        self.source, self.plan, self.limits, self.types = source, plan, limits, types
        self.read = 0
        self.lone = len(plan.calls) == 1 and plan.calls[0].name == "percentile"
        self.ended: Set[str] = set()  # percentile streams a transformation stopped reading
        self.after_nil = True  # a lone percentile's last bucket had no answer (or none came yet)
        self.stopped = False  # the statement's rows end with the group being read

    def samples(self, group: Group, keys: Sequence[str], lo: int, hi: int) -> Dict[FieldRef, Tuple[np.ndarray,
                                                                                                 np.ndarray]]:
        """Samples in ``[lo, hi]`` of ``keys`` in each series of the group, filtered by the condition's
        field comparisons (the fields those need are read too)."""
        cond = self.plan.rest
        needed = set(keys) | (self.field_names(group, cond) if cond is not None else set())
        refs = [r for k in sorted(needed) for r in group.refs(k)]
        try:
            got = self.source.samples(refs, lo, hi + 1, self.limits.points - self.read)
        except PointLimit as e:
            raise QueryError(f"max-select-point limit exceeed: ({self.read + e.count}/{self.limits.points})") from e
        self.read += sum(len(t) for t, _ in got.values())
        if cond is None or not self.field_names(group, cond):
            return {r: got[r] for r in refs if r.key in keys}
        out = {}
        for tags, fields in group.fields.items():
            mine = {k: got[f] for k, f in fields.items() if f in got}
            times = np.unique(np.concatenate([t for t, _ in mine.values()])) if mine else np.empty(0, np.int64)
            env_tags: Env = dict(tags)
            columns = {k: _at(times, t, v) for k, (t, v) in mine.items()}
            keep = np.array([truth(cond, {**env_tags, **{k: c[i] for k, c in columns.items()}})
                             for i in range(len(times))], dtype=bool)
            for k in keys:
                if k in fields and k in mine:
                    t, v = mine[k]
                    out[fields[k]] = (t[np.isin(t, times[keep])], v[np.isin(t, times[keep])])
        return out

    def field_names(self, group: Group, cond: ast.Expr) -> Set[str]:
        """The fields (not tags) a condition compares."""
        keys = self.types.get(group.measurement, {})
        return {n for n in _names(cond) if n in keys}

    def buckets(self, group: Group, key: str, edges: np.ndarray, columns: Sequence[str]) -> Optional[Buckets]:
        """The group's buckets of field ``key`` on ``edges`` (from samples when the condition
        compares fields), or None when no series has it."""
        refs = group.refs(key)
        if not refs:
            return None
        if self.plan.rest is not None and self.field_names(group, self.plan.rest):
            got = self.samples(group, [key], int(edges[0]), int(edges[-1]) - 1)
            parts = [buckets_of(*got[r], edges, r.type) for r in refs if r in got]
        else:
            found = self.source.buckets(refs, edges, columns)
            parts = [found[r] for r in refs if r in found]
        return fn.combine(parts) if parts else None


def _names(expr: ast.Expr) -> Set[str]:
    if isinstance(expr, ast.VarRef):
        return {expr.name}
    if isinstance(expr, ast.BinaryExpr):
        return _names(expr.lhs) | _names(expr.rhs)
    if isinstance(expr, ast.ParenExpr):
        return _names(expr.expr)
    return set()


def _at(times: np.ndarray, t: np.ndarray, v: np.ndarray) -> List[object]:
    """Values of samples ``(t, v)`` at ``times`` (None where there is none)."""
    out: List[object] = [None] * len(times)
    for i, x in zip(np.searchsorted(times, t).tolist(), v.tolist()):
        out[i] = x
    return out


# -- groups ------------------------------------------------------------------------------------
def groups(plan: Plan, catalogue: Sequence[FieldRef], measurements: Sequence[str]) -> List[Group]:
    """The output series: per measurement (in order), the series passing the tag conditions,
    grouped by the GROUP BY tags (sorted by their values)."""
    out: List[Group] = []
    by_series: Dict[Tuple[str, Tags], Dict[str, FieldRef]] = {}
    for f in catalogue:
        by_series.setdefault(f.series, {})[f.key] = f
    for name in measurements:
        series = {tags: fields for (m, tags), fields in by_series.items() if m == name}
        keys = {k for tags in series for k, _ in tags}
        dims = resolve_dims(plan.dims, keys)
        fields_here = {k for fields in series.values() for k in fields}
        found: Dict[Tuple[str, ...], Dict[Tags, Dict[str, FieldRef]]] = {}
        for tags, fields in series.items():
            if not _tags_pass(plan.rest, dict(tags), fields_here):
                continue
            value = tuple(dict(tags).get(d, "") for d in dims)
            found.setdefault(value, {})[tags] = fields
        for value in sorted(found, key=lambda v: "\x00".join(v)):
            out.append(Group(name, dict(zip(dims, value)), found[value]))
    return out


def _tags_pass(cond: Optional[ast.Expr], tags: Dict[str, str], fields: Set[str]) -> bool:
    """Whether a series can pass the condition: its tag comparisons hold (missing tags are ""),
    field comparisons undecided (they are checked per point)."""
    if cond is None:
        return True
    return _tag_truth(cond, tags, fields) is not False


def _tag_truth(expr: ast.Expr, tags: Dict[str, str], fields: Set[str]) -> Optional[bool]:
    """True, False, or None (depends on fields)."""
    if isinstance(expr, ast.ParenExpr):
        return _tag_truth(expr.expr, tags, fields)
    if isinstance(expr, ast.BinaryExpr):
        op = expr.op.upper()
        if op in ("AND", "OR"):
            a, b = _tag_truth(expr.lhs, tags, fields), _tag_truth(expr.rhs, tags, fields)
            if op == "AND":
                return False if a is False or b is False else (None if a is None or b is None else True)
            return True if a is True or b is True else (None if a is None or b is None else False)
        if _names(expr) & fields:
            return None
        env: Env = {n: tags.get(n, "") for n in _names(expr)}
        return evaluate(expr, env) is True
    if isinstance(expr, ast.BooleanLiteral):
        return expr.value
    return None


# -- one call over one group -----------------------------------------------------------------
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


# -- rows ------------------------------------------------------------------------------------
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


def _eval_field(expr: ast.Expr, env: Env) -> object:
    """A field's value on a row whose calls' results are in ``env`` (by the call's text)."""
    if isinstance(expr, ast.Call):
        return env.get(str(expr))
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
        columns = {k: _at(times, t, v) for k, (t, v) in mine.items()}
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
