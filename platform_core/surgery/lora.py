"""LoRA adapters: find them, check they fit a base model, and merge them into it with peft.

    >>> adapter_info(Path("outputs/job-4/checkpoint-40"))["base_model_name_or_path"]
    '/work/models/Qwen2.5-0.5B'
    >>> start_lora_merge(platform, "outputs/job-4/checkpoint-40", out="qwen-sft-merged")   # base from the adapter

The merge is `PeftModel.from_pretrained(base, adapter).merge_and_unload()`, saved with `save_pretrained`
(safetensors) together with the tokenizer (the adapter's own when it has one, else the base's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound
from platform_core.security.validation import check_path_text
from platform_core.surgery.compat import ADAPTER_CONFIG, read_safetensors_header, resolve_model_dir, tensor_index
from platform_core.surgery.output import building, copy_tokenizer, register_output, resolve_output
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def adapter_info(path: Path | str) -> dict[str, Any] | None:
    """Return the adapter's config facts (peft_type, base_model_name_or_path, r, lora_alpha, target_modules) or None."""
    config_path = Path(path) / ADAPTER_CONFIG
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{config_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    modules = config.get("target_modules")
    return {
        "path": str(Path(path)),
        "peft_type": config.get("peft_type"),
        "base_model_name_or_path": config.get("base_model_name_or_path"),
        "r": config.get("r"),
        "lora_alpha": config.get("lora_alpha"),
        "target_modules": sorted(modules) if isinstance(modules, list) else modules,
    }


def find_adapters(root: Path | str, depth: int = 2) -> list[Path]:
    """Return adapter directories (with adapter_config.json) at `root` or up to `depth` levels below it."""
    root = Path(root)
    found = [root] if (root / ADAPTER_CONFIG).is_file() else []
    level = [root]
    for _ in range(depth):
        level = [c for d in level if d.is_dir() for c in sorted(d.iterdir()) if c.is_dir()]
        found += [d for d in level if (d / ADAPTER_CONFIG).is_file()]
    return found


def check_adapter_fits(base_dir: Path, adapter_dir: Path) -> list[str]:
    """Return reasons the adapter's LoRA matrices do not fit the base's weights (empty when they fit).

    Compares safetensors headers only: lora_A is [r, in] and lora_B is [out, r] for a base weight [out, in].
    """
    weights = adapter_dir / ADAPTER_WEIGHTS
    if not weights.is_file():
        return []  # a .bin adapter: peft checks it when loading
    base = tensor_index(base_dir)
    problems: list[str] = []
    for name, info in read_safetensors_header(weights).items():
        if name == "__metadata__" or not (".lora_A." in name or ".lora_B." in name):
            continue
        module = name.removeprefix("base_model.model.").split(".lora_")[0]
        target = base.get(f"{module}.weight")
        if target is None:
            problems.append(f"{adapter_dir} adapts {module}, which {base_dir} does not have")
            break
        shape = info["shape"]
        if ".lora_A." in name and shape[-1] != target.shape[-1]:
            problems.append(
                f"{name} expects {shape[-1]} inputs but {module}.weight in {base_dir} has {target.shape[-1]}"
            )
            break
        if ".lora_B." in name and shape[0] != target.shape[0]:
            problems.append(
                f"{name} produces {shape[0]} outputs but {module}.weight in {base_dir} has {target.shape[0]}"
            )
            break
    return problems


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, dtype: str = "auto") -> None:
    """Merge a LoRA adapter into its base with peft and save the full model and tokenizer into `out_dir`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch_dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))
    copy_tokenizer([adapter_dir, base_dir], out_dir)


def _resolve_base(platform: Platform, adapter: Path, base: str | None) -> Path:
    if base:
        return resolve_model_dir(platform, base, "base model")
    named = (adapter_info(adapter) or {}).get("base_model_name_or_path")
    if not named:
        raise InvalidInput(f"base model: {adapter} does not name its base (base_model_name_or_path); choose the base")
    try:
        return resolve_model_dir(platform, named, "base model")
    except (NotFound, InvalidInput) as exc:
        raise InvalidInput(
            f"base model: the adapter names {named!r} as its base, which is not usable on this machine ({exc}); "
            "choose the base model directory"
        ) from exc


def plan_lora_merge(
    platform: Platform,
    adapter: str,
    base: str | None = None,
    out: str = "",
    overwrite: bool = False,
    dtype: str = "auto",
) -> dict[str, Any]:
    """Check a LoRA merge before it runs (adapter, base that fits it, output place); return the task parameters."""
    check_path_text(str(adapter), "adapter", allow_home=True)
    adapter_dir = Path(adapter).expanduser()
    if not adapter_dir.is_absolute() and (platform.workspace.models / adapter_dir).is_dir():
        adapter_dir = platform.workspace.models / adapter_dir
    adapter_dir = adapter_dir.resolve()
    if adapter_info(adapter_dir) is None:
        raise InvalidInput(f"adapter: {adapter_dir} has no {ADAPTER_CONFIG}; it is not a LoRA adapter directory")
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise InvalidInput(f"dtype: {dtype!r} is not one of auto, float32, bfloat16, float16")
    base_dir = _resolve_base(platform, adapter_dir, base)
    problems = check_adapter_fits(base_dir, adapter_dir)
    if problems:
        raise InvalidInput("the adapter does not fit this base model: " + "; ".join(problems))
    target = resolve_output(platform, out, overwrite, inputs=[adapter_dir, base_dir])
    return {
        "adapter": str(adapter_dir),
        "base": str(base_dir),
        "out": str(target),
        "overwrite": bool(overwrite),
        "dtype": dtype,
    }


def start_lora_merge(
    platform: Platform,
    adapter: str,
    base: str | None = None,
    out: str = "",
    overwrite: bool = False,
    dtype: str = "auto",
) -> int:
    """Check the request, then start the "surgery.lora_merge" task; return its id."""
    params = plan_lora_merge(platform, adapter, base, out, overwrite, dtype)
    return submit_task(
        platform,
        "surgery.lora_merge",
        TaskTitle(
            "lora",
            f"Merge LoRA {Path(params['adapter']).name} -> {Path(params['out']).name}",
            adapter=Path(params["adapter"]).name,
            out=Path(params["out"]).name,
        ),
        params,
    )


@task_kind("surgery.lora_merge")
def lora_merge_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Merge an adapter into its base and register the full model (params from `plan_lora_merge`)."""
    plan = plan_lora_merge(
        ctx.platform, params["adapter"], params["base"], params["out"], params["overwrite"], params.get("dtype", "auto")
    )
    out = Path(plan["out"])
    ctx.log(f"adapter {plan['adapter']} into base {plan['base']}")
    ctx.progress(0.1, "loading the base model and the adapter")
    with building(ctx.platform, out) as staging:
        merge_adapter(Path(plan["base"]), Path(plan["adapter"]), staging, plan["dtype"])
    model_id = register_output(
        ctx.platform, out, "merge", {"method": "lora", "adapter": plan["adapter"], "base": plan["base"]}
    )
    ctx.log(f"registered model #{model_id} {out.name}")
    return {"out": str(out), "model_id": model_id}
