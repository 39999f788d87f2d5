"""Training logs: level of each line, search with highlighted matches, live tail, download, and the first error.

A run's stdout.log mixes Python logging, verl's console lines, Ray actor output (`(TaskRunner pid=7) ...` with ANSI
colours, `[repeated 3x across cluster]`), torchrun / PyTorch C++ messages (`[rank0]:W1126 ...`, `E1126 ...`,
`ChildFailedError`), tqdm bars redrawn with carriage returns, and tracebacks. `LevelClassifier` gives each line
DEBUG / INFO / WARNING / ERROR; lines of a traceback (or a Python warning's source line) inherit their block's level.

    tail = LogTail(LocalFiles(), "/runs/7/stdout.log")
    tail.poll()
    [entry.text for entry in tail.entries if entry.level == "ERROR"]
    find_first_error([entry.text for entry in tail.entries])      # ErrorReport of the traceback that killed the run
"""

from __future__ import annotations

import gzip
import html
import os
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from platform_core.errors import InvalidInput
from platform_core.monitor.console import PROCESS_PREFIX, STEP, strip_ansi
from platform_core.monitor.files import FileAccess
from platform_core.monitor.reader import IncrementalReader, PollResult

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LEVEL_WORD = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "NOTICE": "INFO",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "ERROR",
    "FATAL": "ERROR",
}
_GLOG_LETTER = {"D": "DEBUG", "I": "INFO", "W": "WARNING", "E": "ERROR", "F": "ERROR"}
_WORDS = "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL"

RAY_REPEATED = re.compile(r"\s*\[repeated \d+x across cluster\]\s*$")

_LEVEL_PATTERNS: tuple[tuple[re.Pattern[str], int | None], ...] = (
    (re.compile(rf"^({_WORDS})(?::|\s+\d|\s+\[)"), 1),  # INFO:root:msg / WARNING 07-04 12:00 / INFO [x]
    (re.compile(rf"\[({_WORDS})\]"), 1),  # [2026-..][file.py][INFO] - msg (verl, hydra)
    (re.compile(rf"\s[-|]\s({_WORDS})\s[-|:]\s"), 1),  # 2026-.. - name - WARNING - msg / | INFO |
    (re.compile(rf"^\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\s+(?:\[?[\w.-]+\]?\s+)?({_WORDS})\b"), 1),
    (re.compile(rf"^\[?\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[.,]\d+\]?\s+({_WORDS})\b"), 1),
)
GLOG = re.compile(r"^\[?([DIWEF])\d{4} \d\d:\d\d:\d\d")  # W1126 09:31:46.528 ... / [W1126 09:31:51.04 ...]
RAY_CPP = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.,]\d+ ([DIWEF]) \d+ \d+\]")
TORCH_SHORT = re.compile(r"^\[([DIWEF]) [\w./-]+:\d+\]")  # [W socket.cpp:464] ...
PY_WARNING = re.compile(r"^\S.*:\d+: [A-Z]\w*Warning: ")  # /x/y.py:32: UserWarning: ...
TRACEBACK = "Traceback (most recent call last):"
EXCEPTION_LINE = re.compile(
    r"^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure|Warning|Fault))(\([^)]*\))?(?::|$)"
)
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
ERROR_WORDS = re.compile(
    r"^(?:Error|ERROR|Exception|Fatal|FATAL)\b|CUDA out of memory|CUDA error|OutOfMemoryError|Segmentation fault"
    r"|core dumped|^Killed$|NCCL error|ChildFailedError"
)
WARNING_WORDS = re.compile(r"^(?:Warning|WARNING|warning)\b|NCCL WARN")
OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|\bOOM\b|out of memory", re.I)
KILLED = re.compile(r"^Killed$|exitcode\s*:\s*-9\b|SIGKILL|Signals\.SIGKILL|signal 9\b")
CHILD_FAILED = "ChildFailedError"
# Consequences of another rank's failure: shown only when nothing else failed.
SECONDARY = re.compile(
    r"NCCL|gloo|Connection reset by peer|Broken pipe|DistBackendError|DistNetworkError|DistStoreError|"
    r"RendezvousClosedError|Socket Timeout|SignalException|timed out|Timeout|KeyboardInterrupt"
)
WRAPPERS = ("ChildFailedError", "SystemExit", "KeyboardInterrupt", "CalledProcessError")


