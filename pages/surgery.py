"""Model surgery: merges (mergekit), SWA/EMA averaging, LoRA merge, checkpoints (convert, select, export)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.i18n import t
from app.state import get_platform_cached
from app.widgets import show_error, state_label, task_panel, task_title
from platform_core.errors import PlatformError
from platform_core.models import list_models
from platform_core.surgery.average import average_weights, start_average
from platform_core.surgery.compat import check_compatible, resolve_inputs
from platform_core.surgery.convert import (
    attach_metrics,
    converted_form,
    find_verl_checkpoint,
    list_checkpoints,
    metrics_files,
    read_metrics_jsonl,
    start_convert,
    start_convert_many,
)
from platform_core.surgery.export import start_export
from platform_core.surgery.lora import adapter_info, find_adapters, start_lora_merge
from platform_core.surgery.merge import METHODS, NEEDS_BASE, NORMALISED, normalise_weights, start_merge
from platform_core.surgery.select import STRATEGIES, select_checkpoint, strategy_metric
from platform_core.tasks import list_tasks

platform = get_platform_cached()
st.title(t("surgery.title"))
st.caption(t("surgery.intro"))

registered = [m for m in list_models(platform) if m.get("exists")]
model_labels = {m["path"]: f"{m['name']} · {m['architecture'] or '?'} · {m['path']}" for m in registered}


def pick_models(key: str, label: str | None = None) -> list[str]:
    """Registered models (in the order picked) followed by any typed directories."""
    if registered:
        chosen = st.multiselect(
            label or t("surgery.models"),
            list(model_labels),
            format_func=model_labels.get,
            help=t("surgery.models.help"),
            key=f"{key}_registered",
            placeholder=t("common.choose"),
        )
    else:
        st.caption(t("surgery.none_registered"))
        chosen = []
    typed = st.text_area(t("surgery.paths"), help=t("surgery.paths.help"), key=f"{key}_paths", height=80)
    return chosen + [line.strip() for line in typed.splitlines() if line.strip()]


def free_name(name: str) -> str:
    """`name`, or `name-2`, `name-3`... when the workspace models/ already holds a model of that name."""
    models = platform.workspace.models
    candidate, n = name, 1
    while (models / candidate).exists() and any((models / candidate).iterdir()):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def output_fields(key: str, default: str) -> tuple[str, bool]:
    """The output name (a free one by default, so a second merge does not collide with the first) and Overwrite."""
    default = free_name(default)
    c1, c2 = st.columns([3, 2])
    out = c1.text_input(t("surgery.out"), value=default, help=t("surgery.out.help"), key=f"{key}_out")
    overwrite = c2.checkbox(t("surgery.overwrite"), key=f"{key}_overwrite")
    return out, overwrite


def start(key: str, action) -> None:
    """Run a start_* call; remember the task for this tab's panel, or show why it was refused."""
    try:
        task_id = action()
    except PlatformError as exc:
        reasons = getattr(exc, "reasons", None)
        if reasons:  # incompatible models: the findings in the page language
            st.error(t("surgery.incompatible") + "\n\n" + "\n\n".join(reason_text(r) for r in reasons))
        else:
            show_error(exc)
        return
    st.session_state[f"surgery_task_{key}"] = task_id
    st.success(t("surgery.task_started", id=task_id))


def panel(key: str) -> None:
    task_id = st.session_state.get(f"surgery_task_{key}")
    if task_id:
        task_panel(platform, task_id, key=key)


def reason_text(reason: str) -> str:
    """A compatibility finding in the UI language (translated by its code; plain text shown as it is)."""
    code = getattr(reason, "code", None)
    return t(f"surgery.reason.{code}", **reason.params) if code else str(reason)


def weights_chart(labels: list[str], weights: list[float]) -> None:
    figure = go.Figure(go.Bar(x=labels, y=weights, text=[f"{w:.3f}" for w in weights], textposition="auto"))
    figure.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title=t("surgery.col.weight"))
    st.plotly_chart(figure, width="stretch")


