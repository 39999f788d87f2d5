"""The job service: create, preview, start, stop, pause, resume, refresh, list, clone and export training jobs.

A job is a validated spec plus a target (local, ssh:<connection>, ray); each start or resume is an attempt (a
row in `runs`) with its own directory, log and metrics file. Nothing here waits for training: the supervisor
writes files next to the run and `refresh_job` reads them back into the store whenever someone looks.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

import yaml

from platform_core import settings
from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound, PlatformError, RemoteError
from platform_core.jobs.engines import RunContext, RunPlan, build_plan, choose_engine, data_format_for
from platform_core.jobs.layout import JobPaths, job_dir_name
from platform_core.jobs.specs import JobSpec, PPOSpec, parse_spec
from platform_core.runners.base import Runner

ACTIVE_STATES = ("starting", "running", "pausing", "stopping")
FINAL_STATES = ("completed", "failed", "stopped", "paused")
RESUMABLE_STATES = ("paused", "stopped", "failed")
DATASET_TYPES = {"sft": ("sft",), "dpo": ("dpo",), "grpo": ("grpo", "ppo"), "ppo": ("ppo", "grpo")}


# -- runners ---------------------------------------------------------------------------------------------------------
def runner_for(platform: Platform, target: str) -> Runner:
    """The runner for a target: "local", "ssh:<connection>" or "ray"."""
    if target == "local":
        from platform_core.runners.local import LocalRunner

        return LocalRunner(platform)
    if target.startswith("ssh:"):
        from platform_core.runners.ssh_runner import SSHRunner

        return SSHRunner(platform, target[4:])
    if target == "ray":
        from platform_core.runners.ray_runner import RayRunner

        return RayRunner(platform, settings.get(platform, "ray_address"))
    raise InvalidInput(f"target: {target!r} is not local, ray or ssh:<connection>")


# -- references ------------------------------------------------------------------------------------------------------
def resolve_model(platform: Platform, ref: str, location: str) -> dict[str, Any]:
    """A registered model by id, name or path (a local directory path is registered on the fly)."""
    from platform_core.models import get_model, register_model

    try:
        return get_model(platform, ref)
    except NotFound:
        if location == "local" or not str(ref).startswith(("/", "~")):
            from pathlib import Path

            if (Path(ref).expanduser() / "config.json").is_file():
                return get_model(platform, register_model(platform, Path(ref).expanduser(), source="user"))
            raise
        raise NotFound(
            f"model {ref!r} is not registered for {location}: list the server's models in Settings"
        ) from None


def resolve_dataset(platform: Platform, ref: str | int, algorithm: str, field: str = "dataset") -> dict[str, Any]:
    """A registered dataset usable for an algorithm, or InvalidInput naming why not."""
    from platform_core.datasets.service import get_dataset

    record = get_dataset(platform, ref)
    if record["type"] not in DATASET_TYPES[algorithm]:
        raise InvalidInput(
            f"{field}: {record['name']!r} is a {record['type'].upper()} dataset; "
            f"{algorithm.upper()} needs {' or '.join(t.upper() for t in DATASET_TYPES[algorithm])}"
        )
    return record


def job_spec(job: dict[str, Any]) -> JobSpec:
    """The validated spec of a stored job."""
    return parse_spec(job["spec"]["fields"], f"job #{job['id']}")


# -- preview ---------------------------------------------------------------------------------------------------------
def _target_of(platform: Platform, data: dict[str, Any]) -> str:
    return data.get("target") or settings.run_target(platform)


def _plan_for(
    platform: Platform,
    spec: JobSpec,
    runner: Runner,
    job_id: int,
    job_dir: str,
    attempt: int,
    model: dict[str, Any],
    dataset: dict[str, Any],
    val: dict[str, Any] | None,
    materialise: bool,
    kit_dir: str | None = None,
) -> tuple[str, str, RunPlan, RunContext]:
    """Choose the engine and build the plan. `materialise` converts/uploads data and checks the model on the target;
    otherwise paths are those the run would use (for previews and validation)."""
    gpus = runner.gpu_count()
    engine, reason = choose_engine(spec, gpus > 0)
    data_format = data_format_for(engine, spec.algorithm)
    paths = JobPaths(job_dir)
    if materialise:
        kit = runner.ensure_kit()
        python = runner.python()
        model_path = runner.model_path(model)
        train_path, rows = runner.dataset_path(dataset["id"], data_format)
        val_path = runner.dataset_path(val["id"], data_format)[0] if val else None
    else:
        from platform_core.jobs.data import converted_dataset

        kit, python = kit_dir or runner.planned_kit(), runner.planned_python()
        model_path = model["path"]
        local_path, rows = converted_dataset(platform, dataset["id"], data_format)
        train_path = runner.planned_dataset_path(local_path)
        val_path = runner.planned_dataset_path(converted_dataset(platform, val["id"], data_format)[0]) if val else None
    extra_paths: dict[str, str | None] = {"reward_model_path": None, "critic_model_path": None}
    if isinstance(spec, PPOSpec):
        for key, ref in (("reward_model_path", spec.reward_model_path), ("critic_model_path", spec.critic_model)):
            if ref:
                record = resolve_model(platform, ref, runner.location)
                extra_paths[key] = runner.model_path(record) if materialise else record["path"]
    ctx = RunContext(
        job_id=job_id,
        attempt=attempt,
        job_dir=job_dir,
        attempt_dir=paths.attempt(attempt),
        checkpoint_dir=paths.checkpoints,
        config_dir=paths.config,
        plugin_dir=kit,
        python=python,
        model_path=model_path,
        train_files=train_path,
        val_files=val_path,
        device="cuda" if gpus else "cpu",
        train_rows=rows,
        **extra_paths,
        extra_env={"OMP_NUM_THREADS": "2"} if not gpus else {},
    )
    return engine, reason, build_plan(engine, spec, ctx), ctx


def preview_job(platform: Platform, data: dict[str, Any], validate: bool = False) -> dict[str, Any]:
    """What a job would run: engine and why, the exact command, config files, step plan. With `validate`, also
    compose verl's own config with the overrides (slow the first time); raises InvalidInput on any problem."""
    spec = parse_spec(data)
    target = _target_of(platform, data)
    runner = runner_for(platform, target)
    try:
        model = resolve_model(platform, spec.model, runner.location)
        dataset = resolve_dataset(platform, spec.dataset, spec.algorithm)
        val = resolve_dataset(platform, spec.val_dataset, spec.algorithm, "val_dataset") if spec.val_dataset else None
        job_dir = f"{runner.planned_outputs_root()}/{job_dir_name(0, spec.name)}"
        engine, reason, plan, _ctx = _plan_for(platform, spec, runner, 0, job_dir, 1, model, dataset, val, False)
        if validate and engine == "verl":
            _validate_verl(plan, model)
    finally:
        runner.close()
    return {
        "engine": engine,
        "engine_reason": str(reason),
        "engine_reason_code": reason.record(),
        "target": target,
        "command": plan.shell_command(),
        "argv": plan.argv,
        "env": plan.env,
        "overrides": plan.overrides,
        "files": sorted(plan.files),
        "file_contents": {k: v for k, v in plan.files.items() if k.endswith(".json")},
        "total_steps": plan.total_steps,
        "steps_per_epoch": plan.steps_per_epoch,
        "data_format": plan.data_format,
        "model": model["name"],
        "dataset": dataset["name"],
        "spec": spec.model_dump(),
    }


