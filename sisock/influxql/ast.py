"""InfluxQL's syntax tree: frozen dataclasses the parser builds and the executor reads.

``str()`` of every node is the InfluxQL InfluxDB 1.x writes for it (its ``String()``), which its error
messages quote (e.g. "user not authorized to execute statement '...'"); parsing that text again gives the same
tree, except that InfluxDB writes float literals with three decimals.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from .quoting import format_duration, format_float_f3, format_float_g, quote_ident, quote_string

# ---------------------------------------------------------------------------------------------- expressions


class Expr:
    """Any expression (field, condition, dimension, function argument)."""


@dataclass(frozen=True)
class VarRef(Expr):
    """A field or tag name; ``type`` from ``name::type``: float, integer, unsigned, string, boolean, field, tag."""

    name: str
    type: Optional[str] = None

    def __str__(self) -> str:
        return quote_ident(self.name) + (f"::{self.type}" if self.type else "")


@dataclass(frozen=True)
class Call(Expr):
    """A function call; ``name`` is lower case (InfluxDB folds it)."""

    name: str
    args: Tuple[Expr, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class BinaryExpr(Expr):
    """``lhs op rhs``; ``op`` is the operator as written: + - * / % & | ^ AND OR = != =~ !~ < <= > >=."""

    op: str
    lhs: Expr
    rhs: Expr

    def __str__(self) -> str:
        return f"{self.lhs} {self.op} {self.rhs}"


@dataclass(frozen=True)
class ParenExpr(Expr):
    """A parenthesised expression (kept: InfluxDB keeps and prints the parentheses)."""

    expr: Expr

    def __str__(self) -> str:
        return f"({self.expr})"


@dataclass(frozen=True)
class IntegerLiteral(Expr):
    """A signed 64-bit integer."""

    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class UnsignedLiteral(Expr):
    """An integer literal above 2**63-1 (InfluxDB reads those as unsigned)."""

    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class NumberLiteral(Expr):
    """A float literal."""

    value: float

    def __str__(self) -> str:
        return format_float_f3(self.value)


@dataclass(frozen=True)
class StringLiteral(Expr):
    """A single-quoted string."""

    value: str

    def __str__(self) -> str:
        return quote_string(self.value)


@dataclass(frozen=True)
class BooleanLiteral(Expr):
    """true or false."""

    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class DurationLiteral(Expr):
    """A duration such as 5m or 1733500000000ms, in nanoseconds."""

    ns: int

    def __str__(self) -> str:
        return format_duration(self.ns)


@dataclass(frozen=True)
class TimeLiteral(Expr):
    """A point in time (nanoseconds since the epoch): what a string compared with ``time`` becomes."""

    ns: int

    def __str__(self) -> str:
        seconds, frac = divmod(self.ns, 10**9)
        stamp = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=seconds)
        text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
        if frac:
            text += "." + f"{frac:09d}".rstrip("0")
        return f"'{text}Z'"


@dataclass(frozen=True)
class RegexLiteral(Expr):
    """A ``/regex/``; ``pattern`` is its text in Go's RE2 syntax, ``\\/`` already read as ``/``."""

    pattern: str

    def __str__(self) -> str:
        return "/" + self.pattern.replace("/", "\\/") + "/"


@dataclass(frozen=True)
class ListLiteral(Expr):
    """The list of tag keys in ``SHOW TAG VALUES WITH KEY IN (...)``."""

    values: Tuple[str, ...]

    def __str__(self) -> str:
        return "(" + ", ".join(quote_ident(v) for v in self.values) + ")"


@dataclass(frozen=True)
class Wildcard(Expr):
    """``*``, ``*::field`` or ``*::tag`` (``type`` None, "field" or "tag")."""

    type: Optional[str] = None

    def __str__(self) -> str:
        return "*" + (f"::{self.type}" if self.type else "")


@dataclass(frozen=True)
class Distinct(Expr):
    """``DISTINCT name`` (the keyword form; ``distinct(name)`` is a Call)."""

    name: str

    def __str__(self) -> str:
        return f"DISTINCT {self.name}"


Literal = Union[IntegerLiteral, UnsignedLiteral, NumberLiteral, StringLiteral, BooleanLiteral, DurationLiteral,
                TimeLiteral, RegexLiteral, ListLiteral]
LITERALS = (IntegerLiteral, UnsignedLiteral, NumberLiteral, StringLiteral, BooleanLiteral, DurationLiteral,
            TimeLiteral, RegexLiteral, ListLiteral)


