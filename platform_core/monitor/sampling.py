"""GPU / CPU / RAM samples of a running job, one JSON line each, written next to the run as system.jsonl.

Needs only the standard library; psutil and pynvml (nvidia-ml-py) are used when importable. This file imports
nothing from platform_core, so it can be copied next to a remote run and run there:

    python sampling.py --out RUN_DIR/system.jsonl --pid 1234 --interval 5

A sample: {"time": unix, "gpus": [{"index", "name", "util", "mem_used_mib", "mem_total_mib", "temp_c", "power_w"}],
"gpu_source": "nvml" | "nvidia-smi" | null, "cpu_percent", "rss_mib", "ram_used_mib", "ram_total_mib"}; `gpus` is []
on a machine without an NVIDIA GPU; a value the GPU does not report ("[N/A]", "[Not Supported]") is null;
cpu_percent is for the process tree, 100 = one core busy.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time

try:
    import psutil
except ImportError:  # the sampler still reports RAM and RSS from /proc
    psutil = None

NVIDIA_SMI_FIELDS = (
    "index",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
)
NVIDIA_SMI_COMMAND = (
    "nvidia-smi",
    "--query-gpu=" + ",".join(NVIDIA_SMI_FIELDS),
    "--format=csv,noheader,nounits",
)
SAMPLE_KEYS = ("index", "name", "util", "mem_used_mib", "mem_total_mib", "temp_c", "power_w")
MIB = 1024 * 1024


def _number(text: str) -> float | None:
    text = text.strip()
    if not text or text.startswith("[") or text.upper() in ("N/A", "NOT SUPPORTED", "ERR!", "UNKNOWN ERROR"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_nvidia_smi_csv(text: str) -> list[dict]:
    """Parse `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw
    --format=csv,noheader,nounits` output into GPU samples; lines that are not GPU rows are skipped."""
    gpus = []
    for row in csv.reader(io.StringIO(text), skipinitialspace=True):
        if len(row) != len(NVIDIA_SMI_FIELDS):
            continue
        index = _number(row[0])
        if index is None:
            continue
        values = [_number(cell) for cell in row[2:]]
        gpus.append(dict(zip(SAMPLE_KEYS, [int(index), row[1].strip(), *values], strict=True)))
    return gpus


def sample_gpus_nvidia_smi(command=NVIDIA_SMI_COMMAND, timeout: float = 10) -> list[dict] | None:
    """Return the GPUs as nvidia-smi reports them, or None when nvidia-smi is missing or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return parse_nvidia_smi_csv(done.stdout)


_NVML_READY: bool | None = None


def sample_gpus_nvml() -> list[dict] | None:
    """Return the local GPUs through NVML (nvidia-ml-py), or None when NVML is not available."""
    global _NVML_READY
    try:
        import pynvml
    except ImportError:
        return None
    if _NVML_READY is None:
        try:
            pynvml.nvmlInit()
            _NVML_READY = True
        except pynvml.NVMLError:
            _NVML_READY = False
    if not _NVML_READY:
        return None

    def read(call, *args):
        try:
            return call(*args)
        except pynvml.NVMLError:
            return None

    gpus = []
    try:
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError:
        return None
    for index in range(count):
        handle = read(pynvml.nvmlDeviceGetHandleByIndex, index)
        if handle is None:
            continue
        name = read(pynvml.nvmlDeviceGetName, handle)
        util = read(pynvml.nvmlDeviceGetUtilizationRates, handle)
        memory = read(pynvml.nvmlDeviceGetMemoryInfo, handle)
        temp = read(pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU)
        power = read(pynvml.nvmlDeviceGetPowerUsage, handle)
        gpus.append(
            {
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else name,
                "util": float(util.gpu) if util is not None else None,
                "mem_used_mib": memory.used / MIB if memory is not None else None,
                "mem_total_mib": memory.total / MIB if memory is not None else None,
                "temp_c": float(temp) if temp is not None else None,
                "power_w": power / 1000.0 if power is not None else None,
            }
        )
    return gpus


