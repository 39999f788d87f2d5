"""Eval runs: a record in `eval_runs`, a task that generates (locally or on an SSH server) and scores, files that
keep every generation so a stopped run resumes and a metric can be recomputed without generating again.

A run's output directory (`<workspace>/outputs/eval/run-<id>/`):

    items.jsonl         the eval set as it was when the run was created (prompt, reference, category, tests)
    prompts.jsonl       {"id", "prompt"} for the generator
    generations.jsonl   one line per finished item, appended as batches finish (the generator skips ids present)
    samples.jsonl       per item: predictions, reference, category, scores per metric key, BLEU statistics
    run.log             generator and scoring log when the run is not a task (evaluate_model)

    run_id = create_run(platform, "base", "demo-qwen2-tiny", dataset_id, ["accuracy", "bleu"], {"max_new_tokens": 32})
    task_id = start_run(platform, run_id)          # a detached task; stop_run / start_run again resumes
    get_run(platform, run_id)["summary"]["overall"]["accuracy"]    # {"value", "se", "ci", "n"}
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound, RemoteError
from platform_core.evaluation.datasets_adapter import eval_type_of, get_eval_dataset, load_eval_records
from platform_core.evaluation.evaltypes import DEFAULT_METRICS
from platform_core.evaluation.metrics import EvalItem, resolve_metrics, score_items
from platform_core.runners.process import platform_python_env, python_executable
from platform_core.security.validation import check_name, check_path_text
from platform_core.tasks import FINAL_STATES, TaskContext, TaskStopped, TaskTitle, stop_task, submit_task, task_kind

RUN_KIND = "evaluation.run"
BATCH_KIND = "evaluation.batch"
GENSCRIPT = Path(__file__).with_name("genscript.py")
ACTIVE = ("pending", "running")
POLL_S = 0.5
REMOTE_POLL_S = 1.0
GENERATION_SHARE = 0.95  # of the progress bar; scoring takes the rest

GEN_DEFAULTS: dict[str, Any] = {
    "max_new_tokens": 512,
    "temperature": 0.7,
    "top_p": 0.9,
    "samples": 1,
    "seed": 0,
    "batch_size": 8,
    "backend": "auto",
    "chat_template": "auto",
    "stop": [],
    "code_timeout_s": 5.0,  # the sandbox's wall-clock limit per program (code sets: pass@k, accuracy)
    "code_memory_mb": 1024,  # the sandbox's address-space limit per program (RLIMIT_AS)
}
_RANGES = {
    "max_new_tokens": (int, 1, 32768),
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 1e-6, 1.0),
    "samples": (int, 1, 200),
    "seed": (int, 0, 2**31 - 1),
    "batch_size": (int, 1, 512),
    "code_timeout_s": (float, 0.1, 600.0),
    "code_memory_mb": (int, 128, 65536),
}
_CHOICES = {"backend": ("auto", "vllm", "transformers"), "chat_template": ("auto", "on", "off")}


def generation_params(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return complete, validated generation parameters (defaults: 512 tokens, T 0.7, top-p 0.9, 1 sample), with
    the code sandbox's limits per program (`code_timeout_s` 5 s, `code_memory_mb` 1024)."""
    params = dict(GEN_DEFAULTS)
    for key, value in (values or {}).items():
        if value is None:
            continue
        if key not in GEN_DEFAULTS:
            raise InvalidInput(f"generation parameter {key!r} is unknown (known: {', '.join(GEN_DEFAULTS)})")
        params[key] = value
    for key, (kind, low, high) in _RANGES.items():
        try:
            value = kind(params[key])
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{key}: {params[key]!r} is not a number") from exc
        if not low <= value <= high:
            raise InvalidInput(f"{key}: {value} is outside {low}..{high}")
        params[key] = value
    for key, allowed in _CHOICES.items():
        if params[key] not in allowed:
            raise InvalidInput(f"{key}: {params[key]!r} is not one of {', '.join(allowed)}")
    stops = params["stop"]
    if isinstance(stops, str):
        stops = [stops]
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise InvalidInput("stop: a list of non-empty strings")
    params["stop"] = stops
    return params