def binary_expr_name(expr: Expr) -> str:
    """The column name InfluxDB gives an unaliased expression: its variables and outer calls joined by "_"."""
    names = []

    def walk(e: Expr) -> None:
        if isinstance(e, VarRef):
            names.append(e.name)
        elif isinstance(e, Call):
            names.append(e.name)
        elif isinstance(e, BinaryExpr):
            walk(e.lhs)
            walk(e.rhs)
        elif isinstance(e, ParenExpr):
            walk(e.expr)

    walk(expr)
    return "_".join(names)


# ---------------------------------------------------------------------------------------------- clauses


@dataclass(frozen=True)
class Field:
    """One item of a SELECT list."""

    expr: Expr
    alias: str = ""

    def name(self) -> str:
        """The result column's name: the alias, else the call's name, the variable, or the joined names."""
        if self.alias:
            return self.alias
        expr = self.expr
        while isinstance(expr, ParenExpr):
            expr = expr.expr
        if isinstance(expr, Call):
            return expr.name
        if isinstance(expr, VarRef):
            return expr.name
        if isinstance(expr, BinaryExpr):
            return binary_expr_name(expr)
        return ""

    def __str__(self) -> str:
        return str(self.expr) + (f" AS {quote_ident(self.alias)}" if self.alias else "")


@dataclass(frozen=True)
class Dimension:
    """One GROUP BY item: ``time(interval[, offset])`` (a Call), a tag (VarRef), ``*`` or a regex."""

    expr: Expr

    def __str__(self) -> str:
        return str(self.expr)


@dataclass(frozen=True)
class Measurement:
    """A FROM source: ``"db"."rp"."name"`` or ``"db"."rp"./regex/``; empty strings where not given."""

    database: str = ""
    retention_policy: str = ""
    name: str = ""
    regex: Optional[RegexLiteral] = None

    def __str__(self) -> str:
        out = ""
        if self.database:
            out += quote_ident(self.database) + "."
        if self.retention_policy:
            out += quote_ident(self.retention_policy)
        if self.database or self.retention_policy:
            out += "."
        if self.name:
            out += quote_ident(self.name)
        elif self.regex is not None:
            out += str(self.regex)
        return out


@dataclass(frozen=True)
class SubQuery:
    """``FROM (SELECT ...)``: parsed as InfluxDB does; sisock's executor answers it as not supported."""

    statement: "SelectStatement"

    def __str__(self) -> str:
        return f"({self.statement})"


Source = Union[Measurement, SubQuery]


@dataclass(frozen=True)
class SortField:
    """ORDER BY item; InfluxQL allows only ``time`` (name may be empty: ``ORDER BY DESC``)."""

    name: str = ""
    ascending: bool = True

    def __str__(self) -> str:
        return (f"{self.name} " if self.name else "") + ("ASC" if self.ascending else "DESC")


@dataclass(frozen=True)
class Target:
    """``INTO`` destination of a SELECT (never executed: sisock is read-only)."""

    measurement: Measurement

    def __str__(self) -> str:
        return "INTO " + str(self.measurement) + ("" if self.measurement.name else ":MEASUREMENT")


@dataclass(frozen=True)
class Privilege:
    """What a statement needs to run, as InfluxDB's authorizer checks it (``database`` "" = the query's)."""

    admin: bool
    database: str
    privilege: str  # "NO PRIVILEGES", "READ", "WRITE" or "ALL PRIVILEGES"


READ = "READ"
WRITE = "WRITE"
ALL_PRIVILEGES = "ALL PRIVILEGES"
NO_PRIVILEGES = "NO PRIVILEGES"
ADMIN = Privilege(True, "", ALL_PRIVILEGES)


def _join(items: Tuple[object, ...]) -> str:
    return ", ".join(str(i) for i in items)


def _tail(condition: Optional[Expr], sort_fields: Tuple[SortField, ...], limit: int, offset: int) -> str:
    out = ""
    if condition is not None:
        out += f" WHERE {condition}"
    if sort_fields:
        out += f" ORDER BY {_join(sort_fields)}"
    if limit > 0:
        out += f" LIMIT {limit}"
    if offset > 0:
        out += f" OFFSET {offset}"
    return out


def _on(database: str) -> str:
    return f" ON {quote_ident(database)}" if database else ""


