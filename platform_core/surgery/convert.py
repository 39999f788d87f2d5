"""Checkpoints of a training run: listing them, and turning verl FSDP checkpoints into HF models.

verl writes `<output>/global_step_<N>/` (SFT: the shards directly in it; PPO/GRPO: in `actor/`) with the sharded
FSDP state (`model_world_size_<W>_rank_<r>.pt`), `fsdp_config.json` and `huggingface/` (config and tokenizer, plus
full weights when `checkpoint.save_contents` included `hf_model`). TRL writes `checkpoint-<N>/` HF directories.

Conversion runs verl's own merger in a subprocess, which needs no GPU:

    python -m verl.model_merger merge --backend fsdp --local_dir <global_step_N[/actor]> --target_dir <dir>

and is cached: a target that holds a complete HF model newer than the checkpoint's shards is reused. When the run
trained LoRA, the merger writes the base weights plus `lora_adapter/`; the adapter is merged into the base with
peft when a full model is wanted.

    >>> checkpoints = list_checkpoints(Path("outputs/job-3/checkpoints"))
    >>> convert_verl_checkpoint(checkpoints[-1]["path"], converted_dir(platform, checkpoints[-1]["path"]), log=print)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, PlatformError
from platform_core.runners.process import platform_python_env, python_executable
from platform_core.surgery.compat import is_adapter_dir, tensor_index, weight_files
from platform_core.surgery.output import discard, publish
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind

STEP_DIR = re.compile(r"^(?:global_step_|checkpoint-)(\d+)$")
ATTEMPT_DIR = re.compile(r"^attempt-(\d+)$")
SHARD_GLOB = "model_world_size_*_rank_*.pt"
MARKER = ".platform_conversion.json"


def find_verl_checkpoint(path: Path) -> Path | None:
    """Return the directory holding verl's FSDP model shards (the path itself or its actor/), or None."""
    path = Path(path)
    for candidate in (path, path / "actor"):
        if (candidate / "fsdp_config.json").is_file() or any(candidate.glob(SHARD_GLOB)):
            return candidate
    return None


def _has_weights(model_dir: Path) -> bool:
    try:
        weight_files(model_dir)
    except InvalidInput:
        return False
    return (model_dir / "config.json").is_file()


def checkpoint_hf_weights(checkpoint: Path) -> Path | None:
    """Return `huggingface/` of a verl checkpoint when the trainer saved full HF weights there (hf_model), else None.

    A LoRA run saves the PEFT-wrapped state there (base_model.model.*, base_layer, lora_A.default), which no
    AutoModel loads: such a checkpoint needs the merger.
    """
    hf = Path(checkpoint) / "huggingface"
    if not _has_weights(hf):
        return None
    names = tensor_index(hf)
    if any(n.startswith("base_model.model.") or ".lora_" in n for n in names):
        return None
    return hf


def converted_dir(platform: Platform, checkpoint: Path | str) -> Path:
    """Return where the conversion of a checkpoint is cached: workspace cache/surgery/converted/<name>-<hash>."""
    checkpoint = Path(checkpoint).resolve()
    shards = find_verl_checkpoint(checkpoint) or checkpoint
    digest = hashlib.sha1(str(shards).encode()).hexdigest()[:10]
    step = shards.parent.name if shards.name == "actor" else shards.name
    return platform.workspace.cache / "surgery" / "converted" / f"{step}-{digest}"


def _shards_mtime(checkpoint: Path) -> float:
    times = [p.stat().st_mtime for p in checkpoint.glob(SHARD_GLOB)]
    return max(times) if times else 0.0


def conversion_is_current(checkpoint: Path, target: Path, want_full_model: bool = True) -> bool:
    """True when `target` holds a complete HF model written after the checkpoint's shards (and LoRA is merged)."""
    target = Path(target)
    if not _has_weights(target):
        return False
    if want_full_model and (target / "lora_adapter").is_dir():
        marker = _read_marker(target)
        if not marker.get("lora_merged"):
            return False
    oldest_weight = min(p.stat().st_mtime for p in weight_files(target))
    return oldest_weight >= _shards_mtime(Path(checkpoint))


