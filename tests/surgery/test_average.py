"""Streaming SWA / EMA: exact means, weights from the formula, sharded output that loads, refusals with names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from surgery_models import load_state, logits

from platform_core.errors import InvalidInput
from platform_core.surgery.average import average_checkpoints, average_weights, parse_size, plan_average
from platform_core.tasks import create_task, execute_task


def run_average_here(platform, checkpoints, **options) -> tuple[dict, dict]:
    plan = plan_average(platform, [str(c) for c in checkpoints], **options)
    task_id = create_task(platform, "surgery.average", "test average", plan)
    outcome = execute_task(platform, task_id)
    assert outcome["state"] == "completed", outcome
    return plan, platform.store.get("tasks", task_id)


def test_ema_weights_follow_the_formula_and_sum_to_one():
    for count, decay in ((2, 0.5), (5, 0.9), (7, 0.3), (4, 1.0)):
        weights = average_weights(count, "ema", decay)
        expected = [decay ** (count - 1 - i) for i in range(count)]
        assert weights == pytest.approx([e / sum(expected) for e in expected])
        assert sum(weights) == pytest.approx(1.0)
        assert weights == sorted(weights)  # newer checkpoints weigh at least as much
    assert average_weights(4, "ema", 0.5) == pytest.approx([1 / 15, 2 / 15, 4 / 15, 8 / 15])
    assert average_weights(3, "uniform") == pytest.approx([1 / 3] * 3)
    with pytest.raises(InvalidInput, match=r"decay: 0 must be in \(0, 1\]"):
        average_weights(3, "ema", 0)
    with pytest.raises(InvalidInput, match="mode"):
        average_weights(3, "median")


def test_uniform_average_is_the_mean_tensor_by_tensor_in_shards_that_load(platform, variants, fine_tunes):
    checkpoints = [fine_tunes["base"], fine_tunes["ft1"], fine_tunes["ft2"], variants["a"]]
    plan, task = run_average_here(platform, checkpoints, mode="uniform", out="swa", shard_size="1MB")
    out = Path(plan["out"])
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert all(p.stat().st_size <= 1_000_000 or len(load_file(str(p))) == 1 for p in out.glob("model-*"))
    assert index["metadata"]["total_size"] == sum((out / s).stat().st_size for s in shards)
    averaged = load_state(out)
    states = [load_state(c) for c in checkpoints]
    assert averaged.keys() == states[0].keys()
    for name, tensor in averaged.items():
        expected = torch.stack([s[name] for s in states]).mean(dim=0)
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=1e-5, msg=name)
    assert torch.isfinite(logits(out)).all()
    assert (out / "tokenizer.json").is_file() and (out / "generation_config.json").is_file()
    row = platform.store.find_one("models", "path = ?", (str(out),))
    assert row["source"] == "average" and row["meta"]["surgery"]["weights"] == pytest.approx([0.25] * 4)
    assert task["result"]["shards"] == len(shards) and task["progress"] == 1.0


def test_ema_average_weighs_the_newest_most(platform, fine_tunes):
    checkpoints = [fine_tunes["base"], fine_tunes["ft1"], fine_tunes["ft2"]]
    plan, _task = run_average_here(platform, checkpoints, mode="ema", decay=0.5, out="ema")
    assert plan["weights"] == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    averaged = load_state(Path(plan["out"]))
    states = [load_state(c) for c in checkpoints]
    for name, tensor in averaged.items():
        expected = sum(w * s[name].double() for w, s in zip(plan["weights"], states, strict=True)).float()
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=1e-5, msg=name)


def _model_dir(root: Path, tensors: dict) -> Path:
    root.mkdir(parents=True)
    save_file(tensors, str(root / "model.safetensors"), metadata={"format": "pt"})
    (root / "config.json").write_text(json.dumps({"architectures": ["Toy"], "model_type": "toy"}))
    return root


def test_integer_tensors_are_copied_when_equal_and_refused_when_not(tmp_path):
    steps = torch.arange(6, dtype=torch.int64)
    first = _model_dir(tmp_path / "c1", {"w": torch.ones(3, dtype=torch.bfloat16), "position_ids": steps})
    second = _model_dir(tmp_path / "c2", {"w": torch.full((3,), 3.0, dtype=torch.bfloat16), "position_ids": steps})
    (tmp_path / "out").mkdir()
    average_checkpoints([first, second], tmp_path / "out", [0.5, 0.5])
    result = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert torch.equal(result["position_ids"], steps)
    assert result["w"].dtype == torch.bfloat16 and torch.equal(result["w"], torch.full((3,), 2.0, dtype=torch.bfloat16))
    third = _model_dir(tmp_path / "c3", {"w": torch.ones(3, dtype=torch.bfloat16), "position_ids": steps + 1})
    (tmp_path / "out2").mkdir()
    with pytest.raises(InvalidInput, match=r"position_ids is not floating point \(I64\) and differs between"):
        average_checkpoints([first, third], tmp_path / "out2", [0.5, 0.5])


def test_mismatched_tensor_sets_are_refused_with_the_names(platform, fine_tunes, tmp_path):
    cut = tmp_path / "cut"
    shutil.copytree(fine_tunes["ft1"], cut)
    state = load_file(str(cut / "model.safetensors"))
    del state["model.norm.weight"]
    save_file(state, str(cut / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(InvalidInput, match=rf"{cut} lacks model\.norm\.weight"):
        plan_average(platform, [str(fine_tunes["base"]), str(cut)], out="bad")
    with pytest.raises(InvalidInput, match="more than once"):
        plan_average(platform, [str(fine_tunes["ft1"]), str(fine_tunes["ft1"])], out="bad")
    with pytest.raises(InvalidInput, match="at least two"):
        plan_average(platform, [str(fine_tunes["ft1"])], out="bad")
    assert platform.store.count("tasks") == 0


def test_shard_sizes_parse():
    assert parse_size("500MB") == 500_000_000 and parse_size("2GB") == 2_000_000_000 and parse_size(3_000_000) == 3e6
    with pytest.raises(InvalidInput, match="not a size"):
        parse_size("big")
