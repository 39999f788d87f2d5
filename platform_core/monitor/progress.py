"""Where a run is: current step of total, epoch, elapsed time and the time left at the recent step rate.

The metrics files carry no timestamps, so the step time comes, in order of preference, from a logged step-time
metric (`timing_s/step`, `perf/time_per_step`, TRL's `step_time`), from the times the reader saw new steps arrive,
or from status.json (`elapsed_s` of the current attempt over the steps it has done).

    info = run_progress(monitor.store, monitor.status, total_steps=1000, started_at=job["started_at"])
    info.eta_s, info.seconds_per_step
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from platform_core.monitor.canonical import resolve
from platform_core.monitor.metrics import MetricsStore

RECENT_STEPS = 20


@dataclass
class Progress:
    """step / total (None when unknown), fraction done, epoch, elapsed and remaining seconds, the step-time source."""

    step: int | None
    total: int | None
    fraction: float | None
    epoch: float | None
    elapsed_s: float | None
    eta_s: float | None
    seconds_per_step: float | None
    rate_source: str | None
    last_step_time: float | None


def _median_recent(values: np.ndarray, count: int = RECENT_STEPS) -> float | None:
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    return float(np.median(values[-count:]))


def seconds_per_step(store: MetricsStore, status: dict | None = None) -> tuple[float | None, str | None]:
    """Return (recent median seconds per step, where it came from: "metric" | "arrivals" | "status"), or (None, None)."""
    raw = resolve(store.names()).get("step_time")
    if raw:
        value = _median_recent(store.series(raw)[1])
        if value:
            return value, "metric"
    arrivals = list(store.arrivals)[-(RECENT_STEPS + 1) :]
    if len(arrivals) >= 3:
        rates = [
            (t1 - t0) / (s1 - s0)
            for (s0, t0), (s1, t1) in zip(arrivals, arrivals[1:], strict=False)
            if s1 > s0 and t1 >= t0
        ]
        if rates:
            return float(np.median(rates)), "arrivals"
    if status and status.get("elapsed_s") and status.get("step") is not None:
        first = _attempt_first_step(store, int(status["step"]))
        done = int(status["step"]) - first + 1 if first is not None else int(status["step"])
        if done > 0:
            return float(status["elapsed_s"]) / done, "status"
    return None, None


def _attempt_first_step(store: MetricsStore, step: int) -> int | None:
    """The first step of the attempt that reached `step` (the latest attempt whose span includes it)."""
    spans = [span for _attempt, span in sorted(store.attempt_steps.items()) if span[0] <= step <= span[1]]
    return spans[-1][0] if spans else None


def last_step_time(store: MetricsStore, status: dict | None = None, file_mtime: float | None = None) -> float | None:
    """Return the wall time of the last step: status.json's time, else when the reader saw it, else the file's mtime."""
    candidates = []
    if status and isinstance(status.get("time"), (int, float)):
        candidates.append(float(status["time"]))
    if store.arrivals:
        candidates.append(store.arrivals[-1][1])
    if file_mtime is not None:
        candidates.append(file_mtime)
    return max(candidates) if candidates else None


def run_progress(
    store: MetricsStore,
    status: dict | None = None,
    *,
    total_steps: int | None = None,
    started_at: float | None = None,
    now: float | None = None,
    file_mtime: float | None = None,
    steps_per_epoch: int | None = None,
) -> Progress:
    """Return the run's progress; `total_steps` and `started_at` (the job's start time) override status.json. The
    epoch is the trainer's own figure, or else step / `steps_per_epoch` (verl's SFT trainer logs no epoch)."""
    now = time.time() if now is None else now
    status = status or {}
    step = status.get("step") if isinstance(status.get("step"), int) else None
    if store.last_step is not None and (step is None or store.last_step > step):
        step = store.last_step
    total = total_steps or status.get("total_training_steps") or status.get("total_steps")
    total = int(total) if total else None
    fraction = min(1.0, step / total) if step is not None and total else None
    epoch_raw = resolve(store.names()).get("epoch")
    epoch = store.last_value(epoch_raw) if epoch_raw else None
    if epoch is not None and not math.isfinite(epoch):
        epoch = None
    if epoch is None and step is not None and steps_per_epoch:
        epoch = step / steps_per_epoch
    if started_at is not None:
        elapsed = max(0.0, now - started_at)
    elif isinstance(status.get("elapsed_s"), (int, float)):
        elapsed = float(status["elapsed_s"])
    else:
        elapsed = None
    per_step, source = seconds_per_step(store, status)
    eta = None
    if per_step is not None and total and step is not None:
        eta = max(0, total - step) * per_step
    return Progress(
        step, total, fraction, epoch, elapsed, eta, per_step, source, last_step_time(store, status, file_mtime)
    )


def format_duration(seconds: float | None) -> str:
    """Return seconds as `1d 02:03:04` / `02:03:04` / `03:04`; "-" for None."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}" if hours or days else f"{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock
