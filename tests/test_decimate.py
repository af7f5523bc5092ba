"""The shared M4 decimation: first, minimum, maximum and last sample of each aligned slot."""
from __future__ import annotations

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from sisock.decimate import GRID, aggregate, choose_step, decimate, decimate_columns, merge, on_grid


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
    for column in whole.COLUMNS:
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
