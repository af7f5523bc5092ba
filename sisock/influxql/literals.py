"""InfluxQL's duration literals (5m, 1h30m, 1733500000000ms), read as InfluxDB 1.x reads them."""
from __future__ import annotations

_UNIT_NS = {"u": 10**3, "µ": 10**3, "s": 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}


class DurationError(ValueError):
    """A duration InfluxDB refuses; the text is its message."""


def _wrap64(value: int) -> int:
    """``value`` as Go's int64 arithmetic leaves it (two's complement wrap-around)."""
    return (value + 2**63) % 2**64 - 2**63


def parse_duration(text: str) -> int:
    """Nanoseconds of an InfluxQL duration; overflow is detected as InfluxDB does (a sum that wraps negative)."""
    if len(text.encode()) < 2:
        raise DurationError("invalid duration")
    i = 0
    negative = text[0] == "-"
    if negative:
        i = 1
    total = 0
    measure, unit = 0, ""
    while i < len(text):
        start = i
        while i < len(text) and "0" <= text[i] <= "9":
            i += 1
        if i >= len(text) or i == start:
            raise DurationError("invalid duration")
        measure = int(text[start:i])
        if measure > 2**63 - 1:
            raise DurationError("invalid duration")
        unit = text[i]
        two = text[i:i + 2]
        if two in ("ns", "ms"):
            unit = two
            total = _wrap64(total + _wrap64(measure * (1 if two == "ns" else 10**6)))
            i += 2
            continue
        if unit == "n":
            raise DurationError("invalid duration")
        if unit == "m":
            size = 60 * 10**9
        elif unit in _UNIT_NS:
            size = _UNIT_NS[unit]
        else:
            raise DurationError("invalid duration")
        total = _wrap64(total + _wrap64(measure * size))
        i += 1
    if total < 0 and not negative:
        raise DurationError(f"overflowed duration {measure}{unit}: choose a smaller duration or INF")
    return -total if negative else total