def selection_chart(series: dict) -> None:
    """The metric over the checkpoints, the pick marked in red."""
    points = [p for p in series["points"] if p["value"] is not None]
    chosen = [p for p in points if p["step"] == series["chosen_step"]]
    figure = go.Figure(
        go.Scatter(
            x=[p["step"] for p in points], y=[p["value"] for p in points], mode="lines+markers", name=series["metric"]
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[p["step"] for p in chosen],
            y=[p["value"] for p in chosen],
            mode="markers",
            marker={"color": "red", "size": 14},
            showlegend=False,
        )
    )
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title=t("surgery.col.step"),
        yaxis_title=series["metric"],
    )
    st.plotly_chart(figure, width="stretch")


registered_names = {m["path"]: m["name"] for m in registered}


def short(path: str) -> str:
    """A model's registered name, or its directory name."""
    return registered_names.get(path) or Path(path).name or path


merge_tab, average_tab, lora_tab, checkpoints_tab = st.tabs(
    [t("surgery.tab.merge"), t("surgery.tab.average"), t("surgery.tab.lora"), t("surgery.tab.checkpoints")]
)

# -- merge ---------------------------------------------------------------------------------------------------------
with merge_tab:
    method_labels = {m: t(f"surgery.method.{m}") for m in METHODS}
    method = st.selectbox(t("surgery.merge.method"), METHODS, format_func=method_labels.get, key="merge_method")
    models = pick_models("merge")
    base = None
    if method in NEEDS_BASE:
        base_options = [""] + list(model_labels)
        base_labels = {"": "—", **model_labels}
        base = st.selectbox(
            t("surgery.merge.base"),
            base_options,
            format_func=base_labels.get,
            help=t("surgery.merge.base.help"),
            key="merge_base",
        )
        base = base or st.text_input(t("surgery.merge.base_path"), key="merge_base_path").strip() or None
    options: dict = {}
    if method == "slerp":
        st.caption(t("surgery.merge.slerp_two"))
        options["t"] = st.slider(t("surgery.merge.t"), 0.0, 1.0, 0.5, 0.05, key="merge_t")
    else:
        merged_models = [m for m in models if m != base]
        weights = []
        if merged_models:
            columns = st.columns(min(len(merged_models), 4))
            for i, model in enumerate(merged_models):
                weights.append(
                    columns[i % len(columns)].number_input(
                        t("surgery.merge.weight", name=short(model)),
                        min_value=0.0,
                        value=1.0,
                        step=0.1,
                        key=f"merge_weight_{i}",
                    )
                )
            try:
                shown = normalise_weights(weights, len(weights), normalise=method in NORMALISED)
                if method in NORMALISED:
                    st.caption(t("surgery.merge.normalised"))
                else:
                    st.caption(t("surgery.merge.not_normalised"))
                weights_chart([short(m) for m in merged_models], shown)
            except PlatformError as exc:
                show_error(exc)
        options["weights"] = weights or None
        if method in NEEDS_BASE:
            options["density"] = st.slider(t("surgery.merge.density"), 0.05, 1.0, 0.5, 0.05, key="merge_density")
        if method.startswith("dare"):
            options["seed"] = int(st.number_input(t("surgery.merge.seed"), 0, 2**31 - 1, 0, key="merge_seed"))
    dtype_labels = {
        "": t("surgery.merge.dtype.auto"),
        "float32": "float32",
        "bfloat16": "bfloat16",
        "float16": "float16",
    }
    options["dtype"] = (
        st.selectbox(t("surgery.merge.dtype"), list(dtype_labels), format_func=dtype_labels.get, key="merge_dtype")
        or None
    )
    out, overwrite = output_fields(f"merge_{method}", f"merged-{method}")

    inputs = list(dict.fromkeys(([base] if base else []) + models))
    if len(inputs) >= 2:
        try:
            dirs, pending, pending_notes = resolve_inputs(platform, inputs, [t("surgery.models")] * len(inputs))
            ready = [d for d in dirs if d not in pending]
            report = check_compatible(ready) if len(ready) >= 2 else {"ok": True, "problems": [], "notes": []}
            if report["ok"]:
                st.success(t("surgery.compatible_pending") if pending else t("surgery.compatible"))
            else:
                st.error(t("surgery.incompatible") + "\n\n" + "\n\n".join(reason_text(p) for p in report["problems"]))
            for note in pending_notes + report["notes"]:
                st.caption(reason_text(note))
        except PlatformError as exc:
            show_error(exc)
    else:
        st.info(t("surgery.need_two"))
    if st.button(t("surgery.merge.start"), type="primary", key="merge_start", disabled=len(inputs) < 2):
        start(
            "merge", lambda: start_merge(platform, method, models, base=base, out=out, overwrite=overwrite, **options)
        )
    panel("merge")

