"""Tasks: detached workers with progress and logs, stop, and reconciliation after a worker dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import platform_core.runners.remote_tasks  # noqa: F401 - registers the 'sleep' kind
from platform_core.runners.process import pid_alive
from platform_core.tasks import reconcile_tasks, stop_task, submit_task, wait_task


def test_a_task_runs_detached_and_records_progress_and_result(platform):
    task_id = submit_task(platform, "sleep", "nap", {"seconds": 0.5})
    task = wait_task(platform, task_id, timeout_s=60)
    assert task["state"] == "completed" and task["progress"] == 1.0
    assert task["result"] == {"slept": 0.5}
    assert "slept 0.5 s" in Path(task["log_path"]).read_text()


def test_stop_kills_the_worker(platform):
    task_id = submit_task(platform, "sleep", "long nap", {"seconds": 60})
    deadline = time.monotonic() + 30
    while platform.store.get("tasks", task_id)["progress"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = platform.store.get("tasks", task_id)["pid"]
    task = stop_task(platform, task_id)
    assert task["state"] == "stopped"
    assert not pid_alive(pid)


def test_a_dead_worker_is_reconciled_as_failed(platform):
    task_id = submit_task(platform, "sleep", "doomed", {"seconds": 60})
    deadline = time.monotonic() + 30
    while platform.store.get("tasks", task_id)["progress"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = platform.store.get("tasks", task_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reconcile_tasks(platform) == 1
    task = platform.store.get("tasks", task_id)
    assert task["state"] == "failed" and "without recording a result" in task["error"]


def test_task_titles_are_shown_in_the_page_language(platform):
    """A TaskTitle keeps the English title for logs and the CLI, and the UI shows it translated."""
    import re

    from app.i18n import STRINGS
    from app.widgets import task_title
    from platform_core.tasks import TaskTitle, create_task

    title = TaskTitle("merge", "Merge (slerp) 2 models -> mix", method="slerp", n=2, out="mix")
    task = platform.store.get("tasks", create_task(platform, "sleep", title, {"seconds": 0}))
    assert task["title"] == "Merge (slerp) 2 models -> mix"
    assert task_title(task, "zh") == "合并（slerp）2 个模型 → mix"
    assert task_title(task, "en") == task["title"]  # the table's English is the platform's own text
    assert task_title({"title": "plain", "params": {}}, "zh") == "plain"
    # every TaskTitle code the platform uses has its string, with exactly the parameters it is given
    root = Path(__file__).resolve().parents[1] / "platform_core"
    sources = "\n".join(p.read_text() for p in root.rglob("*.py"))
    codes = set(re.findall(r'TaskTitle\(\s*"(\w+)"', sources))
    assert len(codes) >= 12
    for code in codes:
        assert f"task.name.{code}" in STRINGS, code
