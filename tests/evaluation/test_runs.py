"""Eval runs end to end with the demo model on CPU: real tasks, real generation, per-category results, comparisons,
rescoring without generating, stop and resume."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from platform_core.evaluation.compare import compare_runs, compare_to_baseline
from platform_core.evaluation.runs import (
    evaluate_model,
    get_run,
    launch_comparison,
    load_samples,
    output_dir,
    rescore_run,
    start_run,
    stop_run,
)
from platform_core.runners.process import pid_alive
from platform_core.tasks import wait_task

METRICS = ["accuracy", "exact_match", "bleu", "rouge"]
GREEDY = {"max_new_tokens": 6, "temperature": 0, "batch_size": 4}


def generated_ids(run_id: int, platform) -> list[int]:
    path = output_dir(platform, run_id) / "generations.jsonl"
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.mark.slow
def test_two_models_evaluated_compared_and_rescored(platform, demo_model_dir, eval_set, tmp_path):
    from platform_core.workspace.demo import build_model

    other = build_model(tmp_path / "other-model", seed=1)
    run_ids, task_id = launch_comparison(platform, "cmp", [str(demo_model_dir), str(other)], eval_set, METRICS, GREEDY)
    task = wait_task(platform, task_id, timeout_s=600)
    log = Path(task["log_path"]).read_text(encoding="utf-8")
    assert task["state"] == "completed", log
    assert "backend=transformers device=cpu" in log
    first, second = (get_run(platform, r) for r in run_ids)
    for run in (first, second):
        summary = run["summary"]
        assert run["state"] == "completed" and run["progress"] == 1.0
        assert set(summary["per_category"]) == {"addition", "subtraction", "general"}
        assert set(summary["keys"]) == {"accuracy", "exact_match", "bleu", "rouge", "rouge1", "rouge2", "rougeL"}
        assert summary["per_category"]["addition"]["accuracy"]["n"] == 2
        assert summary["backend"] == "transformers" and not summary["partial"]
        assert summary["overall"]["bleu"]["ci"] is not None
        samples = load_samples(platform, run["id"])
        assert len(samples) == 6 and all(len(s["predictions"]) == 1 for s in samples)

    baseline = compare_to_baseline(platform, second["id"], first["id"])
    assert baseline["items"] == 6
    assert baseline["metrics"]["accuracy"]["test"] == "mcnemar_exact"
    assert baseline["metrics"]["bleu"]["test"] == "paired_bootstrap"
    assert baseline["metrics"]["rouge1"]["test"] == "paired_bootstrap"
    assert set(baseline["per_category"]) == {"addition", "subtraction", "general"}
    comparison = compare_runs(platform, [first["id"], second["id"]])
    assert [r["id"] for r in comparison["runs"]] == [first["id"], second["id"]]
    assert comparison["disagreement_metric"] == "accuracy"
    predictions_differ = any(
        a["predictions"] != b["predictions"]
        for a, b in zip(load_samples(platform, first["id"]), load_samples(platform, second["id"]), strict=True)
    )
    assert predictions_differ  # two different models

    out = output_dir(platform, first["id"]) / "generations.jsonl"
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    summary = rescore_run(platform, first["id"], ["rouge"])
    assert summary["keys"] == ["rouge", "rouge1", "rouge2", "rougeL"]
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before  # no generation
    assert get_run(platform, first["id"])["metrics"] == ["rouge"]


@pytest.mark.slow
def test_a_stopped_run_resumes_without_regenerating(platform, demo_model_dir, tmp_path, helpers):
    from platform_core.evaluation.datasets_adapter import add_eval_dataset
    from platform_core.evaluation.runs import create_run

    rows = helpers.demo_eval_rows(per_category=8)
    dataset = add_eval_dataset(platform, helpers.write_jsonl(tmp_path / "long.jsonl", rows), "long", eval_type="qa")
    run_id = create_run(platform, "resumable", str(demo_model_dir), dataset["id"], ["accuracy"],
                        {"max_new_tokens": 32, "batch_size": 2, "temperature": 0})  # fmt: skip
    first_task = start_run(platform, run_id)
    deadline = time.monotonic() + 300
    while len(generated_ids(run_id, platform)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped = stop_run(platform, run_id)
    assert stopped["state"] == "stopped"
    assert platform.store.get("tasks", first_task)["state"] == "stopped"
    worker = platform.store.get("tasks", first_task)["pid"]
    assert not pid_alive(worker)
    done = generated_ids(run_id, platform)
    assert 2 <= len(done) < len(rows)
    kept = (output_dir(platform, run_id) / "generations.jsonl").read_bytes()

    second_task = start_run(platform, run_id)
    task = wait_task(platform, second_task, timeout_s=600)
    assert task["state"] == "completed", Path(task["log_path"]).read_text(encoding="utf-8")
    ids = generated_ids(run_id, platform)
    assert sorted(ids) == list(range(len(rows)))  # every item exactly once
    assert (output_dir(platform, run_id) / "generations.jsonl").read_bytes().startswith(kept)
    assert f"{len(done)} already generated" in Path(task["log_path"]).read_text(encoding="utf-8")
    run = get_run(platform, run_id)
    assert run["state"] == "completed" and run["summary"]["scored"] == len(rows)


@pytest.mark.slow
def test_evaluate_model_returns_the_summary_in_process(platform, demo_model_dir, eval_set):
    result = evaluate_model(platform, str(demo_model_dir), eval_set, ["accuracy"], {"max_new_tokens": 2})
    assert set(result["summary"]["per_category"]) == {"addition", "subtraction", "general"}
    run = get_run(platform, result["run_id"])
    assert run["state"] == "completed" and run["task_id"] is None
    assert "backend=transformers" in (output_dir(platform, run["id"]) / "run.log").read_text(encoding="utf-8")


def test_runs_scored_from_given_outputs_compare_with_significance(platform, demo_model_dir, eval_set, helpers):
    """No generation: the run's generations are written first, so the task only scores (fast)."""
    from platform_core.evaluation.datasets_adapter import load_eval_records

    references = {i: r["reference"] for i, r in enumerate(load_eval_records(platform, eval_set))}
    right = helpers.scored_run(platform, eval_set, demo_model_dir, "right", references)
    wrong = helpers.scored_run(platform, eval_set, demo_model_dir, "wrong", {i: "no idea" for i in references})
    good = get_run(platform, right)["summary"]
    assert good["overall"]["accuracy"]["value"] == 1.0 and good["overall"]["exact_match"]["value"] == 1.0
    assert good["overall"]["bleu"]["value"] == pytest.approx(100.0)
    result = compare_to_baseline(platform, right, wrong)
    accuracy = result["metrics"]["accuracy"]
    assert (accuracy["b"], accuracy["c"], accuracy["delta"]) == (6, 0, 1.0)
    assert accuracy["p_value"] == pytest.approx(2 * 0.5**6) and accuracy["significant"]
    comparison = compare_runs(platform, [right, wrong])
    assert comparison["disagreement_count"] == 6
    assert comparison["disagreements"][0]["predictions"][wrong] == "no idea"


