"""Finalized InfluxQL buckets kept: a repeated panel asks its data nodes only for buckets that may change.

What :mod:`sisock.http.results` does for the JSON datasource, for ``get_buckets``. A
dashboard or alert rule asks the same ``GROUP BY time(...)`` statements again and again,
each time over a window moved by a few seconds, and each time the node read every bucket
again (a 30-day panel at 30-minute buckets reads a month of summary rows per field). But a
bucket of a node's field that ends by the field's ``finalized_until`` never changes while
the node's revision of it stays the same (:mod:`sisock.g3.revisions`), and buckets are
independent.

So for each ``(node, field, columns, grid)`` (a grid: the bucket width and its phase; the
edges between a window's first and last are on it) the final whole buckets of the latest
windows are kept as one run ``[a, b)`` (:class:`Run`). A statement whose window holds whole
buckets of the run asks the node, in its one call, for the rest only (``get_buckets``'
``cut``), and the kept buckets are put between: exactly the node's answer over the whole
window. The answer carries the revision; if it is not the kept one, the node is asked again
for the whole window and the run replaced. Only numeric fields of nodes that give a revision
(the g3 reader) are kept. Memory is bounded by ``HTTP_CACHE_MB`` (least recently used
dropped first); a run holds at most :data:`KEEP_WINDOWS` windows' buckets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from sisock.decimate import Slots, concat
from sisock.lru import SizedLRU

#: A run keeps the buckets of at most this many windows of the statement that kept it (the latest).
KEEP_WINDOWS = 4
#: Bytes a kept run costs besides its arrays.
ENTRY_BYTES = 512


class Grid:
    """The regular buckets of a window's edges (whole microseconds): every edge but the first and
    the last is on it (``edge % step == phase``), the first and last may be (the window's ends)."""

    def __init__(self, edges: np.ndarray, step: int) -> None:
        self.edges = edges
        self.step = step
        self.phase = int(edges[1]) % step
        on = (edges[[0, -1]] % step) == self.phase
        #: the first and the last edge that are on the grid: the window's whole buckets lie between
        self.first = int(edges[0] if on[0] else edges[1])
        self.last = int(edges[-1] if on[1] else edges[-2])

    @staticmethod
    def of(edges: np.ndarray) -> Optional["Grid"]:
        """The grid of ``edges``, or None when the edges inside the window are not evenly spaced."""
        if len(edges) < 4:
            return None
        inner = np.diff(edges[1:-1])
        step = int(inner[0])
        if step <= 0 or not np.all(inner == step) or edges[1] - edges[0] > step or edges[-1] - edges[-2] > step:
            return None
        return Grid(edges, step)

    def snap(self, a: float, b: float) -> Tuple[int, int]:
        """The window's whole buckets within ``[a, b)``: the grid edges in the window, inward."""
        lo = max(self.first, int(math.ceil((a - self.phase) / self.step)) * self.step + self.phase)
        hi = min(self.last, int(math.floor((b - self.phase) / self.step)) * self.step + self.phase)
        return lo, max(lo, hi)


@dataclass(frozen=True)
class Run:
    """Final whole buckets ``[a, b)`` of one field as of ``revision``: ``slots``, those holding samples."""

    revision: int
    a: int
    b: int
    slots: Slots

    def between(self, a: int, b: int) -> Slots:
        """The kept buckets starting in ``[a, b)``."""
        return self.slots.between(a, b)

    @property
    def nbytes(self) -> int:
        return ENTRY_BYTES + sum(np.asarray(getattr(self.slots, c)).nbytes for c in Slots.COLUMNS)


Key = Tuple[str, str, Tuple[str, ...], int, int]


class KeptBuckets:
    """Runs of final buckets by ``(node, field, columns, step, phase)``, within ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.kept: SizedLRU[Run] = SizedLRU(capacity)

    @staticmethod
    def key(node: str, field: str, columns: Sequence[str], grid: Grid) -> Key:
        return node, field, tuple(columns), grid.step, grid.phase

    def cut(self, node: str, fields: List[str], columns: Sequence[str],
            grid: Optional[Grid]) -> Optional[Tuple[int, int]]:
        """The buckets ``[a, b)`` of the window that ``fields`` of ``node`` all have kept (None: none)."""
        if grid is None or self.kept.capacity <= 0 or not fields:
            return None
        a, b = grid.first, grid.last
        for field in fields:
            run = self.kept.get(self.key(node, field, columns, grid))
            if run is None:
                return None
            a, b = grid.snap(max(a, run.a), min(b, run.b))
        return (a, b) if b - a >= grid.step else None

    def stitched(self, node: str, field: str, columns: Sequence[str], grid: Grid, cut: Tuple[int, int],
                 found: Slots, revision: Optional[int]) -> Optional[Slots]:
        """The answer ``found`` (without the buckets of ``cut``) with the kept ones put between; None
        when the kept run is gone or its revision is not ``revision`` (ask again, whole)."""
        run = self.kept.get(self.key(node, field, columns, grid))
        if run is None or revision is None or run.revision != revision:
            return None
        a, b = cut
        if a < run.a or b > run.b:
            return None
        before = found.take(found.start < a)
        after = found.take(found.start >= b)
        return concat([before, run.between(a, b), after])

    def keep(self, node: str, field: str, columns: Sequence[str], grid: Optional[Grid], found: Slots,
             revision: Optional[int], finalized_until: Optional[float]) -> None:
        """Keep the final whole buckets of a field's whole answer ``found`` (as of ``revision``, final
        up to ``finalized_until`` seconds), joined to the run kept at that revision when they meet."""
        if grid is None or revision is None or finalized_until is None or self.kept.capacity <= 0:
            return
        until = float(finalized_until)
        if not math.isfinite(until):
            return
        a, b = grid.snap(grid.first, math.floor(until * 1e6))
        if b - a < grid.step:
            return
        key = self.key(node, field, columns, grid)
        slots = found.take((found.start >= a) & (found.start < b))
        old = self.kept.get(key)
        if old is not None and old.revision == revision and old.a <= b and a <= old.b:
            slots = concat([old.between(old.a, a), slots, old.between(b, old.b)])
            a, b = min(a, old.a), max(b, old.b)
        most = KEEP_WINDOWS * (len(grid.edges) - 1) * grid.step
        if b - a > most:  # the latest windows' buckets
            a = b - most
            slots = slots.take(slots.start >= a)
        run = Run(revision, a, b, slots)
        self.kept.put(key, run.nbytes, run)
