"""InfluxQL's scanner: tokens with InfluxDB 1.x's exact boundaries and positions, for the parser's error texts.

InfluxDB reads a query rune by rune with a small unread buffer, and its error positions (and a few token
boundaries) follow from that: the end of the text is "read" once at its own position and one character later
on every later read, a regex is scanned only when the parser asks for one, and so on. This module keeps those
behaviours (they decide the ``line N, char M`` of every error) in a scanner of its own design.
"""
from __future__ import annotations

import bisect
import enum
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

EOF_CHAR = ""
#: Runs the scanner takes in one step: the characters is_whitespace, is_ident_char and is_digit accept.
_WHITESPACE, _IDENT_CHARS, _DIGITS = re.compile(r"[ \t\n]*"), re.compile(r"[A-Za-z0-9_]*"), re.compile(r"[0-9]*")
_NEWLINE = re.compile("\n")


class Tok(enum.Enum):
    """A token kind; its value is how InfluxDB names it in "found X" when the token carries no text."""

    ILLEGAL = "ILLEGAL"
    EOF = "EOF"
    WS = "WS"
    COMMENT = "COMMENT"
    IDENT = "IDENT"
    BOUNDPARAM = "BOUNDPARAM"
    NUMBER = "NUMBER"
    INTEGER = "INTEGER"
    DURATIONVAL = "DURATIONVAL"
    STRING = "STRING"
    BADSTRING = "BADSTRING"
    BADESCAPE = "BADESCAPE"
    TRUE = "TRUE"
    FALSE = "FALSE"
    REGEX = "REGEX"
    BADREGEX = "BADREGEX"
    # operators
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    BITWISE_AND = "&"
    BITWISE_OR = "|"
    BITWISE_XOR = "^"
    AND = "AND"
    OR = "OR"
    EQ = "="
    NEQ = "!="
    EQREGEX = "=~"
    NEQREGEX = "!~"
    LT = "<"
    LTE = "<="
    GT = ">"
    GTE = ">="
    # punctuation
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    COLON = ":"
    DOUBLECOLON = "::"
    SEMICOLON = ";"
    DOT = "."
    # keywords
    ALL = "ALL"
    ALTER = "ALTER"
    ANALYZE = "ANALYZE"
    ANY = "ANY"
    AS = "AS"
    ASC = "ASC"
    BEGIN = "BEGIN"
    BY = "BY"
    CARDINALITY = "CARDINALITY"
    CREATE = "CREATE"
    CONTINUOUS = "CONTINUOUS"
    DATABASE = "DATABASE"
    DATABASES = "DATABASES"
    DEFAULT = "DEFAULT"
    DELETE = "DELETE"
    DESC = "DESC"
    DESTINATIONS = "DESTINATIONS"
    DIAGNOSTICS = "DIAGNOSTICS"
    DISTINCT = "DISTINCT"
    DROP = "DROP"
    DURATION = "DURATION"
    END = "END"
    EVERY = "EVERY"
    EXACT = "EXACT"
    EXPLAIN = "EXPLAIN"
    FIELD = "FIELD"
    FOR = "FOR"
    FROM = "FROM"
    GRANT = "GRANT"
    GRANTS = "GRANTS"
    GROUP = "GROUP"
    GROUPS = "GROUPS"
    IN = "IN"
    INF = "INF"
    INSERT = "INSERT"
    INTO = "INTO"
    KEY = "KEY"
    KEYS = "KEYS"
    KILL = "KILL"
    LIMIT = "LIMIT"
    MEASUREMENT = "MEASUREMENT"
    MEASUREMENTS = "MEASUREMENTS"
    NAME = "NAME"
    OFFSET = "OFFSET"
    ON = "ON"
    ORDER = "ORDER"
    PASSWORD = "PASSWORD"
    POLICY = "POLICY"
    POLICIES = "POLICIES"
    PRIVILEGES = "PRIVILEGES"
    QUERIES = "QUERIES"
    QUERY = "QUERY"
    READ = "READ"
    REPLICATION = "REPLICATION"
    RESAMPLE = "RESAMPLE"
    RETENTION = "RETENTION"
    REVOKE = "REVOKE"
    SELECT = "SELECT"
    SERIES = "SERIES"
    SET = "SET"
    SHOW = "SHOW"
    SHARD = "SHARD"
    SHARDS = "SHARDS"
    SLIMIT = "SLIMIT"
    SOFFSET = "SOFFSET"
    STATS = "STATS"
    SUBSCRIPTION = "SUBSCRIPTION"
    SUBSCRIPTIONS = "SUBSCRIPTIONS"
    TAG = "TAG"
    TO = "TO"
    USER = "USER"
    USERS = "USERS"
    VALUES = "VALUES"
    WHERE = "WHERE"
    WITH = "WITH"
    WRITE = "WRITE"


