"""The checks InfluxDB 1.x makes when it compiles a SELECT: answered per statement (HTTP 200), not as a 400.

``validate(statement)`` raises CompileError with InfluxDB's message for what its query compiler refuses
(function arity and arguments, aggregates mixed with raw fields, GROUP BY time() without an aggregate, fill
modes without a function, dimensions other than time and tags, calls in WHERE). It does not evaluate the time
range of WHERE (the executor does that with its clock) nor look at the schema.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import ast
from .quoting import format_duration

MATH_FUNCTIONS = frozenset(("abs", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "exp", "log", "ln",
                            "log2", "log10", "sqrt", "pow", "floor", "ceil", "round"))
SELECTORS = frozenset(("max", "min", "first", "last"))
AGGREGATES = frozenset(("count", "sum", "mean", "median", "mode", "stddev", "spread"))
TRANSFORMS = frozenset(("derivative", "non_negative_derivative", "difference", "non_negative_difference",
                        "cumulative_sum", "moving_average", "elapsed"))


class CompileError(Exception):
    """A statement InfluxDB parses but refuses to run; ``str()`` is its per-statement error."""


def _go_type(expr: ast.Expr) -> str:
    """How Go's %T names an expression node."""
    return f"*influxql.{type(expr).__name__}"


def _is_literal(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.LITERALS)


def reduce_expr(expr: ast.Expr) -> ast.Expr:
    """Fold arithmetic on number literals and drop parentheses around anything but a binary expression."""
    if isinstance(expr, ast.ParenExpr):
        inner = reduce_expr(expr.expr)
        return ast.ParenExpr(inner) if isinstance(inner, ast.BinaryExpr) else inner
    if isinstance(expr, ast.BinaryExpr):
        lhs, rhs = reduce_expr(expr.lhs), reduce_expr(expr.rhs)
        numbers = (ast.IntegerLiteral, ast.NumberLiteral)
        if isinstance(lhs, numbers) and isinstance(rhs, numbers) and expr.op in "+-*":
            value = {"+": lhs.value + rhs.value, "-": lhs.value - rhs.value, "*": lhs.value * rhs.value}[expr.op]
            if isinstance(lhs, ast.IntegerLiteral) and isinstance(rhs, ast.IntegerLiteral):
                return ast.IntegerLiteral(int(value))
            return ast.NumberLiteral(float(value))
        return ast.BinaryExpr(expr.op, lhs, rhs)
    if isinstance(expr, ast.Call):
        return ast.Call(expr.name, tuple(reduce_expr(a) for a in expr.args))
    return expr


@dataclass
class _State:
    """What compiling the fields has found so far (InfluxDB's compiledStatement)."""

    interval: int = 0
    limit: int = 0
    calls: int = 0
    only_selectors: bool = True
    has_distinct: bool = False
    aux_fields: bool = False
    top_bottom: str = ""
    fields: int = 0
    allow_wildcard: bool = True


def validate(statement: ast.Statement) -> None:
    """Raise CompileError as InfluxDB's compiler would for a SELECT; other statements pass."""
    if not isinstance(statement, ast.SelectStatement):
        return
    state = _State(limit=statement.limit)
    if statement.condition is not None:
        _check_condition(statement.condition)
    _check_dimensions(statement, state)
    for f in statement.fields:
        if isinstance(f.expr, ast.VarRef) and f.expr.name == "time":
            continue
        state.fields += 1
        state.allow_wildcard = True
        _compile(reduce_expr(f.expr), state)
    _check_fields(statement, state)


def _check_condition(expr: ast.Expr) -> None:
    if isinstance(expr, ast.BinaryExpr):
        _check_condition(expr.lhs)
        _check_condition(expr.rhs)
    elif isinstance(expr, ast.ParenExpr):
        _check_condition(expr.expr)
    elif isinstance(expr, ast.Call) and expr.name != "now":
        if expr.name not in MATH_FUNCTIONS:
            raise CompileError(f"invalid function call in condition: {expr}")
        expected = 2 if expr.name in ("atan2", "pow") else 1
        if len(expr.args) != expected:
            raise CompileError(f"invalid number of arguments for {expr.name}, expected {expected}, "
                               f"got {len(expr.args)}")
        for arg in expr.args:
            _check_condition(arg)


def _check_dimensions(statement: ast.SelectStatement, state: _State) -> None:
    for d in statement.dimensions:
        expr = reduce_expr(d.expr)
        if isinstance(expr, ast.VarRef):
            if expr.name.lower() == "time":
                raise CompileError("time() is a function and expects at least one argument")
        elif isinstance(expr, ast.Call):
            if expr.name != "time":
                raise CompileError("only time() calls allowed in dimensions")
            if not 1 <= len(expr.args) <= 2:
                raise CompileError("time dimension expected 1 or 2 arguments")
            if not isinstance(expr.args[0], ast.DurationLiteral):
                raise CompileError("time dimension must have duration argument")
            if state.interval:
                raise CompileError("multiple time dimensions not allowed")
            state.interval = expr.args[0].ns
            if len(expr.args) == 2:
                _check_offset(expr.args[1])
        elif not isinstance(expr, (ast.Wildcard, ast.RegexLiteral)):
            raise CompileError("only time and tag dimensions allowed")


