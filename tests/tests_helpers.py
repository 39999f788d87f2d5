"""Small helpers shared by tests (importable as `tests_helpers`; the name avoids verl's top-level `tests`)."""

from __future__ import annotations

import socket
import time

import pytest


def closed_port() -> int:
    """Return a localhost port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    """Poll until predicate() returns a truthy value (and return it); fail naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def metric_steps(run_dirs) -> list[int]:
    """All steps recorded in the metrics files of the given attempt directories (with repeats, in file order)."""
    import json
    from pathlib import Path

    steps = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "metrics.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    if not all(k.startswith("val") for k in record["data"]):
                        steps.append(record["step"])
    return steps


def add_root_profile(platform, sshd, name: str, workdir) -> str:
    """A key profile for root@127.0.0.1 whose work dir is `workdir` and whose Python is this venv's."""
    import sys

    from platform_core.connections import add_connection, trust_host_key

    add_connection(
        platform,
        name,
        "127.0.0.1",
        "root",
        port=sshd.port,
        key_path=str(sshd.client_key),
        workdir=str(workdir),
        python_path=sys.executable,
    )
    trust_host_key(platform, name, sshd.host_key_line())
    return name


JOB_BASE = {"model": "m", "dataset": "d"}  # the two references every job spec needs


def run_context(model_path: str, device: str = "cuda", rows: int = 1024, **extra):
    """A RunContext for job #7, attempt 1, under /o (plans built without a workspace)."""
    from platform_core.jobs.engines import RunContext

    return RunContext(
        job_id=7,
        attempt=1,
        job_dir="/o/job-7",
        attempt_dir="/o/job-7/attempt-1",
        checkpoint_dir="/o/job-7/checkpoints",
        config_dir="/o/job-7/config",
        plugin_dir="/kit",
        python="python3",
        model_path=model_path,
        train_files="/d/train.parquet",
        val_files=None,
        device=device,
        train_rows=rows,
        **extra,
    )
