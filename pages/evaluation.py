"""Evaluation: eval sets, new runs, run results (overall, per category, against a baseline, samples, errors), and
comparisons of 2-5 runs. A run's detail view is `?run=ID`."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.i18n import t
from app.state import get_platform_cached
from app.widgets import show_error, state_badge, state_label, task_panel
from platform_core import settings
from platform_core.connections import list_connections
from platform_core.errors import PlatformError
from platform_core.evaluation.compare import compare_runs, compare_to_baseline, disagreement_metrics, prediction_text
from platform_core.evaluation.datasets_adapter import add_eval_dataset_upload, eval_type_of, list_eval_datasets
from platform_core.evaluation.evaltypes import DEFAULT_METRICS, EVAL_TYPES
from platform_core.evaluation.runs import (
    create_run,
    get_run,
    launch_comparison,
    list_runs,
    load_samples,
    rescore_run,
    start_run,
    stop_run,
)
from platform_core.models import list_models

platform = get_platform_cached()
METRIC_CHOICES = ["accuracy", "exact_match", "bleu", "rouge", "pass@k"]
metric_labels = {m: t(f"evaluation.metric.{m.replace('@', '_at_')}") for m in METRIC_CHOICES}
type_labels = {e: t(f"evaluation.type.{e}") for e in EVAL_TYPES}


def fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ci_text(ci) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def targets() -> tuple[list[str], dict[str, str]]:
    options = ["local"] + [f"ssh:{c['name']}" for c in list_connections(platform)]
    labels = {o: t("sidebar.target.local") if o == "local" else t("sidebar.target.ssh", name=o[4:]) for o in options}
    return options, labels


def generation_widgets(prefix: str) -> dict:
    """Generation parameter inputs (defaults from the user's guide: 512 tokens, T 0.7, top-p 0.9, 1 sample)."""
    c1, c2, c3, c4 = st.columns(4)
    params = {
        "max_new_tokens": c1.number_input(t("evaluation.gen.max_tokens"), 1, 32768, 512, key=f"{prefix}_max"),
        "temperature": c2.number_input(t("evaluation.gen.temperature"), 0.0, 2.0, 0.7, 0.05, key=f"{prefix}_temp"),
        "top_p": c3.number_input(t("evaluation.gen.top_p"), 0.01, 1.0, 0.9, 0.05, key=f"{prefix}_top_p"),
        "samples": c4.number_input(t("evaluation.gen.samples"), 1, 200, 1, key=f"{prefix}_samples"),
    }
    with st.expander(t("evaluation.gen.more")):
        c5, c6, c7, c8 = st.columns(4)
        params["seed"] = c5.number_input(t("evaluation.gen.seed"), 0, 2**31 - 1, 0, key=f"{prefix}_seed")
        params["batch_size"] = c6.number_input(t("evaluation.gen.batch"), 1, 512, 8, key=f"{prefix}_batch")
        backend_labels = {b: t(f"evaluation.gen.backend.{b}") for b in ("auto", "vllm", "transformers")}
        params["backend"] = c7.selectbox(
            t("evaluation.gen.backend"), list(backend_labels), format_func=backend_labels.get, key=f"{prefix}_backend"
        )
        template_labels = {c: t(f"evaluation.gen.template.{c}") for c in ("auto", "on", "off")}
        params["chat_template"] = c8.selectbox(
            t("evaluation.gen.template"), list(template_labels), format_func=template_labels.get, key=f"{prefix}_tpl"
        )
        c9, c10, _c11, _c12 = st.columns(4)
        params["code_timeout_s"] = c9.number_input(
            t("evaluation.gen.code_timeout"), 0.1, 600.0, 5.0, 1.0, key=f"{prefix}_code_timeout",
            help=t("evaluation.gen.code_help"),
        )  # fmt: skip
        params["code_memory_mb"] = c10.number_input(
            t("evaluation.gen.code_memory"), 128, 65536, 1024, 128, key=f"{prefix}_code_memory",
            help=t("evaluation.gen.code_help"),
        )  # fmt: skip
    return params


# -- run detail ----------------------------------------------------------------------------------------------------
def category_chart(summary: dict, key: str) -> go.Figure:
    categories = list(summary["per_category"])
    values = [summary["per_category"][c][key]["value"] or 0 for c in categories]
    lows = [v - (summary["per_category"][c][key]["ci"] or [v, v])[0] for c, v in zip(categories, values, strict=True)]
    highs = [(summary["per_category"][c][key]["ci"] or [v, v])[1] - v for c, v in zip(categories, values, strict=True)]
    figure = go.Figure(
        go.Bar(x=categories, y=values, error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows})
    )
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=key)
    return figure