def sources_privileges(sources: Tuple[Source, ...]) -> Tuple[Privilege, ...]:
    """READ on each source's database (a subquery's own privileges)."""
    out: Tuple[Privilege, ...] = ()
    for s in sources:
        if isinstance(s, SubQuery):
            out += s.statement.required_privileges()
        else:
            out += (Privilege(False, s.database, READ),)
    return out


# ---------------------------------------------------------------------------------------------- statements


class Statement:
    """Any statement of a query."""

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """The privileges InfluxDB requires for it (what an authorizer checks)."""
        raise NotImplementedError


@dataclass(frozen=True)
class SelectStatement(Statement):
    """SELECT; ``fill`` is null, none, previous, linear or number (then ``fill_value``); limits 0 = none."""

    fields: Tuple[Field, ...]
    sources: Tuple[Source, ...]
    target: Optional[Target] = None
    condition: Optional[Expr] = None
    dimensions: Tuple[Dimension, ...] = ()
    fill: str = "null"
    fill_value: Union[int, float, None] = None
    sort_fields: Tuple[SortField, ...] = ()
    limit: int = 0
    offset: int = 0
    slimit: int = 0
    soffset: int = 0
    location: Optional[str] = None

    def is_raw_query(self) -> bool:
        """True when no field calls a function (InfluxDB's IsRawQuery)."""
        return not any(_has_call(f.expr) for f in self.fields)

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on each source, WRITE on an INTO target."""
        out = sources_privileges(self.sources)
        if self.target is not None:
            out += (Privilege(False, self.target.measurement.database, WRITE),)
        return out

    def __str__(self) -> str:
        out = "SELECT " + _join(self.fields)
        if self.target is not None:
            out += f" {self.target}"
        if self.sources:
            out += " FROM " + _join(self.sources)
        if self.condition is not None:
            out += f" WHERE {self.condition}"
        if self.dimensions:
            out += " GROUP BY " + _join(self.dimensions)
        if self.fill == "number":
            value = self.fill_value
            out += f" fill({format_float_g(value) if isinstance(value, float) else value})"
        elif self.fill != "null":
            out += f" fill({self.fill})"
        if self.sort_fields:
            out += " ORDER BY " + _join(self.sort_fields)
        for word, n in (("LIMIT", self.limit), ("OFFSET", self.offset), ("SLIMIT", self.slimit),
                        ("SOFFSET", self.soffset)):
            if n > 0:
                out += f" {word} {n}"
        if self.location is not None:
            out += f" TZ('{self.location}')"
        return out


def _has_call(expr: Expr) -> bool:
    if isinstance(expr, Call):
        return True
    if isinstance(expr, BinaryExpr):
        return _has_call(expr.lhs) or _has_call(expr.rhs)
    if isinstance(expr, ParenExpr):
        return _has_call(expr.expr)
    return False


@dataclass(frozen=True)
class ShowDatabasesStatement(Statement):
    """SHOW DATABASES."""

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """None."""
        return (Privilege(False, "", NO_PRIVILEGES),)

    def __str__(self) -> str:
        return "SHOW DATABASES"


@dataclass(frozen=True)
class ShowRetentionPoliciesStatement(Statement):
    """SHOW RETENTION POLICIES [ON db]."""

    database: str = ""

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on the database."""
        return (Privilege(False, self.database, READ),)

    def __str__(self) -> str:
        return "SHOW RETENTION POLICIES" + _on(self.database)


@dataclass(frozen=True)
class ShowMeasurementsStatement(Statement):
    """SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =|=~ name|/re/] [WHERE] [ORDER BY] [LIMIT] [OFFSET]."""

    database: str = ""
    source: Optional[Measurement] = None
    condition: Optional[Expr] = None
    sort_fields: Tuple[SortField, ...] = ()
    limit: int = 0
    offset: int = 0

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on the database."""
        return (Privilege(False, self.database, READ),)

    def __str__(self) -> str:
        out = "SHOW MEASUREMENTS"
        if self.database:
            out += f" ON {self.database}"  # InfluxDB does not quote this one
        if self.source is not None:
            op = "=~" if self.source.regex is not None else "="
            out += f" WITH MEASUREMENT {op} {self.source}"
        return out + _tail(self.condition, self.sort_fields, self.limit, self.offset)


@dataclass(frozen=True)
class ShowFieldKeysStatement(Statement):
    """SHOW FIELD KEYS [ON db] [FROM sources] [ORDER BY] [LIMIT] [OFFSET]."""

    database: str = ""
    sources: Tuple[Source, ...] = ()
    sort_fields: Tuple[SortField, ...] = ()
    limit: int = 0
    offset: int = 0

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on the database."""
        return (Privilege(False, self.database, READ),)

    def __str__(self) -> str:
        out = "SHOW FIELD KEYS" + _on(self.database)
        if self.sources:
            out += " FROM " + _join(self.sources)
        return out + _tail(None, self.sort_fields, self.limit, self.offset)