_OPERATORS = (Tok.ADD, Tok.SUB, Tok.MUL, Tok.DIV, Tok.MOD, Tok.BITWISE_AND, Tok.BITWISE_OR, Tok.BITWISE_XOR,
              Tok.AND, Tok.OR, Tok.EQ, Tok.NEQ, Tok.EQREGEX, Tok.NEQREGEX, Tok.LT, Tok.LTE, Tok.GT, Tok.GTE)
OPERATORS = frozenset(_OPERATORS)

PRECEDENCE: Dict[Tok, int] = {
    Tok.OR: 1, Tok.AND: 2,
    Tok.EQ: 3, Tok.NEQ: 3, Tok.EQREGEX: 3, Tok.NEQREGEX: 3, Tok.LT: 3, Tok.LTE: 3, Tok.GT: 3, Tok.GTE: 3,
    Tok.ADD: 4, Tok.SUB: 4, Tok.BITWISE_OR: 4, Tok.BITWISE_XOR: 4,
    Tok.MUL: 5, Tok.DIV: 5, Tok.MOD: 5, Tok.BITWISE_AND: 5,
}

_KEYWORD_KINDS = list(Tok)[list(Tok).index(Tok.ALL):]
# Every word the scanner turns into a keyword token (lower case), AND, OR, TRUE and FALSE included.
KEYWORDS: Dict[str, Tok] = {t.value.lower(): t for t in _KEYWORD_KINDS}
KEYWORDS.update({"and": Tok.AND, "or": Tok.OR, "true": Tok.TRUE, "false": Tok.FALSE})


def lookup(word: str) -> Tok:
    """The keyword token ``word`` spells (any case), or IDENT."""
    return KEYWORDS.get(word.lower(), Tok.IDENT)


@dataclass(frozen=True)
class Pos:
    """Zero-based line and character of a token (InfluxDB prints both plus one)."""

    line: int
    char: int


@dataclass(frozen=True)
class Token:
    """One scanned token: its kind, where it starts, and its text (empty for keywords and operators)."""

    kind: Tok
    pos: Pos
    lit: str = ""

    def found(self) -> str:
        """How InfluxDB names this token after "found": its text, or its kind's name when it has none."""
        return self.lit if self.lit else self.kind.value


def is_letter(ch: str) -> bool:
    """ASCII letters only, as InfluxQL's identifiers."""
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def is_digit(ch: str) -> bool:
    """ASCII digits."""
    return "0" <= ch <= "9"


def is_ident_char(ch: str) -> bool:
    """A character of an unquoted identifier after its first."""
    return is_letter(ch) or is_digit(ch) or ch == "_"


def is_whitespace(ch: str) -> bool:
    """InfluxQL's whitespace: space, tab and newline (carriage returns arrive as newlines)."""
    return ch in (" ", "\t", "\n")


class Reader:
    """Characters of the query with their places (index in the text; :meth:`pos` gives line and character);
    unread steps back, and the end reads as EOF_CHAR.

    The end of the text has its own position the first time it is read and one character further on every
    later fresh read, as InfluxDB's reader counts it.
    """

    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self._i = 0
        self._starts = [0] + [m.end() for m in _NEWLINE.finditer(self.text)]  # where each line starts

    def pos(self, i: int) -> Pos:
        """The position of the character read at index ``i`` (past the end: the end's, as InfluxDB counts)."""
        n = len(self.text)
        if i < 0:
            return Pos(0, 0)
        line = bisect.bisect_right(self._starts, min(i, n)) - 1
        return Pos(line, min(i, n + 1) - self._starts[line])

    def _at(self, i: int) -> Tuple[str, int]:
        return (self.text[i] if 0 <= i < len(self.text) else EOF_CHAR), i

    def take(self, run: re.Pattern, end_read: bool) -> str:
        """The characters from the next one that ``run`` matches, read, and the one after them left
        unread; the end of the text is left read when ``end_read`` (as read() one by one would do)."""
        n = len(self.text)
        if not 0 <= self._i < n:
            self._i += end_read
            return ""
        start = self._i
        stop = run.match(self.text, start).end()  # type: ignore[union-attr]  # the runs match empty text
        self._i = stop + 1 if stop == n and end_read else stop
        return self.text[start:stop]

    def read(self) -> Tuple[str, int]:
        """The next character and its index."""
        out = self._at(self._i)
        self._i += 1
        return out

    def unread(self) -> None:
        """Push the last character read back."""
        self._i -= 1

    def current(self) -> Tuple[str, int]:
        """The character before the next one to read (after an unread: the one before the pushed-back one)."""
        return self._at(self._i - 1)

    def peek(self) -> str:
        """The next character without consuming it; the end is consumed like InfluxDB's peek does."""
        ch, _ = self.read()
        if ch != EOF_CHAR:
            self.unread()
        return ch


