"""`python -m platform_core eval ...`: the score contract, eval sets, status, results, comparisons, rescoring."""

from __future__ import annotations

import json

import pytest
import sacrebleu

from platform_core.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, dict | list, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    data = json.loads(captured.out) if code == 0 and captured.out.strip() else {}
    return code, data, captured.err


def test_score_contract(tmp_path, capsys, helpers):
    rows = [
        {"prediction": "The cat sat on the mat.", "reference": "The cat sat on the mat.", "category": "en"},
        {"prediction": "A dog ran.", "reference": "The dog runs fast.", "category": "en"},
        {"prediction": "今天天气很好", "reference": "今天的天气很好", "category": "zh"},
        {"prediction": "答案是 7", "reference": 7},
    ]
    path = helpers.write_jsonl(tmp_path / "preds.jsonl", rows)
    code, data, err = run_cli(
        capsys, "eval", "score", "--predictions", str(path), "--metrics", "accuracy,bleu,rouge,exact_match", "--json"
    )
    assert code == 0, err
    assert set(data["overall"]) == {"accuracy", "bleu", "rouge", "rouge1", "rouge2", "rougeL", "exact_match"}
    assert set(data["per_category"]) == {"en", "zh", "uncategorized"}
    hyps, refs = [r["prediction"] for r in rows], [str(r["reference"]) for r in rows]
    assert data["overall"]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score)
    assert data["overall"]["exact_match"] == 0.25
    assert data["overall"]["accuracy"] == 0.5  # the identical sentence and the number 7
    assert data["per_category"]["zh"]["rouge1"] == pytest.approx(100 * 12 / 13)
    assert 0 <= data["overall"]["rouge"] <= 100 and data["overall"]["rouge"] == data["overall"]["rougeL"]
    assert set(data["stderr"]) == set(data["overall"])


def test_score_pass_at_k_with_tests(tmp_path, capsys, helpers):
    rows = [
        {"predictions": ["def f(x):\n    return x * 2", "def f(x):\n    return x + 2"], "reference": "",
         "tests": "assert f(3) == 6", "category": "easy"},
        {"predictions": ["def g():\n    return 0", "def g():\n    return 1"], "reference": "",
         "tests": "assert g() == 1", "category": "hard"},
    ]  # fmt: skip
    path = helpers.write_jsonl(tmp_path / "code.jsonl", rows)
    code, data, err = run_cli(
        capsys, "eval", "score", "--predictions", str(path), "--metrics", "pass@k", "--k", "1", "--json"
    )
    assert code == 0, err
    assert data["overall"]["pass@k"] == data["overall"]["pass@1"] == 0.5
    assert data["per_category"]["easy"]["pass@k"] == 0.5
    code, data, err = run_cli(
        capsys, "eval", "score", "--predictions", str(path), "--metrics", "pass@k", "--k", "2", "--json"
    )
    assert data["overall"]["pass@2"] == 1.0


def test_score_errors_name_the_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prediction": "x", "reference": "y"}\n{"reference": "y"}\n', encoding="utf-8")
    code, _data, err = run_cli(capsys, "eval", "score", "--predictions", str(path), "--metrics", "bleu", "--json")
    assert code == 2 and "bad.jsonl line 2" in err and "prediction" in err
    code, _data, err = run_cli(capsys, "eval", "score", "--predictions", str(path), "--metrics", "bleuu", "--json")
    assert code == 2 and "unknown metric" in err