def overall_section(summary: dict) -> None:
    st.subheader(t("evaluation.detail.overall"))
    if summary.get("partial"):
        st.warning(t("evaluation.detail.partial", scored=summary["scored"], items=summary["items"]))
    keys = summary["keys"]
    columns = st.columns(min(4, len(keys)) or 1)
    for number, key in enumerate(keys):
        entry = summary["overall"][key]
        columns[number % len(columns)].metric(
            key, fmt(entry["value"]), help=t("evaluation.detail.ci", ci=ci_text(entry["ci"]))
        )
    rows = [
        {
            t("evaluation.col.metric"): key,
            t("evaluation.col.value"): summary["overall"][key]["value"],
            t("evaluation.col.se"): summary["overall"][key]["se"],
            t("evaluation.col.ci"): ci_text(summary["overall"][key]["ci"]),
            t("evaluation.col.n"): summary["overall"][key]["n"],
        }
        for key in keys
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    notes = summary.get("notes") or {}
    st.caption(
        t(
            "evaluation.detail.notes",
            backend=summary.get("backend") or "-",
            bleu=notes.get("bleu_tokenize", "-"),
            kinds=", ".join(f"{k}: {v}" for k, v in (notes.get("answer_kinds") or {}).items()) or "-",
        )
    )


def category_section(summary: dict, run_id: int) -> None:
    st.subheader(t("evaluation.detail.per_category"))
    keys = summary["keys"]
    table = pd.DataFrame(
        {key: {c: summary["per_category"][c][key]["value"] for c in summary["per_category"]} for key in keys}
    )
    table.insert(0, t("evaluation.col.n"), [summary["per_category"][c][keys[0]]["n"] for c in table.index])
    st.dataframe(table, width="stretch")
    key = st.selectbox(t("evaluation.detail.chart_metric"), keys, key=f"cat_metric_{run_id}")
    st.plotly_chart(category_chart(summary, key), key=f"cat_chart_{run_id}")


def baseline_section(run: dict) -> None:
    st.subheader(t("evaluation.detail.baseline"))
    others = [
        r for r in list_runs(platform, run["dataset_id"])
        if r["id"] != run["id"] and r["summary"] and "overall" in r["summary"]
    ]  # fmt: skip
    if not others:
        st.info(t("evaluation.detail.no_baseline"))
        return
    labels = {r["id"]: f"#{r['id']} {r['name']} ({r['model_ref']})" for r in others}
    baseline = st.selectbox(
        t("evaluation.detail.baseline_pick"), [None, *labels], format_func=lambda v: labels.get(v, "-"),
        key=f"baseline_{run['id']}",
    )  # fmt: skip
    if baseline is None:
        return
    try:
        result = compare_to_baseline(platform, run["id"], baseline)
    except PlatformError as exc:
        show_error(exc)
        return
    yes, no = t("evaluation.detail.significant"), t("evaluation.detail.not_significant")
    rows = [
        {
            t("evaluation.col.metric"): key,
            t("evaluation.col.value"): entry["value"],
            t("evaluation.col.baseline"): entry["baseline"],
            t("evaluation.col.delta"): entry["delta"],
            t("evaluation.col.ci"): ci_text(entry["ci"]),
            t("evaluation.col.test"): t(f"evaluation.test.{entry['test']}"),
            t("evaluation.col.p"): entry["p_value"],
            t("evaluation.col.significant"): yes if entry["significant"] else no,
        }
        for key, entry in result["metrics"].items()
    ]
    st.caption(t("evaluation.detail.baseline_help", items=result["items"], alpha=result["alpha"]))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    with st.expander(t("evaluation.detail.baseline_categories")):
        cat_rows = [
            {
                t("evaluation.col.category"): category,
                t("evaluation.col.metric"): key,
                t("evaluation.col.delta"): entry["delta"],
                t("evaluation.col.p"): entry["p_value"],
                t("evaluation.col.significant"): yes if entry["significant"] else no,
            }
            for category, metrics in result["per_category"].items()
            for key, entry in metrics.items()
        ]
        st.dataframe(pd.DataFrame(cat_rows), hide_index=True, width="stretch")


def samples_frame(samples: list[dict], keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": s["id"],
                t("evaluation.col.category"): s["category"],
                t("evaluation.col.prompt"): s["prompt"],
                t("evaluation.col.reference"): s["reference"],
                t("evaluation.col.prediction"): prediction_text(s["predictions"]),
                **{key: s["scores"].get(key) for key in keys},
            }
            for s in samples
        ]
    )


