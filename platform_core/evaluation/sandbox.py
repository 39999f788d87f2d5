"""Running generated code against reference tests: a separate process with limits, no network, a scratch directory,
killed (with everything it started) on timeout.

Layers, strongest first (the sandbox probes them once and uses the strongest that works on this machine; its
`isolation` attribute says which):

- "uid+netns+pidns" (the evaluator runs as root): a new network namespace (only a down loopback inside), a new PID
  namespace whose init is the program (when it ends, the kernel kills and reaps everything it started, even a
  setsid'd daemon or a fork bomb), and a fresh, unused uid per concurrent program, so RLIMIT_NPROC really caps its
  processes, it can write only its scratch directory, and a final kill(-1) as that uid leaves nothing behind;
- "netns+pidns": root, but no Python interpreter readable by another uid (e.g. the only one lives under /root):
  the namespaces, same uid;
- "userns+netns+pidns" (not root): an unprivileged user namespace holding the other two, where the kernel allows;
- "rlimits": none of those: limits, the audit guard and the process-group kill only.

Always: RLIMIT_AS / CPU / NPROC / FSIZE / NOFILE / CORE=0, a wall-clock timeout with `killpg(SIGKILL)` of the
program's session (`start_new_session=True`), `python -I -S -B` (no site, no environment), and an audit hook that
refuses sockets, new processes and ctypes (a second layer, not a boundary on its own). The limits are set in a fresh
launcher process, never in a `preexec_fn`, so the evaluator may have threads.

    with Sandbox(timeout_s=3) as sandbox:
        sandbox.run_many(["assert 1 + 1 == 2", "while True: pass"])   # [passed, timeout]
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psutil

CHILD_SOURCE = Path(__file__).with_name("sandbox_child.py")
MODES = ("uid+netns+pidns", "netns+pidns", "userns+netns+pidns", "rlimits")
_PROBE = "import json, re, collections, math\nprint('sandbox-ok')\n"
PROBE_TIMEOUT_S = 20.0


@dataclass
class ExecutionResult:
    """The outcome of one program: passed (exit 0), failed, timeout, or error (the sandbox itself failed)."""

    status: str
    returncode: int | None
    seconds: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _world_executable(path: str) -> bool:
    """True when any user can run the file (it and every directory above it allow others to enter/read)."""
    real = Path(os.path.realpath(path))
    try:
        mode = real.stat().st_mode
    except OSError:
        return False
    if not (mode & stat.S_IXOTH and mode & stat.S_IROTH):
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def _shared_interpreter() -> str | None:
    """An interpreter other uids can run: this one if it is reachable, else the system's."""
    candidates = [sys.executable, getattr(sys, "_base_executable", sys.executable), "/usr/bin/python3"]
    candidates += ["/usr/local/bin/python3", shutil.which("python3") or ""]
    for candidate in candidates:
        if candidate and os.path.exists(candidate) and _world_executable(candidate):
            return os.path.realpath(candidate)
    return None


def _fresh_uids(count: int) -> list[int]:
    """Pick `count` consecutive uids that no account and no process uses."""
    import pwd

    used = {p.info["uids"].real for p in psutil.process_iter(["uids"]) if p.info.get("uids")}
    for _attempt in range(100):
        base = random.randrange(1_000_000, 2_000_000_000, 1000)
        uids = list(range(base, base + count))
        if used.isdisjoint(uids) and not any(_has_account(pwd, uid) for uid in uids):
            return uids
    raise RuntimeError("no free uid range for the sandbox")


