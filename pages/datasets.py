"""Datasets: upload, the list (with sync status in SSH mode), and a detail view (`?dataset=ID`) with overview,
lengths, quality checks and export, preview, field configuration, conversion and sync."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import pyarrow.parquet as pq
import streamlit as st

from app.i18n import t
from app.state import get_platform_cached
from app.widgets import show_error, task_panel
from platform_core import settings
from platform_core.datasets.audit import CHECKS, audit_dataset, cached_audit, resolve_tokenizer, start_audit_task
from platform_core.datasets.convert import targets_for
from platform_core.datasets.schemas import DATASET_TYPES, DEFAULT_FIELDS
from platform_core.datasets.service import (
    DEFAULT_DROP,
    add_dataset,
    convert_for,
    converted_dir,
    converted_name,
    export_cleaned,
    get_dataset,
    list_datasets,
    preview,
    record_detail,
    remove_dataset,
    update_field_config,
)
from platform_core.errors import PlatformError
from platform_core.models import scan_local_models

INLINE_AUDIT_ROWS = 50_000  # larger datasets are audited by a task with a progress bar
PAGE_SIZES = [10, 20, 50, 100]
platform = get_platform_cached()
type_labels = {k: t(f"datasets.type.{k}") for k in DATASET_TYPES}
check_labels = {c: t(f"datasets.check.{c}") for c in CHECKS}
status_labels = {s: t(f"datasets.sync.{s}") for s in ("synced", "syncing", "failed", "changed", "not_synced")}
target_labels = {k: t(f"datasets.target.{k}") for k in ("verl_rl", "verl_sft", "trl_dpo", "trl_rl", "raw")}
connection = settings.target_connection(settings.run_target(platform))


def size_text(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return ""


def when(stamp: float | None) -> str:
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else ""


def open_dataset(dataset_id: int) -> None:
    st.query_params["dataset"] = str(dataset_id)
    st.rerun()


def bar_chart(labels: list, counts: list, key: str, title: str = "", horizontal: bool = False) -> None:
    figure = go.Figure(
        go.Bar(
            x=counts if horizontal else labels,
            y=labels if horizontal else counts,
            orientation="h" if horizontal else "v",
        )
    )
    figure.update_layout(
        height=260 if not horizontal else max(200, 24 * len(labels) + 60),
        title=title or None,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    st.plotly_chart(figure, key=key)


def histogram_chart(hist: dict, key: str, title: str, marker: float | None = None) -> None:
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts:
        return
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    figure = go.Figure(go.Bar(x=centers, y=counts, width=widths))
    if marker:
        figure.add_vline(x=marker, line_dash="dash", line_color="red")
    figure.update_layout(height=240, title=title, margin={"l": 10, "r": 10, "t": 40, "b": 10}, bargap=0.02)
    st.plotly_chart(figure, key=key)


# -- list view -----------------------------------------------------------------------------------------------------
def upload_form() -> None:
    with st.expander(t("datasets.upload.header"), expanded=not list_datasets(platform)):
        with st.form("dataset_upload", clear_on_submit=False):
            uploaded = st.file_uploader(
                t("datasets.upload.file"),
                type=["json", "jsonl", "ndjson", "parquet"],
                help=t("datasets.upload.file.help"),
            )
            c1, c2 = st.columns(2)
            name = c1.text_input(t("common.name"), help=t("datasets.upload.name.help"))
            kind = c2.selectbox(t("datasets.type"), list(DATASET_TYPES), format_func=type_labels.get)
            description = st.text_input(t("datasets.description"))
            c3, c4 = st.columns(2)
            convert = c3.checkbox(t("datasets.upload.convert"), help=t("datasets.upload.convert.help"))
            encoding = c4.text_input(
                t("datasets.upload.encoding"), placeholder="GB18030", help=t("datasets.upload.encoding.help")
            )
            with st.expander(t("datasets.upload.mapping")):
                st.caption(t("datasets.upload.mapping.help"))
                m1, m2, m3 = st.columns(3)
                mapping = {
                    "prompt_field": m1.text_input(t("datasets.fields.prompt"), key="up_prompt"),
                    "response_field": m2.text_input(t("datasets.fields.response"), key="up_response"),
                    "answer_field": m3.text_input(t("datasets.fields.answer"), key="up_answer"),
                }
            if st.form_submit_button(t("datasets.upload.submit"), type="primary"):
                if uploaded is None:
                    st.error(t("datasets.upload.no_file"))
                    return
                try:
                    with st.spinner(t("datasets.upload.checking")):
                        result = add_dataset(
                            platform,
                            uploaded,
                            kind,
                            name or uploaded.name.rsplit(".", 1)[0],
                            original_name=uploaded.name,
                            description=description,
                            field_config={k: v.strip() for k, v in mapping.items() if v.strip()},
                            convert_encoding=(encoding.strip() or True) if convert else False,
                        )
                except PlatformError as exc:
                    show_error(exc)
                    return
                key = "datasets.upload.existing" if result["existing"] else "datasets.upload.done"
                st.success(t(key, id=result["id"], name=result["name"], rows=f"{result['rows']:,}"))
                for warning in result["warnings"]:
                    st.warning(warning)
                st.session_state["ds_just_added"] = result["id"]


def dataset_table(rows: list[dict]) -> None:
    status = {}
    if connection:
        from platform_core.datasets.sync import sync_status

        try:
            status = sync_status(platform, connection, rows)
        except PlatformError as exc:
            show_error(exc)
    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            t("common.name"): [r["name"] for r in rows],
            t("datasets.col.version"): [f"v{r['version']}" for r in rows],
            t("datasets.type"): [type_labels.get(r["type"], r["type"]) for r in rows],
            t("datasets.col.rows"): [r["rows"] for r in rows],
            t("datasets.col.size"): [size_text(r["size_bytes"] or 0) for r in rows],
            t("datasets.col.format"): [r["format"] for r in rows],
            t("common.created"): [when(r["created_at"]) for r in rows],
        }
    )
    if connection:
        frame[t("datasets.col.sync")] = [
            status_labels[status[r["id"]]["status"]] if r["id"] in status else "" for r in rows
        ]
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="ds_table",
        column_config={"id": st.column_config.NumberColumn("ID", format="%d")},
    )
    selected = getattr(getattr(event, "selection", None), "rows", None)
    if selected:
        open_dataset(int(frame["id"].iloc[selected[0]]))


def list_view() -> None:
    st.title(t("datasets.title"))
    st.caption(t("datasets.intro"))
    upload_form()
    rows = list_datasets(platform)
    if not rows:
        st.info(t("datasets.none"))
        if connection:
            remote_section()
        return
    c1, c2 = st.columns([3, 1])
    labels = {
        r["id"]: f"#{r['id']} {r['name']} v{r['version']} · {type_labels.get(r['type'], r['type'])}" for r in rows
    }
    chosen = c1.selectbox(
        t("datasets.open"),
        list(labels),
        format_func=labels.get,
        key="ds_open_choice",
        index=list(labels).index(st.session_state["ds_just_added"])
        if st.session_state.get("ds_just_added") in labels
        else 0,
    )
    c2.write("")
    if c2.button(t("datasets.open.button"), key="ds_open", width="stretch"):
        open_dataset(chosen)
    if connection:
        s1, s2 = st.columns([3, 1])
        s1.caption(t("datasets.sync.mode", name=connection))
        if s2.button(t("datasets.sync.all"), key="ds_sync_all", width="stretch"):
            from platform_core.datasets.sync import start_sync_task

            try:
                st.session_state["ds_sync_task"] = start_sync_task(platform, [r["id"] for r in rows], connection)
            except PlatformError as exc:
                show_error(exc)
        if st.session_state.get("ds_sync_task"):
            task_panel(platform, st.session_state["ds_sync_task"], key="sync_all")
    dataset_table(rows)
    if connection:
        remote_section()


def remote_section() -> None:
    """The files in the server's <workdir>/datasets/ folder, matched to local records (listed once per visit, again
    after a sync ends or on Refresh; an unreachable server gives a warning and is not retried on every rerun)."""
    from platform_core.datasets.sync import list_remote_datasets

    st.subheader(t("datasets.remote.header", name=connection))
    last_sync = platform.store.find("tasks", "kind = 'datasets.sync'", columns="id, state", order_by="id DESC", limit=1)
    marker = [last_sync[0]["id"], last_sync[0]["state"]] if last_sync else None
    key = f"ds_remote_listing_{connection}"
    cached = st.session_state.get(key)
    refresh = st.button(t("common.refresh"), key="ds_remote_refresh")
    if refresh or cached is None or cached.get("marker") != marker:
        try:
            cached = {"listing": list_remote_datasets(platform, connection), "marker": marker}
        except PlatformError as exc:
            cached = {"error": str(exc), "marker": marker}
        st.session_state[key] = cached
    if "error" in cached:
        st.warning(t("datasets.remote.unreachable", name=connection, error=cached["error"]))
        return
    listing = cached["listing"]
    st.caption(t("datasets.remote.folder", folder=listing["folder"]))
    files = listing["files"]
    if not files:
        st.caption(t("datasets.remote.empty"))
        return
    match_labels = {
        "current": t("datasets.remote.match.current"),
        "other_config": t("datasets.remote.match.other_config"),
        None: t("datasets.remote.match.none"),
    }

    def owner(f: dict) -> str:
        if f["partial"]:
            return t("datasets.remote.partial")
        if f["dataset_id"] is None:
            return match_labels[None]
        kind = target_labels.get(f["kind"], t("datasets.remote.original") if f["kind"] == "original" else "")
        return f"#{f['dataset_id']} {f['dataset_name']} v{f['version']} · {kind} · {match_labels[f['match']]}"

    frame = pd.DataFrame(
        {
            t("datasets.remote.col.file"): [f["name"] for f in files],
            t("datasets.col.size"): [size_text(f["size_bytes"]) for f in files],
            t("datasets.remote.col.modified"): [when(f["mtime"]) for f in files],
            t("datasets.remote.col.local"): [owner(f) for f in files],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    unmatched = sum(1 for f in files if f["dataset_id"] is None and not f["partial"])
    if unmatched:
        st.caption(t("datasets.remote.unmatched", count=unmatched))


# -- detail view ---------------------------------------------------------------------------------------------------
def base_audit_or_task(record: dict) -> dict | None:
    """The audit without tokens: from the cache, computed here for small datasets, or by a task for large ones."""
    audit = cached_audit(platform, record)
    if audit is not None:
        return audit
    task_key = f"ds_audit_task_{record['id']}"
    if record["rows"] <= INLINE_AUDIT_ROWS:
        with st.spinner(t("datasets.audit.running")):
            return audit_dataset(platform, record["id"])
    if st.session_state.get(task_key):
        task_panel(platform, st.session_state[task_key], key=f"audit_{record['id']}")
    elif st.button(t("datasets.audit.start", rows=f"{record['rows']:,}"), key="ds_audit_start", type="primary"):
        st.session_state[task_key] = start_audit_task(platform, record["id"])
        st.rerun()
    return None


def overview_tab(record: dict, audit: dict | None) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("datasets.col.rows"), f"{record['rows']:,}")
    c2.metric(t("datasets.col.size"), size_text(record["size_bytes"] or 0))
    c3.metric(t("datasets.valid_rows"), f"{audit['valid_rows']:,}" if audit else "-")
    c4.metric(t("datasets.col.columns"), len(record["columns"] or []))
    columns = [c if isinstance(c, dict) else {"name": c, "type": ""} for c in record["columns"] or []]
    st.dataframe(
        pd.DataFrame(
            {
                t("datasets.col.field"): [c["name"] for c in columns],
                t("datasets.col.type"): [c["type"] for c in columns],
            }
        ),
        hide_index=True,
    )
    if audit is None:
        return
    if audit["labels"]:
        st.subheader(t("datasets.labels"))
        cols = st.columns(min(3, len(audit["labels"])))
        for i, (name, counts) in enumerate(audit["labels"].items()):
            with cols[i % len(cols)]:
                values = counts["values"] + ([[t("datasets.other"), counts["other"]]] if counts["other"] else [])
                bar_chart([v[0] for v in values], [v[1] for v in values], f"label_{name}", name, horizontal=True)
    st.subheader(t("datasets.distributions"))
    shown = 0
    for name, dist in audit["distributions"].items():
        if name in audit["labels"]:
            continue
        if dist["kind"] == "categorical":
            bar_chart([v[0] for v in dist["values"]], [v[1] for v in dist["values"]], f"dist_{name}", name)
        elif dist["kind"] == "numeric":
            histogram_chart(dist, f"dist_{name}", name)
        elif dist["kind"] == "text":
            st.caption(
                t(
                    "datasets.dist.text",
                    name=name,
                    distinct=f"{dist['distinct']:,}",
                    p50=f"{dist['chars']['p50'] or 0:.0f}",
                    max=dist["chars"]["max"] or 0,
                )
            )
        else:
            st.caption(t("datasets.dist.nested", name=name, type=dist["type"]))
        shown += 1
    if not shown:
        st.caption(t("datasets.dist.none"))


def tokenizer_choices() -> dict[str, str]:
    choices = {"": t("datasets.lengths.no_tokenizer")}
    for model in scan_local_models(platform):  # the workspace's models/ and the extra local model directories
        if (model.get("meta") or {}).get("has_tokenizer") and model.get("exists", True):
            choices[model["path"]] = f"{model['name']} ({model['path']})"
    return choices


def lengths_tab(record: dict, base: dict | None) -> None:
    if base is None:
        st.info(t("datasets.audit.pending"))
        return
    choices = tokenizer_choices()
    c1, c2, c3 = st.columns([3, 2, 1])
    picked = c1.selectbox(
        t("datasets.lengths.tokenizer"),
        list(choices),
        format_func=choices.get,
        key="ds_tokenizer",
        help=t("datasets.lengths.tokenizer.help"),
    )
    custom = c2.text_input(t("datasets.lengths.tokenizer_path"), key="ds_tokenizer_path")
    max_length = c3.number_input(
        t("datasets.lengths.max_length"),
        0,
        1_000_000,
        0,
        step=256,
        key="ds_max_length",
        help=t("datasets.lengths.max_length.help"),
    )
    tokenizer = custom.strip() or picked or None
    audit = base
    if tokenizer or max_length:
        try:
            path = resolve_tokenizer(platform, tokenizer) if tokenizer else None
            audit = cached_audit(platform, record, path, max_length or None)
            if audit is None:
                if record["rows"] <= INLINE_AUDIT_ROWS:
                    with st.spinner(t("datasets.lengths.tokenizing")):
                        audit = audit_dataset(platform, record["id"], path, max_length or None)
                else:
                    task_key = f"ds_token_task_{record['id']}_{path}"
                    if st.session_state.get(task_key):
                        task_panel(platform, st.session_state[task_key], key=f"tokens_{record['id']}")
                    elif st.button(t("datasets.lengths.start"), key="ds_tokens_start", type="primary"):
                        st.session_state[task_key] = start_audit_task(
                            platform, record["id"], str(path), max_length or None
                        )
                        st.rerun()
                    audit = base
        except PlatformError as exc:
            show_error(exc)
            audit = base
    table = []
    for field, units in audit["lengths"].items():
        for unit, s in units.items():
            table.append(
                {
                    t("datasets.col.field"): field,
                    t("datasets.lengths.unit"): t(f"datasets.unit.{unit}"),
                    "p50": s["p50"],
                    "p90": s["p90"],
                    "p99": s["p99"],
                    "max": s["max"],
                    t("datasets.lengths.mean"): None if s["mean"] is None else round(s["mean"], 1),
                    t("datasets.lengths.count"): s["count"],
                }
            )
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    if audit.get("turns"):
        st.caption(t("datasets.lengths.turns", p50=f"{audit['turns']['p50']:.0f}", max=audit["turns"]["max"]))
    for field, fraction in (audit.get("truncated") or {}).items():
        note = t(
            "datasets.lengths.truncated",
            percent=f"{fraction * 100:.1f}",
            field=field,
            rows=f"{audit['truncated_rows'][field]:,}",
            length=audit["max_length"],
            unit=t(f"datasets.unit.{audit['truncated_unit']}"),
        )
        (st.warning if fraction > 0 else st.success)(note)
    for field, units in audit["histograms"].items():
        cols = st.columns(len(units))
        for col, (unit, hist) in zip(cols, units.items(), strict=True):
            with col:
                marker = max_length if max_length and unit == audit.get("truncated_unit") else None
                histogram_chart(hist, f"hist_{field}_{unit}", f"{field} · {t(f'datasets.unit.{unit}')}", marker)


def rows_table(record: dict, rows: list[int], key: str) -> None:
    page = preview(platform, record["id"], 0, 50, rows=rows)
    if page["rows"]:
        st.dataframe(pd.DataFrame(page["rows"]).set_index("_row"), width="stretch", key=key)
        if page["total"] > 50:
            st.caption(t("datasets.quality.more", shown=50, total=f"{page['total']:,}"))


def quality_tab(record: dict, audit: dict | None) -> None:
    if audit is None:
        st.info(t("datasets.audit.pending"))
        return
    cols = st.columns(len(CHECKS))
    for col, check in zip(cols, CHECKS, strict=True):
        col.metric(check_labels[check], f"{audit['checks'][check]['count']:,}")
    for check in CHECKS:
        result = audit["checks"][check]
        with st.expander(f"{check_labels[check]} · {result['count']:,}", expanded=False):
            st.caption(t(f"datasets.check.{check}.help"))
            if check == "length_outliers":
                st.info(t("datasets.check.rule") + " " + result["rule"])
                if result["fences"]:
                    st.dataframe(pd.DataFrame(result["fences"]).T, width="stretch")
            for error in result.get("errors", [])[:50]:
                st.text(error["message"])
            if result["count"]:
                rows_table(record, result["rows"], f"rows_{check}")
    st.subheader(t("datasets.export.header"))
    with st.form("ds_export"):
        drop = st.multiselect(
            t("datasets.export.drop"), list(CHECKS), default=list(DEFAULT_DROP), format_func=check_labels.get
        )
        flagged = set()
        for check in drop:
            flagged.update(audit["checks"][check]["rows"])
        st.caption(t("datasets.export.preview", dropped=f"{len(flagged):,}", kept=f"{record['rows'] - len(flagged):,}"))
        name = st.text_input(t("datasets.export.name"), value=record["name"], help=t("datasets.export.name.help"))
        if st.form_submit_button(t("datasets.export.submit"), type="primary"):
            try:
                result = export_cleaned(platform, record["id"], drop, name=name)
                st.session_state["ds_exported"] = result
            except PlatformError as exc:
                show_error(exc)
    exported = st.session_state.get("ds_exported")
    if exported and exported.get("source_id") == record["id"]:
        st.success(
            t(
                "datasets.export.done",
                id=exported["id"],
                name=exported["name"],
                rows=f"{exported['rows']:,}",
                dropped=f"{exported['dropped']:,}",
            )
        )
        if st.button(t("datasets.export.open"), key="ds_open_export"):
            open_dataset(exported["id"])


def preview_tab(record: dict) -> None:
    c1, c2, c3 = st.columns([3, 1, 1])
    search = c1.text_input(t("datasets.preview.search"), key="ds_search", placeholder=t("datasets.preview.search.hint"))
    size = c2.selectbox(t("datasets.preview.page_size"), PAGE_SIZES, index=1, key="ds_page_size")
    first = preview(platform, record["id"], 0, size, search)
    page = c3.number_input(t("datasets.preview.page", pages=first["pages"]), 1, first["pages"], 1, key="ds_page") - 1
    result = first if page == 0 else preview(platform, record["id"], page, size, search)
    st.caption(t("datasets.preview.total", total=f"{result['total']:,}"))
    if not result["rows"]:
        return
    frame = pd.DataFrame(result["rows"]).set_index("_row")
    st.dataframe(frame.map(lambda v: v if isinstance(v, (int, float)) or v is None else str(v)[:200]), width="stretch")
    rows = [r["_row"] for r in result["rows"]]
    row = st.selectbox(t("datasets.preview.record"), rows, key="ds_record")
    detail = record_detail(platform, record["id"], int(row))
    st.caption(t("datasets.preview.place", place=detail["place"]))
    for problem in detail["problems"]:
        st.warning(f"{problem['field']}: {problem['message']}")
    for field, value in detail["record"].items():
        st.markdown(f"**{field}**")
        if isinstance(value, str):
            st.code(value, language=None, wrap_lines=True)
        else:
            st.json(value, expanded=True)


def fields_tab(record: dict) -> None:
    config = record["field_config"] or {}
    columns = [c["name"] if isinstance(c, dict) else c for c in record["columns"] or []]
    st.caption(t("datasets.fields.help"))
    with st.form("ds_fields"):
        changes = {}
        keys = [k for k in DEFAULT_FIELDS[record["type"]] if k.endswith("_field")]
        if record["type"] == "sft":
            formats = {
                "prompt_response": t("datasets.fields.format.pairs"),
                "messages": t("datasets.fields.format.chat"),
            }
            current = config.get("format") or "prompt_response"
            changes["format"] = st.radio(
                t("datasets.fields.format"),
                list(formats),
                format_func=formats.get,
                index=list(formats).index(current),
                horizontal=True,
            )
        cols = st.columns(3)
        for i, key in enumerate(keys):
            label = t(f"datasets.fields.{key.removesuffix('_field')}")
            changes[key] = cols[i % 3].text_input(label, value=config.get(key) or "", key=f"ds_field_{key}")
        labels = st.multiselect(
            t("datasets.fields.labels"),
            columns,
            default=[c for c in config.get("label_fields") or [] if c in columns],
            help=t("datasets.fields.labels.help"),
        )
        changes["label_fields"] = labels
        if record["type"] in ("grpo", "ppo", "eval"):
            c1, c2 = st.columns(2)
            changes["data_source_default"] = c1.text_input(
                t("datasets.fields.data_source_default"), value=config.get("data_source_default") or ""
            )
            changes["ability"] = c2.text_input(t("datasets.fields.ability"), value=config.get("ability") or "")
        if st.form_submit_button(t("common.save"), type="primary"):
            try:
                update_field_config(platform, record["id"], changes)
                st.success(t("common.saved"))
                st.rerun()
            except PlatformError as exc:
                show_error(exc)
    st.json(config, expanded=False)


def conversion_tab(record: dict) -> None:
    st.caption(t("datasets.convert.help"))
    for target in targets_for(record["type"]):
        path = converted_dir(platform) / converted_name(record, target)
        c1, c2 = st.columns([3, 1])
        c1.markdown(f"**{target_labels[target]}** · `{target}`")
        if c2.button(t("datasets.convert.button"), key=f"ds_convert_{target}", width="stretch"):
            try:
                with st.spinner("…"):
                    path = convert_for(platform, record["id"], target)
            except PlatformError as exc:
                show_error(exc)
        if path.is_file():
            table = pq.read_table(path)
            st.caption(
                t(
                    "datasets.convert.file",
                    path=str(path),
                    rows=f"{table.num_rows:,}",
                    size=size_text(path.stat().st_size),
                )
            )
            st.json(table.slice(0, 2).to_pylist(), expanded=False)


def sync_tab(record: dict) -> None:
    if not connection:
        st.info(t("datasets.sync.local"))
        return
    from platform_core.datasets.sync import start_sync_task, sync_status

    try:
        info = sync_status(platform, connection, [record])[record["id"]]
    except PlatformError as exc:
        show_error(exc)
        return
    st.markdown(t("datasets.sync.status", name=connection, status=status_labels[info["status"]]))
    if info["remote_path"]:
        st.code(info["remote_path"], language=None)
    if info["error"]:
        st.error(info["error"])
    if info["synced_at"]:
        st.caption(t("datasets.sync.at", at=when(info["synced_at"])))
    task_key = f"ds_sync_task_{record['id']}"
    if st.button(t("datasets.sync.button"), key="ds_sync_one", type="primary"):
        try:
            st.session_state[task_key] = start_sync_task(platform, [record["id"]], connection)
        except PlatformError as exc:
            show_error(exc)
    if st.session_state.get(task_key):
        task_panel(platform, st.session_state[task_key], key=f"sync_{record['id']}")


def detail_view(reference: str) -> None:
    try:
        record = get_dataset(platform, int(reference) if reference.isdigit() else reference)
    except PlatformError as exc:
        st.title(t("datasets.title"))
        show_error(exc)
        if st.button(t("datasets.back"), key="ds_back_missing"):
            del st.query_params["dataset"]
            st.rerun()
        return
    if st.button(t("datasets.back"), key="ds_back"):
        del st.query_params["dataset"]
        st.rerun()
    st.title(record["name"])
    parent = f" · {t('datasets.parent', id=record['parent_id'])}" if record["parent_id"] else ""
    st.caption(
        f"#{record['id']} · {type_labels.get(record['type'], record['type'])} · {record['format']} · "
        f"{record['original_name'] or ''} · {when(record['created_at'])}{parent}"
    )
    if record["description"]:
        st.write(record["description"])
    try:
        audit = base_audit_or_task(record)
    except PlatformError as exc:
        show_error(exc)
        audit = None
    tabs = st.tabs(
        [t(f"datasets.tab.{k}") for k in ("overview", "lengths", "quality", "preview", "fields", "convert", "sync")]
    )
    sections = (
        lambda: overview_tab(record, audit),
        lambda: lengths_tab(record, audit),
        lambda: quality_tab(record, audit),
        lambda: preview_tab(record),
        lambda: fields_tab(record),
        lambda: conversion_tab(record),
        lambda: sync_tab(record),
    )
    for tab, draw in zip(tabs, sections, strict=True):
        with tab:
            try:
                draw()
            except PlatformError as exc:
                show_error(exc)
    with st.expander(t("datasets.remove.header")):
        st.caption(t("datasets.remove.help"))
        if st.button(t("datasets.remove.button"), key="ds_remove"):
            try:
                remove_dataset(platform, record["id"])
                del st.query_params["dataset"]
                st.rerun()
            except PlatformError as exc:
                show_error(exc)


selected = st.query_params.get("dataset")
if selected:
    detail_view(str(selected))
else:
    list_view()
