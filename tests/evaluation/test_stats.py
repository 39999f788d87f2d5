"""Standard errors, intervals and paired tests against scipy, sacrebleu and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest
from scipy.stats import binomtest

from platform_core.evaluation.metrics import EvalItem, bleu_corpus_function, score_items
from platform_core.evaluation.stats import (
    mcnemar_exact,
    mean_and_se,
    mean_statistic,
    paired_bootstrap,
    paired_mean_difference,
    summarize_mean,
    wilson_interval,
)


def test_mean_and_se_is_sample_std_over_sqrt_n():
    values = [1, 0, 0, 0, 0, 0]
    mean, se = mean_and_se(values)
    assert mean == pytest.approx(1 / 6)
    assert se == pytest.approx(0.1667, abs=1e-4)  # lm-eval's stderr for p = 1/6, n = 6
    assert se == pytest.approx(math.sqrt((1 / 6) * (5 / 6) / 5))


def test_wilson_interval_by_hand():
    low, high = wilson_interval(3, 4)
    z = 1.959963984540054
    p, n = 0.75, 4
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    summary = summarize_mean([1, 1, 1, 0], binary=True)
    assert summary["ci"] == pytest.approx([low, high]) and summary["value"] == 0.75


def test_mcnemar_exact_against_scipy_and_the_reference_value():
    candidate = [1] * 30 + [0] * 15 + [1] * 40 + [0] * 15
    baseline = [0] * 30 + [1] * 15 + [1] * 40 + [0] * 15
    result = mcnemar_exact(candidate, baseline)
    assert (result["b"], result["c"]) == (30, 15)
    assert result["p_value"] == pytest.approx(binomtest(30, 45, 0.5).pvalue)
    assert result["p_value"] == pytest.approx(0.0357, abs=1e-4)
    assert mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0  # no discordant pairs


def test_paired_bootstrap_for_bleu_equals_sacrebleus_paired_test(monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    refs = [
        "the cat sat on the mat",
        "a dog ran in the park",
        "it is raining today",
        "we like green tea",
        "the model learns fast",
        "data is the new oil",
        "she reads a book",
        "GPUs train networks",
    ] * 3
    base = [
        "the cat is on the mat",
        "a dog runs in a park",
        "it rains today",
        "we like tea",
        "the model learns",
        "data is oil",
        "she reads books",
        "GPUs train",
    ] * 3
    cand = ["the cat sat on the mat", "a dog ran in the park", "it is raining", "we like green tea",
            "the model learns quickly", "data is the new oil", "she reads a book", "GPUs train nets"] * 3  # fmt: skip
    base_items = [EvalItem("", r, [h]) for h, r in zip(base, refs, strict=True)]
    cand_items = [EvalItem("", r, [h]) for h, r in zip(cand, refs, strict=True)]
    base_scores = score_items(base_items, ["bleu"]).keys["bleu"]
    cand_scores = score_items(cand_items, ["bleu"]).keys["bleu"]
    ours = paired_bootstrap(cand_scores.stats, base_scores.stats, bleu_corpus_function("13a"))
    test = PairedTest([("baseline", base), ("candidate", cand)], {"BLEU": BLEU()}, [refs], test_type="bs")
    _signatures, results = test()
    theirs = results["BLEU"][1]
    assert ours["delta"] * 100 == pytest.approx(theirs.score - results["BLEU"][0].score)
    assert ours["p_value"] == pytest.approx(theirs.p_value)
    assert ours["p_value"] < 0.05


def test_paired_bootstrap_for_means_and_identical_runs():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.6, 200)
    cand = np.clip(base + 0.1 + rng.normal(0, 0.05, 200), 0, 1)
    result = paired_bootstrap(cand, base, mean_statistic(200))
    assert result["delta"] == pytest.approx(float(np.mean(cand - base)))
    assert result["p_value"] < 0.01 and result["ci"][0] > 0
    same = paired_bootstrap(base, base, mean_statistic(200))
    assert same["p_value"] == 1.0 and same["delta"] == 0.0


def test_paired_mean_difference_is_tighter_than_independent_ses():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, 100)
    cand = base + 0.02
    paired = paired_mean_difference(cand, base)
    assert paired["delta"] == pytest.approx(0.02)
    assert paired["se"] == pytest.approx(0.0, abs=1e-12)
    assert mean_and_se(cand)[1] > 0.02