def _validate_verl(plan: RunPlan, model: dict[str, Any]) -> None:
    """verl's validate_config loads the tokenizer of every model path: validate against a local stand-in when the
    model is only on a server (its presence there is checked at start)."""
    from pathlib import Path

    from platform_core.jobs.validate import validate_verl_overrides

    overrides = list(plan.overrides)
    if model["location"] != "local" or not (Path(model["path"]) / "config.json").is_file():
        stand_in = _validation_stand_in()
        overrides = [_replace_model_path(o, stand_in) for o in overrides]
    validate_verl_overrides(plan.config_name, overrides)


def _replace_model_path(override: str, stand_in: str) -> str:
    key, _, _value = override.partition("=")
    if key.endswith("model.path") or key.endswith("model.model_path"):
        return f"{key}={stand_in}"
    return override


def _validation_stand_in() -> str:
    from platform_core.context import get_platform
    from platform_core.workspace.demo import demo_paths

    path = demo_paths(get_platform().workspace)["model"]
    if not (path / "config.json").is_file():
        from platform_core.workspace.demo import build_model

        build_model(path)
    return str(path)


# -- create ----------------------------------------------------------------------------------------------------------
def create_job(platform: Platform, data: dict[str, Any], start: bool = False, validate: bool = True) -> int:
    """Validate a spec (including verl's own config checks) and store a pending job; optionally start it."""
    spec = parse_spec(data)
    target = _target_of(platform, data)
    preview = preview_job(platform, {**data, "target": target}, validate=validate)
    model = resolve_model(platform, spec.model, "local" if target in ("local", "ray") else target[4:])
    dataset = resolve_dataset(platform, spec.dataset, spec.algorithm)
    now = time.time()
    job_id = platform.store.insert(
        "jobs",
        {
            "name": spec.name,
            "algorithm": spec.algorithm,
            "engine": preview["engine"],
            "target": target,
            "spec": {
                "fields": {**spec.model_dump(mode="json"), "target": target},
                "model_id": model["id"],
                "dataset_id": dataset["id"],
                "engine_reason": preview["engine_reason"],
                "engine_reason_code": preview["engine_reason_code"],
                "steps_per_epoch": preview["steps_per_epoch"],
            },
            "state": "pending",
            "step": 0,
            "total_steps": preview["total_steps"],
            "created_at": now,
            "updated_at": now,
        },
    )
    runner = runner_for(platform, target)
    try:
        root = _outputs_root(runner)
    except PlatformError:
        platform.store.delete("jobs", job_id)
        raise
    finally:
        runner.close()
    platform.store.update("jobs", job_id, output_dir=f"{root}/{job_dir_name(job_id, spec.name)}")
    if start:
        start_job(platform, job_id)
    return job_id


