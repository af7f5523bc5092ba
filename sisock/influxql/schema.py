"""SHOW statements from the Source's catalogue, in InfluxDB 1.x's shapes (series names, columns,
ordering) over the one database and its retention policy ``autogen``."""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Set, Tuple

from sisock.influxql import ast
from sisock.influxql.conditions import QueryError, evaluate, regex
from sisock.influxql.select import Table
from sisock.influxql.source import FieldRef

Series = Tuple[str, Tuple[Tuple[str, str], ...]]


def show(stmt: ast.Statement, catalogue: Sequence[FieldRef], database: str, known: Sequence[str]) -> List[Table]:
    """The answer of a SHOW statement (``database``: the query's; ``known``: every database served)."""
    if isinstance(stmt, ast.ShowDatabasesStatement):
        return [Table("databases", None, ["name"], [[d] for d in known], timed=False)]
    db = getattr(stmt, "database", "") or database
    if isinstance(stmt, ast.ShowRetentionPoliciesStatement):
        if db not in known:
            raise QueryError(f"database not found: {db}")
        return [Table("", None, ["name", "duration", "shardGroupDuration", "replicaN", "default"],
                      [["autogen", "0s", "168h0m0s", 1, True]], timed=False)]
    if db not in known:
        return []
    if isinstance(stmt, ast.ShowMeasurementsStatement):
        return _measurements(stmt, catalogue)
    if isinstance(stmt, ast.ShowFieldKeysStatement):
        return _field_keys(stmt, catalogue)
    if isinstance(stmt, ast.ShowTagKeysStatement):
        return _tag_keys(stmt, catalogue)
    if isinstance(stmt, ast.ShowTagValuesStatement):
        return _tag_values(stmt, catalogue)
    if isinstance(stmt, ast.ShowSeriesStatement):
        return _series(stmt, catalogue)
    raise QueryError(f"not supported: {stmt}")


def _all_series(catalogue: Sequence[FieldRef]) -> Dict[Series, Set[str]]:
    out: Dict[Series, Set[str]] = {}
    for f in catalogue:
        out.setdefault(f.series, set()).add(f.key)
    return out


def _in_sources(name: str, sources: Sequence[ast.Source]) -> bool:
    """Whether measurement ``name`` is one of FROM's (all when there is no FROM)."""
    if not sources:
        return True
    for s in sources:
        if isinstance(s, ast.Measurement):
            if s.regex is not None and regex(s.regex.pattern).search(name):
                return True
            if s.regex is None and s.name == name:
                return True
    return False


def _passes(cond: Optional[ast.Expr], measurement: str, tags: Tuple[Tuple[str, str], ...]) -> bool:
    """Whether a series meets a SHOW's WHERE (tags; ``_name`` is the measurement; missing tags are "")."""
    if cond is None:
        return True
    env: Dict[str, object] = {k: v for k, v in tags}
    env["_name"] = measurement
    return _eval_tags(cond, env) is True


def _eval_tags(expr: ast.Expr, env: Dict[str, object]) -> object:
    if isinstance(expr, ast.VarRef):
        return env.get(expr.name, "")
    if isinstance(expr, ast.ParenExpr):
        return _eval_tags(expr.expr, env)
    if isinstance(expr, ast.BinaryExpr):
        from sisock.influxql.conditions import binary
        return binary(expr.op.upper(), _eval_tags(expr.lhs, env), _eval_tags(expr.rhs, env))
    return evaluate(expr, env)


def _page(rows: List[List[object]], limit: int, offset: int) -> List[List[object]]:
    rows = rows[offset:]
    return rows[:limit] if limit else rows


def _measurements(stmt: ast.ShowMeasurementsStatement, catalogue: Sequence[FieldRef]) -> List[Table]:
    names = sorted({m for (m, tags) in _all_series(catalogue) if _passes(stmt.condition, m, tags)})
    if stmt.source is not None:
        names = [n for n in names if _in_sources(n, [stmt.source])]
    rows = _page([[n] for n in names], stmt.limit, stmt.offset)
    return [Table("measurements", None, ["name"], rows, timed=False)] if rows else []


def _field_keys(stmt: ast.ShowFieldKeysStatement, catalogue: Sequence[FieldRef]) -> List[Table]:
    types: Dict[str, Dict[str, str]] = {}
    for f in catalogue:
        if _in_sources(f.measurement, stmt.sources):
            types.setdefault(f.measurement, {}).setdefault(f.key, f.type)
    out = []
    for m in sorted(types):
        rows = _page([[k, t] for k, t in sorted(types[m].items())], stmt.limit, stmt.offset)
        if rows:
            out.append(Table(m, None, ["fieldKey", "fieldType"], rows, timed=False))
    return out


def _tag_keys(stmt: ast.ShowTagKeysStatement, catalogue: Sequence[FieldRef]) -> List[Table]:
    keys: Dict[str, Set[str]] = {}
    for (m, tags) in _all_series(catalogue):
        if _in_sources(m, stmt.sources) and _passes(stmt.condition, m, tags):
            keys.setdefault(m, set()).update(k for k, _ in tags)
    out = []
    for m in sorted(keys):
        rows = _page([[k] for k in sorted(keys[m])], stmt.limit, stmt.offset)
        if rows:
            out.append(Table(m, None, ["tagKey"], rows, timed=False))
    out = out[stmt.soffset:]
    return out[:stmt.slimit] if stmt.slimit else out


def _key_matches(stmt: ast.ShowTagValuesStatement, key: str) -> bool:
    expr = stmt.key_expr
    if isinstance(expr, ast.ListLiteral):
        return key in expr.values
    if isinstance(expr, ast.RegexLiteral):
        found = regex(expr.pattern).search(key) is not None
        return found if stmt.key_op == "=~" else not found
    return (key == expr.value) if stmt.key_op == "=" else (key != expr.value)


def _tag_values(stmt: ast.ShowTagValuesStatement, catalogue: Sequence[FieldRef]) -> List[Table]:
    values: Dict[str, Set[Tuple[str, str]]] = {}
    for (m, tags) in _all_series(catalogue):
        if _in_sources(m, stmt.sources) and _passes(stmt.condition, m, tags):
            values.setdefault(m, set()).update((k, v) for k, v in tags if _key_matches(stmt, k))
    out = []
    for m in sorted(values):
        rows = _page([[k, v] for k, v in sorted(values[m])], stmt.limit, stmt.offset)
        if rows:
            out.append(Table(m, None, ["key", "value"], rows, timed=False))
    return out


_ESCAPE_NAME = re.compile(r"([, ])")
_ESCAPE_TAG = re.compile(r"([, =])")


def series_key(measurement: str, tags: Tuple[Tuple[str, str], ...]) -> str:
    """A series' key as line protocol writes it (``m,k=v``, commas, spaces and equals escaped)."""
    out = _ESCAPE_NAME.sub(r"\\\1", measurement)
    for k, v in sorted(tags):
        out += "," + _ESCAPE_TAG.sub(r"\\\1", k) + "=" + _ESCAPE_TAG.sub(r"\\\1", v)
    return out


def _series(stmt: ast.ShowSeriesStatement, catalogue: Sequence[FieldRef]) -> List[Table]:
    keys = sorted(series_key(m, tags) for (m, tags) in _all_series(catalogue)
                  if _in_sources(m, stmt.sources) and _passes(stmt.condition, m, tags))
    rows = _page([[k] for k in keys], stmt.limit, stmt.offset)
    return [Table("", None, ["key"], rows, timed=False)] if rows else []
