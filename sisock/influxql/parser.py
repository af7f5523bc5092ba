"""InfluxQL's parser: text -> statements, or ParseError worded and positioned exactly as InfluxDB 1.x's.

Recursive descent over ``tokens.TokenBuffer``. The order in which InfluxDB scans, peeks and pushes back tokens
decides which token an error names and where, so each rule here scans as InfluxDB's does (that order is its
observable behaviour); the write and administration statements are parsed to ``OtherStatement`` so that they
get InfluxDB's parse errors too, and the executor refuses them.
"""
from __future__ import annotations

import math
import zoneinfo
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import ast
from .literals import DurationError, parse_duration
from .quoting import format_duration, format_go_duration, quote_ident, quote_string
from .regex import RegexError, check_regex
from .tokens import OPERATORS, PRECEDENCE, Pos, Tok, Token, TokenBuffer, is_whitespace

INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

# SELECT targets: a CONTINUOUS QUERY needs INTO, a subquery and a plain SELECT do not.
TARGET_REQUIRED, TARGET_NOT_REQUIRED, TARGET_SUBQUERY = range(3)


class ParseError(Exception):
    """A query InfluxDB would refuse with HTTP 400; ``str()`` is its whole error text."""

    def __init__(self, detail: str) -> None:
        super().__init__("error parsing query: " + detail)
        self.detail = detail


def _at(message: str, pos: Pos) -> ParseError:
    return ParseError(f"{message} at line {pos.line + 1}, char {pos.char + 1}")


def _found(tok: Token, expected: Sequence[str]) -> ParseError:
    return _at(f"found {tok.found()}, expected {', '.join(expected)}", tok.pos)


def trim_query(text: str) -> str:
    """The query text as InfluxDB's HTTP handler parses it: Unicode white space trimmed from both ends."""
    return text.strip(_GO_SPACE)


# Go's unicode.IsSpace (Python's str.strip() would also strip \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"


def parse(text: str, params: Optional[Mapping[str, Any]] = None) -> List[ast.Statement]:
    """Every statement of ``text`` (separated by ``;``); ``params`` binds ``$name`` (bool, int, float, str)."""
    return _Parser(text, params or {}).parse_query()


_INVALID_FIELD_OPS = {"=", "!=", "=~", "!~", "<", "<=", ">", ">=", "AND", "OR"}
_TYPES = ("float", "integer", "unsigned", "string", "boolean")


class _Bin:
    """A binary expression while the precedence climb may still rewrite its right-hand side."""

    def __init__(self, op: Tok, lhs: Any, rhs: Any) -> None:
        self.op, self.lhs, self.rhs = op, lhs, rhs

    def freeze(self) -> ast.BinaryExpr:
        return ast.BinaryExpr(self.op.value, _freeze(self.lhs), _freeze(self.rhs))


def _freeze(node: Any) -> ast.Expr:
    return node.freeze() if isinstance(node, _Bin) else node


