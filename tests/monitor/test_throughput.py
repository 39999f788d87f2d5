"""Throughput for runs whose trainer logs none (verl SFT, TRL): derived from tokens and step time, in the
`job metrics --json` payload under "throughput"."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from platform_core.monitor.canonical import metrics_payload
from platform_core.monitor.files import LocalFiles
from platform_core.monitor.metrics import MetricsStore
from platform_core.monitor.run import RunMonitor
from platform_core.monitor.throughput import ThroughputDeriver

FIXTURES = Path(__file__).parent / "fixtures"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_trl_grpo_throughput_from_num_tokens_and_step_time(trl_grpo_run):
    monitor = RunMonitor(LocalFiles(), str(trl_grpo_run))
    monitor.read_all()  # one-shot read, as `job metrics` does: the run's own step_time is enough
    payload = metrics_payload(monitor.store)
    assert payload["raw_names"]["throughput"] == "platform/throughput"
    series = dict(payload["series"]["throughput"])
    records = {r["step"]: r["data"] for r in _records(trl_grpo_run / "metrics.jsonl")}
    assert sorted(series) == sorted(records)  # every logged step
    tokens_2 = records[2]["num_tokens"] - records[1]["num_tokens"]
    assert math.isclose(series[2], tokens_2 / records[2]["step_time"], rel_tol=1e-9)
    assert math.isclose(series[1], records[1]["num_tokens"] / records[1]["step_time"], rel_tol=1e-9)
    assert all(v is not None and v > 0 for v in series.values())
    assert "platform/throughput" not in payload["other"]


def _live(tmp_path: Path, lines: list[str], first: int) -> RunMonitor:
    """Write the first lines, catch up, then append the rest one step at a time while polling (a live run)."""
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(line + "\n" for line in lines[:first]))
    monitor = RunMonitor(LocalFiles(), str(tmp_path))
    monitor.poll()
    for line in lines[first:]:
        time.sleep(0.03)
        with metrics.open("a") as handle:
            handle.write(line + "\n")
        monitor.poll()
    return monitor


def test_verl_sft_throughput_from_global_tokens_and_live_step_times(tmp_path):
    lines = (FIXTURES / "verl_sft" / "attempt-2" / "metrics.jsonl").read_text().splitlines()
    records = {r["step"]: r["data"] for r in map(json.loads, lines) if "train/global_tokens" in r["data"]}
    caught_up = MetricsStore()
    for line in lines:
        caught_up.add_line(line)
    ThroughputDeriver().update(caught_up)
    assert not caught_up.has("platform/throughput")  # a finished run read at once has no step times
    monitor = _live(tmp_path, lines, first=2)
    series = dict(metrics_payload(monitor.store)["series"]["throughput"])
    # steps 5 and 6 were read in the first catch-up, 7 was the first seen live; each later step has a step time
    live_steps = sorted(s for s in records if s > 7)
    assert sorted(series) == live_steps
    arrivals = dict(monitor.store.arrivals)
    for step in live_steps:
        seconds = arrivals[step] - arrivals[step - 1]
        assert math.isclose(series[step], records[step]["train/global_tokens"] / seconds, rel_tol=1e-9)
        assert 0 < series[step] < records[step]["train/global_tokens"] / 0.03


def test_trl_dpo_throughput_from_cumulative_tokens_live(tmp_path):
    lines = (FIXTURES / "trl_dpo" / "metrics.jsonl").read_text().splitlines()
    monitor = _live(tmp_path, lines, first=3)
    series = dict(metrics_payload(monitor.store)["series"]["throughput"])
    records = {r["step"]: r["data"] for r in map(json.loads, lines)}
    assert sorted(series) == [s for s in sorted(records) if s > 4]  # 4 is the first step seen live
    arrivals = dict(monitor.store.arrivals)
    tokens = records[6]["num_tokens"] - records[5]["num_tokens"]
    assert math.isclose(series[6], tokens / (arrivals[6] - arrivals[5]), rel_tol=1e-9)


def test_native_throughput_wins_and_a_restarted_counter_gives_no_point():
    store = MetricsStore()
    store.add_record(1, {"perf/throughput": 900.0, "train/global_tokens": 100, "timing_s/step": 2.0})
    ThroughputDeriver().update(store)
    assert not store.has("platform/throughput")

    store = MetricsStore()
    for step, tokens in ((1, 100.0), (2, 250.0), (3, 40.0), (4, 90.0)):  # the counter restarted at step 3
        store.add_record(step, {"num_tokens": tokens, "step_time": 0.5})
    deriver = ThroughputDeriver()
    assert deriver.update(store) == 3
    steps, values = store.series("platform/throughput")
    assert steps.tolist() == [1, 2, 4] and values.tolist() == [200.0, 300.0, 100.0]
    store.add_record(5, {"num_tokens": 190.0, "step_time": 1.0})  # only the new step is derived
    assert deriver.update(store) == 1 and store.series("platform/throughput")[1][-1] == 100.0
