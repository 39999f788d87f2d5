"""Read only the new bytes of a growing file, locally or remotely, and hand back complete lines.

    reader = IncrementalReader(LocalFiles(), "/runs/7/attempt-1/metrics.jsonl")
    result = reader.poll()          # PollResult(lines=[...], restarted=None, more=False, ...)

A poll stats the file once and reads at most `max_chunk` bytes from the remembered offset, so its cost depends on
the new bytes, never on the file's size. A partial last line is kept until its newline arrives. A file that shrank
below the offset (truncated, or re-created by a restarted writer) or was replaced (another inode locally; another
first line remotely) is read again from the start, and the poll says so in `restarted`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from platform_core.monitor.files import FileAccess

MAX_CHUNK = 8 * 1024 * 1024
# A line longer than this without a newline (a progress bar redrawn with \r for hours) is handed out as it is.
MAX_LINE = 4 * 1024 * 1024
HEAD_BYTES = 512  # enough to tell two runs apart: their first lines carry timestamps or measured values


@dataclass
class PollResult:
    """What one poll found: complete new lines, whether the reader restarted (and why), whether more bytes wait."""

    lines: list[str] = field(default_factory=list)
    restarted: str | None = None
    more: bool = False
    offset: int = 0
    size: int | None = None
    bytes_read: int = 0
    skipped_bytes: int = 0


class IncrementalReader:
    """Remembers a byte offset in one file; each `poll()` returns the complete lines written since the last one.

    `start="end"` begins near the end (the last `tail_bytes`), for logs whose history is not needed in full;
    `max_backlog` (bytes) jumps ahead to the last `tail_bytes` whenever the reader falls further behind than that.
    """

    def __init__(
        self,
        access: FileAccess,
        path: str,
        *,
        max_chunk: int = MAX_CHUNK,
        start: str = "beginning",
        tail_bytes: int = 1024 * 1024,
        detect_replacement: bool = True,
        max_backlog: int | None = None,
    ):
        if start not in ("beginning", "end"):
            raise ValueError(f"start must be 'beginning' or 'end', not {start!r}")
        self.access = access
        self.path = path
        self.max_chunk = max_chunk
        self.start = start
        self.tail_bytes = tail_bytes
        self.detect_replacement = detect_replacement
        self.max_backlog = max_backlog
        self.offset = 0
        self.remainder = b""
        self.identity: tuple[int, int] | None = None
        self.head = b""
        self.size: int | None = None
        self.mtime: float | None = None
        self.last_change: float | None = None
        self.polls = 0
        self._started = False

    def reset(self) -> None:
        """Forget the offset and the partial line (the next poll reads from the start)."""
        self.offset = 0
        self.remainder = b""
        self.identity = None
        self.head = b""
        self._started = False

    def poll(self) -> PollResult:
        """Read the bytes written since the last poll (at most `max_chunk`) and return the complete lines."""
        self.polls += 1
        stat = self.access.stat(self.path)
        if stat is None:
            self.size = None
            return PollResult(offset=self.offset, size=None)
        restarted = self._restart_reason(stat)
        if restarted:
            self.reset()
        self.size, self.mtime = stat.size, stat.mtime
        self.identity = stat.identity
        skipped = 0
        first = not self._started
        self._started = True
        behind = stat.size - self.offset
        if stat.size - self.tail_bytes > self.offset and (
            (first and self.start == "end") or (self.max_backlog is not None and behind > self.max_backlog)
        ):
            skipped = stat.size - self.tail_bytes - self.offset
            self.offset = stat.size - self.tail_bytes
            self.remainder = b""
            if first and stat.identity is None and self.detect_replacement:
                self.head = self.access.read(self.path, 0, HEAD_BYTES)
        if stat.size <= self.offset:
            return PollResult(restarted=restarted, offset=self.offset, size=stat.size)
        data = self.access.read(self.path, self.offset, min(self.max_chunk, stat.size - self.offset))
        if not data:
            return PollResult(restarted=restarted, offset=self.offset, size=stat.size)
        if self.offset == 0:
            self.head = data[:HEAD_BYTES]
        elif len(self.head) < HEAD_BYTES and self.offset == len(self.head):
            self.head = (self.head + data)[:HEAD_BYTES]
        self.offset += len(data)
        self.last_change = time.time()
        lines = self._split(data, drop_first=skipped > 0)
        return PollResult(
            lines=lines,
            restarted=restarted,
            more=self.offset < stat.size,
            offset=self.offset,
            size=stat.size,
            bytes_read=len(data),
            skipped_bytes=skipped,
        )

    def _restart_reason(self, stat) -> str | None:
        if not self._started:
            return None
        if stat.size < self.offset:
            return "truncated"
        if self.identity is not None and stat.identity is not None and stat.identity != self.identity:
            return "rotated"
        if (
            self.detect_replacement
            and stat.identity is None
            and self.head
            and self.offset > 0
            and stat.size != self.size
            and self.access.read(self.path, 0, len(self.head)) != self.head
        ):
            return "rotated"
        return None

    def _split(self, data: bytes, drop_first: bool) -> list[str]:
        chunk = self.remainder + data
        parts = chunk.split(b"\n")
        self.remainder = parts.pop()
        if drop_first and parts:
            parts.pop(0)  # started in the middle of a line
        if len(self.remainder) > MAX_LINE:
            parts.append(self.remainder)
            self.remainder = b""
        return [p.decode("utf-8", errors="replace").rstrip("\r") for p in parts]

    def drain(self, max_polls: int = 1_000_000) -> list[str]:
        """Poll until no more bytes wait (for a first full read); return all lines."""
        lines: list[str] = []
        for _ in range(max_polls):
            result = self.poll()
            lines.extend(result.lines)
            if not result.more:
                break
        return lines
