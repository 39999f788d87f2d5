"""The local runner: attempts run detached on this machine under the platform's supervisor."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.runners.base import Runner
from platform_core.runners.process import (
    kill_processes,
    kill_tree,
    orphan_group,
    pid_alive,
    platform_python_env,
    process_started_at,
    python_executable,
    spawn_detached,
)


def local_gpu_count() -> int:
    """Number of NVIDIA GPUs visible here (pynvml; 0 when there is no driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no driver, no library: no GPU
        return 0


class LocalRunner(Runner):
    kind = "local"
    location = "local"

    def __init__(self, platform: Platform):
        self.platform = platform

    def outputs_root(self) -> str:
        return str(self.platform.workspace.outputs)

    def python(self) -> str:
        """The training interpreter: Settings' "training Python" (a GPU env), else the app's own."""
        from platform_core.settings import local_python

        return local_python(self.platform)

    def gpu_count(self) -> int:
        return local_gpu_count()

    def has_gpu(self) -> bool:
        return self.gpu_count() > 0

    def ensure_kit(self) -> str:
        from platform_core.jobs.layout import build_local_kit

        return str(build_local_kit(self.platform.workspace.cache))

    def model_path(self, model: dict[str, Any]) -> str:
        if model["location"] != "local":
            raise InvalidInput(f"model {model['name']!r} is on {model['location']}, not on this machine")
        if not (Path(model["path"]) / "config.json").is_file():
            raise InvalidInput(f"model {model['name']!r}: {model['path']} has no config.json (moved or deleted?)")
        return model["path"]

    def dataset_path(self, dataset_id: int, data_format: str) -> tuple[str, int]:
        from platform_core.jobs.data import converted_dataset

        path, rows = converted_dataset(self.platform, dataset_id, data_format)
        return str(path), rows

    def write_files(self, directory: str, files: dict[str, str]) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = Path(directory) / name
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, target)

    def launch(self, attempt_dir: str, run_spec: dict[str, Any], run_id: int) -> dict[str, Any]:
        self.write_files(attempt_dir, {"run.json": json.dumps(run_spec, indent=2)})
        env = platform_python_env({"PLATFORM_HOME": str(self.platform.workspace.root)})
        pid = spawn_detached(
            [python_executable(), "-m", "platform_core", "job", "supervise", str(run_id)],
            Path(attempt_dir) / "supervisor.log",
            env=env,
        )
        # The start time tells this process from a later one that reuses its pid (after a reboot, say).
        return {"pid": pid, "host": "localhost", "remote": {"pid_started_at": process_started_at(pid)}}

    def read_bytes(self, path: str, offset: int = 0, limit: int | None = None) -> bytes:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(limit) if limit else handle.read()
        except FileNotFoundError:
            return b""

    def file_size(self, path: str) -> int | None:
        try:
            return os.path.getsize(path)
        except OSError:
            return None

    def alive(self, run: dict[str, Any]) -> bool:
        """The supervisor is alive: its pid exists and, when recorded at launch, started when ours did."""
        return pid_alive(run.get("pid"), (run.get("remote") or {}).get("pid_started_at"))

    def stop(self, run: dict[str, Any]) -> bool:
        """Stop the supervisor's whole tree; if the supervisor died without taking the trainer along (killed, OOM),
        kill the trainer's process group (pgid in supervisor.json) when it is still this run's; `stop_note` says so."""
        self.stop_note = ""
        if self.alive(run):  # never signal a process that merely reuses the pid
            return kill_tree(run["pid"], grace_s=30)
        status = (self.read_json(f"{run['run_dir']}/supervisor.json") if run.get("run_dir") else None) or {}
        if status.get("state") not in ("starting", "running"):
            return True
        orphans = orphan_group(status.get("pgid"), status.get("started_at"))
        if not orphans:
            return True
        pids = ", ".join(str(p.pid) for p in orphans)
        gone = kill_processes(orphans, grace_s=15)
        self.stop_note = (
            f"trainer processes {pids} (group {status['pgid']}) outlived the supervisor and were killed"
            if gone
            else f"trainer processes of group {status['pgid']} survived SIGKILL"
        )
        return gone

    def list_dir(self, path: str) -> list[tuple[str, bool, int]]:
        root = Path(path)
        if not root.is_dir():
            return []
        entries = []
        for child in sorted(root.iterdir()):
            size = (
                sum(f.stat().st_size for f in child.rglob("*") if f.is_file())
                if child.is_dir()
                else child.stat().st_size
            )
            entries.append((child.name, child.is_dir(), size))
        return entries
