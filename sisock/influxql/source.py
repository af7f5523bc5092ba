"""What the executor reads: the catalogue's columns (:class:`FieldRef`), a :class:`Source` of their
samples and per-bucket aggregates, and :class:`MemorySource`, samples held in numpy arrays (tests).

Times are int64 nanoseconds since the epoch, ranges ``[start, end)``. Aggregates that buckets carry
(count, sum, mean, stddev, min, max, first, last, spread) never need the samples, so a source backed
by summary tiers answers them in constant time per bucket; the rest read samples under a cap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Protocol, Sequence, Tuple

import numpy as np

from sisock.decimate import aggregate_edges

#: What :meth:`Source.buckets` may be asked for (the data side may leave out columns not asked for).
COLUMNS = ("count", "sum", "m2", "first", "min", "max", "last")
NUMERIC = ("float", "integer")


class PointLimit(Exception):
    """More samples than a statement may read (InfluxDB's max-select-point)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"max-select-point limit exceeed: ({count}/{limit})")
        self.count, self.limit = count, limit


@dataclass(frozen=True)
class FieldRef:
    """One column of the catalogue: a field of one series (measurement and tag set)."""

    measurement: str
    tags: Tuple[Tuple[str, str], ...]
    key: str
    type: str  # "float" | "integer" | "string" | "boolean"
    name: str  # sisock's name to ask data nodes for

    @property
    def series(self) -> Tuple[str, Tuple[Tuple[str, str], ...]]:
        """The series (measurement, sorted tags) this field belongs to."""
        return self.measurement, self.tags


@dataclass
class Buckets:
    """Per-bucket aggregates of one field, one entry per bucket. An empty bucket has count 0, NaN
    sum/m2/values and meaningless (0) times. ``m2`` is the sum of squared deviations from the
    bucket's mean. Ties: the earliest sample is the min/max. String and boolean fields carry count,
    first and last only (values in object arrays)."""

    count: np.ndarray
    sum: np.ndarray
    m2: np.ndarray
    first_t: np.ndarray
    first_v: np.ndarray
    min_t: np.ndarray
    min_v: np.ndarray
    max_t: np.ndarray
    max_v: np.ndarray
    last_t: np.ndarray
    last_v: np.ndarray

    @classmethod
    def empty(cls, n: int, values: type = float) -> "Buckets":
        """``n`` empty buckets (``values``: the dtype of the value columns)."""
        nan = np.full(n, np.nan)
        no_v = nan.copy() if values is float else np.full(n, None, dtype=object)
        zero_t = np.zeros(n, dtype=np.int64)
        return cls(np.zeros(n, dtype=np.int64), nan, nan.copy(), zero_t, no_v, zero_t.copy(), no_v.copy(),
                   zero_t.copy(), no_v.copy(), zero_t.copy(), no_v.copy())


class Source(Protocol):
    """Where the executor gets its catalogue, samples and buckets."""

    def catalogue(self) -> List[FieldRef]:
        """Every field of every series the source holds."""

    def samples(self, fields: List[FieldRef], start: int, end: int,
                limit: int) -> Dict[FieldRef, Tuple[np.ndarray, np.ndarray]]:
        """Every sample (int64 ns times sorted, values) in ``[start, end)``; raises :class:`PointLimit`
        when there are more than ``limit`` in all."""

    def buckets(self, fields: List[FieldRef], edges: np.ndarray,
                columns: Sequence[str]) -> Dict[FieldRef, Buckets]:
        """Per-bucket aggregates; bucket k is ``[edges[k], edges[k+1])`` (int64 ns)."""


def buckets_of(t: np.ndarray, v: np.ndarray, edges: np.ndarray, kind: str) -> Buckets:
    """:class:`Buckets` of sorted samples ``(t, v)`` of a field of type ``kind`` on ``edges``."""
    n = len(edges) - 1
    if kind not in NUMERIC:
        return _text_buckets(t, v, edges)
    out = Buckets.empty(n)
    slots = aggregate_edges(t, v, edges)
    at = np.searchsorted(edges, slots.start)
    out.count[at] = slots.count
    for column in ("sum", "m2", "first_t", "first_v", "min_t", "min_v", "max_t", "max_v", "last_t", "last_v"):
        getattr(out, column)[at] = getattr(slots, column)
    return out


def _text_buckets(t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> Buckets:
    """Count, first and last of each bucket of a string or boolean field."""
    out = Buckets.empty(len(edges) - 1, object)
    bounds = np.searchsorted(t, edges)
    lo, hi = bounds[:-1], bounds[1:]
    held = hi > lo
    out.count = (hi - lo).astype(np.int64)
    out.first_t[held], out.last_t[held] = t[lo[held]], t[hi[held] - 1]
    values = np.asarray(v, dtype=object)
    out.first_v[held], out.last_v[held] = values[lo[held]], values[hi[held] - 1]
    return out


class MemorySource:
    """A :class:`Source` over samples held in memory (tests): ``data`` maps each field to its
    sorted int64 ns times and values."""

    def __init__(self, data: Dict[FieldRef, Tuple[np.ndarray, np.ndarray]]) -> None:
        self.data = {f: (np.asarray(t, dtype=np.int64), np.asarray(v)) for f, (t, v) in data.items()}

    def catalogue(self) -> List[FieldRef]:
        """The fields held."""
        return list(self.data)

    def samples(self, fields: List[FieldRef], start: int, end: int,
                limit: int) -> Dict[FieldRef, Tuple[np.ndarray, np.ndarray]]:
        """The held samples in ``[start, end)``, under the cap ``limit``."""
        out = {}
        total = 0
        for f in fields:
            t, v = self.data.get(f, (np.empty(0, np.int64), np.empty(0)))
            a, b = np.searchsorted(t, (start, end))
            total += int(b - a)
            if total > limit:
                raise PointLimit(total, limit)
            out[f] = (t[a:b], v[a:b])
        return out

    def buckets(self, fields: List[FieldRef], edges: np.ndarray,
                columns: Sequence[str] = COLUMNS) -> Dict[FieldRef, Buckets]:
        """Buckets computed from the held samples (by :func:`sisock.decimate.aggregate_edges`)."""
        edges = np.asarray(edges, dtype=np.int64)
        out = {}
        for f in fields:
            t, v = self.data.get(f, (np.empty(0, np.int64), np.empty(0)))
            out[f] = buckets_of(t, v, edges, f.type)
        return out
