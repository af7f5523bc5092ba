"""M4 decimation shared by every data node server and sisock-http.

Plain stride slicing (``t[::n]``) drops a one-sample spike at most zooms. Here
time is cut into slots of ``step`` seconds aligned on multiples of ``step``
(so a panel that pans keeps the same slots), and each slot keeps at most four
of its samples: the first, the minimum, the maximum and the last, at their
real times (the M4 reduction of Jugel et al., VLDB 2014). A line drawn from
the answer therefore has the same extent in every pixel column as one drawn
from every sample, and a one-sample spike survives any zoom.

Steps of a second or more are rounded up to a multiple of the widest width in
:data:`GRID` that fits, and the widths of :data:`GRID` each divide the next,
so a slot is always a whole number of buckets of the summaries the g3 archive
keeps at those widths (:mod:`sisock.g3.summaries`), and reducing an answer
again at a coarser step of the same request keeps every slot's extremes.

Per-slot aggregates (:class:`Slots`) are what summaries store; merging them
(:func:`merge`) gives exactly what reducing the samples would give. Slots also carry
the moments InfluxQL's ``mean``, ``sum`` and ``stddev`` need (each slot's sum and its sum
of squared deviations from its mean), merged with Chan et al.'s pairwise update; and
samples or slots can be reduced onto arbitrary bucket edges (:func:`aggregate_edges`,
:func:`merge_edges`), as InfluxQL's offset, tz()-shifted and truncated buckets need.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

#: Widths (s) that steps are rounded to multiples of; each divides the next.
GRID = (1.0, 60.0, 600.0, 3600.0, 21600.0, 86400.0)
#: Samples a slot keeps at most: first, minimum, maximum, last.
PER_SLOT = 4
#: Mean samples per segment above which segments are reduced one by one (cheaper than vectorising).
LONG_SEGMENTS = 64

Window = Tuple[float, float]
_UNKNOWN = np.empty(0)  # stands for "no moments given" in Slots' constructor


def choose_step(t0: float, t1: float, min_stride: Optional[float], max_points: Optional[int]) -> float:
    """The slot width for a request over ``[t0, t1)``: at least ``min_stride``, wide enough that
    at most ``max_points`` come back (0 or None = no limit), on the :data:`GRID`; 0 = no reduction."""
    step = float(min_stride) if min_stride and min_stride > 0 else 0.0
    if max_points and max_points > 0:
        slots = max_points // PER_SLOT - 2  # a window touches at most span/step + 2 slots
        if slots < 1:
            return math.inf
        span = max(t1 - t0, 0.0)
        if span > 0:
            step = max(step, span / slots)
    return on_grid(step)


def on_grid(step: float) -> float:
    """``step`` rounded up to a multiple of the widest :data:`GRID` width not above it."""
    if not 0 < step < math.inf or step < GRID[0]:
        return step
    base = max(w for w in GRID if w <= step)
    return math.ceil(step / base - 1e-9) * base


def unknown(n: int) -> np.ndarray:
    """``n`` NaN moments ("unknown": aggregates made without them), as one read-only value, no memory."""
    return np.broadcast_to(np.float64(np.nan), (n,))


@dataclass
class Slots:
    """M4 aggregates of consecutive slots: each slot's start (a multiple of its width), its
    sample count, and the time and value of its first, minimum, maximum and last sample; and
    its moments: the sum of its values and ``m2``, the sum of their squared deviations from the
    slot's mean (NaN where unknown, e.g. slots stored before moments were kept, or when a value
    is NaN)."""

    start: np.ndarray
    count: np.ndarray
    first_t: np.ndarray
    first_v: np.ndarray
    min_t: np.ndarray
    min_v: np.ndarray
    max_t: np.ndarray
    max_v: np.ndarray
    last_t: np.ndarray
    last_v: np.ndarray
    sum: np.ndarray = field(default_factory=lambda: _UNKNOWN)
    m2: np.ndarray = field(default_factory=lambda: _UNKNOWN)

    COLUMNS = ("start", "count", "first_t", "first_v", "min_t", "min_v", "max_t", "max_v", "last_t", "last_v",
               "sum", "m2")

    def __post_init__(self) -> None:
        if self.sum is _UNKNOWN:
            self.sum = unknown(len(self.start))
        if self.m2 is _UNKNOWN:
            self.m2 = unknown(len(self.start))

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls) -> "Slots":
        return cls(*(np.empty(0, dtype=np.int64 if c == "count" else float) for c in cls.COLUMNS))

    def mean(self) -> np.ndarray:
        """Each slot's mean value (NaN where its moments are unknown)."""
        return self.sum / self.count

    def take(self, index) -> "Slots":
        """The slots selected by ``index`` (a mask, slice or positions)."""
        return Slots(*(getattr(self, c)[index] for c in self.COLUMNS))

    def between(self, lo: float, hi: float) -> "Slots":
        """The slots starting in ``[lo, hi)`` (starts are in order): these very slots when all
        are, else views of them, never a copy."""
        n = len(self.start)
        if not n or (self.start[0] >= lo and self.start[-1] < hi):
            return self
        a, b = np.searchsorted(self.start, (lo, hi))
        return self.take(slice(int(a), int(b)))

    def points(self) -> Tuple[np.ndarray, np.ndarray]:
        """The answer: each slot's first, minimum, maximum and last sample in time order, once each."""
        if not len(self):
            return np.empty(0), np.empty(0)
        t = np.stack([self.first_t, self.min_t, self.max_t, self.last_t], axis=1)
        v = np.stack([self.first_v, self.min_v, self.max_v, self.last_v], axis=1)
        order = np.argsort(t, axis=1, kind="stable")
        t, v = np.take_along_axis(t, order, 1), np.take_along_axis(v, order, 1)
        keep = np.ones(t.shape, dtype=bool)
        keep[:, 1:] = t[:, 1:] != t[:, :-1]
        return t[keep], v[keep]


