"""A time-ordered table of numpy columns that grows at the back and is trimmed at the front.

The live data nodes (data-feed, sensors) append samples as they come and drop
those older than a time limit. Rows sit in one contiguous slice, so a query is
a binary search and a copy. When the back is full the live rows move to new
arrays twice their count, so memory follows what the time window holds, never
how long the process has run; columns with no value left are dropped then.
Not thread-safe: its owner holds a lock.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

#: Rows a fresh table has room for.
MIN_CAPACITY = 16


def _missing(column: np.ndarray):
    """The "no value" marker of a column: NaN for numbers, None for strings."""
    return np.nan if column.dtype.kind == "f" else None


def _has_value(column: np.ndarray) -> np.ndarray:
    """Per row: true where the column holds a value."""
    if column.dtype.kind == "f":
        return ~np.isnan(column)
    return np.array([v is not None for v in column], dtype=bool)


class RingTable:
    """Rows of ``(t, column values...)`` with ``t`` non-decreasing; see the module docstring."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._t = np.empty(MIN_CAPACITY)
        self._columns: Dict[str, np.ndarray] = {}
        self._head = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def names(self) -> List[str]:
        """The columns, in the order they first appeared."""
        return list(self._columns)

    @property
    def last_time(self) -> Optional[float]:
        """Time of the newest row (None when empty)."""
        return float(self._t[self._head + self._size - 1]) if self._size else None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the allocated capacity, not only the live rows)."""
        return self._t.nbytes + sum(c.nbytes for c in self._columns.values())

    def _live(self, column: np.ndarray) -> np.ndarray:
        return column[self._head:self._head + self._size]

    def append(self, t: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        """Add rows: ``t`` sorted and not before :attr:`last_time`; each column as long as ``t``.

        A column seen for the first time is empty in the earlier rows; a known
        column left out is empty in these rows. A float column refuses text
        (ValueError) and nothing is added then.
        """
        n = len(t)
        converted = self.convert(columns)
        if n == 0:
            return
        self._reserve(n)
        end = self._head + self._size
        self._t[end:end + n] = t
        for name, values in converted.items():
            if name not in self._columns:
                column = np.empty(len(self._t), dtype=values.dtype)
                column[:] = _missing(column)
                self._columns[name] = column
            self._columns[name][end:end + n] = values
        for name, column in self._columns.items():
            if name not in converted:
                column[end:end + n] = _missing(column)
        self._size += n

    def convert(self, columns: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The columns in the types this table stores them in; ValueError for text into a number column."""
        converted = {}
        for name, values in columns.items():
            known = self._columns.get(name)
            kind = known.dtype.kind if known is not None else ("f" if values.dtype.kind in "biuf" else "O")
            converted[name] = values.astype(float if kind == "f" else object, copy=False)
        return converted

    def _reserve(self, n: int) -> None:
        """Make room for ``n`` more rows at the back, moving the live rows to fresh arrays if needed."""
        if self._head + self._size + n <= len(self._t):
            return
        capacity = max(MIN_CAPACITY, 2 * (self._size + n))
        t = np.empty(capacity)
        t[:self._size] = self._live(self._t)
        columns = {}
        for name, column in self._columns.items():
            live = self._live(column)
            if self._size and not _has_value(live).any():
                continue  # nothing left of this column: forget it
            fresh = np.empty(capacity, dtype=column.dtype)
            fresh[:self._size] = live
            fresh[self._size:] = _missing(fresh)
            columns[name] = fresh
        self._t, self._columns, self._head = t, columns, 0

    def has(self, name: str) -> bool:
        """True while the table holds column ``name``."""
        return name in self._columns

    def drop(self, name: str) -> None:
        """Forget a column."""
        self._columns.pop(name, None)

    def trim_before(self, t0: float) -> None:
        """Drop the rows older than ``t0``; an emptied table gives its memory back."""
        drop = int(np.searchsorted(self._live(self._t), t0, side="left"))
        if drop >= self._size:
            self._reset()
            return
        self._head += drop
        self._size -= drop

    def _range(self, t0: float, t1: float) -> Tuple[int, int]:
        i, j = np.searchsorted(self._live(self._t), [t0, t1], side="left")
        return self._head + int(i), self._head + int(j)

    def window(self, t0: float, t1: float, names: List[str]) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """Copies of the rows with ``t0 <= t < t1``: times and the named columns (unknown names left out)."""
        i, j = self._range(t0, t1)
        return self._t[i:j].copy(), {n: self._columns[n][i:j].copy() for n in names if n in self._columns}

    def present(self, t0: float, t1: float) -> Tuple[List[str], Optional[float]]:
        """Columns with a value in ``[t0, t1)``, and the median interval of those rows (None below 2)."""
        i, j = self._range(t0, t1)
        if j <= i:
            return [], None
        names = [n for n, c in self._columns.items() if _has_value(c[i:j]).any()]
        interval = float(np.median(np.diff(self._t[i:j]))) if j - i > 1 else None
        return names, interval