def sample_matches(sample: dict, categories: list[str], search: str) -> bool:
    """The category filter and the search box (prompt, reference and every prediction, case-insensitive)."""
    if categories and sample["category"] not in categories:
        return False
    text = " ".join([sample["prompt"], str(sample["reference"]), *sample["predictions"]])
    return not search or search.strip().lower() in text.lower()


def samples_section(run: dict, samples: list[dict]) -> None:
    summary = run["summary"]
    keys = summary["keys"]
    categories = sorted({s["category"] for s in samples})
    st.subheader(t("evaluation.detail.samples"))
    c1, c2 = st.columns([1, 2])
    chosen = c1.multiselect(
        t("evaluation.detail.filter_category"),
        categories,
        key=f"sample_cat_{run['id']}",
        placeholder=t("common.choose"),
    )
    search = c2.text_input(t("evaluation.detail.search"), key=f"sample_search_{run['id']}")
    shown = [s for s in samples if sample_matches(s, chosen, search)]  # the filters apply to the error view too
    st.dataframe(samples_frame(shown, keys), hide_index=True, width="stretch")

    st.subheader(t("evaluation.detail.errors"))
    binary = [k for k in keys if summary["binary"].get(k)] or keys
    key = st.selectbox(t("evaluation.detail.error_metric"), binary, key=f"error_metric_{run['id']}")
    full = 1.0 * (summary["scales"].get(key) or 1.0)
    wrong = [s for s in shown if (s["scores"].get(key) or 0.0) < full]
    if not wrong:
        st.success(t("evaluation.detail.no_errors"))
        return
    st.caption(t("evaluation.detail.error_count", count=len(wrong), total=len(samples), metric=key))
    groups: dict[str, list[dict]] = {}
    for sample in wrong:
        groups.setdefault(sample["category"], []).append(sample)
    for category, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        with st.expander(t("evaluation.detail.error_group", category=category, count=len(items))):
            st.dataframe(samples_frame(items, [key]), hide_index=True, width="stretch")


def rescore_section(run: dict) -> None:
    with st.expander(t("evaluation.detail.rescore")):
        with st.form(f"rescore_{run['id']}"):
            current = list(dict.fromkeys("pass@k" if m.startswith("pass@") else m for m in run["metrics"]))
            metrics = st.multiselect(
                t("evaluation.new.metrics"), METRIC_CHOICES, default=[m for m in current if m in METRIC_CHOICES],
                format_func=metric_labels.get, placeholder=t("common.choose"),
            )  # fmt: skip
            ks = [int(m[5:]) for m in run["metrics"] if m.startswith("pass@") and m[5:].isdigit()]
            k = st.number_input(t("evaluation.new.k"), 1, 200, ks[0] if ks else 1)
            if st.form_submit_button(t("evaluation.detail.rescore_button")):
                try:
                    with st.spinner(t("evaluation.detail.rescoring")):
                        rescore_run(platform, run["id"], metrics, int(k))
                    st.rerun()
                except PlatformError as exc:
                    show_error(exc)


