"""Prepare series for drawing: EMA smoothing (TensorBoard's, debiased) and downsampling that keeps the extremes.

smoothed = ema(values, 0.6)
steps_d, values_d = downsample_minmax(steps, values, max_points=2000)
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def ema(values, weight: float) -> np.ndarray:
    """Return TensorBoard's debiased exponential moving average of `values` (weight 0 = raw, 0.99 = very smooth).

    smoothed[i] = last[i] / (1 - weight ** n[i]) with last[i] = weight * last[i-1] + (1 - weight) * value, where n
    counts the finite values so far; non-finite values are skipped (they do not move the average) and kept as NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
    if weight == 0 or values.size == 0:
        return values.copy()
    finite = np.isfinite(values)
    # The debiased EMA equals pandas' adjusted EWM: sum(w^k x) / sum(w^k) over the finite values seen so far.
    smoothed = pd.Series(np.where(finite, values, np.nan)).ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean()
    out = smoothed.to_numpy(copy=True)
    out[~finite] = np.nan
    return out


def downsample_minmax(steps, values, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Return at most about `max_points` points: per bucket of consecutive points, the minimum and the maximum.

    Non-finite values are dropped. The first and last points are always kept, so the curve's ends, its global
    minimum and maximum and every spike wider than a bucket survive.
    """
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    n = values.size
    if n <= max_points or max_points < 4:
        return steps, values
    buckets = max(1, (max_points - 2) // 2)
    size = int(np.ceil(n / buckets))
    padded = buckets * size
    idx = np.arange(padded).reshape(buckets, size)
    valid = idx < n
    grid_low = np.where(valid, values[np.minimum(idx, n - 1)], np.inf)
    grid_high = np.where(valid, values[np.minimum(idx, n - 1)], -np.inf)
    low = idx[np.arange(buckets), grid_low.argmin(axis=1)]
    high = idx[np.arange(buckets), grid_high.argmax(axis=1)]
    chosen = np.unique(np.concatenate(([0, n - 1], low[low < n], high[high < n])))
    return steps[chosen], values[chosen]


def downsample_max(values_by_column: np.ndarray, columns, max_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a (rows x columns) matrix to at most `max_columns` columns, each the maximum of its bucket.

    `columns` labels the columns (e.g. steps); each bucket is labelled with its first column. NaNs are ignored.
    """
    matrix = np.asarray(values_by_column, dtype=np.float64)
    columns = np.asarray(columns)
    count = matrix.shape[1] if matrix.ndim == 2 else 0
    if count <= max_columns:
        return matrix, columns
    size = int(np.ceil(count / max_columns))
    starts = np.arange(0, count, size)
    with np.errstate(all="ignore"):
        reduced = np.stack([_nanmax(matrix[:, s : s + size]) for s in starts], axis=1)
    return reduced, columns[starts]


def _nanmax(block: np.ndarray) -> np.ndarray:
    finite = np.where(np.isnan(block), -np.inf, block)
    out = finite.max(axis=1)
    out[np.isneginf(out) & np.isnan(block).all(axis=1)] = np.nan
    return out
