"""Math answers checked with math-verify, in worker processes.

math-verify bounds its parsing and comparison with `signal.alarm()`, which only works on a process's main thread:
called from a thread it raises, and with the timeouts switched off a pathological expression can hang forever. So
checks run in a pool of worker processes (each call on the worker's main thread, its own timeouts active), in chunks;
a chunk that does not come back in time gets its workers killed and its items retried one by one in a fresh pool,
and an item that still hangs counts as wrong.

    pending = start_math_checks([("$\\frac{1}{2}$", "so the answer is 0.5")])   # returns at once
    pending.result()                                                             # [True]
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
from dataclasses import dataclass, field

CHUNK = 32
CHECKS_PER_WORKER = 200  # beyond two workers, one more per this many distinct checks (up to default_workers())
TWO_WORKERS_FROM = 2 * CHUNK  # from two chunks on, a second worker pays for its start-up
ITEM_TIMEOUT_S = 5
START_TIMEOUT_S = 60  # a fresh worker imports sympy and the LaTeX grammar first


def gold_text(reference: str) -> str:
    """Return a reference in a form math-verify parses: bare LaTeX like `x^2+1` is wrapped in $...$."""
    text = reference.strip()
    if "$" in text or "\\boxed" in text or "\\(" in text or "\\[" in text:
        return text
    return f"${text}$"


def check_pairs(pairs: list[tuple[str, str]]) -> list[bool]:
    """Verify (reference, prediction) pairs in this process: `verify(parse(gold), parse(prediction))`, order as
    math-verify requires (gold first). Call it only on a main thread (it uses signal.alarm)."""
    from math_verify import parse, verify

    results = []
    for reference, prediction in pairs:
        try:
            gold = parse(gold_text(reference), parsing_timeout=ITEM_TIMEOUT_S)
            answer = parse(prediction, parsing_timeout=ITEM_TIMEOUT_S)
            results.append(bool(gold and answer and verify(gold, answer, timeout_seconds=ITEM_TIMEOUT_S)))
        except Exception:  # noqa: BLE001 - an answer math-verify cannot handle is a wrong answer, not a crash
            results.append(False)
    return results


def _warm_up() -> None:
    """Import math-verify and the sympy parts its comparisons load lazily (half a second on first use), once per
    worker, while the evaluator computes the other metrics."""
    check_pairs([("$\\sqrt{2}$", "$\\sqrt{3}$"), ("$\\frac{1}{2}$", "$0.5$"), ("$x=2$", "$2$")])


def _new_pool(workers: int) -> futures.ProcessPoolExecutor:
    return futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up
    )


def _kill_pool(pool: futures.ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class PendingChecks:
    """Math checks running in a pool; `result()` waits for them (in submission order)."""

    pairs: list[tuple[str, str]]
    workers: int
    _unique: list[tuple[str, str]] = field(default_factory=list)
    _pool: futures.ProcessPoolExecutor | None = None
    _futures: list[futures.Future] = field(default_factory=list)

    def start(self) -> PendingChecks:
        self._unique = list(dict.fromkeys(self.pairs))  # identical pairs (e.g. repeated samples) are checked once
        if self._unique:
            self._pool = _new_pool(self.workers)
            self._futures = [
                self._pool.submit(check_pairs, self._unique[i : i + CHUNK]) for i in range(0, len(self._unique), CHUNK)
            ]
        return self

    def result(self) -> list[bool]:
        if not self.pairs:
            return []
        verdicts = dict(zip(self._unique, self._checked(), strict=True))
        return [verdicts[pair] for pair in self.pairs]

    def _checked(self) -> list[bool]:
        out: list[bool] = []
        broken = False
        for number, future in enumerate(self._futures):
            chunk = self._unique[number * CHUNK : (number + 1) * CHUNK]
            if broken:
                out.extend(_one_by_one(chunk))
                continue
            try:
                timeout = START_TIMEOUT_S + ITEM_TIMEOUT_S * 2 * len(chunk)
                out.extend(future.result(timeout=timeout))
            except (futures.TimeoutError, futures.process.BrokenProcessPool):
                _kill_pool(self._pool)
                broken = True
                out.extend(_one_by_one(chunk))
        if not broken:
            self._pool.shutdown(wait=True)
        return out


def _one_by_one(pairs: list[tuple[str, str]]) -> list[bool]:
    """Check items each in a fresh single-worker pool with a hard timeout; a hung item is wrong."""
    results = []
    for pair in pairs:
        pool = _new_pool(1)
        try:
            results.append(pool.submit(check_pairs, [pair]).result(timeout=START_TIMEOUT_S + 4 * ITEM_TIMEOUT_S)[0])
            pool.shutdown(wait=True)
        except (futures.TimeoutError, futures.process.BrokenProcessPool):
            _kill_pool(pool)
            results.append(False)
    return results


def worker_count(distinct: int, available: int | None = None) -> int:
    """Workers for `distinct` checks: one for a single chunk, two from two chunks on (each pays 1-2 s of CPU
    importing sympy, but on two cores they start and check in parallel), then one more per CHECKS_PER_WORKER."""
    available = available or default_workers()
    if distinct < TWO_WORKERS_FROM:
        return 1
    return max(1, min(available, max(2, distinct // CHECKS_PER_WORKER)))


def start_math_checks(pairs: list[tuple[str, str]], workers: int | None = None) -> PendingChecks:
    """Start checking (reference, prediction) pairs in worker processes; returns at once."""
    return PendingChecks(pairs, worker_count(len(set(pairs)), workers)).start()