def _has_account(pwd, uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def processes_of(uid: int) -> list[int]:
    """Pids of the live processes of a uid (from /proc: the owner of /proc/<pid> is its effective uid; zombies,
    already dead and waiting for init to reap them, are left out)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        end = data.rfind(b")")
        if data[end + 2 : end + 3] != b"Z":
            pids.append(int(entry))
    return pids


def kill_uid(uid: int, child: Path = CHILD_SOURCE) -> int:
    """Kill every process of a sandbox uid, repeating until none is left; return how many rounds it took."""
    for rounds in range(20):
        if not processes_of(uid):
            return rounds
        subprocess.run(  # noqa: S603 - an argument list
            [os.path.realpath(sys.executable), "-I", "-S", "-B", str(child), "killall", str(uid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        time.sleep(0.01)
    raise RuntimeError(f"processes of sandbox uid {uid} survive repeated kills")


@dataclass
class _Running:
    index: int
    slot: int
    proc: subprocess.Popen
    started: float
    scratch: Path
    stderr_path: Path
    timed_out: bool = False


class Sandbox:
    """Runs Python programs (stdlib only) under the limits above, `workers` at a time, from a single thread."""

    def __init__(
        self,
        timeout_s: float = 5.0,
        memory_mb: int = 1024,
        max_processes: int = 16,
        max_file_mb: int = 16,
        max_open_files: int = 64,
        workers: int | None = None,
        audit_guard: bool = True,
        isolation: str = "auto",
    ):
        self.timeout_s = float(timeout_s)
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self.audit_guard = audit_guard
        cpu = int(math.ceil(self.timeout_s)) + 1
        self.limits = {
            "RLIMIT_AS": int(memory_mb) * 1024 * 1024,
            "RLIMIT_CPU": cpu,
            "RLIMIT_NPROC": int(max_processes),
            "RLIMIT_FSIZE": int(max_file_mb) * 1024 * 1024,
            "RLIMIT_NOFILE": int(max_open_files),
            "RLIMIT_CORE": 0,
        }
        self.root = Path(tempfile.mkdtemp(prefix="platform-sandbox-"))
        os.chmod(self.root, 0o755)
        self.child = self.root / "sandbox_child.py"
        shutil.copyfile(CHILD_SOURCE, self.child)
        os.chmod(self.child, 0o644)
        self.uids: list[int | None] = [None] * self.workers
        self.python = sys.executable
        self.isolation = self._choose(isolation)

    # -- setup -------------------------------------------------------------------------------------------------
    def _configure(self, mode: str) -> bool:
        if mode in ("uid+netns+pidns", "netns+pidns") and os.geteuid() != 0:
            return False
        if mode == "uid+netns+pidns":
            shared = _shared_interpreter()
            if shared is None:
                return False
            self.python = shared
            self.uids = list(_fresh_uids(self.workers))
        else:
            self.python = os.path.realpath(sys.executable)
            self.uids = [None] * self.workers
        self.mode = mode
        return True

    def _choose(self, requested: str) -> str:
        modes = MODES if requested == "auto" else (requested,)
        reasons = []
        for mode in modes:
            if not self._configure(mode):
                reasons.append(f"{mode}: not available")
                continue
            probe = self._run_all([_PROBE], probe=True)[0]
            if probe.passed:
                return mode
            reasons.append(f"{mode}: {probe.detail.strip()[-200:]}")
        raise RuntimeError("no sandbox mode works here: " + "; ".join(reasons))

    def close(self) -> None:
        """Remove the sandbox's files (and kill anything left under its uids)."""
        for uid in self.uids:
            if uid is not None:
                kill_uid(uid, self.child)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running -----------------------------------------------------------------------------------------------
    def run(self, program: str) -> ExecutionResult:
        """Run one program; see run_many."""
        return self.run_many([program])[0]

    def run_many(self, programs: list[str]) -> list[ExecutionResult]:
        """Run programs, `workers` at a time; return one result per program, in order."""
        return self._run_all(programs)

    def _start(self, index: int, slot: int, program: str, probe: bool) -> _Running:
        scratch = Path(tempfile.mkdtemp(prefix=f"run-{index}-", dir=self.root))
        program_path = scratch / "program.py"
        program_path.write_text(program, encoding="utf-8")
        uid = self.uids[slot]
        if uid is not None:
            os.chown(scratch, uid, uid)
            os.chown(program_path, uid, uid)
        os.chmod(scratch, 0o700)
        netns = {"uid+netns+pidns": "root", "netns+pidns": "root", "userns+netns+pidns": "userns"}.get(self.mode)
        limits = ",".join(f"{name}={value}" for name, value in self.limits.items())
        guard = "1" if self.audit_guard and not probe else "0"
        config = [netns or "-", "-" if uid is None else str(uid), str(scratch), self.python, str(program_path), guard]
        stderr_path = self.root / f"stderr-{index}.txt"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(  # noqa: S603 - an argument list
                [os.path.realpath(sys.executable), "-I", "-S", "-B", str(self.child), "launch", *config, limits],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if probe else subprocess.DEVNULL,
                stderr=err,
                cwd=str(self.root),
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                close_fds=True,
            )
        return _Running(index, slot, proc, time.monotonic(), scratch, stderr_path)

    def _finish(self, run: _Running, probe: bool) -> ExecutionResult:
        seconds = time.monotonic() - run.started
        rc = run.proc.returncode
        try:
            os.killpg(run.proc.pid, signal.SIGKILL)  # whatever it left in its session
        except (ProcessLookupError, PermissionError):
            pass
        uid = self.uids[run.slot]
        if uid is not None:
            kill_uid(uid, self.child)
        detail = ""
        try:
            with open(run.stderr_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 2000))
                detail = handle.read().decode("utf-8", errors="replace")
        except OSError:
            pass
        if probe and run.proc.stdout is not None:
            out = run.proc.stdout.read().decode(errors="replace")
            if "sandbox-ok" not in out:
                rc = rc or 1
        if run.proc.stdout is not None:
            run.proc.stdout.close()
        run.stderr_path.unlink(missing_ok=True)
        shutil.rmtree(run.scratch, ignore_errors=True)
        if run.timed_out or rc == -signal.SIGXCPU:
            return ExecutionResult("timeout", rc, seconds, detail or f"timed out after {self.timeout_s:g} s")
        if rc == 97 and "sandbox setup failed" in detail:
            return ExecutionResult("error", rc, seconds, detail)
        return ExecutionResult("passed" if rc == 0 else "failed", rc, seconds, detail)

    def _run_all(self, programs: list[str], probe: bool = False) -> list[ExecutionResult]:
        results: list[ExecutionResult | None] = [None] * len(programs)
        queue = deque(enumerate(programs))
        free = deque(range(self.workers))
        running: list[_Running] = []
        # The probe only starts an interpreter, but on a loaded machine that can take longer than a program's
        # budget; a slow probe must not demote the sandbox to a weaker mode.
        wall_limit = max(self.timeout_s, PROBE_TIMEOUT_S) if probe else self.timeout_s
        try:
            while queue or running:
                while queue and free:
                    index, program = queue.popleft()
                    running.append(self._start(index, free.popleft(), program, probe))
                time.sleep(0.002)
                now = time.monotonic()
                for run in list(running):
                    if run.proc.poll() is None:
                        if now - run.started <= wall_limit:
                            continue
                        run.timed_out = True
                        try:
                            os.killpg(run.proc.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        run.proc.wait()
                    running.remove(run)
                    results[run.index] = self._finish(run, probe)
                    free.append(run.slot)
        finally:
            for run in running:
                try:
                    os.killpg(run.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                run.proc.wait()
                self._finish(run, probe)
        return [r for r in results if r is not None]
