"""Metrics, a registry by name. Each scores items (prompt, reference, predictions, category, tests) and reports the
value with its standard error and 95% interval, overall and per category, plus a score per item.

| name          | keys                              | scale  | per item                                  | SE / interval         |
|---------------|-----------------------------------|--------|-------------------------------------------|-----------------------|
| accuracy      | accuracy                          | 0-1    | choice letter / number / math-verify / EM | SE, Wilson (0/1)      |
| exact_match   | exact_match                       | 0-1    | normalised EM (Chinese variant for CJK)   | SE, Wilson (0/1)      |
| bleu          | bleu                              | 0-100  | sentence BLEU (effective order)           | bootstrap over items  |
| rouge         | rouge (= rougeL), rouge1, rouge2, rougeL | 0-100 | F1 with the CJK-keeping tokenizer   | SE, normal            |
| pass@k        | pass@<k>                          | 0-1    | 1 - C(n-c,k)/C(n,k) (stable product form) | SE, normal/Wilson     |

With several predictions per item, an item's score is the mean over its predictions (BLEU sums their statistics),
so items, not samples, are the unit of every SE and paired test.

    report = score_items(items, ["accuracy", "bleu", "rouge"], eval_type="qa")
    report.flat()   # {"overall": {"accuracy": 0.5, "bleu": 31.2, ...}, "per_category": {...}}
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from platform_core.errors import InvalidInput
from platform_core.evaluation import extract, stats
from platform_core.evaluation.mathcheck import PendingChecks, start_math_checks

UNCATEGORIZED = "uncategorized"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples of which c passed: 1 - C(n-c, k)/C(n, k), product form."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass
class EvalItem:
    """One eval question with the model's predictions (several when sampling n per question)."""

    prompt: str
    reference: str
    predictions: list[str]
    category: str = UNCATEGORIZED
    tests: str | None = None


@dataclass
class KeyScores:
    """Per-item scores of one result key, and how to aggregate them."""

    key: str
    values: np.ndarray  # per item, on the 0-1 scale (BLEU: sentence BLEU / 100)
    scale: float = 1.0
    binary: bool = False
    stats: np.ndarray | None = None  # per-item sufficient statistics of a corpus metric
    corpus: Callable[[np.ndarray], np.ndarray] | None = None  # rows of summed stats -> values on the 0-1 scale

    def summarize(self, index: np.ndarray | None = None) -> dict[str, Any]:
        """Return {value, se, ci, n} over all items or a subset, on the reported scale."""
        if self.corpus is None:
            values = self.values if index is None else self.values[index]
            return stats.summarize_mean(values, binary=self.binary, scale=self.scale)
        item_stats = self.stats if index is None else self.stats[index]
        if len(item_stats) == 0:
            return {"value": None, "se": None, "ci": None, "n": 0}
        value = float(self.corpus(item_stats.sum(axis=0)[None, :])[0]) * self.scale
        se, ci = stats.bootstrap_summary(item_stats, self.corpus)
        return {
            "value": value,
            "se": None if se is None else se * self.scale,
            "ci": None if ci is None else [ci[0] * self.scale, ci[1] * self.scale],
            "n": int(len(item_stats)),
        }


@dataclass
class ScoringContext:
    """Shared state of one scoring pass: the eval type, code execution results, pending math checks."""

    items: list[EvalItem]
    eval_type: str | None = None
    k: int = 1
    sandbox_options: dict[str, Any] = field(default_factory=dict)
    code_results: list[list[bool]] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def code_passes(self) -> list[list[bool]]:
        """Run every item's predictions against its tests once (in the sandbox); return pass flags per item."""
        if self.code_results is None:
            from platform_core.evaluation.sandbox import Sandbox

            programs, owners = [], []
            for number, item in enumerate(self.items):
                if not (item.tests or "").strip():
                    raise InvalidInput(f"item {number + 1}: code metrics need a `tests` field with the reference tests")
                for prediction in item.predictions:
                    programs.append(extract.extract_code(prediction) + "\n\n" + item.tests + "\n")
                    owners.append(number)
            with Sandbox(**self.sandbox_options) as sandbox:
                results = sandbox.run_many(programs)
                self.notes["sandbox"] = sandbox.isolation
                self.notes["sandbox_limits"] = {
                    "timeout_s": sandbox.timeout_s,
                    "memory_mb": sandbox.limits["RLIMIT_AS"] >> 20,
                }
            passes: list[list[bool]] = [[] for _ in self.items]
            for owner, result in zip(owners, results, strict=True):
                passes[owner].append(result.passed)
            self.notes["executions"] = {
                status: sum(1 for r in results if r.status == status) for status in ("passed", "failed", "timeout")
            }
            self.code_results = passes
        return self.code_results


