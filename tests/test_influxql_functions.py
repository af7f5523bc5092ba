"""InfluxQL's functions over numpy arrays, on cases whose answers were read off influxd 1.6.7 (the
conformance tests compare whole queries; these pin the rules one by one)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sisock.influxql import functions as fn
from sisock.influxql.source import buckets_of

S = 10**9


def test_mode_breaks_ties_as_influxdb_does():
    """3,1,3,1,2,9 at 1..6 s: 1 and 3 both twice; influxd answers 3 (its first sample is no later
    than the last 1), and a value seen once never wins after the first."""
    t = np.arange(1, 7) * S
    assert fn.mode(t, np.array([3.0, 1, 3, 1, 2, 9])) == 3
    assert fn.mode(t[:4], np.array([5.0, 1, 1, 5])) == 5
    assert fn.mode(t[:3], np.array([2.0, 1, 3])) == 1  # all once: the smallest
    assert fn.mode(t[:4], np.array(["on", "off", "on", "idle"], dtype=object)) == "on"


def test_percentile_is_the_nearest_rank_sample_with_its_time():
    t = np.arange(1, 9) * S
    v = np.array([3.0, 1, 3, 1, 2, 9, 7, 7])
    assert fn.percentile(t, v, 50) == (1 * S, 3.0)  # rank floor(8 * 0.5 + 0.5) = 4: the first 3
    assert fn.percentile(t, v, 20) == (4 * S, 1.0)  # rank 2: the second 1
    assert fn.percentile(t, v, 100) == (6 * S, 9.0)
    assert fn.percentile(t, v, 5) is None  # rank 0: no answer


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert fn.median(np.array([1, 2, 3, 5, 5, 10])) == 4.0
    assert fn.median(np.array([0.5, 1.5, 2.5])) == 1.5


def test_integral_per_bucket_interpolates_at_the_edges():
    """influxd: integral(v) GROUP BY time(1500s) of 3,1,3,1,2,9 at 1000..6000 s is 1250, 2750, 2625,
    6375 (the last bucket holds only its start sample and gives nothing)."""
    t = np.arange(1000, 7000, 1000) * S
    v = np.array([3.0, 1, 3, 1, 2, 9])
    d = 1500 * S
    starts, areas = fn.integral(t, v, S, lambda x: (x // d * d, x // d * d + d))
    assert starts == [0, 1500 * S, 3000 * S, 4500 * S] and areas == [1250, 2750, 2625, 6375]
    assert fn.integral(t, v, 1000 * S, None) == ([0], [13.0])  # no GROUP BY time: one area, at time 0


def test_transformations_answer_at_the_later_point():
    p = fn.Points.of(np.array([1, 2, 2, 4]) * S, np.array([1.0, 3.0, 7.0, 2.0]))
    d = fn.derivative(p, S)
    assert list(d.time) == [2 * S, 4 * S] and list(d.value) == [2.0, -0.5]  # a repeated time is skipped
    assert list(fn.derivative(p, S, non_negative=True).value) == [2.0]
    assert list(fn.difference(p).value) == [2.0, -1.0]
    assert list(fn.moving_average(p, 2).value) == [2.0, 5.0, 4.5]
    assert list(fn.cumulative_sum(p).value) == [1.0, 4.0, 11.0, 13.0]
    assert list(fn.elapsed(p, S).value) == [1, 0, 2]


def test_fill_linear_counts_whole_intervals():
    starts = np.arange(5) * 10 * S
    values = np.array([1.0, 0, 0, 4.0, 0])
    valid = np.array([True, False, False, True, False])
    got, ok = fn.fill(starts, values, valid, "linear", interval=10 * S)
    assert list(got[:4]) == [1.0, 2.0, 3.0, 4.0] and list(ok) == [True] * 4 + [False]
    got, ok = fn.fill(starts, values, valid, "previous")
    assert list(got) == [1.0, 1.0, 1.0, 4.0, 4.0] and ok.all()
    got, _ = fn.fill(starts, np.array([1, 0, 0, 4, 0]), valid, "number", -2.5)
    assert list(got) == [1, -2, -2, 4, -2]  # an integer field truncates the number


def test_stddev_of_one_sample_is_a_null_answer_and_of_equal_values_exactly_zero():
    b = buckets_of(np.array([0, 1, 2, 10]) * S, np.array([0.1, 0.1, 0.1, 5.0]), np.array([0, 5, 15]) * S, "float")
    values, _, valid = fn.from_buckets("stddev", b, "float")
    assert values[0] == 0.0 and np.isnan(values[1]) and valid.all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 99), st.floats(-1e3, 1e3)), min_size=1, max_size=60),
       st.integers(1, 4))
def test_combined_series_equal_their_merged_samples(pairs, parts):
    """Buckets of several series combined (a group) equal the buckets of their merged samples:
    counts and sums, m2 (Chan), extremes with the earliest sample on a tie, first and last with the
    larger value on a tie of times."""
    edges = np.array([0, 25, 50, 100]) * S
    series = [sorted({t: v for t, v in pairs[i::parts]}.items()) for i in range(parts)]
    series = [(np.array([t for t, _ in s], dtype=np.int64) * S, np.array([v for _, v in s])) for s in series if s]
    combined = fn.combine([buckets_of(t, v, edges, "float") for t, v in series])
    t, v = fn.merge_samples(series)
    for k in range(3):
        inside = (t >= edges[k]) & (t < edges[k + 1])
        assert combined.count[k] == inside.sum()
        if inside.any():
            tt, vv = t[inside], v[inside]
            assert combined.sum[k] == pytest.approx(vv.sum(), rel=1e-9, abs=1e-9)
            assert combined.m2[k] == pytest.approx(((vv - vv.mean()) ** 2).sum(), rel=1e-9, abs=1e-6)
            assert combined.max_v[k] == vv.max() and combined.max_t[k] == tt[vv == vv.max()].min()
            assert combined.min_v[k] == vv.min() and combined.min_t[k] == tt[vv == vv.min()].min()
            assert combined.first_t[k] == tt.min() and combined.first_v[k] == vv[tt == tt.min()].max()
            assert combined.last_t[k] == tt.max() and combined.last_v[k] == vv[tt == tt.max()].max()
