"""Comparisons between runs on the same eval set: a run against a baseline (per-metric delta with a paired test,
overall and per category) and 2-5 runs side by side (values per metric and category, the items where they disagree).

Runs are paired by item id over the items both have scored; a paired test is McNemar's exact test for 0/1 scores
and a paired bootstrap otherwise (BLEU from resampled sufficient statistics, means for ROUGE and the rest).

    compare_to_baseline(platform, run_id=7, baseline_id=6)["metrics"]["accuracy"]
    # {"value": 0.62, "baseline": 0.48, "delta": 0.14, "test": "mcnemar_exact", "p_value": 0.003, "significant": True}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.evaluation import stats
from platform_core.evaluation.metrics import KeyScores, bleu_corpus_function
from platform_core.evaluation.runs import get_run, load_samples

MAX_RUNS = 5


def _scored(platform: Platform, run_id: int) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    run = get_run(platform, run_id)
    if not run.get("summary") or "overall" not in run["summary"]:
        raise InvalidInput(f"eval run {run['id']} ({run['name']}) has no scores yet")
    return run, {s["id"]: s for s in load_samples(platform, run["id"])}


def _common_items(runs: list[dict[str, Any]], samples: list[dict[int, dict[str, Any]]]) -> list[int]:
    """Item ids every run scored, after checking the runs share an eval set (same prompts and references)."""
    ids = sorted(set.intersection(*(set(s) for s in samples)))
    if not ids:
        raise InvalidInput("the runs have no scored items in common")
    first = samples[0]
    for run, other in zip(runs[1:], samples[1:], strict=True):
        for item_id in ids:
            a, b = first[item_id], other[item_id]
            if a["prompt"] != b["prompt"] or a["reference"] != b["reference"]:
                raise InvalidInput(
                    f"runs {runs[0]['id']} and {run['id']} were not made on the same eval set (item {item_id} differs)"
                )
    return ids


def _key_scores(run: dict[str, Any], samples: dict[int, dict[str, Any]], ids: list[int], key: str) -> KeyScores:
    """Rebuild a metric key's per-item scores for the given items from a run's samples."""
    summary = run["summary"]
    scale = float(summary["scales"].get(key, 1.0))
    values = np.array([samples[i]["scores"][key] for i in ids], dtype=float) / scale
    binary = bool(summary["binary"].get(key))
    if key == "bleu":
        tokenize = summary.get("notes", {}).get("bleu_tokenize", "13a")
        item_stats = np.array([samples[i]["stats"]["bleu"] for i in ids], dtype=float)
        return KeyScores(key, values, scale, binary, item_stats, bleu_corpus_function(tokenize))
    return KeyScores(key, values, scale, binary)


def _common_keys(runs: list[dict[str, Any]]) -> list[str]:
    keys = list(runs[0]["summary"]["keys"])
    for run in runs[1:]:
        keys = [k for k in keys if k in run["summary"]["keys"]]
    return keys


def paired_test(candidate: KeyScores, baseline: KeyScores, alpha: float = stats.ALPHA) -> dict[str, Any]:
    """Return value, baseline, delta (reported scale), the paired test's p-value and whether it is significant."""
    scale = candidate.scale
    n = len(candidate.values)
    value = candidate.summarize()["value"]
    base = baseline.summarize()["value"]
    if candidate.binary and baseline.binary:
        test = stats.mcnemar_exact(candidate.values, baseline.values)
        paired = stats.paired_mean_difference(candidate.values, baseline.values)
        ci = None if paired["ci"] is None else [paired["ci"][0] * scale, paired["ci"][1] * scale]
    elif candidate.corpus is not None:
        test = stats.paired_bootstrap(candidate.stats, baseline.stats, candidate.corpus)
        ci = [test["ci"][0] * scale, test["ci"][1] * scale]
    else:
        test = stats.paired_bootstrap(candidate.values, baseline.values, stats.mean_statistic(n))
        ci = [test["ci"][0] * scale, test["ci"][1] * scale]
    return {
        "value": value,
        "baseline": base,
        "delta": None if value is None or base is None else value - base,
        "ci": ci,
        "test": test["test"],
        "p_value": test["p_value"],
        "significant": bool(test["p_value"] < alpha),
        "n": n,
        **({"b": test["b"], "c": test["c"]} if "b" in test else {}),
    }