def test_dataset_add_status_results_compare_rescore(platform, tmp_path, capsys, helpers, demo_model_dir):
    path = helpers.write_jsonl(tmp_path / "set.jsonl", helpers.demo_eval_rows())
    code, record, err = run_cli(
        capsys,
        "eval",
        "dataset-add",
        str(path),
        "--name",
        "cli-set",
        "--description",
        "d",
        "--eval-type",
        "qa",
        "--json",
    )
    assert code == 0, err
    assert record["rows"] == 6 and record["field_config"]["eval_type"] == "qa"
    code, sets, _ = run_cli(capsys, "eval", "dataset-list", "--json")
    assert [s["name"] for s in sets] == ["cli-set"]

    from platform_core.evaluation.datasets_adapter import load_eval_records

    refs = {i: r["reference"] for i, r in enumerate(load_eval_records(platform, record["id"]))}
    good = helpers.scored_run(platform, record["id"], demo_model_dir, "good", refs)
    bad = helpers.scored_run(platform, record["id"], demo_model_dir, "bad", dict.fromkeys(refs, "?"))

    code, runs, _ = run_cli(capsys, "eval", "status", "--json")
    assert [r["id"] for r in runs] == [bad, good] and all(r["state"] == "completed" for r in runs)
    code, status, _ = run_cli(capsys, "eval", "status", "good", "--json")
    assert status["overall"]["accuracy"] == 1.0 and status["per_category"]["general"]["exact_match"] == 1.0

    code, results, err = run_cli(capsys, "eval", "results", str(good), "--baseline", str(bad), "--samples", "--json")
    assert code == 0, err
    assert results["baseline"]["metrics"]["accuracy"]["significant"] is True
    assert len(results["samples"]) == 6 and results["samples"][0]["scores"]["accuracy"] == 1.0

    code, comparison, err = run_cli(capsys, "eval", "compare", str(good), str(bad), "--json")
    assert code == 0, err
    assert comparison["disagreement_count"] == 6 and comparison["items"] == 6

    code, rescored, err = run_cli(capsys, "eval", "rescore", str(bad), "--metrics", "rouge,exact_match", "--json")
    assert code == 0, err
    assert set(rescored["overall"]) == {"rouge", "rouge1", "rouge2", "rougeL", "exact_match"}

    code, _data, err = run_cli(capsys, "eval", "compare", str(good), "--json")
    assert code == 2 and "2 to 5" in err


@pytest.mark.slow
def test_eval_run_waits_and_prints_results(platform, capsys, eval_set, demo_model_dir):
    code, data, err = run_cli(
        capsys, "eval", "run", "--name", "cli-run", "--model", str(demo_model_dir), "--dataset", str(eval_set),
        "--metrics", "accuracy,bleu", "--max-tokens", "2", "--temperature", "0", "--wait", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert data["state"] == "completed" and set(data["overall"]) == {"accuracy", "bleu"}
    assert set(data["per_category"]) == {"addition", "subtraction", "general"}
    assert data["gen_params"]["max_new_tokens"] == 2 and data["gen_params"]["top_p"] == 0.9


def test_run_code_limits_from_the_cli_reach_the_sandbox(platform, capsys, tmp_path, helpers, demo_model_dir):
    """`eval run --code-timeout 1 --code-memory 256`: recorded with the run, used when its code is executed."""
    from platform_core.evaluation.datasets_adapter import add_eval_dataset
    from platform_core.evaluation.runs import output_dir, stop_run
    from platform_core.tasks import wait_task

    rows = [{"prompt": "Wait.", "reference": "pass", "tests": "assert True\n"}]
    dataset = add_eval_dataset(platform, helpers.write_jsonl(tmp_path / "c.jsonl", rows), "c", "", eval_type="code")
    common = ["eval", "run", "--model", str(demo_model_dir), "--dataset", str(dataset["id"]), "--json"]
    code, _data, err = run_cli(capsys, *common, "--name", "bad", "--code-timeout", "0")
    assert code != 0 and "code_timeout_s: 0.0 is outside" in err
    code, data, err = run_cli(capsys, *common, "--name", "limits", "--code-timeout", "1", "--code-memory", "256")
    assert code == 0, err
    assert (data["gen_params"]["code_timeout_s"], data["gen_params"]["code_memory_mb"]) == (1.0, 256)
    stop_run(platform, data["id"])  # no need to generate: the program is given below
    wait_task(platform, data["task_id"], timeout_s=120)
    sleeper = {"id": 0, "predictions": ["import time\ntime.sleep(3)\n"]}
    helpers.write_jsonl(output_dir(platform, data["id"]) / "generations.jsonl", [sleeper])
    code, rescored, err = run_cli(capsys, "eval", "rescore", str(data["id"]), "--json")
    assert code == 0, err
    assert rescored["overall"]["pass@1"] == 0.0
    notes = rescored["summary"]["notes"]
    assert notes["executions"]["timeout"] == 1 and notes["sandbox_limits"] == {"timeout_s": 1.0, "memory_mb": 256}
