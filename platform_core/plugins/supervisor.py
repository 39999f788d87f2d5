"""The job supervisor: starts one training attempt, watches it, samples the machine, records how it ended.

    python supervisor.py --run-dir ATTEMPT_DIR

reads ATTEMPT_DIR/run.json ({"argv", "env", "unset_env", "cwd", "sample_every"}), starts argv in
its own session with stdout+stderr appended to ATTEMPT_DIR/stdout.log, and keeps ATTEMPT_DIR/supervisor.json up
to date: {"state", "supervisor_pid", "pid", "pgid", "started_at", "ended_at", "exit_code", "reason"}. It samples
GPUs (or CPU/RAM) into system.jsonl. SIGTERM asks it to stop the run: the whole process tree is terminated, then
killed, and the end state is "stopped". An attempt that exits 0 after a pause request is "paused".

Only the standard library is needed (psutil and the sibling sampling module when present), so the platform runs
this same file locally and on a GPU server, where it outlives the SSH connection that started it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import psutil
except ImportError:
    psutil = None

try:
    from sampling import sample_system
except ImportError:
    sample_system = None

try:
    import attention
except ImportError:
    attention = None

TERM_GRACE_S = 15


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def _descendants(pid: int) -> list[int]:
    if psutil is None:
        return []
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_all(pids: list[int], sig: int) -> None:
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except (ProcessLookupError, PermissionError):
            continue
    for group in groups:
        if group == os.getpgid(0):
            continue
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        if psutil is not None:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        else:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                continue
    return alive


def _last_error(log_path: str, max_bytes: int = 65536) -> str:
    """The most telling line near the end of the log: an exception or error line, else the last line."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = line.strip()
        if not text:
            continue
        if any(key in text for key in ("Error", "error:", "Exception", "Killed", "CUDA out of memory", "Traceback")):
            return text[:500]
    return lines[-1].strip()[:500] if lines else ""


def visible_gpu_indices(value: str | None) -> list[int] | None:
    """The GPU indices a run may use, from its CUDA_VISIBLE_DEVICES; None means every GPU of the machine.

    Unset: None. Empty: [] (CUDA sees no GPU). "0,2" / "1, 3": those indices. As CUDA does, the list ends at the
    first entry that is not a valid index ("0,-1,2" is [0]). UUIDs or MIG names ("GPU-8f..", "MIG-..") cannot be
    matched to the sampler's indices: None, every GPU is sampled.
    """
    if value is None:
        return None
    indices: list[int] = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry and not indices:
            continue
        try:
            index = int(entry)
        except ValueError:
            if not indices and entry.upper().startswith(("GPU-", "MIG-")):
                return None
            break
        if index < 0:
            break
        indices.append(index)
    return indices


def _pause_consumed(run_dir: str) -> bool:
    return bool(glob.glob(os.path.join(run_dir, "control.json.consumed*")))


def supervise(run_dir: str) -> int:
    with open(os.path.join(run_dir, "run.json")) as handle:
        spec = json.load(handle)
    status_path = os.path.join(run_dir, "supervisor.json")
    log_path = os.path.join(run_dir, "stdout.log")
    record = {
        "state": "starting",
        "supervisor_pid": os.getpid(),
        "started_at": time.time(),
        "pid": None,
        "pgid": None,
        "ended_at": None,
        "exit_code": None,
        "reason": None,
    }
    _write_json(status_path, record)
    stop = {"requested": False}

    def on_term(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    env = dict(os.environ)
    for name in spec.get("unset_env", []):
        env.pop(name, None)
    env.update(spec.get("env", {}))
    argv = list(spec["argv"])
    with open(log_path, "ab", buffering=0) as log:
        if attention is not None:  # attention "auto" on a GPU: flash-attention 2 only where it works
            argv, env, note = attention.resolve(argv, env)
            if note:
                log.write(f"[platform] {note}\n".encode())
            if stop["requested"]:  # stopped while the probe ran (it may take a while): the trainer never starts
                record.update(state="stopped", reason="stopped by the user", ended_at=time.time())
                _write_json(status_path, record)
                return 0
        log.write(f"[platform] starting: {' '.join(argv[:6])} ...\n".encode())
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=spec.get("cwd") or run_dir,
                start_new_session=True,
            )
        except OSError as exc:
            record.update(state="failed", ended_at=time.time(), exit_code=127, reason=f"cannot start: {exc}")
            _write_json(status_path, record)
            return 1
    record.update(state="running", pid=child.pid, pgid=child.pid)
    _write_json(status_path, record)
    every = float(spec.get("sample_every", 5))
    gpu_indices = visible_gpu_indices(env.get("CUDA_VISIBLE_DEVICES"))  # only the run's GPUs in the GPU panel
    system_path = os.path.join(run_dir, "system.jsonl")
    next_sample = 0.0
    known: set[int] = set()
    while child.poll() is None:
        if stop["requested"]:
            break
        now = time.time()
        if now >= next_sample:
            known.update(_descendants(child.pid))
            if sample_system is not None:
                try:
                    sample = sample_system([child.pid, *sorted(known)], gpu_indices)
                    with open(system_path, "a") as out:
                        out.write(json.dumps(sample) + "\n")
                except Exception as exc:  # noqa: BLE001 - sampling must never take the run down
                    print(f"[platform] sampling failed: {exc}", file=sys.stderr)
            next_sample = now + every
        time.sleep(0.5)
    if stop["requested"] and child.poll() is None:
        victims = [child.pid, *_descendants(child.pid), *known]
        _signal_all(victims, signal.SIGTERM)
        deadline = time.time() + TERM_GRACE_S
        while _alive(victims) and time.time() < deadline:
            time.sleep(0.2)
        _signal_all(_alive(victims), signal.SIGKILL)
        child.wait()
        record.update(state="stopped", reason="stopped by the user")
    else:
        leftovers = _alive(list(known))  # e.g. Ray workers of a finished driver
        if leftovers:
            _signal_all(leftovers, signal.SIGTERM)
            time.sleep(1)
            _signal_all(_alive(leftovers), signal.SIGKILL)
        code = child.returncode
        if stop["requested"]:
            record.update(state="stopped", reason="stopped by the user")
        elif code == 0:
            record.update(state="paused" if _pause_consumed(run_dir) else "completed")
        else:
            reason = f"exit code {code}" if code > 0 else f"killed by signal {-code}"
            detail = _last_error(log_path)
            record.update(state="failed", reason=f"{reason}: {detail}" if detail else reason)
    record.update(exit_code=child.returncode, ended_at=time.time())
    _write_json(status_path, record)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run and watch one training attempt")
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args(argv)
    return supervise(os.path.abspath(args.run_dir))


if __name__ == "__main__":
    sys.exit(main())