def split_prefix(text: str) -> tuple[str, str]:
    """Return (process prefix, rest) for a line without ANSI codes: ('(TaskRunner pid=7)', 'step:1 - ...')."""
    prefix = ""
    while True:
        match = PROCESS_PREFIX.match(text)
        if not match:
            return prefix, text
        prefix += match.group(1)
        text = text[match.end() :]


def display_text(raw: str) -> str:
    """Return a log line as a terminal would show it: ANSI codes removed, only the last carriage-return redraw."""
    text = strip_ansi(raw)
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return text


def level_of(body: str) -> str | None:
    """Return the level a single line (without prefix) declares, or None when it declares none."""
    for pattern, group in _LEVEL_PATTERNS:
        match = pattern.search(body)
        if match:
            return _LEVEL_WORD[match.group(group).upper()]
    for pattern in (GLOG, RAY_CPP, TORCH_SHORT):
        match = pattern.match(body)
        if match:
            return _GLOG_LETTER[match.group(1)]
    if PY_WARNING.match(body):
        return "WARNING"
    match = EXCEPTION_LINE.match(body)
    if match:
        return "WARNING" if match.group(1).endswith("Warning") else "ERROR"
    if ERROR_WORDS.search(body):
        return "ERROR"
    if WARNING_WORDS.search(body):
        return "WARNING"
    return None


class LevelClassifier:
    """Gives each line a level, remembering per process prefix whether a traceback or warning block is open."""

    def __init__(self) -> None:
        self._blocks: dict[str, tuple[str, str]] = {}  # prefix -> (state, level)

    def reset(self) -> None:
        """Forget open blocks (the log restarted)."""
        self._blocks.clear()

    @staticmethod
    def _after_exception(body: str) -> str:
        if CHILD_FAILED in body:
            return "child_failed"  # torchrun's report follows, framed by ==== lines
        return "nested" if "RayTaskError" in body or "ray::" in body else "exception"

    def classify(self, raw: str) -> str:
        """Return DEBUG / INFO / WARNING / ERROR for the next line of the log."""
        prefix, body = split_prefix(display_text(raw))
        body = RAY_REPEATED.sub("", body)
        state, level = self._blocks.get(prefix, ("", ""))
        stripped = body.strip()
        if stripped.startswith(TRACEBACK):
            self._blocks[prefix] = ("traceback", "ERROR")
            return "ERROR"
        if state == "traceback":
            if not stripped or body[:1].isspace():
                return "ERROR"
            self._blocks[prefix] = (self._after_exception(body), "ERROR")
            return "ERROR"
        if state == "nested":
            if not stripped or body[:1].isspace():
                return "ERROR"
            self._blocks[prefix] = (self._after_exception(body), "ERROR")
            return "ERROR"
        if state == "exception":
            if not stripped or body[:1].isspace() or stripped.startswith(CHAINED):
                return "ERROR"
            self._blocks.pop(prefix, None)
        if state in ("child_failed", "child_failed_body"):
            if stripped.startswith("====="):
                if state == "child_failed":
                    self._blocks[prefix] = ("child_failed_body", "ERROR")
                else:
                    self._blocks.pop(prefix, None)
            return "ERROR"
        if state == "warning":
            self._blocks.pop(prefix, None)
            if body[:1].isspace() and stripped:
                return level
        found = level_of(body)
        if found is None:
            return "INFO"
        if CHILD_FAILED in body:
            self._blocks[prefix] = ("child_failed", "ERROR")
        elif PY_WARNING.match(body):
            self._blocks[prefix] = ("warning", "WARNING")
        elif found == "ERROR" and EXCEPTION_LINE.match(body):
            self._blocks[prefix] = ("exception", "ERROR")
        return found


