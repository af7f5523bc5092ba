"""Answers in InfluxDB 1.x's JSON: ``{"results": [{"statement_id", "series": [{"name", "tags",
"columns", "values"}]}]}`` or a statement's ``error``; times as RFC3339 (nanoseconds, trailing zeros
trimmed, in the tz() zone) or, with ``epoch``, integers of that unit; numbers printed as Go's
encoding/json prints them (a float 20.0 as ``20``, 1e21 as ``1e+21``), so the text matches too.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Callable, Dict, List, Optional, Sequence, Union
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from sisock.influxql.select import Table

#: Divisors of the ``epoch`` parameter's units (anything else: nanoseconds).
EPOCHS = {"ns": 1, "u": 1000, "µ": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def rfc3339(ns: int, zone: Optional[ZoneInfo] = None) -> str:
    """Go's RFC3339Nano of a time: fraction without trailing zeros, "Z" for a zero offset."""
    seconds, frac = divmod(ns, 10**9)
    stamp = _EPOCH + dt.timedelta(seconds=seconds)
    if zone is not None:
        stamp = stamp.astimezone(zone)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    offset = stamp.utcoffset() or dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def epoch_times(times: List[int], epoch: str) -> List[int]:
    """Times in the unit of ``epoch`` (Go's truncating division)."""
    d = EPOCHS.get(epoch, 1)
    return [t // d if t >= 0 else -(-t // d) for t in times]


def statement(statement_id: int, tables: Sequence[Table] = (), error: Optional[str] = None,
              epoch: Optional[str] = None, zone: Optional[ZoneInfo] = None) -> Dict[str, object]:
    """One statement's result object."""
    out: Dict[str, object] = {"statement_id": statement_id}
    if error is not None:
        out["error"] = error
        return out
    if tables:
        out["series"] = [_series(t, epoch, zone) for t in tables]
    return out


def _series(table: Table, epoch: Optional[str], zone: Optional[ZoneInfo]) -> Dict[str, object]:
    out: Dict[str, object] = {}
    if table.name:
        out["name"] = table.name
    if table.tags:
        out["tags"] = dict(sorted(table.tags.items()))
    out["columns"] = list(table.columns)
    if table.timed:
        times: List[int] = [row[0] for row in table.rows]  # type: ignore[misc]  # a timed table's rows start so
        if epoch:
            stamps: list = epoch_times(times, epoch)
        else:
            stamps = [rfc3339(t, zone) for t in times]
        for row, stamp in zip(table.rows, stamps):  # a table is answered once: its rows become the values
            row[0] = stamp
    out["values"] = table.rows
    return out


def results(objects: List[Dict[str, object]]) -> Dict[str, object]:
    """The whole answer of a query."""
    return {"results": objects}


def error(message: str) -> Dict[str, object]:
    """The answer of a query that does not run at all (e.g. does not parse)."""
    return {"error": message}


# -- Go's encoding/json -------------------------------------------------------------------------
Json = Union[None, bool, int, float, str, list, dict]


def go_float(f: float) -> str:
    """A float as Go's encoding/json writes it: shortest digits, positional between 1e-6 and 1e21,
    else exponent form without a leading zero in the exponent. Python's repr has the same
    shortest digits, and is positional from 1e-4 to 1e16: it answers those (most values) at once."""
    text = repr(f)
    if "e" not in text and "n" not in text:  # positional (repr spells NaN and infinities with an n)
        return text[:-2] if text.endswith(".0") else text
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {f}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = np.format_float_scientific(f, unique=True, trim="-", exp_digits=2)
        mantissa, exp = text.split("e")
        sign, digits = exp[0], exp[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits.zfill(2) if len(digits) < 2 and sign == '+' else digits}"
    return np.format_float_positional(f, unique=True, trim="-")


def go_string(s: str) -> str:
    """A string as Go's encoding/json writes it (HTML characters escaped, other text as UTF-8)."""
    text = json.dumps(s, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def _list(value: Union[list, tuple]) -> str:
    if value and type(value[0]) is list:
        return _numbers(value) or "[" + ",".join(map(_row, value)) + "]"
    encode = _ENCODERS.get
    return "[" + ",".join((encode(type(v)) or dumps)(v) for v in value) + "]"


def _numbers(rows: Union[list, tuple]) -> Optional[str]:
    """Rows of numbers and nulls only, through orjson (ten times as fast): its floats have Python's
    shortest digits, so where it writes them positionally only Go's "20" for "20.0" differs. Rows
    holding text, booleans, an exponent or anything orjson does not write give None."""
    try:
        text = orjson.dumps(rows).decode()
    except (TypeError, orjson.JSONEncodeError):
        return None
    if '"' in text or "e" in text:
        return None
    return _INTEGRAL.sub("", text)


#: A float's ".0" as orjson writes an integral one (Go writes none).
_INTEGRAL = re.compile(r"\.0(?=[,\]])")


def _row(row: list) -> str:
    """A list in a list: most are a series' rows of a time and a number, written in one step."""
    if len(row) == 2 and type(row[0]) is int:
        v = row[1]
        if type(v) is float:
            return f"[{row[0]},{go_float(v)}]"
        if v is None:
            return f"[{row[0]},null]"
    return _list(row)


def _dict(value: dict) -> str:
    return "{" + ",".join(f"{go_string(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"


#: Encoders by exact type: an answer's thousands of values each take one look-up, not a chain of tests.
_ENCODERS: Dict[type, Callable[..., str]] = {
    float: go_float, int: str, str: go_string, type(None): lambda _: "null", bool: lambda v: "true" if v else "false",
    list: _list, tuple: _list, dict: _dict}


def dumps(value: Json) -> str:
    """JSON text of an answer, byte for byte as InfluxDB writes it (compact)."""
    encode = _ENCODERS.get(type(value))
    if encode is not None:
        return encode(value)
    for kind in (int, float, str, dict, list, tuple):  # subclasses of these (numpy's float64 is a float)
        if isinstance(value, kind):
            return _ENCODERS[kind](value)
    raise TypeError(f"cannot encode {type(value).__name__}")
