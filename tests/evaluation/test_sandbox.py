"""The code sandbox kills an infinite loop, a fork bomb, a memory hog and a network attempt; the evaluator survives."""

from __future__ import annotations

import os
import socket
import time

import psutil
import pytest

from platform_core.evaluation.metrics import EvalItem, score_items
from platform_core.evaluation.sandbox import Sandbox

LOOP = "while True:\n    pass\n"
SLEEP = "import time\ntime.sleep(60)\n"
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
MEMORY_HOG = "block = bytearray(8 * 1024 ** 3)\n"
BIG_FILE = "with open('big.bin', 'wb') as handle:\n    handle.write(b'x' * (64 * 1024 * 1024))\n"
ESCAPE = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"


@pytest.fixture
def listener():
    """A TCP server on this machine that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    yield server
    server.close()


def connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except TimeoutError:
        return False


def network(port: int) -> str:
    return f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'leak')\n"


def leftovers(sandbox: Sandbox) -> list[int]:
    uids = {u for u in sandbox.uids if u is not None}
    return [
        p.pid
        for p in psutil.process_iter(["uids", "status"])
        if p.info["uids"] and p.info["uids"].real in uids and p.info["status"] != psutil.STATUS_ZOMBIE
    ]


@pytest.mark.parametrize("guard", [True, False], ids=["audit-guard", "os-limits-only"])
def test_hostile_programs_are_contained(listener, guard):
    port = listener.getsockname()[1]
    programs = ["assert 1 + 1 == 2", LOOP, SLEEP, FORK_BOMB, MEMORY_HOG, network(port), BIG_FILE, ESCAPE]
    started = time.monotonic()
    with Sandbox(timeout_s=2, workers=2, audit_guard=guard) as sandbox:
        results = sandbox.run_many(programs)
        assert not leftovers(sandbox), "a sandboxed process outlived its run"
        after = sandbox.run("import json\nassert json.loads('[1]') == [1]")
        isolation = sandbox.isolation
    elapsed = time.monotonic() - started
    ok, loop, sleep, bomb, hog, net, big, escape = results
    assert ok.status == "passed"
    assert loop.status == "timeout" and sleep.status == "timeout"
    assert bomb.status in ("timeout", "failed") and not bomb.passed
    assert hog.status == "failed" and "MemoryError" in hog.detail
    assert net.status == "failed" and not connected(listener)
    assert big.status == "failed"
    assert after.passed  # the evaluator and the sandbox still work
    assert elapsed < 30
    if os.geteuid() == 0:
        assert isolation == "uid+netns+pidns"
        if not guard:
            assert "Network is unreachable" in net.detail  # the network namespace, not the audit hook
            assert escape.passed  # it exited 0; its setsid child died with its PID namespace (no leftovers above)
    if guard:
        assert "not allowed in the evaluation sandbox" in net.detail


def test_scratch_directory_is_private_and_removed():
    with Sandbox(timeout_s=5, workers=1) as sandbox:
        result = sandbox.run(
            "import os\nopen('note.txt', 'w').write('x')\nassert os.listdir('.') == ['note.txt', 'program.py'] "
            "or sorted(os.listdir('.')) == ['note.txt', 'program.py']\nprint(os.getcwd())"
        )
        assert result.passed, result.detail
        assert [p for p in sandbox.root.iterdir() if p.name.startswith("run-")] == []


def test_pass_at_k_survives_hostile_candidates(listener):
    port = listener.getsockname()[1]
    item = EvalItem(
        "write add(a, b)",
        "",
        ["def add(a, b):\n    return a + b\n" + body for body in ("", LOOP, FORK_BOMB, MEMORY_HOG, network(port))],
        "code",
        "assert add(2, 3) == 5\n",
    )
    report = score_items([item], ["pass@1", "pass@5"], sandbox_options={"timeout_s": 2, "workers": 2})
    assert report.overall["pass@1"]["value"] == pytest.approx(1 / 5)
    assert report.overall["pass@5"]["value"] == 1.0
    assert report.notes["executions"]["passed"] == 1
    assert not connected(listener)