def _check_offset(offset: ast.Expr) -> None:
    if isinstance(offset, (ast.DurationLiteral, ast.TimeLiteral)):
        return
    if isinstance(offset, ast.Call):
        if offset.name != "now":
            raise CompileError("time dimension offset function must be now()")
        if offset.args:
            raise CompileError("time dimension offset now() function requires no arguments")
        return
    if isinstance(offset, ast.StringLiteral) and _looks_like_time(offset.value):
        return
    raise CompileError("time dimension offset must be duration or now()")


_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _looks_like_time(text: str) -> bool:
    """InfluxDB's test for a string that may be a time: it starts like 2006-01-02."""
    return _DATE_START.match(text) is not None


def _compile(expr: ast.Expr, s: _State) -> None:
    """One field's expression, as InfluxDB's compileExpr."""
    if isinstance(expr, ast.VarRef):
        s.aux_fields = True
    elif isinstance(expr, (ast.Wildcard, ast.RegexLiteral)):
        s.aux_fields = True
        if not s.allow_wildcard:
            kind = "wildcard" if isinstance(expr, ast.Wildcard) else "regex"
            raise CompileError(f"unable to use {kind} in a binary expression")
    elif isinstance(expr, ast.Call):
        _compile_call(expr, s)
    elif isinstance(expr, ast.Distinct):
        s.calls += 1
        _compile_distinct((ast.VarRef(expr.name),), s, nested=False)
    elif isinstance(expr, ast.BinaryExpr):
        s.allow_wildcard = False
        if _is_literal(expr.lhs) and _is_literal(expr.rhs):
            raise CompileError("cannot perform a binary expression on two literals")
        if _is_literal(expr.lhs):
            _compile(expr.rhs, s)
        elif _is_literal(expr.rhs):
            _compile(expr.lhs, s)
        else:
            _compile(expr.lhs, s)
            _compile(expr.rhs, s)
    elif isinstance(expr, ast.ParenExpr):
        _compile(expr.expr, s)
    elif _is_literal(expr):
        raise CompileError("field must contain at least one variable")
    else:
        raise CompileError("unimplemented")


def _symbol(name: str, arg: ast.Expr, s: _State) -> None:
    """A function's field argument: a name, or (outside arithmetic) * or a regex."""
    if isinstance(arg, ast.VarRef):
        return
    if isinstance(arg, (ast.Wildcard, ast.RegexLiteral)):
        if not s.allow_wildcard:
            kind = "wildcard" if isinstance(arg, ast.Wildcard) else "regex field"
            raise CompileError(f"unsupported expression with {kind}: {name}()")
        s.only_selectors = False
        return
    raise CompileError(f"expected field argument in {name}()")


def _compile_nested(expr: ast.Expr, s: _State) -> None:
    if isinstance(expr, ast.Call) and expr.name == "distinct":
        _compile_distinct(expr.args, s, nested=True)
    elif isinstance(expr, ast.Distinct):
        _compile_distinct((ast.VarRef(expr.name),), s, nested=True)
    else:
        _compile(expr, s)


def _compile_distinct(args: tuple, s: _State, nested: bool) -> None:
    if not args:
        raise CompileError("distinct function requires at least one argument")
    if len(args) != 1:
        raise CompileError("distinct function can only have one argument")
    if not isinstance(args[0], ast.VarRef):
        raise CompileError("expected field argument in distinct()")
    if not nested:
        s.has_distinct = True
    s.only_selectors = False


def _positive_duration(arg: ast.Expr) -> bool:
    if isinstance(arg, ast.DurationLiteral):
        if arg.ns <= 0:
            raise CompileError(f"duration argument must be positive, got {format_duration(arg.ns)}")
        return True
    return False


def _transform_argument(name: str, arg: ast.Expr, s: _State) -> None:
    """The first argument of derivative() and the like: an aggregate with GROUP BY time, else a field."""
    if isinstance(arg, ast.Call):
        if not s.interval:
            raise CompileError(f"{name} aggregate requires a GROUP BY interval")
        _compile_nested(arg, s)
        return
    if s.interval:
        raise CompileError(f"aggregate function required inside the call to {name}")
    _symbol(name, arg, s)


