"""Health rules over a run's metrics: stalled, NaN/Inf loss, reward stuck at a bound, dead process.

Each rule is a pure function of the metrics store and what the caller knows (now, whether the process is alive);
`check_health` runs them all and returns warnings with their evidence, for the job list and the detail page.

    warnings = check_health(monitor.store, now=time.time(), last_step_time=t, process_alive=False, running=True)
    [(w.kind, w.evidence) for w in warnings]      # [("dead_process", {"last_step": 120})]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from platform_core.monitor.canonical import LOSS_NAMES, resolve
from platform_core.monitor.metrics import MetricsStore
from platform_core.monitor.progress import seconds_per_step

STALL_FACTOR = 5.0
MIN_STALL_S = 120.0
STUCK_STEPS = 20
NAN_WINDOW = 50


@dataclass
class HealthWarning:
    """kind: "stalled" | "non_finite_loss" | "reward_stuck" | "dead_process"; severity "warning" | "error"."""

    kind: str
    severity: str
    evidence: dict = field(default_factory=dict)


def check_stalled(
    store: MetricsStore,
    *,
    now: float,
    last_step_time: float | None,
    running: bool,
    process_alive: bool | None,
    status: dict | None = None,
    stall_factor: float = STALL_FACTOR,
    min_stall_s: float = MIN_STALL_S,
) -> HealthWarning | None:
    """No new step for longer than `stall_factor` x the median step time (and at least `min_stall_s`)."""
    if not running or process_alive is False or last_step_time is None:
        return None
    per_step, source = seconds_per_step(store, status)
    if per_step is None:
        return None
    threshold = max(stall_factor * per_step, min_stall_s)
    waited = now - last_step_time
    if waited <= threshold:
        return None
    return HealthWarning(
        "stalled",
        "warning",
        {
            "last_step": store.last_step,
            "waited_s": round(waited, 1),
            "median_step_s": round(per_step, 3),
            "threshold_s": round(threshold, 1),
            "source": source,
        },
    )


def check_non_finite_loss(store: MetricsStore, window: int = NAN_WINDOW) -> HealthWarning | None:
    """A loss (total, policy, value, validation) or the gradient norm is NaN/Inf (null in the file) in recent steps."""
    mapping = resolve(store.names())
    found = []
    for name in (*LOSS_NAMES, "grad_norm"):
        raw = mapping.get(name)
        if raw is None:
            continue
        steps, values = store.series(raw)
        recent_steps, recent = steps[-window:], values[-window:]
        bad = ~np.isfinite(recent)
        if bad.any():
            finite = values[np.isfinite(values)]
            found.append(
                {
                    "metric": name,
                    "raw_name": raw,
                    "steps": [int(s) for s in recent_steps[bad][:10]],
                    "count": int(bad.sum()),
                    "last_finite": float(finite[-1]) if finite.size else None,
                }
            )
    if not found:
        return None
    return HealthWarning(
        "non_finite_loss", "error", {"metrics": found, "first_step": min(f["steps"][0] for f in found)}
    )


def check_reward_stuck(
    store: MetricsStore,
    steps_needed: int = STUCK_STEPS,
    bounds: tuple[float, float] | None = None,
    tolerance: float = 1e-9,
) -> HealthWarning | None:
    """The mean reward has stayed at its bound (given, else the run's own min or max) for the last `steps_needed` steps."""
    raw = resolve(store.names()).get("reward_mean")
    if raw is None:
        return None
    steps, values = store.series(raw)
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if values.size < steps_needed:
        return None
    recent = values[-steps_needed:]
    value = float(recent[-1])
    if float(recent.max() - recent.min()) > tolerance:
        return None
    if bounds is not None:
        low, high = bounds
    else:
        low, high = float(values.min()), float(values.max())
    if bounds is None and math.isclose(low, high, abs_tol=tolerance):
        side = "constant"
    elif math.isclose(value, high, abs_tol=tolerance):
        side = "max"
    elif math.isclose(value, low, abs_tol=tolerance):
        side = "min"
    else:
        return None
    return HealthWarning(
        "reward_stuck",
        "warning",
        {
            "value": value,
            "bound": side,
            "from_step": int(steps[-steps_needed]),
            "to_step": int(steps[-1]),
            "steps": steps_needed,
        },
    )


def check_process(store: MetricsStore, *, running: bool, process_alive: bool | None) -> HealthWarning | None:
    """The job is recorded as running but its process is gone."""
    if running and process_alive is False:
        return HealthWarning("dead_process", "error", {"last_step": store.last_step})
    return None


def check_health(
    store: MetricsStore,
    *,
    now: float | None = None,
    last_step_time: float | None = None,
    process_alive: bool | None = None,
    running: bool = True,
    status: dict | None = None,
    stall_factor: float = STALL_FACTOR,
    min_stall_s: float = MIN_STALL_S,
    stuck_steps: int = STUCK_STEPS,
    reward_bounds: tuple[float, float] | None = None,
) -> list[HealthWarning]:
    """Run every rule; return the warnings, errors first."""
    now = time.time() if now is None else now
    results = [
        check_process(store, running=running, process_alive=process_alive),
        check_non_finite_loss(store),
        check_stalled(
            store,
            now=now,
            last_step_time=last_step_time,
            running=running,
            process_alive=process_alive,
            status=status,
            stall_factor=stall_factor,
            min_stall_s=min_stall_s,
        ),
        check_reward_stuck(store, stuck_steps, reward_bounds),
    ]
    warnings = [w for w in results if w is not None]
    return sorted(warnings, key=lambda w: w.severity != "error")
