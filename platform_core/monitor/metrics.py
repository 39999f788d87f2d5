"""The metrics of a run: one series per metric name, merged across attempts by step (a later attempt wins).

Lines come from verl's file logger or the TRL callback (`{"step": N, "data": {"train/loss": 1.2, ...}}`, NaN/Inf
written as null, a step possibly split over several lines) or, as a fallback, from console lines. Values are kept in
compact arrays (18 bytes a point), appended in O(1) when steps arrive in order, so 100,000 steps of 30 metrics fit
in a few tens of MB. A null is stored as NaN: the watchdog reports it, the charts skip it.

    store = MetricsStore()
    store.add_line('{"step": 1, "data": {"train/loss": 2.5}}', attempt=1)
    steps, values = store.series("train/loss")      # numpy arrays
"""

from __future__ import annotations

import json
import math
import time
from array import array
from bisect import bisect_left
from collections import deque
from typing import Any

import numpy as np


class Series:
    """Points (step, value) sorted by step, each remembering the attempt that wrote it."""

    __slots__ = ("steps", "values", "attempts")

    def __init__(self) -> None:
        self.steps = array("q")
        self.values = array("d")
        self.attempts = array("h")

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, value: float, attempt: int) -> None:
        """Add a point; a point at an existing step replaces it unless it comes from an earlier attempt."""
        steps = self.steps
        if not steps or step > steps[-1]:
            steps.append(step)
            self.values.append(value)
            self.attempts.append(attempt)
            return
        i = bisect_left(steps, step)
        if i < len(steps) and steps[i] == step:
            if attempt >= self.attempts[i]:
                self.values[i] = value
                self.attempts[i] = attempt
            return
        steps.insert(i, step)
        self.values.insert(i, value)
        self.attempts.insert(i, attempt)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (steps, values) as numpy arrays (copies, safe to keep while the series grows)."""
        return np.array(self.steps, dtype=np.int64), np.array(self.values, dtype=np.float64)


def _number(value: Any) -> float | None:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


class MetricsStore:
    """Series per raw metric name for one run (all attempts), plus when each new step was first seen."""

    def __init__(self, arrivals_kept: int = 512) -> None:
        self._series: dict[str, Series] = {}
        self.last_step: int | None = None
        self.attempt_steps: dict[int, list[int]] = {}
        self.arrivals: deque[tuple[int, float]] = deque(maxlen=arrivals_kept)
        self.version = 0
        self.bad_lines = 0

    def add_record(self, step: int, data: dict[str, Any], attempt: int = 0, arrived: float | None = None) -> None:
        """Add the values of one logged step; `arrived` (wall time) is recorded for a step seen live."""
        for name, raw in data.items():
            kind = type(raw)
            value = float(raw) if kind is float or kind is int else _number(raw)
            if value is None:
                continue
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = Series()
            series.add(step, value, attempt)
        span = self.attempt_steps.get(attempt)
        if span is None:
            self.attempt_steps[attempt] = [step, step]
        else:
            span[0], span[1] = min(span[0], step), max(span[1], step)
        if self.last_step is None or step > self.last_step:
            self.last_step = step
            if arrived is not None:
                self.arrivals.append((step, arrived))
        self.version += 1

    def add_line(self, line: str, attempt: int = 0, arrived: float | None = None) -> bool:
        """Add one metrics JSONL line; return False (and count it) when it is not a metrics record."""
        line = line.strip()
        if not line:
            return False
        try:
            record = json.loads(line)
            step = int(record["step"])
            data = record["data"]
        except (ValueError, KeyError, TypeError):
            self.bad_lines += 1
            return False
        if not isinstance(data, dict):
            self.bad_lines += 1
            return False
        self.add_record(step, data, attempt, arrived)
        return True

    def add_lines(self, lines: list[str], attempt: int = 0, live: bool = False) -> int:
        """Add JSONL lines; with `live`, the steps are stamped with the current time. Return the records added."""
        now = time.time() if live else None
        return sum(self.add_line(line, attempt, now) for line in lines)

    def names(self) -> list[str]:
        """Return the metric names seen so far, sorted."""
        return sorted(self._series)

    def has(self, name: str) -> bool:
        """Return True when the metric was logged at least once."""
        return name in self._series

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (steps, values) of one metric; empty arrays when it was never logged."""
        series = self._series.get(name)
        if series is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return series.arrays()

    def last_value(self, name: str) -> float | None:
        """Return the value at the last step of a metric (NaN when it was null), or None if never logged."""
        series = self._series.get(name)
        return series.values[-1] if series is not None and len(series) else None

    def point_count(self, name: str) -> int:
        """Return the number of steps at which the metric was logged."""
        series = self._series.get(name)
        return len(series) if series is not None else 0

    def clear(self) -> None:
        """Forget everything (a metrics file was truncated or replaced: it is read again from the start)."""
        self.__init__(self.arrivals.maxlen or 512)