def _outputs_root(runner: Runner) -> str:
    """Where the runner keeps job outputs; with the server unreachable, the connection's configured work directory
    (a leading ~ is made absolute when the job starts, see `_job_dir_on_target`)."""
    try:
        return runner.outputs_root()
    except RemoteError as exc:
        try:
            root = runner.planned_outputs_root()
        except (KeyError, AttributeError, RemoteError):
            root = ""
        if not root:  # no work directory configured
            raise InvalidInput(
                f"target: the server is unreachable ({exc}) and its connection has no work directory; "
                "set one in Settings or try again when the server answers"
            ) from exc
        return root


def _job_dir_on_target(runner: Runner, output_dir: str) -> str:
    """A job directory as an absolute path on its machine: one recorded as ~/... while the server was unreachable
    becomes <work directory>/outputs/<job dir> (quoted in commands, a literal ~ would never be expanded)."""
    if output_dir == "~" or output_dir.startswith("~/"):
        return f"{runner.outputs_root()}/{output_dir.rstrip('/').rsplit('/', 1)[-1]}"
    return output_dir


def load_spec_file(path: str) -> dict[str, Any]:
    """Read a job spec from YAML/JSON, naming the file in any error."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: no such file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidInput(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping of job fields")
    return data


# -- start / resume --------------------------------------------------------------------------------------------------
def get_job(platform: Platform, job_id: int) -> dict[str, Any]:
    return platform.store.require("jobs", int(job_id), "job")


def _attempts(platform: Platform, job_id: int) -> list[dict[str, Any]]:
    return platform.store.find("runs", "job_id = ?", (job_id,), order_by="attempt")


def start_job(platform: Platform, job_id: int) -> int:
    """Launch the first attempt of a pending job; return the run id."""
    job = get_job(platform, job_id)
    if job["state"] != "pending":
        raise InvalidInput(f"job #{job_id} is {job['state']}; only a pending job can be started (resume or clone it)")
    return _launch_attempt(platform, job, 1)


def resume_job(platform: Platform, job_id: int) -> int:
    """Relaunch a paused, stopped or failed job from its latest checkpoint as a new attempt; return the run id."""
    job = refresh_job(platform, job_id)
    if job["state"] not in RESUMABLE_STATES:
        raise InvalidInput(f"job #{job_id} is {job['state']}; only a paused, stopped or failed job can be resumed")
    attempts = _attempts(platform, job_id)
    return _launch_attempt(platform, job, (attempts[-1]["attempt"] if attempts else 0) + 1)


def _launch_attempt(platform: Platform, job: dict[str, Any], attempt: int) -> int:
    spec = job_spec(job)
    runner = runner_for(platform, job["target"])
    try:
        from platform_core.models import get_model

        model = get_model(platform, job["spec"]["model_id"])
        dataset = resolve_dataset(platform, job["spec"]["dataset_id"], spec.algorithm)
        val = resolve_dataset(platform, spec.val_dataset, spec.algorithm, "val_dataset") if spec.val_dataset else None
        job_dir = _job_dir_on_target(runner, job["output_dir"])
        if job_dir != job["output_dir"]:
            platform.store.update("jobs", job["id"], output_dir=job_dir)
            job = {**job, "output_dir": job_dir}
        engine, reason, plan, ctx = _plan_for(
            platform, spec, runner, job["id"], job_dir, attempt, model, dataset, val, True
        )
        files = dict(plan.files)
        if getattr(spec, "reward", None) is not None and spec.reward.reward_type == "custom":
            from pathlib import Path

            files["custom_reward.py"] = Path(spec.reward.custom_path).expanduser().read_text(encoding="utf-8")
        files["spec.yaml"] = yaml.safe_dump(spec.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
        files[f"command-attempt-{attempt}.sh"] = export_script(plan, ctx)
        runner.write_files(ctx.config_dir, files)
        now = time.time()
        run_id = platform.store.insert(
            "runs",
            {
                "job_id": job["id"],
                "attempt": attempt,
                "state": "starting",
                "command": plan.argv,
                "env": plan.env,
                "run_dir": ctx.attempt_dir,
                "log_path": f"{ctx.attempt_dir}/stdout.log",
                "metrics_path": f"{ctx.attempt_dir}/metrics.jsonl",
                "started_at": now,
            },
        )
        info = runner.launch(
            ctx.attempt_dir,
            {
                "argv": plan.argv,
                "env": plan.env,
                "unset_env": plan.unset_env,
                "cwd": job_dir,
                "sample_every": 5,
                "python": ctx.python,
            },
            run_id,
        )
        platform.store.update(
            "runs", run_id, state="running", pid=info.get("pid"), host=info.get("host"), remote=info.get("remote")
        )
        spec_record = {**job["spec"], "engine_reason": str(reason), "engine_reason_code": reason.record()}
        platform.store.update(
            "jobs",
            job["id"],
            state="running",
            engine=engine,
            current_run_id=run_id,
            total_steps=plan.total_steps,
            spec=spec_record,
            error=None,
            updated_at=now,
        )
        return run_id
    finally:
        runner.close()


def export_script(plan: RunPlan, ctx: RunContext) -> str:
    """A runnable shell script for one attempt: environment, working directory and the exact command."""
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by Training Platform. Config files are in the same directory.",
        "set -euo pipefail",
        f"mkdir -p {shlex.quote(ctx.attempt_dir)}",
        f"cd {shlex.quote(ctx.job_dir)}",
    ]
    return "\n".join(lines + _command_lines(plan, ctx, shlex.quote)) + "\n"


def _command_lines(plan: RunPlan, ctx: RunContext, word) -> list[str]:
    lines = [f"unset {name}" for name in plan.unset_env]
    lines += [f"export {key}={word(value)}" for key, value in sorted(plan.env.items())]
    argv = [word(a) for a in plan.argv]
    lines.append(" \\\n  ".join(argv) + f" 2>&1 | tee -a {word(ctx.attempt_dir + '/stdout.log')}")
    return lines


# An exported bundle is a job directory of its own: the script finds it with "$HERE" (its own directory).
BUNDLE_TOKEN = "@@PLATFORM_BUNDLE@@"


def _bundle_word(value: str) -> str:
    """A shell word with every BUNDLE_TOKEN replaced by "$HERE" (the rest quoted as usual)."""
    if BUNDLE_TOKEN not in value:
        return shlex.quote(value)
    return '"$HERE"'.join(shlex.quote(part) if part else "" for part in value.split(BUNDLE_TOKEN))


def _hydra_bundle_word(value: str) -> str:
    """A verl Hydra override holding BUNDLE_TOKEN as one shell word whose value Hydra reads as a quoted string:
    the bundle may be unpacked under a path Hydra's plain values reject (parentheses, CJK, quotes). "$HERE_Q" is
    "$HERE" escaped for the inside of a Hydra single-quoted string (run.sh sets it)."""
    key, _, rest = value.partition("=")
    if BUNDLE_TOKEN not in rest or rest.startswith("'"):
        return _bundle_word(value)
    inner = '"$HERE_Q"'.join(shlex.quote(part.replace("'", "\\'")) if part else "" for part in rest.split(BUNDLE_TOKEN))
    return shlex.quote(f"{key}='") + inner + shlex.quote("'")


def bundle_script(plan: RunPlan, ctx: RunContext, shipped: list[str], job: dict[str, Any]) -> str:
    """The run.sh of an exported bundle: config/ and kit/ next to it, outputs written next to it too."""
    checks = " ".join(shlex.quote(name) for name in shipped)
    lines = [
        "#!/usr/bin/env bash",
        f"# Generated by Training Platform: job #{job['id']} ({job['algorithm'].upper()}, {plan.engine}).",
        "# A self-contained bundle written by `python -m platform_core job export ID --out DIR`: the config files and",
        "# the platform's plugin kit sit next to this script (config/, kit/); logs, metrics and checkpoints go to",
        "# attempt-1/ and checkpoints/ here. Model and dataset paths are those of the machine the job targets.",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        "HERE_Q=\"${HERE//\\'/\\\\\\'}\"  # $HERE inside a Hydra quoted string: quotes escaped",
        f"for f in {checks}; do",
        '  [ -f "$HERE/$f" ] || { echo "missing $HERE/$f: write the whole bundle with job export ID --out DIR" >&2; '
        "exit 1; }",
        "done",
        f"mkdir -p {_bundle_word(ctx.attempt_dir)}",
        'cd "$HERE"',
    ]
    overrides = set(plan.overrides)

    def word(value: str) -> str:
        hydra = value in overrides or (plan.engine == "verl" and value.startswith("hydra."))
        return _hydra_bundle_word(value) if hydra else _bundle_word(value)

    return "\n".join(lines + _command_lines(plan, ctx, word)) + "\n"


# -- control ---------------------------------------------------------------------------------------------------------
def _current_run(platform: Platform, job: dict[str, Any]) -> dict[str, Any] | None:
    return platform.store.get("runs", job["current_run_id"]) if job["current_run_id"] else None


def pause_job(platform: Platform, job_id: int) -> dict[str, Any]:
    """Ask a running job to save a checkpoint and exit at its next step boundary (state: pausing, then paused)."""
    job = refresh_job(platform, job_id)
    if job["state"] not in ("running", "starting"):
        raise InvalidInput(f"job #{job_id} is {job['state']}; only a running job can be paused")
    run = _current_run(platform, job)
    runner = runner_for(platform, job["target"])
    try:
        runner.request(run["run_dir"], "pause")
    finally:
        runner.close()
    platform.store.update("jobs", job["id"], state="pausing", updated_at=time.time())
    return get_job(platform, job_id)


def stop_job(platform: Platform, job_id: int) -> dict[str, Any]:
    """Stop a job's whole process tree (locally or on the server) and verify it is gone."""
    job = refresh_job(platform, job_id)
    if job["state"] not in ACTIVE_STATES:
        raise InvalidInput(f"job #{job_id} is {job['state']}; it is not running")
    run = _current_run(platform, job)
    platform.store.update("jobs", job["id"], state="stopping", updated_at=time.time())
    runner = runner_for(platform, job["target"])
    try:
        gone = runner.stop(run)
    finally:
        runner.close()
    if not gone:
        note = runner.stop_note or "some processes did not exit"
        platform.store.update("jobs", job["id"], error=f"{note}; retry Stop", updated_at=time.time())
        raise PlatformError(f"job #{job_id}: {note}; try again")
    now = time.time()
    current = platform.store.get("runs", run["id"])
    reason = f"stopped by the user; {runner.stop_note}" if runner.stop_note else "stopped by the user"
    if current["state"] in ("starting", "running"):
        platform.store.update("runs", run["id"], state="stopped", ended_at=now, reason=reason)
    platform.store.update("jobs", job["id"], state="stopped", updated_at=now)
    return refresh_job(platform, job_id)


