"""Weight averaging (SWA / EMA) of HF checkpoints, streamed tensor by tensor from safetensors.

Peak memory is one fp32 accumulator and one input tensor at a time plus the output shard being filled: no
checkpoint is ever loaded whole. Each tensor is read through `safetensors.safe_open` and the file is closed
again right away, so pages of the (memory-mapped) inputs do not pile up in the process.

    >>> average_weights(4, "ema", decay=0.5)        # oldest first; newer checkpoints weigh more
    [0.0667, 0.1333, 0.2667, 0.5333]                # (rounded) w_i = d^(N-1-i) / sum_j d^(N-1-j)
    >>> start_average(platform, ["ckpt/step_100", "ckpt/step_200"], mode="uniform", out="swa-run1")
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.surgery.compat import (
    FLOAT_DTYPES,
    INDEX_FILE,
    SIDE_FILES,
    SINGLE_FILE,
    TensorInfo,
    check_ready,
    resolve_inputs,
    tensor_index,
)
from platform_core.surgery.convert import convert_pending
from platform_core.surgery.output import building, copy_side_files, register_output, resolve_output
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind

MODES = ("uniform", "ema")
DEFAULT_SHARD_BYTES = 1_000_000_000
DEFAULT_DECAY = 0.9
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(value: str | int | float) -> int:
    """Return a byte count from 500000000, "500MB", "2GB" or "1.5G"."""
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise InvalidInput(f"shard size: {value!r} is not a size (e.g. 500MB, 2GB)")
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < 1_000_000:
        raise InvalidInput(f"shard size: {value!r} is below 1 MB")
    return size


def average_weights(count: int, mode: str = "uniform", decay: float = DEFAULT_DECAY) -> list[float]:
    """Return the normalised weights of `count` checkpoints ordered oldest to newest.

    uniform: 1/N each. ema: w_i proportional to decay**(N-1-i), so the newest weighs most and decay=1 is uniform.
    """
    if count < 1:
        raise InvalidInput("checkpoints: at least one is required")
    if mode not in MODES:
        raise InvalidInput(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "uniform":
        return [1.0 / count] * count
    if not 0 < float(decay) <= 1:
        raise InvalidInput(f"decay: {decay} must be in (0, 1]")
    raw = [float(decay) ** (count - 1 - i) for i in range(count)]
    total = sum(raw)
    return [w / total for w in raw]


def _read(info: TensorInfo, name: str):
    from safetensors import safe_open

    with safe_open(str(info.file), framework="pt", device="cpu") as handle:
        return handle.get_tensor(name)


def _weighted_sum(infos: list[TensorInfo], weights: list[float], name: str):
    """Return sum_i w_i * tensor_i, accumulated in fp32 (fp64 for fp64 inputs), in the newest input's dtype."""
    import torch

    acc_dtype = torch.float64 if any(i.dtype == "F64" for i in infos) else torch.float32
    acc = None
    out_dtype = None
    for info, weight in zip(infos, weights, strict=True):
        tensor = _read(info, name)
        if acc is None:
            acc = tensor.to(acc_dtype) * weight
        else:
            acc.add_(tensor, alpha=weight)
        out_dtype = tensor.dtype
        del tensor
    return acc if acc.dtype == out_dtype else acc.to(out_dtype)