def classify_lines(lines) -> list[str]:
    """Return the level of each line (traceback and warning blocks inherit their level)."""
    classifier = LevelClassifier()
    return [classifier.classify(line) for line in lines]


# -- search and highlighting ---------------------------------------------------------------------------------------
def compile_query(query: str, regex: bool = False, case_sensitive: bool = False) -> re.Pattern[str] | None:
    """Return the compiled search (a keyword is matched literally), or None for an empty query."""
    if not query:
        return None
    flags = 0 if case_sensitive else re.IGNORECASE
    try:
        return re.compile(query if regex else re.escape(query), flags)
    except re.error as exc:
        raise InvalidInput(f"search: {query!r} is not a valid regular expression ({exc})") from exc


def match_spans(text: str, pattern: re.Pattern[str] | None) -> list[tuple[int, int]]:
    """Return the (start, end) character spans of the non-empty matches of `pattern` in `text`."""
    if pattern is None:
        return []
    return [m.span() for m in pattern.finditer(text) if m.end() > m.start()]


def search_lines(
    lines, query: str, regex: bool = False, case_sensitive: bool = False
) -> list[tuple[int, list[tuple[int, int]]]]:
    """Return [(line index, spans)] for the lines that match the keyword or regular expression."""
    pattern = compile_query(query, regex, case_sensitive)
    if pattern is None:
        return [(i, []) for i in range(len(lines))]
    hits = []
    for i, text in enumerate(lines):
        spans = match_spans(text, pattern)
        if spans:
            hits.append((i, spans))
    return hits


def search_file(
    access: FileAccess,
    path: str,
    query: str,
    regex: bool = False,
    case_sensitive: bool = False,
    max_hits: int = 1000,
    chunk: int = 8 * 1024 * 1024,
) -> list[tuple[int, str, list[tuple[int, int]]]]:
    """Scan a whole log, however large, in chunks; return (line number from 1, text, spans) of the first matches."""
    pattern = compile_query(query, regex, case_sensitive)
    if pattern is None:
        return []
    reader = IncrementalReader(access, path, max_chunk=chunk, detect_replacement=False)
    hits: list[tuple[int, str, list[tuple[int, int]]]] = []
    number = 0
    while True:
        result = reader.poll()
        lines = result.lines
        if not result.more and reader.remainder:
            lines = [*lines, reader.remainder.decode("utf-8", errors="replace")]
        for line in lines:
            number += 1
            text = display_text(line)
            spans = match_spans(text, pattern)
            if spans:
                hits.append((number, text, spans))
                if len(hits) >= max_hits:
                    return hits
        if not result.more:
            return hits


def highlight_html(text: str, spans: list[tuple[int, int]]) -> str:
    """Return the text HTML-escaped, with each span wrapped in <mark> (safe to render as HTML)."""
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


LEVEL_COLOURS = {"DEBUG": "#8a8f98", "INFO": "inherit", "WARNING": "#b7791f", "ERROR": "#d64545"}


def render_log_html(entries, spans_by_index: dict[int, list[tuple[int, int]]] | None = None) -> str:
    """Return a <pre> block of log entries (text, level), coloured by level, matches highlighted, all escaped."""
    spans_by_index = spans_by_index or {}
    rows = []
    for i, entry in enumerate(entries):
        text, level = (entry.text, entry.level) if isinstance(entry, LogEntry) else entry
        colour = LEVEL_COLOURS.get(level, "inherit")
        rows.append(f'<span style="color:{colour}">{highlight_html(text, spans_by_index.get(i, []))}</span>')
    return (
        '<pre style="white-space:pre-wrap;word-break:break-all;font-size:0.8rem;line-height:1.35;margin:0">'
        + "\n".join(rows)
        + "</pre>"
    )


