"""The incremental reader: new bytes only, partial lines, truncation, rotation, bounded chunks, another process writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from platform_core.monitor.files import CallableFiles, LocalFiles, attempt_dirs, attempt_files
from platform_core.monitor.reader import IncrementalReader

WRITER = r"""
import json, sys, time
path, steps = sys.argv[1], int(sys.argv[2])
with open(path, "ab", buffering=0) as out:
    for step in range(1, steps + 1):
        line = json.dumps({"step": step, "data": {"train/loss": 1.0 / step, "train/lr": 1e-4}}).encode() + b"\n"
        cut = len(line) // 2
        out.write(line[:cut])      # a reader polling now sees half a line
        time.sleep(0.004)
        out.write(line[cut:])
        time.sleep(0.002)
"""


def test_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n{"step": 2')
    reader = IncrementalReader(LocalFiles(), str(path))
    first = reader.poll()
    assert first.lines == ['{"step": 1}'] and first.restarted is None
    assert reader.offset == path.stat().st_size
    assert reader.poll().lines == []  # the partial line waits for its newline
    with open(path, "ab") as out:
        out.write(b"}\n")
    second = reader.poll()
    assert second.lines == ['{"step": 2}'] and second.bytes_read == 2


def test_another_process_appending_with_partial_writes(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.touch()
    reader = IncrementalReader(LocalFiles(), str(path))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "150"])
    lines: list[str] = []
    partial_seen = False
    while proc.poll() is None:
        lines.extend(reader.poll().lines)
        partial_seen = partial_seen or bool(reader.remainder)
        time.sleep(0.001)
    assert proc.wait() == 0
    lines.extend(reader.poll().lines)
    steps = [json.loads(line)["step"] for line in lines]  # every line whole: json.loads would fail on a half
    assert steps == list(range(1, 151))
    assert partial_seen, "the reader never caught the writer between the two halves of a line"
    assert reader.remainder == b"" and reader.offset == path.stat().st_size


def test_truncation_restarts_from_the_start(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("one\ntwo\nthree\n")
    reader = IncrementalReader(LocalFiles(), str(path))
    assert reader.poll().lines == ["one", "two", "three"]
    path.write_text("new\n")  # opened with "w": same inode, smaller
    result = reader.poll()
    assert result.restarted == "truncated"
    assert result.lines == ["new"]


def test_rotation_to_a_new_file_restarts(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("old 1\nold 2\n")
    reader = IncrementalReader(LocalFiles(), str(path))
    reader.poll()
    replacement = tmp_path / "stdout.log.new"
    replacement.write_text("fresh 1\nfresh 2\nfresh 3 is longer than before\n")
    os.replace(replacement, path)  # another inode, and bigger than the old offset
    result = reader.poll()
    assert result.restarted == "rotated"
    assert result.lines == ["fresh 1", "fresh 2", "fresh 3 is longer than before"]


def test_rotation_without_inodes_is_seen_from_the_first_bytes(tmp_path):
    """Remote transports have no inode: a replaced file is recognised by its first line."""
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "time": 100}\n')
    local = LocalFiles()
    remote_like = CallableFiles(local.read, lambda p: local.stat(p).size if local.stat(p) else None)
    reader = IncrementalReader(remote_like, str(path))
    assert len(reader.poll().lines) == 1
    tmp = tmp_path / "replacement"
    tmp.write_text('{"step": 1, "time": 200}\n{"step": 2, "time": 201}\n')
    os.replace(tmp, path)
    result = reader.poll()
    assert result.restarted == "rotated"
    assert [json.loads(line)["time"] for line in result.lines] == [200, 201]


def test_bounded_chunks_for_huge_files(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(f"line {i:05d}\n".encode() for i in range(5000)))  # 55,000 bytes
    reader = IncrementalReader(LocalFiles(), str(path), max_chunk=4096)
    first = reader.poll()
    assert first.more and first.bytes_read == 4096
    lines = first.lines + reader.drain()
    assert lines == [f"line {i:05d}" for i in range(5000)]


def test_start_at_the_end_skips_history_and_the_cut_line(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(f"line {i:05d}\n".encode() for i in range(10000)))
    reader = IncrementalReader(LocalFiles(), str(path), start="end", tail_bytes=1000)
    result = reader.poll()
    assert result.skipped_bytes == path.stat().st_size - 1000
    assert result.lines[-1] == "line 09999"
    assert all(line.startswith("line ") and len(line) == 10 for line in result.lines)  # no half line first
    with open(path, "ab") as out:
        out.write(b"line 10000\n")
    assert reader.poll().lines == ["line 10000"]


def test_falling_too_far_behind_jumps_ahead(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("start\n")
    reader = IncrementalReader(LocalFiles(), str(path), start="end", tail_bytes=100, max_backlog=1000)
    reader.poll()
    with open(path, "a") as out:
        out.writelines(f"burst {i:04d}\n" for i in range(1000))
    result = reader.poll()
    assert result.skipped_bytes > 0 and result.lines[-1] == "burst 0999" and len(result.lines) < 10


def test_missing_file_then_created(tmp_path):
    path = tmp_path / "later.jsonl"
    reader = IncrementalReader(LocalFiles(), str(path))
    assert reader.poll().size is None
    path.write_text("a\n")
    assert reader.poll().lines == ["a"]


def test_callables_without_a_limit_argument(tmp_path):
    """The brief's two-callable contract `read_from(path, offset)` + `size(path)` works too."""
    path = tmp_path / "x.log"
    path.write_text("x\ny\n")

    def read_from(p, offset):
        with open(p, "rb") as handle:
            handle.seek(offset)
            return handle.read()

    access = CallableFiles(read_from, lambda p: os.path.getsize(p))
    reader = IncrementalReader(access, str(path), max_chunk=2)
    assert reader.drain() == ["x", "y"]


def test_carriage_returns_and_invalid_utf8(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_bytes(b"windows line\r\n\xff\xfe broken bytes\n")
    lines = IncrementalReader(LocalFiles(), str(path)).poll().lines
    assert lines[0] == "windows line" and lines[1].endswith("broken bytes")


def test_attempt_discovery(tmp_path):
    for name in ("attempt-2", "attempt-10", "attempt-1", "ckpt"):
        (tmp_path / name).mkdir()
    (tmp_path / "attempt-2" / "metrics.jsonl").write_text("")
    (tmp_path / "metrics.jsonl").write_text("")
    access = LocalFiles()
    assert [a for a, _d in attempt_dirs(access, str(tmp_path))] == [0, 1, 2, 10]
    assert [a for a, _p in attempt_files(access, str(tmp_path), "metrics.jsonl")] == [0, 2]
