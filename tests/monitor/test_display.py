"""EMA smoothing equals TensorBoard's by hand; downsampling keeps the extremes and stays within its budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from platform_core.monitor.display import downsample_max, downsample_minmax, ema


def test_ema_matches_a_hand_computation():
    # TensorBoard: last = 0.6 * last + 0.4 * v; smoothed = last / (1 - 0.6 ** n)
    #   v=1: last 0.4       -> 0.4 / 0.4  = 1.0
    #   v=2: last 1.04      -> 1.04 / 0.64 = 1.625
    #   NaN: skipped, kept as NaN
    #   v=4: last 2.224     -> 2.224 / 0.784 = 2.836734693877551
    out = ema([1.0, 2.0, float("nan"), 4.0], 0.6)
    assert out[0] == pytest.approx(1.0) and out[1] == pytest.approx(1.625)
    assert math.isnan(out[2]) and out[3] == pytest.approx(2.224 / 0.784)


def test_ema_edges():
    values = np.array([3.0, 1.0, 2.0])
    assert ema(values, 0.0).tolist() == values.tolist()
    assert ema([], 0.9).size == 0
    assert ema([5.0, 5.0, 5.0], 0.95).tolist() == pytest.approx([5.0, 5.0, 5.0])  # debiased: no pull towards 0
    with pytest.raises(ValueError):
        ema(values, 1.0)


def test_downsampling_keeps_extremes_and_ends():
    rng = np.random.default_rng(0)
    steps = np.arange(100_000)
    values = rng.normal(size=steps.size).cumsum()
    values[31_337] = 1e6  # a one-step spike
    values[77_777] = -1e6
    xs, ys = downsample_minmax(steps, values, 2000)
    assert len(xs) <= 2002
    assert ys.max() == 1e6 and ys.min() == -1e6
    assert xs[0] == 0 and xs[-1] == 99_999 and np.all(np.diff(xs) > 0)


def test_downsampling_drops_non_finite_and_leaves_short_series():
    xs, ys = downsample_minmax([1, 2, 3], [1.0, float("nan"), float("inf")], 10)
    assert xs.tolist() == [1] and ys.tolist() == [1.0]
    steps = np.arange(50)
    assert downsample_minmax(steps, steps * 1.0, 100)[0].tolist() == steps.tolist()


def test_column_downsampling_keeps_the_largest_value_per_bucket():
    matrix = np.ones((2, 1000))
    matrix[1, 501] = 1e4
    matrix[0, :] = np.nan
    reduced, columns = downsample_max(matrix, np.arange(1000), 100)
    assert reduced.shape == (2, 100) and columns[0] == 0
    assert reduced[1].max() == 1e4 and np.isnan(reduced[0]).all()