def run_detail(run_id: int) -> None:
    if st.button(t("evaluation.detail.back"), key="eval_back"):
        del st.query_params["run"]
        st.rerun()
    try:
        run = get_run(platform, run_id)
    except PlatformError as exc:
        show_error(exc)
        return
    st.header(f"#{run['id']} {run['name']}")
    state_badge(run["state"])
    params = run["gen_params"] or {}
    st.caption(
        t(
            "evaluation.detail.header",
            model=run["model_ref"],
            dataset=run["dataset_id"],
            target=run["target"],
            tokens=params.get("max_new_tokens"),
            temperature=params.get("temperature"),
            top_p=params.get("top_p"),
            samples=params.get("samples"),
        )
    )
    if run["task_id"]:
        task_panel(platform, run["task_id"], key=f"run_{run_id}")
    if run["state"] in ("pending", "running") and st.button(t("evaluation.detail.stop"), key="eval_stop"):
        stop_run(platform, run["id"])
        st.rerun()
    if run["state"] in ("stopped", "failed") and st.button(t("evaluation.detail.resume"), key="eval_resume"):
        try:
            start_run(platform, run["id"])
            st.rerun()
        except PlatformError as exc:
            show_error(exc)
    summary = run.get("summary") or {}
    if "overall" not in summary:
        st.info(t("evaluation.detail.no_results"))
        return
    overall_section(summary)
    category_section(summary, run["id"])
    baseline_section(run)
    samples_section(run, load_samples(platform, run["id"]))
    rescore_section(run)


