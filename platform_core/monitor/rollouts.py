"""Sampled rollouts of RL runs: verl's `trainer.rollout_data_dir` dumps (`rollouts/<step>.jsonl`) and TRL's equivalent.

Each line is one sample: `input`, `output`, `gts`, `score`, `step`, plus extra reward keys (verl's reward_extra_info).
TRL-style names (`prompt`, `completion`, `solution`, `reward`) are accepted too. The browser filters by reward range
and step, and groups the samples of a prompt (GRPO generates several per prompt) with their mean and spread.

    files = rollout_files(LocalFiles(), ["/runs/7/attempt-1/rollouts"])     # {step: path}
    rows = read_rollouts(LocalFiles(), [files[10]])
    groups = group_by_prompt(filter_rollouts(rows, min_score=0.5))
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass

from platform_core.monitor.files import FileAccess

STEP_FILE = re.compile(r"^(\d+)\.jsonl$")
FIELD_NAMES = {
    "input": ("input", "prompt", "question"),
    "output": ("output", "completion", "response"),
    "gts": ("gts", "ground_truth", "solution", "answer", "reference"),
    "score": ("score", "reward", "scores"),
}
MAX_FILE_BYTES = 64 * 1024 * 1024


def rollout_files(access: FileAccess, directories: list[str]) -> dict[int, str]:
    """Return {step: path} of the `<step>.jsonl` files in the directories (a later directory wins a step)."""
    found: dict[int, str] = {}
    for directory in directories:
        for name in access.listdir(directory):
            match = STEP_FILE.match(name)
            if match:
                found[int(match.group(1))] = access.join(directory, name)
    return dict(sorted(found.items()))


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _score(value) -> float:
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def normalize_rollout(record: dict, step: int | None = None) -> dict:
    """Return one sample as {step, input, output, gts, score, extra: {other numeric keys}}."""
    row: dict = {"step": int(record.get("step", step if step is not None else -1))}
    used = {"step"}
    for target, names in FIELD_NAMES.items():
        name = next((n for n in names if n in record), None)
        if name is not None:
            used.add(name)
        value = record.get(name) if name else None
        row[target] = _score(value) if target == "score" else _text(value)
    row["extra"] = {
        k: float(v)
        for k, v in record.items()
        if k not in used and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return row


def read_rollouts(
    access: FileAccess, paths: list[str], max_rows: int = 20_000, max_bytes: int = MAX_FILE_BYTES
) -> list[dict]:
    """Return the normalized samples of the given rollout files (at most `max_rows`, `max_bytes` read per file)."""
    rows: list[dict] = []
    for path in paths:
        match = STEP_FILE.match(path.replace("\\", "/").rsplit("/", 1)[-1])
        step = int(match.group(1)) if match else None
        data = access.read(path, 0, max_bytes)
        complete = data if len(data) < max_bytes else data[: data.rfind(b"\n") + 1]
        for line in complete.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                rows.append(normalize_rollout(record, step))
                if len(rows) >= max_rows:
                    return rows
    return rows


def filter_rollouts(
    rows: list[dict],
    min_score: float | None = None,
    max_score: float | None = None,
    steps: set[int] | None = None,
    text: str | None = None,
) -> list[dict]:
    """Return the samples whose score lies in [min_score, max_score], at the given steps, containing `text`."""
    needle = text.lower() if text else None
    out = []
    for row in rows:
        score = row["score"]
        if min_score is not None and not score >= min_score:
            continue
        if max_score is not None and not score <= max_score:
            continue
        if steps is not None and row["step"] not in steps:
            continue
        if needle and needle not in row["input"].lower() and needle not in row["output"].lower():
            continue
        out.append(row)
    return out


@dataclass
class PromptGroup:
    """The samples of one prompt at one step, with the statistics GRPO's advantage is built from."""

    step: int
    input: str
    gts: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    rows: list[dict]


def group_by_prompt(rows: list[dict]) -> list[PromptGroup]:
    """Group samples by (step, prompt); std is the population std (0 for a group where every sample scored the same)."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["step"], row["input"]), []).append(row)
    out = []
    for (step, prompt), members in groups.items():
        scores = [r["score"] for r in members if math.isfinite(r["score"])]
        out.append(
            PromptGroup(
                step,
                prompt,
                members[0]["gts"],
                len(members),
                statistics.fmean(scores) if scores else math.nan,
                statistics.pstdev(scores) if len(scores) > 1 else 0.0 if scores else math.nan,
                min(scores) if scores else math.nan,
                max(scores) if scores else math.nan,
                members,
            )
        )
    return out


def reward_stats_by_step(rows: list[dict]) -> dict[int, dict[str, float]]:
    """Return {step: {"platform/reward_mean", "platform/reward_std", "platform/reward/<key>" ...}} from samples.

    These feed the metrics store as derived series where the trainer logs no reward std or per-function rewards.
    """
    by_step: dict[int, list[dict]] = {}
    for row in rows:
        by_step.setdefault(row["step"], []).append(row)
    stats: dict[int, dict[str, float]] = {}
    for step, members in sorted(by_step.items()):
        scores = [r["score"] for r in members if math.isfinite(r["score"])]
        if not scores:
            continue
        entry = {"platform/reward_mean": statistics.fmean(scores), "platform/reward_std": statistics.pstdev(scores)}
        keys = {k for r in members for k in r["extra"]}
        for key in sorted(keys):
            values = [r["extra"][key] for r in members if key in r["extra"] and math.isfinite(r["extra"][key])]
            if values:
                entry[f"platform/reward/{key}"] = statistics.fmean(values)
        stats[step] = entry
    return stats
