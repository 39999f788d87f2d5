"""Chart figures from real runs, and every monitoring widget rendered under AppTest in both languages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.charts import build_gpu_figures, build_heatmap_figure, build_host_figures, build_line_figure, chart_series
from platform_core.monitor.files import LocalFiles
from platform_core.monitor.gradnorms import gradnorm_arrays
from platform_core.monitor.run import RunMonitor
from platform_core.monitor.sampling import parse_nvidia_smi_csv
from platform_core.monitor.system import SystemStore

FIXTURES = Path(__file__).parent / "fixtures"


def _monitor(path: Path) -> RunMonitor:
    monitor = RunMonitor(LocalFiles(), str(path))
    monitor.poll()
    return monitor


def test_loss_chart_of_a_real_resumed_verl_run(verl_sft_run):
    store = _monitor(verl_sft_run).store
    series = chart_series({"sft": store}, ["loss", "val_loss"], {"loss": "Loss", "val_loss": "Val"})
    assert list(series) == ["Loss", "Val"]
    fig = build_line_figure(series, smoothing=0.6, title="Loss")
    raw, smooth, val_raw, val_smooth = fig.data
    assert raw.opacity == 0.25 and raw.showlegend is False and smooth.name == "Loss"
    assert list(raw.x) == list(range(1, 13)) and raw.line.color == smooth.line.color
    assert smooth.y[0] == raw.y[0] and smooth.y[-1] > raw.y[-1]  # the EMA lags behind a falling loss
    assert list(val_raw.x) == [4, 12]
    assert len(build_line_figure(series, smoothing=0).data) == 2  # no smoothing: raw lines only, full colour
    assert build_line_figure(series, log_y=True).layout.yaxis.type == "log"
    json.loads(fig.to_json())


def test_trl_runs_overlaid(trl_grpo_run):
    grpo = _monitor(trl_grpo_run).store
    dpo = _monitor(FIXTURES / "trl_dpo").store
    series = chart_series({"grpo": grpo, "dpo": dpo}, ["loss", "reward_mean"], {})
    assert set(series) == {"grpo · loss", "dpo · loss", "grpo · reward_mean"}
    fig = build_line_figure(series, smoothing=0.9)
    assert len(fig.data) == 6


def test_long_series_are_downsampled_keeping_the_spike():
    steps = np.arange(1, 100_001)
    values = np.exp(-steps / 20_000) + 0.01 * np.sin(steps)
    values[54_321] = 50.0
    fig = build_line_figure({"loss": (steps, values)}, smoothing=0.6, max_points=2000)
    assert all(len(trace.x) <= 2002 for trace in fig.data)
    assert max(fig.data[0].y) == 50.0


def test_heatmap_of_real_gradient_norms():
    monitor = _monitor(FIXTURES / "verl_sft")
    names, steps, matrix = gradnorm_arrays(monitor.gradnorms)
    fig = build_heatmap_figure(names, steps, matrix)
    heat = fig.data[0]
    assert list(heat.y) == ["embed", "layers.0", "layers.1", "rest", "head"] and list(heat.x) == list(range(1, 13))
    assert np.allclose(np.asarray(heat.z), np.log10(matrix))
    assert all(text.startswith("1e") for text in heat.colorbar.ticktext)
    wide = build_heatmap_figure(names, np.arange(5000), np.ones((5, 5000)), max_columns=100)
    assert len(wide.data[0].x) == 100


def _system_with_gpus() -> SystemStore:
    store = SystemStore()
    gpus = parse_nvidia_smi_csv((FIXTURES / "nvidia_smi" / "a100_8gpu.csv").read_text())
    for second in range(5):
        sample = {
            "time": 1_790_000_000 + 5 * second,
            "gpus": gpus,
            "cpu_percent": 150.0,
            "rss_mib": 9000.0,
            "ram_used_mib": 100_000.0,
            "ram_total_mib": 1_000_000.0,
        }
        store.add_line(json.dumps(sample))
    return store


def test_gpu_and_host_figures():
    figures = build_gpu_figures(_system_with_gpus())
    assert set(figures) == {"util", "memory", "temp", "power"}
    assert len(figures["util"].data) == 8 and len(figures["memory"].data) == 16  # used + total per GPU
    assert figures["util"].data[0].name == "0: NVIDIA A100-SXM4-80GB"
    host = build_host_figures(_system_with_gpus())
    assert len(host["memory"].data) == 3 and list(host["cpu"].data[0].y) == [150.0] * 5


def _widgets_app(fixtures: str, run_dir: str, lang: str, gpu: bool):
    import json
    import os
    from pathlib import Path

    import streamlit as st

    from app.charts import (
        gpu_panel,
        gradnorm_heatmap,
        health_warnings,
        log_viewer,
        metrics_panel,
        progress_row,
        rollout_browser,
    )
    from platform_core.monitor.files import LocalFiles
    from platform_core.monitor.run import RunMonitor
    from platform_core.monitor.sampling import parse_nvidia_smi_csv, sample_system
    from platform_core.monitor.system import SystemStore

    st.session_state["lang"] = lang
    key = "sft"
    if key not in st.session_state:
        st.session_state[key] = RunMonitor(LocalFiles(), run_dir)
        st.session_state["grpo"] = RunMonitor(LocalFiles(), os.path.join(fixtures, "trl_grpo"))
    sft, grpo = st.session_state[key], st.session_state["grpo"]
    sft.poll()
    grpo.poll()
    st.title("monitor")
    progress_row(sft.progress(started_at=sft.status["time"] - 60))
    health_warnings(grpo.health(process_alive=False, running=True))
    metrics_panel({"sft": sft.store, "grpo": grpo.store}, key="metrics")
    gradnorm_heatmap(sft.gradnorms, key="grad")
    system = SystemStore()
    gpus = parse_nvidia_smi_csv(Path(fixtures, "nvidia_smi", "h100_1gpu.csv").read_text()) if gpu else []
    for i in range(3):
        sample = sample_system([os.getpid()])
        sample.update(time=1_790_000_000 + i, gpus=gpus)
        system.add_line(json.dumps(sample))
    gpu_panel(system, key="gpu")
    log_viewer(sft.log, key="log", first_error=sft.first_error, failed=True, download=sft.download())
    rollout_browser(sorted(grpo.rollout_files()), grpo.read_rollouts, key="rollouts", grouped_default=True)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_widget_renders(verl_sft_run, lang):
    from platform_core.monitor.logs import LEVELS

    at = AppTest.from_function(_widgets_app, args=(str(FIXTURES), str(verl_sft_run), lang, True), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("plotly_chart")
    # loss, reward, lr, grad norm, KL, entropy, response length + heatmap + 4 GPU charts
    assert len(charts) >= 12
    assert len(at.warning) >= 1 or len(at.error) >= 1  # the watchdog: the GRPO "process" is not alive
    assert at.get("download_button")
    assert at.dataframe and len(at.dataframe[0].value) >= 1
    html = at.get("html")
    assert html and "<pre" in html[0].proto.body
    at.multiselect(key="log_levels").set_value(["WARNING"]).run()
    body = at.get("html")[0].proto.body
    assert "UserWarning" in body and "step:5" not in body
    at.multiselect(key="log_levels").set_value(list(LEVELS)).run()
    at.text_input(key="log_query").input("train/loss:4\\.").run()
    at.toggle(key="log_regex").set_value(True).run()
    assert not at.exception
    body = at.get("html")[0].proto.body
    assert "<mark>train/loss:4.</mark>" in body and body.count("<span") == 3  # steps 6, 7, 8
    at.toggle(key="log_whole").set_value(True).run()  # the complete file, with line numbers
    body = at.get("html")[0].proto.body
    assert not at.exception and body.count("<mark>") == 3 and "<b>" in body


def test_gpu_panel_without_gpu_says_so(verl_sft_run):
    at = AppTest.from_function(_widgets_app, args=(str(FIXTURES), str(verl_sft_run), "en", False), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No GPU" in info.value for info in at.info)


def test_log_scale_ticks_are_written_in_full():
    """Plotly labels the ticks between decades with a bare digit ("2" for 0.002); ours say the value."""
    from app.charts import log_ticks

    fig = build_line_figure({"lr": ([1, 2, 3], [0.003, 0.002, 0.0012])}, smoothing=0, log_y=True)
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.ticktext) == ["0.001", "0.002"]
    assert log_ticks([0.003] * 4) == {"tickvals": [0.003], "ticktext": ["0.003"]}  # a constant learning rate
    wide = log_ticks([1e-5, 10.0])
    assert wide["ticktext"] == ["1e-05", "0.0001", "0.001", "0.01", "0.1", "1", "10"]
    assert log_ticks([0.0, -1.0]) == {}


def test_log_ticks_stay_few_and_distinct():
    from app.charts import log_ticks

    close = log_ticks([1.001, 1.05])
    assert len(set(close["ticktext"])) == len(close["ticktext"])  # 1 and 1.001 both print as "1": one tick
    warmup = log_ticks([1e-12, 1e-4, 2e-4])  # a learning rate warming up from almost nothing
    assert 2 <= len(warmup["tickvals"]) <= 8
    assert len(log_ticks([5e-300, 1.0])["tickvals"]) <= 8
