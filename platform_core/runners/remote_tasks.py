"""Task kinds for remote servers: "Prepare server" (install the training stack over SSH)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import RemoteError
from platform_core.tasks import TaskContext, TaskTitle, submit_task, task_kind


def start_prepare_server(platform: Platform, connection: str, requirements: str | None = None) -> int:
    """Start the "Prepare server" task for a connection profile; return the task id."""
    from platform_core.connections import get_connection

    profile = get_connection(platform, connection)
    params = {"connection": profile["name"], **({"requirements": requirements} if requirements else {})}
    title = TaskTitle("prepare", f"Prepare server {profile['name']}", name=profile["name"])
    return submit_task(platform, "prepare_server", title, params)


@task_kind("prepare_server")
def prepare_server_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Install requirements-gpu.txt into a profile's environment and verify it (params: connection, requirements)."""
    from platform_core.runners.remote_setup import prepare_server

    ctx.progress(0.05, "connecting")
    requirements = Path(params["requirements"]) if params.get("requirements") else None
    result = prepare_server(ctx.platform, params["connection"], ctx.log, requirements_file=requirements)
    if not result.get("passed"):
        failing = [
            f"{c['name']} ({c['detail']})" for c in result.get("checks", []) if c.get("required") and not c.get("ok")
        ]
        ctx.progress(1.0, "environment check failed")
        raise RemoteError(
            f"The packages were installed into {result.get('python')} on {params['connection']!r}, but the training "
            "environment check failed: "
            + ("; ".join(failing) if failing else "it printed no result (see the log)")
            + ". Fix these and run Prepare server again."
        )
    ctx.progress(1.0, "environment check passed")
    return result


@task_kind("sleep")
def sleep_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """A task that waits (used to exercise the task machinery: progress, stop, reconcile)."""
    seconds = float(params.get("seconds", 1))
    steps = max(1, int(seconds * 10))
    for i in range(steps):
        time.sleep(seconds / steps)
        ctx.progress((i + 1) / steps, f"{i + 1}/{steps}")
    ctx.log(f"slept {seconds} s")
    return {"slept": seconds}
