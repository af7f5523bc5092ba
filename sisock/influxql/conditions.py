"""WHERE clauses as InfluxDB 1.x reads them: the time range is taken out of the condition (every
comparison with ``time``, intersected whatever joins them), and the rest is evaluated per series
(tags) and per point (fields) with InfluxQL's value rules (a missing value compares false,
division by zero gives 0, integer division gives a float).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Callable, Dict, Optional, Tuple
from zoneinfo import ZoneInfo

from sisock.influxql import ast
from sisock.influxql.regex import to_python
from sisock.influxql.windows import MAX_TIME, MIN_TIME

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


class QueryError(Exception):
    """A statement's error, worded as InfluxDB words it."""


def is_time(expr: ast.Expr) -> bool:
    """Whether ``expr`` is the ``time`` column."""
    return isinstance(expr, ast.VarRef) and expr.name.lower() == "time"


def parse_time(text: str, zone: Optional[ZoneInfo]) -> Optional[int]:
    """Nanoseconds of a time string InfluxDB accepts (RFC3339, "YYYY-MM-DD HH:MM:SS.f", a date;
    without an offset in ``zone``, else UTC), or None when it is no time."""
    if not (_DATE.match(text) or _DATETIME.match(text)):
        return None
    body = text.replace(" ", "T")
    offset: Optional[dt.timezone] = None
    if body.endswith("Z"):
        body, offset = body[:-1], dt.timezone.utc
    elif re.search(r"[+-]\d{2}:\d{2}$", body) and "T" in body:
        sign = 1 if body[-6] == "+" else -1
        offset = dt.timezone(sign * dt.timedelta(hours=int(body[-5:-3]), minutes=int(body[-2:])))
        body = body[:-6]
    frac = 0
    if "." in body:
        body, digits = body.split(".")
        frac = int(digits[:9].ljust(9, "0"))
    try:
        stamp = dt.datetime.fromisoformat(body)
    except ValueError as e:
        raise QueryError(f"invalid timestamp string: {text}") from e
    stamp = stamp.replace(tzinfo=offset or zone or dt.timezone.utc)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    delta = stamp - epoch
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000 + frac


def time_value(expr: ast.Expr, now: int, zone: Optional[ZoneInfo]) -> int:
    """Nanoseconds of the value compared with ``time``: a time string, a number of ns, a duration
    since the epoch, ``now()`` and sums and differences of those with durations."""
    while isinstance(expr, ast.ParenExpr):
        expr = expr.expr
    if isinstance(expr, ast.TimeLiteral):
        return expr.ns
    if isinstance(expr, ast.StringLiteral):
        found = parse_time(expr.value, zone)
        if found is None:
            raise QueryError("invalid operation: time and *influxql.StringLiteral are not compatible")
        return found
    if isinstance(expr, ast.DurationLiteral):
        return expr.ns
    if isinstance(expr, ast.IntegerLiteral):
        return expr.value
    if isinstance(expr, ast.NumberLiteral):
        return int(expr.value)
    if isinstance(expr, ast.Call) and expr.name == "now" and not expr.args:
        return now
    if isinstance(expr, ast.BinaryExpr) and expr.op in ("+", "-"):
        a, b = time_value(expr.lhs, now, zone), time_value(expr.rhs, now, zone)
        return a + b if expr.op == "+" else a - b
    raise QueryError(f"invalid operation: time and *influxql.{type(expr).__name__} are not compatible")


TimeRange = Tuple[Optional[int], Optional[int]]  # inclusive; None = not given
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">="}


def split(cond: Optional[ast.Expr], now: int, zone: Optional[ZoneInfo]) -> Tuple[Optional[ast.Expr], TimeRange]:
    """``(rest, (min, max))``: the condition without its time comparisons, and their range."""
    if cond is None:
        return None, (None, None)
    if isinstance(cond, ast.ParenExpr):
        rest, span = split(cond.expr, now, zone)
        return (None if rest is None else ast.ParenExpr(rest)), span
    if isinstance(cond, ast.BinaryExpr):
        if cond.op.upper() in ("AND", "OR"):
            left, a = split(cond.lhs, now, zone)
            right, b = split(cond.rhs, now, zone)
            span = (_pick(max, a[0], b[0]), _pick(min, a[1], b[1]))
            if left is None or right is None:
                return left if right is None else right, span
            return ast.BinaryExpr(cond.op.upper(), left, right), span
        if is_time(cond.lhs):
            return None, _bound(cond.op, time_value(cond.rhs, now, zone))
        if is_time(cond.rhs):
            return None, _bound(_FLIP.get(cond.op, cond.op), time_value(cond.lhs, now, zone))
        return cond, (None, None)
    if isinstance(cond, ast.BooleanLiteral):
        return (None if cond.value else cond), (None, None)
    raise QueryError(f"invalid condition expression: {cond}")


