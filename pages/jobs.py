"""Training jobs: the job list, the New job form (drawn from the spec models) and the live job detail view."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st
import yaml

from app.i18n import t
from app.job_form import algorithm_fields, defaults, field_widget, reward_form
from app.state import get_platform_cached
from app.widgets import show_error, state_label, target_label
from platform_core import settings
from platform_core.connections import list_connections
from platform_core.errors import PlatformError
from platform_core.jobs import service
from platform_core.jobs.specs import ALGORITHMS

platform = get_platform_cached()
PAGE_SIZE = 50
REFRESH_ACTIVE_EVERY_S = 3.0


def _algo_labels() -> dict[str, str]:
    return {a: t(f"jobs.algo.{a}") for a in ALGORITHMS}


def _targets() -> list[str]:
    return ["local"] + [f"ssh:{c['name']}" for c in list_connections(platform)] + ["ray"]


# -- actions -------------------------------------------------------------------------------------------------------
def act(action, job_id: int) -> None:
    try:
        action(platform, job_id)
    except PlatformError as exc:
        show_error(exc)


def engine_reason(record: dict) -> str:
    """Why the engine was chosen, in the UI's language (records from before the reason codes keep their English)."""
    code = record.get("engine_reason_code")
    if code:
        return t(f"jobs.reason.{code['code']}", **code["params"])
    return record.get("engine_reason") or ""


def controls(job: dict, key: str) -> None:
    """Start / pause / resume / stop / clone buttons fitting the job's state."""
    cols = iter(st.columns(6))  # the buttons that apply, side by side from the left
    state = job["state"]
    if state == "pending" and next(cols).button(t("jobs.start"), key=f"{key}_start", type="primary"):
        act(service.start_job, job["id"])
        st.rerun()
    if state in ("running", "starting") and next(cols).button(t("jobs.pause"), key=f"{key}_pause"):
        act(service.pause_job, job["id"])
        st.rerun()
    if state in service.RESUMABLE_STATES and next(cols).button(t("jobs.resume"), key=f"{key}_resume", type="primary"):
        act(service.resume_job, job["id"])
        st.rerun()
    if state in service.ACTIVE_STATES and next(cols).button(
        t("jobs.stop"), key=f"{key}_stop", help=t("jobs.confirm_stop")
    ):
        act(service.stop_job, job["id"])
        st.rerun()
    if next(cols).button(t("jobs.clone"), key=f"{key}_clone"):
        st.session_state["job_clone"] = job["id"]
        st.query_params.clear()
        st.rerun()
    if state not in service.ACTIVE_STATES and next(cols).button(t("jobs.delete"), key=f"{key}_delete"):
        act(service.delete_job, job["id"])
        st.query_params.clear()
        st.rerun()


# -- list ----------------------------------------------------------------------------------------------------------
def refresh_active() -> None:
    """Refresh running jobs from their files, at most every few seconds (SSH polls are not free)."""
    last = st.session_state.get("_jobs_refreshed", 0.0)
    if time.time() - last < REFRESH_ACTIVE_EVERY_S:
        return
    st.session_state["_jobs_refreshed"] = time.time()
    for job in service.list_jobs(platform, limit=50):
        if job["state"] in service.ACTIVE_STATES:
            try:
                service.refresh_job(platform, job["id"])
            except PlatformError:
                continue


def health_summary(job: dict) -> str:
    """One line for the list: watchdog warnings, a lost connection, or why the job failed."""
    from app.charts import health_text
    from platform_core.monitor.watchdog import HealthWarning

    health = job["health"] or {}
    parts = [health_text(HealthWarning(**w)) for w in health.get("warnings", [])]
    if health.get("connection"):
        parts.append(t("jobs.health.connection", error=health["connection"]))
    if parts:
        return "⚠️ " + " · ".join(parts)
    return (job["error"] or "")[:120]


