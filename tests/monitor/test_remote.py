"""The same reading semantics over SSH (the real sshd fixture): offsets, partial lines, truncation, rotation, runs."""

from __future__ import annotations

import gzip
import json
import shlex
import time
from pathlib import Path

import pytest

from platform_core.monitor.files import RemoteFiles
from platform_core.monitor.logs import log_download
from platform_core.monitor.reader import IncrementalReader
from platform_core.monitor.run import RunMonitor
from platform_core.runners.ssh import open_session

pytestmark = pytest.mark.ssh
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def session(platform, ssh_profile):
    session = open_session(platform, ssh_profile)
    yield session
    session.close()


def _write(session, path: str, data: bytes, mode: str = "ab") -> None:
    with session.sftp().open(session.expand(path), mode.replace("b", "")) as handle:
        handle.write(data)


def test_remote_reader_offsets_partial_lines_truncation_rotation(session):
    base = session.workdir() + "/monitor-reader"
    session.mkdirs(base)
    path = base + "/metrics.jsonl"
    _write(session, path, b'{"step": 1}\n{"step": 2', "wb")
    reader = IncrementalReader(RemoteFiles(session), path)
    assert reader.poll().lines == ['{"step": 1}']
    assert reader.poll().lines == []
    _write(session, path, b"}\n")
    assert reader.poll().lines == ['{"step": 2}']
    _write(session, path, b'{"step":1}\n', "wb")  # re-created by a restarted writer, smaller than the offset
    result = reader.poll()
    assert result.restarted == "truncated" and result.lines == ['{"step":1}']
    _write(session, base + "/new.jsonl", b'{"step": 1, "attempt": 3}\n{"step": 2, "attempt": 3}\n', "wb")
    session.sftp().posix_rename(session.expand(base + "/new.jsonl"), session.expand(path))
    result = reader.poll()
    assert result.restarted == "rotated" and [json.loads(x)["attempt"] for x in result.lines] == [3, 3]


def test_remote_writer_process_with_partial_writes(session):
    base = session.workdir() + "/monitor-live"
    session.mkdirs(base)
    path = base + "/stdout.log"
    session.check(["touch", path], "creating the log")
    script = (
        'for i in $(seq 1 40); do printf "step:%d - train/lo" "$i"; sleep 0.01; printf "ss:0.5\\n"; sleep 0.01; done'
    )
    session.run(f"nohup sh -c {shlex.quote(script)} >> {shlex.quote(path)} 2>/dev/null &")
    reader = IncrementalReader(RemoteFiles(session), path)
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while len(lines) < 40 and time.monotonic() < deadline:
        lines.extend(reader.poll().lines)
        time.sleep(0.02)
    assert lines == [f"step:{i} - train/loss:0.5" for i in range(1, 41)]


def test_remote_run_monitor_matches_the_local_one(session, verl_sft_run):
    run = session.workdir() + "/jobs/7"
    for local in sorted(verl_sft_run.rglob("*")):
        if local.is_file():
            session.put_atomic(str(local), f"{run}/{local.relative_to(verl_sft_run).as_posix()}")
    monitor = RunMonitor(RemoteFiles(session), run)
    monitor.poll()
    assert [a for a, _d in monitor.attempts] == [0, 1, 2]
    assert monitor.store.series("train/loss")[0].tolist() == list(range(1, 13))
    assert monitor.gradnorms.steps() == list(range(1, 13)) and monitor.status["step"] == 12
    assert monitor.log.path == f"{run}/attempt-2/stdout.log" and monitor.log.entries
    _write(session, f"{run}/attempt-2/metrics.jsonl", b'{"step": 13, "data": {"train/loss": 2.9}}\n')
    summary = monitor.poll()
    assert summary.records == 1 and monitor.store.last_step == 13
    download = monitor.download()
    assert download.local_path is None
    assert download.make() == (verl_sft_run / "attempt-2" / "stdout.log").read_bytes()
    big = log_download(RemoteFiles(session), f"{run}/attempt-2/stdout.log", gzip_over=1000)
    assert gzip.decompress(big.make()) == (verl_sft_run / "attempt-2" / "stdout.log").read_bytes()
