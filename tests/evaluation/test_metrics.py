"""Metric values against the reference libraries called directly and against hand-computed cases."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from sacrebleu.significance import _bootstrap_resample

from platform_core.errors import InvalidInput
from platform_core.evaluation.extract import CJKTokenizer
from platform_core.evaluation.mathcheck import check_pairs, start_math_checks, worker_count
from platform_core.evaluation.metrics import EvalItem, pass_at_k, score_items
from platform_core.evaluation.stats import bootstrap_statistics

EN_REFS = ["The cat sat on the mat.", "A GPU is a processor for parallel math.", "It is raining today."]
EN_HYPS = ["The cat sat on a mat.", "A GPU is a parallel processor.", "It rains today."]
ZH_REFS = ["今天的天气很好", "机器学习是人工智能的一个分支。", "强化学习让模型通过奖励信号改进。"]
ZH_HYPS = ["今天天气很好", "机器学习是人工智能的分支。", "强化学习通过奖励改进模型。"]


def items(hyps, refs, categories=None):
    categories = categories or ["all"] * len(hyps)
    return [EvalItem("", r, [h], c) for h, r, c in zip(hyps, refs, categories, strict=True)]


def test_bleu_equals_sacrebleu_corpus_bleu_english():
    report = score_items(items(EN_HYPS, EN_REFS), ["bleu"])
    assert report.notes["bleu_tokenize"] == "13a"
    assert report.overall["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(EN_HYPS, [EN_REFS]).score)


def test_bleu_equals_sacrebleu_with_zh_tokenizer_for_chinese():
    report = score_items(items(ZH_HYPS, ZH_REFS), ["bleu"])
    assert report.notes["bleu_tokenize"] == "zh"
    expected = sacrebleu.corpus_bleu(ZH_HYPS, [ZH_REFS], tokenize="zh").score
    assert report.overall["bleu"]["value"] == pytest.approx(expected)
    assert sacrebleu.corpus_bleu(ZH_HYPS, [ZH_REFS]).score < expected  # 13a sees whole sentences as one token


def test_chinese_bleu_by_hand():
    """今天天气很好 vs 今天的天气很好, characters as tokens: precisions 6/6, 4/5, 2/4, 1/3; BP = exp(1 - 7/6)."""
    report = score_items(items(["今天天气很好"], ["今天的天气很好"]), ["bleu"])
    expected = 100 * math.exp(1 - 7 / 6) * (1 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert report.overall["bleu"]["value"] == pytest.approx(expected)
    assert expected == pytest.approx(51.15, abs=0.01)
    assert sacrebleu.corpus_bleu(["今天天气很好"], [["今天的天气很好"]]).score == 0.0  # the 13a trap


def test_per_item_bleu_is_sacrebleu_sentence_bleu():
    report = score_items(items(EN_HYPS + ZH_HYPS, EN_REFS + ZH_REFS), ["bleu"])
    for index, (hyp, ref) in enumerate(zip(EN_HYPS + ZH_HYPS, EN_REFS + ZH_REFS, strict=True)):
        expected = sacrebleu.sentence_bleu(hyp, [ref], tokenize="zh").score
        assert report.item_scores(index)["bleu"] == pytest.approx(expected)


def test_bleu_bootstrap_matches_sacrebleus_resampling():
    hyps, refs = EN_HYPS * 4, EN_REFS * 4
    report = score_items(items(hyps, refs), ["bleu"])
    scores = report.keys["bleu"]
    ours = np.sort(bootstrap_statistics(scores.stats, scores.corpus) * 100)
    bleu = BLEU()
    stats = bleu._extract_corpus_statistics(hyps, [refs])
    _seed, resampled = _bootstrap_resample(stats, bleu, 1000)
    assert ours == pytest.approx(np.sort([s.score for s in resampled]), abs=1e-4)  # sacrebleu sums float32
    low, high = report.overall["bleu"]["ci"]
    assert low <= report.overall["bleu"]["value"] <= high


def test_rouge_equals_rouge_score_with_the_cjk_tokenizer():
    hyps, refs = EN_HYPS + ZH_HYPS, EN_REFS + ZH_REFS
    report = score_items(items(hyps, refs), ["rouge"])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CJKTokenizer())
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = np.mean([scorer.score(r, h)[key].fmeasure for h, r in zip(hyps, refs, strict=True)]) * 100
        assert report.overall[key]["value"] == pytest.approx(expected)
    assert report.overall["rouge"]["value"] == report.overall["rougeL"]["value"]


def test_english_rouge_equals_rouge_score_default_tokenizer():
    report = score_items(items(EN_HYPS, EN_REFS), ["rouge"])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = np.mean([scorer.score(r, h)[key].fmeasure for h, r in zip(EN_HYPS, EN_REFS, strict=True)]) * 100
        assert report.overall[key]["value"] == pytest.approx(expected)


def test_chinese_rouge_by_hand():
    """今天天气很好 vs 今天的天气很好: unigrams 6 of 6 / 7 -> F 12/13; bigrams 4 of 5 / 6 -> F 8/11; LCS 6."""
    report = score_items(items(["今天天气很好"], ["今天的天气很好"]), ["rouge"])
    assert report.overall["rouge1"]["value"] == pytest.approx(100 * 12 / 13)
    assert report.overall["rouge2"]["value"] == pytest.approx(100 * 8 / 11)
    assert report.overall["rougeL"]["value"] == pytest.approx(100 * 12 / 13)
    default = rouge_scorer.RougeScorer(["rouge1"]).score("今天天气很好", "今天天气很好")["rouge1"].fmeasure
    assert default == 0.0  # rouge-score's own tokenizer drops Chinese


def test_exact_match_values_and_standard_error():
    refs = ["Paris", "the Eiffel Tower", "北京", "42"]
    hyps = ["paris.", "Eiffel tower", "北京。", "41"]
    report = score_items(items(hyps, refs), ["exact_match"])
    entry = report.overall["exact_match"]
    assert entry["value"] == 0.75
    assert entry["se"] == pytest.approx(np.std([1, 1, 1, 0], ddof=1) / 2)
    assert report.keys["exact_match"].binary


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(1, 0, 1), (1, 1, 1), (5, 0, 1), (5, 2, 1), (5, 2, 3), (5, 2, 4), (5, 4, 2), (10, 3, 5), (10, 9, 2), (200, 13, 10),
     (200, 13, 100), (20, 0, 20), (20, 1, 20)],
)  # fmt: skip
def test_pass_at_k_matches_the_binomial_definition(n, c, k):
    expected = 1.0 if n - c < k else 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_known_values_and_edges():
    assert pass_at_k(200, 13, 10) == pytest.approx(0.49755, abs=1e-5)
    assert pass_at_k(200, 13, 100) == pytest.approx(0.99992, abs=1e-5)
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k: every draw of k contains a pass
    assert pass_at_k(5, 0, 5) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_pass_at_k_scoring_runs_the_tests():
    item = EvalItem(
        "write add",
        "",
        ["def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b", "```python\ndef add(a, b):\n    return b + a\n```"],
        "code",
        "assert add(1, 2) == 3\nassert add(-1, 1) == 0",
    )  # fmt: skip
    report = score_items([item], ["pass@1", "pass@2", "accuracy"], eval_type="code")
    assert report.overall["pass@1"]["value"] == pytest.approx(pass_at_k(3, 2, 1))
    assert report.overall["pass@2"]["value"] == pytest.approx(pass_at_k(3, 2, 2))
    assert report.overall["accuracy"]["value"] == pytest.approx(2 / 3)
    assert report.notes["executions"] == {"passed": 2, "failed": 1, "timeout": 0}
    with pytest.raises(InvalidInput, match="at least 4"):
        score_items([item], ["pass@4"])


def test_accuracy_kinds_choice_number_text():
    data = [
        EvalItem("Q\nA. x\nB. y", "B", ["The answer is (B)."], "mc"),
        EvalItem("Q\nA. x\nB. y", "A", ["答案是 B"], "mc"),
        EvalItem("3+4?", "7", ["3 + 4 = 7"], "math"),
        EvalItem("5-2?", "3", ["it is 4"], "math"),
        EvalItem("capital?", "Paris", ["paris"], "qa"),
    ]
    report = score_items(data, ["accuracy"])
    assert [report.item_scores(i)["accuracy"] for i in range(5)] == [1, 0, 1, 0, 1]
    assert report.notes["answer_kinds"] == {"choice": 2, "number": 2, "text": 1}
    assert report.per_category["mc"]["accuracy"]["value"] == 0.5
    assert report.per_category["qa"]["accuracy"]["value"] == 1.0


def test_math_answers_are_checked_with_math_verify_in_worker_processes():
    data = [
        EvalItem("", "\\frac{1}{2}", ["The answer is $\\boxed{0.5}$"]),
        EvalItem("", "x^2+1", ["so we get $1 + x^2$"]),
        EvalItem("", "\\{1,2,3,4\\}", ["$\\{1,3\\} \\cup \\{2,4\\}$"]),
        EvalItem("", "\\frac{1}{3}", ["$0.333$"]),
        EvalItem("", "10", ["I don't know"]),
    ]
    report = score_items(data, ["accuracy"], eval_type="math")
    assert [report.item_scores(i)["accuracy"] for i in range(5)] == [1, 1, 1, 0, 0]
    assert report.notes["math_verify_checks"] == 4  # the plain "10" with a plain answer is decided by regex


def test_math_checks_work_when_called_from_a_thread():
    """math-verify itself refuses threads (signal.alarm); the pool runs each check on a worker's main thread."""
    out = {}
    thread = threading.Thread(
        target=lambda: out.setdefault("r", start_math_checks([("$\\frac{1}{2}$", "0.5")]).result())
    )
    thread.start()
    thread.join(120)
    assert out["r"] == [True]
    assert check_pairs([("72", "so 72")]) == [True]


