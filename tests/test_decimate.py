"""The shared M4 decimation: first, minimum, maximum and last sample of each aligned slot."""
from __future__ import annotations

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from fractions import Fraction

from sisock.decimate import (GRID, Slots, aggregate, aggregate_edges, choose_step, decimate, decimate_columns, merge,
                             merge_edges, on_grid)

M4 = Slots.COLUMNS[:10]  # what decimation keeps; the moments follow


@pytest.fixture
def day():
    rng = np.random.default_rng(1)
    t = 1.7e9 + np.arange(86400.0)
    v = np.cumsum(rng.standard_normal(len(t)))
    v[40001] = v.max() + 100.0  # a one-sample spike
    v[60001] = v.min() - 100.0
    return t, v


@pytest.mark.parametrize("max_points", [3, 10, 100, 1000, 5000])
def test_max_points_and_spikes(day, max_points):
    t, v = day
    tt, vv = decimate(t, v, max_points=max_points)
    assert len(tt) <= max_points
    assert vv.max() == v.max() and vv.min() == v.min()
    assert np.all(np.diff(tt) > 0)


def test_stride_slicing_would_lose_the_spike(day):
    t, v = day
    assert v[::100].max() < v.max()
    assert decimate(t, v, max_points=1000)[1].max() == v.max()


def is_sample(day, tt, vv):
    """Every returned point is a real sample: its time exists and carries that value."""
    t, v = day
    at = np.searchsorted(t, tt)
    return np.array_equal(t[at], tt) and np.array_equal(v[at], vv)


@pytest.mark.parametrize("stride", [2.0, 60.0, 3600.0])
def test_min_stride_keeps_first_min_max_last_of_each_slot(day, stride):
    t, v = day
    tt, vv = decimate(t, v, min_stride=stride)
    assert is_sample(day, tt, vv)
    slots = np.floor(tt / stride)
    assert np.max(np.unique(slots, return_counts=True)[1]) <= 4
    for k in np.unique(np.floor(t / stride))[::97]:  # spot-check slots against the samples
        inside = np.floor(t / stride) == k
        mine = slots == k
        assert vv[mine].min() == v[inside].min() and vv[mine].max() == v[inside].max()
        assert tt[mine][0] == t[inside][0] and tt[mine][-1] == t[inside][-1]


def test_answer_lies_inside_the_window_at_real_times(day):
    t, v = day
    window = (t[0] + 1234.5, t[-1] - 99.25)
    inside = (t >= window[0]) & (t < window[1])
    tt, vv = decimate(t[inside], v[inside], max_points=1000, window=window)
    assert tt[0] >= window[0] and tt[-1] < window[1]
    assert is_sample(day, tt, vv)


def test_steps_nest_on_the_grid():
    for span in (3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, 365 * 86400.0):
        step = choose_step(0.0, span, None, 1000)
        assert 4 * (span / step + 2) <= 1000
        base = max(w for w in GRID if w <= step)
        assert step % base == 0 and on_grid(step) == step


samples = st.lists(st.tuples(st.integers(0, 20000), st.integers(-5, 5) | st.just(None)), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(samples, st.sampled_from([60.0, 600.0, 3600.0]), st.lists(st.integers(0, 300), max_size=4))
def test_merging_aggregates_equals_aggregating_samples(pairs, step, cuts):
    """Summaries are exact: aggregates of 60 s buckets of any pieces, merged onto a slot grid,
    equal the aggregates of the samples on that grid (ties, NaN and duplicates included)."""
    pairs.sort(key=lambda p: p[0])
    t = np.array([p[0] / 3.0 for p in pairs])
    v = np.array([np.nan if p[1] is None else float(p[1]) for p in pairs])
    cuts = sorted(c for c in cuts if c < len(t))
    parts = [aggregate(a, b, 60.0) for a, b in zip(np.split(t, cuts), np.split(v, cuts))]
    whole, merged = aggregate(t, v, step), merge(parts, step)
    for column in M4:
        assert np.array_equal(getattr(whole, column), getattr(merged, column), equal_nan=True), column


def test_data_within_limits_is_untouched(day):
    t, v = day
    tt, vv = decimate(t[:50], v[:50], min_stride=1.0, max_points=100)
    assert np.array_equal(tt, t[:50]) and np.array_equal(vv, v[:50])


def test_columns_share_the_timeline_and_text_keeps_first_and_last(day):
    t, v = day
    text = np.array([f"state{i // 1000}" for i in range(len(t))])
    tt, cols = decimate_columns(t, {"v": v, "state": text, "neg": -v}, max_points=200)
    assert len(cols["v"]) == len(cols["state"]) == len(cols["neg"]) == len(tt)
    assert cols["neg"].min() == -v.max()
    assert cols["state"][0] == "state0" and cols["state"][-1] == "state86"


def test_nan_and_empty():
    t = np.arange(10.0)
    v = np.array([1, np.nan, 3, np.nan, 5, 6, np.nan, 8, 9, 10.0])
    tt, vv = decimate(t, v, max_points=5)
    assert len(tt) <= 5 and np.nanmax(vv) == 10.0
    tt, vv = decimate([], [], max_points=5)
    assert len(tt) == 0 and len(vv) == 0


def exact_moments(v: np.ndarray):
    """``(sum, m2)`` of samples in exact rational arithmetic, rounded once: the truth."""
    values = [Fraction(float(x)) for x in v]
    total = sum(values, Fraction(0))
    mean = total / len(values)
    return float(total), float(sum(((x - mean) ** 2 for x in values), Fraction(0)))


def assert_moments(slots: Slots, t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> None:
    """Each slot's count, sum and m2 equal the exact ones of its samples to 1e-9 relative (with
    an absolute floor at the rounding of values of the samples' magnitude)."""
    for k, start in enumerate(slots.start):
        b = int(np.searchsorted(edges, start, side="right"))
        inside = v[(t >= edges[b - 1]) & (t < edges[b])]
        assert slots.count[k] == len(inside)
        total, m2 = exact_moments(inside)
        scale = float(np.max(np.abs(inside)))
        assert np.isclose(slots.sum[k], total, rtol=1e-9, atol=1e-12 * scale * len(inside)), (k, slots.sum[k], total)
        assert np.isclose(slots.m2[k], m2, rtol=1e-9, atol=len(inside) * (1e-12 * scale) ** 2), (k, slots.m2[k], m2)


values = st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-5, 5).map(float)
offsets = st.sampled_from([0.0, 1e8, -3.5e4])  # far from zero: a naive sum of squares would lose every digit


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20000), values), min_size=1, max_size=300), offsets,
       st.sampled_from([60.0, 600.0, 3600.0]), st.lists(st.integers(0, 300), max_size=4))