def target_location(target: str) -> str:
    """'local' or the connection name of an 'ssh:<name>' target."""
    if target == "local":
        return "local"
    if target.startswith("ssh:") and target[4:]:
        return target[4:]
    raise InvalidInput(f"target: {target!r} must be 'local' or 'ssh:<connection>'")


def resolve_model(platform: Platform, ref: str | int, target: str = "local") -> tuple[str, str]:
    """Return (label, path on the target) for a registered model, `checkpoint:<id>` (its exported HF dir) or a path."""
    from platform_core.models import get_model

    location = target_location(target)
    text = str(ref).strip()
    if not text:
        raise InvalidInput("model: choose a model, a checkpoint or a path")
    if text.startswith("checkpoint:"):
        checkpoint = platform.store.require("checkpoints", int(text.split(":", 1)[1]), "checkpoint")
        if not checkpoint.get("hf_path"):
            raise InvalidInput(
                f"checkpoint {checkpoint['id']} has no exported Hugging Face model yet (export it first)"
            )
        if (checkpoint.get("location") or "local") != location:
            raise InvalidInput(
                f"checkpoint {checkpoint['id']} is on {checkpoint['location']}, the run targets {target}"
            )
        return text, checkpoint["hf_path"]
    try:
        model = get_model(platform, text)
    except NotFound:
        model = None
    if model is not None:
        if model["location"] != location:
            raise InvalidInput(f"model {model['name']!r} is on {model['location']}, but the run targets {target}")
        return model["name"], model["path"]
    check_path_text(text, "model path", allow_home=location != "local")
    if location != "local":
        return text, text
    path = Path(text).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise InvalidInput(f"model: {text} is neither a registered model nor a Hugging Face model directory")
    return text, str(path)


def default_metrics(eval_type: str | None) -> list[str]:
    """The metrics an evaluation type suggests (qa: accuracy + exact match, code: pass@k, ...)."""
    return list(DEFAULT_METRICS.get(eval_type or "general", DEFAULT_METRICS["general"]))


def _metric_names(metrics: list[str], k: int | None, samples: int, temperature: float | None = None) -> list[str]:
    """Metric keys of a run; pass@k with k > 1 needs k samples per question that can differ (temperature > 0)."""
    names = []
    for metric in resolve_metrics(metrics, k=k or 1):
        if metric.name == "pass@k":
            value = int(metric.params["k"])
            if value > samples:
                raise InvalidInput(
                    f"samples: pass@{value} needs at least {value} samples per question (samples is {samples})"
                )
            if value > 1 and temperature is not None and temperature <= 0:
                raise InvalidInput(
                    f"temperature: pass@{value} needs sampling, but temperature is {temperature:g} (greedy): the "
                    f"{samples} samples per question would be copies and pass@{value} would equal pass@1; "
                    "set a temperature above 0 (e.g. 0.8)"
                )
            names.append(f"pass@{value}")
        else:
            names.append(metric.name)
    return names


def output_dir(platform: Platform, run_id: int) -> Path:
    return platform.workspace.outputs / "eval" / f"run-{run_id}"