class ProcessTreeSampler:
    """CPU % and RSS of some processes and all their descendants; CPU % is measured between successive samples."""

    def __init__(self) -> None:
        self._procs: dict[tuple[int, float], object] = {}
        self._cpu_times: dict[int, float] = {}
        self._last_time: float | None = None

    def sample(self, pids) -> dict:
        """Return {"cpu_percent", "rss_mib"} of the trees rooted at `pids` (None when none of them is alive)."""
        pids = [int(p) for p in pids or []]
        if not pids:
            return {"cpu_percent": None, "rss_mib": None}
        if psutil is not None:
            return self._sample_psutil(pids)
        return self._sample_proc(pids)

    def _sample_psutil(self, pids) -> dict:
        procs = {}
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    procs[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        if not procs:
            return {"cpu_percent": None, "rss_mib": None}
        cpu = rss = 0.0
        kept = {}
        for proc in procs.values():
            try:
                key = (proc.pid, proc.create_time())
                cached = self._procs.get(key, proc)
                kept[key] = cached
                with cached.oneshot():
                    cpu += cached.cpu_percent(None)
                    rss += cached.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self._procs = kept
        return {"cpu_percent": round(cpu, 1), "rss_mib": round(rss / MIB, 1)}

    def _sample_proc(self, pids) -> dict:
        tree = _proc_tree(pids)
        if not tree:
            return {"cpu_percent": None, "rss_mib": None}
        page = os.sysconf("SC_PAGE_SIZE")
        ticks = os.sysconf("SC_CLK_TCK")
        rss = 0
        cpu_total = 0.0
        times = {}
        for pid in tree:
            try:
                with open(f"/proc/{pid}/statm") as handle:
                    rss += int(handle.read().split()[1]) * page
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                times[pid] = (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, ValueError):
                continue
        now = time.monotonic()
        if self._last_time is not None:
            elapsed = now - self._last_time
            used = sum(t - self._cpu_times.get(pid, t) for pid, t in times.items())
            cpu_total = 100.0 * used / elapsed if elapsed > 0 else 0.0
        self._cpu_times, self._last_time = times, now
        return {"cpu_percent": round(cpu_total, 1), "rss_mib": round(rss / MIB, 1)}


def _proc_tree(pids) -> list[int]:
    parents: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    tree, todo = [], list(alive)
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def sample_memory() -> dict:
    """Return {"ram_used_mib", "ram_total_mib"} of the machine (None when unknown)."""
    if psutil is not None:
        memory = psutil.virtual_memory()
        return {
            "ram_used_mib": round((memory.total - memory.available) / MIB, 1),
            "ram_total_mib": round(memory.total / MIB, 1),
        }
    try:
        info = {}
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, value = line.split(":", 1)
                info[key] = int(value.split()[0]) * 1024
        total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
        return {"ram_used_mib": round((total - available) / MIB, 1), "ram_total_mib": round(total / MIB, 1)}
    except (OSError, KeyError, ValueError):
        return {"ram_used_mib": None, "ram_total_mib": None}


_DEFAULT_TREE = ProcessTreeSampler()


def sample_gpus(gpu_indices=None) -> tuple[list[dict], str | None]:
    """Return (GPUs, source): NVML first, then nvidia-smi, else ([], None); optionally only the given indices."""
    for source, sampler in (("nvml", sample_gpus_nvml), ("nvidia-smi", sample_gpus_nvidia_smi)):
        gpus = sampler()
        if gpus:
            if gpu_indices is not None:
                wanted = {int(i) for i in gpu_indices}
                gpus = [g for g in gpus if g["index"] in wanted]
            return gpus, source
    return [], None


def sample_system(pids, gpu_indices=None, tree: ProcessTreeSampler | None = None) -> dict:
    """Return one sample: the GPUs (pynvml, else nvidia-smi, else none), CPU % and RSS of the run, machine RAM."""
    gpus, source = sample_gpus(gpu_indices)
    sample = {"time": round(time.time(), 3), "gpus": gpus, "gpu_source": source}
    sample.update((tree or _DEFAULT_TREE).sample(pids))
    sample.update(sample_memory())
    return sample


def append_sample(path: str, sample: dict) -> None:
    """Append one sample as a JSON line (NaN is not valid JSON: such values are written as null)."""
    line = json.dumps(sample, allow_nan=False, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)


def any_alive(pids) -> bool:
    """Return True while at least one of the processes exists."""
    for pid in pids:
        if psutil is not None:
            if psutil.pid_exists(int(pid)):
                return True
        elif os.path.exists(f"/proc/{int(pid)}"):
            return True
    return False


def run_sampler(path: str, pids, interval: float = 5.0, gpu_indices=None, max_samples: int | None = None) -> int:
    """Append a sample every `interval` seconds until the processes are gone; return the number written."""
    tree = ProcessTreeSampler()
    written = 0
    while any_alive(pids) and (max_samples is None or written < max_samples):
        append_sample(path, sample_system(pids, gpu_indices, tree))
        written += 1
        time.sleep(interval)
    return written


def main(argv=None) -> int:
    """Command line: append samples of the given processes to a file until they end (or print one with --once)."""
    parser = argparse.ArgumentParser(description="Append GPU/CPU/RAM samples of a job to a JSONL file.")
    parser.add_argument("--out", required=True, help="the system.jsonl file to append to")
    parser.add_argument("--pid", type=int, action="append", required=True, help="a process of the job (repeatable)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--gpu", type=int, action="append", help="only these GPU indices (repeatable)")
    parser.add_argument("--once", action="store_true", help="print one sample to stdout and exit")
    args = parser.parse_args(argv)
    if args.once:
        print(json.dumps(sample_system(args.pid, args.gpu)))
        return 0
    run_sampler(args.out, args.pid, args.interval, args.gpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