@dataclass(frozen=True)
class ShowTagKeysStatement(Statement):
    """SHOW TAG KEYS [ON db] [FROM sources] [WHERE] [ORDER BY] [LIMIT] [OFFSET] [SLIMIT] [SOFFSET]."""

    database: str = ""
    sources: Tuple[Source, ...] = ()
    condition: Optional[Expr] = None
    sort_fields: Tuple[SortField, ...] = ()
    limit: int = 0
    offset: int = 0
    slimit: int = 0
    soffset: int = 0

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on the database."""
        return (Privilege(False, self.database, READ),)

    def __str__(self) -> str:
        out = "SHOW TAG KEYS" + _on(self.database)
        if self.sources:
            out += " FROM " + _join(self.sources)
        out += _tail(self.condition, self.sort_fields, self.limit, self.offset)
        if self.slimit > 0:
            out += f" SLIMIT {self.slimit}"
        if self.soffset > 0:
            out += f" SOFFSET {self.soffset}"
        return out


@dataclass(frozen=True)
class ShowTagValuesStatement(Statement):
    """SHOW TAG VALUES [ON db] [FROM sources] WITH KEY op keys [WHERE] [ORDER BY] [LIMIT] [OFFSET].

    ``key_op`` is "=" or "!=" (``key_expr`` a StringLiteral holding the key), "=~" or "!~" (a RegexLiteral),
    or "IN" (a ListLiteral).
    """

    key_op: str
    key_expr: Union[StringLiteral, RegexLiteral, ListLiteral]
    database: str = ""
    sources: Tuple[Source, ...] = ()
    condition: Optional[Expr] = None
    sort_fields: Tuple[SortField, ...] = ()
    limit: int = 0
    offset: int = 0

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on the database."""
        return (Privilege(False, self.database, READ),)

    def __str__(self) -> str:
        out = "SHOW TAG VALUES" + _on(self.database)
        if self.sources:
            out += " FROM " + _join(self.sources)
        key = self.key_expr
        key_text = quote_ident(key.value) if isinstance(key, StringLiteral) else str(key)
        out += f" WITH KEY {self.key_op} {key_text}"
        return out + _tail(self.condition, self.sort_fields, self.limit, self.offset)


@dataclass(frozen=True)
class ShowSeriesStatement(Statement):
    """SHOW SERIES [ON db] [FROM sources] [WHERE] [ORDER BY] [LIMIT] [OFFSET]."""

    database: str = ""
    sources: Tuple[Source, ...] = ()
    condition: Optional[Expr] = None
    sort_fields: Tuple[SortField, ...] = ()
    limit: int = 0
    offset: int = 0

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """READ on the database."""
        return (Privilege(False, self.database, READ),)

    def __str__(self) -> str:
        out = "SHOW SERIES" + _on(self.database)
        if self.sources:
            out += " FROM " + _join(self.sources)
        return out + _tail(self.condition, self.sort_fields, self.limit, self.offset)


@dataclass(frozen=True)
class OtherStatement(Statement):
    """A statement InfluxDB knows that sisock does not run: writes, administration, other SHOWs, EXPLAIN.

    ``kind`` names it ("DROP MEASUREMENT", "SHOW USERS", "EXPLAIN"...), ``text`` is InfluxDB's rendering of
    it, ``privileges`` what InfluxDB would require; ``writes`` says whether running it would change anything.
    """

    kind: str
    text: str
    privileges: Tuple[Privilege, ...]
    writes: bool

    def required_privileges(self) -> Tuple[Privilege, ...]:
        """As InfluxDB's statement of this kind."""
        return self.privileges

    def __str__(self) -> str:
        return self.text


def query_string(statements: Tuple[Statement, ...]) -> str:
    """Statements joined as InfluxDB prints a query."""
    return ";\n".join(str(s) for s in statements)
