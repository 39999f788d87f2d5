"""Training job commands: job create|start|stop|pause|resume|status|list|export|logs|clone|validate."""

from __future__ import annotations

import argparse
import sys

from platform_core.cli import add_json_flag, emit, platform_for


def register(subparsers: argparse._SubParsersAction) -> None:
    job = subparsers.add_parser("job", help="training jobs (SFT, GRPO, PPO, DPO)")
    sub = job.add_subparsers(dest="job_command", required=True)

    create = sub.add_parser("create", help="create a job from a spec file (YAML/JSON, the form's fields)")
    create.add_argument("--spec", required=True)
    create.add_argument("--start", action="store_true", help="start right after creation")
    create.add_argument("--target", help="local, ray or ssh:<connection> (default: the spec's, else the settings')")
    add_json_flag(create)
    create.set_defaults(handler=cmd_create)

    validate = sub.add_parser("validate", help="show what a spec would run, checked with verl's own config")
    validate.add_argument("--spec", required=True)
    add_json_flag(validate)
    validate.set_defaults(handler=cmd_validate)

    for name, handler, text in (
        ("start", cmd_start, "start a pending job"),
        ("stop", cmd_stop, "stop a job"),
        ("pause", cmd_pause, "checkpoint and pause at the next step"),
        ("resume", cmd_resume, "resume a paused/stopped/failed job from its checkpoint"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("job_id", type=int)
        add_json_flag(p)
        p.set_defaults(handler=handler)

    status = sub.add_parser("status", help="state, step, total steps, engine")
    status.add_argument("job_id", type=int)
    add_json_flag(status)
    status.set_defaults(handler=cmd_status)

    lst = sub.add_parser("list", help="jobs, newest first")
    lst.add_argument("--state")
    lst.add_argument("--limit", type=int, default=100)
    add_json_flag(lst)
    lst.set_defaults(handler=cmd_list)

    export = sub.add_parser("export", help="print a runnable shell script for the job")
    export.add_argument("job_id", type=int)
    export.add_argument(
        "--out", help="write the bundle here: run.sh, spec.yaml, config/ and kit/ (run.sh reads them from its folder)"
    )
    add_json_flag(export)
    export.set_defaults(handler=cmd_export)

    logs = sub.add_parser("logs", help="the current attempt's log")
    logs.add_argument("job_id", type=int)
    logs.add_argument("--tail", type=int, help="only the last N lines")
    add_json_flag(logs)
    logs.set_defaults(handler=cmd_logs)

    clone = sub.add_parser("clone", help="a new pending job with the same spec")
    clone.add_argument("job_id", type=int)
    clone.add_argument("--name")
    add_json_flag(clone)
    clone.set_defaults(handler=cmd_clone)

    metrics = sub.add_parser("metrics", help="the job's metrics by canonical chart name, all attempts joined")
    metrics.add_argument("job_id", type=int)
    add_json_flag(metrics)
    metrics.set_defaults(handler=cmd_metrics)

    gradnorms = sub.add_parser("gradnorms", help="per-layer gradient norms (heatmap data)")
    gradnorms.add_argument("job_id", type=int)
    gradnorms.add_argument("--view", choices=["layer", "module"], default="layer")
    add_json_flag(gradnorms)
    gradnorms.set_defaults(handler=cmd_gradnorms)

    supervise = sub.add_parser("supervise", help="(internal) run an attempt under the local supervisor")
    supervise.add_argument("run_id", type=int)
    supervise.set_defaults(handler=cmd_supervise)


def cmd_create(args) -> int:
    from platform_core.jobs.service import create_job, load_spec_file

    data = load_spec_file(args.spec)
    if args.target:
        data["target"] = args.target
    job_id = create_job(platform_for(args), data, start=args.start)
    emit(args, {"id": job_id}, f"created job #{job_id}")
    return 0


def cmd_validate(args) -> int:
    from platform_core.jobs.service import load_spec_file, preview_job

    preview = preview_job(platform_for(args), load_spec_file(args.spec), validate=True)
    emit(
        args,
        preview,
        f"engine: {preview['engine']} ({preview['engine_reason']})\n"
        f"steps: {preview['total_steps']}\n{preview['command']}",
    )
    return 0


def cmd_start(args) -> int:
    from platform_core.jobs.service import job_status, start_job

    platform = platform_for(args)
    start_job(platform, args.job_id)
    emit(args, job_status(platform, args.job_id), f"job #{args.job_id} started")
    return 0


def cmd_stop(args) -> int:
    from platform_core.jobs.service import job_status, stop_job

    platform = platform_for(args)
    stop_job(platform, args.job_id)
    emit(args, job_status(platform, args.job_id), f"job #{args.job_id} stopped")
    return 0


def cmd_pause(args) -> int:
    from platform_core.jobs.service import job_status, pause_job

    platform = platform_for(args)
    pause_job(platform, args.job_id)
    emit(args, job_status(platform, args.job_id), f"job #{args.job_id}: pause requested")
    return 0


def cmd_resume(args) -> int:
    from platform_core.jobs.service import job_status, resume_job

    platform = platform_for(args)
    resume_job(platform, args.job_id)
    emit(args, job_status(platform, args.job_id), f"job #{args.job_id} resumed")
    return 0


def cmd_status(args) -> int:
    from platform_core.jobs.service import job_status

    status = job_status(platform_for(args), args.job_id)
    emit(
        args,
        status,
        f"#{status['id']} {status['name']}: {status['state']} step {status['step']}/"
        f"{status['total_steps']} ({status['engine']}, {status['target']})",
    )
    return 0


def cmd_list(args) -> int:
    from platform_core.jobs.service import list_jobs

    rows = list_jobs(platform_for(args), limit=args.limit, state=args.state)
    text = "\n".join(
        f"#{r['id']:<5} {r['state']:<10} {r['algorithm']:<5} {r['engine']:<5} {r['step']}/"
        f"{r['total_steps'] or '?'} {r['target']:<12} {r['name']}"
        for r in rows
    )
    emit(args, rows, text or "no jobs")
    return 0


def cmd_export(args) -> int:
    from platform_core.jobs.service import export_job

    exported = export_job(platform_for(args), args.job_id)
    if args.out:
        write_bundle(exported, args.out)
    emit(args, exported, exported["script"])
    return 0


def write_bundle(exported: dict, directory: str) -> None:
    """Write an exported job (run.sh, spec.yaml, config/*, kit/*) into a directory, run.sh executable."""
    from pathlib import Path

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.sh").write_text(exported["script"], encoding="utf-8")
    (out / "run.sh").chmod(0o755)
    (out / "spec.yaml").write_text(exported["spec_yaml"], encoding="utf-8")
    for name, content in exported["files"].items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def cmd_logs(args) -> int:
    from platform_core.jobs.service import job_logs

    text = job_logs(platform_for(args), args.job_id, args.tail)
    if getattr(args, "json", False):
        emit(args, {"id": args.job_id, "lines": text.splitlines()})
        return 0
    sys.stdout.write(text)
    sys.stdout.write("\n")
    return 0


def cmd_clone(args) -> int:
    from platform_core.jobs.service import clone_job

    job_id = clone_job(platform_for(args), args.job_id, args.name)
    emit(args, {"id": job_id}, f"created job #{job_id}")
    return 0


def cmd_metrics(args) -> int:
    from platform_core.jobs.service import job_metrics

    payload = job_metrics(platform_for(args), args.job_id)
    text = "\n".join(
        f"{name:<20} {len(points):>6} points, last {points[-1] if points else '-'}"
        for name, points in payload["series"].items()
    )
    emit(args, payload, text or "no metrics yet")
    return 0


def cmd_gradnorms(args) -> int:
    from platform_core.jobs.service import job_gradnorms

    matrix = job_gradnorms(platform_for(args), args.job_id, args.view)
    emit(args, matrix, f"{len(matrix['layers'])} layers x {len(matrix['steps'])} steps")
    return 0


def cmd_supervise(args) -> int:
    """The local supervisor: runs the attempt (platform_core/plugins/supervisor.py), then records the outcome."""
    from platform_core.jobs.service import refresh_job
    from platform_core.monitor.sampling import sample_system
    from platform_core.plugins import supervisor

    platform = platform_for(args)
    run = platform.store.require("runs", args.run_id, "run")
    supervisor.sample_system = sample_system
    code = supervisor.supervise(run["run_dir"])
    refresh_job(platform, run["job_id"])
    return code
