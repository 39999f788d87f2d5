"""Checkpoint selection is a pure function: the pick, why it won, and the series to chart."""

from __future__ import annotations

import json

import pytest

from platform_core.errors import InvalidInput
from platform_core.surgery.convert import attach_metrics, list_checkpoints, read_metrics_jsonl
from platform_core.surgery.select import select_checkpoint

CHECKPOINTS = [
    {"step": 30, "metrics": {"train/loss": 1.1, "val/loss": 0.95}},
    {"step": 10, "metrics": {"train/loss": 2.0, "val/loss": 1.40}},
    {"step": 20, "metrics": {"train/loss": 1.5, "val/loss": 0.90}},
    {"step": 40, "metrics": {"train/loss": 0.7}},
]


def test_lowest_validation_loss_wins_and_the_reason_says_why():
    chosen, reason, series = select_checkpoint(CHECKPOINTS, "lowest_val_loss")
    assert chosen["step"] == 20
    assert reason.startswith("step 20 has the lowest val/loss, 0.9 (of 3 checkpoints with it; next: step 30 with 0.95)")
    assert "1 checkpoint(s) had no val/loss" in reason
    assert series["metric"] == "val/loss" and series["chosen_step"] == 20
    assert [p["step"] for p in series["points"]] == [10, 20, 30, 40]
    assert series["points"][-1]["value"] is None


def test_highest_reward_uses_the_first_reward_name_the_run_logged():
    rl = [{"step": s, "metrics": {"critic/score/mean": r}} for s, r in ((5, 0.1), (10, 0.6), (15, 0.4))]
    chosen, reason, series = select_checkpoint(rl, "highest_reward")
    assert chosen["step"] == 10 and "highest critic/score/mean" in reason and series["metric"] == "critic/score/mean"


def test_last_and_custom():
    assert select_checkpoint(CHECKPOINTS, "last")[0]["step"] == 40
    chosen, reason, series = select_checkpoint(CHECKPOINTS, "custom", step=30)
    assert chosen["step"] == 30 and "by hand" in reason and series["metric"] == "val/loss"
    with pytest.raises(InvalidInput, match=r"no checkpoint at step 35 \(steps: 10, 20, 30, 40\)"):
        select_checkpoint(CHECKPOINTS, "custom", step=35)
    with pytest.raises(InvalidInput, match="needs a step"):
        select_checkpoint(CHECKPOINTS, "custom")


def test_a_metric_missing_everywhere_gets_a_clear_message():
    no_val = [{"step": 1, "metrics": {"train/loss": 1.0}}, {"step": 2, "metrics": {"val/loss": None}}]
    with pytest.raises(InvalidInput, match="no checkpoint has a validation loss.*Choose 'last' or a custom step"):
        select_checkpoint(no_val, "lowest_val_loss")
    with pytest.raises(InvalidInput, match="no checkpoint has a mean reward.*RL jobs"):
        select_checkpoint(no_val, "highest_reward")
    with pytest.raises(InvalidInput, match="strategy"):
        select_checkpoint(no_val, "best")
    with pytest.raises(InvalidInput, match="none to choose from"):
        select_checkpoint([], "last")


def test_checkpoints_of_a_directory_get_the_metrics_logged_at_their_step(tmp_path):
    for step in (5, 10):
        (tmp_path / f"global_step_{step}" / "huggingface").mkdir(parents=True)
        (tmp_path / f"global_step_{step}" / "fsdp_config.json").write_text("{}")
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("10")
    lines = [
        {"step": 5, "data": {"train/loss": 2.0}},
        {"step": 5, "data": {"val/loss": 1.5}},
        {"step": 10, "data": {"train/loss": 1.0, "val/loss": None}},
    ]
    (tmp_path / "metrics.attempt1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 1')
    (tmp_path / "metrics.attempt2.jsonl").write_text(json.dumps({"step": 10, "data": {"val/loss": 1.2}}) + "\n")
    found = list_checkpoints(tmp_path)
    assert [c["step"] for c in found] == [5, 10] and found[0]["format"] == "verl-fsdp"
    metrics = read_metrics_jsonl(sorted(tmp_path.glob("metrics.attempt*.jsonl")))
    with_metrics = attach_metrics(found, metrics)
    assert with_metrics[0]["metrics"] == {"train/loss": 2.0, "val/loss": 1.5}
    assert with_metrics[1]["metrics"] == {"train/loss": 1.0, "val/loss": 1.2}
    assert select_checkpoint(with_metrics, "lowest_val_loss")[0]["step"] == 10


def test_metrics_files_are_in_attempt_order_so_the_latest_attempt_wins(tmp_path):
    from platform_core.surgery.convert import metrics_files

    for attempt, loss in ((1, 3.0), (2, 2.0), (10, 1.0)):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        (folder / "metrics.jsonl").write_text(json.dumps({"step": 5, "data": {"val/loss": loss}}) + "\n")
    (tmp_path / "attempt-x").mkdir()
    (tmp_path / "attempt-x" / "metrics.jsonl").write_text("")
    files = metrics_files(tmp_path)
    assert [f.parent.name for f in files] == ["attempt-1", "attempt-2", "attempt-10"]
    assert sorted(str(f) for f in files)[1].endswith("attempt-10/metrics.jsonl")  # what a text sort would give
    assert read_metrics_jsonl(files)[5]["val/loss"] == 1.0  # attempt-10's value, not attempt-2's
