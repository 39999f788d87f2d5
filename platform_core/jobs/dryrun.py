"""Reward dry run: score dataset rows against their own reference answer and against a wrong one, before training.

A reward that never fires (every correct answer scores 0: wrong extraction, wrong answer field) or always fires
(wrong answers score 1) shows up here instead of after hours of GPU time.
"""

from __future__ import annotations

import json
import random
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.jobs.specs import RewardSpec
from platform_core.plugins.reward import score_details, to_number


def render_answer(answer: str, extraction: str, json_key: str = "answer") -> str:
    """A response that states `answer` in the form the extraction expects."""
    if extraction == "boxed":
        return f"Let me work it out. The answer is \\boxed{{{answer}}}."
    if extraction == "json":
        return json.dumps({json_key: answer}, ensure_ascii=False)
    return f"Working step by step, the final answer is {answer}"


def wrong_answer(answer: str, rng: random.Random) -> str:
    """An answer that differs from the reference (numbers shifted, text replaced)."""
    number = to_number(answer)
    if number is not None:
        shifted = number + rng.choice([-3, -2, -1, 1, 2, 3])
        return str(int(shifted)) if float(shifted).is_integer() else f"{shifted:g}"
    return "not the answer"


def dry_run(
    platform: Platform, dataset_ref: str | int, reward: RewardSpec | dict[str, Any], rows: int = 8, seed: int = 0
) -> dict[str, Any]:
    """Score `rows` dataset rows with the reward: {rows: [...], correct_rate, wrong_rate, warnings}."""
    from platform_core.datasets.service import load_records

    reward = reward if isinstance(reward, RewardSpec) else RewardSpec(**reward)
    frame = load_records(platform, dataset_ref, valid_only=True)
    if reward.answer_field not in frame.columns:
        raise InvalidInput(
            f"answer field: the dataset has no column {reward.answer_field!r} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    rng = random.Random(seed)
    picks = rng.sample(range(len(frame)), min(rows, len(frame)))
    settings = reward.model_dump(exclude={"answer_field"})
    out = []
    for index in picks:
        record = frame.iloc[index]
        truth = str(record[reward.answer_field])
        right_text = render_answer(truth, reward.extraction, reward.json_key)
        wrong_text = render_answer(wrong_answer(truth, rng), reward.extraction, reward.json_key)
        right = score_details(right_text, truth, data_source=str(record.get("data_source", "")), **settings)
        wrong = score_details(wrong_text, truth, data_source=str(record.get("data_source", "")), **settings)
        out.append(
            {
                "row": int(index),
                "prompt": str(record.get("prompt", ""))[:200],
                "reference": truth,
                "correct_response": right_text,
                "correct_extracted": right["extracted"],
                "correct_score": right["score"],
                "wrong_response": wrong_text,
                "wrong_extracted": wrong["extracted"],
                "wrong_score": wrong["score"],
            }
        )
    correct_rate = sum(r["correct_score"] >= 0.5 for r in out) / max(1, len(out))
    wrong_rate = sum(r["wrong_score"] >= 0.5 for r in out) / max(1, len(out))
    warnings = []
    if correct_rate < 0.5:
        warnings.append("never_fires")
    if wrong_rate > 0.5:
        warnings.append("always_fires")
    return {"rows": out, "correct_rate": correct_rate, "wrong_rate": wrong_rate, "warnings": warnings}