SLEEPER = "import time\ntime.sleep(3)\n"


def code_set(platform, tmp_path, helpers) -> int:
    from platform_core.evaluation.datasets_adapter import add_eval_dataset

    rows = [{"prompt": "Wait three seconds.", "reference": "pass", "category": "slow", "tests": "assert True\n"}]
    path = helpers.write_jsonl(tmp_path / "code.jsonl", rows)
    return add_eval_dataset(platform, path, "slow-code", "a sleeper", eval_type="code")["id"]


def test_the_run_s_code_timeout_and_memory_reach_the_sandbox(platform, demo_model_dir, tmp_path, helpers):
    """A program sleeping 3 s passes under the default 5 s limit and is killed under a run's 1 s limit."""
    from platform_core.evaluation.runs import create_run, execute_run

    dataset = code_set(platform, tmp_path, helpers)
    results = {}
    for name, options in (("default", {}), ("short", {"code_timeout_s": 1, "code_memory_mb": 256})):
        run_id = create_run(platform, name, str(demo_model_dir), dataset, None, {"max_new_tokens": 8, **options})
        helpers.write_jsonl(output_dir(platform, run_id) / "generations.jsonl", [{"id": 0, "predictions": [SLEEPER]}])
        started = time.monotonic()
        results[name] = (execute_run(platform, run_id), time.monotonic() - started)
    default, _ = results["default"]
    assert default["overall"]["pass@1"]["value"] == 1.0
    assert default["notes"]["sandbox_limits"] == {"timeout_s": 5.0, "memory_mb": 1024}
    short, seconds = results["short"]
    assert short["overall"]["pass@1"]["value"] == 0.0 and short["notes"]["executions"]["timeout"] == 1
    assert short["notes"]["sandbox_limits"] == {"timeout_s": 1.0, "memory_mb": 256}
    assert seconds < 3  # killed at 1 s, not left to sleep


def test_the_run_s_memory_limit_reaches_the_sandbox(platform, demo_model_dir, tmp_path, helpers):
    from platform_core.evaluation.runs import create_run, execute_run

    dataset = code_set(platform, tmp_path, helpers)
    hog = "data = bytearray(400 * 1024 * 1024)\n"  # 400 MiB: fits in the default 1 GiB, not in 256 MiB
    passes = []
    for name, memory in (("roomy", 1024), ("tight", 256)):
        run_id = create_run(platform, name, str(demo_model_dir), dataset, None, {"code_memory_mb": memory})
        helpers.write_jsonl(output_dir(platform, run_id) / "generations.jsonl", [{"id": 0, "predictions": [hog]}])
        passes.append(execute_run(platform, run_id)["overall"]["pass@1"]["value"])
    assert passes == [1.0, 0.0]
    with pytest.raises(Exception, match="code_timeout_s: 0.0 is outside"):
        create_run(platform, "bad", str(demo_model_dir), dataset, None, {"code_timeout_s": 0})