def _floor(t: np.ndarray, width: float) -> np.ndarray:
    return np.floor(t / width) * width


def slot_bounds(t: np.ndarray, step: float) -> Tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)``: index ranges of the samples of each slot of sorted times ``t``."""
    if math.isfinite(step) and len(t):
        key = np.floor(t / step)
        change = np.empty(len(t), dtype=bool)
        change[0] = True
        np.not_equal(key[1:], key[:-1], out=change[1:])
        starts = np.flatnonzero(change)
    else:
        starts = np.zeros(1 if len(t) else 0, dtype=np.int64)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1:] = len(t)
    return starts, ends


def extremes(values: np.ndarray, starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Positions of each segment's first minimum and first maximum, NaN ignored (a segment of
    NaN only gives its first position)."""
    imin, imax = segment_extremes(np.asarray(values, dtype=float)[None, :], starts)
    return imin[0], imax[0]


def segment_extremes(values: np.ndarray, starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`extremes` of each row of a 2-D array (fields sampled together), all rows at once.

    Regular sampling makes every segment but the first and last equally long: those are
    reduced as one reshaped array (two passes over the data instead of a dozen).
    """
    n = values.shape[1]
    if n >= LONG_SEGMENTS * len(starts):
        return _long_extremes(values, starts)
    lengths = _lengths(starts, n)
    if len(starts) > 3 and lengths[1] > 1 and np.all(lengths[1:-1] == lengths[1]):
        lo, hi = int(starts[1]), int(starts[-1])
        inner = values[:, lo:hi].reshape(len(values), len(starts) - 2, int(lengths[1]))
        nan = np.isnan(inner)
        offsets = starts[1:-1]
        if nan.any():
            inner_min = offsets + np.argmin(np.where(nan, np.inf, inner), axis=2)
            inner_max = offsets + np.argmax(np.where(nan, -np.inf, inner), axis=2)
        else:
            inner_min, inner_max = offsets + np.argmin(inner, axis=2), offsets + np.argmax(inner, axis=2)
        head = _general_extremes(values[:, :lo], starts[:1])
        tail = _general_extremes(values[:, hi:], np.zeros(1, dtype=np.int64))
        return (np.concatenate([head[0], inner_min, tail[0] + hi], axis=1),
                np.concatenate([head[1], inner_max, tail[1] + hi], axis=1))
    return _general_extremes(values, starts)


def _long_extremes(values: np.ndarray, starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`segment_extremes` of few long segments (a file's minutes): one segment (a file of a
    minute) is a plain argmin and argmax unless it holds NaN; more go to :func:`_general_extremes`,
    whose one search over every row beat a loop of an argmin per segment sixfold."""
    if len(starts) == 1:
        imin, imax = values.argmin(axis=1)[:, None], values.argmax(axis=1)[:, None]
        if not np.isnan(np.take_along_axis(values, imin, axis=1)).any():  # argmin stops at a NaN
            return imin, imax
    return _general_extremes(values, starts)


def _general_extremes(values: np.ndarray, starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`segment_extremes` for segments of any lengths: each segment's extreme in one
    reduction over them all, then its first position among the samples equal to it (one search
    over every row at once). NaN are ignored, as if they were the other extreme."""
    lengths = _lengths(starts, values.shape[1])
    return (_first_extreme(values, starts, lengths, np.minimum, np.inf),
            _first_extreme(values, starts, lengths, np.maximum, -np.inf))


def _first_extreme(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, reduce: np.ufunc,
                   fill: float) -> np.ndarray:
    """Each row's segments' first position of their extreme (``reduce``: np.minimum or np.maximum;
    ``fill``: what stands for NaN, the other extreme)."""
    v = values
    extreme = reduce.reduceat(v, starts, axis=1)
    if np.isnan(extreme).any():
        v = np.where(np.isnan(values), fill, values)
        extreme = reduce.reduceat(v, starts, axis=1)
    hits = np.flatnonzero(v == np.repeat(extreme, lengths, axis=1))  # row by row, in order
    offsets = (np.arange(len(values)) * values.shape[1])[:, None]
    return hits[np.searchsorted(hits, offsets + starts)] - offsets


def _lengths(starts: np.ndarray, n: int) -> np.ndarray:
    """The lengths of the segments beginning at ``starts`` of ``n`` items (``np.diff`` with
    ``append`` costs ten times as much, and merges of few rows make many calls)."""
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1:] = n - starts[-1:]
    return lengths


def aggregate(t: np.ndarray, v: np.ndarray, step: float) -> Slots:
    """The M4 aggregates and moments of sorted samples on the grid of ``step`` seconds."""
    t = np.asarray(t, dtype=float)
    v = np.asarray(v, dtype=float)
    if not len(t):
        return Slots.empty()
    starts, ends = slot_bounds(t, step)
    slot = _floor(t[starts], step) if math.isfinite(step) else t[:1]
    return _reduce(t, v, starts, ends, slot)


def aggregate_edges(t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> Slots:
    """The aggregates of sorted samples in buckets ``[edges[k], edges[k+1])`` (sorted ``edges``, in
    the unit of ``t``, whose type the times keep: int64 nanoseconds stay exact), one slot per bucket
    holding samples, starting at its edge; samples outside the edges are left out."""
    t = np.asarray(t)
    v = np.asarray(v, dtype=float)
    edges = np.asarray(edges)
    if len(edges) < 2 or not len(t):
        return Slots.empty()
    bounds = np.searchsorted(t, edges)
    held = np.flatnonzero(bounds[1:] > bounds[:-1])
    if not len(held):
        return Slots.empty()
    lo, hi = int(bounds[0]), int(bounds[-1])
    return _reduce(t[lo:hi], v[lo:hi], bounds[held] - lo, bounds[held + 1] - lo, edges[held])


def _reduce(t: np.ndarray, v: np.ndarray, starts: np.ndarray, ends: np.ndarray, slot: np.ndarray) -> Slots:
    """The slots of samples cut into segments ``[starts[k], ends[k])`` (covering them in order)."""
    imin, imax = extremes(v, starts)
    last = ends - 1
    count = ends - starts
    total, m2 = segment_moments(v[None, :], starts, count)
    return Slots(slot, count, t[starts], v[starts], t[imin], v[imin], t[imax], v[imax], t[last], v[last], total[0],
                 m2[0])


def segment_moments(values: np.ndarray, starts: np.ndarray, count: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(sum, m2)`` of each row of a 2-D array (fields sampled together) per segment beginning at
    ``starts`` (``count`` samples each): m2 from the deviations from the segment's mean (two passes,
    no cancellation); a NaN sample makes its segment's moments NaN."""
    total = np.add.reduceat(values, starts, axis=1)
    deviation = np.repeat(total / count, count, axis=1)
    np.subtract(values, deviation, out=deviation)
    np.multiply(deviation, deviation, out=deviation)
    return total, np.add.reduceat(deviation, starts, axis=1)


def concat(parts: Sequence[Slots]) -> Slots:
    """Slots one after another, as one (a file row each: one numpy call per column, not per row)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Slots.empty()
    if len(parts) == 1:
        return parts[0]
    return Slots(*(np.concatenate([getattr(p, c) for p in parts]) for c in Slots.COLUMNS))


def merge(parts: Sequence[Slots], step: float) -> Slots:
    """Aggregates of finer (or equal) aligned slots combined onto the grid of ``step``: the same
    as aggregating their samples (ties go to the earlier sample, as :func:`aggregate` does)."""
    return _merge(parts, lambda start: _floor(start, step))


def merge_edges(parts: Sequence[Slots], edges: np.ndarray) -> Slots:
    """Slots combined into buckets ``[edges[k], edges[k+1])`` (each slot wholly inside one bucket,
    as the summary tiers' are inside InfluxQL's buckets on their grid), as :func:`aggregate_edges`
    of their samples would give; slots outside the edges are left out."""
    edges = np.asarray(edges)
    inside = [p.take((p.start >= edges[0]) & (p.start < edges[-1])) for p in parts if len(p)] if len(edges) > 1 else []
    return _merge(inside, lambda start: edges[np.searchsorted(edges, start, side="right") - 1])


def _merge(parts: Sequence[Slots], bucket: Callable[[np.ndarray], np.ndarray]) -> Slots:
    """:func:`merge` with ``bucket`` giving the start of the slot each slot start falls in."""
    parts = sorted((p for p in parts if len(p)), key=lambda p: p.first_t[0])
    if not parts:
        return Slots.empty()
    a = concat(parts)
    if not np.all(a.first_t[1:] > a.last_t[:-1]):  # parts that interleave (a window's two ends in one)
        a = a.take(np.argsort(a.first_t, kind="stable"))
    if np.all(a.first_t[1:] > a.last_t[:-1]):
        return _merge_ordered(a, bucket(a.start))
    key = bucket(a.start)
    order = np.lexsort((a.first_t, key))
    a, key = a.take(order), key[order]
    starts = np.flatnonzero(_changes(key))
    group = np.cumsum(_changes(key)) - 1

    def pick(*sort_keys) -> np.ndarray:
        o = np.lexsort((*sort_keys, group))
        return o[_changes(group[o])]

    lo = pick(a.min_t, np.where(np.isnan(a.min_v), np.inf, a.min_v))
    hi = pick(a.max_t, np.where(np.isnan(a.max_v), np.inf, -a.max_v))
    last = pick(-np.arange(len(key)), -a.last_t)  # of samples at one time, the later one is last
    count, total, m2 = _moments(a, starts)
    return Slots(key[starts], count, a.first_t[starts], a.first_v[starts], a.min_t[lo], a.min_v[lo],
                 a.max_t[hi], a.max_v[hi], a.last_t[last], a.last_v[last], total, m2)


def _merge_ordered(a: Slots, key: np.ndarray) -> Slots:
    """:func:`merge` of aggregates whose samples follow one another in time (the usual case):
    each slot's rows are consecutive and in time order, so numpy reduces them in place."""
    if np.all(key[1:] > key[:-1]):  # one row per slot already: nothing to combine
        return Slots(key, *(getattr(a, c) for c in Slots.COLUMNS[1:]))
    starts = np.flatnonzero(_changes(key))
    lengths = _lengths(starts, len(key))
    last = starts + lengths - 1
    lo = _first_extreme(a.min_v[None], starts, lengths, np.minimum, np.inf)[0]
    hi = _first_extreme(a.max_v[None], starts, lengths, np.maximum, -np.inf)[0]
    count, total, m2 = _moments(a, starts, lengths)
    return Slots(key[starts], count, a.first_t[starts], a.first_v[starts], a.min_t[lo], a.min_v[lo],
                 a.max_t[hi], a.max_v[hi], a.last_t[last], a.last_v[last], total, m2)


def _moments(a: Slots, starts: np.ndarray,
             lengths: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, sum, m2)`` of runs of rows beginning at ``starts``: Chan et al.'s pairwise update
    taken over a whole run at once, m2 = sum of the rows' m2 + sum of count * (row mean - run mean)^2
    (deviations of means, never a difference of large squares). Unknown (NaN) in, unknown out."""
    if lengths is None:
        lengths = _lengths(starts, len(a))
    count = np.add.reduceat(a.count, starts)
    total = np.add.reduceat(a.sum, starts)
    apart = a.sum / a.count - np.repeat(total / count, lengths)
    m2 = np.add.reduceat(a.m2, starts) + np.add.reduceat(a.count * apart * apart, starts)
    return count, total, m2


def _changes(key: np.ndarray) -> np.ndarray:
    """True where a run of equal keys begins."""
    change = np.empty(len(key), dtype=bool)
    change[:1] = True
    np.not_equal(key[1:], key[:-1], out=change[1:])
    return change


def decimate(
    t: ArrayLike,
    values: ArrayLike,
    min_stride: Optional[float] = None,
    max_points: Optional[int] = None,
    window: Optional[Window] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(t, values)`` reduced to at most four samples per slot and ``max_points`` in all."""
    t_out, columns = decimate_columns(t, {"v": values}, min_stride, max_points, window)
    return t_out, columns["v"]


def decimate_columns(
    t: ArrayLike,
    columns: Mapping[str, ArrayLike],
    min_stride: Optional[float] = None,
    max_points: Optional[int] = None,
    window: Optional[Window] = None,
) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Decimate several fields that share one timeline; they keep sharing one.

    The slot width is :func:`choose_step` of ``window`` (the request's; default the samples'
    own span). Each numeric column keeps its slots' first, minimum, maximum and last samples,
    other columns their slots' first and last; the timeline keeps the union of those samples.
    An input that already has at most four samples per slot and ``max_points`` in all is
    returned unchanged, so decimating an answer again changes nothing.
    """
    t = np.asarray(t, dtype=float)
    arrays = {name: np.asarray(v) for name, v in columns.items()}
    n = len(t)
    if n == 0:
        return t, arrays
    t0, t1 = window or (float(t[0]), float(t[-1]))
    step = choose_step(t0, t1, min_stride, max_points)
    if not step or ((not max_points or n <= max_points) and _fits(t, step)):
        return t, arrays
    keep = _m4_positions(t, arrays, step)
    while max_points and len(keep) > max_points and math.isfinite(step):
        step *= 2
        keep = _m4_positions(t, arrays, step)
    if max_points and len(keep) > max_points:
        keep = keep[:max_points]
    return t[keep], {name: v[keep] for name, v in arrays.items()}


def reduce_to_step(t: np.ndarray, columns: Dict[str, np.ndarray],
                   step: float) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Reduce sorted samples onto the grid of ``step`` seconds, as :func:`decimate_columns` does.

    Readers of long ranges use it to shrink what they hold chunk by chunk: what it keeps
    includes every slot's extremes, so reducing again later at the same step is exact.
    """
    t = np.asarray(t, dtype=float)
    keep = _m4_positions(t, {k: np.asarray(v) for k, v in columns.items()}, step)
    return t[keep], {k: np.asarray(v)[keep] for k, v in columns.items()}


def _fits(t: np.ndarray, step: float) -> bool:
    """True when no slot of ``step`` seconds holds more than :data:`PER_SLOT` samples."""
    starts, ends = slot_bounds(t, step)
    return bool(np.all(ends - starts <= PER_SLOT))


def _m4_positions(t: np.ndarray, columns: Dict[str, np.ndarray], step: float) -> np.ndarray:
    """Sorted positions of the samples M4 keeps for any column of a shared timeline."""
    starts, ends = slot_bounds(t, step)
    chosen: List[np.ndarray] = [starts, ends - 1]
    for v in columns.values():
        if v.dtype.kind in "biuf":
            chosen.extend(extremes(v, starts))
    return np.unique(np.concatenate(chosen))
