"""InfluxQL regexes are Go's RE2 syntax: InfluxDB's wording of the common syntax errors, and a Python pattern.

The check covers the mistakes people make in dashboards (unbalanced brackets, a dangling ``*``, lookarounds
and backreferences, which RE2 lacks); anything else Python's ``re`` refuses is reported in Go's form with
Python's reason. ``to_python`` rewrites the few RE2 spellings Python reads differently.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import List, Pattern, Tuple

_POSIX = {"alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ", "cntrl": "\\x00-\\x1f\\x7f",
          "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~", "punct": "!-/:-@\\[-`{-~",
          "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f"}
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


class RegexError(ValueError):
    """A regex Go's regexp package refuses; the text is its message."""


def _fail(code: str, fragment: str) -> RegexError:
    return RegexError(f"error parsing regexp: {code}: `{fragment}`")


def check_regex(pattern: str) -> None:
    """Raise RegexError worded as Go's regexp.Compile when ``pattern`` is not valid RE2."""
    depth: List[int] = []
    i, n = 0, len(pattern)
    can_repeat = False  # is there something a repetition operator could apply to
    last_repeat = False
    start_of_repeat = 0
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise _fail("trailing backslash at end of expression", "")
            nxt = pattern[i + 1]
            if nxt.isdigit() and nxt != "0":
                raise _fail("invalid escape sequence", pattern[i:i + 2])
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
            can_repeat, last_repeat = True, False
            continue
        if ch == "[":
            i = _skip_class(pattern, i)
            can_repeat, last_repeat = True, False
            continue
        if ch == "(":
            opens = True
            if pattern.startswith("(?", i):
                i, opens = _group_flags(pattern, i)
            else:
                i += 1
            if opens:
                depth.append(i)
            can_repeat, last_repeat = False, False
            continue
        if ch == ")":
            if not depth:
                raise _fail("unexpected )", pattern)
            depth.pop()
            i += 1
            can_repeat, last_repeat = True, False
            continue
        if ch in "*+?" or (ch == "{" and _REPEAT.match(pattern, i)):
            size = _REPEAT.match(pattern, i) if ch == "{" else None
            end = size.end() if size else i + 1
            if end < n and pattern[end] == "?":
                end += 1  # non-greedy
            if last_repeat:
                raise _fail("invalid nested repetition operator", pattern[start_of_repeat:end])
            if not can_repeat:
                raise _fail("missing argument to repetition operator", pattern[i:end])
            if size and (int(size.group(1)) > 1000 or (size.group(3) and int(size.group(3)) > 1000)):
                raise _fail("invalid repeat count", pattern[i:end])
            if size and size.group(3) and int(size.group(3)) < int(size.group(1)):
                raise _fail("invalid repeat count", pattern[i:end])
            start_of_repeat = i
            i = end
            last_repeat = True
            continue
        if ch == "|":
            can_repeat, last_repeat = False, False
        else:
            can_repeat, last_repeat = True, False
        i += 1
    if depth:
        raise _fail("missing closing )", pattern)
    try:
        to_python(pattern)
    except re.error as e:
        raise _fail(str(e.msg), pattern) from None


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class starting at ``i``; Go's error when it never closes."""
    start = i
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    first = True
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]" and not first:
            return i + 1
        if ch == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end > 0:
                i = end + 2
                first = False
                continue
        if ch == "\\":
            i += 2
        else:
            i += 1
        first = False
    raise _fail("missing closing ]", pattern[start:])


def _group_flags(pattern: str, i: int) -> Tuple[int, bool]:
    """(index after ``(?flags:``, ``(?P<name>`` or ``(?flags)`` at ``i``, whether it opens a group); Go's error
    for other Perl syntax."""
    m = re.compile(r"\(\?P<([A-Za-z0-9_]*)>").match(pattern, i)
    if m:
        if not m.group(1):
            raise _fail("invalid named capture", m.group(0))
        return m.end(), True
    m = re.compile(r"\(\?(-?[imsU]+|[imsU]+-[imsU]*)?([:)])").match(pattern, i)
    if not m or (m.group(1) is None and m.group(2) == ")"):
        raise _fail("invalid or unsupported Perl syntax", pattern[i:i + 3])
    return m.end(), m.group(2) == ":"


@lru_cache(maxsize=512)
def to_python(pattern: str) -> Pattern[str]:
    """``pattern`` (RE2) compiled by Python's ``re``: \\z, \\Q..\\E and [[:class:]] rewritten."""
    out: List[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "z" and not in_class:
                out.append("\\Z")
            elif nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2:end] if end > 0 else ""
            if name in _POSIX:
                out.append(_POSIX[name])
                i = end + 2
                continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
            continue
        if ch == "]" and in_class:
            in_class = False
        elif ch == "[" and in_class:
            out.append("\\[")
            i += 1
            continue
        out.append(ch)
        i += 1
    return re.compile("".join(out))
