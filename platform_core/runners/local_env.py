"""Checking a Python environment on this machine (the app's own, or the training Python set in Settings).

The check is platform_core/envcheck.py, a standalone file run with the interpreter under test, exactly as
"Prepare server" runs it on a GPU server: `python envcheck.py --mode training --json`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, PlatformError
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind

ENVCHECK = Path(__file__).resolve().parents[1] / "envcheck.py"
CHECK_TIMEOUT_S = 600


def check_python_env(python: str, mode: str = "training") -> dict[str, Any]:
    """Run the environment check with `python`; return {"mode", "passed", "checks", "python"}."""
    if mode not in ("manager", "training"):
        raise InvalidInput(f"mode: {mode!r} is not manager or training")
    try:
        result = subprocess.run(
            [python, str(ENVCHECK), "--mode", mode, "--json"],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"environment check with {python}: {exc}") from exc
    lines = result.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        raise InvalidInput(
            f"environment check with {python} printed no report (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-400:]}"
        )
    return {**report, "python": python}


def start_check(platform: Platform, python: str, mode: str = "training") -> int:
    """Start the check as a task (it imports torch and verl: seconds to a minute); return the task id."""
    title = TaskTitle("envcheck", f"Environment check: {python}", python=python)
    return submit_task(platform, "local_envcheck", title, {"python": python, "mode": mode})


@task_kind("local_envcheck")
def local_envcheck_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Run envcheck.py with an interpreter of this machine; a failed check fails the task, naming what is missing."""
    from platform_core.envcheck import format_checks

    ctx.progress(0.1, f"$ {params['python']} envcheck.py --mode {params['mode']}")
    report = check_python_env(params["python"], params["mode"])
    for line in format_checks(report["checks"]).splitlines():
        ctx.log(line)
    if not report["passed"]:
        missing = [c["name"] for c in report["checks"] if c["required"] and not c["ok"]]
        raise PlatformError(f"environment check failed with {params['python']}: {', '.join(missing)}")
    ctx.progress(1.0, "environment check passed")
    return report
