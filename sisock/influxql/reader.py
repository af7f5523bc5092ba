"""What one SELECT reads: the output series (groups of the catalogue's series, by measurement
and GROUP BY tags, after the tag conditions), and their samples and buckets from the Source, under
the statement's caps; field-value conditions filter samples point by point (InfluxDB's rule: a
missing value compares false), and turn bucket aggregates into aggregates of the kept samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from sisock.influxql import ast
from sisock.influxql import functions as fn
from sisock.influxql.conditions import Env, QueryError, evaluate, truth
from sisock.influxql.plan import Plan, resolve_dims
from sisock.influxql.source import Buckets, FieldRef, PointLimit, Source, buckets_of

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
            columns = {k: at_times(times, t, v) for k, (t, v) in mine.items()}
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


def at_times(times: np.ndarray, t: np.ndarray, v: np.ndarray) -> List[object]:
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


