"""Throughput (tokens/s) for runs whose trainer logs none: verl RL logs `perf/throughput`, the others do not.

Tokens per step come from verl SFT's `train/global_tokens` (tokens of the step's batch, all ranks) or from TRL's
cumulative `num_tokens` (the difference between two logged steps, spread over the steps between them). Seconds per
step come from the run's own step-time metric (`timing_s/step`, `perf/time_per_step`, TRL GRPO/RLOO `step_time`)
or, when it has none (verl SFT, TRL SFT/DPO), from the times the monitor saw new steps arrive while the run was live
(`MetricsStore.arrivals`, spread evenly over the steps a refresh picked up). The result is written into the store
as `platform/throughput` (tokens/s for the whole run, not per GPU), which `canonical.py` maps to "throughput".

    deriver = ThroughputDeriver()
    deriver.update(store)          # after each poll; looks only at steps it has not derived yet
"""

from __future__ import annotations

import math
from bisect import bisect_right

from platform_core.monitor.metrics import MetricsStore

DERIVED = "platform/throughput"
NATIVE = ("perf/throughput",)
STEP_TOKENS = "train/global_tokens"  # verl SFT: tokens of this step
CUMULATIVE_TOKENS = "num_tokens"  # TRL: tokens seen so far
STEP_TIMES = ("timing_s/step", "perf/time_per_step", "step_time")


class ThroughputDeriver:
    """Adds `platform/throughput` points to a store for the steps that have tokens and a step time."""

    def __init__(self) -> None:
        self.done_step: int | None = None  # last step whose throughput was derived (or found underivable for good)

    def reset(self) -> None:
        """Start again (the store was cleared because a metrics file was replaced)."""
        self.done_step = None

    def update(self, store: MetricsStore) -> int:
        """Derive throughput for the steps logged since the last call; return the number of points added."""
        if store.last_step is None or any(store.has(name) for name in NATIVE):
            return 0
        if self.done_step is not None and store.last_step <= self.done_step:
            return 0
        tokens = _tokens_per_step(store, self.done_step)
        if not tokens:
            return 0
        times = _seconds_per_step(store, self.done_step)
        added = 0
        for step, count in tokens.items():
            seconds = times.get(step)
            if seconds is None or not seconds > 0 or not math.isfinite(count):
                continue
            store.add_record(step, {DERIVED: count / seconds}, attempt=_attempt_at(store, step))
            added += 1
        # a step without a time yet may get one from a later arrival: only steps up to the last timed one are final
        timed = [s for s in tokens if s in times]
        if timed:
            self.done_step = max(timed)
        return added


def _points_after(store: MetricsStore, name: str, after: int | None) -> list[tuple[int, float]]:
    """(step, value) of one metric at steps after `after` (and the point just before, for differences)."""
    series = store._series.get(name)  # noqa: SLF001 - same package; avoids copying 100,000 points per poll
    if series is None or not len(series):
        return []
    start = 0 if after is None else max(0, bisect_right(series.steps, after) - 1)
    return list(zip(series.steps[start:], series.values[start:], strict=True))


def _tokens_per_step(store: MetricsStore, after: int | None) -> dict[int, float]:
    if store.has(STEP_TOKENS):
        return {s: v for s, v in _points_after(store, STEP_TOKENS, after) if after is None or s > after}
    points = _points_after(store, CUMULATIVE_TOKENS, after)
    out: dict[int, float] = {}
    previous: tuple[int, float] | None = None
    for step, value in points:
        if previous is None:
            if after is None or step > after:
                out[step] = value / step if step > 0 else math.nan  # from the start of training
        elif value >= previous[1] and step > previous[0]:
            out[step] = (value - previous[1]) / (step - previous[0])
        else:
            out[step] = math.nan  # the counter went back (a resume that restarted it): no figure for this step
        previous = (step, value)
    return {s: v for s, v in out.items() if after is None or s > after}


def _seconds_per_step(store: MetricsStore, after: int | None) -> dict[int, float]:
    for name in STEP_TIMES:
        if store.has(name):
            return {s: v for s, v in _points_after(store, name, after) if (after is None or s > after) and v > 0}
    out: dict[int, float] = {}
    arrivals = list(store.arrivals)
    for (s0, t0), (s1, t1) in zip(arrivals, arrivals[1:], strict=False):
        if s1 > s0 and t1 > t0 and (after is None or s1 > after):
            seconds = (t1 - t0) / (s1 - s0)
            for step in range(max(s0 + 1, s1 - 1000), s1 + 1):  # the steps one refresh picked up share its time
                out[step] = seconds
    return out


def _attempt_at(store: MetricsStore, step: int) -> int:
    for attempt in sorted(store.attempt_steps, reverse=True):
        first, last = store.attempt_steps[attempt]
        if first <= step <= last:
            return attempt
    return 0