# -- live tail ---------------------------------------------------------------------------------------------------
@dataclass
class LogEntry:
    text: str
    level: str


class LogTail:
    """The last `max_lines` lines of a log with their levels, fed only new bytes; a huge log starts near its end."""

    def __init__(
        self,
        access: FileAccess,
        path: str,
        max_lines: int = 5000,
        tail_bytes: int = 2 * 1024 * 1024,
        max_chunk: int = 4 * 1024 * 1024,
    ):
        self.path = path
        self.reader = IncrementalReader(
            access, path, start="end", tail_bytes=tail_bytes, max_chunk=max_chunk, max_backlog=4 * tail_bytes
        )
        self.entries: deque[LogEntry] = deque(maxlen=max_lines)
        self.classifier = LevelClassifier()
        self.skipped_bytes = 0
        self.restarts: list[str] = []

    def poll(self) -> PollResult:
        """Read what the log gained since the last poll and append it, classified."""
        result = self.reader.poll()
        if result.restarted:
            self.entries.clear()
            self.classifier.reset()
            self.restarts.append(result.restarted)
        self.skipped_bytes += result.skipped_bytes
        classify = self.classifier.classify
        self.entries.extend(LogEntry(display_text(line), classify(line)) for line in result.lines)
        return result

    def lines(self, levels=None) -> list[LogEntry]:
        """Return the kept entries, optionally only those of the given levels."""
        if not levels or set(levels) >= set(LEVELS):
            return list(self.entries)
        wanted = set(levels)
        return [entry for entry in self.entries if entry.level in wanted]


def tail_lines(access: FileAccess, path: str, count: int = 200, max_bytes: int = 4 * 1024 * 1024) -> list[str]:
    """Return the last `count` lines of a file, reading at most `max_bytes` from its end (any file size)."""
    stat = access.stat(path)
    if stat is None or stat.size == 0:
        return []
    start = max(0, stat.size - max_bytes)
    data = access.read(path, start, stat.size - start)
    lines = data.decode("utf-8", errors="replace").split("\n")
    if start > 0:
        lines = lines[1:]
    if lines and lines[-1] == "":
        lines.pop()
    return lines[-count:]