def test_small_math_check_batches_use_two_workers_from_two_chunks():
    """145 checks (the benchmark's 2% LaTeX share) used to run on one worker; two cores check them in parallel."""
    assert [worker_count(n, 4) for n in (0, 1, 63, 64, 145, 399, 400, 800, 5000)] == [1, 1, 1, 2, 2, 2, 2, 4, 4]
    assert worker_count(145, 1) == 1  # never more than allowed
    pairs = [(f"$\\frac{{{n}}}{{2}}$", f"the answer is ${n / 2}$") for n in range(70)] + [("$\\sqrt{2}$", "$2$")]
    pending = start_math_checks(pairs, workers=2)
    assert pending.workers == 2
    assert pending.result() == [True] * 70 + [False]


def test_several_samples_per_item_average_within_the_item():
    data = [EvalItem("", "7", ["7", "8", "7", "1"], "a"), EvalItem("", "3", ["3", "3"], "a")]
    report = score_items(data, ["accuracy", "exact_match"])
    assert report.item_scores(0)["accuracy"] == 0.5
    assert report.overall["accuracy"]["value"] == 0.75
    assert not report.keys["accuracy"].binary  # fractions per item: a bootstrap, not McNemar, when compared


def test_flat_output_has_the_contract_shape():
    report = score_items(items(EN_HYPS, EN_REFS, ["a", "a", "b"]), ["accuracy", "bleu", "rouge", "exact_match"])
    flat = report.flat()
    assert set(flat["overall"]) == {"accuracy", "bleu", "rouge", "rouge1", "rouge2", "rougeL", "exact_match"}
    assert set(flat["per_category"]) == {"a", "b"}
    assert 0 <= flat["overall"]["accuracy"] <= 1 and 0 <= flat["overall"]["bleu"] <= 100
    assert flat["per_category"]["b"]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(EN_HYPS[2:], [EN_REFS[2:]]).score)


def test_unknown_metric_is_refused_by_name():
    with pytest.raises(InvalidInput, match="unknown metric 'blue'"):
        score_items(items(EN_HYPS, EN_REFS), ["blue"])


def test_rouge_in_a_worker_process_gives_the_same_scores(monkeypatch):
    from platform_core.evaluation import metrics

    hyps, refs = EN_HYPS + ZH_HYPS, EN_REFS + ZH_REFS
    here = score_items(items(hyps, refs), ["rouge"]).overall
    monkeypatch.setattr(metrics, "PARALLEL_MIN_ITEMS", 2)  # large sets score ROUGE in a worker, beside BLEU
    there = score_items(items(hyps, refs), ["rouge", "bleu"]).overall
    for key in ("rouge1", "rouge2", "rougeL"):
        assert there[key]["value"] == pytest.approx(here[key]["value"])