def _pick(fn: Callable[[int, int], int], a: Optional[int], b: Optional[int]) -> Optional[int]:
    return b if a is None else a if b is None else fn(a, b)


def _bound(op: str, value: int) -> TimeRange:
    if value > MAX_TIME:
        raise QueryError("time overflows time literal")
    if value < MIN_TIME + 1:
        raise QueryError("time underflows time literal")
    if op == ">":
        return value + 1, None
    if op == ">=":
        return value, None
    if op == "<":
        return None, value - 1
    if op == "<=":
        return None, value
    if op == "=":
        return value, value
    raise QueryError(f"invalid time comparison operator: {op}")


# -- evaluation ------------------------------------------------------------------------------
Env = Dict[str, object]  # name -> value at one point (tags and fields; absent = null)


def evaluate(expr: ast.Expr, env: Env) -> object:
    """The value of ``expr`` at one point, as InfluxQL computes it (None = null)."""
    if isinstance(expr, ast.ParenExpr):
        return evaluate(expr.expr, env)
    if isinstance(expr, ast.VarRef):
        value = env.get(expr.name)
        if expr.type == "integer" and isinstance(value, float):
            return int(value)  # a float read as ::integer truncates, as Go converts
        if expr.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if isinstance(expr, (ast.IntegerLiteral, ast.NumberLiteral, ast.StringLiteral, ast.BooleanLiteral,
                         ast.UnsignedLiteral)):
        return expr.value
    if isinstance(expr, ast.DurationLiteral):
        return expr.ns
    if isinstance(expr, ast.RegexLiteral):
        return regex(expr.pattern)
    if isinstance(expr, ast.BinaryExpr):
        return binary(expr.op.upper(), evaluate(expr.lhs, env), evaluate(expr.rhs, env))
    if isinstance(expr, ast.Call):
        raise QueryError(f"unsupported call: {expr.name}")
    return None


def truth(expr: Optional[ast.Expr], env: Env) -> bool:
    """Whether a condition holds at one point (null is false)."""
    return expr is None or evaluate(expr, env) is True


def regex(pattern: str) -> "re.Pattern[str]":
    """A compiled regular expression of Go's RE2 syntax (the parser's translation)."""
    return to_python(pattern)


def binary(op: str, a: object, b: object) -> object:
    """InfluxQL's binary operators (influxql's ValuerEval, integer division giving floats)."""
    if a is None and isinstance(b, bool):
        a = False
    elif b is None and isinstance(a, bool):
        b = False
    if isinstance(a, bool):
        ok = isinstance(b, bool)
        return {"AND": ok and a and b, "OR": ok and (a or b), "=": ok and a == b, "!=": ok and a != b,
                "&": ok and a and b, "|": ok and (a or b), "^": ok and a != b}.get(op)
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return _numeric(op, a, b)
    if isinstance(a, str):
        if isinstance(b, re.Pattern):
            if op == "=~":
                return b.search(a) is not None
            if op == "!~":
                return b.search(a) is None
            return None
        ok = isinstance(b, str)
        if op == "=":
            return ok and a == b
        if op == "!=":
            return ok and a != b
        if op == "+":
            return a + b if ok else None  # type: ignore[operator]
        return None
    if a is None and op in ("=", "!=", "<", "<=", ">", ">=", "=~", "!~"):
        return False
    return None


def _numeric(op: str, a: float, b: object) -> object:
    if isinstance(b, bool) or not isinstance(b, (int, float)):
        return False if op in ("=", "!=", "<", "<=", ">", ">=") else None
    both_int = isinstance(a, int) and isinstance(b, int)
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return 0.0 if b == 0 else float(a) / float(b)
    if op == "%":
        if both_int:
            return 0 if b == 0 else int(math.fmod(a, b))
        return math.fmod(a, b) if b != 0 else math.nan
    if both_int and op in ("&", "|", "^"):
        return {"&": a & b, "|": a | b, "^": a ^ b}[op]  # type: ignore[operator]
    return None