# -- download ----------------------------------------------------------------------------------------------------
def iter_file_chunks(access: FileAccess, path: str, chunk: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    """Yield a file's bytes in chunks (constant memory however large the file is)."""
    offset = 0
    while True:
        data = access.read(path, offset, chunk)
        if not data:
            return
        offset += len(data)
        yield data


def gzip_file(access: FileAccess, path: str, destination: str | None = None) -> str:
    """Compress a (local or remote) file into a local .gz file, streaming; return the .gz path."""
    if destination is None:
        handle, destination = tempfile.mkstemp(prefix="platform-log-", suffix=".log.gz")
        os.close(handle)
    with gzip.open(destination, "wb", compresslevel=6) as out:
        for data in iter_file_chunks(access, path):
            out.write(data)
    return destination


@dataclass
class LogDownload:
    """What the download button needs: a file name, a MIME type, the size, and a callable producing the bytes.

    `local_path` is set for a local log: its full path, which can be opened or copied without any transfer.
    """

    file_name: str
    mime: str
    size: int
    make: Callable[[], bytes] = field(repr=False)
    local_path: str | None = None
    compressed: bool = False


def log_download(access: FileAccess, path: str, gzip_over: int = 32 * 1024 * 1024) -> LogDownload | None:
    """Return how to download a complete log: as is when small, gzip-compressed (streamed to a temp file) when large.

    Streamlit 1.67's download button holds the bytes in memory once clicked (a callable defers that to the click),
    so logs over `gzip_over` bytes are compressed first: text logs shrink 10-20 times.
    """
    stat = access.stat(path)
    if stat is None:
        return None
    name = os.path.basename(path) or "stdout.log"
    local = access.local_path(path) if hasattr(access, "local_path") else None
    if stat.size <= gzip_over:
        return LogDownload(name, "text/plain", stat.size, lambda: b"".join(iter_file_chunks(access, path)), local)

    def make() -> bytes:
        packed = gzip_file(access, path)
        try:
            with open(packed, "rb") as handle:
                return handle.read()
        finally:
            os.unlink(packed)

    return LogDownload(name + ".gz", "application/gzip", stat.size, make, local, compressed=True)


def copy_log(access: FileAccess, path: str, destination: str) -> int:
    """Copy a complete log (local or remote) to a local file, streaming; return the bytes written."""
    written = 0
    with open(destination, "wb") as out:
        for data in iter_file_chunks(access, path):
            out.write(data)
            written += len(data)
    return written


# -- the error that killed a run ---------------------------------------------------------------------------------
@dataclass
class ErrorReport:
    """The most relevant failure in a log.

    kind: "traceback" | "out_of_memory" | "child_failed" | "killed" | "error_line"; `summary` is the exception line
    (or the error line); `lines` the whole block as shown; `line_index` where it starts in the lines examined;
    `context` the related summaries (torchrun's root cause, OOM or kill lines, the Ray wrapper line).
    """

    kind: str
    summary: str
    lines: list[str]
    line_index: int
    exception: str | None = None
    context: list[str] = field(default_factory=list)


@dataclass
class _Block:
    start: int
    lines: list[str]
    exceptions: list[str]


def _tracebacks(texts: list[tuple[str, str]]) -> list[_Block]:
    """Return the traceback blocks (per process prefix) with their exception lines, in order of appearance."""
    open_blocks: dict[str, tuple[_Block, str]] = {}
    done: list[_Block] = []
    for i, (prefix, body) in enumerate(texts):
        stripped = body.strip()
        current = open_blocks.get(prefix)
        if stripped.startswith(TRACEBACK):
            if current and current[1] in ("exception", "chain"):
                if current[1] == "chain":
                    current[0].lines.append(body)
                    open_blocks[prefix] = (current[0], "frames")
                    continue
                done.append(current[0])
            elif current:
                done.append(current[0])
            open_blocks[prefix] = (_Block(i, [body], []), "frames")
            continue
        if current is None:
            continue
        block, state = current
        indented = body[:1].isspace()
        if state == "frames":
            if not stripped or indented:
                block.lines.append(body)
            else:
                block.lines.append(body)
                block.exceptions.append(stripped)
                nested = "RayTaskError" in body or "ray::" in body
                open_blocks[prefix] = (block, "nested" if nested else "exception")
        elif state == "nested":
            block.lines.append(body)
            if stripped and not indented:
                block.exceptions.append(stripped)
                open_blocks[prefix] = (block, "exception")
        elif state in ("exception", "chain"):
            if stripped.startswith(CHAINED):
                block.lines.append(body)
                open_blocks[prefix] = (block, "chain")
            elif not stripped:
                block.lines.append(body)
            elif indented and stripped and state == "exception":
                block.lines.append(body)
            else:
                done.append(block)
                del open_blocks[prefix]
    done.extend(block for block, _state in open_blocks.values())
    for block in done:
        while block.lines and not block.lines[-1].strip():
            block.lines.pop()
    return sorted(done, key=lambda b: b.start)


def _exception_name(line: str) -> str | None:
    match = EXCEPTION_LINE.match(line)
    return match.group(1) if match else None


def _child_failed_summary(texts: list[tuple[str, str]]) -> list[str]:
    """Return torchrun's ChildFailedError report (the `====` framed block), or []."""
    for i in range(len(texts) - 1, -1, -1):
        if CHILD_FAILED in texts[i][1]:
            block = [texts[i][1]]
            frames = 0
            for _prefix, body in texts[i + 1 : i + 60]:
                block.append(body)
                if body.strip().startswith("====="):
                    frames += 1
                    if frames == 2:
                        break
            return block
    return []


def find_first_error(lines: list[str]) -> ErrorReport | None:
    """Return the failure that most likely ended the run, or None when the log shows none.

    Tracebacks after the last training step are preferred (the run went on after earlier ones); wrapper exceptions
    (torchrun's ChildFailedError, SystemExit) and consequences of another rank's failure (NCCL timeouts, broken
    pipes) only win when nothing else failed; among the rest an out-of-memory error wins, then the last one.
    Ray's RayTaskError blocks include the nested remote traceback and its real exception.
    """
    texts = [split_prefix(display_text(line)) for line in lines]
    texts = [(prefix, RAY_REPEATED.sub("", body)) for prefix, body in texts]
    last_step = max((i for i, (_p, body) in enumerate(texts) if STEP.search(body)), default=-1)
    blocks = _tracebacks(texts)
    after = [b for b in blocks if b.start > last_step] or blocks
    context: list[str] = []
    child = _child_failed_summary(texts)
    if child:
        context.extend(line for line in child if line.strip())
    oom_lines = [body.strip() for _p, body in texts[last_step + 1 :] if OOM.search(body)]
    kill_lines = [body.strip() for _p, body in texts[last_step + 1 :] if KILLED.search(body.strip())]
    if after:

        def final(block: _Block) -> str:
            return block.exceptions[-1] if block.exceptions else block.lines[-1].strip()

        real = [b for b in after if (_exception_name(final(b)) or "").split(".")[-1] not in WRAPPERS]
        oom = [b for b in real if any(OOM.search(line) for line in b.exceptions)]
        primary = [b for b in real if not SECONDARY.search(final(b))]
        chosen = (oom or primary or real or after)[-1]
        summary = final(chosen)
        wrappers = [line for line in chosen.exceptions[:-1] if "RayTaskError" in line]
        kind = "out_of_memory" if OOM.search(summary) else "traceback"
        extra = [line for line in oom_lines + kill_lines if line != summary][-3:]
        summaries = list(dict.fromkeys(wrappers + extra))
        related = summaries + context
        return ErrorReport(kind, summary, chosen.lines, chosen.start, _exception_name(summary), related)
    if oom_lines:
        index = max(i for i, (_p, body) in enumerate(texts) if OOM.search(body))
        return ErrorReport("out_of_memory", oom_lines[-1], [oom_lines[-1]], index, None, kill_lines + context)
    if child:
        index = max(i for i, (_p, body) in enumerate(texts) if CHILD_FAILED in body)
        return ErrorReport("child_failed", child[0].strip(), child, index, CHILD_FAILED, kill_lines)
    if kill_lines:
        index = max(i for i, (_p, body) in enumerate(texts) if KILLED.search(body.strip()))
        return ErrorReport("killed", kill_lines[-1], [kill_lines[-1]], index, None, [])
    levels = classify_lines(lines)
    errors = [i for i, level in enumerate(levels) if level == "ERROR" and i > last_step]
    if errors:
        index = errors[-1]
        return ErrorReport("error_line", texts[index][1].strip(), [texts[index][1]], index, None, [])
    return None


def first_error_in_file(access: FileAccess, path: str, max_bytes: int = 16 * 1024 * 1024) -> ErrorReport | None:
    """Return `find_first_error` over the last `max_bytes` of a log (the end of a failed run holds its error)."""
    return find_first_error(tail_lines(access, path, count=10**9, max_bytes=max_bytes))


def log_file_info(path: str) -> tuple[str, int] | None:
    """Return (absolute path, size in bytes) of a local log, or None when it does not exist."""
    try:
        return os.path.abspath(path), os.path.getsize(path)
    except OSError:
        return None