class _Parser:
    def __init__(self, text: str, params: Mapping[str, Any]) -> None:
        self.t = TokenBuffer(text)
        self.params = params

    # ------------------------------------------------------------------ token helpers

    def scan(self) -> Token:
        return self.t.scan()

    def unscan(self) -> None:
        self.t.unscan()

    def scan_ws(self) -> Token:
        """The next token that is neither whitespace nor a comment."""
        while True:
            tok = self.t.scan()
            if tok.kind not in (Tok.WS, Tok.COMMENT):
                return tok

    def consume_whitespace(self) -> None:
        if self.scan().kind is not Tok.WS:
            self.unscan()

    def expect(self, *kinds: Tok) -> None:
        """Each of ``kinds`` in turn (whitespace skipped), or InfluxDB's "found X, expected Y"."""
        for kind in kinds:
            tok = self.scan_ws()
            if tok.kind is not kind:
                raise _found(tok, [kind.value])

    def accept(self, kind: Tok) -> bool:
        """Consume the next token if it is ``kind``."""
        if self.scan_ws().kind is kind:
            return True
        self.unscan()
        return False

    # ------------------------------------------------------------------ query and statements

    def parse_query(self) -> List[ast.Statement]:
        statements: List[ast.Statement] = []
        separated = True
        while True:
            tok = self.scan_ws()
            if tok.kind is Tok.EOF:
                return statements
            if tok.kind is Tok.SEMICOLON:
                separated = True
                continue
            if not separated:
                raise _found(tok, [";"])
            self.unscan()
            statements.append(self.parse_statement())
            separated = False

    def parse_statement(self) -> ast.Statement:
        tree: Dict[Tok, Any] = _LANGUAGE
        while True:
            tok = self.scan_ws()
            entry = tree.get(tok.kind)
            if isinstance(entry, dict):
                tree = entry
                continue
            if entry is not None:
                return entry(self)
            raise _found(tok, [k.value for k in tree])

    # ------------------------------------------------------------------ small pieces

    def parse_ident(self) -> str:
        tok = self.scan_ws()
        if tok.kind is not Tok.IDENT:
            raise _found(tok, ["identifier"])
        return tok.lit

    def parse_ident_list(self) -> List[str]:
        idents = [self.parse_ident()]
        while self.accept(Tok.COMMA):
            idents.append(self.parse_ident())
        return idents

    def parse_string(self) -> str:
        tok = self.scan_ws()
        if tok.kind is not Tok.STRING:
            raise _found(tok, ["string"])
        return tok.lit

    def parse_string_list(self) -> List[str]:
        strings = [self.parse_string()]
        while self.accept(Tok.COMMA):
            strings.append(self.parse_string())
        return strings

    def parse_int(self, low: int, high: int) -> int:
        tok = self.scan_ws()
        if tok.kind is not Tok.INTEGER:
            raise _found(tok, ["integer"])
        n = int(tok.lit)
        if n > INT64_MAX:
            raise _at(f'strconv.Atoi: parsing "{tok.lit}": value out of range', tok.pos)
        if not low <= n <= high:
            raise _at(f"invalid value {n}: must be {low} <= n <= {high}", tok.pos)
        return n

    def parse_uint64(self) -> int:
        tok = self.scan_ws()
        if tok.kind is not Tok.INTEGER:
            raise _found(tok, ["integer"])
        n = int(tok.lit)
        if n > UINT64_MAX:
            raise _at(f'strconv.ParseUint: parsing "{tok.lit}": value out of range', tok.pos)
        return n

    def parse_duration_value(self) -> int:
        """A DURATION clause's value: a duration or INF (0)."""
        tok = self.scan_ws()
        if tok.kind not in (Tok.DURATIONVAL, Tok.INF):
            raise _found(tok, ["duration"])
        if tok.kind is Tok.INF:
            return 0
        try:
            return parse_duration(tok.lit)
        except DurationError as e:
            raise _at(str(e), tok.pos) from None

    def parse_optional_int(self, kind: Tok) -> int:
        """``kind <n>`` (LIMIT, OFFSET, SLIMIT, SOFFSET) if present, else 0."""
        if not self.accept(kind):
            return 0
        tok = self.scan_ws()
        if tok.kind is not Tok.INTEGER:
            raise _found(tok, ["integer"])
        return min(int(tok.lit), INT64_MAX)

    def parse_segmented_idents(self) -> List[str]:
        """``a``, ``a.b``, ``a.b.c`` or ``a..c`` (stopping before a ``/regex/`` or ``:`` after a dot)."""
        idents = [self.parse_ident()]
        while True:
            if self.scan().kind is not Tok.DOT:
                self.unscan()
                break
            ch = self.t.peek_rune()
            if ch in ("/", ":"):
                break
            if ch == ".":
                idents.append("")
                continue
            idents.append(self.parse_ident())
        if len(idents) > 3:
            raise _at(f"too many segments in {quote_ident(*idents)}", Pos(0, 0))
        return idents

    def parse_regex(self) -> Optional[ast.RegexLiteral]:
        """A ``/regex/`` if the next non-blank character is a slash, else None (nothing consumed)."""
        if is_whitespace(self.t.peek_rune()):
            self.consume_whitespace()
        if self.t.peek_rune() != "/":
            return None
        tok = self.t.scan_regex()
        if tok.kind is Tok.BADESCAPE:
            raise _at(f"bad escape: {tok.lit}", tok.pos)
        if tok.kind is Tok.BADREGEX:
            raise _at(f"bad regex: {tok.lit}", tok.pos)
        if tok.kind is not Tok.REGEX:
            raise _found(tok, ["regex"])
        return self._regex(tok)

    @staticmethod
    def _regex(tok: Token) -> ast.RegexLiteral:
        try:
            check_regex(tok.lit)
        except RegexError as e:
            raise _at(str(e), tok.pos) from None
        return ast.RegexLiteral(tok.lit)

    def parse_required_regex(self) -> ast.RegexLiteral:
        """A regex after =~ or !~; InfluxDB names the next token when there is none."""
        re = self.parse_regex()
        if re is None:
            raise _found(self.scan_ws(), ["regex"])
        return re

    # ------------------------------------------------------------------ expressions

    def parse_expr(self) -> ast.Expr:
        root = _Bin(Tok.ILLEGAL, None, self.parse_unary())
        while True:
            op = self.scan_ws()
            if op.kind not in OPERATORS:
                self.unscan()
                return _freeze(root.rhs)
            rhs: ast.Expr
            if op.kind in (Tok.EQREGEX, Tok.NEQREGEX):
                rhs = self.parse_required_regex()
            else:
                rhs = self.parse_unary()
            node = root
            while True:
                right = node.rhs
                if not isinstance(right, _Bin) or PRECEDENCE[right.op] >= PRECEDENCE[op.kind]:
                    node.rhs = _Bin(op.kind, right, rhs)
                    break
                node = right

    def parse_unary(self) -> ast.Expr:
        if self.scan_ws().kind is Tok.LPAREN:
            expr = self.parse_expr()
            tok = self.scan_ws()
            if tok.kind is not Tok.RPAREN:
                raise _found(tok, [")"])
            return ast.ParenExpr(expr)
        self.unscan()
        tok = self.scan_ws()
        kind = tok.kind
        if kind is Tok.IDENT:
            if self.scan().kind is Tok.LPAREN:
                return self.parse_call(tok.lit)
            self.unscan()
            self.unscan()
            return self.parse_varref()
        if kind is Tok.DISTINCT:
            nxt = self.scan()
            if nxt.kind is Tok.LPAREN:
                return self.parse_call("distinct")
            if nxt.kind is Tok.WS:
                name = self.scan_ws()
                if name.kind is not Tok.IDENT:
                    raise _found(name, ["identifier"])
                return ast.Distinct(name.lit)
            raise _found(nxt, ["(", "identifier"])
        if kind is Tok.STRING:
            return ast.StringLiteral(tok.lit)
        if kind is Tok.NUMBER:
            value = float(tok.lit)
            if math.isinf(value):
                raise _at("unable to parse number", tok.pos)
            return ast.NumberLiteral(value)
        if kind is Tok.INTEGER:
            n = int(tok.lit)
            if n <= INT64_MAX:
                return ast.IntegerLiteral(n)
            if n <= UINT64_MAX:
                return ast.UnsignedLiteral(n)
            raise _at("unable to parse integer", tok.pos)
        if kind in (Tok.TRUE, Tok.FALSE):
            return ast.BooleanLiteral(kind is Tok.TRUE)
        if kind is Tok.DURATIONVAL:
            try:
                return ast.DurationLiteral(parse_duration(tok.lit))
            except DurationError as e:
                raise ParseError(str(e)) from None
        if kind is Tok.MUL:
            return self.parse_wildcard()
        if kind is Tok.REGEX:
            return self._regex(tok)
        if kind is Tok.BOUNDPARAM:
            return self.bind(tok.lit[1:])
        if kind in (Tok.ADD, Tok.SUB):
            return self.parse_signed(-1 if kind is Tok.SUB else 1)
        raise _found(tok, ["identifier", "string", "number", "bool"])

    def parse_wildcard(self) -> ast.Wildcard:
        if self.scan().kind is not Tok.DOUBLECOLON:
            self.unscan()
            return ast.Wildcard()
        tok = self.scan()
        if tok.kind is Tok.FIELD:
            return ast.Wildcard("field")
        if tok.kind is Tok.TAG:
            return ast.Wildcard("tag")
        raise _found(tok, ["field", "tag"])

    def parse_signed(self, sign: int) -> ast.Expr:
        tok = self.scan_ws()
        if tok.kind not in (Tok.NUMBER, Tok.INTEGER, Tok.DURATIONVAL, Tok.LPAREN, Tok.IDENT):
            raise _found(tok, ["identifier", "number", "duration", "("])
        self.unscan()
        expr = self.parse_unary()
        if isinstance(expr, ast.NumberLiteral):
            return ast.NumberLiteral(expr.value * sign)
        if isinstance(expr, ast.IntegerLiteral):
            return ast.IntegerLiteral(expr.value * sign)
        if isinstance(expr, ast.UnsignedLiteral):
            if sign > 0:
                return expr
            if expr.value == 2**63:
                return ast.IntegerLiteral(-expr.value)
            raise ParseError(f"constant -{expr.value} underflows int64")
        if isinstance(expr, ast.DurationLiteral):
            return ast.DurationLiteral(expr.ns * sign)
        return ast.BinaryExpr("*", ast.IntegerLiteral(sign), expr)

    def bind(self, name: str) -> ast.Expr:
        """A bound parameter's value from ``params`` as a literal."""
        if not name:
            raise ParseError("empty bound parameter")
        value = self.params.get(name)
        if value is None:
            raise ParseError(f"missing parameter: {name}")
        if isinstance(value, bool):
            return ast.BooleanLiteral(value)
        if isinstance(value, int):
            return ast.IntegerLiteral(value)
        if isinstance(value, float):
            return ast.NumberLiteral(value)
        if isinstance(value, str):
            return ast.StringLiteral(value)
        go_type = "[]interface {}" if isinstance(value, (list, tuple)) else \
            "map[string]interface {}" if isinstance(value, dict) else type(value).__name__
        raise ParseError(f"unable to bind parameter with type {go_type}")

    def parse_varref(self) -> ast.VarRef:
        segments = self.parse_segmented_idents()
        dtype = None
        if self.scan().kind is Tok.DOUBLECOLON:
            tok = self.scan()
            if tok.kind is Tok.IDENT:
                dtype = tok.lit.lower()
                if dtype not in _TYPES:
                    raise _found(tok, [*_TYPES, "field", "tag"])
            elif tok.kind is Tok.FIELD:
                dtype = "field"
            elif tok.kind is Tok.TAG:
                dtype = "tag"
            else:
                raise _found(tok, ["float", "integer", "string", "boolean", "field", "tag"])
        else:
            self.unscan()
        return ast.VarRef(".".join(segments), dtype)

    def parse_call(self, name: str) -> ast.Call:
        args: List[ast.Expr] = []
        re = self.parse_regex()
        if re is not None:
            args.append(re)
        else:
            if self.scan().kind is Tok.RPAREN:
                return ast.Call(name.lower())
            self.unscan()
            args.append(self.parse_expr())
        while self.accept(Tok.COMMA):
            re = self.parse_regex()
            args.append(re if re is not None else self.parse_expr())
        tok = self.scan()
        if tok.kind is not Tok.RPAREN:
            raise _found(tok, [")"])
        return ast.Call(name.lower(), tuple(args))

    # ------------------------------------------------------------------ SELECT

    def parse_select(self, target_rule: int = TARGET_NOT_REQUIRED) -> ast.SelectStatement:
        fields = self.parse_fields()
        target = self.parse_target(target_rule)
        tok = self.scan_ws()
        if tok.kind is not Tok.FROM:
            raise _found(tok, ["FROM"])
        sources = self.parse_sources(subqueries=True)
        condition = self.parse_condition()
        dimensions = self.parse_dimensions()
        fill, fill_value = self.parse_fill()
        sort_fields = self.parse_order_by()
        limit = self.parse_optional_int(Tok.LIMIT)
        offset = self.parse_optional_int(Tok.OFFSET)
        slimit = self.parse_optional_int(Tok.SLIMIT)
        soffset = self.parse_optional_int(Tok.SOFFSET)
        location = self.parse_location()
        return ast.SelectStatement(tuple(fields), tuple(sources), target, condition, tuple(dimensions), fill,
                                   fill_value, tuple(sort_fields), limit, offset, slimit, soffset, location)

    def parse_fields(self) -> List[ast.Field]:
        fields = [self.parse_field()]
        while True:
            if self.scan().kind is not Tok.COMMA:
                self.unscan()
                return fields
            fields.append(self.parse_field())

    def parse_field(self) -> ast.Field:
        expr: ast.Expr
        re = self.parse_regex()
        if re is not None:
            expr = re
        else:
            pos = self.scan_ws().pos
            self.unscan()
            expr = self.parse_expr()
            bad = _last_condition_op(expr)
            if bad is not None:
                raise ParseError(f"invalid operator {bad} in SELECT clause at line {pos.line + 1}, "
                                 f"char {pos.char + 1}; operator is intended for WHERE clause")
        alias = self.parse_alias()
        self.consume_whitespace()
        return ast.Field(expr, alias)

    def parse_alias(self) -> str:
        return self.parse_ident() if self.accept(Tok.AS) else ""

    def parse_target(self, rule: int) -> Optional[ast.Target]:
        tok = self.scan_ws()
        if tok.kind is not Tok.INTO:
            if rule == TARGET_REQUIRED:
                raise _found(tok, ["INTO"])
            self.unscan()
            return None
        idents = self.parse_segmented_idents()
        if len(idents) < 3 and self.t.peek_rune() == ":":
            self.expect(Tok.COLON, Tok.MEASUREMENT)
            idents.append("")
        if len(idents) == 1:
            m = ast.Measurement(name=idents[0])
        elif len(idents) == 2:
            m = ast.Measurement(retention_policy=idents[0], name=idents[1])
        else:
            m = ast.Measurement(idents[0], idents[1], idents[2])
        return ast.Target(m)

    def parse_sources(self, subqueries: bool) -> List[ast.Source]:
        sources = [self.parse_source(subqueries)]
        while self.accept(Tok.COMMA):
            sources.append(self.parse_source(subqueries))
        return sources

    def parse_source(self, subqueries: bool) -> ast.Source:
        re = self.parse_regex()
        if re is not None:
            return ast.Measurement(regex=re)
        if subqueries:
            if self.scan_ws().kind is Tok.LPAREN:
                self.expect(Tok.SELECT)
                statement = self.parse_select(TARGET_SUBQUERY)
                self.expect(Tok.RPAREN)
                return ast.SubQuery(statement)
            self.unscan()
        idents = self.parse_segmented_idents()
        if len(idents) == 3:
            return ast.Measurement(idents[0], idents[1], idents[2])
        re = self.parse_regex()
        if len(idents) == 1:
            if re is not None:
                return ast.Measurement(retention_policy=idents[0], regex=re)
            return ast.Measurement(name=idents[0])
        if re is not None:
            return ast.Measurement(idents[0], idents[1], regex=re)
        return ast.Measurement(retention_policy=idents[0], name=idents[1])

    def parse_condition(self) -> Optional[ast.Expr]:
        return self.parse_expr() if self.accept(Tok.WHERE) else None

    def parse_dimensions(self) -> List[ast.Dimension]:
        if not self.accept(Tok.GROUP):
            return []
        tok = self.scan_ws()
        if tok.kind is not Tok.BY:
            raise _found(tok, ["BY"])
        dimensions = [self.parse_dimension()]
        while True:
            if self.scan().kind is not Tok.COMMA:
                self.unscan()
                return dimensions
            dimensions.append(self.parse_dimension())

    def parse_dimension(self) -> ast.Dimension:
        re = self.parse_regex()
        if re is not None:
            return ast.Dimension(re)
        expr = self.parse_expr()
        self.consume_whitespace()
        return ast.Dimension(expr)

    def _next_is_call_named(self, name: str) -> bool:
        tok = self.scan_ws()
        self.unscan()
        return tok.kind is Tok.IDENT and tok.lit.lower() == name

    def parse_fill(self) -> Tuple[str, Union[int, float, None]]:
        if not self._next_is_call_named("fill"):
            return "null", None
        expr = self.parse_expr()
        if not isinstance(expr, ast.Call):
            raise ParseError("fill must be a function call")
        if len(expr.args) != 1:
            raise ParseError("fill requires an argument, e.g.: 0, null, none, previous, linear")
        arg = expr.args[0]
        if str(arg) in ("null", "none", "previous", "linear"):
            return str(arg), None
        if isinstance(arg, ast.IntegerLiteral):
            return "number", arg.value
        if isinstance(arg, ast.NumberLiteral):
            return "number", arg.value
        raise ParseError("expected number argument in fill()")

    def parse_location(self) -> Optional[str]:
        if not self._next_is_call_named("tz"):
            return None
        expr = self.parse_expr()
        if not isinstance(expr, ast.Call):
            raise ParseError("tz must be a function call")
        if len(expr.args) != 1:
            raise ParseError("tz requires exactly one argument")
        arg = expr.args[0]
        if not isinstance(arg, ast.StringLiteral):
            raise ParseError("expected string argument in tz()")
        if not _known_zone(arg.value):
            raise ParseError(f"unable to find time zone {arg.value}")
        return arg.value or "UTC"

    def parse_order_by(self) -> List[ast.SortField]:
        if not self.accept(Tok.ORDER):
            return []
        tok = self.scan_ws()
        if tok.kind is not Tok.BY:
            raise _found(tok, ["BY"])
        tok = self.scan_ws()
        if tok.kind in (Tok.ASC, Tok.DESC):
            fields = [ast.SortField("", tok.kind is Tok.ASC)]
        elif tok.kind is Tok.IDENT:
            self.unscan()
            field = self.parse_sort_field()
            if tok.lit != "time":
                raise ParseError("only ORDER BY time supported at this time")
            fields = [field]
        else:
            raise _found(tok, ["identifier", "ASC", "DESC"])
        while self.accept(Tok.COMMA):
            fields.append(self.parse_sort_field())
        if len(fields) > 1:
            raise ParseError("only ORDER BY time supported at this time")
        return fields

    def parse_sort_field(self) -> ast.SortField:
        name = self.parse_ident()
        tok = self.scan_ws()
        if tok.kind not in (Tok.ASC, Tok.DESC):
            self.unscan()
            return ast.SortField(name, True)
        return ast.SortField(name, tok.kind is Tok.ASC)

    # ------------------------------------------------------------------ SHOW statements sisock answers

    def parse_on(self) -> str:
        return self.parse_ident() if self.accept(Tok.ON) else ""

    def parse_from(self) -> Tuple[ast.Source, ...]:
        return tuple(self.parse_sources(subqueries=False)) if self.accept(Tok.FROM) else ()

    def show_databases(self) -> ast.Statement:
        return ast.ShowDatabasesStatement()

    def show_retention_policies(self) -> ast.Statement:
        return ast.ShowRetentionPoliciesStatement(self.parse_on())

    def show_measurements(self) -> ast.Statement:
        database = self.parse_on()
        source = None
        if self.accept(Tok.WITH):
            self.expect(Tok.MEASUREMENT)
            tok = self.scan_ws()
            if tok.kind not in (Tok.EQ, Tok.EQREGEX):
                raise _found(tok, ["=", "=~"])
            parsed = self.parse_source(subqueries=False)
            assert isinstance(parsed, ast.Measurement)
            source = parsed
        condition = self.parse_condition()
        sort_fields = tuple(self.parse_order_by())
        limit = self.parse_optional_int(Tok.LIMIT)
        offset = self.parse_optional_int(Tok.OFFSET)
        return ast.ShowMeasurementsStatement(database, source, condition, sort_fields, limit, offset)

    def show_field_keys(self) -> ast.Statement:
        database = self.parse_on()
        sources = self.parse_from()
        sort_fields = tuple(self.parse_order_by())
        limit = self.parse_optional_int(Tok.LIMIT)
        offset = self.parse_optional_int(Tok.OFFSET)
        return ast.ShowFieldKeysStatement(database, sources, sort_fields, limit, offset)

    def show_tag_keys(self) -> ast.Statement:
        database = self.parse_on()
        sources = self.parse_from()
        condition = self.parse_condition()
        sort_fields = tuple(self.parse_order_by())
        limits = [self.parse_optional_int(k) for k in (Tok.LIMIT, Tok.OFFSET, Tok.SLIMIT, Tok.SOFFSET)]
        return ast.ShowTagKeysStatement(database, sources, condition, sort_fields, *limits)

    def show_tag_values(self) -> ast.Statement:
        tok = self.scan_ws()
        if tok.kind is Tok.EXACT:
            return self.cardinality("SHOW TAG VALUES", True, expect_word=True, with_key=True)
        if tok.kind is Tok.CARDINALITY:
            return self.cardinality("SHOW TAG VALUES", False, with_key=True)
        self.unscan()
        database = self.parse_on()
        sources = self.parse_from()
        op, key = self.parse_tag_key_expr()
        condition = self.parse_condition()
        sort_fields = tuple(self.parse_order_by())
        limit = self.parse_optional_int(Tok.LIMIT)
        offset = self.parse_optional_int(Tok.OFFSET)
        return ast.ShowTagValuesStatement(op, key, database, sources, condition, sort_fields, limit, offset)

    def parse_tag_key_expr(self) -> Tuple[str, Union[ast.StringLiteral, ast.RegexLiteral, ast.ListLiteral]]:
        self.expect(Tok.WITH, Tok.KEY)
        tok = self.scan_ws()
        if tok.kind is Tok.IN:
            nxt = self.scan_ws()
            if nxt.kind is not Tok.LPAREN:
                raise _found(nxt, ["("])
            keys = self.parse_ident_list()
            nxt = self.scan_ws()
            if nxt.kind is not Tok.RPAREN:
                raise _found(nxt, [")"])
            return "IN", ast.ListLiteral(tuple(keys))
        if tok.kind in (Tok.EQ, Tok.NEQ):
            return tok.kind.value, ast.StringLiteral(self.parse_ident())
        if tok.kind in (Tok.EQREGEX, Tok.NEQREGEX):
            return tok.kind.value, self.parse_required_regex()
        raise _found(tok, ["IN", "=", "=~"])

    def show_series(self) -> ast.Statement:
        exact = self.accept(Tok.EXACT)
        if self.scan_ws().kind is Tok.CARDINALITY:
            return self.cardinality("SHOW SERIES", exact, read_database=True)
        self.unscan()
        database = self.parse_on()
        sources = self.parse_from()
        condition = self.parse_condition()
        sort_fields = tuple(self.parse_order_by())
        limit = self.parse_optional_int(Tok.LIMIT)
        offset = self.parse_optional_int(Tok.OFFSET)
        return ast.ShowSeriesStatement(database, sources, condition, sort_fields, limit, offset)

    # ------------------------------------------------------------------ statements sisock does not run

    def cardinality(self, prefix: str, exact: bool, expect_word: bool = False, with_key: bool = False,
                    read_database: bool = False) -> ast.Statement:
        """SHOW {SERIES|MEASUREMENT|TAG KEY|TAG VALUES|FIELD KEY} [EXACT] CARDINALITY, after its first words.

        ``expect_word``: CARDINALITY is still to come; ``with_key``: TAG VALUES' WITH KEY clause;
        ``read_database``: the estimate needs READ on the database (the exact count, on its sources).
        """
        if expect_word:
            self.expect(Tok.CARDINALITY)
        database = self.parse_on()
        sources = self.parse_from()
        text = f"{prefix}{' EXACT' if exact else ''} CARDINALITY" + (f" ON {quote_ident(database)}" if database else "")
        text += " FROM " + ", ".join(str(s) for s in sources) if sources else ""
        if with_key:
            op, key = self.parse_tag_key_expr()
            text += f" WITH KEY {op} " + (quote_ident(key.value) if isinstance(key, ast.StringLiteral) else str(key))
        condition = self.parse_condition()
        dimensions = self.parse_dimensions()
        limit = self.parse_optional_int(Tok.LIMIT)
        offset = self.parse_optional_int(Tok.OFFSET)
        text += f" WHERE {condition}" if condition is not None else ""
        text += " GROUP BY " + ", ".join(str(d) for d in dimensions) if dimensions else ""
        text += (f" LIMIT {limit}" if limit > 0 else "") + (f" OFFSET {offset}" if offset > 0 else "")
        if read_database and not exact:
            privileges: Tuple[ast.Privilege, ...] = (ast.Privilege(False, database, ast.READ),)
        else:
            privileges = ast.sources_privileges(sources)
        return ast.OtherStatement(f"{prefix} CARDINALITY", text, privileges, False)

    def keyed_cardinality(self, prefix: str) -> ast.Statement:
        """SHOW TAG KEY / FIELD KEY: [EXACT] CARDINALITY, naming both words when neither is there."""
        exact = self.accept(Tok.EXACT)
        tok = self.scan_ws()
        if tok.kind is not Tok.CARDINALITY:
            raise _found(tok, ["CARDINALITY"] if exact else ["EXACT", "CARDINALITY"])
        return self.cardinality(prefix, exact)

    def delete(self) -> ast.Statement:
        return self._delete_or_drop_series("DELETE")

    def drop_series(self) -> ast.Statement:
        return self._delete_or_drop_series("DROP SERIES")

    def _delete_or_drop_series(self, kind: str) -> ast.Statement:
        tok = self.scan_ws()
        sources: Tuple[ast.Source, ...] = ()
        if tok.kind is Tok.FROM:
            sources = tuple(self.parse_sources(subqueries=False))
            message = ""
            for s in sources:
                if isinstance(s, ast.Measurement):
                    if s.database:
                        message = "database not supported"
                    if s.retention_policy:
                        message = "retention policy not supported"
            if message:
                raise _at(message, Pos(0, 0))
        else:
            self.unscan()
        condition = self.parse_condition()
        if condition is None and not sources:
            raise _found(tok, ["FROM", "WHERE"])
        text = kind + (" FROM " + ", ".join(str(s) for s in sources) if sources else "")
        text += f" WHERE {condition}" if condition is not None else ""
        return _write(kind, text, ast.Privilege(False, "", ast.WRITE))

    def explain(self) -> ast.Statement:
        analyze = self.accept(Tok.ANALYZE)
        tok = self.scan_ws()
        if tok.kind is not Tok.SELECT:
            raise _found(tok, ["SELECT"])
        select = self.parse_select()
        kind = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
        return ast.OtherStatement(kind, f"{kind} {select}", select.required_privileges(), False)

    def create_database(self) -> ast.Statement:
        name = self.parse_ident()
        text = "CREATE DATABASE " + quote_ident(name)
        if self.accept(Tok.WITH):
            tok = self.scan_ws()
            if tok.kind not in (Tok.DURATION, Tok.NAME, Tok.REPLICATION, Tok.SHARD):
                raise _found(tok, ["DURATION", "NAME", "REPLICATION", "SHARD"])
            self.unscan()
            text += " WITH"
            if self.accept(Tok.DURATION):
                text += " DURATION " + format_go_duration(self.parse_duration_value())
            if self.accept(Tok.REPLICATION):
                text += f" REPLICATION {self.parse_int(1, 2**31 - 1)}"
            if self.accept(Tok.SHARD):
                tok = self.scan_ws()
                if tok.kind is not Tok.DURATION:
                    raise _found(tok, ["DURATION"])
                shard = self.parse_duration_value()
                if shard > 0:
                    text += " SHARD DURATION " + format_go_duration(shard)
            if self.accept(Tok.NAME):
                text += " NAME " + quote_ident(self.parse_ident())
        return _admin("CREATE DATABASE", text)

    def create_retention_policy(self) -> ast.Statement:
        name = self.parse_ident()
        self.expect(Tok.ON)
        database = self.parse_ident()
        self.expect(Tok.DURATION)
        duration = self.parse_duration_value()
        self.expect(Tok.REPLICATION)
        replication = self.parse_int(1, 2**31 - 1)
        text = (f"CREATE RETENTION POLICY {quote_ident(name)} ON {quote_ident(database)} "
                f"DURATION {format_duration(duration)} REPLICATION {replication}")
        if self.accept(Tok.SHARD):
            tok = self.scan_ws()
            if tok.kind is not Tok.DURATION:
                raise _found(tok, ["DURATION"])
            self._refuse_inf_shard()
            shard = self.parse_duration_value()
            if shard > 0:
                text += f" SHARD DURATION {format_duration(shard)}"
        if self.accept(Tok.DEFAULT):
            text += " DEFAULT"
        return _admin("CREATE RETENTION POLICY", text)

    def _refuse_inf_shard(self) -> None:
        tok = self.scan_ws()
        if tok.kind is Tok.INF:
            raise _at("invalid duration INF for shard duration", tok.pos)
        self.unscan()

    def alter_retention_policy(self) -> ast.Statement:
        tok = self.scan_ws()
        if tok.kind is Tok.DEFAULT:
            name = "default"
        elif tok.kind is Tok.IDENT:
            name = tok.lit
        else:
            raise _found(tok, ["identifier"])
        self.expect(Tok.ON)
        database = self.parse_ident()
        found: List[Tok] = []
        parts: Dict[str, str] = {}
        while True:
            tok = self.scan_ws()
            if tok.kind in found:
                raise _at(f"found duplicate {tok.kind.value} option", tok.pos)
            if tok.kind is Tok.DURATION:
                parts["DURATION"] = format_duration(self.parse_duration_value())
            elif tok.kind is Tok.REPLICATION:
                parts["REPLICATION"] = str(self.parse_int(1, 2**31 - 1))
            elif tok.kind is Tok.SHARD:
                nxt = self.scan_ws()
                if nxt.kind is not Tok.DURATION:
                    raise _found(nxt, ["DURATION"])
                self._refuse_inf_shard()
                parts["SHARD DURATION"] = format_duration(self.parse_duration_value())
            elif tok.kind is Tok.DEFAULT:
                parts["DEFAULT"] = ""
            else:
                if not found:
                    raise _found(tok, ["DURATION", "REPLICATION", "SHARD", "DEFAULT"])
                self.unscan()
                break
            found.append(tok.kind)
        text = f"ALTER RETENTION POLICY {quote_ident(name)} ON {quote_ident(database)}"
        for word in ("DURATION", "REPLICATION", "SHARD DURATION", "DEFAULT"):
            if word in parts:
                text += f" {word}" + (f" {parts[word]}" if parts[word] else "")
        return _admin("ALTER RETENTION POLICY", text)

    def create_user(self) -> ast.Statement:
        name = self.parse_ident()
        self.expect(Tok.WITH, Tok.PASSWORD)
        self.parse_string()
        text = f"CREATE USER {quote_ident(name)} WITH PASSWORD [REDACTED]"
        if self.accept(Tok.WITH):
            self.expect(Tok.ALL, Tok.PRIVILEGES)
            text += " WITH ALL PRIVILEGES"
        return _admin("CREATE USER", text)

    def set_password(self) -> ast.Statement:
        name = self.parse_ident()
        tok = self.scan_ws()
        if tok.kind is not Tok.EQ:
            raise _found(tok, ["="])
        self.parse_string()
        return _admin("SET PASSWORD", f"SET PASSWORD FOR {quote_ident(name)} = [REDACTED]")

    def parse_privilege(self) -> str:
        tok = self.scan_ws()
        if tok.kind is Tok.READ:
            return ast.READ
        if tok.kind is Tok.WRITE:
            return ast.WRITE
        if tok.kind is Tok.ALL:
            if self.scan_ws().kind is not Tok.PRIVILEGES:
                self.unscan()
            return ast.ALL_PRIVILEGES
        raise _found(tok, ["READ", "WRITE", "ALL [PRIVILEGES]"])

    def grant(self) -> ast.Statement:
        return self._grant_or_revoke("GRANT", Tok.TO, "TO")

    def revoke(self) -> ast.Statement:
        return self._grant_or_revoke("REVOKE", Tok.FROM, "FROM")

    def _grant_or_revoke(self, kind: str, to: Tok, to_word: str) -> ast.Statement:
        privilege = self.parse_privilege()
        tok = self.scan_ws()
        if tok.kind is Tok.ON:
            database = self.parse_ident()
            nxt = self.scan_ws()
            if nxt.kind is not to:
                raise _found(nxt, [to_word])
            user = self.parse_ident()
            return _admin(kind, f"{kind} {privilege} ON {quote_ident(database)} {to_word} {quote_ident(user)}")
        if tok.kind is to:
            if privilege != ast.ALL_PRIVILEGES:
                raise _found(tok, ["ON"])
            user = self.parse_ident()
            return _admin(kind, f"{kind} ALL PRIVILEGES {to_word} {quote_ident(user)}")
        raise _found(tok, ["ON", to_word] if privilege == ast.ALL_PRIVILEGES else ["ON"])

    def kill_query(self) -> ast.Statement:
        qid = self.parse_uint64()
        text = f"KILL QUERY {qid}"
        if self.scan_ws().kind is Tok.ON:
            text += " ON " + quote_ident(self.parse_ident())
        else:
            self.unscan()
        return _admin("KILL QUERY", text)

    def _named_on_db(self, kind: str, write_on_db: bool, on_rp: bool = False) -> ast.Statement:
        """``kind name ON db`` (``db.rp`` with ``on_rp``); needs WRITE on db, else admin."""
        name = self.parse_ident()
        self.expect(Tok.ON)
        database = self.parse_ident()
        where = quote_ident(database)
        if on_rp:
            tok = self.scan()
            if tok.kind is not Tok.DOT:
                raise _found(tok, ["."])
            where += "." + quote_ident(self.parse_ident())
        privilege = ast.Privilege(False, database, ast.WRITE) if write_on_db else ast.ADMIN
        return _write(kind, f"{kind} {quote_ident(name)} ON {where}", privilege)

    def drop_retention_policy(self) -> ast.Statement:
        return self._named_on_db("DROP RETENTION POLICY", write_on_db=True)

    def drop_continuous_query(self) -> ast.Statement:
        return self._named_on_db("DROP CONTINUOUS QUERY", write_on_db=True)

    def drop_subscription(self) -> ast.Statement:
        return self._named_on_db("DROP SUBSCRIPTION", write_on_db=False, on_rp=True)

    def create_subscription(self) -> ast.Statement:
        name = self.parse_ident()
        self.expect(Tok.ON)
        database = self.parse_ident()
        tok = self.scan()
        if tok.kind is not Tok.DOT:
            raise _found(tok, ["."])
        rp = self.parse_ident()
        self.expect(Tok.DESTINATIONS)
        tok = self.scan_ws()
        if tok.kind not in (Tok.ALL, Tok.ANY):
            raise _found(tok, ["ALL", "ANY"])
        destinations = self.parse_string_list()
        text = (f"CREATE SUBSCRIPTION {quote_ident(name)} ON {quote_ident(database)}.{quote_ident(rp)} "
                f"DESTINATIONS {tok.kind.value} " + ", ".join(quote_string(d) for d in destinations))
        return _admin("CREATE SUBSCRIPTION", text)

    def create_continuous_query(self) -> ast.Statement:
        name = self.parse_ident()
        self.expect(Tok.ON)
        database = self.parse_ident()
        every = for_ = 0
        if self.accept(Tok.RESAMPLE):
            every, for_ = self.parse_resample()
        self.expect(Tok.BEGIN, Tok.SELECT)
        select = self.parse_select(TARGET_REQUIRED)
        interval: Optional[int] = 0
        problem = ""
        if not select.is_raw_query():
            interval, problem = _group_by_interval(select)
            if not interval or problem:
                self.unscan()
                self.unscan()
                tok = self.scan_ws()
                raise _found(tok, ["GROUP BY time(...)"] + ([problem] if problem else []))
        self.expect(Tok.END)
        interval, problem = _group_by_interval(select)
        if problem:
            raise ParseError(problem)
        if for_:
            if every and every > (interval or 0):
                interval = every
            if (interval or 0) > for_:
                raise ParseError(f"FOR duration must be >= GROUP BY time duration: must be a minimum of "
                                 f"{format_duration(interval or 0)}, got {format_duration(for_)}")
        text = f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(database)} "
        if every > 0 or for_ > 0:
            text += "RESAMPLE " + (f"EVERY {format_duration(every)} " if every > 0 else "")
            text += f"FOR {format_duration(for_)} " if for_ > 0 else ""
        text += f"BEGIN {select} END"
        privileges: Tuple[ast.Privilege, ...] = (ast.Privilege(False, database, ast.READ),)
        assert select.target is not None
        if select.target.measurement.database:
            privileges += (ast.Privilege(False, select.target.measurement.database, ast.WRITE),)
        return ast.OtherStatement("CREATE CONTINUOUS QUERY", text, privileges, True)

    def parse_resample(self) -> Tuple[int, int]:
        every = self._resample_part(Tok.EVERY)
        for_ = self._resample_part(Tok.FOR)
        if every == 0 and for_ == 0:
            raise _found(self.scan_ws(), ["EVERY", "FOR"])
        return every, for_

    def _resample_part(self, kind: Tok) -> int:
        if not self.accept(kind):
            return 0
        tok = self.scan_ws()
        if tok.kind is not Tok.DURATIONVAL:
            raise _found(tok, ["duration"])
        try:
            return parse_duration(tok.lit)
        except DurationError as e:
            raise _at(str(e), tok.pos) from None

    def _ident_statement(self, kind: str, privilege: ast.Privilege = ast.ADMIN) -> ast.Statement:
        return _write(kind, f"{kind} {quote_ident(self.parse_ident())}", privilege)

    def drop_database(self) -> ast.Statement:
        return self._ident_statement("DROP DATABASE")

    def drop_measurement(self) -> ast.Statement:
        return self._ident_statement("DROP MEASUREMENT")

    def drop_user(self) -> ast.Statement:
        return self._ident_statement("DROP USER")

    def drop_shard(self) -> ast.Statement:
        return _admin("DROP SHARD", f"DROP SHARD {self.parse_uint64()}")

    def show_grants(self) -> ast.Statement:
        return _read_only("SHOW GRANTS", f"SHOW GRANTS FOR {quote_ident(self.parse_ident())}", ast.ADMIN)

    def _show_for_module(self, kind: str) -> ast.Statement:
        text = kind
        if self.accept(Tok.FOR):
            module = self.parse_string()
            text += f" FOR {quote_string(module)}" if module else ""
        return _read_only(kind, text, ast.ADMIN)


