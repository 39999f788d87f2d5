"""The run's system.jsonl (samples written by the job supervisor, see `sampling.py`) as time series for the GPU panel.

store = SystemStore(); store.add_lines(lines)
store.gpu_series()      # {0: {"name": "H100", "util": (times, values), "mem_used_mib": ..., ...}}
store.host_series()     # {"cpu_percent": (times, values), "rss_mib": ..., "ram_used_mib": ..., ...}
"""

from __future__ import annotations

import json
from array import array

import numpy as np

GPU_FIELDS = ("util", "mem_used_mib", "mem_total_mib", "temp_c", "power_w")
HOST_FIELDS = ("cpu_percent", "rss_mib", "ram_used_mib", "ram_total_mib")


def _value(raw) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    return float("nan")


class SystemStore:
    """Samples in columns: host values per sample time, and per GPU index its own times and values."""

    def __init__(self) -> None:
        self.times = array("d")
        self.host = {name: array("d") for name in HOST_FIELDS}
        self.gpu_times: dict[int, array] = {}
        self.gpu_values: dict[int, dict[str, array]] = {}
        self.gpu_names: dict[int, str] = {}
        self.sources: set[str] = set()
        self.bad_lines = 0
        self.version = 0

    def add_line(self, line: str) -> bool:
        """Add one sample line; return False (and count it) if it is not a sample."""
        line = line.strip()
        if not line:
            return False
        try:
            sample = json.loads(line)
            moment = float(sample["time"])
        except (ValueError, KeyError, TypeError):
            self.bad_lines += 1
            return False
        self.times.append(moment)
        for name in HOST_FIELDS:
            self.host[name].append(_value(sample.get(name)))
        for gpu in sample.get("gpus") or []:
            try:
                index = int(gpu["index"])
            except (KeyError, TypeError, ValueError):
                continue
            if index not in self.gpu_times:
                self.gpu_times[index] = array("d")
                self.gpu_values[index] = {name: array("d") for name in GPU_FIELDS}
            self.gpu_times[index].append(moment)
            for name in GPU_FIELDS:
                self.gpu_values[index][name].append(_value(gpu.get(name)))
            if gpu.get("name"):
                self.gpu_names[index] = str(gpu["name"])
        if sample.get("gpu_source"):
            self.sources.add(str(sample["gpu_source"]))
        self.version += 1
        return True

    def add_lines(self, lines) -> int:
        """Add sample lines; return how many were samples."""
        return sum(self.add_line(line) for line in lines)

    def has_gpus(self) -> bool:
        """Return True when some sample reported a GPU."""
        return bool(self.gpu_times)

    def gpu_series(self) -> dict[int, dict]:
        """Return {gpu index: {"name": str, field: (times, values)}} (times as unix seconds)."""
        out = {}
        for index in sorted(self.gpu_times):
            times = np.array(self.gpu_times[index])
            entry: dict = {"name": self.gpu_names.get(index, f"GPU {index}")}
            for name in GPU_FIELDS:
                entry[name] = (times, np.array(self.gpu_values[index][name]))
            out[index] = entry
        return out

    def host_series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return {field: (times, values)} for the run's CPU %, RSS and the machine's RAM."""
        times = np.array(self.times)
        return {name: (times, np.array(self.host[name])) for name in HOST_FIELDS}

    def latest(self) -> dict:
        """Return the last sample's host values and, per GPU, its last values (empty dict before any sample)."""
        if not self.times:
            return {}
        out = {name: self.host[name][-1] for name in HOST_FIELDS}
        out["time"] = self.times[-1]
        out["gpus"] = {
            index: {name: values[name][-1] for name in GPU_FIELDS} for index, values in self.gpu_values.items()
        }
        return out

    def clear(self) -> None:
        """Forget every sample (the file was truncated or replaced)."""
        self.__init__()