# -- tabs ----------------------------------------------------------------------------------------------------------
def sets_tab() -> None:
    st.subheader(t("evaluation.sets.upload"))
    with st.form("eval_upload", clear_on_submit=True):
        upload = st.file_uploader(t("evaluation.sets.file"), type=["json", "jsonl", "parquet"])
        c1, c2 = st.columns(2)
        name = c1.text_input(t("common.name"))
        eval_type = c2.selectbox(t("evaluation.sets.type"), list(EVAL_TYPES), format_func=type_labels.get)
        description = st.text_area(t("evaluation.sets.description"), height=80)
        if st.form_submit_button(t("evaluation.sets.add"), type="primary"):
            if upload is None:
                st.error(t("evaluation.sets.need_file"))
            else:
                try:
                    record = add_eval_dataset_upload(
                        platform, upload.name, upload.getvalue(), name or upload.name.rsplit(".", 1)[0],
                        description or None, eval_type,
                    )  # fmt: skip
                    st.success(t("evaluation.sets.added", name=record["name"], rows=record["rows"]))
                except PlatformError as exc:
                    show_error(exc)
    with st.expander(t("evaluation.sets.format")):
        st.markdown(t("evaluation.sets.format_help"))
        st.code('[{"prompt": "1+1=?", "reference": "2", "category": "math"}]', language="json")
    st.subheader(t("evaluation.sets.list"))
    sets = list_eval_datasets(platform)
    if not sets:
        st.info(t("evaluation.sets.empty"))
        return
    frame = pd.DataFrame(
        [
            {
                "id": d["id"],
                t("common.name"): d["name"],
                t("evaluation.sets.type"): type_labels.get(eval_type_of(d), eval_type_of(d)),
                t("evaluation.sets.rows"): d["rows"],
                t("evaluation.sets.categories"): ", ".join((d["field_config"] or {}).get("categories") or []),
                t("evaluation.sets.description"): d["description"] or "",
                t("common.created"): pd.to_datetime(d["created_at"], unit="s"),
            }
            for d in sets
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def model_picker(prefix: str, target: str, multiple: bool = False):
    location = "local" if target == "local" else target[4:]
    models = {m["name"]: m for m in list_models(platform, location, generative=True)}
    if multiple:
        return st.multiselect(
            t("evaluation.new.models"),
            list(models),
            max_selections=5,
            key=f"{prefix}_models",
            placeholder=t("common.choose"),
        )
    choice = st.selectbox(
        t("evaluation.new.model"), [None, *models], format_func=lambda v: v or "-", key=f"{prefix}_model"
    )
    path = st.text_input(t("evaluation.new.model_path"), key=f"{prefix}_path", help=t("evaluation.new.model_path_help"))
    return path.strip() or choice


def new_run_tab() -> None:
    sets = list_eval_datasets(platform)
    if not sets:
        st.info(t("evaluation.sets.empty"))
        return
    set_labels = {d["id"]: f"#{d['id']} {d['name']} ({d['rows']})" for d in sets}
    dataset_id = st.selectbox(t("evaluation.new.dataset"), list(set_labels), format_func=set_labels.get, key="new_ds")
    eval_type = eval_type_of(next(d for d in sets if d["id"] == dataset_id))
    st.caption(t("evaluation.new.type_hint", type=type_labels.get(eval_type, eval_type)))
    options, labels = targets()
    current = settings.run_target(platform)
    target = st.selectbox(
        t("sidebar.target"), options, index=options.index(current) if current in options else 0,
        format_func=labels.get, key="new_target",
    )  # fmt: skip
    with st.form("eval_new_run"):
        name = st.text_input(t("evaluation.new.name"), key="new_name")
        model = model_picker("new", target)
        defaults = [m for m in DEFAULT_METRICS.get(eval_type, []) if m in METRIC_CHOICES]
        metrics = st.multiselect(
            t("evaluation.new.metrics"), METRIC_CHOICES, default=defaults, format_func=metric_labels.get,
            key=f"new_metrics_{dataset_id}", placeholder=t("common.choose"),
        )  # fmt: skip
        k = st.number_input(t("evaluation.new.k"), 1, 200, 1, key="new_k")
        params = generation_widgets("new")
        if st.form_submit_button(t("evaluation.new.start"), type="primary"):
            try:
                run_id = create_run(platform, name, model or "", dataset_id, metrics, params, target, int(k))
                start_run(platform, run_id)
                st.query_params["run"] = str(run_id)
                st.rerun()
            except PlatformError as exc:
                show_error(exc)


def runs_tab() -> None:
    runs = list_runs(platform)
    if not runs:
        st.info(t("evaluation.runs.empty"))
        return
    rows = []
    for run in runs:
        overall = (run.get("summary") or {}).get("overall") or {}
        rows.append(
            {
                "id": run["id"],
                t("common.name"): run["name"],
                t("evaluation.col.model"): run["model_ref"],
                t("evaluation.col.dataset"): run["dataset_id"],
                t("common.state"): state_label(run["state"]),
                t("common.progress"): run["progress"],
                **{key: entry["value"] for key, entry in overall.items()},
            }
        )
    st.dataframe(
        pd.DataFrame(rows), hide_index=True, width="stretch",
        column_config={t("common.progress"): st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)},
    )  # fmt: skip
    labels = {r["id"]: f"#{r['id']} {r['name']}" for r in runs}
    chosen = st.selectbox(t("evaluation.runs.open"), list(labels), format_func=labels.get, key="runs_open")
    if st.button(t("evaluation.runs.open_button"), key="runs_open_button"):
        st.query_params["run"] = str(chosen)
        st.rerun()


def compare_section(run_ids: list[int]) -> None:
    try:
        keys, default = disagreement_metrics(platform, run_ids)
        metric = st.selectbox(
            t("evaluation.compare.disagreement_metric"), keys, index=keys.index(default), key="cmp_disagree_metric"
        )
        result = compare_runs(platform, run_ids, metric if metric in keys else default)
    except PlatformError as exc:
        show_error(exc)
        return
    names = {r["id"]: f"#{r['id']} {r['name']}" for r in result["runs"]}
    st.caption(t("evaluation.compare.items", items=result["items"]))
    for key in result["keys"]:
        entries = result["overall"][key]
        ids = list(entries)
        values = [entries[i]["value"] or 0 for i in ids]
        minus = [v - (entries[i]["ci"] or [v, v])[0] for i, v in zip(ids, values, strict=True)]
        plus = [(entries[i]["ci"] or [v, v])[1] - v for i, v in zip(ids, values, strict=True)]
        figure = go.Figure(
            go.Bar(x=[names[i] for i in ids], y=values,
                   error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus})
        )  # fmt: skip
        figure.update_layout(title=key, height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10})
        st.plotly_chart(figure, key=f"cmp_{key}")
    st.subheader(t("evaluation.compare.per_category"))
    key = st.selectbox(t("evaluation.detail.chart_metric"), result["keys"], key="cmp_cat_metric")
    categories = list(result["per_category"])
    figure = go.Figure(
        [
            go.Bar(
                name=names[r["id"]], x=categories, y=[result["per_category"][c][key][r["id"]] or 0 for c in categories]
            )
            for r in result["runs"]
        ]
    )
    figure.update_layout(barmode="group", height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    st.plotly_chart(figure, key="cmp_categories")
    st.subheader(t("evaluation.compare.versus_first", name=names[result["runs"][0]["id"]]))
    yes, no = t("evaluation.detail.significant"), t("evaluation.detail.not_significant")
    rows = [
        {
            t("evaluation.col.run"): names[run_id],
            t("evaluation.col.metric"): key,
            t("evaluation.col.delta"): entry["delta"],
            t("evaluation.col.p"): entry["p_value"],
            t("evaluation.col.significant"): yes if entry["significant"] else no,
        }
        for run_id, metrics in result["versus_first"].items()
        for key, entry in metrics.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.subheader(t("evaluation.compare.disagreements", count=result["disagreement_count"],
                   metric=result["disagreement_metric"]))  # fmt: skip
    if result["disagreements"]:
        rows = []
        for item in result["disagreements"]:
            row = {
                "id": item["id"],
                t("evaluation.col.category"): item["category"],
                t("evaluation.col.prompt"): item["prompt"],
                t("evaluation.col.reference"): item["reference"],
            }
            for run_id, prediction in item["predictions"].items():
                row[f"{names[run_id]}"] = prediction
                row[f"{names[run_id]} · {result['disagreement_metric']}"] = item["scores"][run_id]
            rows.append(row)
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def compare_tab() -> None:
    scored = [r for r in list_runs(platform) if (r.get("summary") or {}).get("overall")]
    if len(scored) >= 2:
        labels = {
            r["id"]: t("evaluation.compare.run_label", id=r["id"], name=r["name"], model=r["model_ref"],
                       dataset=r["dataset_id"])
            for r in scored
        }  # fmt: skip
        chosen = st.multiselect(
            t("evaluation.compare.pick"),
            list(labels),
            format_func=labels.get,
            max_selections=5,
            key="cmp_runs",
            placeholder=t("common.choose"),
        )
        if len(chosen) >= 2:
            compare_section(chosen)
    else:
        st.info(t("evaluation.compare.need_runs"))
    st.divider()
    st.subheader(t("evaluation.compare.launch"))
    sets = list_eval_datasets(platform)
    if not sets:
        st.info(t("evaluation.sets.empty"))
        return
    set_labels = {d["id"]: f"#{d['id']} {d['name']} ({d['rows']})" for d in sets}
    options, target_labels = targets()
    current = settings.run_target(platform)
    target = st.selectbox(
        t("sidebar.target"), options, index=options.index(current) if current in options else 0,
        format_func=target_labels.get, key="cmp_target",
    )  # fmt: skip
    with st.form("eval_launch_compare"):
        name = st.text_input(t("evaluation.new.name"), key="cmp_name")
        dataset_id = st.selectbox(
            t("evaluation.new.dataset"), list(set_labels), format_func=set_labels.get, key="cmp_ds"
        )
        models = model_picker("cmp", target, multiple=True)
        metrics = st.multiselect(
            t("evaluation.new.metrics"), METRIC_CHOICES, format_func=metric_labels.get, key="cmp_metrics",
            help=t("evaluation.compare.metrics_help"), placeholder=t("common.choose"),
        )  # fmt: skip
        params = generation_widgets("cmp")
        if st.form_submit_button(t("evaluation.compare.start"), type="primary"):
            try:
                _run_ids, task_id = launch_comparison(
                    platform, name, models, dataset_id, metrics or None, params, target
                )
                st.session_state["eval_compare_task"] = task_id
            except PlatformError as exc:
                show_error(exc)
    if st.session_state.get("eval_compare_task"):
        task_panel(platform, st.session_state["eval_compare_task"], key="compare")


st.title(t("evaluation.title"))
run_param = st.query_params.get("run")
if run_param and run_param.isdigit():
    run_detail(int(run_param))
else:
    tab_sets, tab_new, tab_runs, tab_compare = st.tabs(
        [t("evaluation.tab.sets"), t("evaluation.tab.new"), t("evaluation.tab.runs"), t("evaluation.tab.compare")]
    )
    with tab_sets:
        sets_tab()
    with tab_new:
        new_run_tab()
    with tab_runs:
        runs_tab()
    with tab_compare:
        compare_tab()
