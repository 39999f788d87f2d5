"""Rollout dumps: verl's and TRL's field names, reward filter, grouping by prompt, per-step reward statistics."""

from __future__ import annotations

import json
import math

from platform_core.monitor.files import LocalFiles
from platform_core.monitor.rollouts import (
    filter_rollouts,
    group_by_prompt,
    read_rollouts,
    reward_stats_by_step,
    rollout_files,
)


def _verl_dump(directory, step, samples):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{step}.jsonl", "w") as out:
        for prompt, output, score, acc in samples:
            out.write(
                json.dumps({"input": prompt, "output": output, "gts": "4", "score": score, "step": step, "acc": acc})
                + "\n"
            )


def test_real_trl_grpo_completions(trl_grpo_run):
    files = rollout_files(LocalFiles(), [str(trl_grpo_run / "rollouts")])
    assert list(files) == list(range(1, 21))
    rows = read_rollouts(LocalFiles(), [files[5], files[6]])
    assert len(rows) == 8 and {r["step"] for r in rows} == {5, 6}
    assert rows[0]["input"].startswith("What is") and rows[0]["output"] and rows[0]["gts"].lstrip("-").isdigit()
    assert all(math.isfinite(r["score"]) for r in rows)
    groups = group_by_prompt(rows)
    assert len(groups) == 4 and all(g.count == 2 for g in groups)  # GRPO: 2 generations per prompt


def test_verl_dumps_filter_and_group(tmp_path):
    directory = tmp_path / "rollouts"
    _verl_dump(
        directory, 10, [("2+2?", "4", 1.0, 1), ("2+2?", "5", 0.0, 0), ("3+1?", "4", 1.0, 1), ("3+1?", "4", 1.0, 1)]
    )
    _verl_dump(directory, 20, [("2+2?", "4", 1.0, 1), ("2+2?", "4", 1.0, 1)])
    (directory / "notes.txt").write_text("not a dump")
    files = rollout_files(LocalFiles(), [str(directory)])
    assert list(files) == [10, 20]
    rows = read_rollouts(LocalFiles(), list(files.values()))
    assert rows[0] == {"step": 10, "input": "2+2?", "output": "4", "gts": "4", "score": 1.0, "extra": {"acc": 1.0}}
    assert len(filter_rollouts(rows, min_score=0.5)) == 5
    assert [r["output"] for r in filter_rollouts(rows, max_score=0.5)] == ["5"]
    assert len(filter_rollouts(rows, steps={20})) == 2 and len(filter_rollouts(rows, text="3+1")) == 2
    groups = {(g.step, g.input): g for g in group_by_prompt(rows)}
    assert groups[(10, "2+2?")].mean == 0.5 and groups[(10, "2+2?")].std == 0.5
    assert groups[(10, "3+1?")].std == 0.0  # every sample scored the same: GRPO gets no signal from it
    stats = reward_stats_by_step(rows)
    assert stats[10]["platform/reward_mean"] == 0.75 and math.isclose(
        stats[10]["platform/reward_std"], math.sqrt(0.1875)
    )
    assert stats[10]["platform/reward/acc"] == 0.75 and stats[20]["platform/reward_std"] == 0.0


def test_read_limits(tmp_path):
    directory = tmp_path / "rollouts"
    _verl_dump(directory, 1, [("p", "o" * 100, 0.5, 0)] * 50)
    path = str(directory / "1.jsonl")
    assert len(read_rollouts(LocalFiles(), [path], max_rows=7)) == 7
    partial = read_rollouts(LocalFiles(), [path], max_bytes=1000)  # only whole lines inside the byte budget
    assert 0 < len(partial) < 50 and all(r["output"] == "o" * 100 for r in partial)