def compare_to_baseline(platform: Platform, run_id: int, baseline_id: int, alpha: float = stats.ALPHA) -> dict:
    """Compare a run with a baseline run on the same eval set: per metric key, overall and per category."""
    run, run_samples = _scored(platform, run_id)
    base, base_samples = _scored(platform, baseline_id)
    if run["id"] == base["id"]:
        raise InvalidInput("choose a different run as the baseline")
    ids = _common_items([run, base], [run_samples, base_samples])
    keys = _common_keys([run, base])
    categories: dict[str, list[int]] = {}
    for item_id in ids:
        categories.setdefault(run_samples[item_id]["category"], []).append(item_id)
    result = {
        "run": run["id"],
        "baseline": base["id"],
        "baseline_name": base["name"],
        "items": len(ids),
        "alpha": alpha,
        "metrics": {},
        "per_category": {},
    }
    for key in keys:
        result["metrics"][key] = paired_test(
            _key_scores(run, run_samples, ids, key), _key_scores(base, base_samples, ids, key), alpha
        )
    for category, cat_ids in sorted(categories.items()):
        result["per_category"][category] = {
            key: paired_test(
                _key_scores(run, run_samples, cat_ids, key), _key_scores(base, base_samples, cat_ids, key), alpha
            )
            for key in keys
        }
    return result


def prediction_text(predictions: list[str]) -> str:
    """An item's predictions as one text: the prediction itself, or "[1] ... | [2] ..." when there are several."""
    if len(predictions) <= 1:
        return (predictions or [""])[0]
    return " | ".join(f"[{number}] {text}" for number, text in enumerate(predictions, start=1))


def disagreement_metrics(platform: Platform, run_ids: list[int]) -> tuple[list[str], str]:
    """The metric keys all the runs scored and the default one for disagreements (the first 0/1 metric)."""
    runs = [_scored(platform, run_id)[0] for run_id in run_ids]
    keys = _common_keys(runs)
    if not keys:
        raise InvalidInput("the runs have no metric in common")
    return keys, _disagreement_key(keys, runs, None)


def _disagreement_key(keys: list[str], runs: list[dict[str, Any]], metric: str | None) -> str:
    if metric:
        if metric not in keys:
            raise InvalidInput(f"metric {metric!r} is not scored in all of these runs (common: {', '.join(keys)})")
        return metric
    binary = [k for k in keys if all(r["summary"]["binary"].get(k) for r in runs)]
    return (binary or keys)[0]


def compare_runs(
    platform: Platform, run_ids: list[int], metric: str | None = None, max_items: int = 500
) -> dict[str, Any]:
    """Compare 2-5 runs on one eval set: values per metric and category, tests against the first run, and the
    items where the runs' scores on `metric` (default: the first 0/1 metric) differ, answers side by side."""
    unique = list(dict.fromkeys(int(r) for r in run_ids))
    if not 2 <= len(unique) <= MAX_RUNS:
        raise InvalidInput(f"compare 2 to {MAX_RUNS} different runs, got {len(unique)}")
    loaded = [_scored(platform, run_id) for run_id in unique]
    runs = [run for run, _ in loaded]
    samples = [s for _, s in loaded]
    ids = _common_items(runs, samples)
    keys = _common_keys(runs)
    if not keys:
        raise InvalidInput("the runs have no metric in common")
    scores = {run["id"]: {key: _key_scores(run, s, ids, key) for key in keys} for run, s in loaded}
    overall = {key: {run["id"]: scores[run["id"]][key].summarize() for run in runs} for key in keys}
    categories = sorted({samples[0][i]["category"] for i in ids})
    category_index = {c: np.array([n for n, i in enumerate(ids) if samples[0][i]["category"] == c]) for c in categories}
    per_category = {
        c: {
            key: {run["id"]: scores[run["id"]][key].summarize(category_index[c])["value"] for run in runs}
            for key in keys
        }
        for c in categories
    }
    first = runs[0]["id"]
    versus_first = {
        run["id"]: {key: paired_test(scores[run["id"]][key], scores[first][key]) for key in keys} for run in runs[1:]
    }
    key = _disagreement_key(keys, runs, metric)
    disagreements = []
    for position, item_id in enumerate(ids):
        values = {
            run["id"]: float(scores[run["id"]][key].values[position] * scores[run["id"]][key].scale) for run in runs
        }
        if len(set(round(v, 9) for v in values.values())) > 1:
            sample = samples[0][item_id]
            disagreements.append(
                {
                    "id": item_id,
                    "category": sample["category"],
                    "prompt": sample["prompt"],
                    "reference": sample["reference"],
                    "predictions": {run["id"]: prediction_text(s[item_id]["predictions"]) for run, s in loaded},
                    "scores": values,
                }
            )
    return {
        "runs": [{"id": r["id"], "name": r["name"], "model": r["model_ref"]} for r in runs],
        "items": len(ids),
        "keys": keys,
        "overall": overall,
        "per_category": per_category,
        "versus_first": versus_first,
        "disagreement_metric": key,
        "disagreements": disagreements[:max_items],
        "disagreement_count": len(disagreements),
    }
