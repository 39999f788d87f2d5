"""Statistics for eval results: standard errors and 95% intervals of one run, paired tests between two runs.

- a mean of per-item scores: SE = sample standard deviation / sqrt(n) (lm-eval's `stderr`); the interval is Wilson's
  for 0/1 scores (good at small n and near 0 or 1) and mean ± 1.96·SE otherwise;
- a corpus metric (BLEU): bootstrap over items (the metric recomputed from resampled sufficient statistics);
- two runs on the same items: McNemar's exact test for 0/1 scores (`scipy.stats.binomtest(b, b + c, 0.5)`), a paired
  bootstrap otherwise (Koehn 2004, the same resampling and p-value as sacrebleu's `PairedTest(test_type="bs")`).

    summarize_mean([1, 0, 1, 1], binary=True)        # {'value': 0.75, 'se': 0.25, 'ci': [0.30, 0.95], 'n': 4}
    mcnemar_exact([1, 1, 0], [0, 1, 1])               # {'b': 1, 'c': 1, 'p_value': 1.0, ...}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 12345  # sacrebleu's default SACREBLEU_SEED, so our BLEU tests agree with its PairedTest
ALPHA = 0.05
_CHUNK_ELEMENTS = 4_000_000


def mean_and_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Return the mean and its standard error (sample std / sqrt(n)); the SE is None for fewer than 2 values."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return math.nan, None
    mean = float(array.mean())
    if array.size < 2:
        return mean, None
    return mean, float(array.std(ddof=1) / math.sqrt(array.size))


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize_mean(values: Sequence[float], binary: bool = False, scale: float = 1.0) -> dict:
    """Return {value, se, ci, n} of a mean of per-item scores in [0, 1], reported on `scale` (1 or 100)."""
    array = np.asarray(values, dtype=float)
    n = int(array.size)
    mean, se = mean_and_se(array)
    if n == 0:
        return {"value": None, "se": None, "ci": None, "n": 0}
    if binary:
        low, high = wilson_interval(float(array.sum()), n)
    elif se is not None:
        low, high = max(0.0, mean - Z95 * se), min(1.0, mean + Z95 * se)
    else:
        low = high = mean
    return {
        "value": mean * scale,
        "se": None if se is None else se * scale,
        "ci": [low * scale, high * scale],
        "n": n,
    }


def bootstrap_index_chunks(n: int, n_samples: int, seed: int, row_elements: int) -> Iterator[np.ndarray]:
    """Yield the rows of `default_rng(seed).choice(n, size=(n_samples, n))` in chunks that fit in memory.

    Drawing in chunks gives the same numbers as one draw (the generator's integer stream is sequential), so results
    match sacrebleu's bootstrap while using a bounded amount of memory.
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, n * row_elements))
    done = 0
    while done < n_samples:
        rows = min(per_chunk, n_samples - done)
        yield rng.choice(n, size=(rows, n), replace=True)
        done += rows


def resample_sums(stats: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sum the rows of `stats` picked by each row of `idx`, as counts @ stats (exact for count statistics, and far
    cheaper than gathering rows x n x width values)."""
    rows, n = idx.shape
    flat = (idx + (np.arange(rows)[:, None] * n)).ravel()
    counts = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)
    return counts @ stats


def bootstrap_statistics(
    stats: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """Return the statistic of each bootstrap resample of items (rows of `stats`, summed per resample)."""
    stats = np.asarray(stats, dtype=float)
    if stats.ndim == 1:
        stats = stats[:, None]
    out = []
    for idx in bootstrap_index_chunks(len(stats), n_samples, seed, 1):
        out.append(statistic(resample_sums(stats, idx)))
    return np.concatenate(out)


def bootstrap_summary(
    stats: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float | None, list[float] | None]:
    """Return (SE, [2.5%, 97.5%] percentile interval) of a corpus statistic by bootstrap over items."""
    if len(stats) < 2:
        return None, None
    scores = bootstrap_statistics(stats, statistic, n_samples, seed)
    return float(scores.std(ddof=1)), [float(np.percentile(scores, 2.5)), float(np.percentile(scores, 97.5))]


def mcnemar_exact(candidate: Sequence[float], baseline: Sequence[float]) -> dict:
    """McNemar's exact test on paired 0/1 scores: b = candidate right & baseline wrong, c = the reverse."""
    from scipy.stats import binomtest

    a = np.asarray(candidate, dtype=float) > 0.5
    bl = np.asarray(baseline, dtype=float) > 0.5
    b = int(np.sum(a & ~bl))
    c = int(np.sum(~a & bl))
    p_value = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"test": "mcnemar_exact", "b": b, "c": c, "p_value": p_value}


def paired_bootstrap(
    candidate_stats: np.ndarray,
    baseline_stats: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict:
    """Paired bootstrap test: both runs' statistic on the same resamples of items.

    p-value as in sacrebleu / Moses: with d_i = |cand_i - base_i| over resamples, p = (#(d_i - mean(d) > |Δ|) + 1) /
    (B + 1); the interval is the 2.5-97.5 percentiles of cand_i - base_i.
    """
    cand = np.asarray(candidate_stats, dtype=float)
    base = np.asarray(baseline_stats, dtype=float)
    if cand.ndim == 1:
        cand, base = cand[:, None], base[:, None]
    if cand.shape[0] != base.shape[0]:
        raise ValueError("paired bootstrap needs the same items in both runs")
    delta = float(statistic(cand.sum(axis=0)[None, :])[0] - statistic(base.sum(axis=0)[None, :])[0])
    both = np.concatenate([cand, base], axis=1)
    width = cand.shape[1]
    cand_scores, base_scores = [], []
    for idx in bootstrap_index_chunks(len(both), n_samples, seed, 1):
        sums = resample_sums(both, idx)
        cand_scores.append(statistic(sums[:, :width]))
        base_scores.append(statistic(sums[:, width:]))
    cand_all, base_all = np.concatenate(cand_scores), np.concatenate(base_scores)
    sample_diffs = np.abs(cand_all - base_all)
    centred = sample_diffs - sample_diffs.mean()
    p_value = (int(np.sum(centred > abs(delta))) + 1) / (len(centred) + 1)
    if abs(delta) < 1e-12:
        p_value = 1.0  # identical scores: sacrebleu's formula would give 1/(B+1), i.e. "significant"
    diffs = cand_all - base_all
    return {
        "test": "paired_bootstrap",
        "delta": delta,
        "p_value": float(p_value),
        "ci": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
        "samples": int(n_samples),
    }


def mean_statistic(n: int) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic "mean of n per-item scores" for the bootstrap helpers (sums are over a resample of n items)."""
    return lambda sums: sums[:, 0] / n


def paired_mean_difference(candidate: Sequence[float], baseline: Sequence[float]) -> dict:
    """Return Δ = mean(cand - base), its paired SE and 95% interval (far tighter than two independent SEs)."""
    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    mean, se = mean_and_se(d)
    ci = None if se is None else [mean - Z95 * se, mean + Z95 * se]
    return {"delta": mean, "se": se, "ci": ci}