@st.fragment(run_every=3)
def job_list() -> None:
    refresh_active()
    total = platform.store.count("jobs")
    if not total:
        st.info(t("jobs.none"))
        return
    pages = max(1, -(-total // PAGE_SIZE))
    page = st.number_input(t("jobs.page", pages=pages), 1, pages, 1, key="jobs_page") if pages > 1 else 1
    rows = service.list_jobs(platform, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    algos = _algo_labels()
    frame = pd.DataFrame(
        {
            t("jobs.col.id"): [r["id"] for r in rows],
            t("common.name"): [r["name"] for r in rows],
            t("jobs.col.state"): [state_label(r["state"]) for r in rows],
            t("jobs.col.algorithm"): [algos[r["algorithm"]].split("（")[0].split(" (")[0] for r in rows],
            t("jobs.col.engine"): [r["engine"] for r in rows],
            t("jobs.col.where"): [target_label(r["target"]) for r in rows],
            t("jobs.col.progress"): [(r["step"] / r["total_steps"]) if r["total_steps"] else 0.0 for r in rows],
            t("jobs.col.health"): [health_summary(r) for r in rows],
            t("common.created"): [time.strftime("%m-%d %H:%M", time.localtime(r["created_at"])) for r in rows],
        }
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="jobs_table",
        column_config={
            t("jobs.col.progress"): st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")
        },
    )
    selected = event.selection.rows if event and event.selection else []
    if selected:
        job = service.get_job(platform, rows[selected[0]]["id"])
        st.markdown(f"**#{job['id']} {job['name']}** · {state_label(job['state'])}")
        if st.button(t("jobs.open"), key="open_job", type="primary"):
            st.query_params["job"] = str(job["id"])
            st.rerun(scope="app")
        controls(job, "list")


# -- new job form --------------------------------------------------------------------------------------------------
def initial_values(algorithm: str) -> tuple[dict, str | None]:
    """Defaults, overlaid with a configurator recommendation or a cloned job's spec (shown once)."""
    values = defaults(algorithm)
    values["target"] = settings.run_target(platform)  # the sidebar's choice, unless a clone or demo spec names one
    note = None
    prefill = st.session_state.get("job_prefill")
    if prefill:
        values.update(service.spec_from_prefill(prefill))
        note = t("jobs.prefilled")
    clone_id = st.session_state.get("job_clone")
    if clone_id:
        job = service.get_job(platform, clone_id)
        values.update(job["spec"]["fields"])
        values["name"] = f"{job['name']} (copy)"
        note = t("jobs.cloned", id=clone_id)
    demo = st.session_state.get("job_demo_spec")
    if demo:
        values.update(demo)
    return values, note


def form_generation() -> int:
    """A number in the form's widget keys that changes whenever the form is refilled (configurator, clone, demo
    spec, a created job): a keyed widget keeps showing its old value when only its default changes."""
    source = repr([st.session_state.get(k) for k in ("job_prefill", "job_clone", "job_demo_spec", "_jf_reload")])
    if st.session_state.get("_jf_source") != source:
        st.session_state["_jf_source"] = source
        st.session_state["_jf_generation"] = st.session_state.get("_jf_generation", 0) + 1
        for key in [k for k in st.session_state if str(k).startswith("jf_")]:
            del st.session_state[key]
    target = settings.run_target(platform)
    if st.session_state.get("_jf_run_target") != target:  # the sidebar switched: "Run on" follows, the rest stays
        st.session_state["_jf_run_target"] = target
        for key in [k for k in st.session_state if str(k).startswith("jf_") and str(k).endswith("_target")]:
            del st.session_state[key]
    return st.session_state["_jf_generation"]


def new_job_form() -> None:
    generation = form_generation()
    prefill = st.session_state.get("job_prefill") or {}
    clone = service.get_job(platform, st.session_state["job_clone"]) if st.session_state.get("job_clone") else None
    demo = st.session_state.get("job_demo_spec") or {}
    start_algo = demo.get("algorithm") or (clone["algorithm"] if clone else prefill.get("algorithm", "sft"))
    algos = _algo_labels()
    algorithm = (
        st.segmented_control(
            t("jobs.field.algorithm"),
            list(ALGORITHMS),
            format_func=algos.get,
            default=start_algo,
            key=f"jf_{generation}_algorithm",
        )
        or start_algo
    )
    values, note = initial_values(algorithm)
    if note:
        st.info(note)
    demo_dir = platform.workspace.demo / "specs"
    if demo_dir.is_dir():
        with st.expander(t("jobs.demo"), expanded=False):
            st.caption(t("jobs.demo.help"))
            cols = st.columns(4)
            for i, algo in enumerate(ALGORITHMS):
                spec_file = demo_dir / f"{algo}.yaml"
                if spec_file.is_file() and cols[i].button(
                    t("jobs.demo.load", algorithm=algo.upper()), key=f"demo_{algo}"
                ):
                    st.session_state["job_demo_spec"] = yaml.safe_load(spec_file.read_text())
                    st.session_state.pop("job_clone", None)
                    st.session_state.pop("job_prefill", None)  # the demo spec replaces a configurator prefill
                    st.session_state["_jf_reload"] = st.session_state.get("_jf_reload", 0) + 1  # even the same spec
                    st.rerun()
    prefix = f"jf_{generation}_{algorithm}"
    data: dict = {"algorithm": algorithm}
    st.subheader(t("jobs.section.basic"))
    target_options = _targets()
    default_target = values.get("target") or settings.run_target(platform)
    c1, c2 = st.columns(2)
    data["name"] = c1.text_input(
        t("jobs.field.name"),
        value=values.get("name") or f"{algorithm}-{time.strftime('%m%d-%H%M')}",
        key=f"{prefix}_name",
    )
    target_labels = {o: target_label(o) for o in target_options}  # computed now: see app/state.py
    data["target"] = c2.selectbox(
        t("jobs.field.target"),
        target_options,
        index=target_options.index(default_target) if default_target in target_options else 0,
        format_func=target_labels.get,
        key=f"{prefix}_target",
        help=t("jobs.hint.target"),
    )
    location = "local" if data["target"] in ("local", "ray") else data["target"][4:]
    from platform_core.datasets.service import list_datasets
    from platform_core.models import list_models

    models = list_models(platform, location, generative=True) + (
        [] if location == "local" else list_models(platform, "local", generative=True)
    )
    model_names = [m["name"] for m in models]
    if location != "local":  # a server's models come from the last listing of it (started by the run-target switch)
        from app.state import start_model_scan
        from app.widgets import task_progress_line
        from platform_core.models import remote_scan_state

        scan = remote_scan_state(platform, location)
        if scan["state"] == "running":
            task_progress_line(platform, scan["task_id"], t("jobs.models.scanning", name=location), key="jobs")
        elif scan["state"] in ("never", "failed"):
            h1, h2 = st.columns([3, 1])
            if scan["state"] == "never":
                h1.info(t("jobs.models.never_scanned", name=location))
            else:
                h1.warning(t("jobs.models.scan_failed", name=location, error=scan["error"] or ""))
            if h2.button(t("jobs.models.scan"), key=f"{prefix}_scan_models", width="stretch"):
                start_model_scan(platform, data["target"])
                st.rerun()
    if not model_names and (location == "local" or scan["state"] == "completed"):
        st.warning(t("jobs.no_models"))
    names_by_path = {m["path"]: m["name"] for m in models}
    wanted_model = names_by_path.get(values.get("model"), values.get("model"))  # the configurator gives a directory
    if wanted_model and wanted_model not in model_names:
        model_names.append(wanted_model)  # e.g. a configurator preset: show what was sized, not another model
    model_index = model_names.index(wanted_model) if wanted_model in model_names else 0
    c3, c4 = st.columns(2)
    data["model"] = c3.selectbox(
        t("jobs.field.model"),
        model_names,
        index=model_index if model_names else None,
        placeholder=t("common.choose"),
        key=f"{prefix}_model",
        help=t("jobs.hint.model"),
        accept_new_options=True,
    )
    usable = [d for d in list_datasets(platform) if d["type"] in service.DATASET_TYPES[algorithm]]
    dataset_names = [d["name"] for d in usable]
    if not dataset_names:
        st.warning(t("jobs.no_datasets", algorithm=algorithm.upper()))
    wanted = values.get("dataset")
    data["dataset"] = c4.selectbox(
        t("jobs.field.dataset"),
        dataset_names,
        index=dataset_names.index(wanted) if wanted in dataset_names else (0 if dataset_names else None),
        key=f"{prefix}_dataset",
        help=t("jobs.hint.dataset"),
    )
    c5, c6, c7, c8 = st.columns(4)
    val_choice = c5.selectbox(
        t("jobs.field.val_dataset"),
        [""] + dataset_names,
        format_func=lambda name: name or "—",
        index=([""] + dataset_names).index(values.get("val_dataset") or "")
        if (values.get("val_dataset") or "") in [""] + dataset_names
        else 0,
        key=f"{prefix}_val",
    )
    data["val_dataset"] = val_choice or None
    engines = ["auto", "verl", "trl"]
    data["engine"] = c6.selectbox(
        t("jobs.field.engine"),
        engines,
        index=engines.index(values.get("engine") or "auto"),
        key=f"{prefix}_engine",
        help=t("jobs.hint.engine"),
    )
    data["gpus_per_node"] = int(
        c7.number_input(
            t("jobs.field.gpus_per_node"),
            0,
            64,
            int(values.get("gpus_per_node", 1)),
            key=f"{prefix}_gpus",
            help=t("jobs.hint.gpus_per_node"),
        )
    )
    data["nodes"] = int(
        c8.number_input(t("jobs.field.nodes"), 1, 128, int(values.get("nodes", 1)), key=f"{prefix}_nodes")
    )

    st.subheader(t("jobs.section.algorithm"))
    columns = st.columns(3)
    for i, field in enumerate(algorithm_fields(algorithm, ("basic",))):
        with columns[i % 3]:
            data[field["name"]] = field_widget(field, f"{prefix}_{field['name']}", values.get(field["name"]))
    if algorithm == "ppo":
        st.subheader(t("jobs.section.reward_model"))
        columns = st.columns(3)
        data["reward_model_path"] = (
            columns[0].text_input(
                t("jobs.field.reward_model_path"),
                value=values.get("reward_model_path") or "",
                key=f"{prefix}_rm",
                help=t("jobs.hint.reward_model_path"),
            )
            or None
        )
        for i, field in enumerate(algorithm_fields(algorithm, ("reward_model",))):
            with columns[(i + 1) % 3]:
                data[field["name"]] = field_widget(field, f"{prefix}_{field['name']}", values.get(field["name"]))
        st.subheader(t("jobs.section.critic"))
        columns = st.columns(3)
        data["critic_model"] = (
            columns[0].text_input(
                t("jobs.field.critic_model"),
                value=values.get("critic_model") or "",
                key=f"{prefix}_critic",
                help=t("jobs.hint.critic_model"),
            )
            or None
        )
        for i, field in enumerate(algorithm_fields(algorithm, ("critic",))):
            with columns[(i + 1) % 3]:
                data[field["name"]] = field_widget(field, f"{prefix}_{field['name']}", values.get(field["name"]))
    if algorithm in ("grpo", "ppo"):
        st.subheader(t("jobs.section.reward"))
        data["reward"] = reward_form(prefix, values.get("reward") or {})
        reward_dry_run(data)
    with st.expander(t("jobs.section.advanced")):
        columns = st.columns(3)
        for i, field in enumerate(algorithm_fields(algorithm, ("advanced",))):
            with columns[i % 3]:
                data[field["name"]] = field_widget(field, f"{prefix}_{field['name']}", values.get(field["name"]))
    preview_and_create(data)


def reward_dry_run(data: dict) -> None:
    from platform_core.jobs.dryrun import dry_run

    c1, c2 = st.columns([1, 3])
    rows = c1.number_input(t("jobs.dryrun.rows"), 1, 100, 8, key="dryrun_rows")
    if c2.button(t("jobs.dryrun"), key="dryrun_button"):
        try:
            result = dry_run(platform, data["dataset"], data["reward"], int(rows))
            st.session_state["dryrun_result"] = result
        except (PlatformError, ValueError) as exc:
            show_error(exc)
    result = st.session_state.get("dryrun_result")
    if result:
        st.markdown(
            t("jobs.dryrun.result", correct=f"{result['correct_rate']:.0%}", wrong=f"{result['wrong_rate']:.0%}")
        )
        for warning in result["warnings"]:
            st.warning(t(f"jobs.dryrun.{warning}"))
        frame = pd.DataFrame(result["rows"])
        st.dataframe(
            frame.rename(columns={name: t(f"jobs.dryrun.col.{name}") for name in frame.columns}),
            hide_index=True,
            width="stretch",
        )


def preview_and_create(data: dict) -> None:
    st.subheader(t("jobs.preview"))
    try:
        preview = service.preview_job(platform, data)
    except PlatformError as exc:
        show_error(exc)
        return
    st.markdown(t("jobs.preview.engine", engine=preview["engine"], reason=engine_reason(preview)))
    st.caption(
        t("jobs.preview.steps", total=preview["total_steps"], per_epoch=preview["steps_per_epoch"])
        + " · "
        + t("jobs.preview.files", files=", ".join(preview["files"]) or "-")
    )
    st.code(preview["command"], language="bash", wrap_lines=True)
    for name, content in preview["file_contents"].items():
        with st.expander(name):
            st.code(content, language="json" if name.endswith(".json") else "python")
    c1, c2, c3 = st.columns([1, 1, 1])
    if c1.button(t("jobs.validate"), key="validate_job"):
        with st.spinner(t("jobs.validating")):
            try:
                service.preview_job(platform, data, validate=True)
                st.success(t("jobs.validated"))
            except PlatformError as exc:
                show_error(exc)
    start_now = c2.checkbox(t("jobs.start_after"), value=True, key="start_after")
    if c3.button(t("jobs.create"), type="primary", key="create_job"):
        with st.spinner(t("jobs.validating")):
            try:
                job_id = service.create_job(platform, data, start=start_now)
            except PlatformError as exc:
                show_error(exc)
                return
        for key in ("job_prefill", "job_clone", "job_demo_spec", "dryrun_result"):
            st.session_state.pop(key, None)
        st.success(t("jobs.created", id=job_id))
        st.query_params["job"] = str(job_id)
        st.rerun()


# -- detail --------------------------------------------------------------------------------------------------------
RECONNECT_EVERY_S = 15.0  # a run machine that could not be reached is tried again after this long, not every refresh


def _monitor(job: dict):
    """One RunMonitor per job and session, so each refresh reads only the new bytes of the run's files.

    Opening it connects to an SSH target at once: a PlatformError (RemoteError) is raised to the caller, and the
    failure is remembered so the next refreshes do not each wait for a dead host."""
    monitors = st.session_state.setdefault("_monitors", {})
    key = (job["id"], job["output_dir"])
    if key not in monitors:
        failures = st.session_state.setdefault("_monitor_failures", {})
        failed = failures.get(key)
        if failed and time.time() - failed[0] < RECONNECT_EVERY_S:
            raise failed[1]
        try:
            monitors[key] = service.job_monitor(platform, job)
        except PlatformError as exc:
            failures[key] = (time.time(), exc)
            raise
        failures.pop(key, None)
    return monitors[key]


def _offline_monitor(job: dict):
    """A RunMonitor that sees no files: the page keeps its layout (attempts, checkpoints, config) while the run's
    machine cannot be reached."""
    from platform_core.monitor.files import CallableFiles
    from platform_core.monitor.run import RunMonitor

    return RunMonitor(CallableFiles(lambda path, offset: b"", lambda path: None), job["output_dir"] or "")


class _Connection:
    """Runs the calls that read the run's files (over SSH they can fail at any time) and shows the connection
    warning once per refresh instead of letting a RemoteError end the page."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def warn(self, exc: Exception) -> None:
        message = str(exc)
        if message not in self.shown:
            self.shown.add(message)
            st.warning(t("jobs.health.connection", error=message))

    def call(self, func, *args, default=None):
        try:
            return func(*args)
        except PlatformError as exc:
            self.warn(exc)
            return default


def _log_tail(monitor, job_id: int, path: str):
    """A LogTail of an earlier attempt's log, kept per job and path so a refresh reads only its new bytes."""
    from platform_core.monitor.logs import LogTail

    tails = st.session_state.setdefault("_log_tails", {})
    key = (job_id, path)
    if key not in tails:
        tails[key] = LogTail(monitor.access, path, max_lines=monitor.log_lines)
    tails[key].poll()
    return tails[key]


def logs_tab(monitor, current: dict, connection: _Connection) -> None:
    """The log viewer over one attempt's stdout.log: the latest by default, any earlier one on request."""
    from app import charts

    job_id = current["id"]
    paths = dict(connection.call(monitor.log_paths, default=[]) or [])
    path, tail = None, monitor.log
    if len(paths) > 1:
        latest = max(paths)
        labels = {None: t("monitor.log.attempt_latest", attempt=latest)}
        labels.update({n: t("monitor.log.attempt_n", attempt=n) for n in sorted(paths, reverse=True)})
        chosen = st.selectbox(
            t("monitor.log.attempt"), list(labels), format_func=labels.get, key=f"log_attempt_{job_id}"
        )
        if chosen is not None and chosen != latest:
            path = paths[chosen]
            tail = connection.call(_log_tail, monitor, job_id, path)
    charts.log_viewer(
        tail,
        key=f"log_{job_id}" if path is None else f"log_{job_id}_{path}",
        first_error=lambda: connection.call(monitor.first_error, path),
        failed=current["state"] == "failed" and path is None,
        download=connection.call(monitor.download, path),
    )


def job_detail(job_id: int) -> None:
    from app import charts

    if st.button(t("jobs.back"), key="back"):
        st.query_params.clear()
        st.rerun()
    try:
        job = service.refresh_job(platform, job_id)
    except PlatformError as exc:
        show_error(exc)
        return
    st.title(f"#{job['id']} {job['name']}")
    controls(job, "detail")

    @st.fragment(run_every=3)
    def live() -> None:
        try:
            current = service.refresh_job(platform, job_id)
        except PlatformError as exc:
            show_error(exc)
            return
        if current["state"] != job["state"]:
            st.rerun()  # the buttons above belong to the old state (e.g. Resume once a pause has completed)
        connection = _Connection()
        monitor = connection.call(_monitor, current)
        if monitor is None:
            monitor = _offline_monitor(current)
        connection.call(monitor.poll)
        runs = service.job_runs(platform, job_id)
        started = runs[0]["started_at"] if runs else None
        ended = runs[-1]["ended_at"] if runs and current["state"] not in service.ACTIVE_STATES else None
        progress = monitor.progress(
            total_steps=current["total_steps"],
            started_at=started,
            ended_at=ended,
            steps_per_epoch=current["spec"].get("steps_per_epoch"),
        )
        st.markdown(
            f"**{t('common.state')}:** {state_label(current['state'])} · "
            f"**{t('jobs.detail.engine')}:** {current['engine']} ({engine_reason(current['spec'])}) · "
            f"**{t('jobs.detail.where')}:** {target_label(current['target'])}"
        )
        charts.progress_row(progress)
        if current["state"] == "failed" and current["error"]:
            st.error(t("jobs.detail.error", reason=current["error"]))
        if (current["health"] or {}).get("connection"):
            connection.warn(current["health"]["connection"])
        active = current["state"] in service.ACTIVE_STATES  # refresh_job marks a job whose process died as failed
        charts.health_warnings(
            monitor.health(
                running=current["state"] == "running",
                process_alive=active,
                reward_bounds=(0.0, 1.0) if current["algorithm"] == "grpo" else None,
            )
        )
        tabs = st.tabs(
            [
                t("jobs.tab.charts"),
                t("jobs.tab.system"),
                t("jobs.tab.logs"),
                t("jobs.tab.gradients"),
                t("jobs.tab.rollouts"),
                t("jobs.tab.checkpoints"),
                t("jobs.tab.attempts"),
                t("jobs.tab.config"),
            ]
        )
        with tabs[0]:
            stores = {current["name"]: monitor.store}
            others = [j for j in service.list_jobs(platform, limit=100) if j["id"] != job_id]
            labels = {j["id"]: f"#{j['id']} {j['name']}" for j in others}
            overlay = st.multiselect(
                t("jobs.compare"),
                list(labels),
                format_func=labels.get,
                key=f"overlay_{job_id}",
                placeholder=t("common.choose"),
            )
            for other_id in overlay:
                other = connection.call(service.get_job, platform, other_id)
                other_monitor = connection.call(_monitor, other) if other else None
                if other_monitor is None:
                    continue
                connection.call(other_monitor.poll)  # on failure its last data stays drawn
                stores[f"#{other_id} {other['name']}"] = other_monitor.store
            charts.metrics_panel(stores, key=f"metrics_{job_id}")
        with tabs[1]:
            charts.gpu_panel(monitor.system, key=f"gpu_{job_id}")
        with tabs[2]:
            logs_tab(monitor, current, connection)
        with tabs[3]:
            charts.gradnorm_heatmap(monitor.gradnorms, key=f"grad_{job_id}")
        with tabs[4]:
            files = connection.call(monitor.rollout_files, default={})
            charts.rollout_browser(
                sorted(files),
                lambda steps: connection.call(monitor.read_rollouts, steps, default=[]),
                key=f"rollouts_{job_id}",
                grouped_default=current["algorithm"] == "grpo",
            )
        with tabs[5]:
            checkpoints = platform.store.find("checkpoints", "job_id = ?", (job_id,), order_by="step")
            if not checkpoints:
                st.caption(t("jobs.ckpt.none"))
            else:
                st.dataframe(
                    pd.DataFrame(
                        {
                            t("jobs.ckpt.col.step"): [c["step"] for c in checkpoints],
                            t("jobs.ckpt.col.size"): [f"{(c['size_bytes'] or 0) / 2**20:.1f} MiB" for c in checkpoints],
                            t("jobs.ckpt.col.format"): [c["format"] for c in checkpoints],
                            t("common.path"): [c["path"] for c in checkpoints],
                        }
                    ),
                    hide_index=True,
                    width="stretch",
                )
                st.caption(t("jobs.ckpt.surgery"))
        with tabs[6]:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            **{t(f"jobs.attempt.col.{k}"): r[k] for k in ("attempt", "pid", "host", "exit_code")},
                            t("common.state"): state_label(r["state"]),
                            **{t(f"jobs.attempt.col.{k}"): r[k] for k in ("reason", "run_dir")},
                        }
                        for r in runs
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        with tabs[7]:
            st.markdown(f"**{t('jobs.detail.command')}**")
            if runs:
                import shlex

                env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted((runs[-1]["env"] or {}).items()))
                st.code(f"{env} {shlex.join(runs[-1]['command'] or [])}", language="bash", wrap_lines=True)
            st.code(yaml.safe_dump(current["spec"]["fields"], allow_unicode=True, sort_keys=False), language="yaml")
            # Built on request only: this tab refreshes every few seconds, an export plans the run again.
            bundle_key = f"export_zip_{job_id}"
            if st.button(t("jobs.export.prepare"), key=f"export_prepare_{job_id}", help=t("jobs.export.help")):
                try:
                    st.session_state[bundle_key] = service.export_job_zip(platform, job_id)
                except PlatformError as exc:
                    show_error(exc)
            if st.session_state.get(bundle_key):
                st.download_button(
                    t("jobs.export"),
                    st.session_state[bundle_key],
                    file_name=f"job-{job_id}.zip",
                    mime="application/zip",
                    key=f"export_{job_id}",
                )

    live()


# -- page ----------------------------------------------------------------------------------------------------------
selected_job = st.query_params.get("job")
if selected_job and selected_job.isdigit():
    job_detail(int(selected_job))
else:
    st.title(t("jobs.title"))
    opened = bool(
        st.session_state.get("job_prefill")
        or st.session_state.get("job_clone")
        or st.session_state.get("job_demo_spec")
    )
    list_tab, new_tab = st.tabs([t("jobs.list"), t("jobs.new")], default=t("jobs.new") if opened else None)
    with list_tab:
        job_list()
    with new_tab:
        new_job_form()
