"""Export: copy an HF model (a chosen checkpoint, converted if needed) into the workspace models/ and register it.

A verl FSDP checkpoint is converted with verl's merger first (cached); a LoRA adapter directory (TRL's adapter-only
`checkpoint-N`) is merged into its base with peft instead of being copied.

The copy holds the safetensors weights (and their index), config.json, generation_config.json and the tokenizer,
and nothing else (no optimizer state, no FSDP shards), so it can be the base of a new job or be evaluated.

    >>> model_id = export_model(platform, "outputs/job-3/global_step_300/huggingface", "qwen-sft-step300")
    >>> start_export(platform, "outputs/job-3/global_step_300", "qwen-sft-step300")   # converts first if needed
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.surgery.compat import INDEX_FILE, SIDE_FILES, is_adapter_dir, locate, resolve_model_dir, weight_files
from platform_core.surgery.convert import (
    convert_verl_checkpoint,
    converted_dir,
    converted_form,
    find_verl_checkpoint,
    record_hf_path,
)
from platform_core.surgery.output import building, copy_side_files, register_output, resolve_output
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind


def copy_model(source: Path, target: Path, progress: Callable[[float, str], None] | None = None) -> int:
    """Copy the weights, index, config and tokenizer files of an HF model directory; return the bytes copied."""
    files = weight_files(source)
    total = sum(f.stat().st_size for f in files) or 1
    done = 0
    for number, path in enumerate(files, start=1):
        shutil.copyfile(path, target / path.name)
        done += path.stat().st_size
        if progress:
            progress(done / total, f"file {number}/{len(files)}")
    if (source / INDEX_FILE).is_file():
        shutil.copyfile(source / INDEX_FILE, target / INDEX_FILE)
    copy_side_files(source, target, SIDE_FILES)
    return done


def export_model(
    platform: Platform,
    source_dir: str | Path,
    name: str,
    overwrite: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> int:
    """Copy an HF model directory into models/<name> and register it (source "export"); return the model id."""
    source = resolve_model_dir(platform, str(source_dir), "source")
    out = resolve_output(platform, name, overwrite, inputs=[source])
    with building(platform, out) as staging:
        copy_model(source, staging, progress)
    return register_output(platform, out, "export", {"method": "export", "source": str(source)})


def plan_export(platform: Platform, source: str, name: str, overwrite: bool = False) -> dict[str, Any]:
    """Check an export before it runs; return the task parameters.

    `source` is an HF model directory, a registered model, a verl checkpoint (converted by the task first when it
    is not yet; the conversion is cached) or a LoRA adapter directory such as TRL's `checkpoint-N` (merged into
    its base with peft by the task). A relative path is taken from the workspace models/ or the current directory.
    """
    path = locate(platform, source, "source")
    if is_adapter_dir(path):
        from platform_core.surgery.lora import plan_lora_merge

        lora = plan_lora_merge(platform, str(path), None, name, overwrite)
        return {
            "source": str(path),
            "adapter": lora["adapter"],
            "base": lora["base"],
            "checkpoint": None,
            "job_checkpoint": str(path),
            "out": lora["out"],
            "overwrite": bool(overwrite),
        }
    checkpoint = find_verl_checkpoint(path)
    if checkpoint is not None and converted_form(platform, checkpoint) is None:
        out = resolve_output(platform, name, overwrite, inputs=[path])
        return {
            "source": str(path),
            "checkpoint": str(checkpoint),
            "job_checkpoint": str(path),
            "out": str(out),
            "overwrite": bool(overwrite),
        }
    resolved = resolve_model_dir(platform, str(path), "source")
    out = resolve_output(platform, name, overwrite, inputs=[resolved])
    return {
        "source": str(resolved),
        "checkpoint": None,
        "job_checkpoint": str(path),
        "out": str(out),
        "overwrite": bool(overwrite),
    }


def start_export(platform: Platform, source: str, name: str, overwrite: bool = False) -> int:
    """Check the request, then start the "surgery.export" task; return its id."""
    params = plan_export(platform, source, name, overwrite)
    return submit_task(
        platform,
        "surgery.export",
        TaskTitle(
            "export",
            f"Export {Path(params['source']).name} -> {Path(params['out']).name}",
            source=Path(params["source"]).name,
            out=Path(params["out"]).name,
        ),
        params,
    )


@task_kind("surgery.export")
def export_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Export a model and register it (params from plan_export).

    A verl checkpoint not converted yet is converted first (cached); a LoRA adapter is merged into its base with
    peft. When the source is a job's checkpoint, its `checkpoints.hf_path` is set to the exported model.
    """
    from platform_core.surgery.lora import merge_adapter

    out = Path(params["out"])
    source = params["source"]
    if params.get("adapter"):
        adapter, base = params["adapter"], params["base"]
        resolve_output(ctx.platform, str(out), params.get("overwrite", False), inputs=[Path(adapter), Path(base)])
        ctx.log(f"merging the LoRA adapter {adapter} into its base {base} with peft")
        ctx.progress(0.1, "loading the base model and the adapter")
        with building(ctx.platform, out) as staging:
            merge_adapter(Path(base), Path(adapter), staging)
        model_id = register_output(
            ctx.platform, out, "export", {"method": "export", "source": adapter, "adapter": adapter, "base": base}
        )
    else:
        if params.get("checkpoint"):
            checkpoint = Path(params["checkpoint"])
            ctx.progress(0.02, "converting the checkpoint with verl.model_merger")
            source = convert_verl_checkpoint(checkpoint, converted_dir(ctx.platform, checkpoint), ctx.log)["out"]
        model_id = export_model(
            ctx.platform,
            source,
            str(out),
            params.get("overwrite", False),
            progress=lambda f, m: ctx.progress(0.5 + 0.45 * f, m),
        )
    ctx.log(f"exported {source} -> {out} (model #{model_id})")
    if params.get("job_checkpoint"):
        record_hf_path(ctx.platform, params["job_checkpoint"], out, ctx.log)
    return {"out": str(out), "model_id": model_id, "source": source}
