"""Per-session setup shared by every page: the Platform, language, run target, access gate."""

from __future__ import annotations

import streamlit as st

from app.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from app.widgets import target_label
from platform_core import settings
from platform_core.context import Platform, get_platform


@st.cache_resource(show_spinner=False)
def _platform_resource(home: str | None) -> Platform:
    return get_platform(home)


def get_platform_cached() -> Platform:
    """Return the process-wide Platform for the configured workspace (PLATFORM_HOME or ./workspace)."""
    import os

    return _platform_resource(os.environ.get("PLATFORM_HOME") or None)


@st.cache_resource(show_spinner=False)
def _reconcile(root: str, _platform: Platform) -> bool:
    from platform_core.jobs.service import reconcile_jobs
    from platform_core.tasks import reconcile_tasks

    reconcile_jobs(_platform)
    reconcile_tasks(_platform)
    return True


def reconcile_once(platform: Platform) -> None:
    """Once per app process, bring records of work that was running when the app last stopped up to date."""
    _reconcile(str(platform.workspace.root), platform)


def init_language(platform: Platform) -> None:
    """Set the session's language from the stored setting once (draws nothing, so it may run before the gate)."""
    if "lang" not in st.session_state:
        stored = settings.get(platform, "language")
        st.session_state["lang"] = stored if stored in LANGUAGES else DEFAULT_LANGUAGE


def sidebar(platform: Platform) -> None:
    """Draw the language switch and the run-target quick switch in the sidebar of every page.

    Call it only after `access_gate` let the session in: its widgets change stored settings."""
    init_language(platform)
    with st.sidebar:
        st.logo(str(_asset("logo.svg")))
        langs = list(LANGUAGES)
        choice = st.segmented_control(
            t("sidebar.language"),
            langs,
            format_func=LANGUAGES.get,
            key="lang_switch",
            default=st.session_state["lang"],
        )
        if choice and choice != st.session_state["lang"]:
            st.session_state["lang"] = choice
            settings.set_language(platform, choice)
            st.rerun()
        run_target_switch(platform)


def run_target_switch(platform: Platform) -> str:
    """The quick switch between Local and the stored SSH profiles; returns the current target."""
    from platform_core.connections import list_connections

    options = ["local"] + [f"ssh:{c['name']}" for c in list_connections(platform)]
    current = settings.run_target(platform)

    # Labels are computed now: a format_func may also be called outside the script run (AppTest), where the
    # session's language is not visible. The key names the language: a keyed selectbox keeps showing its old label
    # after a language switch.
    labels = {o: target_label(o) for o in options}
    chosen = st.selectbox(
        t("sidebar.target"),
        options,
        index=options.index(current) if current in options else 0,
        format_func=labels.get,
        help=t("sidebar.target.help"),
        key=f"run_target_switch_{st.session_state['lang']}",
    )
    if chosen != current:
        settings.set_run_target(platform, chosen)
        start_model_scan(platform, chosen)
    remote_scan_status(platform, chosen)
    return chosen


def start_model_scan(platform: Platform, target: str) -> int | None:
    """When the target is a server, start listing its models in the background (a task); return the task id.

    Never blocks on the network: an unreachable server makes the task fail with the reason, shown as a warning."""
    from platform_core.errors import PlatformError
    from platform_core.models import start_remote_scan

    connection = settings.target_connection(target)
    if not connection:
        return None
    try:
        return start_remote_scan(platform, connection)
    except PlatformError as exc:
        st.warning(t("sidebar.scan.failed", name=connection, error=str(exc)))
        return None


def remote_scan_status(platform: Platform, target: str) -> None:
    """Under the run-target switch: a progress line while the server's models are listed, a warning if that failed."""
    from app.widgets import task_progress_line
    from platform_core.models import remote_scan_state

    connection = settings.target_connection(target)
    if not connection:
        return
    state = remote_scan_state(platform, connection)
    if state["state"] == "running":
        task_progress_line(platform, state["task_id"], t("sidebar.scan.running", name=connection), key="sidebar")
    elif state["state"] == "failed":
        st.warning(t("sidebar.scan.failed", name=connection, error=state["error"] or ""))


def access_gate(platform: Platform) -> bool:
    """Ask for the access password when one is set; warn when the app listens beyond localhost without one."""
    address = st.get_option("server.address") or "127.0.0.1"
    if not settings.access_password_required(platform):
        if address not in ("127.0.0.1", "localhost", "::1"):
            st.warning(t("access.exposed", address=address))
        return True
    if st.session_state.get("_access_ok"):
        return True
    st.title(t("access.title"))
    with st.form("access_form"):
        password = st.text_input(t("access.password"), type="password")
        if st.form_submit_button(t("access.enter")):
            if settings.check_access_password(platform, password):
                st.session_state["_access_ok"] = True
                st.rerun()
            st.error(t("access.wrong"))
    return False


def _asset(name: str):
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "assets" / name