def test_merged_moments_equal_the_samples_moments(pairs, offset, step, cuts):
    """Moments of 60 s slots of any pieces, merged (Chan et al.), equal those of the concatenated
    samples on the coarser grid; and the M4 part is what it was."""
    pairs.sort(key=lambda p: p[0])
    t = np.array([p[0] / 3.0 for p in pairs])
    v = np.array([p[1] + offset for p in pairs])
    cuts = sorted(c for c in cuts if c < len(t))
    parts = [aggregate(a, b, 60.0) for a, b in zip(np.split(t, cuts), np.split(v, cuts))]
    whole, merged = aggregate(t, v, step), merge(parts, step)
    grid = np.arange(0.0, 20000 / 3.0 + step, step)
    assert_moments(whole, t, v, grid)
    assert_moments(merged, t, v, grid)
    for column in M4:
        assert np.array_equal(getattr(whole, column), getattr(merged, column), equal_nan=True), column


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20000), values), min_size=1, max_size=300),
       st.lists(st.integers(-60, 400), min_size=2, max_size=12, unique=True), st.lists(st.integers(0, 300), max_size=4))
def test_edges_aggregate_and_merge_like_the_grid(pairs, minutes, cuts):
    """Buckets on arbitrary edges (minutes apart, as InfluxQL's offsets and days are on the tiers'
    grid): samples aggregated there, and 60 s slots of pieces merged there, agree with each other
    and with the samples; samples outside the edges are left out."""
    pairs.sort(key=lambda p: p[0])
    t = np.array([p[0] / 3.0 for p in pairs])
    v = np.array([p[1] for p in pairs])
    edges = np.array(sorted(minutes), dtype=float) * 60.0
    cuts = sorted(c for c in cuts if c < len(t))
    direct = aggregate_edges(t, v, edges)
    merged = merge_edges([aggregate(a, b, 60.0) for a, b in zip(np.split(t, cuts), np.split(v, cuts))], edges)
    held = [k for k in range(len(edges) - 1) if np.any((t >= edges[k]) & (t < edges[k + 1]))]
    assert np.array_equal(direct.start, edges[held])
    assert_moments(direct, t, v, edges)
    assert_moments(merged, t, v, edges)
    for column in M4:
        assert np.array_equal(getattr(direct, column), getattr(merged, column), equal_nan=True), column


def test_edges_keep_integer_nanoseconds():
    """Times given as int64 nanoseconds come back as they were (no float rounding)."""
    t = np.array([1_700_000_000_123_456_789, 1_700_000_000_123_456_790, 1_700_000_060_000_000_001])
    edges = np.array([1_700_000_000, 1_700_000_060, 1_700_000_120]) * 10**9
    slots = aggregate_edges(t, np.array([2.0, 1.0, 5.0]), edges)
    assert slots.first_t.dtype == np.int64 and list(slots.first_t) == [t[0], t[2]]
    assert list(slots.min_t) == [t[1], t[2]] and list(slots.count) == [2, 1] and list(slots.sum) == [3.0, 5.0]
    assert list(slots.m2) == [0.5, 0.0]


def test_slots_without_moments_merge_to_unknown():
    """Slots made from stored M4 columns alone have unknown (NaN) moments, and merging them with
    known ones gives unknown, never a wrong number; the M4 part merges as before."""
    known = aggregate(np.arange(0.0, 120.0), np.arange(120.0), 60.0)
    stored = Slots(*(getattr(aggregate(np.arange(120.0, 240.0), np.arange(120.0), 60.0), c) for c in M4))
    assert np.isnan(stored.sum).all() and np.isnan(stored.m2).all()
    merged = merge([known, stored], 3600.0)
    assert merged.count[0] == 240 and merged.max_v[0] == 119.0 and np.isnan(merged.sum[0]) and np.isnan(merged.m2[0])
    assert np.array_equal(merge([known], 3600.0).sum, [np.arange(120.0).sum()])