class Metric:
    """A metric: `start` may launch background work for all items, `compute` returns KeyScores per result key."""

    name: str = ""
    keys: tuple[str, ...] = ()

    def __init__(self, **params: Any):
        self.params = params

    def start(self, context: ScoringContext) -> None:
        """Begin slow work early (math checks run in other processes while other metrics compute)."""

    def compute(self, context: ScoringContext) -> list[KeyScores]:
        raise NotImplementedError


METRICS: dict[str, type[Metric]] = {}


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Add a metric class to the registry under its `name`."""
    METRICS[cls.name] = cls
    return cls


def _item_means(per_prediction: Iterable[list[float]]) -> np.ndarray:
    return np.array([float(np.mean(scores)) if scores else 0.0 for scores in per_prediction], dtype=float)


def _all_single(items: list[EvalItem]) -> bool:
    return all(len(item.predictions) == 1 for item in items)


# -- accuracy ------------------------------------------------------------------------------------------------------
def answer_kind(item: EvalItem, eval_type: str | None) -> str:
    """How accuracy checks an item: code, choice, number, math or text (see notes/evaluation.md)."""
    if eval_type == "code" or (eval_type is None and item.tests):
        return "code"
    if eval_type == "multiple_choice":
        return "choice"
    numeric = extract.parse_number(item.reference) is not None
    if eval_type == "math":
        return "number" if numeric else "math"
    if extract.reference_choice(item.reference):
        return "choice"
    if numeric:
        return "number"
    if re.search(r"\\[a-zA-Z]+|\$", item.reference):
        return "math"
    return "text"


@register_metric
class Accuracy(Metric):
    """Correct answers: the choice letter, the number, the math expression (math-verify) or the normalised text."""

    name = "accuracy"
    keys = ("accuracy",)

    def start(self, context: ScoringContext) -> None:
        self.kinds = [answer_kind(item, context.eval_type) for item in context.items]
        self.decided: list[list[bool | None]] = []
        pairs: list[tuple[str, str]] = []
        self.math_slots: list[tuple[int, int]] = []
        for number, (item, kind) in enumerate(zip(context.items, self.kinds, strict=True)):
            row: list[bool | None] = []
            for position, prediction in enumerate(item.predictions):
                row.append(self._decide(item, kind, prediction, context.eval_type))
                if row[-1] is None and kind != "code":
                    pairs.append((item.reference, extract.strip_reasoning(prediction)))
                    self.math_slots.append((number, position))
            self.decided.append(row)
        self.pending: PendingChecks | None = start_math_checks(pairs) if pairs else None
        context.notes["answer_kinds"] = {k: self.kinds.count(k) for k in sorted(set(self.kinds))}
        context.notes["math_verify_checks"] = len(pairs)

    @staticmethod
    def _decide(item: EvalItem, kind: str, prediction: str, eval_type: str | None) -> bool | None:
        """Return the verdict when a regex decides it, None when math-verify (or the sandbox) must."""
        if kind == "choice":
            letters = extract.choice_letters(item.prompt, item.reference)
            gold = extract.reference_choice(item.reference)
            return gold is not None and extract.extract_choice(prediction, letters) == gold
        if kind == "number":
            answer = extract.strip_reasoning(prediction)
            if eval_type == "math" and extract.LATEX_MARKERS.search(answer):
                return None
            return extract.numbers_equal(extract.extract_number(answer), extract.parse_number(item.reference))
        if kind == "text":
            return extract.exact_match(prediction, item.reference)
        if kind == "math" and extract.same_math_text(prediction, item.reference):
            return True  # literally the reference: math-verify would agree, without parsing
        return None

    def compute(self, context: ScoringContext) -> list[KeyScores]:
        if self.pending is not None:
            for (number, position), verdict in zip(self.math_slots, self.pending.result(), strict=True):
                self.decided[number][position] = verdict
        if "code" in self.kinds:
            passes = context.code_passes()
            for number, kind in enumerate(self.kinds):
                if kind == "code":
                    self.decided[number] = list(passes[number])
        values = _item_means([[1.0 if v else 0.0 for v in row] for row in self.decided])
        return [KeyScores("accuracy", values, binary=_all_single(context.items))]


@register_metric
class ExactMatch(Metric):
    """Normalised exact match (SQuAD normalisation; LongBench's Chinese variant when the reference has CJK)."""

    name = "exact_match"
    keys = ("exact_match",)

    def compute(self, context: ScoringContext) -> list[KeyScores]:
        values = _item_means(
            [
                [1.0 if extract.exact_match(p, item.reference) else 0.0 for p in item.predictions]
                for item in context.items
            ]
        )
        return [KeyScores("exact_match", values, binary=_all_single(context.items))]


# -- BLEU ----------------------------------------------------------------------------------------------------------
def bleu_tokenizer(references: Iterable[str]) -> str:
    """sacrebleu tokenizer for a corpus: "zh" when any reference has CJK characters (13a elsewhere), else "13a"."""
    return "zh" if any(extract.has_cjk(r) for r in references) else "13a"


def bleu_corpus_function(tokenize: str) -> Callable[[np.ndarray], np.ndarray]:
    """Return the statistic "corpus BLEU / 100" of rows of summed sufficient statistics (for bootstraps)."""
    from sacrebleu.metrics import BLEU

    corpus_bleu = BLEU(tokenize=tokenize)

    def corpus(sums: np.ndarray) -> np.ndarray:
        return np.array([corpus_bleu._compute_score_from_stats(row).score / 100 for row in sums])

    return corpus


@register_metric
class Bleu(Metric):
    """sacrebleu corpus BLEU (0-100) from per-item sufficient statistics; tokenize="zh" for Chinese corpora."""

    name = "bleu"
    keys = ("bleu",)

    def compute(self, context: ScoringContext) -> list[KeyScores]:
        from sacrebleu.metrics import BLEU

        items = context.items
        tokenize = self.params.get("tokenize") or bleu_tokenizer(item.reference for item in items)
        corpus_bleu = BLEU(tokenize=tokenize)
        sentence_bleu = BLEU(tokenize=tokenize, effective_order=True)
        hypotheses, references, owners = [], [], []
        for number, item in enumerate(items):
            for prediction in item.predictions:
                hypotheses.append(extract.strip_reasoning(prediction))
                references.append(item.reference)
                owners.append(number)
        width = 2 + 2 * corpus_bleu.max_ngram_order
        item_stats = np.zeros((len(items), width))
        if hypotheses:
            segment_stats = np.asarray(corpus_bleu._extract_corpus_statistics(hypotheses, [references]), dtype=float)
            np.add.at(item_stats, np.asarray(owners), segment_stats)
        values = np.array([sentence_bleu._compute_score_from_stats(row).score / 100 for row in item_stats])
        context.notes["bleu_tokenize"] = tokenize
        context.notes["bleu_signature"] = str(corpus_bleu.get_signature())
        return [KeyScores("bleu", values, scale=100.0, stats=item_stats, corpus=bleu_corpus_function(tokenize))]


# -- ROUGE ---------------------------------------------------------------------------------------------------------
def rouge_item_scores(pairs: list[tuple[str, list[str]]]) -> dict[str, list[float]]:
    """Per item, the mean ROUGE-1/2/L F1 over its predictions (rouge-score, CJK-keeping tokenizer, target first)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=extract.CJKTokenizer())
    out: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
    for reference, predictions in pairs:
        rows: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
        for prediction in predictions:
            result = scorer.score(reference, prediction)
            for rouge_type in ROUGE_TYPES:
                rows[rouge_type].append(result[rouge_type].fmeasure)
        for rouge_type in ROUGE_TYPES:
            out[rouge_type].append(float(np.mean(rows[rouge_type])) if rows[rouge_type] else 0.0)
    return out


# Below this, the worker's start-up (about 1 s: rouge-score imports nltk) costs more than it saves.
PARALLEL_MIN_ITEMS = 5000


@register_metric
class Rouge(Metric):
    """ROUGE-1/2/L F1 (0-100) with rouge-score and the CJK-keeping tokenizer; "rouge" is ROUGE-L.

    On large sets it runs in a worker process, in parallel with BLEU in this one."""

    name = "rouge"
    keys = ("rouge", "rouge1", "rouge2", "rougeL")

    def start(self, context: ScoringContext) -> None:
        self.pairs = [(i.reference, [extract.strip_reasoning(p) for p in i.predictions]) for i in context.items]
        self.future = None
        if len(self.pairs) >= PARALLEL_MIN_ITEMS and (os.cpu_count() or 1) > 1:
            import concurrent.futures
            import multiprocessing

            self.pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self.future = self.pool.submit(rouge_item_scores, self.pairs)

    def compute(self, context: ScoringContext) -> list[KeyScores]:
        if self.future is not None:
            scores = self.future.result()
            self.pool.shutdown()
        else:
            scores = rouge_item_scores(self.pairs)
        means = {t: np.asarray(scores[t], dtype=float) for t in ROUGE_TYPES}
        return [KeyScores("rouge", means["rougeL"], scale=100.0)] + [
            KeyScores(t, means[t], scale=100.0) for t in ROUGE_TYPES
        ]


# -- pass@k --------------------------------------------------------------------------------------------------------
@register_metric
class PassAtK(Metric):
    """pass@k: each prediction run against the item's tests in the sandbox; the unbiased estimator per item."""

    name = "pass@k"
    keys = ("pass@k",)

    def compute(self, context: ScoringContext) -> list[KeyScores]:
        k = int(self.params.get("k") or context.k)
        if k < 1:
            raise InvalidInput(f"pass@k: k must be at least 1, got {k}")
        for number, item in enumerate(context.items):
            if len(item.predictions) < k:
                raise InvalidInput(
                    f"pass@{k}: item {number + 1} has {len(item.predictions)} predictions; every item needs at least "
                    f"{k} (generate with samples per question >= k)"
                )
        passes = context.code_passes()
        values = np.array([pass_at_k(len(row), sum(row), k) for row in passes], dtype=float)
        binary = all(len(row) == 1 for row in passes) and k == 1
        return [KeyScores(f"pass@{k}", values, binary=binary)]


# -- scoring -------------------------------------------------------------------------------------------------------
_PASS_AT = re.compile(r"^pass@(\d+|k)$")


def resolve_metrics(names: Iterable[str], k: int = 1) -> list[Metric]:
    """Return metric instances for names like "accuracy", "rouge", "rougeL", "pass@k", "pass@5" (duplicates merged)."""
    chosen: dict[str, Metric] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        lowered = name.lower().replace("-", "_")
        if lowered in ("rouge1", "rouge2", "rougel", "rouge_l"):
            lowered = "rouge"
        if lowered in ("em", "exactmatch"):
            lowered = "exact_match"
        match = _PASS_AT.match(lowered)
        if match:
            value = k if match.group(1) == "k" else int(match.group(1))
            chosen[f"pass@{value}"] = PassAtK(k=value)
            continue
        if lowered not in METRICS:
            known = ", ".join(sorted(METRICS))
            raise InvalidInput(f"metrics: unknown metric {name!r} (known: {known}; pass@k takes --k or pass@5)")
        chosen.setdefault(lowered, METRICS[lowered]())
    if not chosen:
        raise InvalidInput("metrics: choose at least one metric")
    return list(chosen.values())


@dataclass
class ScoreReport:
    """Scores of one set of items: per key the per-item scores, overall and per-category summaries."""

    keys: dict[str, KeyScores]
    categories: list[str]
    overall: dict[str, dict[str, Any]]
    per_category: dict[str, dict[str, dict[str, Any]]]
    notes: dict[str, Any]

    def flat(self) -> dict[str, Any]:
        """The CLI contract: {"overall": {key: value}, "per_category": {category: {key: value}}} plus SE and CI."""
        return {
            "overall": {k: v["value"] for k, v in self.overall.items()},
            "per_category": {c: {k: v["value"] for k, v in m.items()} for c, m in self.per_category.items()},
            "stderr": {k: v["se"] for k, v in self.overall.items()},
            "ci95": {k: v["ci"] for k, v in self.overall.items()},
            "items": len(self.categories),
            "notes": self.notes,
        }

    def item_scores(self, index: int) -> dict[str, float]:
        """Return one item's scores on the reported scales."""
        return {key: float(s.values[index] * s.scale) for key, s in self.keys.items()}

    def item_stats(self, index: int) -> dict[str, list[float]]:
        """Return one item's sufficient statistics of the corpus metrics (kept for paired tests)."""
        return {key: s.stats[index].tolist() for key, s in self.keys.items() if s.stats is not None}


def score_items(
    items: list[EvalItem],
    metric_names: Iterable[str],
    eval_type: str | None = None,
    k: int = 1,
    sandbox_options: dict[str, Any] | None = None,
) -> ScoreReport:
    """Score items with the named metrics; return overall and per-category values with SE and 95% intervals."""
    if not items:
        raise InvalidInput("nothing to score: no items")
    metrics = resolve_metrics(metric_names, k=k)
    context = ScoringContext(items, eval_type=eval_type, k=k, sandbox_options=sandbox_options or {})
    for metric in metrics:
        metric.start(context)
    keys: dict[str, KeyScores] = {}
    for metric in sorted(metrics, key=lambda m: m.name == "accuracy"):  # accuracy last: its math checks run meanwhile
        for scores in metric.compute(context):
            keys[scores.key] = scores
    order = [key for metric in metrics for key in _result_keys(metric, keys)]
    keys = {key: keys[key] for key in order}
    categories = [item.category or UNCATEGORIZED for item in items]
    overall = {key: scores.summarize() for key, scores in keys.items()}
    per_category: dict[str, dict[str, dict[str, Any]]] = {}
    labels = np.asarray(categories, dtype=object)
    for category in sorted(set(categories)):
        index = np.flatnonzero(labels == category)
        per_category[category] = {key: scores.summarize(index) for key, scores in keys.items()}
    return ScoreReport(keys, categories, overall, per_category, context.notes)


def _result_keys(metric: Metric, keys: dict[str, KeyScores]) -> list[str]:
    if isinstance(metric, PassAtK):
        return [f"pass@{metric.params['k']}"]
    return [key for key in metric.keys if key in keys]