def _write(kind: str, text: str, privilege: ast.Privilege) -> ast.Statement:
    return ast.OtherStatement(kind, text, (privilege,), True)


def _admin(kind: str, text: str) -> ast.Statement:
    return _write(kind, text, ast.ADMIN)


def _read_only(kind: str, text: str, privilege: ast.Privilege) -> ast.Statement:
    return ast.OtherStatement(kind, text, (privilege,), False)


def _fixed(kind: str, privilege: ast.Privilege) -> Callable[[_Parser], ast.Statement]:
    """A handler for a statement with nothing after its keywords."""
    return lambda p: _read_only(kind, kind, privilege)


def _group_by_interval(select: ast.SelectStatement) -> Tuple[Optional[int], str]:
    """(interval ns or 0, InfluxDB's complaint about the time() dimension or "")."""
    for d in select.dimensions:
        if isinstance(d.expr, ast.Call) and d.expr.name == "time":
            if not 1 <= len(d.expr.args) <= 2:
                return None, "time dimension expected 1 or 2 arguments"
            arg = d.expr.args[0]
            if not isinstance(arg, ast.DurationLiteral):
                return None, "time dimension must have duration argument"
            return arg.ns, ""
    return 0, ""


def _last_condition_op(expr: ast.Expr) -> Optional[str]:
    """The comparison or logical operator InfluxDB complains about in a SELECT field (the last one outside
    another such operator), or None."""
    found: Optional[str] = None
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinaryExpr):
            if node.op in _INVALID_FIELD_OPS:
                found = node.op
                continue
            stack.extend((node.rhs, node.lhs))
        elif isinstance(node, ast.ParenExpr):
            stack.append(node.expr)
        elif isinstance(node, ast.Call):
            stack.extend(reversed(node.args))
    return found


