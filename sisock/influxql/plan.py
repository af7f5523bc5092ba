"""A SELECT made ready to run, as InfluxDB 1.x compiles it: its time range (the default end is now()
for GROUP BY time, else the latest time), grid, tag dimensions, fields with wildcards expanded over
the sources' fields, column names (duplicates numbered), and InfluxDB's errors for what it refuses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sisock.influxql import ast
from sisock.influxql.conditions import QueryError, is_time, parse_time, regex, split
from sisock.influxql.functions import AGGREGATES, SELECTORS, TRANSFORMS
from sisock.influxql.validate import CompileError, validate
from sisock.influxql.windows import MAX_TIME, MIN_TIME, Grid

NUMERIC = ("float", "integer")
#: The field types each function accepts (what a wildcard or regex argument expands to).
ACCEPTS: Dict[str, Tuple[str, ...]] = {
    "count": ("float", "integer", "string", "boolean"), "first": ("float", "integer", "string", "boolean"),
    "last": ("float", "integer", "string", "boolean"), "distinct": ("float", "integer", "string", "boolean"),
    "mode": ("float", "integer", "string", "boolean"), "min": ("float", "integer", "boolean"),
    "max": ("float", "integer", "boolean"),
}
#: Extra intervals before the range a transformation of an aggregate reads (InfluxDB 1.6 widens the
#: aggregate by one interval for all but cumulative_sum, moving_average's window notwithstanding).
EXTRA = {"derivative": 1, "non_negative_derivative": 1, "difference": 1, "non_negative_difference": 1,
         "elapsed": 1, "moving_average": 1, "cumulative_sum": 0}


@dataclass
class Plan:
    """A compiled SELECT (times in int64 ns, the range inclusive)."""

    stmt: ast.SelectStatement
    fields: List[ast.Field]
    columns: List[str]
    lo: int
    hi: int
    rest: Optional[ast.Expr]
    grid: Optional[Grid]
    zone: Optional[ZoneInfo]
    dims: List[ast.Expr]  # GROUP BY tags: names (VarRef), /regex/es and *
    ascending: bool
    calls: List[ast.Call] = field(default_factory=list)

    @property
    def raw(self) -> bool:
        """No field calls a function."""
        return not self.calls

    @property
    def selector(self) -> bool:
        """One call, a selector: its rows carry the selected sample's time (without GROUP BY time)."""
        return len(self.calls) == 1 and self.calls[0].name in SELECTORS


