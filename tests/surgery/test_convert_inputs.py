"""A job's own verl checkpoints as inputs: averaging and merging convert them first, several are converted in turn.

The checkpoints come from the real CPU verl SFT run (`verl_run`); copies without verl's `hf_model` save stand for
the default save_contents, whose checkpoints need verl's merger before any HF tool can read them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from surgery_models import load_state, logits, record_job_checkpoints

from platform_core.surgery.average import plan_average
from platform_core.surgery.compat import resolve_model_dir
from platform_core.surgery.convert import conversion_is_current, converted_dir, plan_convert_many
from platform_core.surgery.export import plan_export
from platform_core.surgery.merge import plan_merge, task_params
from platform_core.tasks import create_task, execute_task

pytestmark = pytest.mark.slow


def unconverted_run(verl_run, root: Path, steps=(2, 3)) -> Path:
    """Copies of the run's checkpoints as verl's default save_contents leaves them (no HF weights)."""
    for step in steps:
        target = root / f"global_step_{step}"
        shutil.copytree(verl_run["root"] / f"global_step_{step}", target)
        (target / "huggingface" / "model.safetensors").unlink()
    return root


def run_task(platform, kind: str, params: dict) -> dict:
    task_id = create_task(platform, kind, kind, params)
    assert execute_task(platform, task_id)["state"] == "completed", platform.store.get("tasks", task_id)["error"]
    task = platform.store.get("tasks", task_id)
    return {**task, "log": Path(task["log_path"]).read_text()}


def test_averaging_converts_a_jobs_checkpoints_first_and_links_them(platform, verl_run, tmp_path):
    from platform_core.evaluation.runs import resolve_model

    root = unconverted_run(verl_run, tmp_path / "job" / "checkpoints")
    ids = record_job_checkpoints(platform, root)
    steps = [str(root / "global_step_2"), str(root / "global_step_3")]
    plan = plan_average(platform, steps, mode="uniform", out="models/job-swa")
    assert plan["convert"] == steps and plan["out"] == str(platform.workspace.models.resolve() / "job-swa")
    assert any(getattr(n, "code", None) == "pending_conversion" for n in plan["notes"])

    task = run_task(platform, "surgery.average", plan)
    assert task["log"].count("running ") >= 2 and "verl.model_merger" in task["log"]
    caches = [converted_dir(platform, s) for s in steps]
    assert all(conversion_is_current(Path(s), c) for s, c in zip(steps, caches, strict=True))
    out = Path(task["result"]["out"])
    states = [load_state(c) for c in caches]
    averaged = load_state(out)
    assert averaged.keys() == states[0].keys()
    for name, tensor in averaged.items():
        expected = (states[0][name].float() * 0.5).add_(states[1][name], alpha=0.5).to(tensor.dtype)
        assert torch.equal(tensor, expected), name
    assert torch.isfinite(logits(out)).all()
    # each conversion was written into the job's checkpoint row: `checkpoint:<id>` can be evaluated
    for step, cache in zip((2, 3), caches, strict=True):
        assert platform.store.get("checkpoints", ids[step])["hf_path"] == str(cache.resolve())
        assert resolve_model(platform, f"checkpoint:{ids[step]}")[1] == str(cache.resolve())


def test_slerp_of_an_unconverted_checkpoint_with_its_base(platform, verl_run, demo_model_dir, tmp_path):
    root = unconverted_run(verl_run, tmp_path / "checkpoints", steps=(3,))
    step = root / "global_step_3"
    plan = plan_merge(platform, "slerp", [str(step), str(demo_model_dir)], t=0.5, out="sft-slerp")
    assert plan["convert"] == [str(step)]
    task = run_task(platform, "surgery.merge", task_params(plan))
    assert "verl.model_merger" in task["log"]
    cache = converted_dir(platform, step)
    assert resolve_model_dir(platform, str(step)) == cache
    out = Path(task["result"]["out"])
    recipe = platform.store.find_one("models", "path = ?", (str(out),))["meta"]["surgery"]
    assert recipe["models"] == [str(cache), str(demo_model_dir.resolve())]
    merged = logits(out)
    assert torch.isfinite(merged).all()
    assert not torch.allclose(merged, logits(demo_model_dir), atol=1e-3)
    assert not torch.allclose(merged, logits(cache), atol=1e-3)


def test_convert_many_converts_in_turn_and_relative_paths_are_resolved(platform, verl_run, tmp_path, monkeypatch):
    root = unconverted_run(verl_run, tmp_path / "run" / "checkpoints")
    monkeypatch.chdir(tmp_path / "run")
    relative = os.path.join("checkpoints", "global_step_2")
    plan = plan_export(platform, relative, "step2")  # a relative verl checkpoint: converted by the task, not refused
    assert plan["checkpoint"] == str(root / "global_step_2")

    params = plan_convert_many(platform, [relative, str(root / "global_step_3"), relative])
    assert params["checkpoints"] == [str(root / "global_step_2"), str(root / "global_step_3")]
    task = run_task(platform, "surgery.convert_many", params)
    log = task["log"]
    # one after the other, in the given order, each announced with its number
    assert log.index("converting global_step_2 (1/2)") < log.index(f"converted {root / 'global_step_2'} ->")
    assert log.index(f"converted {root / 'global_step_2'} ->") < log.index("converting global_step_3 (2/2)")
    assert log.index("converting global_step_3 (2/2)") < log.index(f"converted {root / 'global_step_3'} ->")
    assert task["result"]["outs"] == [str(converted_dir(platform, p)) for p in params["checkpoints"]]
    for path in params["checkpoints"]:
        assert resolve_model_dir(platform, path) == converted_dir(platform, path)
