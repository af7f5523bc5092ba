"""Min/max-preserving decimation shared by every data node server and sisock-http.

Plain stride slicing (``t[::n]``) drops a one-sample spike at most zooms. Here
time is cut into slots of ``step`` seconds aligned on multiples of ``step``
(so a panel that pans keeps the same slots); each pair of slots holds the
minimum and the maximum of the samples that fall in it, in the order they
happened. Output times sit on the slot grid, so consecutive samples are at
least ``step`` apart, and a spike always survives.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


def choose_step(t0: float, t1: float, min_stride: Optional[float], max_points: Optional[int]) -> float:
    """The slot width that honours both ``min_stride`` and ``max_points`` (0 = none)."""
    step = float(min_stride) if min_stride and min_stride > 0 else 0.0
    if max_points and max_points > 0:
        span = max(t1 - t0, 0.0)
        if max_points <= 2:
            return math.inf
        # Pairs of slots covering [t0, t1] give at most span/step + 4 points.
        step = max(step, span / max(max_points - 4, 1) * (1 + 1e-9)) if span > 0 else step
    return step


def decimate(
    t: Sequence[float],
    values: Sequence,
    min_stride: Optional[float] = None,
    max_points: Optional[int] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(t, values)`` reduced so that samples are at least ``min_stride`` apart
    and number at most ``max_points``, keeping each pair of slots' extremes."""
    t_out, columns = decimate_columns(t, {"v": values}, min_stride, max_points)
    return t_out, columns["v"]


def decimate_columns(
    t: Sequence[float],
    columns: Dict[str, Sequence],
    min_stride: Optional[float] = None,
    max_points: Optional[int] = None,
) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Decimate several fields that share one timeline; they keep sharing one.

    ``t`` must be sorted. Numeric columns keep each pair of slots' minimum and
    maximum in time order; other columns keep the pair's first and last sample.
    When the input already satisfies both limits it is returned unchanged.
    """
    t = np.asarray(t, dtype=float)
    columns = {name: np.asarray(v) for name, v in columns.items()}
    n = len(t)
    within_points = not max_points or n <= max_points
    within_stride = not min_stride or n < 2 or float(np.min(np.diff(t))) >= min_stride
    if n == 0 or (within_points and within_stride):
        return t, columns
    step = choose_step(float(t[0]), float(t[-1]), min_stride, max_points) or math.inf
    out = _reduce(t, columns, step)
    while max_points and len(out[0]) > max_points and math.isfinite(step):
        step *= 2
        out = _reduce(t, columns, step)
    if max_points and len(out[0]) > max_points:  # max_points == 1
        return out[0][:max_points], {name: v[:max_points] for name, v in out[1].items()}
    return out


def reduce_to_step(t: np.ndarray, columns: Dict[str, np.ndarray], step: float) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Reduce sorted samples onto the grid of ``step`` seconds, as :func:`decimate_columns` does.

    Readers of long ranges use it to shrink what they hold chunk by chunk; the grid is
    aligned on multiples of the step, so reducing again later keeps every extreme.
    """
    return _reduce(np.asarray(t, dtype=float), {k: np.asarray(v) for k, v in columns.items()}, step)


def _reduce(t: np.ndarray, columns: Dict[str, np.ndarray], step: float) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """One pass at ``step`` seconds: each pair of slots gives one or two samples."""
    if math.isfinite(step):
        pair = np.floor(t / (2 * step)).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        first_t = pair[starts] * 2 * step
        second_t = first_t + step
    else:  # everything in one pair, shown at the first and last time
        starts = np.zeros(1, dtype=np.int64)
        first_t, second_t = t[:1], t[-1:]
    ends = np.r_[starts[1:], len(t)]
    two = (ends - starts) >= 2
    out_t = _interleave(first_t, second_t, two)
    out = {}
    for name, v in columns.items():
        if v.dtype.kind in "biuf":
            vf = v.astype(float)
            imin = starts + _segment_argmin(np.where(np.isnan(vf), np.inf, vf), starts)
            imax = starts + _segment_argmin(np.where(np.isnan(vf), np.inf, -vf), starts)
            first, second = np.minimum(imin, imax), np.maximum(imin, imax)
        else:
            first, second = starts, ends - 1
        out[name] = _interleave(v[first], v[second], two)
    return out_t, out


def _interleave(a: np.ndarray, b: np.ndarray, keep_b: np.ndarray) -> np.ndarray:
    """``a[0], b[0], a[1], b[1], ...`` leaving out ``b[i]`` where ``keep_b[i]`` is false."""
    both = np.empty(2 * len(a), dtype=np.result_type(a, b))
    both[0::2], both[1::2] = a, b
    keep = np.ones(len(both), dtype=bool)
    keep[1::2] = keep_b
    return both[keep]


def _segment_argmin(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Index (relative to each segment's start) of the first minimum of each segment."""
    ends = np.r_[starts[1:], len(values)]
    lengths = ends - starts
    if np.all(lengths == lengths[0]):
        return np.argmin(values.reshape(len(starts), lengths[0]), axis=1)
    seg_min = np.minimum.reduceat(values, starts)
    seg_id = np.repeat(np.arange(len(starts)), lengths)
    hits = np.flatnonzero(values == seg_min[seg_id])
    hit_seg = seg_id[hits]
    first_hit = hits[np.r_[True, hit_seg[1:] != hit_seg[:-1]]]
    return first_hit - starts
