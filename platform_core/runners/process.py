"""Local processes that outlive the app: started in their own session, found again by pid, stopped as a group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from platform_core.workspace import REPO_ROOT


def platform_python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return an environment for child Python processes that can import platform_core from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if extra:
        env.update(extra)
    return env


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start argv in a new session (its own process group) with stdout/stderr appended to log_path; return its pid.

    The child does not belong to the caller's process group or terminal, so it keeps running when the app (or the
    browser) goes away. The caller reaps nothing: the child is re-parented to init when its parent exits.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        proc = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            close_fds=True,
        )
    _forget_child(proc)
    return proc.pid


def _forget_child(proc: subprocess.Popen) -> None:
    # Popen keeps the child in a module list to reap it later; a detached child must not be waited for by us,
    # but a zombie would look alive to pid checks, so reap it from a thread when it ends.
    import threading

    threading.Thread(target=proc.wait, daemon=True).start()


START_TIME_TOLERANCE_S = 1.0


def pid_alive(pid: int | None, started_at: float | None = None) -> bool:
    """Return True if a process with this pid exists and is not a zombie.

    With `started_at` (what `process_started_at` said at launch), a process with the same pid but another start
    time is a different process that reuses the number: the original is dead.
    """
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or abs(process.create_time() - started_at) <= START_TIME_TOLERANCE_S
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def process_started_at(pid: int) -> float | None:
    """Return the start time of a process (to tell a reused pid from the original), or None if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def kill_tree(pid: int, grace_s: float = 10.0) -> bool:
    """Stop a process, its group and all its descendants (some trainers start their own sessions, e.g. Ray)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return True
    groups = {os.getpgid(p.pid) for p in procs if _alive(p)} if procs else set()
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    return _reap(procs, grace_s)


def _reap(procs: list[psutil.Process], grace_s: float) -> bool:
    """Wait up to `grace_s` for signalled processes, SIGKILL the rest; True once none is alive."""
    _gone, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(alive, timeout=3)
    return not [p for p in alive if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def orphan_group(pgid: int | None, since: float | None, window_s: float = 600) -> list[psutil.Process]:
    """The live members of a trainer's process group whose supervisor is gone, when the group is still that run's:
    its leader (pid == pgid) started within `window_s` after the supervisor (`since`), and no member before it.
    A pgid reused by another program (after a reboot) gives []."""
    if not pgid or since is None:
        return []
    members = [p for p in _group_members(int(pgid)) if _alive(p)]
    try:
        starts = {p.pid: p.create_time() for p in members}
    except psutil.NoSuchProcess:
        return []
    leader = starts.get(int(pgid))
    if leader is not None and not since - 2 <= leader <= since + window_s:
        return []
    return [p for p in members if starts[p.pid] >= since - 2]


def kill_processes(members: list[psutil.Process], grace_s: float = 10.0) -> bool:
    """Terminate, then kill, the given processes; True once none is alive."""
    for proc in members:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    return _reap(members, grace_s)


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return members


def python_executable() -> str:
    """The interpreter of this environment (children use the same venv)."""
    return sys.executable