# -- average -------------------------------------------------------------------------------------------------------
with average_tab:
    checkpoint_root = st.text_input(t("surgery.avg.source"), key="avg_root").strip()
    step_paths: list[str] = []
    if checkpoint_root:
        try:
            found = list_checkpoints(Path(checkpoint_root))
            by_step = {c["step"]: c["path"] for c in found}
            steps = st.multiselect(
                t("surgery.avg.steps"),
                list(by_step),
                default=list(by_step),
                key="avg_steps",
                placeholder=t("common.choose"),
            )
            step_paths = [by_step[s] for s in sorted(steps)]
        except PlatformError as exc:
            show_error(exc)
    checkpoints = step_paths + pick_models("avg")
    mode_labels = {m: t(f"surgery.avg.mode.{m}") for m in ("uniform", "ema")}
    mode = st.radio(
        t("surgery.avg.mode"), list(mode_labels), format_func=mode_labels.get, horizontal=True, key="avg_mode"
    )
    decay = st.slider(t("surgery.avg.decay"), 0.05, 1.0, 0.9, 0.05, key="avg_decay") if mode == "ema" else 0.9
    if len(checkpoints) >= 2:
        st.caption(t("surgery.avg.order"))
        st.markdown(t("surgery.avg.weights"))
        weights_chart(
            [f"{i + 1}. {short(c)}" for i, c in enumerate(checkpoints)], average_weights(len(checkpoints), mode, decay)
        )
    else:
        st.info(t("surgery.avg.need_two"))
    shard = st.selectbox(t("surgery.avg.shard"), ["500MB", "1GB", "2GB", "5GB"], index=1, key="avg_shard")
    out, overwrite = output_fields(f"avg_{mode}", f"averaged-{mode}")
    if st.button(t("surgery.avg.start"), type="primary", key="avg_start", disabled=len(checkpoints) < 2):
        start("average", lambda: start_average(platform, checkpoints, mode, decay, out, overwrite, shard))
    panel("average")

# -- LoRA ----------------------------------------------------------------------------------------------------------
with lora_tab:
    adapter_root = st.text_input(t("surgery.lora.adapter"), key="lora_root").strip()
    adapter = None
    if adapter_root and Path(adapter_root).is_dir():
        adapters = [str(a) for a in find_adapters(Path(adapter_root))]
        if adapters:
            adapter = st.selectbox(t("surgery.lora.found"), adapters, key="lora_adapter")
            info = adapter_info(Path(adapter)) or {}
            modules = info.get("target_modules")
            st.caption(
                t(
                    "surgery.lora.info",
                    base=info.get("base_model_name_or_path") or "?",
                    r=info.get("r"),
                    alpha=info.get("lora_alpha"),
                    modules=", ".join(modules) if isinstance(modules, list) else modules,
                )
            )
        else:
            st.warning(t("surgery.lora.none"))
    lora_base = st.text_input(t("surgery.lora.base"), key="lora_base").strip() or None
    lora_dtype = st.selectbox(t("surgery.lora.dtype"), ["auto", "bfloat16", "float32", "float16"], key="lora_dtype")
    out, overwrite = output_fields("lora", f"{short(adapter)}-merged" if adapter else "lora-merged")
    if st.button(t("surgery.lora.start"), type="primary", key="lora_start", disabled=adapter is None):
        start("lora", lambda: start_lora_merge(platform, adapter, lora_base, out, overwrite, lora_dtype))
    panel("lora")