def _read_marker(target: Path) -> dict[str, Any]:
    try:
        return json.loads((target / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def converted_form(platform: Platform, checkpoint: Path) -> Path | None:
    """Return an HF directory with the checkpoint's weights (saved by the trainer or converted and current), or None."""
    return checkpoint_hf_weights(checkpoint) or (
        converted_dir(platform, checkpoint)
        if conversion_is_current(checkpoint, converted_dir(platform, checkpoint))
        else None
    )


def _stream(argv: list[str], log: Callable[[str], None], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run argv, passing each output line (tqdm's carriage-return updates included) to `log`; return (code, tail)."""
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)  # noqa: S603 - list
    assert proc.stdout is not None
    pending = b""
    try:
        while True:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for raw in lines:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    log(line)
                    tail = (tail + [line])[-20:]
        if pending.strip():
            log(pending.decode("utf-8", errors="replace").rstrip())
        return proc.wait(), tail
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def convert_verl_checkpoint(
    checkpoint_dir: Path | str,
    target_dir: Path | str,
    log: Callable[[str], None] = print,
    full_model: bool = True,
) -> dict[str, Any]:
    """Convert a verl FSDP checkpoint into an HF model directory at `target_dir` (skipped when already current).

    Runs `python -m verl.model_merger merge --backend fsdp` in a subprocess and streams its log. With a LoRA run
    and `full_model`, the adapter it writes to `lora_adapter/` is merged into the base (kept alongside for
    reference). Returns {"out", "skipped", "lora", "seconds"}.
    """
    from platform_core.surgery.lora import merge_adapter

    started = time.monotonic()
    source = Path(checkpoint_dir).resolve()
    checkpoint = find_verl_checkpoint(source)
    if checkpoint is None:
        raise InvalidInput(
            f"checkpoint: {source} is not a verl FSDP checkpoint (no fsdp_config.json or {SHARD_GLOB} in it or in "
            "its actor/)"
        )
    target = Path(target_dir).resolve()
    if conversion_is_current(checkpoint, target, full_model):
        log(f"{target} is up to date with {checkpoint}; not converting again")
        return {"out": str(target), "skipped": True, "lora": (target / "lora_adapter").is_dir(), "seconds": 0.0}
    # Staged one level down in a dot directory, so a model scan of target.parent never sees a partial model.
    work = target.parent / ".staging"
    staging = work / f"{target.name}.converting-{os.getpid()}"
    merged = work / f"{target.name}.merged-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    discard(staging)
    argv = [
        python_executable(),
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(checkpoint),
        "--target_dir",
        str(staging),
    ]
    log("running " + " ".join(argv))
    try:
        code, tail = _stream(argv, log, platform_python_env())
        if code != 0:
            raise PlatformError(
                f"verl.model_merger failed on {checkpoint} (exit code {code}): " + " | ".join(tail[-3:])
            )
        lora = (staging / "lora_adapter" / "adapter_config.json").is_file()
        result_dir = staging
        if lora and full_model:
            log("the checkpoint holds a LoRA adapter; merging it into the base weights with peft")
            discard(merged)
            merge_adapter(staging, staging / "lora_adapter", merged)
            (staging / "lora_adapter").rename(merged / "lora_adapter")
            discard(staging)
            result_dir = merged
        (result_dir / MARKER).write_text(
            json.dumps(
                {"checkpoint": str(checkpoint), "lora_merged": bool(lora and full_model), "converted_at": time.time()}
            )
        )
        publish(result_dir, target)
    except BaseException:
        discard(staging)
        discard(merged)
        raise
    finally:
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
    seconds = time.monotonic() - started
    log(f"converted {checkpoint} -> {target} in {seconds:.1f} s")
    return {"out": str(target), "skipped": False, "lora": lora, "seconds": seconds}


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe_checkpoint(path: Path) -> dict[str, Any] | None:
    """Return {step, path, format, size_bytes, hf_weights, lora} for one step directory, or None if it is not one."""
    match = STEP_DIR.match(path.name)
    if not match or not path.is_dir():
        return None
    shards = find_verl_checkpoint(path)
    hf = checkpoint_hf_weights(shards) if shards else None
    if shards is not None:
        fmt = "verl-fsdp" + ("+hf" if hf else "")
        lora = (shards / "lora_train_meta.json").is_file()
    elif is_adapter_dir(path):
        fmt, lora = "lora-adapter", True
    elif _has_weights(path):
        fmt, lora, hf = "hf", False, path
    else:
        fmt, lora = "unknown", False
    return {
        "step": int(match.group(1)),
        "path": str(path),
        "format": fmt,
        "size_bytes": _dir_size(path),
        "hf_weights": str(hf) if hf else None,
        "lora": lora,
    }


def list_checkpoints(root: Path | str) -> list[dict[str, Any]]:
    """Return the checkpoints (global_step_N or checkpoint-N directories) under `root`, ordered by step."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"checkpoint directory: {root} is not a directory")
    found = [d for d in (describe_checkpoint(child) for child in root.iterdir()) if d is not None]
    return sorted(found, key=lambda c: c["step"])


def read_metrics_jsonl(paths: list[Path | str]) -> dict[int, dict[str, float]]:
    """Return {step: {metric: value}} merged from verl FileLogger JSONL files ({"step", "data"} per line).

    A step may appear on several lines (SFT logs val/loss separately) and in several files (one per attempt);
    later lines win. Non-numeric values and nulls (verl writes NaN as null) are dropped.
    """
    merged: dict[int, dict[str, float]] = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    step = int(record["step"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a line being written while we read, or a foreign line
                data = record.get("data", {k: v for k, v in record.items() if k != "step"})
                values = {
                    k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
                merged.setdefault(step, {}).update(values)
    return merged


def metrics_files(output_dir: Path | str) -> list[Path]:
    """Return a job's metrics files (`attempt-N/metrics.jsonl`) by attempt number, so later attempts win.

    Sorted as numbers: attempt-10 comes after attempt-2 (a text sort would put it first and let attempt-2's
    values overwrite attempt-10's in `read_metrics_jsonl`).
    """
    found = []
    for path in Path(output_dir).glob("attempt-*/metrics.jsonl"):
        match = ATTEMPT_DIR.match(path.parent.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return [path for _number, path in sorted(found)]


def attach_metrics(checkpoints: list[dict[str, Any]], metrics: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """Return the checkpoints with `metrics` set to what was logged at their exact step ({} when nothing was)."""
    return [{**c, "metrics": dict(metrics.get(int(c["step"]), {}))} for c in checkpoints]


def plan_convert(
    platform: Platform, checkpoint: str, out: str | None = None, full_model: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Check a conversion request; return task parameters (target: the cache, or `out` inside models/)."""
    from platform_core.security.validation import check_path_text

    check_path_text(str(checkpoint), "checkpoint", allow_home=True)
    source = Path(checkpoint).expanduser().resolve()
    if find_verl_checkpoint(source) is None:
        raise InvalidInput(
            f"checkpoint: {source} is not a verl FSDP checkpoint (no fsdp_config.json or {SHARD_GLOB} in it or in "
            "its actor/)"
        )
    if out:
        from platform_core.surgery.output import resolve_output

        target = resolve_output(platform, out, overwrite, inputs=[source])
    else:
        target = converted_dir(platform, source)
    return {"checkpoint": str(source), "target": str(target), "full_model": bool(full_model), "register": bool(out)}


def start_convert(
    platform: Platform, checkpoint: str, out: str | None = None, full_model: bool = True, overwrite: bool = False
) -> int:
    """Check the request, then start the "surgery.convert" task; return its id."""
    params = plan_convert(platform, checkpoint, out, full_model, overwrite)
    name = Path(params["checkpoint"]).name
    return submit_task(platform, "surgery.convert", TaskTitle("convert", f"Convert {name} to HF", name=name), params)


@task_kind("surgery.convert")
def convert_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Convert one verl checkpoint to HF (params from `plan_convert`); registers it when written to models/."""
    from platform_core.surgery.output import register_output

    ctx.progress(0.05, "running verl.model_merger")
    result = convert_verl_checkpoint(params["checkpoint"], params["target"], ctx.log, params.get("full_model", True))
    if params.get("register"):
        result["model_id"] = register_output(
            ctx.platform, Path(result["out"]), "export", {"method": "convert", "checkpoint": params["checkpoint"]}
        )
    if params.get("full_model", True):
        record_hf_path(ctx.platform, Path(params["checkpoint"]), Path(result["out"]), ctx.log)
    return result


def job_checkpoint_row(platform: Platform, checkpoint: Path | str) -> dict[str, Any] | None:
    """Return the jobs area's `checkpoints` row of a local checkpoint directory (or of its actor/), or None."""
    path = Path(checkpoint).resolve()
    step_dir = path.parent if path.name == "actor" else path
    match = STEP_DIR.match(step_dir.name)
    if not match:
        return None
    for row in platform.store.find("checkpoints", "step = ?", (int(match.group(1)),)):
        if (row.get("location") or "local") != "local" or not row.get("path"):
            continue
        try:
            if Path(row["path"]).expanduser().resolve() == step_dir:
                return row
        except OSError:
            continue
    return None


def record_hf_path(
    platform: Platform, checkpoint: Path | str, hf_dir: Path | str, log: Callable[[str], None] | None = None
) -> int | None:
    """Write `hf_dir` into `checkpoints.hf_path` of the job checkpoint at `checkpoint` (if it is one); return its id.

    This is what `checkpoint:<id>` resolves to in evaluation (platform_core/evaluation/runs.py:resolve_model).
    """
    row = job_checkpoint_row(platform, checkpoint)
    if row is None:
        return None
    platform.store.update("checkpoints", row["id"], hf_path=str(Path(hf_dir).resolve()))
    if log:
        log(f"checkpoint #{row['id']} (job #{row['job_id']}, step {row['step']}): Hugging Face model at {hf_dir}")
    return row["id"]


def convert_pending(
    ctx: TaskContext, checkpoints: list[str | Path], start: float = 0.0, span: float = 1.0, full_model: bool = True
) -> list[dict[str, Any]]:
    """Convert verl checkpoints into their cache one after the other (one model in memory at a time).

    Progress runs from `start` to `start + span`, one equal part per checkpoint; each finished conversion is
    written into its job checkpoint's hf_path. Returns the results of `convert_verl_checkpoint`.
    """
    results = []
    count = len(checkpoints)
    for number, checkpoint in enumerate(checkpoints):
        checkpoint = Path(checkpoint)
        name = checkpoint.parent.name if checkpoint.name == "actor" else checkpoint.name
        message = f"converting {name} ({number + 1}/{count}) with verl.model_merger"
        ctx.progress(start + span * number / count, message)
        ctx.log(message)
        result = convert_verl_checkpoint(checkpoint, converted_dir(ctx.platform, checkpoint), ctx.log, full_model)
        if full_model:
            record_hf_path(ctx.platform, checkpoint, result["out"], ctx.log)
        results.append({"checkpoint": str(checkpoint), **result})
    ctx.progress(start + span, f"converted {count} checkpoint(s)")
    return results


def plan_convert_many(platform: Platform, checkpoints: list[str]) -> dict[str, Any]:
    """Check a list of checkpoints to convert into the cache, one after the other; return the task parameters."""
    from platform_core.security.validation import check_path_text

    if not checkpoints:
        raise InvalidInput("checkpoints: choose at least one checkpoint to convert")
    found: list[str] = []
    for value in checkpoints:
        check_path_text(str(value), "checkpoint", allow_home=True)
        source = Path(value).expanduser().resolve()
        shards = find_verl_checkpoint(source)
        if shards is None:
            raise InvalidInput(
                f"checkpoint: {source} is not a verl FSDP checkpoint (no fsdp_config.json or {SHARD_GLOB} in it or "
                "in its actor/)"
            )
        if str(source) not in found:
            found.append(str(source))
    return {"checkpoints": found}


def start_convert_many(platform: Platform, checkpoints: list[str]) -> int:
    """Check the list, then start one "surgery.convert_many" task converting them in turn; return its id."""
    params = plan_convert_many(platform, checkpoints)
    return submit_task(
        platform,
        "surgery.convert_many",
        TaskTitle(
            "convert_many", f"Convert {len(params['checkpoints'])} checkpoints to HF", n=len(params["checkpoints"])
        ),
        params,
    )


@task_kind("surgery.convert_many")
def convert_many_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Convert several verl checkpoints into the cache sequentially (params from `plan_convert_many`)."""
    results = convert_pending(ctx, params["checkpoints"])
    return {"converted": results, "outs": [r["out"] for r in results]}
