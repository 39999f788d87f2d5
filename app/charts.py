"""Shared monitoring widgets (Plotly): metric line charts, gradient heatmap, GPU panel, log viewer, rollout browser.

The `build_*` functions return Plotly figures without touching Streamlit (tests and benchmarks call them); the widgets
draw them with their controls. Data comes from `platform_core.monitor` (a `RunMonitor` polled by the page):

    monitor.poll()
    metrics_panel({"job 7": monitor.store}, key="job7")
    gradnorm_heatmap(monitor.gradnorms, key="job7")
    gpu_panel(monitor.system, key="job7")
    log_viewer(monitor.log, key="job7", first_error=monitor.first_error, download=monitor.download())
    rollout_browser(sorted(monitor.rollout_files()), monitor.read_rollouts, key="job7", grouped_default=True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from app.i18n import t
from app.widgets import show_error
from platform_core.errors import PlatformError
from platform_core.monitor.canonical import CHART_GROUPS, group_members, resolve, unmapped
from platform_core.monitor.display import downsample_max, downsample_minmax, ema
from platform_core.monitor.gradnorms import Finding, GradNormStore, diagnose, gradnorm_arrays
from platform_core.monitor.logs import (
    LEVELS,
    ErrorReport,
    LogDownload,
    LogTail,
    highlight_html,
    render_log_html,
    search_file,
    search_lines,
)
from platform_core.monitor.metrics import MetricsStore
from platform_core.monitor.progress import Progress, format_duration
from platform_core.monitor.rollouts import filter_rollouts, group_by_prompt
from platform_core.monitor.system import SystemStore
from platform_core.monitor.watchdog import HealthWarning

MAX_POINTS = 2000
PALETTE = qualitative.Plotly
DEFAULT_SMOOTHING = 0.6


# -- line charts ---------------------------------------------------------------------------------------------------
def build_line_figure(
    series: dict[str, tuple],
    *,
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
    title: str | None = None,
    height: int = 300,
) -> go.Figure:
    """Return a figure with one line per series: the raw values faint and the EMA-smoothed line on top.

    Each series is (steps, values) of any length; the smoothing runs on the full series, then both lines are
    downsampled to about `max_points` keeping each bucket's minimum and maximum.
    """
    fig = go.Figure()
    for i, (label, (steps, values)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        steps = np.asarray(steps)
        values = np.asarray(values, dtype=np.float64)
        raw_x, raw_y = downsample_minmax(steps, values, max_points)
        if smoothing > 0:
            fig.add_trace(
                go.Scatter(
                    x=raw_x,
                    y=raw_y,
                    mode="lines",
                    line={"color": colour, "width": 1},
                    opacity=0.25,
                    name=label,
                    legendgroup=label,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            smooth_x, smooth_y = downsample_minmax(steps, ema(values, smoothing), max_points)
        else:
            smooth_x, smooth_y = raw_x, raw_y
        fig.add_trace(
            go.Scatter(
                x=smooth_x,
                y=smooth_y,
                mode="lines+markers" if smooth_x.size <= 50 else "lines",
                marker={"size": 4},
                line={"color": colour, "width": 2},
                name=label,
                legendgroup=label,
            )
        )
    fig.update_layout(
        title={"text": title} if title else None,
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},  # title on the left
        xaxis_title=t("monitor.progress.step"),
    )
    if log_y:
        values = [v for _label, (_steps, vs) in series.items() for v in np.asarray(vs, dtype=np.float64).ravel()]
        fig.update_yaxes(type="log", **log_ticks(values))
    return fig


def log_ticks(values) -> dict:
    """Tick values and labels at 1-2-5 steps covering the positive values, written in full ("0.002", not Plotly's
    bare "2" between decades); a constant series gets its own value as the tick."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data) & (data > 0)]
    if data.size == 0:
        return {}
    low, high = float(data.min()), float(data.max())
    ticks = [
        m * 10.0**e
        for e in range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
        for m in (1, 2, 5)
        if low / 1.2 <= m * 10.0**e <= high * 1.2
    ]
    if len(ticks) < 2:
        ticks = sorted({*ticks, low, high})
    if len(ticks) > 8:  # many decades: powers of ten only, every k-th decade so that at most 8 remain
        decades = [v for v in ticks if f"{v:.0e}".startswith("1")] or ticks
        ticks = decades[:: -(-len(decades) // 8)]
    labels: dict[str, float] = {}
    for value in ticks:  # values that print alike (1 and 1.001) keep one tick
        labels.setdefault(f"{value:.3g}", value)
    return {"tickvals": list(labels.values()), "ticktext": list(labels)}


def line_chart(
    series: dict[str, tuple],
    *,
    title: str,
    key: str,
    smoothing: float | None = None,
    log_default: bool = False,
    max_points: int = MAX_POINTS,
) -> None:
    """Draw a line chart with its own log-scale toggle and (unless `smoothing` is given) its own EMA smoothing
    slider, in one compact row above the chart; the widget keys are `{key}_smooth` and `{key}_log`."""
    controls = st.columns([3, 2], vertical_alignment="bottom") if smoothing is None else [None, st.container()]
    if smoothing is None:
        smoothing = controls[0].slider(
            t("monitor.chart.smoothing"),
            0.0,
            0.99,
            DEFAULT_SMOOTHING,
            0.01,
            key=f"{key}_smooth",
            help=t("monitor.chart.smoothing_help"),
        )
    log_y = controls[1].toggle(t("monitor.chart.log_scale"), value=log_default, key=f"{key}_log")
    figure = build_line_figure(series, smoothing=smoothing, log_y=log_y, max_points=max_points, title=title)
    st.plotly_chart(figure, key=f"{key}_chart", config={"displaylogo": False})


def _metric_labels() -> dict[str, str]:
    return {
        "loss": t("monitor.metric.loss"),
        "policy_loss": t("monitor.metric.policy_loss"),
        "value_loss": t("monitor.metric.value_loss"),
        "val_loss": t("monitor.metric.val_loss"),
        "reward_mean": t("monitor.metric.reward_mean"),
        "reward_std": t("monitor.metric.reward_std"),
        "kl": t("monitor.metric.kl"),
        "ppo_kl": t("monitor.metric.ppo_kl"),
        "entropy": t("monitor.metric.entropy"),
        "lr": t("monitor.metric.lr"),
        "grad_norm": t("monitor.metric.grad_norm"),
        "value_grad_norm": t("monitor.metric.value_grad_norm"),
        "response_length": t("monitor.metric.response_length"),
        "throughput": t("monitor.metric.throughput"),
        "rewards_chosen": t("monitor.metric.rewards_chosen"),
        "rewards_rejected": t("monitor.metric.rewards_rejected"),
        "reward_margin": t("monitor.metric.reward_margin"),
        "reward_accuracy": t("monitor.metric.reward_accuracy"),
    }


def _group_titles() -> dict[str, str]:
    return {
        "loss": t("monitor.chart.loss"),
        "reward": t("monitor.chart.reward"),
        "dpo_rewards": t("monitor.chart.dpo_rewards"),
        "reward_accuracy": t("monitor.chart.reward_accuracy"),
        "kl": t("monitor.chart.kl"),
        "entropy": t("monitor.chart.entropy"),
        "lr": t("monitor.chart.lr"),
        "grad_norm": t("monitor.chart.grad_norm"),
        "response_length": t("monitor.chart.response_length"),
        "throughput": t("monitor.chart.throughput"),
        "validation": t("monitor.chart.validation"),
    }


def chart_series(stores: dict[str, MetricsStore], names: list[str], labels: dict[str, str]) -> dict[str, tuple]:
    """Return {legend label: (steps, values)} for canonical `names` across runs (labelled by run when several)."""
    out = {}
    for run_label, store in stores.items():
        mapping = resolve(store.names())
        for name in names:
            raw = mapping.get(name)
            if raw is None:
                continue
            label = labels.get(name, name)
            out[f"{run_label} · {label}" if len(stores) > 1 else label] = store.series(raw)
    return out


def metrics_panel(stores: dict[str, MetricsStore], *, key: str, columns: int = 2) -> None:
    """Draw every chart the runs have (loss, reward, KL, ...) and any other metric chosen by its raw name; each
    chart has its own smoothing slider and log-scale toggle (keys `{key}_{chart}_smooth` / `{key}_{chart}_log`).

    `stores` maps a run label (e.g. "#7 attempt-joined" or a job name) to its MetricsStore; with several runs each
    chart overlays them.
    """
    if not any(store.names() for store in stores.values()):
        st.info(t("monitor.metrics.empty"))
        return
    labels, titles = _metric_labels(), _group_titles()
    available = set()
    for store in stores.values():
        available |= set(resolve(store.names()))
    grid = st.columns(columns)
    drawn = 0
    for group in CHART_GROUPS:
        names = group_members(group, available)
        if not names:
            continue
        with grid[drawn % columns]:
            line_chart(
                chart_series(stores, names, labels),
                title=titles[group.key],
                key=f"{key}_{group.key}",
                log_default=group.log_scale,
            )
        drawn += 1
    raw_names = sorted({name for store in stores.values() for name in store.names()})
    others = sorted({name for store in stores.values() for name in unmapped(store.names())})
    chosen = st.multiselect(
        t("monitor.metrics.other"),
        raw_names,
        default=[],
        key=f"{key}_other",
        placeholder=t("common.choose"),
        help=t("monitor.metrics.other_help", count=len(others)),
    )
    for i, name in enumerate(chosen):
        series = {
            (f"{label} · {name}" if len(stores) > 1 else name): store.series(name)
            for label, store in stores.items()
            if store.has(name)
        }
        with grid[(drawn + i) % columns]:
            line_chart(series, title=name, key=f"{key}_raw_{name}")


# -- progress and health --------------------------------------------------------------------------------------------
def progress_row(progress: Progress) -> None:
    """Draw step / total, epoch, elapsed and time left as metrics, with a progress bar when the total is known."""
    c1, c2, c3, c4 = st.columns(4)
    step = "-" if progress.step is None else str(progress.step)
    c1.metric(t("monitor.progress.step"), f"{step} / {progress.total}" if progress.total else step)
    c2.metric(t("monitor.progress.epoch"), "-" if progress.epoch is None else f"{progress.epoch:.2f}")
    c3.metric(t("monitor.progress.elapsed"), format_duration(progress.elapsed_s))
    c4.metric(
        t("monitor.progress.eta"),
        format_duration(progress.eta_s),
        help=None
        if progress.seconds_per_step is None
        else t("monitor.progress.rate", seconds=f"{progress.seconds_per_step:.2f}"),
    )
    if progress.fraction is not None:
        st.progress(progress.fraction)


def health_text(warning: HealthWarning) -> str:
    """Return the translated sentence for one watchdog warning."""
    e = warning.evidence
    if warning.kind == "dead_process":
        return t("monitor.health.dead_process", step=e.get("last_step") if e.get("last_step") is not None else "-")
    if warning.kind == "stalled":
        return t(
            "monitor.health.stalled",
            waited=format_duration(e["waited_s"]),
            median=f"{e['median_step_s']:.1f}",
            step=e.get("last_step"),
        )
    if warning.kind == "non_finite_loss":
        names = ", ".join(f"{m['raw_name']} ({', '.join(map(str, m['steps'][:5]))})" for m in e["metrics"])
        return t("monitor.health.non_finite_loss", metrics=names)
    if warning.kind == "reward_stuck":
        bounds = {
            "max": t("monitor.health.bound.max"),
            "min": t("monitor.health.bound.min"),
            "constant": t("monitor.health.bound.constant"),
        }
        return t(
            "monitor.health.reward_stuck",
            value=f"{e['value']:.4g}",
            bound=bounds.get(e["bound"], e["bound"]),
            steps=e["steps"],
            start=e["from_step"],
            end=e["to_step"],
        )
    return f"{warning.kind}: {e}"


def health_warnings(warnings: list[HealthWarning]) -> None:
    """Draw each watchdog warning (errors in red, warnings in yellow)."""
    for warning in warnings:
        (st.error if warning.severity == "error" else st.warning)(health_text(warning), icon="⚠️")


# -- gradient heatmap ------------------------------------------------------------------------------------------------
def build_heatmap_figure(
    names: list[str], steps, matrix, *, log_color: bool = True, max_columns: int = 600, height: int | None = None
) -> go.Figure:
    """Return a heatmap: x = step, y = layer (first layer at the top), colour = gradient norm (log10 scale).

    More than `max_columns` steps are reduced to buckets showing each bucket's largest norm.
    """
    matrix, steps = downsample_max(np.asarray(matrix, dtype=np.float64), np.asarray(steps), max_columns)
    with np.errstate(divide="ignore", invalid="ignore"):
        shown = np.where(matrix > 0, np.log10(matrix), np.nan) if log_color else matrix
    colorbar: dict = {"title": {"text": "‖g‖"}}
    if log_color and np.isfinite(shown).any():
        low, high = math.floor(np.nanmin(shown)), math.ceil(np.nanmax(shown))
        ticks = list(range(low, high + 1))
        colorbar.update(tickvals=ticks, ticktext=[f"1e{k}" for k in ticks])
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=steps,
            y=names,
            customdata=matrix,
            colorscale="Viridis",
            colorbar=colorbar,
            hovertemplate=t("monitor.progress.step") + " %{x}<br>%{y}<br>‖g‖ = %{customdata:.3e}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height or max(260, 22 * len(names) + 80),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title=t("monitor.progress.step"),
        yaxis={"autorange": "reversed"},
    )
    return fig


def finding_text(finding: Finding) -> str:
    """Return the translated diagnosis for one gradient finding, with its evidence."""
    d = finding.detail
    layers = ", ".join(finding.layers[:8]) + (" …" if len(finding.layers) > 8 else "")
    steps = f"{finding.steps[0]}–{finding.steps[-1]}" if finding.steps else "-"
    if finding.kind == "vanishing":
        return t(
            "monitor.grad.vanishing",
            layers=layers,
            count=len(finding.layers),
            total=d["layers_total"],
            value=f"{finding.value:.1e}",
            steps=steps,
        )
    if finding.kind == "exploding":
        return t(
            "monitor.grad.exploding",
            value=f"{finding.value:.3g}",
            layer=d["peak_layer"],
            step=d["peak_step"],
            layers=layers,
        )
    if finding.kind == "growing":
        return t(
            "monitor.grad.growing",
            layer=d["worst_layer"],
            ratio=f"{finding.ratio:.0f}",
            start=f"{d['from']:.2e}",
            end=f"{d['to']:.2e}",
            steps=steps,
        )
    if finding.kind == "uneven":
        return t(
            "monitor.grad.uneven", ratio=f"{finding.ratio:.0f}", high=d["max_layer"], low=d["min_layer"], steps=steps
        )
    if finding.kind == "non_finite":
        return t("monitor.grad.non_finite", layers=layers, steps=", ".join(map(str, finding.steps[:8])))
    return finding.kind


def gradnorm_heatmap(store: GradNormStore, *, key: str) -> None:
    """Draw the per-layer gradient-norm heatmap with a step-range slider, a sub-module toggle and the diagnosis."""
    steps = store.steps()
    if not steps:
        st.info(t("monitor.grad.empty"))
        return
    view = "layer"
    if store.has_modules():
        view = "module" if st.toggle(t("monitor.grad.modules"), key=f"{key}_modules") else "layer"
    step_range = (steps[0], steps[-1])
    if steps[0] < steps[-1]:
        step_range = st.slider(t("monitor.grad.range"), steps[0], steps[-1], (steps[0], steps[-1]), key=f"{key}_range")
    names, columns, matrix = gradnorm_arrays(store, view, step_range)
    st.plotly_chart(build_heatmap_figure(names, columns, matrix), key=f"{key}_heatmap", config={"displaylogo": False})
    findings = diagnose(store, step_range, view)
    if not findings:
        st.success(t("monitor.grad.healthy"))
    for finding in findings:
        st.warning(finding_text(finding))


# -- GPU panel ----------------------------------------------------------------------------------------------------------
def _time_axis(times) -> np.ndarray:
    return np.array([datetime.fromtimestamp(float(x)) for x in times])


def build_gpu_figures(system: SystemStore, max_points: int = 1500) -> dict[str, go.Figure]:
    """Return {"util", "memory", "temp", "power"} figures, one line per GPU (memory also shows each GPU's total)."""
    figures = {}
    gpus = system.gpu_series()
    for field, unit in (("util", "%"), ("mem_used_mib", "MiB"), ("temp_c", "°C"), ("power_w", "W")):
        fig = go.Figure()
        for i, (index, entry) in enumerate(gpus.items()):
            times, values = entry[field]
            x, y = downsample_minmax(times, values, max_points)
            colour = PALETTE[i % len(PALETTE)]
            fig.add_trace(
                go.Scatter(x=_time_axis(x), y=y, mode="lines", name=f"{index}: {entry['name']}", line={"color": colour})
            )
            if field == "mem_used_mib":
                total_t, total = entry["mem_total_mib"]
                finite = np.isfinite(total)
                if finite.any():
                    fig.add_trace(
                        go.Scatter(
                            x=_time_axis(total_t[finite][[0, -1]]),
                            y=total[finite][[0, -1]],
                            mode="lines",
                            line={"color": colour, "dash": "dot", "width": 1},
                            name=f"{index} total",
                            showlegend=False,
                        )
                    )
        fig.update_layout(
            height=240, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title=unit, hovermode="x unified"
        )
        if field == "util":
            fig.update_yaxes(range=[0, 100])
        figures[{"mem_used_mib": "memory", "temp_c": "temp", "power_w": "power"}.get(field, field)] = fig
    return figures


def build_host_figures(system: SystemStore, max_points: int = 1500) -> dict[str, go.Figure]:
    """Return {"cpu", "memory"} figures: the run's CPU % and its RSS next to the machine's RAM used / total."""
    host = system.host_series()
    cpu = go.Figure()
    x, y = downsample_minmax(*host["cpu_percent"], max_points)
    cpu.add_trace(go.Scatter(x=_time_axis(x), y=y, mode="lines", name="CPU %"))
    memory = go.Figure()
    for field, name in (
        ("rss_mib", t("monitor.gpu.rss")),
        ("ram_used_mib", t("monitor.gpu.ram_used")),
        ("ram_total_mib", t("monitor.gpu.ram_total")),
    ):
        x, y = downsample_minmax(*host[field], max_points)
        memory.add_trace(
            go.Scatter(
                x=_time_axis(x),
                y=y,
                mode="lines",
                name=name,
                line={"dash": "dot"} if field == "ram_total_mib" else None,
            )
        )
    for fig, unit in ((cpu, "%"), (memory, "MiB")):
        fig.update_layout(
            height=240, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title=unit, hovermode="x unified"
        )
    return {"cpu": cpu, "memory": memory}


def gpu_panel(system: SystemStore, *, key: str) -> None:
    """Draw utilisation, memory, temperature and power per GPU over the run; without GPU, the run's CPU and RAM."""
    if not system.times:
        st.info(t("monitor.gpu.no_samples"))
        return
    if system.has_gpus():
        figures = build_gpu_figures(system)
        titles = {
            "util": t("monitor.gpu.util"),
            "memory": t("monitor.gpu.memory"),
            "temp": t("monitor.gpu.temp"),
            "power": t("monitor.gpu.power"),
        }
        grid = st.columns(2)
        for i, (name, fig) in enumerate(figures.items()):
            with grid[i % 2]:
                st.caption(titles[name])
                st.plotly_chart(fig, key=f"{key}_gpu_{name}", config={"displaylogo": False})
        return
    st.info(t("monitor.gpu.none"))
    figures = build_host_figures(system)
    grid = st.columns(2)
    for i, (name, title) in enumerate((("cpu", t("monitor.gpu.cpu")), ("memory", t("monitor.gpu.ram")))):
        with grid[i]:
            st.caption(title)
            st.plotly_chart(figures[name], key=f"{key}_host_{name}", config={"displaylogo": False})


# -- log viewer ---------------------------------------------------------------------------------------------------------
def _show_error_report(report: ErrorReport | None) -> None:
    if report is None:
        st.success(t("monitor.log.no_error"))
        return
    kinds = {
        "traceback": t("monitor.log.error_kind.traceback"),
        "out_of_memory": t("monitor.log.error_kind.out_of_memory"),
        "child_failed": t("monitor.log.error_kind.child_failed"),
        "killed": t("monitor.log.error_kind.killed"),
        "error_line": t("monitor.log.error_kind.error_line"),
    }
    st.error(f"{kinds.get(report.kind, report.kind)}: {report.summary}")
    st.code("\n".join(report.lines), language="text", wrap_lines=True)
    if report.context:
        st.caption(t("monitor.log.error_context"))
        st.code("\n".join(report.context), language="text", wrap_lines=True)


def _log_window(
    tail: LogTail, levels, query: str, regex: bool, follow: bool, *, key: str, height: int, max_shown: int
) -> None:
    frozen_key = f"{key}_frozen"
    if follow or frozen_key not in st.session_state:
        st.session_state[frozen_key] = list(tail.entries)
    wanted = set(levels)
    entries = [e for e in st.session_state[frozen_key] if e.level in wanted]
    spans: dict[int, list[tuple[int, int]]] = {}
    if query:
        try:
            hits = search_lines([e.text for e in entries], query, regex=regex)
        except PlatformError as exc:
            show_error(exc)
            hits = []
        entries = [entries[i] for i, _spans in hits]
        spans = {n: found for n, (_i, found) in enumerate(hits)}
        st.caption(t("monitor.log.matches", count=len(hits)))
    if tail.skipped_bytes:
        st.caption(t("monitor.log.skipped", mib=f"{tail.skipped_bytes / 2**20:.0f}"))
    shown = entries[-max_shown:]
    offset = len(entries) - len(shown)
    box = st.container(height=height, autoscroll=follow, border=True)
    box.html(render_log_html(shown, {i - offset: s for i, s in spans.items() if i >= offset}))


def _whole_log_search(tail: LogTail, query: str, regex: bool, *, key: str, height: int) -> None:
    cache_key = f"{key}_whole_hits"
    stamp = (query, regex)  # not the size: a live log would be scanned again on every refresh
    cached = st.session_state.get(cache_key)
    again = st.button(t("monitor.log.search_again"), key=f"{key}_search_again")
    if cached is None or cached[0] != stamp or again:
        try:
            hits = search_file(tail.reader.access, tail.path, query, regex=regex)
        except PlatformError as exc:
            show_error(exc)
            return
        st.session_state[cache_key] = cached = (stamp, hits)
    hits = cached[1]
    st.caption(t("monitor.log.whole_matches", count=len(hits)))
    box = st.container(height=height, border=True)
    rows = [f"<b>{number}</b>  {highlight_html(text, spans)}" for number, text, spans in hits]
    box.html(
        '<pre style="white-space:pre-wrap;word-break:break-all;font-size:0.8rem;margin:0">' + "\n".join(rows) + "</pre>"
    )


def log_viewer(
    tail: LogTail | None,
    *,
    key: str,
    first_error: Callable[[], ErrorReport | None] | None = None,
    failed: bool = False,
    download: LogDownload | None = None,
    height: int = 420,
    max_shown: int = 1000,
) -> None:
    """Draw the live log: level filter, keyword/regex search with highlights, follow mode, first error, download.

    The filters and the search cover the lines kept by the tail (its last `max_lines`); "whole log" searches the
    complete file on demand. `first_error` is called only when the user asks (at once when `failed`), cached per
    log size.
    """
    if tail is None:
        st.info(t("monitor.log.empty"))
        return
    c1, c2, c3, c4, c5 = st.columns([3, 3, 1, 1, 1])
    level_labels = {
        "DEBUG": t("monitor.log.level.debug"),
        "INFO": t("monitor.log.level.info"),
        "WARNING": t("monitor.log.level.warning"),
        "ERROR": t("monitor.log.level.error"),
    }
    levels = c1.multiselect(
        t("monitor.log.levels"),
        list(LEVELS),
        default=list(LEVELS),
        format_func=level_labels.get,
        key=f"{key}_levels",
        placeholder=t("common.choose"),
    )
    query = c2.text_input(t("monitor.log.search"), key=f"{key}_query", placeholder=t("monitor.log.search_hint"))
    regex = c3.toggle(t("monitor.log.regex"), key=f"{key}_regex")
    whole = c4.toggle(t("monitor.log.whole"), key=f"{key}_whole", help=t("monitor.log.whole_help"))
    follow = c5.toggle(t("monitor.log.follow"), value=True, key=f"{key}_follow")
    if whole and query:
        _whole_log_search(tail, query, regex, key=key, height=height)
    else:
        _log_window(tail, levels, query, regex, follow, key=key, height=height, max_shown=max_shown)
    if first_error is not None:
        with st.expander(t("monitor.log.first_error"), expanded=failed):
            cache_key = f"{key}_first_error"
            stamp = tail.reader.size
            cached = st.session_state.get(cache_key)
            if cached is not None and cached[0] == stamp:
                _show_error_report(cached[1])
            elif failed or st.button(t("monitor.log.find_error"), key=f"{key}_find_error"):
                report = first_error()
                st.session_state[cache_key] = (stamp, report)
                _show_error_report(report)
    if download is not None:
        size = t("monitor.log.size", mib=f"{download.size / 2**20:.1f}")
        label = t("monitor.log.download_gz") if download.compressed else t("monitor.log.download")
        d1, d2 = st.columns([1, 3])
        d1.download_button(
            label,
            data=download.make,
            file_name=download.file_name,
            mime=download.mime,
            on_click="ignore",
            key=f"{key}_download",
        )
        d2.caption(size + (f" · `{download.local_path}`" if download.local_path else ""))


# -- rollout browser ------------------------------------------------------------------------------------------------
def rollout_browser(
    steps: list[int], load: Callable[[list[int]], list[dict]], *, key: str, grouped_default: bool = False
) -> None:
    """Draw the sampled rollouts of chosen steps: reward range filter, text filter, optional grouping by prompt.

    `steps` are the steps that have a dump; `load(steps)` returns their normalized samples (`RunMonitor.read_rollouts`).
    """
    if not steps:
        st.info(t("monitor.rollouts.empty"))
        return
    c1, c2, c3 = st.columns([2, 3, 1])
    chosen = c1.multiselect(
        t("monitor.rollouts.steps"), steps, default=steps[-1:], key=f"{key}_steps", placeholder=t("common.choose")
    )
    text = c2.text_input(t("monitor.rollouts.text"), key=f"{key}_text")
    grouped = c3.toggle(t("monitor.rollouts.group"), value=grouped_default, key=f"{key}_group")
    rows = load(chosen) if chosen else []
    scores = [r["score"] for r in rows if math.isfinite(r["score"])]
    if not rows:
        st.info(t("monitor.rollouts.none_selected"))
        return
    low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
    selected = (low, high)
    if high > low:
        selected = st.slider(
            t("monitor.rollouts.score_range"), float(low), float(high), (float(low), float(high)), key=f"{key}_range"
        )
    rows = filter_rollouts(rows, selected[0], selected[1], text=text or None)
    st.caption(t("monitor.rollouts.count", count=len(rows)))
    if grouped:
        groups = group_by_prompt(rows)
        frame = pd.DataFrame(
            [
                {
                    t("monitor.rollouts.col.step"): g.step,
                    t("monitor.rollouts.col.input"): g.input,
                    t("monitor.rollouts.col.gts"): g.gts,
                    t("monitor.rollouts.col.count"): g.count,
                    t("monitor.rollouts.col.mean"): g.mean,
                    t("monitor.rollouts.col.std"): g.std,
                    t("monitor.rollouts.col.min"): g.min,
                    t("monitor.rollouts.col.max"): g.max,
                }
                for g in groups
            ]
        )
    else:
        frame = pd.DataFrame(
            [
                {
                    t("monitor.rollouts.col.step"): r["step"],
                    t("monitor.rollouts.col.score"): r["score"],
                    t("monitor.rollouts.col.input"): r["input"],
                    t("monitor.rollouts.col.output"): r["output"],
                    t("monitor.rollouts.col.gts"): r["gts"],
                    **r["extra"],
                }
                for r in rows
            ]
        )
    st.dataframe(frame, hide_index=True, key=f"{key}_table")