# -- checkpoints ---------------------------------------------------------------------------------------------------
with checkpoints_tab:
    from platform_core.jobs.service import list_jobs

    local_jobs = [j for j in list_jobs(platform, limit=500) if j["target"] in ("local", "ray") and j["output_dir"]]
    source_labels = {"job": t("surgery.ckpt.source.job"), "dir": t("surgery.ckpt.source.dir")}
    source = st.radio(
        t("surgery.ckpt.source"),
        list(source_labels),
        format_func=source_labels.get,
        horizontal=True,
        key="ckpt_source",
        index=0 if local_jobs else 1,
    )
    metric_guesses: list[str] = []
    if source == "job":
        job_labels = {
            j["id"]: f"#{j['id']} {j['name']} ({j['algorithm']}, {state_label(j['state'])})" for j in local_jobs
        }
        preselected = st.query_params.get("job")
        options = list(job_labels)
        job_id = (
            st.selectbox(
                t("surgery.ckpt.job"),
                options,
                format_func=job_labels.get,
                key="ckpt_job",
                index=options.index(int(preselected))
                if preselected and preselected.isdigit() and int(preselected) in options
                else 0,
            )
            if options
            else None
        )
        job = next((j for j in local_jobs if j["id"] == job_id), None)
        root = f"{job['output_dir']}/checkpoints" if job else ""
        if job:
            metric_guesses = [str(p) for p in metrics_files(job["output_dir"])]  # attempt-2 before attempt-10
        if not local_jobs:
            st.info(t("surgery.ckpt.no_jobs"))
    else:
        root = st.text_input(t("surgery.ckpt.dir"), help=t("surgery.ckpt.dir.help"), key="ckpt_root").strip()
    found = []
    if root:
        try:
            found = list_checkpoints(Path(root))
        except PlatformError as exc:
            show_error(exc)
    if root and not found:
        st.info(t("surgery.ckpt.none"))
    if found:
        guesses = metric_guesses or sorted(
            {str(p) for d in (Path(root), Path(root).parent) for p in d.glob("metrics*.jsonl")}
        )
        metric_text = st.text_area(t("surgery.ckpt.metrics"), value="\n".join(guesses), key=f"ckpt_metrics_{root}")
        metric_files = [line.strip() for line in metric_text.splitlines() if line.strip()]
        try:
            checkpoints = attach_metrics(found, read_metrics_jsonl([Path(p) for p in metric_files]))
        except OSError as exc:
            show_error(exc)
            checkpoints = attach_metrics(found, {})
        hf_forms = {}
        for c in checkpoints:
            shards = find_verl_checkpoint(Path(c["path"]))
            hf_forms[c["step"]] = c["hf_weights"] or (str(converted_form(platform, shards) or "") if shards else "")
        metric_names = sorted(
            {k for c in checkpoints for k in c["metrics"] if "loss" in k or "reward" in k or "score" in k}
        )
        rows = [
            {
                t("surgery.col.step"): c["step"],
                t("surgery.col.format"): c["format"],
                t("surgery.col.size"): round(c["size_bytes"] / 1e6, 1),
                t("surgery.col.hf"): t("common.yes") if hf_forms[c["step"]] else t("common.no"),
                t("surgery.col.lora"): t("common.yes") if c["lora"] else t("common.no"),
                **{m: c["metrics"].get(m) for m in metric_names},
            }
            for c in checkpoints
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        unconverted = [c for c in checkpoints if not hf_forms[c["step"]] and find_verl_checkpoint(Path(c["path"]))]
        if unconverted and st.button(t("surgery.ckpt.convert_all"), key="ckpt_convert_all"):
            # One task converting them in turn: each conversion loads a whole model.
            start("convert", lambda: start_convert_many(platform, [c["path"] for c in unconverted]))

        st.subheader(t("surgery.ckpt.select"))
        strategy_labels = {s: t(f"surgery.strategy.{s}") for s in STRATEGIES}
        # The first strategy these checkpoints can answer (a DPO run logs no validation loss and no reward)
        ranked = [s for s in ("lowest_val_loss", "highest_reward") if strategy_metric(checkpoints, s)]
        strategy = st.radio(
            t("surgery.ckpt.strategy"),
            STRATEGIES,
            index=STRATEGIES.index(ranked[0] if ranked else "last"),
            format_func=strategy_labels.get,
            horizontal=True,
            key=f"ckpt_strategy_{root}",  # another job starts again from its own default
        )
        step = None
        if strategy == "custom":
            step = st.selectbox(t("surgery.ckpt.step"), [c["step"] for c in checkpoints], key="ckpt_step")
        try:
            chosen, _reason, series = select_checkpoint(checkpoints, strategy, step)
        except PlatformError as exc:
            st.warning(str(exc))  # e.g. no validation loss logged: the message says what to choose instead
            chosen, series = None, None
        if chosen is not None:
            values = [p for p in series["points"] if p["value"] is not None]
            value = next((p["value"] for p in values if p["step"] == chosen["step"]), None)
            if strategy in ("lowest_val_loss", "highest_reward"):
                key = "lowest" if strategy == "lowest_val_loss" else "highest"
                st.success(
                    t(
                        f"surgery.ckpt.reason.{key}",
                        step=chosen["step"],
                        metric=series["metric"],
                        value=f"{value:.4g}",
                        count=len(values),
                    )
                )
            else:
                st.success(t(f"surgery.ckpt.reason.{strategy}", step=chosen["step"]))
            if values:
                st.caption(t("surgery.ckpt.chart", metric=series["metric"]))
                selection_chart(series)
            hf = hf_forms[chosen["step"]]
            if hf:
                st.caption(t("surgery.ckpt.is_hf", path=hf))
            elif chosen["format"] == "lora-adapter":
                st.caption(t("surgery.ckpt.export_adapter"))
            elif chosen["format"].startswith("verl-fsdp"):
                st.caption(t("surgery.ckpt.needs_convert_lora" if chosen["lora"] else "surgery.ckpt.needs_convert"))
            else:
                st.caption(t("surgery.ckpt.unknown_format"))
            c1, c2 = st.columns(2)
            if (
                not hf
                and find_verl_checkpoint(Path(chosen["path"]))
                and c1.button(t("surgery.ckpt.convert"), key="ckpt_convert")
            ):
                start("convert", lambda: start_convert(platform, chosen["path"]))
            name = c2.text_input(
                t("surgery.ckpt.export_name"),
                value=f"{job['name'] if source == 'job' and job else Path(root).name}-step{chosen['step']}",
                key="ckpt_export_name",
            )
            if c2.button(t("surgery.ckpt.export"), type="primary", key="ckpt_export"):
                start("convert", lambda: start_export(platform, chosen["path"], name))
    panel("convert")

# -- recent tasks --------------------------------------------------------------------------------------------------
recent = [task for task in list_tasks(platform, limit=100) if task["kind"].startswith("surgery.")][:10]
if recent:
    with st.expander(t("surgery.recent")):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("surgery.col.task"): task["id"],
                        t("surgery.col.kind"): task["kind"].removeprefix("surgery."),
                        t("common.state"): state_label(task["state"]),
                        t("common.progress"): round(task["progress"] * 100),
                        t("surgery.col.title"): task_title(task),
                    }
                    for task in recent
                ]
            ),
            hide_index=True,
            width="stretch",
        )