class Scanner:
    """Turns the reader's characters into tokens; ``scan_regex`` is called by the parser where a regex may be."""

    def __init__(self, text: str) -> None:
        self.r = Reader(text)

    def scan(self) -> Token:
        """The next token."""
        ch, at = self.r.read()
        pos = self.r.pos(at)
        if is_whitespace(ch):
            return self._whitespace(pos)
        if is_letter(ch) or ch == "_" or ch == '"':
            self.r.unread()
            return self._ident(lookup_keywords=True)
        if is_digit(ch):
            return self._number()
        if ch == EOF_CHAR:
            return Token(Tok.EOF, pos)
        if ch == "'":
            return self._string()
        if ch == ".":
            nxt, _ = self.r.read()
            self.r.unread()
            return self._number() if is_digit(nxt) else Token(Tok.DOT, pos)
        if ch == "$":
            tok = self._ident(lookup_keywords=False)
            kind = Tok.BOUNDPARAM if tok.kind is Tok.IDENT else tok.kind
            return Token(kind, pos, "$" + tok.lit)
        if ch == "-":
            if self.r.read()[0] == "-":
                self._skip_line()
                return Token(Tok.COMMENT, pos)
            self.r.unread()
            return Token(Tok.SUB, pos)
        if ch == "/":
            if self.r.read()[0] == "*":
                return Token(Tok.COMMENT, pos) if self._skip_block_comment() else Token(Tok.ILLEGAL, pos)
            self.r.unread()
            return Token(Tok.DIV, pos)
        two = self._two_char(ch)
        if two is not None:
            return Token(two, pos)
        single = _SINGLE.get(ch)
        if single is not None:
            return Token(single, pos)
        return Token(Tok.ILLEGAL, pos, ch)

    def _two_char(self, ch: str) -> Optional[Tok]:
        """Operators of one or two characters that start with ``ch``; None when ``ch`` starts none."""
        pairs = _PAIRS.get(ch)
        if pairs is None:
            return None
        second, _ = self.r.read()
        if second in pairs[0]:
            return pairs[0][second]
        self.r.unread()
        return pairs[1]

    def _whitespace(self, pos: Pos) -> Token:
        return Token(Tok.WS, pos, self.r.current()[0] + self.r.take(_WHITESPACE, end_read=True))

    def _skip_line(self) -> None:
        while True:
            ch, _ = self.r.read()
            if ch in ("\n", EOF_CHAR):
                return

    def _skip_block_comment(self) -> bool:
        """Consume through ``*/``; False when the text ends first."""
        while True:
            ch, _ = self.r.read()
            if ch == EOF_CHAR:
                return False
            while ch == "*":
                ch, _ = self.r.read()
                if ch == "/":
                    return True
                if ch == EOF_CHAR:
                    return False

    def _bare_ident(self) -> str:
        return self.r.take(_IDENT_CHARS, end_read=True)

    def _ident(self, lookup_keywords: bool) -> Token:
        """An unquoted or double-quoted identifier (a quote after bare characters starts the identifier anew)."""
        pos = self.r.pos(self.r.read()[1])
        self.r.unread()
        parts = []
        while True:
            ch, _ = self.r.read()
            if ch == EOF_CHAR:
                break
            if ch == '"':
                tok = self._string()
                if tok.kind in (Tok.BADSTRING, Tok.BADESCAPE):
                    return tok
                return Token(Tok.IDENT, pos, tok.lit)
            self.r.unread()
            if not is_ident_char(ch):
                break
            parts.append(self._bare_ident())
        lit = "".join(parts)
        if lookup_keywords:
            kind = lookup(lit)
            if kind is not Tok.IDENT:
                return Token(kind, pos)
        return Token(Tok.IDENT, pos, lit)

    def _string(self) -> Token:
        """A string in the quotes of the character just read: escapes \\n \\\\ \\" \\'; no newline inside."""
        self.r.unread()
        pos = self.r.pos(self.r.current()[1])  # InfluxDB reports the character before the opening quote
        quote, _ = self.r.read()
        out: List[str] = []
        while True:
            ch, _ = self.r.read()
            if ch == quote:
                return Token(Tok.STRING, pos, "".join(out))
            if ch in (EOF_CHAR, "\n"):
                return Token(Tok.BADSTRING, pos, "".join(out))
            if ch == "\\":
                nxt, at = self.r.read()
                if nxt in _STRING_ESCAPES:
                    out.append(_STRING_ESCAPES[nxt])
                    continue
                return Token(Tok.BADESCAPE, self.r.pos(at), "\\" + (nxt if nxt != EOF_CHAR else "\x00"))
            out.append(ch)

    def scan_regex(self) -> Token:
        """A ``/regex/`` starting at the next character (which the caller has seen is a slash)."""
        pos = self.r.pos(self.r.current()[1])
        self.r.read()  # the opening slash
        out: List[str] = []
        while True:
            ch, _ = self.r.read()
            if ch == "/":
                return Token(Tok.REGEX, pos, "".join(out))
            if ch == EOF_CHAR or ch == "\n":
                return Token(Tok.BADREGEX, pos)
            if ch == "\\":
                nxt, _ = self.r.read()
                if nxt == EOF_CHAR:
                    return Token(Tok.BADREGEX, pos)
                if nxt == "/":
                    out.append("/")
                    continue
                self.r.unread()
            out.append(ch)

    def _digits(self) -> str:
        return self.r.take(_DIGITS, end_read=False)

    def _number(self) -> Token:
        """An integer, a decimal number, or a duration (digits followed by letters, e.g. 1h30m)."""
        pos = self.r.pos(self.r.current()[1])
        self.r.unread()  # a leading dot is read again as the decimal point below
        text = self._digits()
        decimal = False
        ch, _ = self.r.read()
        if ch == ".":
            decimal = True
            nxt, _ = self.r.read()
            if is_digit(nxt):
                text += "." + nxt + self._digits()
            else:
                self.r.unread()
        else:
            self.r.unread()
        if decimal:
            return Token(Tok.NUMBER, pos, text)
        ch, _ = self.r.read()
        if not (is_letter(ch) or ch == "µ"):
            self.r.unread()
            return Token(Tok.INTEGER, pos, text)
        chars = [text, ch]
        while True:
            ch, _ = self.r.read()
            if not (is_letter(ch) or ch == "µ"):
                self.r.unread()
                break
            chars.append(ch)
        while True:
            ch, _ = self.r.read()
            if not (is_letter(ch) or ch == "µ" or is_digit(ch)):
                self.r.unread()
                break
            chars.append(ch)
        return Token(Tok.DURATIONVAL, pos, "".join(chars))


