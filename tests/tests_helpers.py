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