def zone_of(name: Optional[str]) -> Optional[ZoneInfo]:
    """The tz() location (None for none or UTC)."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise QueryError(f"unable to find time zone {name}") from e


Schema = Callable[[int, int], Tuple[Dict[str, str], Set[str]]]


def compile_select(stmt: ast.SelectStatement, now: int, schema: Schema) -> Plan:
    """Compile ``stmt``; ``schema(lo, hi)`` gives the field keys (with their types) and tag keys its
    sources hold around that range, what wildcards and regexes expand to."""
    zone = zone_of(stmt.location)
    rest, (lo, hi) = split(stmt.condition, now, zone)
    grid, dims = _dimensions(stmt, now)
    fields = [f for f in stmt.fields if not is_time(f.expr)]
    time_name = next((f.alias for f in stmt.fields if is_time(f.expr) and f.alias), "time")
    if not fields:
        raise QueryError("at least 1 non-time field must be queried")
    try:
        validate(stmt)  # InfluxDB's compile errors, worded as it words them
    except CompileError as e:
        raise QueryError(str(e)) from e
    for f in fields:
        for call in _calls(f.expr):
            _supported(call)
    calls = any(_calls(f.expr) for f in fields)
    lo = MIN_TIME if lo is None else lo
    hi = (now if grid is not None else MAX_TIME) if hi is None else hi
    expanded = _expand(fields, *schema(lo, hi), dims) if _wild(fields) else fields
    ascending = not stmt.sort_fields or stmt.sort_fields[0].ascending
    return Plan(stmt, expanded, [time_name] + column_names(expanded), lo, hi, rest, grid, zone, dims,
                ascending, unique_calls(expanded) if calls else [])


def _dimensions(stmt: ast.SelectStatement, now: int) -> Tuple[Optional[Grid], List[ast.Expr]]:
    """``(grid, tag dimensions)`` of a validated statement."""
    grid = None
    dims: List[ast.Expr] = []
    for d in stmt.dimensions:
        expr = d.expr
        if isinstance(expr, ast.Call) and isinstance(expr.args[0], ast.DurationLiteral):
            interval = expr.args[0].ns
            offset = _offset(expr.args[1], interval, now) if len(expr.args) == 2 else 0
            grid = Grid(interval, offset, zone_of(stmt.location))
        elif isinstance(expr, (ast.VarRef, ast.RegexLiteral, ast.Wildcard)):
            dims.append(expr)
    return grid, dims


def _offset(arg: ast.Expr, interval: int, now: int) -> int:
    """The offset of ``time(interval, offset)`` (Go's remainder: the offset's sign is kept)."""
    if isinstance(arg, ast.DurationLiteral):
        return _rem(arg.ns, interval)
    if isinstance(arg, ast.Call) and arg.name == "now" and not arg.args:
        return now - now // interval * interval
    if isinstance(arg, (ast.TimeLiteral, ast.StringLiteral)):
        t = arg.ns if isinstance(arg, ast.TimeLiteral) else parse_time(arg.value, None)
        if t is None:
            raise QueryError("time dimension offset must be duration or now()")
        return t - t // interval * interval if t >= 0 else _rem(t, interval)
    raise QueryError("time dimension offset must be duration or now()")


def _rem(a: int, b: int) -> int:
    """Go's ``%``: the remainder takes the dividend's sign."""
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


SUPPORTED = frozenset(AGGREGATES + TRANSFORMS)


def _supported(call: ast.Call) -> None:
    """Refuse, as InfluxDB words a call it has no iterator for, what sisock does not compute (math
    functions, top/bottom, sample, holt_winters, the exponential averages...)."""
    if call.name not in SUPPORTED:
        raise QueryError(f"unsupported call: {call.name}")
    for arg in call.args:
        if isinstance(arg, ast.Call):
            _supported(arg)


def _calls(expr: ast.Expr) -> List[ast.Call]:
    """The outermost calls in an expression."""
    if isinstance(expr, ast.Call):
        return [expr]
    if isinstance(expr, ast.BinaryExpr):
        return _calls(expr.lhs) + _calls(expr.rhs)
    if isinstance(expr, ast.ParenExpr):
        return _calls(expr.expr)
    return []


def _refs(expr: ast.Expr) -> List[ast.Expr]:
    """Variables, wildcards and regexes outside any call."""
    if isinstance(expr, (ast.VarRef, ast.Wildcard, ast.RegexLiteral)):
        return [expr]
    if isinstance(expr, ast.BinaryExpr):
        return _refs(expr.lhs) + _refs(expr.rhs)
    if isinstance(expr, ast.ParenExpr):
        return _refs(expr.expr)
    return []


def _wild(fields: Sequence[ast.Field]) -> bool:
    """Whether some field is or calls a wildcard or regex."""
    for f in fields:
        e = f.expr
        if isinstance(e, ast.Call) and e.args:
            e = e.args[0]
        if isinstance(e, (ast.Wildcard, ast.RegexLiteral)):
            return True
    return False


def _expand(fields: Sequence[ast.Field], fields_of: Dict[str, str], tags: Set[str],
            dims: Sequence[ast.Expr]) -> List[ast.Field]:
    """Wildcards and regexes replaced by the fields (and, in raw queries, tags) they stand for."""
    out: List[ast.Field] = []
    grouped = set(resolve_dims(dims, tags))
    for f in fields:
        expr = f.expr
        if isinstance(expr, (ast.Wildcard, ast.RegexLiteral)):
            names = _matching(expr, fields_of, tags - grouped)
            out.extend(ast.Field(ast.VarRef(n, fields_of.get(n, "tag"))) for n in names)
        elif isinstance(expr, ast.Call) and expr.args and isinstance(expr.args[0], (ast.Wildcard, ast.RegexLiteral)):
            accepts = ACCEPTS.get(expr.name, NUMERIC)
            wanted = {k: t for k, t in fields_of.items() if t in accepts}
            for key in _matching(expr.args[0], wanted, set(), fields_only=True):
                call = ast.Call(expr.name, (ast.VarRef(key),) + expr.args[1:])
                out.append(ast.Field(call, f.alias or f"{expr.name}_{key}"))
        else:
            out.append(f)
    return out


def _matching(expr: ast.Expr, fields_of: Dict[str, str], tags: Set[str], fields_only: bool = False) -> List[str]:
    """Field (and tag) names a wildcard or regex stands for, sorted."""
    kind = expr.type if isinstance(expr, ast.Wildcard) else None
    names: Set[str] = set()
    if kind != "tag":
        names |= set(fields_of)
    if kind != "field" and not fields_only:
        names |= tags
    if isinstance(expr, ast.RegexLiteral):
        pattern = regex(expr.pattern)
        names = {n for n in names if pattern.search(n)}
    return sorted(names)


def column_names(fields: Sequence[ast.Field]) -> List[str]:
    """The columns after time: aliases, then generated names, a repeated name suffixed _1, _2..."""
    out = [f.alias for f in fields]
    seen: Dict[str, int] = {a: 1 for a in out if a}
    for i, f in enumerate(fields):
        if out[i]:
            continue
        name = f.name()
        if name in seen:
            count = seen[name]
            while f"{name}_{count}" in seen:
                count += 1
            seen[name] = count + 1
            name = f"{name}_{count}"
        seen[name] = seen.get(name, 0) + 1
        out[i] = name
    return out


def unique_calls(fields: Sequence[ast.Field]) -> List[ast.Call]:
    """Every distinct outermost call of the fields, in order of appearance."""
    seen: Dict[str, ast.Call] = {}
    for f in fields:
        for c in _calls(f.expr):
            seen.setdefault(str(c), c)
    return list(seen.values())


def field_refs(fields: Sequence[ast.Field]) -> List[str]:
    """Names of the variables outside calls (raw columns, a selector's companions)."""
    return [r.name for f in fields for r in _refs(f.expr) if isinstance(r, ast.VarRef)]


def resolve_dims(dims: Sequence[ast.Expr], keys: Set[str]) -> List[str]:
    """The tag keys to group by among ``keys`` (a measurement's), sorted as InfluxDB reports them."""
    out: Set[str] = set()
    for d in dims:
        if isinstance(d, ast.Wildcard):
            out |= keys
        elif isinstance(d, ast.RegexLiteral):
            pattern = regex(d.pattern)
            out |= {k for k in keys if pattern.search(k)}
        elif isinstance(d, ast.VarRef):
            out.add(d.name)
    return sorted(out)
