"""The shared min/max-preserving decimation."""
from __future__ import annotations

import numpy as np
import pytest

from sisock.decimate import decimate, decimate_columns


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


@pytest.mark.parametrize("stride", [2.0, 60.0, 3600.0])
def test_min_stride(day, stride):
    t, v = day
    tt, vv = decimate(t, v, min_stride=stride)
    assert np.all(np.diff(tt) >= stride)
    assert vv.max() == v.max()
    assert len(tt) <= 86400 / stride + 4


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
