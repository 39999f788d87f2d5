"""`surgery` commands: merge, average, lora, convert, select, export, check.

Each action checks its request first (a bad request fails at once with the reason, exit status 2), then runs as a
task in a detached worker process, which the command waits for (exit status 1 if the task fails):

    python -m platform_core surgery merge --method slerp --models models/a models/b --t 0.3 --out ab --json
    {"out": "/.../models/ab", "model_id": 7, "task_id": 12, ...}
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from platform_core.cli import add_json_flag, emit, platform_for

WAIT_LIMIT_S = 7 * 24 * 3600


def register(subparsers: argparse._SubParsersAction) -> None:
    surgery = subparsers.add_parser("surgery", help="checkpoints to HF, selection, export, merges, SWA/EMA, LoRA")
    sub = surgery.add_subparsers(dest="surgery_command", required=True)

    merge = sub.add_parser("merge", help="merge models with mergekit (slerp, ties, dare_ties, dare_linear, linear)")
    merge.add_argument("--method", required=True, choices=["slerp", "ties", "dare_ties", "dare_linear", "linear"])
    merge.add_argument("--models", nargs="+", required=True, metavar="DIR", help="model dirs or registered names")
    merge.add_argument("--weights", nargs="+", type=float, metavar="W", help="one per model (default: equal)")
    merge.add_argument("--t", type=float, default=0.5, help="slerp: 0 gives the first model, 1 the second")
    merge.add_argument("--density", type=float, default=0.5, help="ties/dare: share of each task vector kept")
    merge.add_argument("--base", metavar="DIR", help="ties/dare: the model the others were fine-tuned from")
    merge.add_argument("--seed", type=int, default=0, help="dare: random seed of the pruning")
    merge.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="compute dtype (default: inputs')")
    _output_flags(merge)
    merge.set_defaults(handler=cmd_merge)

    average = sub.add_parser("average", help="average checkpoints (SWA uniform or EMA), streamed tensor by tensor")
    average.add_argument("--checkpoints", nargs="+", required=True, metavar="DIR", help="oldest first")
    average.add_argument("--mode", choices=["uniform", "ema"], default="uniform")
    average.add_argument("--decay", type=float, default=0.9, help="ema: w_i proportional to decay^(N-1-i)")
    average.add_argument("--shard-size", default="1GB", help="output shard size (e.g. 500MB, 2GB)")
    _output_flags(average)
    average.set_defaults(handler=cmd_average)

    lora = sub.add_parser("lora", help="merge a LoRA adapter into its base model (peft)")
    lora.add_argument("--adapter", required=True, metavar="DIR")
    lora.add_argument("--base", metavar="DIR", help="default: base_model_name_or_path of the adapter")
    lora.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    _output_flags(lora)
    lora.set_defaults(handler=cmd_lora)

    convert = sub.add_parser("convert", help="convert a verl FSDP checkpoint to HF (verl.model_merger), cached")
    convert.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        metavar="DIR",
        help="global_step_N directories; several are converted one after the other in one task (into the cache)",
    )
    convert.add_argument("--out", help="write into models/OUT and register it (default: the workspace cache)")
    convert.add_argument("--adapter-only", action="store_true", help="LoRA runs: keep the adapter unmerged")
    convert.add_argument("--overwrite", action="store_true")
    convert.add_argument("--no-wait", action="store_true", help="print the task id and return")
    add_json_flag(convert)
    convert.set_defaults(handler=cmd_convert)

    select = sub.add_parser("select", help="choose a checkpoint: lowest_val_loss, highest_reward, last, custom")
    select.add_argument("--dir", required=True, help="the directory holding global_step_N / checkpoint-N")
    select.add_argument("--metrics", nargs="*", default=[], metavar="JSONL", help="the run's metrics files")
    select.add_argument(
        "--strategy", choices=["lowest_val_loss", "highest_reward", "last", "custom"], default="lowest_val_loss"
    )
    select.add_argument("--step", type=int, help="custom: the step to choose")
    select.add_argument("--metric", help="rank by this metric instead of the strategy's usual names")
    add_json_flag(select)
    select.set_defaults(handler=cmd_select)

    export = sub.add_parser("export", help="copy an HF model or a checkpoint into models/NAME and register it")
    export.add_argument(
        "--source",
        required=True,
        metavar="DIR",
        help="an HF model dir, a verl checkpoint (converted first) or a LoRA adapter dir (merged into its base)",
    )
    export.add_argument("--name", required=True)
    export.add_argument("--overwrite", action="store_true")
    export.add_argument("--no-wait", action="store_true", help="print the task id and return")
    add_json_flag(export)
    export.set_defaults(handler=cmd_export)

    check = sub.add_parser("check", help="can these models be merged? (architecture, tensors, tokenizer)")
    check.add_argument("--models", nargs="+", required=True, metavar="DIR")
    add_json_flag(check)
    check.set_defaults(handler=cmd_check)


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="a name or path inside the workspace models/")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    parser.add_argument("--no-wait", action="store_true", help="print the task id and return")
    add_json_flag(parser)


def _finish(args, platform, task_id: int) -> int:
    """Wait for a task (showing its progress on stderr unless --json) and print its result."""
    from platform_core.tasks import wait_task

    if args.no_wait:
        emit(args, {"task_id": task_id}, f"started task #{task_id}; follow it with `task status {task_id}`")
        return 0
    deadline = time.monotonic() + WAIT_LIMIT_S
    shown = None
    while True:
        try:
            task = wait_task(platform, task_id, timeout_s=1.0)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            task = platform.store.get("tasks", task_id)
            line = f"{task['progress'] * 100:5.1f}% {task['message'] or ''}"
            if not args.json and line != shown:
                print(line, file=sys.stderr)
                shown = line
    if task["state"] != "completed":
        print(
            f"error: task #{task_id} {task['state']}: {task['error'] or ''} (log: {task['log_path']})", file=sys.stderr
        )
        return 1
    result = {**(task["result"] or {}), "task_id": task_id}
    emit(args, result, f"{result.get('out')} (task #{task_id})")
    return 0


def cmd_merge(args) -> int:
    from platform_core.surgery.merge import start_merge

    platform = platform_for(args)
    task_id = start_merge(
        platform,
        args.method,
        args.models,
        weights=args.weights,
        t=args.t,
        density=args.density,
        base=args.base,
        out=args.out,
        overwrite=args.overwrite,
        seed=args.seed,
        dtype=args.dtype,
    )
    return _finish(args, platform, task_id)


def cmd_average(args) -> int:
    from platform_core.surgery.average import start_average

    platform = platform_for(args)
    task_id = start_average(
        platform, args.checkpoints, args.mode, args.decay, args.out, args.overwrite, args.shard_size
    )
    return _finish(args, platform, task_id)


def cmd_lora(args) -> int:
    from platform_core.surgery.lora import start_lora_merge

    platform = platform_for(args)
    task_id = start_lora_merge(platform, args.adapter, args.base, args.out, args.overwrite, args.dtype)
    return _finish(args, platform, task_id)


def cmd_convert(args) -> int:
    from platform_core.errors import InvalidInput
    from platform_core.surgery.convert import start_convert, start_convert_many

    platform = platform_for(args)
    if len(args.checkpoint) > 1:
        if args.out or args.adapter_only:
            raise InvalidInput("convert: --out and --adapter-only take a single --checkpoint")
        return _finish(args, platform, start_convert_many(platform, args.checkpoint))
    task_id = start_convert(platform, args.checkpoint[0], args.out, not args.adapter_only, args.overwrite)
    return _finish(args, platform, task_id)


def cmd_export(args) -> int:
    from platform_core.surgery.export import start_export

    platform = platform_for(args)
    return _finish(args, platform, start_export(platform, args.source, args.name, args.overwrite))


def cmd_select(args) -> int:
    from platform_core.surgery.convert import attach_metrics, list_checkpoints, read_metrics_jsonl
    from platform_core.surgery.select import select_checkpoint

    checkpoints = attach_metrics(list_checkpoints(Path(args.dir)), read_metrics_jsonl(args.metrics))
    chosen, reason, series = select_checkpoint(checkpoints, args.strategy, args.step, args.metric)
    emit(args, {"chosen": chosen, "reason": reason, "series": series}, f"{chosen['path']}\n{reason}")
    return 0


def cmd_check(args) -> int:
    from platform_core.surgery.compat import check_compatible, resolve_model_dir

    platform = platform_for(args)
    dirs = [resolve_model_dir(platform, m, f"model {i + 1}") for i, m in enumerate(args.models)]
    report = check_compatible(dirs)
    text = "compatible" if report["ok"] else "not compatible:\n" + "\n".join(report["problems"])
    emit(args, report, "\n".join([text, *report["notes"]]))
    return 0 if report["ok"] else 1
