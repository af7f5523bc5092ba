"""How a query finds the feeds (one file of one provider) that overlap a window, on an index of any length.

A feed overlaps ``[start, end)`` when ``t_end >= start`` and ``t_start < end``. An
index on ``(description, t_end)`` serves the first test, but on its own it walks
every later feed of the provider: a window at the start of a year-long archive
read the whole year. No feed is longer than the longest one the index holds
(``description.max_span``, kept by the scanner), so ``t_end < end + max_span`` too,
and the walk stops at the window's end.
"""
from __future__ import annotations

from typing import Tuple

#: The longest feed of the index, 0 when empty (a scalar the database evaluates once).
_LONGEST = "(SELECT COALESCE(MAX(max_span), 0) FROM description)"


def overlaps(alias: str = "fe") -> str:
    """SQL true for a feed row (table alias ``alias``) overlapping the window of :func:`bounds`."""
    return f"{alias}.t_end >= ? AND {alias}.t_end <= ? + {_LONGEST} AND {alias}.t_start < ?"


def bounds(start: float, end: float) -> Tuple[float, float, float]:
    """The parameters of :func:`overlaps` for ``[start, end)``."""
    return start, end, end
