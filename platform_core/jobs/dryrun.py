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


def training_rows(platform: Platform, dataset_ref: str | int) -> list[dict[str, Any]]:
    """The rows RL training scores, as the engines read them: the dataset converted to verl's RL format.

    The reference answer is `reward_model.ground_truth`, which the conversion takes from the dataset's field
    configuration (`answer_field`, a dotted path such as `reward_model.ground_truth` for a file already in verl's
    format); TRL's `solution` column is the same values. Each row: {row, prompt, reference, data_source, extra_info}.
    """
    import pyarrow.parquet as pq

    from platform_core.datasets.service import convert_for, get_dataset

    record = get_dataset(platform, dataset_ref)
    if record["type"] not in ("grpo", "ppo"):
        raise InvalidInput(
            f"reward dry run: dataset {record['name']!r} is a {record['type'].upper()} dataset; "
            "the reward scores GRPO/PPO datasets (a prompt and an answer)"
        )
    table = pq.read_table(convert_for(platform, record["id"], "verl_rl"))
    rows = []
    for data_source, reward_model, extra_info in zip(
        table.column("data_source").to_pylist(),
        table.column("reward_model").to_pylist(),
        table.column("extra_info").to_pylist(),
        strict=True,
    ):
        rows.append(
            {
                "row": int(extra_info["index"]),
                "prompt": extra_info.get("question") or "",
                "reference": reward_model["ground_truth"],
                "data_source": data_source,
                "extra_info": extra_info,
            }
        )
    if not any(r["reference"] for r in rows):
        answer = (record.get("field_config") or {}).get("answer_field") or "-"
        raise InvalidInput(
            f"answer field: dataset {record['name']!r} has no answer in any row (answer field {answer!r} of its "
            "field configuration); set the answer field on the Datasets page"
        )
    return rows


def dry_run(
    platform: Platform, dataset_ref: str | int, reward: RewardSpec | dict[str, Any], rows: int = 8, seed: int = 0
) -> dict[str, Any]:
    """Score `rows` training rows with the reward: {rows: [...], correct_rate, wrong_rate, warnings}.

    The rows and their reference answers are those training sees (`training_rows`), not the raw file's columns.
    """
    reward = reward if isinstance(reward, RewardSpec) else RewardSpec(**reward)
    records = training_rows(platform, dataset_ref)
    rng = random.Random(seed)
    picks = sorted(rng.sample(range(len(records)), min(rows, len(records))))
    settings = reward.model_dump()
    out = []
    for index in picks:
        record = records[index]
        truth = record["reference"]
        context = {"data_source": record["data_source"], "extra_info": record["extra_info"]}
        right_text = render_answer(truth, reward.extraction, reward.json_key)
        wrong_text = render_answer(wrong_answer(truth, rng), reward.extraction, reward.json_key)
        right = score_details(right_text, truth, **context, **settings)
        wrong = score_details(wrong_text, truth, **context, **settings)
        out.append(
            {
                "row": record["row"],
                "prompt": record["prompt"][:200],
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