_STRING_ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "'": "'"}

_SINGLE = {"+": Tok.ADD, "*": Tok.MUL, "%": Tok.MOD, "&": Tok.BITWISE_AND, "|": Tok.BITWISE_OR,
           "^": Tok.BITWISE_XOR, "(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA, ";": Tok.SEMICOLON}

# first character -> ({second character: token}, token when the second does not match (None: illegal))
_PAIRS: Dict[str, Tuple[Dict[str, Tok], Optional[Tok]]] = {
    "=": ({"~": Tok.EQREGEX}, Tok.EQ),
    "!": ({"=": Tok.NEQ, "~": Tok.NEQREGEX}, None),
    ">": ({"=": Tok.GTE}, Tok.GT),
    "<": ({"=": Tok.LTE, ">": Tok.NEQ}, Tok.LT),
    ":": ({":": Tok.DOUBLECOLON}, Tok.COLON),
}


class TokenBuffer:
    """The parser's view of the scanner: scan, scan_regex and unscan, over a ring of the last three tokens.

    As InfluxDB's, the ring starts with three empty ILLEGAL tokens at line 1, char 1 and pushing back more than
    it holds returns older slots again; the parser never relies on either, but no text can make it fail.
    """

    def __init__(self, text: str) -> None:
        self.s = Scanner(text)
        self._ring: List[Token] = [Token(Tok.ILLEGAL, Pos(0, 0))] * 3
        self._i = 0
        self._back = 0

    def _next(self, produce: Callable[[], Token]) -> Token:
        if self._back > 0:
            self._back -= 1
        else:
            self._i = (self._i + 1) % 3
            self._ring[self._i] = produce()
        return self._ring[(self._i - self._back) % 3]

    def scan(self) -> Token:
        """The next token, whitespace and comments included."""
        return self._next(self.s.scan)

    def scan_regex(self) -> Token:
        """The next token read as a regex (a token pushed back is returned as it is)."""
        return self._next(self.s.scan_regex)

    def unscan(self) -> None:
        """Push the last token back."""
        self._back += 1

    def peek_rune(self) -> str:
        """The next character of the text after every token scanned so far (pushed-back ones included)."""
        return self.s.r.peek()
