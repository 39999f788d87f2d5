"""`eval` commands: eval sets, runs (start, status, stop, resume), results, comparisons, scoring given outputs.

python -m platform_core eval dataset-add qa.jsonl --name my-qa --eval-type qa --json
python -m platform_core eval run --name base --model demo-qwen2-tiny --dataset my-qa --max-tokens 32 --wait --json
python -m platform_core eval results 3 --baseline 2 --json
python -m platform_core eval compare 2 3 4 --json
python -m platform_core eval score --predictions preds.jsonl --metrics accuracy,bleu,rouge,exact_match --json
python -m platform_core eval rescore 3 --metrics rouge --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from platform_core.cli import add_json_flag, emit, platform_for
from platform_core.errors import InvalidInput, NotFound


def register(subparsers: argparse._SubParsersAction) -> None:
    from platform_core.evaluation.evaltypes import EVAL_TYPES

    group = subparsers.add_parser("eval", help="evaluation center: eval sets, runs, results, comparisons")
    sub = group.add_subparsers(dest="eval_command", required=True)

    add = sub.add_parser("dataset-add", help="add an eval set (JSON/JSONL/Parquet with prompt, reference, category)")
    add.add_argument("file")
    add.add_argument("--name", required=True)
    add.add_argument("--description")
    add.add_argument("--eval-type", choices=EVAL_TYPES, help="suggests the default metrics (default: general)")
    add_json_flag(add)
    add.set_defaults(handler=cmd_dataset_add)

    lst = sub.add_parser("dataset-list", help="list eval sets")
    add_json_flag(lst)
    lst.set_defaults(handler=cmd_dataset_list)

    run = sub.add_parser("run", help="start an eval run (a detached task)")
    run.add_argument("--name", required=True)
    run.add_argument("--model", required=True, help="a registered model, checkpoint:<id>, or a model directory")
    run.add_argument("--dataset", required=True, help="eval set id or name")
    run.add_argument("--metrics", help="comma-separated (default: from the eval type)")
    run.add_argument("--k", type=int, help="k of pass@k")
    run.add_argument("--max-tokens", type=int, dest="max_new_tokens")
    run.add_argument("--temperature", type=float)
    run.add_argument("--top-p", type=float, dest="top_p")
    run.add_argument("--samples", type=int, help="samples per question")
    run.add_argument("--seed", type=int)
    run.add_argument("--batch-size", type=int, dest="batch_size")
    run.add_argument("--backend", choices=["auto", "vllm", "transformers"])
    run.add_argument("--chat-template", choices=["auto", "on", "off"], dest="chat_template")
    run.add_argument("--stop", action="append", help="a stop string (repeatable)")
    run.add_argument(
        "--code-timeout", type=float, dest="code_timeout_s", help="code sets: seconds per program in the sandbox (5)"
    )
    run.add_argument(
        "--code-memory", type=int, dest="code_memory_mb", help="code sets: memory limit per program in MiB (1024)"
    )
    run.add_argument("--target", default="local", help="local or ssh:<connection>")
    run.add_argument("--wait", action="store_true", help="wait for the run and print its results")
    run.add_argument("--timeout", type=float, default=3600)
    add_json_flag(run)
    run.set_defaults(handler=cmd_run)

    status = sub.add_parser("status", help="state and progress of one run, or of all")
    status.add_argument("run", nargs="?")
    add_json_flag(status)
    status.set_defaults(handler=cmd_status)

    stop = sub.add_parser("stop", help="stop a running eval run (generations so far are kept)")
    stop.add_argument("run")
    add_json_flag(stop)
    stop.set_defaults(handler=cmd_stop)

    resume = sub.add_parser("resume", help="start a stopped or failed run again; finished items are skipped")
    resume.add_argument("run")
    resume.add_argument("--wait", action="store_true")
    resume.add_argument("--timeout", type=float, default=3600)
    add_json_flag(resume)
    resume.set_defaults(handler=cmd_resume)

    results = sub.add_parser("results", help="overall and per-category scores, optionally against a baseline run")
    results.add_argument("run")
    results.add_argument("--baseline", help="a run on the same eval set")
    results.add_argument("--samples", action="store_true", help="include every sample with its scores")
    add_json_flag(results)
    results.set_defaults(handler=cmd_results)

    compare = sub.add_parser("compare", help="compare 2-5 runs on one eval set")
    compare.add_argument("runs", nargs="+")
    compare.add_argument("--metric", help="the metric whose per-item disagreements are listed")
    add_json_flag(compare)
    compare.set_defaults(handler=cmd_compare)

    score = sub.add_parser("score", help="score given outputs without generating")
    score.add_argument("--predictions", required=True, help="JSONL: prediction (or predictions), reference, category")
    score.add_argument("--metrics", required=True, help="comma-separated: accuracy,bleu,rouge,exact_match,pass@k")
    score.add_argument("--k", type=int, default=1)
    score.add_argument("--eval-type", choices=EVAL_TYPES)
    add_json_flag(score)
    score.set_defaults(handler=cmd_score)

    rescore = sub.add_parser("rescore", help="recompute metrics of a run from its kept generations")
    rescore.add_argument("run")
    rescore.add_argument("--metrics", help="comma-separated (default: the run's metrics)")
    rescore.add_argument("--k", type=int)
    add_json_flag(rescore)
    rescore.set_defaults(handler=cmd_rescore)


def _metrics(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _values(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "overall": {k: v["value"] for k, v in summary["overall"].items()},
        "per_category": {c: {k: v["value"] for k, v in m.items()} for c, m in summary["per_category"].items()},
    }


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "model_ref", "model_path", "dataset_id", "metrics", "target", "state", "progress", "task_id")
    view = {k: run.get(k) for k in keys}
    view["gen_params"] = run.get("gen_params")
    summary = run.get("summary") or {}
    if "overall" in summary:
        view.update(_values(summary))
        view["partial"] = summary.get("partial")
    return view


def cmd_dataset_add(args) -> int:
    from platform_core.evaluation.datasets_adapter import add_eval_dataset

    record = add_eval_dataset(platform_for(args), Path(args.file), args.name, args.description, args.eval_type)
    emit(args, record, f"eval set {record['id']} {record['name']!r}: {record['rows']} items")
    return 0


def cmd_dataset_list(args) -> int:
    from platform_core.evaluation.datasets_adapter import list_eval_datasets

    rows = list_eval_datasets(platform_for(args))
    text = "\n".join(
        f"{r['id']}\t{r['name']}\t{r['rows']} items\t{(r['field_config'] or {}).get('eval_type')}" for r in rows
    )
    emit(args, rows, text or "no eval sets")
    return 0


def _wait_and_report(platform, args, run_id: int, task_id: int) -> int:
    from platform_core.evaluation.runs import get_run
    from platform_core.tasks import wait_task

    task = wait_task(platform, task_id, timeout_s=args.timeout) if args.wait else None
    run = get_run(platform, run_id)
    view = {**_run_view(run), "task_id": task_id}
    if task is not None and task["state"] != "completed":
        view["error"] = task.get("error")
    emit(args, view, json.dumps(view, ensure_ascii=False, indent=2, default=str))
    return 0 if task is None or task["state"] == "completed" else 1


def cmd_run(args) -> int:
    from platform_core.evaluation.runs import create_run, start_run

    platform = platform_for(args)
    gen = {k: getattr(args, k) for k in ("max_new_tokens", "temperature", "top_p", "samples", "seed", "batch_size",
                                         "backend", "chat_template", "stop", "code_timeout_s",
                                         "code_memory_mb")}  # fmt: skip
    run_id = create_run(platform, args.name, args.model, args.dataset, _metrics(args.metrics), gen, args.target, args.k)
    task_id = start_run(platform, run_id)
    return _wait_and_report(platform, args, run_id, task_id)


def cmd_status(args) -> int:
    from platform_core.evaluation.runs import get_run, list_runs

    platform = platform_for(args)
    if args.run:
        view = _run_view(get_run(platform, args.run))
        emit(args, view, f"{view['id']}\t{view['name']}\t{view['state']}\t{view['progress'] * 100:.0f}%")
        return 0
    views = [_run_view(r) for r in list_runs(platform)]
    text = "\n".join(f"{v['id']}\t{v['name']}\t{v['state']}\t{v['progress'] * 100:.0f}%" for v in views)
    emit(args, views, text or "no eval runs")
    return 0


def cmd_stop(args) -> int:
    from platform_core.evaluation.runs import stop_run

    view = _run_view(stop_run(platform_for(args), _run_id(args)))
    emit(args, view, f"eval run {view['id']}: {view['state']}")
    return 0


def cmd_resume(args) -> int:
    from platform_core.evaluation.runs import start_run

    platform = platform_for(args)
    run_id = _run_id(args)
    return _wait_and_report(platform, args, run_id, start_run(platform, run_id))


def _run_id(args) -> int:
    from platform_core.evaluation.runs import get_run

    return get_run(platform_for(args), args.run)["id"]


def cmd_results(args) -> int:
    from platform_core.evaluation.compare import compare_to_baseline
    from platform_core.evaluation.runs import get_run, load_samples

    platform = platform_for(args)
    run = get_run(platform, args.run)
    summary = run.get("summary") or {}
    if "overall" not in summary:
        raise InvalidInput(f"eval run {run['id']} has no results yet (state: {run['state']})")
    data: dict[str, Any] = {**_run_view(run), "summary": summary}
    if args.baseline:
        baseline = get_run(platform, args.baseline)
        data["baseline"] = compare_to_baseline(platform, run["id"], baseline["id"])
    if args.samples:
        data["samples"] = load_samples(platform, run["id"])
    emit(args, data)
    return 0


def cmd_compare(args) -> int:
    from platform_core.evaluation.compare import compare_runs
    from platform_core.evaluation.runs import get_run

    platform = platform_for(args)
    ids = [get_run(platform, r)["id"] for r in args.runs]
    emit(args, compare_runs(platform, ids, args.metric))
    return 0


def read_predictions(path: Path) -> list[Any]:
    """Read a predictions JSONL file into EvalItems (errors name the line and field)."""
    from platform_core.evaluation.metrics import UNCATEGORIZED, EvalItem

    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path.name} line {number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise InvalidInput(f"{path.name} line {number}: expected an object")
        if "predictions" in row:
            predictions = row["predictions"]
            if not isinstance(predictions, list) or not all(isinstance(p, str) for p in predictions):
                raise InvalidInput(f"{path.name} line {number}: field 'predictions' must be a list of strings")
        elif isinstance(row.get("prediction"), str):
            predictions = [row["prediction"]]
        else:
            raise InvalidInput(f"{path.name} line {number}: field 'prediction' (a string) or 'predictions' is missing")
        reference = row.get("reference")
        if isinstance(reference, (int, float)) and not isinstance(reference, bool):
            reference = str(reference)
        if not isinstance(reference, str):
            raise InvalidInput(f"{path.name} line {number}: field 'reference' must be a string")
        tests = row.get("tests")
        if tests is not None and not isinstance(tests, str):
            raise InvalidInput(f"{path.name} line {number}: field 'tests' must be a string")
        category = row.get("category")
        items.append(
            EvalItem(str(row.get("prompt") or ""), reference, predictions, str(category or UNCATEGORIZED), tests)
        )
    if not items:
        raise InvalidInput(f"{path.name}: no predictions")
    return items


def cmd_score(args) -> int:
    from platform_core.evaluation.metrics import resolve_metrics, score_items

    names = _metrics(args.metrics) or []
    resolve_metrics(names, k=args.k)  # an unknown metric is reported before the file is read
    report = score_items(read_predictions(Path(args.predictions)), names, eval_type=args.eval_type, k=args.k)
    data = report.flat()
    if any(n.strip().lower() == "pass@k" for n in names):
        alias = f"pass@{args.k}"
        data["overall"]["pass@k"] = data["overall"][alias]
        for values in data["per_category"].values():
            values["pass@k"] = values[alias]
    emit(args, data)
    return 0


def cmd_rescore(args) -> int:
    from platform_core.evaluation.runs import get_run, rescore_run

    platform = platform_for(args)
    run = get_run(platform, args.run)
    summary = rescore_run(platform, run["id"], _metrics(args.metrics), args.k)
    emit(args, {"id": run["id"], **_values(summary), "summary": summary})
    return 0