def _known_zone(name: str) -> bool:
    """Whether Go's time.LoadLocation finds ``name`` ("" and "UTC" are UTC, "Local" the host's zone)."""
    if name in ("", "UTC", "Local"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


_READ_ANY = ast.Privilege(False, "", ast.READ)

# The statement keywords in InfluxDB's order (its "expected ..." lists name them in this order).
_LANGUAGE: Dict[Tok, Any] = {
    Tok.SELECT: lambda p: p.parse_select(),
    Tok.DELETE: _Parser.delete,
    Tok.SHOW: {
        Tok.CONTINUOUS: {Tok.QUERIES: _fixed("SHOW CONTINUOUS QUERIES", _READ_ANY)},
        Tok.DATABASES: _Parser.show_databases,
        Tok.DIAGNOSTICS: lambda p: p._show_for_module("SHOW DIAGNOSTICS"),
        Tok.FIELD: {Tok.KEY: lambda p: p.keyed_cardinality("SHOW FIELD KEY"), Tok.KEYS: _Parser.show_field_keys},
        Tok.GRANTS: {Tok.FOR: _Parser.show_grants},
        Tok.MEASUREMENT: {
            Tok.EXACT: lambda p: p.cardinality("SHOW MEASUREMENT", True, expect_word=True, read_database=True),
            Tok.CARDINALITY: lambda p: p.cardinality("SHOW MEASUREMENT", False, read_database=True)},
        Tok.MEASUREMENTS: _Parser.show_measurements,
        Tok.QUERIES: _fixed("SHOW QUERIES", _READ_ANY),
        Tok.RETENTION: {Tok.POLICIES: _Parser.show_retention_policies},
        Tok.SERIES: _Parser.show_series,
        Tok.SHARD: {Tok.GROUPS: _fixed("SHOW SHARD GROUPS", ast.ADMIN)},
        Tok.SHARDS: _fixed("SHOW SHARDS", ast.ADMIN),
        Tok.STATS: lambda p: p._show_for_module("SHOW STATS"),
        Tok.SUBSCRIPTIONS: _fixed("SHOW SUBSCRIPTIONS", ast.ADMIN),
        Tok.TAG: {Tok.KEY: lambda p: p.keyed_cardinality("SHOW TAG KEY"), Tok.KEYS: _Parser.show_tag_keys,
                  Tok.VALUES: _Parser.show_tag_values},
        Tok.USERS: _fixed("SHOW USERS", ast.ADMIN),
    },
    Tok.CREATE: {
        Tok.CONTINUOUS: {Tok.QUERY: _Parser.create_continuous_query},
        Tok.DATABASE: _Parser.create_database,
        Tok.USER: _Parser.create_user,
        Tok.RETENTION: {Tok.POLICY: _Parser.create_retention_policy},
        Tok.SUBSCRIPTION: _Parser.create_subscription,
    },
    Tok.DROP: {
        Tok.CONTINUOUS: {Tok.QUERY: _Parser.drop_continuous_query},
        Tok.DATABASE: _Parser.drop_database,
        Tok.MEASUREMENT: _Parser.drop_measurement,
        Tok.RETENTION: {Tok.POLICY: _Parser.drop_retention_policy},
        Tok.SERIES: _Parser.drop_series,
        Tok.SHARD: _Parser.drop_shard,
        Tok.SUBSCRIPTION: _Parser.drop_subscription,
        Tok.USER: _Parser.drop_user,
    },
    Tok.EXPLAIN: _Parser.explain,
    Tok.GRANT: _Parser.grant,
    Tok.REVOKE: _Parser.revoke,
    Tok.ALTER: {Tok.RETENTION: {Tok.POLICY: _Parser.alter_retention_policy}},
    Tok.SET: {Tok.PASSWORD: {Tok.FOR: _Parser.set_password}},
    Tok.KILL: {Tok.QUERY: _Parser.kill_query},
}
