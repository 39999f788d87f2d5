"""Settings: run mode, SSH connection profiles, models, security, Ray, environment check."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app.i18n import t
from app.state import get_platform_cached, start_model_scan
from app.widgets import show_error, target_label, task_panel
from platform_core import settings
from platform_core.connections import (
    add_connection,
    get_connection,
    list_connections,
    remove_connection,
    update_connection,
)
from platform_core.errors import PlatformError
from platform_core.models import add_model_dir, list_models, model_dirs, register_model, scan_local_models
from platform_core.runners.process import python_executable

platform = get_platform_cached()
st.title(t("settings.title"))

# -- run mode ------------------------------------------------------------------------------------------------------
st.header(t("settings.mode.header"))
connections = list_connections(platform)
current = settings.run_target(platform)
mode_labels = {m: t(f"settings.mode.{m}") for m in ("local", "ssh")}
mode = st.radio(
    t("settings.mode.header"),
    ["local", "ssh"],
    index=0 if current == "local" else 1,
    format_func=mode_labels.get,
    horizontal=True,
    label_visibility="collapsed",
)
target = "local"
if mode == "ssh":
    if not connections:
        st.info(t("settings.mode.need_profile"))
    else:
        names = [c["name"] for c in connections]
        default = names.index(current[4:]) if current.startswith("ssh:") and current[4:] in names else 0
        target = "ssh:" + st.selectbox(t("settings.mode.profile"), names, index=default)
if st.button(t("settings.mode.save"), key="save_mode", type="primary"):
    try:
        settings.set_run_target(platform, target)
        st.success(t("common.saved"))
        start_model_scan(platform, target)  # a server's models are listed in the background
    except PlatformError as exc:
        show_error(exc)
st.caption(t("settings.mode.current", target=target_label(settings.run_target(platform))))

# -- SSH connections -----------------------------------------------------------------------------------------------
st.header(t("settings.conn.header"))


def connection_form(existing: dict | None) -> None:
    """Add a profile, or edit one (an empty secret keeps the stored one)."""
    prefix = f"conn_{existing['id']}" if existing else "conn_new"
    with st.form(prefix + "_form", clear_on_submit=existing is None):
        c1, c2, c3 = st.columns([2, 3, 1])
        name = c1.text_input(t("settings.conn.name"), value=existing["name"] if existing else "", key=prefix + "_name")
        host = c2.text_input(t("settings.conn.host"), value=existing["host"] if existing else "", key=prefix + "_host")
        port = c3.number_input(
            t("settings.conn.port"), 1, 65535, value=int(existing["port"]) if existing else 22, key=prefix + "_port"
        )
        c4, c5 = st.columns(2)
        user = c4.text_input(
            t("settings.conn.user"), value=existing["username"] if existing else "root", key=prefix + "_user"
        )
        workdir = c5.text_input(
            t("settings.conn.workdir"),
            value=existing["workdir"] if existing else "~/verl_jobs",
            key=prefix + "_workdir",
        )
        auth_labels = {a: t(f"settings.conn.auth.{a}") for a in ("password", "key_path", "key_paste")}
        auth = st.radio(
            t("settings.conn.auth"),
            list(auth_labels),
            horizontal=True,
            format_func=auth_labels.get,
            key=prefix + "_auth",
        )
        password = st.text_input(
            t("settings.conn.password"),
            type="password",
            key=prefix + "_password",
            help=t("settings.conn.password.keep") if existing else None,
        )
        key_path = st.text_input(t("settings.conn.key_path"), key=prefix + "_key_path")
        key_text = st.text_area(t("settings.conn.key_text"), key=prefix + "_key_text", height=100)
        passphrase = st.text_input(t("settings.conn.passphrase"), type="password", key=prefix + "_passphrase")
        c6, c7 = st.columns(2)
        conda_env = c6.text_input(
            t("settings.conn.conda"), value=(existing or {}).get("conda_env") or "", key=prefix + "_conda"
        )
        python_path = c7.text_input(
            t("settings.conn.python"), value=(existing or {}).get("python_path") or "", key=prefix + "_python"
        )
        if st.form_submit_button(t("common.save"), type="primary"):
            creds = {
                "password": password if auth == "password" else None,
                "key_path": key_path if auth == "key_path" else None,
                "private_key": key_text if auth == "key_paste" else None,
                "passphrase": passphrase or None,
            }
            try:
                if existing:
                    changes = {
                        "name": name,
                        "host": host,
                        "port": int(port),
                        "username": user,
                        "workdir": workdir,
                        "conda_env": conda_env or None,
                        "python_path": python_path or None,
                    }
                    changes.update({k: v for k, v in creds.items() if v})
                    update_connection(platform, existing["name"], **changes)
                else:
                    add_connection(
                        platform,
                        name,
                        host,
                        user,
                        port=int(port),
                        workdir=workdir,
                        conda_env=conda_env or None,
                        python_path=python_path or None,
                        **creds,
                    )
                st.success(t("settings.conn.saved", name=name))
                st.rerun()
            except PlatformError as exc:
                show_error(exc)


def show_report(name: str, report: dict) -> None:
    st.markdown(f"**{t('settings.conn.ok') if report['ok'] else t('settings.conn.failed')}**")
    for step in report["steps"]:
        label_key = f"settings.conn.step.{step['name']}"
        mark = "✅" if step["ok"] else ("⚠️" if step["name"] == "gpus" else "❌")
        st.markdown(f"{mark} **{t(label_key)}**: {step['detail']} ({step['seconds']:.1f} s)")
    if report.get("unknown_host_key"):
        st.warning(t("settings.conn.hostkey", fingerprint=report["unknown_host_key"]["fingerprint"]))
        if st.button(t("settings.conn.trust"), key=f"trust_{name}"):
            run_test(name, accept=True)
    if report.get("versions"):
        st.caption(t("settings.conn.versions"))
        st.json(report["versions"], expanded=False)
    if report.get("nvidia_smi"):
        st.code(report["nvidia_smi"], language="text")


def run_test(name: str, accept: bool = False) -> None:
    from platform_core.runners.remote_setup import test_connection

    with st.spinner(t("settings.conn.testing", name=name)):
        try:
            st.session_state[f"report_{name}"] = test_connection(platform, name, accept_host_key=accept).to_dict()
        except PlatformError as exc:
            show_error(exc)
    if accept:
        st.rerun()


if not connections:
    st.caption(t("settings.conn.none"))
for conn in connections:
    with st.expander(f"{conn['name']} · {conn['username']}@{conn['host']}:{conn['port']} · {conn['workdir']}"):
        b1, b2, b3 = st.columns(3)
        if b1.button(t("settings.conn.test"), key=f"test_{conn['name']}"):
            run_test(conn["name"])
        if b2.button(t("settings.conn.prepare"), key=f"prepare_{conn['name']}", help=t("settings.conn.prepare.help")):
            from platform_core.runners.remote_tasks import start_prepare_server

            task_id = start_prepare_server(platform, conn["name"])
            st.session_state[f"prepare_task_{conn['name']}"] = task_id
        if b3.button(t("settings.conn.remove"), key=f"remove_{conn['name']}"):
            remove_connection(platform, conn["name"])
            st.rerun()
        report = st.session_state.get(f"report_{conn['name']}")
        if report:
            show_report(conn["name"], report)
        task_id = st.session_state.get(f"prepare_task_{conn['name']}")
        if task_id:
            task_panel(platform, task_id, key=conn["name"])
        st.markdown(f"**{t('settings.conn.edit', name=conn['name'])}**")
        connection_form(get_connection(platform, conn["id"]))
with st.expander(t("settings.conn.add"), expanded=not connections):
    connection_form(None)

# -- models --------------------------------------------------------------------------------------------------------
st.header(t("settings.models.header"))


def models_table(rows: list[dict]) -> None:
    if not rows:
        st.caption(t("common.none"))
        return
    frame = pd.DataFrame(
        {
            t("common.name"): [r["name"] for r in rows],
            t("settings.models.col.arch"): [r["architecture"] for r in rows],
            t("settings.models.col.params"): [f"{r['params'] / 1e6:,.2f}M" if r["params"] else "" for r in rows],
            t("settings.models.col.dtype"): [r["dtype"] for r in rows],
            t("settings.models.col.size"): [f"{(r['size_bytes'] or 0) / 2**20:,.1f} MiB" for r in rows],
            t("settings.models.col.source"): [r["source"] for r in rows],
            t("common.path"): [r["path"] for r in rows],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")


st.subheader(t("settings.models.local"))
try:
    models_table(scan_local_models(platform))
except PlatformError as exc:
    show_error(exc)
dirs = model_dirs(platform, "local")
if dirs:
    st.caption(t("settings.models.dirs", dirs=", ".join(dirs)))
c1, c2 = st.columns(2)
with c1.form("add_model_dir"):
    new_dir = st.text_input(t("settings.models.dir"), key="model_dir_local")
    if st.form_submit_button(t("settings.models.add_dir")) and new_dir:
        try:
            add_model_dir(platform, new_dir, "local")
            st.rerun()
        except PlatformError as exc:
            show_error(exc)
with c2.form("register_model"):
    model_path = st.text_input(t("common.path"), key="model_register_path")
    if st.form_submit_button(t("settings.models.register")) and model_path:
        try:
            register_model(platform, model_path)
            st.rerun()
        except PlatformError as exc:
            show_error(exc)

remote = settings.target_connection(settings.run_target(platform))
if remote:
    st.subheader(t("settings.models.remote", name=remote))
    with st.form("add_remote_model_dir"):
        remote_dir = st.text_input(t("settings.models.dir"), placeholder="~/autodl-tmp", key="model_dir_remote")
        if st.form_submit_button(t("settings.models.add_dir")) and remote_dir:
            try:
                add_model_dir(platform, remote_dir, remote)
            except PlatformError as exc:
                show_error(exc)
    from platform_core.models import remote_scan_state

    if st.button(t("settings.models.scan_remote")):
        start_model_scan(platform, f"ssh:{remote}")
    scan = remote_scan_state(platform, remote)
    if scan["state"] == "never":
        st.info(t("settings.models.never_scanned", name=remote))
    elif scan["state"] == "completed" and scan["at"]:
        st.caption(t("settings.models.scanned_at", at=time.strftime("%Y-%m-%d %H:%M", time.localtime(scan["at"]))))
    if scan["task_id"] and scan["state"] in ("running", "failed"):
        task_panel(platform, scan["task_id"], log_lines=20, key="model_scan")
    models_table(list_models(platform, remote))

# -- security ------------------------------------------------------------------------------------------------------
st.header(t("settings.security.header"))
try:
    box = platform.secret_box()
    source = platform.key_source
    if source.origin == "env":
        st.info(t("settings.security.key_env", fp=box.fingerprint))
    else:
        st.info(t("settings.security.key_file", path=source.origin, fp=box.fingerprint))
        if source.created:
            st.warning(t("key.created", path=source.origin))
    st.caption(t("settings.security.rotate"))
except PlatformError as exc:
    show_error(exc)
st.caption(
    t("settings.security.password.on")
    if settings.access_password_required(platform)
    else t("settings.security.password.off")
)
with st.form("access_password"):
    new_password = st.text_input(t("settings.security.password"), type="password")
    s1, s2 = st.columns(2)
    if s1.form_submit_button(t("settings.security.password.set")):
        try:
            settings.set_access_password(platform, new_password)
            st.session_state["_access_ok"] = True
            st.success(t("common.saved"))
        except PlatformError as exc:
            show_error(exc)
    if s2.form_submit_button(t("settings.security.password.clear")):
        settings.set_access_password(platform, None)
        st.success(t("common.saved"))

# -- Ray -----------------------------------------------------------------------------------------------------------
st.header(t("settings.ray.header"))
with st.form("ray"):
    ray_address = st.text_input(t("settings.ray.address"), value=settings.get(platform, "ray_address"))
    if st.form_submit_button(t("common.save")):
        try:
            settings.set_ray_address(platform, ray_address)
            st.success(t("common.saved"))
        except PlatformError as exc:
            show_error(exc)

# -- environment check ---------------------------------------------------------------------------------------------
st.header(t("settings.env.header"))
st.caption(t("settings.env.python.caption"))
with st.form("local_python"):
    python_path = st.text_input(
        t("settings.env.python"),
        value=settings.get(platform, "local_python") or "",
        placeholder=python_executable(),
        help=t("settings.env.python.help"),
    )
    if st.form_submit_button(t("common.save")):
        try:
            version = settings.set_local_python(platform, python_path)
            st.success(t("settings.env.python.saved", python=settings.local_python(platform), version=version))
        except PlatformError as exc:
            show_error(exc)
e1, e2 = st.columns(2)
check_mode = None
if e1.button(t("settings.env.run")):
    check_mode = ("manager", python_executable())
if e2.button(t("settings.env.run_training", python=settings.local_python(platform))):
    check_mode = ("training", settings.local_python(platform))
if check_mode:
    from platform_core.runners.local_env import start_check

    st.session_state["envcheck_task"] = start_check(platform, check_mode[1], check_mode[0])
if st.session_state.get("envcheck_task"):
    task_panel(platform, st.session_state["envcheck_task"], key="envcheck")