def average_checkpoints(
    inputs: list[Path],
    out_dir: Path,
    weights: list[float],
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write the weighted average of HF checkpoints (oldest first) into `out_dir` as sharded safetensors.

    Floating tensors are accumulated in fp32 (fp64 if an input is fp64) and cast back to the newest checkpoint's
    dtype; other tensors (integer buffers) must be equal in all inputs and are copied. config.json,
    generation_config.json and the tokenizer come from the newest checkpoint. Returns shard and tensor counts.
    """
    import torch
    from safetensors.torch import save_file

    if len(inputs) != len(weights):
        raise InvalidInput(f"weights: {len(weights)} given for {len(inputs)} checkpoints")
    indexes = [tensor_index(p) for p in inputs]
    newest = indexes[-1]
    for path, index in zip(inputs, indexes, strict=True):
        if set(index) != set(newest):
            missing = sorted(set(newest) - set(index)) or sorted(set(index) - set(newest))
            raise InvalidInput(f"checkpoints: {path} and {inputs[-1]} hold different tensors (e.g. {missing[0]})")
    total_bytes = sum(info.nbytes for index in indexes for info in index.values()) or 1
    done_bytes, last_report = 0, 0.0
    shards: list[tuple[Path, list[str]]] = []
    shard: dict[str, Any] = {}
    shard_size = 0

    def flush() -> None:
        nonlocal shard, shard_size
        if shard:
            path = out_dir / f"partial-{len(shards):05d}.safetensors"
            save_file(shard, str(path), metadata={"format": "pt"})
            shards.append((path, list(shard)))
        shard, shard_size = {}, 0

    for position, name in enumerate(newest):
        infos = [index[name] for index in indexes]
        for path, info in zip(inputs, infos, strict=True):
            if info.shape != infos[-1].shape:
                raise InvalidInput(
                    f"checkpoints: {name} has shape {list(infos[-1].shape)} in {inputs[-1]} but "
                    f"{list(info.shape)} in {path}"
                )
        if all(i.dtype in FLOAT_DTYPES for i in infos):
            result = _weighted_sum(infos, weights, name)
        else:
            result = _read(infos[0], name)
            for path, info in zip(inputs[1:], infos[1:], strict=True):
                other = _read(info, name)
                if other.dtype != result.dtype or not torch.equal(other, result):
                    raise InvalidInput(
                        f"checkpoints: {name} is not floating point ({infos[0].dtype}) and differs between "
                        f"{inputs[0]} and {path}, so it cannot be averaged"
                    )
                del other
        nbytes = result.numel() * result.element_size()
        if shard and shard_size + nbytes > shard_bytes:
            flush()
        shard[name] = result.contiguous()
        shard_size += nbytes
        del result
        done_bytes += sum(i.nbytes for i in infos)
        if progress and (time.monotonic() - last_report > 0.5 or position == len(newest) - 1):
            last_report = time.monotonic()
            progress(done_bytes / total_bytes, f"tensor {position + 1}/{len(newest)}")
    flush()
    weight_map, total_size = _finish_shards(out_dir, shards)
    copy_side_files(inputs[-1], out_dir, SIDE_FILES, replace=True)
    return {"shards": len(shards), "tensors": len(weight_map), "total_size": total_size}


def _finish_shards(out_dir: Path, shards: list[tuple[Path, list[str]]]) -> tuple[dict[str, str], int]:
    """Rename the written shards to the HF names and write the index when there are several."""
    weight_map: dict[str, str] = {}
    total_size = 0
    count = len(shards)
    for number, (path, names) in enumerate(shards, start=1):
        final = SINGLE_FILE if count == 1 else f"model-{number:05d}-of-{count:05d}.safetensors"
        path.rename(out_dir / final)
        for name in names:
            weight_map[name] = final
    for final in set(weight_map.values()):
        total_size += (out_dir / final).stat().st_size
    if count > 1:
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        (out_dir / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return weight_map, total_size


def plan_average(
    platform: Platform,
    checkpoints: list[str],
    mode: str = "uniform",
    decay: float = DEFAULT_DECAY,
    out: str = "",
    overwrite: bool = False,
    shard_size: str | int = DEFAULT_SHARD_BYTES,
) -> dict[str, Any]:
    """Check an averaging request before anything runs; return the task parameters (with the weights shown).

    Refuses fewer than two or repeated checkpoints, different tensor sets or shapes (naming the tensor), and an
    output outside models/ or already occupied (unless `overwrite`).
    """
    if len(checkpoints) < 2:
        raise InvalidInput(f"checkpoints: at least two are needed to average, got {len(checkpoints)}")
    dirs, pending, pending_notes = resolve_inputs(
        platform, list(checkpoints), [f"checkpoint {i + 1}" for i in range(len(checkpoints))]
    )
    repeated = sorted({str(d) for d in dirs if dirs.count(d) > 1})
    if repeated:
        raise InvalidInput(f"checkpoints: {repeated[0]} is listed more than once")
    weights = average_weights(len(dirs), mode, decay)
    report = check_ready(dirs, pending)
    target = resolve_output(platform, out, overwrite, inputs=dirs)
    return {
        "checkpoints": [str(d) for d in dirs],
        "convert": [str(p) for p in pending.values()],
        "mode": mode,
        "decay": float(decay) if mode == "ema" else None,
        "weights": weights,
        "out": str(target),
        "overwrite": bool(overwrite),
        "shard_bytes": parse_size(shard_size),
        "notes": pending_notes + report["notes"],
    }


def start_average(
    platform: Platform,
    checkpoints: list[str],
    mode: str = "uniform",
    decay: float = DEFAULT_DECAY,
    out: str = "",
    overwrite: bool = False,
    shard_size: str | int = DEFAULT_SHARD_BYTES,
) -> int:
    """Check the request, then start the "surgery.average" task; return its id."""
    params = plan_average(platform, checkpoints, mode, decay, out, overwrite, shard_size)
    n, name = len(params["checkpoints"]), Path(params["out"]).name
    title = TaskTitle("average", f"Average {n} checkpoints ({mode}) -> {name}", n=n, mode=mode, out=name)
    return submit_task(platform, "surgery.average", title, params)


@task_kind("surgery.average")
def average_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Average checkpoints into a new registered model (params from `plan_average`).

    verl checkpoints not converted yet are converted first (cached, one after the other), then the whole request
    is checked again on the converted models.
    """
    start = 0.0
    if params.get("convert"):
        convert_pending(ctx, params["convert"], 0.0, 0.5)
        start = 0.5
    plan = plan_average(
        ctx.platform,
        params["checkpoints"],
        params["mode"],
        params.get("decay") or DEFAULT_DECAY,
        params["out"],
        params.get("overwrite", False),
        params.get("shard_bytes", DEFAULT_SHARD_BYTES),
    )
    if plan["convert"]:
        raise InvalidInput(f"checkpoints: {plan['convert'][0]} is still not converted after its conversion")
    out = Path(plan["out"])
    for path, weight in zip(plan["checkpoints"], plan["weights"], strict=True):
        ctx.log(f"{weight:.4f}  {path}")
    for note in plan["notes"]:
        ctx.log(f"note: {note}")
    with building(ctx.platform, out) as staging:
        stats = average_checkpoints(
            [Path(p) for p in plan["checkpoints"]],
            staging,
            plan["weights"],
            plan["shard_bytes"],
            progress=lambda f, m: ctx.progress(start + (0.98 - start) * f, m),
        )
    ctx.log(f"wrote {stats['tensors']} tensors in {stats['shards']} shard(s), {stats['total_size'] / 1e6:.1f} MB")
    recipe = {
        "method": f"average-{plan['mode']}",
        "inputs": plan["checkpoints"],
        "weights": plan["weights"],
        "decay": plan["decay"],
    }
    model_id = register_output(ctx.platform, out, "average", recipe)
    ctx.log(f"registered model #{model_id} {out.name}")
    return {"out": str(out), "model_id": model_id, "weights": plan["weights"], **stats}
