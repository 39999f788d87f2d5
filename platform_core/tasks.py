"""Long actions other than training (merges, conversions, evaluations, server preparation, syncs, audits).

Each is a task: a record in the store with a state, a progress figure and a log file, run by a detached worker
process (`python -m platform_core task exec ID`) so the page that started it can be left. Kinds are registered
by name; the task record keeps the implementing module, which the worker imports:

    @task_kind("surgery.merge")              # in platform_core/surgery/merge.py
    def run_merge_task(ctx: TaskContext, params: dict) -> dict: ...

    submit_task(platform, "surgery.merge", "Merge A+B", {...})   # from code that imported that module

`ctx.progress(0.4, "tensor 12/30")` updates the record; `ctx.log("...")` appends to the log; the returned dict is
stored as the task's result.
"""

from __future__ import annotations

import importlib
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, PlatformError
from platform_core.runners.process import kill_tree, pid_alive, platform_python_env, python_executable, spawn_detached

ACTIVE_STATES = ("pending", "running")
FINAL_STATES = ("completed", "failed", "stopped")

MODULE_KEY = "_module"  # reserved key in a task's params: the module that implements its kind
TITLE_KEY = "_title"  # reserved key in a task's params: {"key", "params"} of a TaskTitle (the UI translates it)


class TaskTitle(str):
    """A task title that the UI can show in the page's language: the English text, plus the string-table key
    (`task.name.<code>` in app/i18n) and its parameters. Stored as the title (English, for logs and the CLI) and
    under TITLE_KEY in the task's params."""

    def __new__(cls, code: str, text: str, **params: Any):
        title = super().__new__(cls, text)
        title.code, title.params = code, params
        return title


_REGISTRY: dict[str, Callable[[TaskContext, dict[str, Any]], dict[str, Any] | None]] = {}


def task_kind(name: str):
    """Register a function as the implementation of a task kind."""

    def register(fn):
        _REGISTRY[name] = fn
        return fn

    return register


def _implementation(kind: str, module: str | None):
    if kind not in _REGISTRY and module:
        importlib.import_module(module)
    if kind not in _REGISTRY:
        raise InvalidInput(f"unknown task kind {kind!r}")
    return _REGISTRY[kind]


class TaskStopped(Exception):
    """Raised inside a task when the user asked it to stop."""


@dataclass
class TaskContext:
    """What a running task uses to report: progress, log lines, and whether it should stop."""

    platform: Platform
    task_id: int
    log_path: Path

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")

    def progress(self, fraction: float, message: str | None = None) -> None:
        changes: dict[str, Any] = {"progress": max(0.0, min(1.0, float(fraction)))}
        if message is not None:
            changes["message"] = message
        self.platform.store.update("tasks", self.task_id, **changes)


def create_task(platform: Platform, kind: str, title: str, params: dict[str, Any]) -> int:
    """Record a pending task and return its id (it does not start). The kind's module must be imported."""
    if kind not in _REGISTRY:
        raise InvalidInput(f"unknown task kind {kind!r}")
    params = {**params, MODULE_KEY: _REGISTRY[kind].__module__}
    if isinstance(title, TaskTitle):
        params[TITLE_KEY] = {"key": f"task.name.{title.code}", "params": title.params}
    task_id = platform.store.insert(
        "tasks", {"kind": kind, "title": str(title), "state": "pending", "params": params, "created_at": time.time()}
    )
    log_path = platform.workspace.logs / "tasks" / f"task-{task_id}.log"
    platform.store.update("tasks", task_id, log_path=str(log_path))
    return task_id


def start_task(platform: Platform, task_id: int) -> int:
    """Launch the detached worker for a pending task; return the worker pid."""
    task = platform.store.require("tasks", task_id, "task")
    log_path = Path(task["log_path"])
    env = platform_python_env({"PLATFORM_HOME": str(platform.workspace.root)})
    pid = spawn_detached(
        [python_executable(), "-m", "platform_core", "task", "exec", str(task_id)],
        log_path.with_suffix(".worker.log"),
        env=env,
    )
    platform.store.update("tasks", task_id, pid=pid, state="running", started_at=time.time())
    return pid


