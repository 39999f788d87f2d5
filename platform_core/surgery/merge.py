"""Model merges through mergekit's Python API: SLERP, TIES, DARE (ties / linear) and Linear.

A request is checked completely before anything runs (method, parameters, compatible models, output place), then
runs as a "surgery.merge" task. The task worker is a fresh process, so each merge gets its own mergekit: its
global LoaderCache keeps safetensors handles by path and would serve stale weights if a path was rewritten
between two merges in one process (../shared/reference/merge_eval.md A.1).

    >>> plan = plan_merge(platform, "linear", ["models/a", "models/b"], weights=[3, 1], out="ab-soup")
    >>> plan["weights"]                                  # normalised and shown before the merge runs
    [0.75, 0.25]
    >>> task_id = start_merge(platform, "slerp", ["models/a", "models/b"], t=0.3, out="ab-slerp")

Parameters per method (mergekit 0.1.5): slerp: exactly two models, `t` (0 gives the first model, which is the
base); ties: base model, per-model `weight` and `density` (magnitude pruning, sign consensus, normalised);
dare_ties / dare_linear: base model, `weight` (scales each task vector, not normalised), `density` (random
pruning with rescale), a fixed `random_seed`; linear: per-model `weight`, normalised to sum 1.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.surgery.compat import check_ready, resolve_inputs, weight_files
from platform_core.surgery.convert import convert_pending
from platform_core.surgery.output import building, copy_tokenizer, register_output, resolve_output
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind

METHODS = ("slerp", "ties", "dare_ties", "dare_linear", "linear")
NEEDS_BASE = ("ties", "dare_ties", "dare_linear")
NORMALISED = ("linear", "ties")  # methods whose weights are normalised to sum 1 (DARE weights scale task vectors)
DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_T = 0.5
DEFAULT_DENSITY = 0.5
DEFAULT_SEED = 0
DEFAULT_SHARD_BYTES = 2_000_000_000


def registered_methods() -> list[str]:
    """Return the merge method names mergekit has registered (a misspelling is not caught by mergekit's config)."""
    from mergekit.merge_methods import registered_methods as mergekit_methods

    return sorted(m.spec.name for m in mergekit_methods())


def check_method(method: str) -> str:
    """Return the method if this platform offers it and mergekit has it registered."""
    if method not in METHODS:
        raise InvalidInput(f"method: {method!r} is not one of {', '.join(METHODS)}")
    if method not in registered_methods():
        raise InvalidInput(f"method: mergekit {_mergekit_version()} has no merge method {method!r}")
    return method


def _mergekit_version() -> str:
    from importlib.metadata import version

    return version("mergekit")


def normalise_weights(weights: list[float] | None, count: int, normalise: bool = True) -> list[float]:
    """Return one weight per model: equal when none are given, normalised to sum 1 when `normalise`."""
    if weights is None or len(weights) == 0:
        weights = [1.0] * count
    if len(weights) != count:
        raise InvalidInput(f"weights: {len(weights)} given for {count} models (one per model, in the same order)")
    values = []
    for i, w in enumerate(weights):
        try:
            value = float(w)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"weight {i + 1}: {w!r} is not a number") from exc
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"weight {i + 1}: {w!r} must be a number >= 0")
        values.append(value)
    total = sum(values)
    if total <= 0:
        raise InvalidInput("weights: at least one weight must be above 0")
    return [v / total for v in values] if normalise else values


def _fraction(value: Any, field: str, low_open: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field}: {value!r} is not a number") from exc
    if not (0 < number <= 1 if low_open else 0 <= number <= 1):
        raise InvalidInput(f"{field}: {value} must be in {'(0, 1]' if low_open else '[0, 1]'}")
    return number


def build_config(
    method: str, models: list[str], weights: list[float], base: str | None, t: float, density: float, dtype: str | None
) -> dict[str, Any]:
    """Return the mergekit configuration (as a dict, the shape of mergekit's YAML) for a checked request."""
    config: dict[str, Any] = {"merge_method": method}
    if method == "slerp":
        config["base_model"] = models[0]
        config["models"] = [{"model": m} for m in models]
        config["parameters"] = {"t": t}
    elif method == "linear":
        config["models"] = [{"model": m, "parameters": {"weight": w}} for m, w in zip(models, weights, strict=True)]
        config["parameters"] = {"normalize": True}
    else:
        config["base_model"] = base
        config["models"] = [
            {"model": m, "parameters": {"weight": w, "density": density}} for m, w in zip(models, weights, strict=True)
        ]
    if dtype:
        config["dtype"] = dtype
    return config


