"""`RunMonitor`: everything the job page shows about one run directory, refreshed by `poll()` from the new bytes only.

The run directory (written by the training process and the job supervisor; each attempt after a resume gets its own
`attempt-N/`, and files directly in the run directory count as attempt 0):

    stdout.log        trainer output (verl console lines, Ray, torchrun, tracebacks)
    metrics.jsonl     {"step": N, "data": {...}} per logged step      -> store (merged across attempts by step)
    gradnorms.jsonl   per-layer gradient norms                         -> gradnorms
    system.jsonl      GPU / CPU / RAM samples                          -> system
    status.json       last step, time, total steps                     -> status
    rollouts/<step>.jsonl  sampled rollouts                            -> rollout_files(), derived reward stats

    monitor = RunMonitor(LocalFiles(), "/ws/outputs/jobs/7")      # or RemoteFiles(open_session(platform, "lab"))
    monitor.poll()                                                 # call on every refresh; cheap when nothing changed
    monitor.store, monitor.gradnorms, monitor.system, monitor.status, monitor.log
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from platform_core.monitor.canonical import resolve
from platform_core.monitor.console import parse_console_line
from platform_core.monitor.files import FileAccess, attempt_dirs
from platform_core.monitor.gradnorms import GradNormStore
from platform_core.monitor.logs import LogTail, first_error_in_file, log_download
from platform_core.monitor.metrics import MetricsStore
from platform_core.monitor.progress import Progress, run_progress
from platform_core.monitor.reader import MAX_CHUNK, IncrementalReader
from platform_core.monitor.rollouts import read_rollouts, reward_stats_by_step, rollout_files
from platform_core.monitor.system import SystemStore
from platform_core.monitor.throughput import ThroughputDeriver
from platform_core.monitor.watchdog import HealthWarning, check_health

METRICS_FILE = "metrics.jsonl"
GRADNORMS_FILE = "gradnorms.jsonl"
SYSTEM_FILE = "system.jsonl"
STATUS_FILE = "status.json"
LOG_FILE = "stdout.log"
ROLLOUT_DIR = "rollouts"
NATIVE_REWARD_STD = ("critic/score/std", "reward_std")


@dataclass
class RunPoll:
    """What one poll did: records added, files that restarted (path, "truncated" | "rotated"), bytes still waiting."""

    records: int = 0
    log_lines: int = 0
    restarted: list[tuple[str, str]] = field(default_factory=list)
    more: bool = False
    bytes_read: int = 0


class RunMonitor:
    """Incremental view of one run directory (local or remote); keep one per job between refreshes."""

    def __init__(
        self,
        access: FileAccess,
        run_dir: str,
        *,
        log_lines: int = 5000,
        max_chunk: int = MAX_CHUNK,
        console_fallback: bool = True,
        rollout_stats: bool = True,
    ):
        self.access = access
        self.run_dir = run_dir
        self.log_lines = log_lines
        self.max_chunk = max_chunk
        self.console_fallback = console_fallback
        self.rollout_stats = rollout_stats
        self.store = MetricsStore()
        self.gradnorms = GradNormStore()
        self.system = SystemStore()
        self.status: dict | None = None
        self.log: LogTail | None = None
        self.attempts: list[tuple[int, str]] = [(0, run_dir)]
        self.polls = 0
        self.metrics_source = "none"
        self._readers: dict[tuple[str, str], tuple[int, IncrementalReader]] = {}
        self._status_stamp: tuple | None = None
        self._rollout_sizes: dict[str, int] = {}
        self._rollout_done: set[str] = set()
        self._caught_up = False
        self._throughput = ThroughputDeriver()

    # -- polling ---------------------------------------------------------------------------------------------------
    def poll(self) -> RunPoll:
        """Read what every file of the run gained since the last poll (bounded per file); return a summary."""
        self.polls += 1
        summary = RunPoll()
        self.attempts = attempt_dirs(self.access, self.run_dir)
        live = self._caught_up
        has_metrics_file = False
        for attempt, directory in self.attempts:
            path = self.access.join(directory, METRICS_FILE)
            if self._poll_file("metrics", path, attempt, summary, self._add_metrics(attempt, live)):
                has_metrics_file = True
        if self.console_fallback and not has_metrics_file:
            for attempt, directory in self.attempts:
                path = self.access.join(directory, LOG_FILE)
                self._poll_file("console", path, attempt, summary, self._add_console(attempt, live))
        self.metrics_source = (
            "file" if has_metrics_file else ("console" if self.store.last_step is not None else "none")
        )
        self._throughput.update(self.store)
        for attempt, directory in self.attempts:
            path = self.access.join(directory, GRADNORMS_FILE)
            self._poll_file(
                "gradnorms", path, attempt, summary, lambda lines, a=attempt: self.gradnorms.add_lines(lines, a)
            )
            path = self.access.join(directory, SYSTEM_FILE)
            self._poll_file("system", path, attempt, summary, self.system.add_lines)
        self._poll_status()
        self._poll_log(summary)
        if self.rollout_stats:
            self._poll_rollout_stats()
        self._caught_up = not summary.more
        return summary

    def read_all(self, max_polls: int = 100_000) -> RunPoll:
        """Poll until no file has bytes waiting (a one-shot full read, e.g. for the CLI); return the totals."""
        total = RunPoll()
        for _ in range(max_polls):
            step = self.poll()
            total.records += step.records
            total.log_lines += step.log_lines
            total.restarted += step.restarted
            total.bytes_read += step.bytes_read
            if not step.more:
                break
        return total

    def _poll_file(self, kind: str, path: str, attempt: int, summary: RunPoll, add) -> bool:
        key = (kind, path)
        entry = self._readers.get(key)
        if entry is None:
            entry = self._readers[key] = (attempt, IncrementalReader(self.access, path, max_chunk=self.max_chunk))
        reader = entry[1]
        result = reader.poll()
        if result.size is None:
            return False
        if result.restarted:
            summary.restarted.append((path, result.restarted))
            self._restart(kind)
            result = reader.poll()
        summary.records += add(result.lines) or 0
        summary.more = summary.more or result.more
        summary.bytes_read += result.bytes_read
        return True

    def _restart(self, kind: str) -> None:
        """A file was truncated or replaced: forget what came from files of its kind and read them all again."""
        families = ("metrics", "console") if kind in ("metrics", "console") else (kind,)
        for (family, _path), (_attempt, reader) in self._readers.items():
            if family in families:
                reader.reset()
        if "metrics" in families:
            self.store.clear()
            self._throughput.reset()
            self._rollout_done.clear()
        elif kind == "gradnorms":
            self.gradnorms.clear()
        elif kind == "system":
            self.system.clear()

    def _add_metrics(self, attempt: int, live: bool):
        return lambda lines: self.store.add_lines(lines, attempt, live=live)

    def _add_console(self, attempt: int, live: bool):
        def add(lines) -> int:
            now = time.time() if live else None
            count = 0
            for line in lines:
                parsed = parse_console_line(line)
                if parsed:
                    self.store.add_record(parsed[0], parsed[1], attempt, now)
                    count += 1
            return count

        return add

    def _poll_status(self) -> None:
        for _attempt, directory in reversed(self.attempts):
            path = self.access.join(directory, STATUS_FILE)
            stat = self.access.stat(path)
            if stat is None:
                continue
            stamp = (path, stat.size, stat.mtime, stat.identity)
            if stamp == self._status_stamp:
                return
            try:
                status = json.loads(self.access.read(path, 0, 1024 * 1024) or b"null")
            except ValueError:
                return  # caught in the middle of a write: read it next time
            if isinstance(status, dict):
                self.status = status
                self._status_stamp = stamp
            return

    def _poll_log(self, summary: RunPoll) -> None:
        paths = self.log_paths()
        if not paths:
            return
        latest = paths[-1][1]
        if self.log is None or self.log.path != latest:
            self.log = LogTail(self.access, latest, max_lines=self.log_lines)
        result = self.log.poll()
        summary.log_lines += len(result.lines)
        summary.bytes_read += result.bytes_read

    def _poll_rollout_stats(self) -> None:
        if any(self.store.has(name) for name in NATIVE_REWARD_STD):
            return
        files = self.rollout_files()
        for step, path in files.items():
            if path in self._rollout_done:
                continue
            stat = self.access.stat(path)
            if stat is None:
                continue
            # verl writes a step's file in one go; a size seen twice means it is complete
            if self._rollout_sizes.get(path) != stat.size:
                self._rollout_sizes[path] = stat.size
                continue
            self._rollout_done.add(path)
            stats = reward_stats_by_step(read_rollouts(self.access, [path]))
            for row_step, values in stats.items():
                self.store.add_record(row_step if row_step >= 0 else step, values, attempt=0)

    # -- what the page asks for ----------------------------------------------------------------------------------
    def log_paths(self) -> list[tuple[int, str]]:
        """Return [(attempt, stdout.log path)] of the attempts that have a log, oldest first."""
        found = []
        for attempt, directory in self.attempts:
            path = self.access.join(directory, LOG_FILE)
            if self.access.stat(path) is not None:
                found.append((attempt, path))
        return found

    def rollout_files(self) -> dict[int, str]:
        """Return {step: path} of the rollout dumps of all attempts (a later attempt wins a step)."""
        return rollout_files(self.access, [self.access.join(d, ROLLOUT_DIR) for _a, d in self.attempts])

    def read_rollouts(self, steps, max_rows: int = 20_000) -> list[dict]:
        """Return the normalized samples of the given steps."""
        files = self.rollout_files()
        return read_rollouts(self.access, [files[s] for s in sorted(steps) if s in files], max_rows=max_rows)

    def first_error(self, path: str | None = None):
        """Return the ErrorReport of the latest attempt's log (or the given log), or None."""
        if path is None:
            paths = self.log_paths()
            if not paths:
                return None
            path = paths[-1][1]
        return first_error_in_file(self.access, path)

    def download(self, path: str | None = None):
        """Return the LogDownload of the latest attempt's log (or the given log), or None."""
        if path is None:
            paths = self.log_paths()
            if not paths:
                return None
            path = paths[-1][1]
        return log_download(self.access, path)

    def metrics_mtime(self) -> float | None:
        """Return the latest modification time of the metrics files (local files only; None remotely)."""
        times = [
            reader.mtime
            for (kind, _path), (_a, reader) in self._readers.items()
            if kind in ("metrics", "console") and reader.mtime is not None
        ]
        return max(times) if times else None

    def progress(
        self,
        total_steps: int | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
        steps_per_epoch: int | None = None,
    ) -> Progress:
        """Return step / total / epoch / elapsed (up to `ended_at` for a run that has stopped) / ETA."""
        return run_progress(
            self.store,
            self.status,
            total_steps=total_steps,
            started_at=started_at,
            now=ended_at,
            file_mtime=self.metrics_mtime(),
            steps_per_epoch=steps_per_epoch,
        )

    def health(
        self, *, process_alive: bool | None, running: bool, reward_bounds: tuple[float, float] | None = None, **rules
    ) -> list[HealthWarning]:
        """Return the watchdog's warnings for this run (see `watchdog.check_health` for the rule settings)."""
        info = self.progress()
        return check_health(
            self.store,
            last_step_time=info.last_step_time,
            process_alive=process_alive,
            running=running,
            status=self.status,
            reward_bounds=reward_bounds,
            **rules,
        )

    def canonical_names(self) -> dict[str, str]:
        """Return {canonical name: raw name} for this run."""
        return resolve(self.store.names())
