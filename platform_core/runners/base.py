"""What every runner offers the job service: where files go, how to start, watch, pause and stop an attempt."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from typing import Any

CHECKPOINT_PATTERNS = (re.compile(r"^global_step_(\d+)$"), re.compile(r"^checkpoint-(\d+)$"))


def checkpoint_step(name: str) -> int | None:
    """The training step of a checkpoint directory name (verl global_step_N or HF checkpoint-N), or None."""
    for pattern in CHECKPOINT_PATTERNS:
        match = pattern.match(name)
        if match:
            return int(match.group(1))
    return None


class Runner(ABC):
    """A place where jobs run. Paths are strings on that machine."""

    kind: str = ""
    location: str = "local"  # where files and models live: "local" or the connection name
    stop_note: str = ""  # set by stop(): what it had to do beyond the normal stop (processes it killed)

    @abstractmethod
    def outputs_root(self) -> str: ...

    @abstractmethod
    def python(self) -> str: ...

    @abstractmethod
    def has_gpu(self) -> bool: ...

    @abstractmethod
    def gpu_count(self) -> int: ...

    @abstractmethod
    def ensure_kit(self) -> str:
        """Make the plugin kit available on the machine; return its directory."""

    @abstractmethod
    def model_path(self, model: dict[str, Any]) -> str:
        """Return the path of a registered model on the machine (uploading a small local one if needed)."""

    @abstractmethod
    def dataset_path(self, dataset_id: int, data_format: str) -> tuple[str, int]:
        """Return (path on the machine, row count) of a dataset converted to the engine's format."""

    @abstractmethod
    def write_files(self, directory: str, files: dict[str, str]) -> None: ...

    @abstractmethod
    def launch(self, attempt_dir: str, run_spec: dict[str, Any], run_id: int) -> dict[str, Any]:
        """Start the supervisor for an attempt; return what identifies it (pid, submission id...)."""

    @abstractmethod
    def read_bytes(self, path: str, offset: int = 0, limit: int | None = None) -> bytes: ...

    @abstractmethod
    def file_size(self, path: str) -> int | None: ...

    @abstractmethod
    def alive(self, run: dict[str, Any]) -> bool: ...

    @abstractmethod
    def stop(self, run: dict[str, Any]) -> bool:
        """Stop an attempt's whole process tree; return True once verified gone."""

    @abstractmethod
    def list_dir(self, path: str) -> list[tuple[str, bool, int]]:
        """Return (name, is_dir, size of the entry's files) for a directory's entries ([] if missing)."""

    # Where things will be, without touching the machine (for previews of the form).
    def planned_outputs_root(self) -> str:
        return self.outputs_root()

    def planned_python(self) -> str:
        return self.python()

    def planned_kit(self) -> str:
        return self.ensure_kit()

    def planned_dataset_path(self, local_path) -> str:
        return str(local_path)

    def read_json(self, path: str) -> dict[str, Any] | None:
        data = self.read_bytes(path)
        if not data:
            return None
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            return None

    def request(self, attempt_dir: str, action: str) -> None:
        """Ask the training process to pause (or stop) at its next step boundary (control.json)."""
        self.write_files(attempt_dir, {"control.json": json.dumps({"action": action})})

    def list_checkpoints(self, checkpoint_dir: str) -> list[dict[str, Any]]:
        """Return [{step, path, size_bytes}] of the checkpoint directories under checkpoint_dir, by step."""
        found = []
        for name, is_dir, size in self.list_dir(checkpoint_dir):
            step = checkpoint_step(name) if is_dir else None
            if step is not None:
                found.append({"step": step, "path": f"{checkpoint_dir}/{name}", "size_bytes": size})
        return sorted(found, key=lambda c: c["step"])

    def close(self) -> None:  # noqa: B027 - an optional hook: only runners holding connections override it
        """Release connections."""
