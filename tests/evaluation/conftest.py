"""Fixtures of the evaluation tests: a small eval set from the demo kit, and runs scored from given outputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from platform_core.workspace.demo import demo_records


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def demo_eval_rows(per_category: int = 2, categories=("addition", "subtraction", "general")) -> list[dict]:
    """The demo eval set trimmed to a few items per category (by default addition, subtraction, general)."""
    rows, counts = [], {}
    for row in demo_records()["eval"]:
        if row["category"] in categories and counts.get(row["category"], 0) < per_category:
            counts[row["category"]] = counts.get(row["category"], 0) + 1
            rows.append(row)
    return rows


@pytest.fixture
def eval_set(platform, tmp_path) -> int:
    """A 6-item eval set (2 addition, 2 subtraction, 2 general QA) stored through `eval dataset-add`'s function."""
    from platform_core.evaluation.datasets_adapter import add_eval_dataset

    path = write_jsonl(tmp_path / "demo_eval.jsonl", demo_eval_rows())
    return add_eval_dataset(platform, path, "demo-eval", "six demo items", eval_type="qa")["id"]


def scored_run(platform, dataset_id: int, model_dir: Path, name: str, answers: dict[int, str], metrics=None) -> int:
    """A completed run whose generations are given (the generator is skipped because every item is done)."""
    from platform_core.evaluation.runs import create_run, execute_run, output_dir

    metrics = metrics or ["accuracy", "exact_match", "bleu", "rouge"]
    run_id = create_run(platform, name, str(model_dir), dataset_id, metrics, {"max_new_tokens": 8})
    rows = [{"id": i, "predictions": [text], "finish": ["stop"], "backend": "given"} for i, text in answers.items()]
    write_jsonl(output_dir(platform, run_id) / "generations.jsonl", rows)
    execute_run(platform, run_id)
    return run_id


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    return SimpleNamespace(write_jsonl=write_jsonl, demo_eval_rows=demo_eval_rows, scored_run=scored_run)
