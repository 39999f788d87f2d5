"""Health rules and progress / ETA, as pure functions over a metrics store."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_core.monitor.metrics import MetricsStore
from platform_core.monitor.progress import format_duration, run_progress, seconds_per_step
from platform_core.monitor.watchdog import (
    check_health,
    check_non_finite_loss,
    check_process,
    check_reward_stuck,
    check_stalled,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _timed_store(steps: int = 30, step_s: float = 10.0) -> MetricsStore:
    store = MetricsStore()
    for step in range(1, steps + 1):
        store.add_record(step, {"actor/pg_loss": -0.01, "timing_s/step": step_s, "critic/score/mean": 0.3 + step / 100})
    return store


def test_stalled_after_k_times_the_median_step_time():
    store = _timed_store(step_s=60.0)
    kwargs = {"running": True, "process_alive": True}
    assert check_stalled(store, now=1000 + 299, last_step_time=1000, **kwargs) is None
    warning = check_stalled(store, now=1000 + 301, last_step_time=1000, **kwargs)
    assert (
        warning.kind == "stalled" and warning.evidence["threshold_s"] == 300.0 and warning.evidence["last_step"] == 30
    )
    assert warning.evidence["source"] == "metric"
    # fast steps: the minimum applies (a checkpoint save must not raise an alarm)
    fast = _timed_store(step_s=1.0)
    assert check_stalled(fast, now=1000 + 100, last_step_time=1000, **kwargs) is None
    assert check_stalled(fast, now=1000 + 130, last_step_time=1000, **kwargs).evidence["threshold_s"] == 120.0
    assert check_stalled(fast, now=1000 + 30, last_step_time=1000, stall_factor=2, min_stall_s=10, **kwargs)
    # a paused / finished job or a dead process is not "stalled"
    assert check_stalled(store, now=5000, last_step_time=1000, running=False, process_alive=True) is None
    assert check_stalled(store, now=5000, last_step_time=1000, running=True, process_alive=False) is None


def test_stalled_from_arrival_times_when_no_step_time_is_logged():
    store = MetricsStore()
    for step in range(1, 6):
        store.add_record(step, {"train/loss": 1.0}, arrived=100.0 + 20 * step)
    assert seconds_per_step(store) == (20.0, "arrivals")
    warning = check_stalled(store, now=220 + 121, last_step_time=220, running=True, process_alive=True)
    assert warning is not None and warning.evidence["median_step_s"] == 20.0


def test_non_finite_loss_from_null_in_the_file():
    store = MetricsStore()
    store.add_line('{"step": 1, "data": {"train/loss": 2.0, "train/grad_norm": 1.0}}')
    assert check_non_finite_loss(store) is None
    store.add_line('{"step": 2, "data": {"train/loss": null, "train/grad_norm": null}}')
    store.add_line('{"step": 3, "data": {"val/loss": 1.5}}')
    warning = check_non_finite_loss(store)
    assert warning.severity == "error" and warning.evidence["first_step"] == 2
    metrics = {m["metric"]: m for m in warning.evidence["metrics"]}
    assert metrics["loss"]["steps"] == [2] and metrics["loss"]["last_finite"] == 2.0
    assert set(metrics) == {"loss", "grad_norm"}


def test_reward_stuck_at_a_bound():
    store = MetricsStore()
    for step in range(1, 11):
        store.add_record(step, {"critic/score/mean": step / 11})
    for step in range(11, 31):
        store.add_record(step, {"critic/score/mean": 1.0})
    warning = check_reward_stuck(store, steps_needed=20)
    assert warning.evidence == {"value": 1.0, "bound": "max", "from_step": 11, "to_step": 30, "steps": 20}
    assert check_reward_stuck(store, steps_needed=21) is None  # step 10 scored 0.91: not 21 steps at the bound
    zero = MetricsStore()
    for step in range(1, 26):
        zero.add_record(step, {"reward": 0.0})
    assert check_reward_stuck(zero).evidence["bound"] == "constant"
    assert check_reward_stuck(zero, bounds=(0.0, 1.0)).evidence["bound"] == "min"
    moving = _timed_store()
    assert check_reward_stuck(moving, bounds=(0.0, 1.0)) is None and check_reward_stuck(moving) is None


def test_dead_process_and_check_health_order():
    store = _timed_store()
    store.add_record(31, {"actor/pg_loss": None})
    assert check_process(store, running=True, process_alive=True) is None
    warnings = check_health(store, now=10_000, last_step_time=1000, process_alive=False, running=True)
    assert [w.kind for w in warnings] == ["dead_process", "non_finite_loss"]
    assert warnings[0].evidence == {"last_step": 31}
    alive = check_health(store, now=10_000, last_step_time=1000, process_alive=True, running=True)
    assert {w.kind for w in alive} == {"non_finite_loss", "stalled"}


def test_progress_from_a_real_resumed_run():
    store = MetricsStore()
    for attempt in (1, 2):
        path = FIXTURES / "verl_sft" / f"attempt-{attempt}" / "metrics.jsonl"
        store.add_lines(path.read_text().splitlines(), attempt)
    status = {"step": 12, "time": 1000.0, "elapsed_s": 16.0, "total_training_steps": 12}
    info = run_progress(store, status, now=1010.0)
    assert info.step == 12 and info.total == 12 and info.fraction == 1.0 and info.eta_s == 0
    assert info.rate_source == "status" and info.seconds_per_step == pytest.approx(16.0 / 8)  # attempt 2: steps 5-12
    assert info.elapsed_s == 16.0 and info.last_step_time == 1000.0
    halfway = run_progress(store, {"step": 12, "elapsed_s": 16.0}, total_steps=100, started_at=900.0, now=1000.0)
    assert halfway.eta_s == pytest.approx(88 * 2.0) and halfway.elapsed_s == 100.0


def test_progress_prefers_the_logged_step_time_and_reads_epoch():
    store = _timed_store(steps=10, step_s=3.0)
    store.add_record(10, {"training/epoch": 1})
    info = run_progress(store, None, total_steps=110)
    assert info.seconds_per_step == 3.0 and info.eta_s == 300.0 and info.epoch == 1.0
    empty = run_progress(MetricsStore(), None)
    assert empty.step is None and empty.eta_s is None and empty.fraction is None


def test_format_duration():
    assert format_duration(None) == "-" and format_duration(65) == "01:05"
    assert format_duration(3 * 3600 + 5) == "03:00:05" and format_duration(90000) == "1d 01:00:00"
