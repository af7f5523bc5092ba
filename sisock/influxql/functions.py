"""InfluxQL's functions with InfluxDB 1.x's semantics, over numpy arrays.

Aggregates and selectors come from per-bucket aggregates (:class:`~sisock.influxql.source.Buckets`)
where those hold enough (count, sum, mean, stddev, min, max, first, last, spread), else from the
samples of each bucket (median, percentile, mode, distinct, integral). Transformations
(derivative, difference, moving_average, cumulative_sum, elapsed) run over a stream of points:
raw samples or an aggregate's results. :func:`fill` fills empty buckets. A stream is a
:class:`Points`; a null point (an empty bucket under fill(null)) has ``valid`` False.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sisock.influxql.source import Buckets

#: Aggregates answered from buckets, and the bucket columns each needs.
FROM_BUCKETS: Dict[str, Tuple[str, ...]] = {
    "count": ("count",), "sum": ("count", "sum"), "mean": ("count", "sum"),
    "stddev": ("count", "sum", "m2", "min", "max"), "spread": ("count", "min", "max"),
    "min": ("count", "min"), "max": ("count", "max"), "first": ("count", "first"), "last": ("count", "last"),
}
#: Aggregates that need every sample of a bucket.
FROM_SAMPLES = ("median", "percentile", "mode", "distinct", "integral")
#: Aggregates and selectors (one value per bucket, filled by fill()).
AGGREGATES = tuple(FROM_BUCKETS) + FROM_SAMPLES
#: Selectors: a lone selector without GROUP BY time answers with its sample's time.
SELECTORS = ("first", "last", "min", "max", "percentile")
TRANSFORMS = ("derivative", "non_negative_derivative", "difference", "non_negative_difference",
              "moving_average", "cumulative_sum", "elapsed")
#: Functions whose answer keeps the field's type (others answer floats; count and elapsed integers).
KEEP_TYPE = ("sum", "min", "max", "first", "last", "spread", "mode", "percentile", "distinct",
             "difference", "non_negative_difference", "cumulative_sum")


@dataclass
class Points:
    """A stream of one series: times (int64 ns, in order), values, which points hold a value, and
    (a selector's) the times of the samples selected."""

    time: np.ndarray
    value: np.ndarray
    valid: np.ndarray
    picked: Optional[np.ndarray] = None

    @classmethod
    def of(cls, time: np.ndarray, value: np.ndarray) -> "Points":
        """Points that all hold values."""
        return cls(np.asarray(time, dtype=np.int64), np.asarray(value), np.ones(len(time), dtype=bool))

    def __len__(self) -> int:
        return len(self.time)

    def held(self) -> "Points":
        """Only the points holding values (transformations skip null points)."""
        if self.valid.all():
            return self
        return self.take(self.valid)

    def take(self, index) -> "Points":
        """The points selected by ``index``."""
        picked = None if self.picked is None else self.picked[index]
        return Points(self.time[index], self.value[index], self.valid[index], picked)


def result_type(name: str, field_type: str) -> str:
    """The type of ``name``'s answers over a field of ``field_type`` ("float", "integer", ...)."""
    if name in ("count", "elapsed"):
        return "integer"
    if name in KEEP_TYPE:
        return field_type
    return "float"


# -- combining the series of one group -------------------------------------------------
def combine(parts: Sequence[Buckets]) -> Buckets:
    """The buckets of several series grouped together (InfluxDB's reducers over their merged
    points): counts and sums add, m2 by Chan et al., the smallest/largest value (earliest on a
    tie), the earliest first and latest last (the larger value on a tie of times)."""
    if len(parts) == 1:
        return parts[0]
    out = Buckets(*(np.array(getattr(parts[0], c), copy=True) for c in Buckets.__dataclass_fields__))
    for b in parts[1:]:
        _combine_into(out, b)
    return out


def _combine_into(a: Buckets, b: Buckets) -> None:
    """Fold ``b``'s buckets into ``a``'s, in place."""
    na, nb = a.count, b.count
    n = na + nb
    both = (na > 0) & (nb > 0)
    only_b = (na == 0) & (nb > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if a.sum.dtype.kind == "f":
            delta = b.sum / np.where(nb > 0, nb, 1) - a.sum / np.where(na > 0, na, 1)
            m2 = a.m2 + b.m2 + delta * delta * na * nb / np.where(n > 0, n, 1)
            a.m2 = np.where(both, m2, np.where(only_b, b.m2, a.m2))
            a.sum = np.where(both, a.sum + b.sum, np.where(only_b, b.sum, a.sum))
    if a.min_v.dtype.kind == "f":
        take = only_b | (both & ((b.min_v < a.min_v) | ((b.min_v == a.min_v) & (b.min_t < a.min_t))))
        a.min_v, a.min_t = np.where(take, b.min_v, a.min_v), np.where(take, b.min_t, a.min_t)
        take = only_b | (both & ((b.max_v > a.max_v) | ((b.max_v == a.max_v) & (b.max_t < a.max_t))))
        a.max_v, a.max_t = np.where(take, b.max_v, a.max_v), np.where(take, b.max_t, a.max_t)
    larger = _larger(b.first_v, a.first_v)
    take = only_b | (both & ((b.first_t < a.first_t) | ((b.first_t == a.first_t) & larger)))
    a.first_v, a.first_t = np.where(take, b.first_v, a.first_v), np.where(take, b.first_t, a.first_t)
    larger = _larger(b.last_v, a.last_v)
    take = only_b | (both & ((b.last_t > a.last_t) | ((b.last_t == a.last_t) & larger)))
    a.last_v, a.last_t = np.where(take, b.last_v, a.last_v), np.where(take, b.last_t, a.last_t)
    a.count = n


def _larger(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where ``x > y`` (strings compared as Go does, by bytes; booleans false < true; None never)."""
    if x.dtype != object:
        with np.errstate(invalid="ignore"):
            return x > y
    return np.array([a is not None and b is not None and _key(a) > _key(b) for a, b in zip(x, y)], dtype=bool)


def _key(v):
    """A sort key ordering values as InfluxDB does (strings by UTF-8 bytes)."""
    return v.encode() if isinstance(v, str) else v


def merge_samples(parts: Sequence[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
    """The samples of several series of one group in one time-ordered stream (series in the given
    order on equal times, as InfluxDB's merge of sorted series is)."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if len(parts) == 1:
        return parts[0]
    t = np.concatenate([p[0] for p in parts])
    dtypes = {p[1].dtype.kind for p in parts}
    v = np.concatenate([np.asarray(p[1], dtype=object) if len(dtypes) > 1 else p[1] for p in parts])
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


# -- aggregates from buckets -----------------------------------------------------------
def from_buckets(name: str, b: Buckets, field_type: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, selected times, valid)`` of aggregate ``name`` per bucket."""
    count = b.count
    held = count > 0
    integer = field_type == "integer"
    none = np.zeros(len(count), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "count":
            return count.astype(np.int64), none, np.ones(len(count), dtype=bool)
        if name == "sum":
            return _typed(b.sum, integer), none, held
        if name == "mean":
            return b.sum / np.where(held, count, 1), none, held
        if name == "stddev":  # NaN (a null answer, not an empty bucket) for a single sample
            var = np.where(b.min_v == b.max_v, 0.0, np.maximum(b.m2, 0.0)) / np.where(count > 1, count - 1, 1)
            return np.where(count > 1, np.sqrt(var), np.nan), none, held
        if name == "spread":
            return _typed(b.max_v - b.min_v, integer), none, held
        if name in ("min", "max", "first", "last"):
            values = getattr(b, f"{name}_v")
            return _typed(values, integer), getattr(b, f"{name}_t"), held
    raise ValueError(f"{name} is not answered from buckets")


def _typed(values: np.ndarray, integer: bool) -> np.ndarray:
    """Values of an integer field back as int64 (buckets hold them as floats, exact below 2**53)."""
    if integer and values.dtype.kind == "f":
        return np.where(np.isnan(values), 0, values).astype(np.int64)
    return values


# -- aggregates from samples -----------------------------------------------------------
def by_bucket(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Positions in sorted times ``t`` where each bucket ``[edges[k], edges[k+1])`` begins and ends."""
    return np.searchsorted(t, edges)


def sample_aggregate(name: str, t: np.ndarray, v: np.ndarray, edges: np.ndarray, field_type: str,
                     arg: Optional[float] = None, ascending: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, selected times, valid)`` per bucket of median, percentile or mode from the samples
    (fed in the statement's time order: it decides between equal values)."""
    bounds = by_bucket(t, edges)
    n = len(edges) - 1
    out: List[object] = [None] * n
    times = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    for k in range(n):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if hi <= lo:
            continue
        step = 1 if ascending else -1
        got = _reduce_slice(name, t[lo:hi][::step], v[lo:hi][::step], arg)
        if got is not None:
            out[k], times[k], valid[k] = got[1], got[0], True
    return _column(out, result_type(name, field_type)), times, valid


def _reduce_slice(name: str, t: np.ndarray, v: np.ndarray, arg: Optional[float]):
    """``(time, value)`` of one bucket's median, percentile or mode, or None (no answer)."""
    if name == "median":
        return 0, median(v)
    if name == "percentile":
        return percentile(t, v, float(arg if arg is not None else 0))
    if name == "mode":
        return 0, mode(t, v)
    raise ValueError(f"{name} is not a sample aggregate")


def _column(values: List[object], kind: str) -> np.ndarray:
    """A result column of ``kind`` from Python values (None where a bucket has no answer)."""
    if kind == "float":
        return np.array([np.nan if x is None else x for x in values], dtype=float)
    if kind == "integer":
        return np.array([0 if x is None else x for x in values], dtype=np.int64)
    return np.array(values, dtype=object)


def _by_value(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Positions ordering samples by value (equal values in time order)."""
    if v.dtype == object:
        return np.array(sorted(range(len(v)), key=lambda i: _key(v[i])), dtype=np.int64)
    return np.argsort(v, kind="stable")


def median(v: np.ndarray) -> float:
    """The middle value, or the mean of the two middle ones (as lo + (hi - lo) / 2)."""
    s = np.sort(v)
    n = len(s)
    if n % 2:
        return float(s[n // 2])
    lo, hi = s[n // 2 - 1], s[n // 2]
    if s.dtype.kind == "i":
        return float(lo) + float(hi - lo) / 2
    return float(lo + (hi - lo) / 2)


def percentile(t: np.ndarray, v: np.ndarray, p: float):
    """``(time, value)`` of the sample of nearest rank ``floor(n * p / 100 + 0.5)``, or None when
    that rank is outside the samples (p too small for so few)."""
    n = len(v)
    i = int(np.floor(n * p / 100.0 + 0.5)) - 1
    if i < 0 or i >= n:
        return None
    at = _by_value(t, v)[i]
    return int(t[at]), v[at].item() if hasattr(v[at], "item") else v[at]


def mode(t: np.ndarray, v: np.ndarray):
    """The most frequent value. Ties, as InfluxDB 1.x's reducer breaks them over the samples sorted
    by value: a later value (in that order) of equal frequency wins when its first sample is no
    later than the last sample of the current winner; a value seen once never wins after the first."""
    order = _by_value(t, v)
    sv, st = v[order], t[order]
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]]) if len(sv) else np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(sv)]
    best = 0
    freq = int(ends[0] - starts[0])
    last_time = st[ends[0] - 1]
    for k in range(1, len(starts)):
        size = int(ends[k] - starts[k])
        if size > freq or (size == freq and size >= 2 and st[starts[k]] <= last_time):
            best, freq, last_time = k, size, st[ends[k] - 1]
    value = sv[starts[best]]
    return value.item() if hasattr(value, "item") else value


def distinct(t: np.ndarray, v: np.ndarray, ascending: bool = True) -> List[object]:
    """The distinct values, ordered by the time each is first seen (in the statement's time order),
    then by value."""
    seen: Dict[object, int] = {}
    step = 1 if ascending else -1
    for time, value in zip(t[::step].tolist(), v[::step].tolist()):
        if value not in seen:
            seen[value] = time
    return [value for value, _ in sorted(seen.items(), key=lambda kv: (kv[1], _key(kv[0])))]


def integral(t: np.ndarray, v: np.ndarray, unit: int, window: Optional[Callable[[int], Tuple[int, int]]],
             integer: bool = False, ascending: bool = True) -> Tuple[List[int], List[float]]:
    """``(bucket times, areas)``: the trapezoid rule over the stream in ``unit`` ns, as InfluxDB 1.x's
    reducers run it. ``window`` gives a time's bucket (GROUP BY time): each bucket's area stops at
    its edge, the value there interpolated between the samples around it, and a bucket whose last
    sample is on the edge it started from gives nothing; without one, one area at time 0. Run
    backwards (ORDER BY time DESC) the elapsed times are negative and a bucket is named by its end.
    An integer field follows InfluxDB's integer reducer, which carries the interpolated value (not
    the sample's) into the next bucket's first trapezoid."""
    labels: List[int] = []
    areas: List[float] = []
    if not len(t):
        return labels, areas
    tt, vv = t.tolist(), [float(x) for x in v.tolist()]
    if not ascending:
        tt, vv = tt[::-1], vv[::-1]

    def bucket(at: int) -> Tuple[int, Optional[int]]:
        if window is None:
            return 0, None
        a, b = window(at)
        return (a, b) if ascending else (b, a)

    prev_t, prev_v = tt[0], vv[0]
    label, edge = bucket(prev_t)
    total = 0.0
    for now, value in zip(tt[1:], vv[1:]):
        if now == prev_t:
            prev_v = value
            continue
        step_v = value
        if edge is not None and (now >= edge if ascending else now <= edge):
            if prev_t != edge:
                at_edge = prev_v + (value - prev_v) / (now - prev_t) * (edge - prev_t)
                total += 0.5 * (at_edge + prev_v) * ((edge - prev_t) / unit)
                prev_t = edge
                if integer:
                    step_v = at_edge
                else:
                    prev_v = at_edge
            labels.append(label)
            areas.append(total)
            label, edge = bucket(now)
            total = 0.0
        total += 0.5 * (step_v + prev_v) * ((now - prev_t) / unit)
        prev_t, prev_v = now, value
    if prev_t != label:
        labels.append(label)
        areas.append(total)
    return labels, areas


# -- transformations -------------------------------------------------------------------
def _advancing(p: Points) -> Points:
    """The points after dropping those at the time of the one before (the first is kept)."""
    if len(p) < 2:
        return p
    keep = np.r_[True, p.time[1:] != p.time[:-1]]
    return p if keep.all() else p.take(keep)


def derivative(p: Points, unit: int, non_negative: bool = False, ascending: bool = True) -> Points:
    """Rate of change between successive points per ``unit`` ns, at the later point's time; a
    non-negative derivative drops points whose value fell."""
    p = _advancing(p.held())
    if len(p) < 2:
        return Points.of(np.empty(0, np.int64), np.empty(0))
    diff = np.diff(p.value).astype(float)
    elapsed = np.diff(p.time) * (1 if ascending else -1)
    rate = diff / (elapsed / unit)
    keep = ~(diff < 0) if non_negative else np.ones(len(diff), dtype=bool)  # NaN stays
    return Points.of(p.time[1:][keep], rate[keep])


def difference(p: Points, non_negative: bool = False) -> Points:
    """Differences of successive points, at the later point's time (same type as the values)."""
    p = _advancing(p.held())
    if len(p) < 2:
        return Points.of(np.empty(0, np.int64), p.value[:0])
    diff = np.diff(p.value)
    keep = ~(diff < 0) if non_negative else np.ones(len(diff), dtype=bool)  # NaN stays
    return Points.of(p.time[1:][keep], diff[keep])


def moving_average(p: Points, n: int) -> Points:
    """The mean of each ``n`` successive points, at the last one's time."""
    p = p.held()
    if len(p) < n:
        return Points.of(np.empty(0, np.int64), np.empty(0))
    if p.value.dtype.kind == "i":
        sums = np.cumsum(np.r_[0, p.value])
        return Points.of(p.time[n - 1:], (sums[n:] - sums[:-n]).astype(float) / n)
    values = p.value.astype(float).tolist()
    out = np.empty(len(values) - n + 1)
    total = 0.0
    for i in range(n):
        total += values[i]
    out[0] = total / n
    for i in range(n, len(values)):  # the running sum InfluxDB keeps, for the same rounding
        total -= values[i - n]
        total += values[i]
        out[i - n + 1] = total / n
    return Points.of(p.time[n - 1:], out)


def cumulative_sum(p: Points) -> Points:
    """Running sums of the points, at each point's time."""
    p = p.held()
    return Points.of(p.time, np.cumsum(p.value) if len(p) else p.value)


def elapsed(p: Points, unit: int) -> Points:
    """Time between successive points in whole ``unit`` ns (truncated, negative when the stream
    runs backwards), at the later point's time."""
    p = p.held()
    if len(p) < 2:
        return Points.of(np.empty(0, np.int64), np.empty(0, np.int64))
    d = np.diff(p.time)
    return Points.of(p.time[1:], np.sign(d) * (np.abs(d) // unit))


# -- fill ------------------------------------------------------------------------------
def fill(starts: np.ndarray, values: np.ndarray, valid: np.ndarray, how: str, number: object = None,
         interval: int = 0, ascending: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """``(values, valid)`` of every bucket under fill(``how``): "null" leaves empty buckets null,
    "previous" repeats the value before (in the statement's time order), "linear" interpolates
    between the buckets around (times divided by the interval, in whole intervals, as InfluxDB
    does), a number is that number. ("none" drops empty buckets: done by the caller.)"""
    if not ascending:
        values, valid = fill(starts[::-1], values[::-1], valid[::-1], how, number, interval)
        return values[::-1], valid[::-1]
    values = values.copy()
    valid = valid.copy()
    if how == "previous":
        last = None
        for k in range(len(values)):
            if valid[k]:
                last = values[k]
            elif last is not None:
                values[k], valid[k] = last, True
    elif how == "linear" and interval:
        held = np.flatnonzero(valid)
        for a, b in zip(held, held[1:]):
            for k in range(a + 1, b):
                values[k] = _linear(int(starts[k]), int(starts[a]), int(starts[b]), values[a], values[b], interval,
                                    values.dtype.kind == "i")
                valid[k] = True
    elif how == "number":  # cast to the values' type (an integer field truncates it, as Go converts)
        empty = ~valid
        values[empty] = int(number) if values.dtype.kind == "i" else number  # type: ignore[call-overload]
        valid[:] = True
    return values, valid


def _linear(at: int, t0: int, t1: int, v0, v1, interval: int, integer: bool):
    """The value at ``at`` on the line through ``(t0, v0)`` and ``(t1, v1)``, times in whole
    intervals (Go's truncating division)."""
    x, a, b = _div(at, interval), _div(t0, interval), _div(t1, interval)
    if integer:
        slope = float(int(v1) - int(v0)) / float(b - a)
        return int(slope * float(x - a) + float(v0))
    return (v1 - v0) / float(b - a) * float(x - a) + v0


def _div(a: int, b: int) -> int:
    """Go's integer division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q