def plan_merge(
    platform: Platform,
    method: str,
    models: list[str],
    weights: list[float] | None = None,
    t: float = DEFAULT_T,
    density: float = DEFAULT_DENSITY,
    base: str | None = None,
    out: str = "",
    overwrite: bool = False,
    seed: int = DEFAULT_SEED,
    dtype: str | None = None,
) -> dict[str, Any]:
    """Check a merge request before anything runs; return the task parameters, including the mergekit config.

    Refuses an unknown method, wrong parameter counts or ranges, models that are not compatible (architecture,
    tensor names and shapes, tokenizer: the reason names both models and the first differing tensor), and an
    output outside the workspace models/ or already occupied unless `overwrite`.
    """
    check_method(method)
    if len(models) < (1 if method in NEEDS_BASE and base else 2):
        raise InvalidInput(f"models: a merge needs at least two models, got {len(models)}")
    if dtype not in (None, "", *DTYPES):
        raise InvalidInput(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    dirs, pending, pending_notes = resolve_inputs(
        platform, list(models), [f"model {i + 1}" for i in range(len(models))]
    )
    repeated = sorted({str(d) for d in dirs if dirs.count(d) > 1})
    if repeated:
        raise InvalidInput(f"models: {repeated[0]} is listed more than once")
    notes: list[str] = list(pending_notes)
    if base and method not in NEEDS_BASE:
        notes.append(f"{method} uses no separate base model; the base given ({base}) is ignored")
        base = None
    base_dir: Path | None = None
    given_weights = list(weights) if weights else None
    if method == "slerp":
        if len(dirs) != 2:
            raise InvalidInput(f"models: SLERP merges exactly two models, got {len(dirs)}")
        t = _fraction(t, "t", low_open=False)
        base_dir = dirs[0]
        final_weights: list[float] = []
    else:
        if method in NEEDS_BASE:
            if not base:
                raise InvalidInput(f"base model: {method} needs the base model the others were fine-tuned from")
            (base_dir,), base_pending, base_notes = resolve_inputs(platform, [base], ["base model"])
            if base_dir not in pending:
                pending.update(base_pending)
                notes += base_notes
            if base_dir in dirs:
                at = dirs.index(base_dir)
                dirs.pop(at)
                if given_weights and len(given_weights) == len(models):
                    given_weights.pop(at)
                notes.append(f"{base_dir} is the base model; it is not merged as one of the models")
            if not dirs:
                raise InvalidInput("models: a merge needs at least one model besides the base model")
            density = _fraction(density, "density", low_open=True)
        final_weights = normalise_weights(given_weights, len(dirs), normalise=method in NORMALISED)
    everything = ([base_dir] if base_dir and base_dir not in dirs else []) + dirs
    report = check_ready(everything, pending)
    notes += report["notes"]
    target = resolve_output(platform, out, overwrite, inputs=everything)
    config = build_config(
        method,
        [str(d) for d in dirs],
        final_weights,
        str(base_dir) if base_dir else None,
        float(t),
        float(density),
        dtype or None,
    )
    _validate_config(config)
    return {
        "method": method,
        "models": [str(d) for d in dirs],
        "base": str(base_dir) if base_dir else None,
        "weights": final_weights,
        "t": float(t) if method == "slerp" else None,
        "density": float(density) if method in NEEDS_BASE else None,
        "seed": int(seed),
        "dtype": dtype or None,
        "out": str(target),
        "overwrite": bool(overwrite),
        "config": config,
        "notes": notes,
        "convert": [str(pending[d]) for d in everything if d in pending],
    }


def _validate_config(config: dict[str, Any]) -> None:
    from mergekit.config import MergeConfiguration
    from pydantic import ValidationError

    try:
        MergeConfiguration.model_validate(config)
    except ValidationError as exc:
        raise InvalidInput(f"mergekit refused the configuration: {exc.errors()[0].get('msg')}") from exc


def start_merge(platform: Platform, method: str, models: list[str], **options: Any) -> int:
    """Check the request (`plan_merge`), then start the "surgery.merge" task; return its id."""
    params = plan_merge(platform, method, models, **options)
    n, name = len(params["models"]), Path(params["out"]).name
    title = TaskTitle("merge", f"Merge ({method}) {n} models -> {name}", method=method, n=n, out=name)
    return submit_task(platform, "surgery.merge", title, task_params(params))


def task_params(plan: dict[str, Any]) -> dict[str, Any]:
    """The request fields of a plan: what the task checks again before it runs."""
    return {
        "method": plan["method"],
        "models": plan["models"],
        "weights": plan["weights"] or None,
        "t": DEFAULT_T if plan["t"] is None else plan["t"],
        "density": DEFAULT_DENSITY if plan["density"] is None else plan["density"],
        "base": plan["base"],
        "out": plan["out"],
        "overwrite": plan["overwrite"],
        "seed": plan["seed"],
        "dtype": plan["dtype"],
        "convert": plan["convert"],
    }


_TQDM = re.compile(r"(?P<desc>[^\r\n|]*?):\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)")


class TqdmProgress(io.TextIOBase):
    """A text stream for tqdm bars: reports (description, n, total) of each bar update and passes other lines on."""

    def __init__(self, on_progress: Callable[[str, int, int], None], on_line: Callable[[str], None]):
        self.on_progress = on_progress
        self.on_line = on_line
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *complete, self.pending = re.split(r"[\r\n]", self.pending)
        for line in complete:
            self._handle(line)
        match = _TQDM.search(self.pending)
        if match:
            self.on_progress(match["desc"].strip(), int(match["n"]), int(match["total"]))
        return len(text)

    def _handle(self, line: str) -> None:
        match = _TQDM.search(line)
        if match:
            self.on_progress(match["desc"].strip(), int(match["n"]), int(match["total"]))
        elif line.strip():
            self.on_line(line.rstrip())


class _LogToTask(logging.Handler):
    def __init__(self, ctx: TaskContext):
        super().__init__(logging.INFO)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        self.ctx.log(f"mergekit {record.levelname.lower()}: {record.getMessage()}")


def _progress_reporter(ctx: TaskContext, offset: float = 0.0) -> Callable[[str, int, int], None]:
    """Map mergekit's stages onto [offset, 0.95] of the task's progress (offset: share spent converting inputs)."""
    last = {"at": 0.0}
    stages = {"Warmup loader cache": (0.02, 0.08), "Executing graph": (0.1, 0.85)}
    scale = 1.0 - offset

    def report(desc: str, n: int, total: int) -> None:
        start, span = stages.get(desc, (None, None))
        now = time.monotonic()
        if start is None or (now - last["at"] < 0.3 and n < total):
            return
        last["at"] = now
        ctx.progress(offset + scale * (start + span * n / max(total, 1)), f"{desc} {n}/{total}")

    return report


def run_mergekit(
    config: dict[str, Any],
    out_dir: Path,
    seed: int,
    ctx: TaskContext | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress_offset: float = 0.0,
) -> None:
    """Run mergekit's `run_merge` into `out_dir` in this process (call it from a fresh process: see module doc)."""
    from mergekit.config import MergeConfiguration
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    LoaderCache().loaders.clear()  # harmless in a fresh worker; protects a caller that merges twice in-process
    merge_config = MergeConfiguration.model_validate(config)
    options = MergeOptions(copy_tokenizer=True, random_seed=seed, out_shard_size=shard_bytes, quiet=False)
    if ctx is None:
        run_merge(merge_config, str(out_dir), options=options)
        return
    stream = TqdmProgress(_progress_reporter(ctx, progress_offset), ctx.log)
    handler = _LogToTask(ctx)
    logger = logging.getLogger("mergekit")
    logger.addHandler(handler)
    previous = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the task log gets each record once, not again through a root handler on stderr
    try:
        with contextlib.redirect_stderr(stream):
            run_merge(merge_config, str(out_dir), options=options)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]
        LoaderCache().loaders.clear()