def create_run(
    platform: Platform,
    name: str,
    model: str | int,
    dataset_id: int | str,
    metrics: list[str] | None = None,
    gen_params: dict[str, Any] | None = None,
    target: str = "local",
    k: int | None = None,
) -> int:
    """Record an eval run (state pending) with a snapshot of the eval set; return its id. `start_run` runs it."""
    name = check_name(name, "run name")
    params = generation_params(gen_params)
    label, path = resolve_model(platform, model, target)
    dataset = get_eval_dataset(platform, dataset_id)
    records = load_eval_records(platform, dataset["id"])
    names = _metric_names(
        metrics or default_metrics(eval_type_of(dataset)), k, params["samples"], params["temperature"]
    )
    now = time.time()
    run_id = platform.store.insert(
        "eval_runs",
        {
            "name": name,
            "model_ref": label,
            "model_path": path,
            "dataset_id": dataset["id"],
            "metrics": names,
            "gen_params": params,
            "target": target,
            "state": "pending",
            "progress": 0.0,
            "created_at": now,
            "updated_at": now,
        },
    )
    folder = output_dir(platform, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    _write_jsonl(folder / "items.jsonl", [{"id": i, **r} for i, r in enumerate(records)])
    _write_jsonl(folder / "prompts.jsonl", [{"id": i, "prompt": r["prompt"]} for i, r in enumerate(records)])
    platform.store.update("eval_runs", run_id, output_dir=str(folder))
    return run_id


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read complete JSON lines (a torn last line, from a generator that was killed mid-write, is skipped)."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n") and line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows


def _update(platform: Platform, run_id: int, **changes: Any) -> None:
    platform.store.update("eval_runs", run_id, updated_at=time.time(), **changes)


# -- records -------------------------------------------------------------------------------------------------------
def get_run(platform: Platform, run_id: int | str) -> dict[str, Any]:
    """Return an eval run (by id or name), its state brought up to date with its task."""
    if isinstance(run_id, int) or str(run_id).isdigit():
        run = platform.store.get("eval_runs", int(run_id))
    else:
        run = platform.store.find_one("eval_runs", "name = ? ORDER BY id DESC", (run_id,))
    if run is None:
        raise NotFound(f"eval run {run_id!r} does not exist")
    return _refresh(platform, run)


def _refresh(platform: Platform, run: dict[str, Any]) -> dict[str, Any]:
    """A run whose task ended without updating it (killed worker, batch stopped before it) takes the task's end."""
    if run["state"] in ACTIVE and run["task_id"]:
        from platform_core.tasks import reconcile_tasks

        task = platform.store.get("tasks", run["task_id"])
        if task and task["state"] == "running":
            reconcile_tasks(platform)
            task = platform.store.get("tasks", run["task_id"])
        if task is None or task["state"] in FINAL_STATES:
            state = "failed" if task and task["state"] == "failed" else "stopped"
            _update(platform, run["id"], state=state)
            run = platform.store.get("eval_runs", run["id"])
    return run