def submit_task(platform: Platform, kind: str, title: str, params: dict[str, Any]) -> int:
    """Create and start a task; return its id."""
    task_id = create_task(platform, kind, title, params)
    start_task(platform, task_id)
    return task_id


def execute_task(platform: Platform, task_id: int) -> dict[str, Any]:
    """Run a task in this process (the worker calls this); record its result and final state."""
    task = platform.store.require("tasks", task_id, "task")
    log_path = Path(task["log_path"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ctx = TaskContext(platform, task_id, log_path)
    platform.store.update(
        "tasks", task_id, state="running", pid=os.getpid(), started_at=task["started_at"] or time.time()
    )

    def on_term(signum, frame):
        raise TaskStopped()

    signal.signal(signal.SIGTERM, on_term)
    ctx.log(f"task {task_id} ({task['kind']}): {task['title']}")
    try:
        params = dict(task["params"] or {})
        module = params.pop(MODULE_KEY, None)
        params.pop(TITLE_KEY, None)
        result = _implementation(task["kind"], module)(ctx, params) or {}
    except TaskStopped:
        ctx.log("stopped by the user")
        platform.store.update("tasks", task_id, state="stopped", ended_at=time.time())
        return {"state": "stopped"}
    except PlatformError as exc:
        ctx.log(f"ERROR {exc}")
        platform.store.update("tasks", task_id, state="failed", error=str(exc), ended_at=time.time())
        return {"state": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a worker must record any failure rather than die silently
        ctx.log("ERROR " + "".join(traceback.format_exception(exc)))
        platform.store.update(
            "tasks", task_id, state="failed", error=f"{type(exc).__name__}: {exc}", ended_at=time.time()
        )
        return {"state": "failed", "error": str(exc)}
    platform.store.update("tasks", task_id, state="completed", progress=1.0, result=result, ended_at=time.time())
    ctx.log("completed")
    return {"state": "completed", "result": result}


def stop_task(platform: Platform, task_id: int) -> dict[str, Any]:
    """Stop a running task (its worker and everything it started); return the updated record."""
    task = platform.store.require("tasks", task_id, "task")
    if task["state"] in ACTIVE_STATES:
        if task["pid"] and pid_alive(task["pid"]):
            kill_tree(task["pid"], grace_s=5)
        current = platform.store.get("tasks", task_id)
        if current["state"] in ACTIVE_STATES:
            platform.store.update("tasks", task_id, state="stopped", ended_at=time.time())
    return platform.store.get("tasks", task_id)


def reconcile_tasks(platform: Platform) -> int:
    """Mark tasks whose worker died without recording an outcome as failed; return how many were fixed."""
    fixed = 0
    for task in platform.store.find("tasks", "state = 'running'"):
        if not pid_alive(task["pid"]):
            tail = read_log_tail(Path(task["log_path"]), 5) if task["log_path"] else ""
            current = platform.store.get("tasks", task["id"])
            if current["state"] == "running":
                platform.store.update(
                    "tasks",
                    task["id"],
                    state="failed",
                    ended_at=time.time(),
                    error="the worker process ended without recording a result" + (f": {tail}" if tail else ""),
                )
                fixed += 1
    return fixed


def read_log_tail(path: Path, lines: int = 50, max_bytes: int = 64_000) -> str:
    """Return the last lines of a log file (reading at most max_bytes from its end)."""
    if not path or not Path(path).exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        data = handle.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def list_tasks(platform: Platform, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Return recent tasks, newest first."""
    if kind:
        return platform.store.find("tasks", "kind = ?", (kind,), order_by="id DESC", limit=limit)
    return platform.store.find("tasks", order_by="id DESC", limit=limit)


def wait_task(platform: Platform, task_id: int, timeout_s: float = 600, poll_s: float = 0.2) -> dict[str, Any]:
    """Block until a task reaches a final state (for the CLI and tests); return its record."""
    deadline = time.monotonic() + timeout_s
    while True:
        task = platform.store.require("tasks", task_id, "task")
        if task["state"] in FINAL_STATES:
            return task
        if task["state"] == "running" and task["pid"] and not pid_alive(task["pid"]):
            reconcile_tasks(platform)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} did not finish within {timeout_s:.0f} s")
        time.sleep(poll_s)