# -- refresh ---------------------------------------------------------------------------------------------------------
def refresh_job(platform: Platform, job_id: int, runner: Runner | None = None) -> dict[str, Any]:
    """Bring a job's record up to date from its run files (supervisor.json, status.json, checkpoints)."""
    job = get_job(platform, job_id)
    run = _current_run(platform, job)
    if run is None or (job["state"] not in ACTIVE_STATES and run["state"] not in ("starting", "running")):
        return job
    own = runner is None
    runner = runner or runner_for(platform, job["target"])
    try:
        _refresh_run(platform, job, run, runner)
    except RemoteError as exc:
        platform.store.update("jobs", job["id"], health={**(job["health"] or {}), "connection": str(exc)})
        _MONITORS.pop(job["id"], None)
    finally:
        if own:
            runner.close()
    return get_job(platform, job_id)


def _refresh_run(platform: Platform, job: dict[str, Any], run: dict[str, Any], runner: Runner) -> None:
    supervisor = runner.read_json(f"{run['run_dir']}/supervisor.json") or {}
    status = runner.read_json(f"{run['run_dir']}/status.json") or {}
    changes: dict[str, Any] = {"updated_at": time.time(), "health": None}  # a fresh read clears old warnings
    step = status.get("step")
    if isinstance(step, int) and step >= job["step"]:
        changes["step"] = step
    final = supervisor.get("state") in FINAL_STATES
    if not final and not runner.alive(run):
        supervisor = runner.read_json(f"{run['run_dir']}/supervisor.json") or {}  # it may have just finished
        final = supervisor.get("state") in FINAL_STATES
        if not final:
            tail = _tail(runner, run["log_path"], 3) or _tail(runner, f"{run['run_dir']}/supervisor.log", 3)
            reason = "the supervisor process died" + (f"; log tail: {tail}" if tail else "")
            runner.stop(run)  # its trainer runs in a session of its own: do not leave it holding the GPU
            if runner.stop_note:
                reason += f"; {runner.stop_note}"
            supervisor = {"state": "failed", "exit_code": None, "ended_at": time.time(), "reason": reason}
            final = True
    if final:
        state = supervisor["state"]
        if job["state"] == "stopping":
            state = "stopped"
        platform.store.update(
            "runs",
            run["id"],
            state=state,
            exit_code=supervisor.get("exit_code"),
            ended_at=supervisor.get("ended_at") or time.time(),
            reason=supervisor.get("reason"),
        )
        changes["state"] = state
        changes["error"] = supervisor.get("reason") if state == "failed" else None
        _record_checkpoints(platform, job, run, runner)
        if state == "completed":
            changes["step"] = max(changes.get("step", job["step"]), job["total_steps"] or 0)
    else:
        if job["state"] == "starting" or (
            supervisor.get("state") == "running" and job["state"] not in ("pausing", "stopping")
        ):
            changes["state"] = "running"
        warnings = _watchdog(platform, job)
        changes["health"] = {"warnings": warnings} if warnings else None
    platform.store.update("jobs", job["id"], **changes)