@task_kind("surgery.merge")
def merge_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Run a checked merge into a new registered model (params: the request fields of `plan_merge`).

    verl checkpoints not converted yet are converted first (cached, one after the other), then the whole request
    is checked again on the converted models.
    """
    params = dict(params)
    convert = params.pop("convert", None) or []
    offset = 0.4 if convert else 0.0
    if convert:
        convert_pending(ctx, convert, 0.0, offset)
    plan = plan_merge(ctx.platform, **params)
    if plan["convert"]:
        raise InvalidInput(f"models: {plan['convert'][0]} is still not converted after its conversion")
    out = Path(plan["out"])
    ctx.log(f"method {plan['method']}; base {plan['base'] or '-'}")
    for path, weight in zip(plan["models"], plan["weights"] or [None] * len(plan["models"]), strict=True):
        ctx.log(f"model {path}" + (f" weight {weight:.4f}" if weight is not None else ""))
    for note in plan["notes"]:
        ctx.log(f"note: {note}")
    ctx.progress(offset + 0.01, "starting mergekit")
    with building(ctx.platform, out) as staging:
        run_mergekit(plan["config"], staging, plan["seed"], ctx, progress_offset=offset)
        donors = [Path(plan["base"])] if plan["base"] else []
        copied = copy_tokenizer(donors + [Path(m) for m in plan["models"]], staging)
        if copied:
            ctx.log(f"copied the tokenizer of {copied}")
        if not (staging / "config.json").is_file():
            raise InvalidInput(f"mergekit finished without writing config.json in {staging}")
        weight_files(staging)
    recipe = {k: plan[k] for k in ("method", "models", "base", "weights", "t", "density", "seed", "dtype")}
    model_id = register_output(ctx.platform, out, "merge", recipe)
    ctx.log(f"registered model #{model_id} {out.name}")
    return {"out": str(out), "model_id": model_id, "method": plan["method"], "weights": plan["weights"]}