def _compile_call(call: ast.Call, s: _State) -> None:
    name, args = call.name, call.args
    if name in MATH_FUNCTIONS:
        expected = 2 if name in ("atan2", "pow", "log") else 1
        if len(args) != expected:
            raise CompileError(f"invalid number of arguments for {name}, expected {expected}, got {len(args)}")
        for arg in args:
            if not _is_literal(arg):
                _compile(arg, s)
        return
    s.calls += 1
    if name == "percentile":
        if len(args) != 2:
            raise CompileError(f"invalid number of arguments for percentile, expected 2, got {len(args)}")
        if not isinstance(args[1], (ast.IntegerLiteral, ast.NumberLiteral)):
            raise CompileError("expected float argument in percentile()")
        _symbol(name, args[0], s)
    elif name == "sample":
        if len(args) != 2:
            raise CompileError(f"invalid number of arguments for sample, expected 2, got {len(args)}")
        if not isinstance(args[1], ast.IntegerLiteral):
            raise CompileError("expected integer argument in sample()")
        if args[1].value <= 0:
            raise CompileError(f"sample window must be greater than 1, got {args[1].value}")
        _symbol(name, args[0], s)
    elif name == "distinct":
        _compile_distinct(args, s, nested=False)
    elif name in ("top", "bottom"):
        _compile_top_bottom(call, s)
    elif name in ("derivative", "non_negative_derivative", "elapsed"):
        if not 1 <= len(args) <= 2:
            raise CompileError(f"invalid number of arguments for {name}, expected at least 1 but no more than 2, "
                               f"got {len(args)}")
        if len(args) == 2 and not _positive_duration(args[1]):
            raise CompileError(f"second argument to {name} must be a duration, got {_go_type(args[1])}")
        s.only_selectors = False
        _transform_argument(name, args[0], s)
    elif name in ("difference", "non_negative_difference", "cumulative_sum"):
        if len(args) != 1:
            raise CompileError(f"invalid number of arguments for {name}, expected 1, got {len(args)}")
        s.only_selectors = False
        _transform_argument(name, args[0], s)
    elif name == "moving_average":
        if len(args) != 2:
            raise CompileError(f"invalid number of arguments for moving_average, expected 2, got {len(args)}")
        if not isinstance(args[1], ast.IntegerLiteral):
            raise CompileError(f"second argument for moving_average must be an integer, got {_go_type(args[1])}")
        if args[1].value <= 1:
            raise CompileError(f"moving_average window must be greater than 1, got {args[1].value}")
        s.only_selectors = False
        _transform_argument(name, args[0], s)
    elif name == "integral":
        if not 1 <= len(args) <= 2:
            raise CompileError(f"invalid number of arguments for integral, expected at least 1 but no more than 2, "
                               f"got {len(args)}")
        if len(args) == 2 and not _positive_duration(args[1]):
            raise CompileError("second argument must be a duration")
        s.only_selectors = False
        _symbol(name, args[0], s)
    elif name in SELECTORS or name in AGGREGATES:
        if name in AGGREGATES:
            s.only_selectors = False
        if len(args) != 1:
            raise CompileError(f"invalid number of arguments for {name}, expected 1, got {len(args)}")
        if name == "count" and isinstance(args[0], ast.Call) and args[0].name == "distinct":
            _compile_distinct(args[0].args, s, nested=True)
        elif name == "count" and isinstance(args[0], ast.Distinct):
            _compile_distinct((ast.VarRef(args[0].name),), s, nested=True)
        else:
            _symbol(name, args[0], s)
    else:
        raise CompileError(f"undefined function {name}()")


def _compile_top_bottom(call: ast.Call, s: _State) -> None:
    name, args = call.name, call.args
    if s.top_bottom:
        raise CompileError(f"selector function {s.top_bottom}() cannot be combined with other functions")
    if len(args) < 2:
        raise CompileError(f"invalid number of arguments for {name}, expected at least 2, got {len(args)}")
    limit = args[-1]
    if not isinstance(limit, ast.IntegerLiteral):
        raise CompileError(f"expected integer as last argument in {name}(), found {limit}")
    if limit.value <= 0:
        raise CompileError(f"limit ({limit.value}) in {name} function must be at least 1")
    if 0 < s.limit < limit.value:
        raise CompileError(f"limit ({limit.value}) in {name} function can not be larger than the LIMIT ({s.limit}) "
                           f"in the select statement")
    if not isinstance(args[0], ast.VarRef):
        raise CompileError(f"expected first argument to be a field in {name}(), found {args[0]}")
    for arg in args[1:-1]:
        if not isinstance(arg, ast.VarRef):
            raise CompileError(f"only fields or tags are allowed in {name}(), found {arg}")
        s.fields += 1
        s.aux_fields = True
    s.top_bottom = name


def _check_fields(statement: ast.SelectStatement, s: _State) -> None:
    """InfluxDB's validateFields: the fields together."""
    if s.fields == 0:
        raise CompileError("at least 1 non-time field must be queried")
    if s.calls > 1 and s.top_bottom:
        raise CompileError(f"selector function {s.top_bottom}() cannot be combined with other functions")
    if s.calls == 0:
        if statement.fill == "none":
            raise CompileError("fill(none) must be used with a function")
        if statement.fill == "linear":
            raise CompileError("fill(linear) must be used with a function")
        if s.interval:
            raise CompileError("GROUP BY requires at least one aggregate function")
    if s.has_distinct and (s.calls != 1 or s.aux_fields):
        raise CompileError("aggregate function distinct() cannot be combined with other functions or fields")
    if s.aux_fields:
        if not s.only_selectors:
            raise CompileError("mixing aggregate and non-aggregate queries is not supported")
        if s.calls > 1:
            raise CompileError("mixing multiple selector functions with tags or fields is not supported")