# One monitor per running job and process, so the watchdog reads only new bytes on each refresh.
_MONITORS: dict[int, Any] = {}


def _watchdog(platform: Platform, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The health watchdog's warnings for a running job (stalled, NaN/Inf loss, reward stuck at a bound)."""
    from dataclasses import asdict

    monitor = _MONITORS.get(job["id"])
    if monitor is None or monitor.run_dir != job["output_dir"]:
        monitor = _MONITORS[job["id"]] = job_monitor(platform, job)
    monitor.poll()
    bounds = (0.0, 1.0) if job["algorithm"] == "grpo" else None
    return [asdict(w) for w in monitor.health(running=True, process_alive=True, reward_bounds=bounds)]


def _tail(runner: Runner, path: str | None, lines: int) -> str:
    if not path:
        return ""
    return " | ".join(line.strip() for line in last_lines(runner, path, lines) if line.strip())


def _record_checkpoints(platform: Platform, job: dict[str, Any], run: dict[str, Any], runner: Runner) -> None:
    fmt = "verl_fsdp" if job["engine"] == "verl" else "hf"
    if job_spec(job).lora_enabled:
        fmt += "_lora"
    for ckpt in runner.list_checkpoints(f"{job['output_dir']}/checkpoints"):
        existing = platform.store.find_one("checkpoints", "job_id = ? AND step = ?", (job["id"], ckpt["step"]))
        if existing:
            platform.store.update("checkpoints", existing["id"], size_bytes=ckpt["size_bytes"], path=ckpt["path"])
            continue
        platform.store.insert(
            "checkpoints",
            {
                "job_id": job["id"],
                "run_id": run["id"],
                "step": ckpt["step"],
                "path": ckpt["path"],
                "location": runner.location,
                "format": fmt,
                "size_bytes": ckpt["size_bytes"],
                "created_at": time.time(),
            },
        )


def reconcile_jobs(platform: Platform) -> int:
    """Refresh every job that was active (on app start): alive, finished, or died with the reason; return count."""
    count = 0
    for job in platform.store.find("jobs", f"state IN ({', '.join('?' * len(ACTIVE_STATES))})", ACTIVE_STATES):
        try:
            refresh_job(platform, job["id"])
        except PlatformError:
            continue
        count += 1
    return count


# -- reading ---------------------------------------------------------------------------------------------------------
def list_jobs(platform: Platform, limit: int = 200, offset: int = 0, state: str | None = None) -> list[dict[str, Any]]:
    """Jobs newest first (records as stored; refresh the active ones separately)."""
    columns = (
        "id, name, algorithm, engine, target, state, step, total_steps, health, error, created_at, updated_at, "
        "current_run_id, output_dir"
    )
    where, params = ("state = ?", (state,)) if state else (None, ())
    return platform.store.find("jobs", where, params, order_by="id DESC", limit=limit, offset=offset, columns=columns)


def job_status(platform: Platform, job_id: int) -> dict[str, Any]:
    """The CLI's status record: state, step, total_steps, engine, where, attempts."""
    job = refresh_job(platform, job_id)
    return {
        "id": job["id"],
        "name": job["name"],
        "state": job["state"],
        "step": job["step"],
        "total_steps": job["total_steps"] or 0,
        "engine": job["engine"],
        "algorithm": job["algorithm"],
        "target": job["target"],
        "engine_reason": job["spec"].get("engine_reason"),
        "error": job["error"],
        "output_dir": job["output_dir"],
        "attempts": len(_attempts(platform, job["id"])),
        "checkpoints": [
            c["step"] for c in platform.store.find("checkpoints", "job_id = ?", (job["id"],), order_by="step")
        ],
    }


def job_monitor(platform: Platform, job: dict[str, Any]):
    """A RunMonitor over a job's output directory (local files, or the server's through SSH)."""
    from platform_core.monitor.files import LocalFiles, RemoteFiles
    from platform_core.monitor.run import RunMonitor

    if job["target"].startswith("ssh:"):
        from platform_core.runners.ssh import open_session

        return RunMonitor(RemoteFiles(open_session(platform, job["target"][4:])), job["output_dir"])
    return RunMonitor(LocalFiles(), job["output_dir"])


def job_metrics(platform: Platform, job_id: int) -> dict[str, Any]:
    """`{"series": {canonical name: [[step, value], ...]}, ...}` over all attempts (the `job metrics` contract)."""
    from platform_core.monitor.canonical import metrics_payload

    monitor = job_monitor(platform, get_job(platform, job_id))
    monitor.read_all()
    return metrics_payload(monitor.store)


def job_gradnorms(platform: Platform, job_id: int, view: str = "layer") -> dict[str, Any]:
    """`{"layers": [...], "steps": [...], "values": [[norm per layer] per step]}` (the `job gradnorms` contract)."""
    from platform_core.monitor.gradnorms import gradnorm_matrix

    monitor = job_monitor(platform, get_job(platform, job_id))
    monitor.read_all()
    return gradnorm_matrix(monitor.gradnorms, view=view)


def job_runs(platform: Platform, job_id: int) -> list[dict[str, Any]]:
    return _attempts(platform, job_id)


def job_logs(platform: Platform, job_id: int, tail: int | None = None) -> str:
    """The current attempt's log (the last `tail` lines, or all of it)."""
    job = get_job(platform, job_id)
    run = _current_run(platform, job)
    if run is None:
        return ""
    runner = runner_for(platform, job["target"])
    try:
        if tail:
            return "\n".join(last_lines(runner, run["log_path"], tail))
        return runner.read_bytes(run["log_path"]).decode("utf-8", errors="replace")
    finally:
        runner.close()


def last_lines(runner: Runner, path: str, count: int, chunk: int = 16384) -> list[str]:
    """The last `count` whole lines of a file, read backwards in growing chunks (verl lines can be very long)."""
    size = runner.file_size(path) or 0
    data, start = b"", size
    while start > 0:
        begin = max(0, start - chunk)
        data = runner.read_bytes(path, begin, start - begin) + data
        start = begin
        if data.count(b"\n") > count:  # the text after the first newline holds `count` whole lines
            break
        chunk *= 2
    lines = data.decode("utf-8", errors="replace").splitlines()
    if start > 0:
        lines = lines[1:]  # the first line was cut
    return lines[-count:] if count > 0 else []


def clone_job(platform: Platform, job_id: int, name: str | None = None, start: bool = False) -> int:
    """A new pending job with the same spec (and a new name)."""
    job = get_job(platform, job_id)
    fields = dict(job["spec"]["fields"])
    fields["name"] = name or f"{job['name']} (copy)"
    return create_job(platform, fields, start=start, validate=False)


def export_job(platform: Platform, job_id: int) -> dict[str, Any]:
    """The job as a self-contained bundle: run.sh (`script`), spec.yaml and every file it reads (`files`, paths
    relative to the bundle: config/*, incl. the custom reward file, and the plugin kit kit/*), without secrets.

    The bundle is a job directory of its own: run.sh finds its files through its own directory, so the bundle can be
    written anywhere (`job export ID --out DIR`). Train and validation data are the paths the real run reads.
    """
    from pathlib import Path

    from platform_core.jobs.layout import KIT_FILES
    from platform_core.models import get_model

    job = get_job(platform, job_id)
    spec = job_spec(job)
    runner = runner_for(platform, job["target"])
    try:
        model = get_model(platform, job["spec"]["model_id"])
        dataset = resolve_dataset(platform, job["spec"]["dataset_id"], spec.algorithm)
        val = resolve_dataset(platform, spec.val_dataset, spec.algorithm, "val_dataset") if spec.val_dataset else None
        here = BUNDLE_TOKEN
        _engine, _reason, plan, ctx = _plan_for(
            platform, spec, runner, job["id"], here, 1, model, dataset, val, False, kit_dir=f"{here}/kit"
        )
    finally:
        runner.close()
    files: dict[str, str] = {}
    for name, content in plan.files.items():
        # Files the trainer reads (trl_job.json) hold paths relative to the bundle: run.sh runs from there.
        files[f"config/{name}"] = content.replace(f"{here}/", "")
    reward = getattr(spec, "reward", None)
    if reward is not None and reward.reward_type == "custom" and "reward.py" in plan.files:
        source = Path(reward.custom_path).expanduser()
        try:
            files["config/custom_reward.py"] = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"reward.custom_path: cannot read {source}: {exc.strerror or exc}") from exc
    for name, source in KIT_FILES.items():
        files[f"kit/{name}"] = source.read_text(encoding="utf-8")
    spec_yaml = yaml.safe_dump(
        {**spec.model_dump(mode="json"), "model": model["path"], "dataset": dataset["name"]},
        allow_unicode=True,
        sort_keys=False,
    )
    leaked = [name for name, content in files.items() if here in content]
    if leaked:  # a path this function does not know how to make relative
        raise PlatformError(f"export of job #{job_id}: {', '.join(leaked)} still hold a bundle placeholder")
    return {
        "script": bundle_script(plan, ctx, sorted(files), job),
        "spec_yaml": spec_yaml,
        "files": files,
        "engine": plan.engine,
        "train_files": ctx.train_files,
        "val_files": ctx.val_files,
    }


