"""Widgets shared by the pages: state badges, a live task panel, error display."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.i18n import STRINGS, t
from platform_core.context import Platform
from platform_core.errors import PlatformError

STATE_COLOURS = {
    "pending": "gray",
    "starting": "blue",
    "running": "blue",
    "pausing": "orange",
    "paused": "orange",
    "stopping": "orange",
    "completed": "green",
    "failed": "red",
    "stopped": "gray",
}


def state_badge(state: str) -> None:
    """A coloured badge with the translated state name."""
    key = f"state.{state}"
    label = t(key) if _has(key) else state
    st.badge(label, color=STATE_COLOURS.get(state, "gray"))


def state_label(state: str) -> str:
    key = f"state.{state}"
    return t(key) if _has(key) else state


def _has(key: str) -> bool:
    from app.i18n import STRINGS

    return key in STRINGS


def show_error(exc: Exception) -> None:
    """Show a platform error's message (it names the file, row, field or value); other errors with their type."""
    if isinstance(exc, PlatformError):
        st.error(t("common.error", message=str(exc)))
    else:
        st.error(t("common.error", message=f"{type(exc).__name__}: {exc}"))


def target_label(target: str) -> str:
    """A run target ("local", "ssh:<connection>", "ray") as the sidebar and the job form name it."""
    if target == "local":
        return t("sidebar.target.local")
    if target == "ray":
        return t("settings.ray.header")
    return t("sidebar.target.ssh", name=target.removeprefix("ssh:"))


def task_title(task: dict, lang: str | None = None) -> str:
    """A task's title in the page's language (platform_core.tasks.TaskTitle), else the stored English title."""
    from platform_core.tasks import TITLE_KEY

    spec = (task.get("params") or {}).get(TITLE_KEY) or {}
    key = spec.get("key")
    if key in STRINGS:
        try:
            return t(key, lang, **(spec.get("params") or {}))
        except (KeyError, IndexError, ValueError):
            pass
    return task["title"]


def _rerun_page_when_done(task: dict, final_states) -> None:
    """Remember a task seen running; when it has ended since, draw the whole page again (its results appear)."""
    watched = st.session_state.setdefault("_tasks_seen_running", set())
    if task["state"] not in final_states:
        watched.add(task["id"])
    elif task["id"] in watched:
        watched.discard(task["id"])
        st.rerun()


def task_panel(platform: Platform, task_id: int, log_lines: int = 200, key: str | None = None) -> None:
    """A self-refreshing view of one task: state, progress bar, log tail and a stop button. When the task ends while
    shown, the whole page is drawn again, so what the task made (a model, results) appears around the panel."""

    @st.fragment(run_every=2)
    def _panel():
        from platform_core.tasks import FINAL_STATES, read_log_tail, stop_task

        task = platform.store.get("tasks", task_id)
        if task is None:
            return
        _rerun_page_when_done(task, FINAL_STATES)
        st.markdown(f"**{t('task.title', id=task_id, title=task_title(task))}**")
        if task["state"] in FINAL_STATES:
            if task["state"] == "completed":
                st.success(t("task.done"))
            elif task["state"] == "failed":
                st.error(t("task.failed", error=task["error"] or ""))
            else:
                st.info(t("task.stopped"))
        else:
            st.progress(
                task["progress"],
                text=t("task.running", percent=f"{task['progress'] * 100:.0f}", message=task["message"] or ""),
            )
            if st.button(t("common.stop"), key=f"stop_task_{task_id}_{key}"):
                stop_task(platform, task_id)
                st.rerun(scope="fragment")
        log = read_log_tail(Path(task["log_path"]), log_lines) if task["log_path"] else ""
        if log:
            st.code(log, language="log", height=300)

    _panel()


def task_progress_line(platform: Platform, task_id: int, text: str, key: str | None = None) -> None:
    """A compact, self-refreshing progress line for a task that runs in the background (no log, no stop button);
    when the task ends while shown, the whole page is drawn again so what it produced appears."""

    @st.fragment(run_every=2)
    def _line():
        from platform_core.tasks import FINAL_STATES

        task = platform.store.get("tasks", task_id)
        if task is None:
            return
        _rerun_page_when_done(task, FINAL_STATES)
        if task["state"] not in FINAL_STATES:
            st.progress(task["progress"] or 0.0, text=f"{text} {task['message'] or ''}".strip())

    _line()


PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"


def go_to(page: str, **query_params: str) -> None:
    """Switch to another page (by file name, e.g. "jobs.py"), optionally with query parameters."""
    st.switch_page(PAGES_DIR / page, query_params=query_params or None)