def list_runs(platform: Platform, dataset_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Return eval runs, newest first (optionally of one eval set)."""
    if dataset_id is not None:
        rows = platform.store.find("eval_runs", "dataset_id = ?", (dataset_id,), order_by="id DESC", limit=limit)
    else:
        rows = platform.store.find("eval_runs", order_by="id DESC", limit=limit)
    return [_refresh(platform, row) for row in rows]


def start_run(platform: Platform, run_id: int) -> int:
    """Start (or resume: finished generations are kept) an eval run as a detached task; return the task id."""
    run = get_run(platform, run_id)
    if run["state"] == "running":
        raise InvalidInput(f"eval run {run['id']} is already running (task {run['task_id']})")
    title = TaskTitle("eval", f"Eval {run['name']}", name=run["name"])
    task_id = submit_task(platform, RUN_KIND, title, {"run_id": run["id"]})
    _update(platform, run["id"], state="pending", task_id=task_id)
    return task_id


def stop_run(platform: Platform, run_id: int) -> dict[str, Any]:
    """Stop a running eval run (its generator too, locally or on the server); return the record."""
    run = get_run(platform, run_id)
    if run["state"] in ACTIVE and run["task_id"]:
        stop_task(platform, run["task_id"])
    return get_run(platform, run["id"])


def delete_run(platform: Platform, run_id: int) -> None:
    """Forget a finished run and remove its files."""
    import shutil

    run = get_run(platform, run_id)
    if run["state"] in ACTIVE:
        raise InvalidInput(f"eval run {run['id']} is {run['state']}: stop it first")
    platform.store.delete("eval_runs", run["id"])
    if run["output_dir"]:
        shutil.rmtree(run["output_dir"], ignore_errors=True)


# -- execution -----------------------------------------------------------------------------------------------------
class _Reporter:
    """Progress and log of a run: into its task when it has one, else into run.log."""

    def __init__(self, platform: Platform, run: dict[str, Any], ctx: TaskContext | None, span=(0.0, 1.0)):
        self.platform, self.run, self.ctx, self.span = platform, run, ctx, span
        self.log_path = ctx.log_path if ctx else Path(run["output_dir"]) / "run.log"

    def log(self, message: str) -> None:
        if self.ctx:
            self.ctx.log(message)
        else:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def progress(self, fraction: float, message: str) -> None:
        _update(self.platform, self.run["id"], progress=fraction)
        if self.ctx:
            low, high = self.span
            self.ctx.progress(low + (high - low) * fraction, f"{self.run['name']}: {message}")


def execute_run(platform: Platform, run_id: int, ctx: TaskContext | None = None, span=(0.0, 1.0)) -> dict[str, Any]:
    """Generate what is missing, then score; update the record; return the summary (used by the task)."""
    run = get_run(platform, run_id)
    report = _Reporter(platform, run, ctx, span)
    _update(platform, run["id"], state="running")
    try:
        items = _read_jsonl(Path(run["output_dir"]) / "items.jsonl")
        report.log(
            f"eval run {run['id']} {run['name']!r}: model {run['model_path']} on {run['target']}, {len(items)} items"
        )
        if run["target"] == "local":
            _generate_local(run, len(items), report)
        else:
            _generate_remote(platform, run, len(items), report)
        report.progress(GENERATION_SHARE, "scoring")
        summary = score_run(platform, run["id"], log=report.log)
    except TaskStopped:
        _update(platform, run["id"], state="stopped")
        report.log("stopped; finished generations are kept (start the run again to resume)")
        raise
    except BaseException as exc:
        _update(platform, run["id"], state="failed")
        report.log(f"failed: {exc}")
        raise
    _update(platform, run["id"], state="completed", progress=1.0)
    report.progress(1.0, "done")
    return summary


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return handle.read().count(b"\n")


def generator_args(run: dict[str, Any], model_path: str, prompts: str, out: str) -> list[str]:
    """Arguments of genscript.py for a run (after the script path)."""
    params = run["gen_params"]
    args = [
        "--model", model_path, "--prompts", prompts, "--out", out,
        "--max-new-tokens", str(params["max_new_tokens"]), "--temperature", str(params["temperature"]),
        "--top-p", str(params["top_p"]), "--samples", str(params["samples"]), "--seed", str(params["seed"]),
        "--batch-size", str(params["batch_size"]), "--backend", params["backend"],
        "--chat-template", params["chat_template"],
    ]  # fmt: skip
    for stop in params.get("stop") or []:
        args += ["--stop", stop]
    return args


def _generate_local(run: dict[str, Any], total: int, report: _Reporter) -> None:
    folder = Path(run["output_dir"])
    out = folder / "generations.jsonl"
    if _count_lines(out) >= total:
        report.log("all items already generated")
        return
    argv = [python_executable(), str(GENSCRIPT)]
    argv += generator_args(run, run["model_path"], str(folder / "prompts.jsonl"), str(out))
    env = platform_python_env({"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"})
    with open(report.log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - an argument list
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        while proc.poll() is None:
            done = _count_lines(out)
            report.progress(GENERATION_SHARE * done / max(1, total), f"generated {done}/{total}")
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        from platform_core.tasks import read_log_tail

        raise InvalidInput(f"generation failed (exit {proc.returncode}): {read_log_tail(report.log_path, 3)}")


# -- remote generation ---------------------------------------------------------------------------------------------
def remote_run_dir(session, run_id: int) -> str:
    return f"{session.workdir().rstrip('/')}/outputs/eval/run-{run_id}"


def _generate_remote(platform: Platform, run: dict[str, Any], total: int, report: _Reporter) -> None:
    """Ship genscript.py and the prompts, run it detached on the server, copy its output back by byte offset."""
    from platform_core.runners.remote_setup import remote_python
    from platform_core.runners.ssh import open_session

    folder = Path(run["output_dir"])
    local_out = folder / "generations.jsonl"
    if _count_lines(local_out) >= total:
        report.log("all items already generated")
        return
    connection = target_location(run["target"])
    session = open_session(platform, connection)
    remote = remote_run_dir(session, run["id"])
    pid = None
    try:
        session.mkdirs(remote)
        session.put_atomic(str(GENSCRIPT), f"{remote}/genscript.py")
        session.put_atomic(str(folder / "prompts.jsonl"), f"{remote}/prompts.jsonl")
        remote_size = session.file_size(f"{remote}/generations.jsonl") or 0
        local_size = _complete_size(local_out)
        if local_size > remote_size:
            _truncate(local_out, local_size)
            session.put_atomic(str(local_out), f"{remote}/generations.jsonl")
        python = remote_python(session)
        report.log(f"generating on {session.describe()} in {remote} with {python}")
        inner = (
            "HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 "
            + shlex.join(
                [python, "genscript.py", *generator_args(run, run["model_path"], "prompts.jsonl", "generations.jsonl")]
            )
            + "; echo $? > exit_code"
        )
        command = (
            f"cd {shlex.quote(remote)} && rm -f exit_code && "
            f"(setsid nohup bash -c {shlex.quote(inner)} >> generate.log 2>&1 < /dev/null & echo $!)"
        )
        log_offset = session.file_size(f"{remote}/generate.log") or 0  # before starting: no line is missed
        pid = int(session.check(["bash", "-c", command], "starting the generator").strip().splitlines()[-1])
        report.log(f"generator started on the server: process group {pid}")
        _follow_remote(session, run, remote, log_offset, total, report)
    except TaskStopped:
        if pid is not None:
            try:
                session.run(["bash", "-c", f"kill -TERM -- -{pid} 2>/dev/null || true"], timeout=10)
                report.log(f"stopped the generator on the server (process group {pid})")
            except RemoteError:
                pass
        raise
    finally:
        session.close()


def _complete_size(path: Path) -> int:
    """Size of a file up to and including its last newline."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    return data.rfind(b"\n") + 1


def _truncate(path: Path, size: int) -> None:
    with open(path, "rb+") as handle:
        handle.truncate(size)


def _follow_remote(session, run, remote: str, log_offset: int, total: int, report: _Reporter) -> None:
    local_out = Path(run["output_dir"]) / "generations.jsonl"
    offset = _complete_size(local_out)
    if local_out.exists():
        _truncate(local_out, offset)
    failures = 0
    while True:
        try:
            chunk = session.read_from(f"{remote}/generations.jsonl", offset)
            complete = chunk[: chunk.rfind(b"\n") + 1]
            if complete:
                with open(local_out, "ab") as handle:
                    handle.write(complete)
                offset += len(complete)
            log_chunk = session.read_from(f"{remote}/generate.log", log_offset)
            if log_chunk:
                log_offset += len(log_chunk)
                for line in log_chunk.decode("utf-8", errors="replace").splitlines():
                    report.log(f"[server] {line}")
            exit_code = session.run(["cat", f"{remote}/exit_code"], timeout=30)
            failures = 0
        except RemoteError as exc:
            failures += 1
            report.log(f"lost the server for a moment ({exc}); retrying")
            if failures > 30:
                raise
            time.sleep(REMOTE_POLL_S * 2)
            continue
        done = _count_lines(local_out)
        report.progress(GENERATION_SHARE * done / max(1, total), f"generated {done}/{total} on the server")
        if exit_code.exited == 0 and exit_code.stdout.strip():
            if session.file_size(f"{remote}/generations.jsonl") not in (None, offset):
                continue  # the last lines arrived after our read: one more round
            code = int(exit_code.stdout.strip())
            if code != 0:
                raise RemoteError(f"generation on the server failed (exit {code}); see the task log")
            return
        time.sleep(REMOTE_POLL_S)


# -- scoring -------------------------------------------------------------------------------------------------------
def load_items(run: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Return the run's eval-set snapshot and its generations by item id."""
    folder = Path(run["output_dir"])
    items = _read_jsonl(folder / "items.jsonl")
    generations = {row["id"]: row for row in _read_jsonl(folder / "generations.jsonl")}
    return items, generations


def score_run(
    platform: Platform,
    run_id: int,
    metrics: list[str] | None = None,
    k: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score a run's kept generations (all metrics of the run, or the given ones); write samples.jsonl and the
    summary; return the summary. Items not generated yet are left out (the summary says `partial`)."""
    run = platform.store.require("eval_runs", int(run_id), "eval run")
    dataset = platform.store.get("datasets", run["dataset_id"]) if run["dataset_id"] else None
    eval_type = eval_type_of(dataset) if dataset else (run.get("summary") or {}).get("eval_type")
    gen = run["gen_params"]
    names = _metric_names(metrics, k, gen["samples"], gen.get("temperature")) if metrics else run["metrics"]
    items, generations = load_items(run)
    done = [item for item in items if item["id"] in generations]
    if not done:
        raise InvalidInput(f"eval run {run['id']} has no generations to score yet")
    eval_items = [
        EvalItem(
            prompt=item["prompt"],
            reference=item["reference"],
            predictions=list(generations[item["id"]]["predictions"]),
            category=item.get("category") or "uncategorized",
            tests=item.get("tests"),
        )
        for item in done
    ]
    started = time.monotonic()
    report = score_items(eval_items, names, eval_type=eval_type, sandbox_options=sandbox_options(gen))
    samples = []
    for position, item in enumerate(done):
        generation = generations[item["id"]]
        samples.append(
            {
                "id": item["id"],
                "category": eval_items[position].category,
                "prompt": item["prompt"],
                "reference": item["reference"],
                "predictions": generation["predictions"],
                "finish": generation.get("finish"),
                "scores": report.item_scores(position),
                "stats": report.item_stats(position),
            }
        )
    _write_jsonl(Path(run["output_dir"]) / "samples.jsonl", samples)
    backends = sorted({g.get("backend") for g in generations.values() if g.get("backend")})
    summary = {
        "overall": report.overall,
        "per_category": report.per_category,
        "keys": list(report.keys),
        "binary": {key: scores.binary for key, scores in report.keys.items()},
        "scales": {key: scores.scale for key, scores in report.keys.items()},
        "metrics": names,
        "eval_type": eval_type,
        "items": len(items),
        "scored": len(done),
        "partial": len(done) < len(items),
        "backend": ", ".join(backends),
        "notes": report.notes,
        "scored_at": time.time(),
        "scoring_seconds": round(time.monotonic() - started, 3),
    }
    platform.store.update("eval_runs", run["id"], summary=summary, metrics=names, updated_at=time.time())
    if log:
        shown = ", ".join(f"{k}={v['value']:.4g}" for k, v in report.overall.items() if v["value"] is not None)
        log(f"scored {len(done)}/{len(items)} items: {shown}")
    return summary


def sandbox_options(gen_params: dict[str, Any]) -> dict[str, Any]:
    """The code sandbox's limits of a run (runs recorded before the options existed get the defaults)."""
    return {
        "timeout_s": float(gen_params.get("code_timeout_s") or GEN_DEFAULTS["code_timeout_s"]),
        "memory_mb": int(gen_params.get("code_memory_mb") or GEN_DEFAULTS["code_memory_mb"]),
    }


def rescore_run(platform: Platform, run_id: int, metrics: list[str] | None = None, k: int | None = None) -> dict:
    """Recompute metrics from the kept generations, without generating again; return the summary."""
    run = get_run(platform, run_id)
    if run["state"] in ACTIVE:
        raise InvalidInput(f"eval run {run['id']} is {run['state']}: wait for it or stop it first")
    return score_run(platform, run["id"], metrics, k)


def load_samples(platform: Platform, run_id: int) -> list[dict[str, Any]]:
    """Return the scored samples of a run (per item: prompt, reference, predictions, scores)."""
    run = get_run(platform, run_id)
    return _read_jsonl(Path(run["output_dir"]) / "samples.jsonl")


# -- tasks ---------------------------------------------------------------------------------------------------------
@task_kind(RUN_KIND)
def eval_run_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Generate and score one eval run (params: run_id)."""
    summary = execute_run(ctx.platform, int(params["run_id"]), ctx)
    return {"run_id": params["run_id"], "overall": {k: v["value"] for k, v in summary["overall"].items()}}


@task_kind(BATCH_KIND)
def eval_batch_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Run several eval runs one after the other (a model comparison); a failed run does not stop the others."""
    run_ids = [int(r) for r in params["run_ids"]]
    states: dict[str, str] = {}
    for number, run_id in enumerate(run_ids):
        span = (number / len(run_ids), (number + 1) / len(run_ids))
        try:
            execute_run(ctx.platform, run_id, ctx, span)
            states[str(run_id)] = "completed"
        except TaskStopped:
            for later in run_ids[number + 1 :]:
                _update(ctx.platform, later, state="stopped")
            raise
        except Exception as exc:  # noqa: BLE001 - one model failing must not cancel the comparison
            ctx.log(f"run {run_id} failed: {exc}")
            states[str(run_id)] = "failed"
    if all(state == "failed" for state in states.values()):
        raise InvalidInput("every run of the comparison failed; see the log")
    return {"runs": states}


def _run_name(text: str) -> str:
    """A valid run name from free text (a model path's last part may hold characters names do not allow)."""
    return re.sub(r"[^\w\u4e00-\u9fff .@+:=,-]", "-", text).strip()[:128]


def launch_comparison(
    platform: Platform,
    name: str,
    models: list[str],
    dataset_id: int | str,
    metrics: list[str] | None = None,
    gen_params: dict[str, Any] | None = None,
    target: str = "local",
    k: int | None = None,
) -> tuple[list[int], int]:
    """Create one run per model (2 to 5) on one eval set and run them one after another; return (run ids, task id)."""
    if not 2 <= len(models) <= 5:
        raise InvalidInput(f"a comparison takes 2 to 5 models, got {len(models)}")
    name = check_name(name, "comparison name")
    run_ids = [
        create_run(platform, _run_name(f"{name} {number} {Path(str(model)).name}"), model, dataset_id, metrics,
                   gen_params, target, k)
        for number, model in enumerate(models, start=1)
    ]  # fmt: skip
    task_id = submit_task(
        platform, BATCH_KIND, TaskTitle("compare", f"Compare {name}", name=name), {"run_ids": run_ids}
    )
    for run_id in run_ids:
        _update(platform, run_id, task_id=task_id)
    return run_ids, task_id


def evaluate_model(
    platform: Platform,
    model: str,
    dataset_id: int | str,
    metrics: list[str] | None = None,
    gen_params: dict[str, Any] | None = None,
    name: str | None = None,
    target: str = "local",
) -> dict[str, Any]:
    """Evaluate a model (registered, checkpoint:<id> or a directory) on an eval set in this process; return
    {"run_id", "summary"}. For other areas, e.g. the jobs area's "before vs after training" check."""
    label = name or _run_name(f"eval {Path(str(model)).name}")
    run_id = create_run(platform, label, model, dataset_id, metrics, gen_params, target)
    summary = execute_run(platform, run_id)
    return {"run_id": run_id, "summary": summary}