def export_job_zip(platform: Platform, job_id: int) -> bytes:
    """The export bundle (run.sh, spec.yaml, config/, kit/) as a zip archive, for a download button."""
    import io
    import zipfile

    bundle = export_job(platform, job_id)
    buffer = io.BytesIO()
    root = f"job-{job_id}"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        script = zipfile.ZipInfo(f"{root}/run.sh")
        script.external_attr = 0o755 << 16  # executable once unpacked
        archive.writestr(script, bundle["script"])
        archive.writestr(f"{root}/spec.yaml", bundle["spec_yaml"])
        for name, content in sorted(bundle["files"].items()):
            archive.writestr(f"{root}/{name}", content)
    return buffer.getvalue()


def delete_job(platform: Platform, job_id: int) -> None:
    """Forget a finished job (its output directory stays on disk)."""
    job = get_job(platform, job_id)
    if job["state"] in ACTIVE_STATES:
        raise InvalidInput(f"job #{job_id} is {job['state']}; stop it first")
    platform.store.delete("jobs", job_id)


def spec_from_prefill(prefill: dict[str, Any]) -> dict[str, Any]:
    """Map the configurator's job_prefill contract to spec fields (unknown keys are dropped)."""
    mapping = {
        "train_batch_size": "batch_size",
        "gpus_per_node": "gpus_per_node",
        "nodes": "nodes",
        "micro_batch_size_per_gpu": "micro_batch_size_per_gpu",
        "ppo_mini_batch_size": "ppo_mini_batch_size",
        "rollout_n": "rollout_n",
        "use_dynamic_bsz": "use_dynamic_bsz",
        "max_token_len_per_gpu": "max_token_len_per_gpu",
        "gradient_checkpointing": "gradient_checkpointing",
        "param_offload": "param_offload",
        "optimizer_offload": "optimizer_offload",
        "lora_enabled": "lora_enabled",
        "lora_rank": "lora_rank",
        "lora_alpha": "lora_alpha",
        "rollout_gpu_memory_utilization": "rollout_gpu_memory_utilization",
        "rollout_tensor_parallel_size": "rollout_tensor_parallel_size",
        "max_length": "max_length",
        "max_prompt_length": "max_prompt_length",
        "max_response_length": "max_response_length",
        "algorithm": "algorithm",
        "model": "model",
        "model_dtype": "model_dtype",
        "use_fused_kernels": "use_fused_kernels",
        "log_prob_max_token_len_per_gpu": "log_prob_max_token_len_per_gpu",
        "critic_max_token_len_per_gpu": "critic_max_token_len_per_gpu",
    }
    values = {mapping[k]: v for k, v in prefill.items() if k in mapping and v is not None}
    if "model_dtype" in values:  # the contract says float32 / bfloat16, verl's engine config fp32 / bf16
        values["model_dtype"] = {"float32": "fp32", "bfloat16": "bf16"}.get(
            values["model_dtype"], values["model_dtype"]
        )
    algorithm = values.get("algorithm")
    if algorithm and algorithm != "ppo":  # only PPO has a critic
        values.pop("critic_max_token_len_per_gpu", None)
    if algorithm and algorithm not in ("grpo", "ppo"):  # SFT/DPO have no rollout or reference log-probs
        values.pop("log_prob_max_token_len_per_gpu", None)
    if not values.get("lora_rank"):  # the contract's rank 0 means LoRA off; the spec keeps its default rank
        values.pop("lora_rank", None)
        values.pop("lora_alpha", None)
    return values
