"""Checking and preparing a remote GPU server: the connection test and the "Prepare server" install."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from platform_core.connections import REMOTE_AREAS, get_connection
from platform_core.context import Platform
from platform_core.errors import RemoteError
from platform_core.runners.ssh import SSHSession, UnknownHostKey, open_session
from platform_core.workspace import REPO_ROOT

PLATFORM_DIR = ".platform"  # inside the remote work directory: files the platform ships there
CONDA_BASES = (
    "$HOME/miniconda3",
    "$HOME/anaconda3",
    "$HOME/miniforge3",
    "$HOME/mambaforge",
    "/opt/conda",
    "/root/miniconda3",
    "/usr/local/miniconda3",
)
VERSIONS_SNIPPET = (
    "import json, platform\n"
    "out = {'python': platform.python_version()}\n"
    "for name in ('torch', 'verl', 'transformers', 'vllm', 'ray'):\n"
    "    try:\n"
    "        mod = __import__(name)\n"
    "        out[name] = getattr(mod, '__version__', 'installed')\n"
    "        if name == 'torch':\n"
    "            out['cuda'] = bool(mod.cuda.is_available())\n"
    "            out['gpus'] = mod.cuda.device_count() if out['cuda'] else 0\n"
    "    except Exception as exc:\n"
    "        out[name] = None\n"
    "print(json.dumps(out))\n"
)


def python_locator_script(profile: dict[str, Any]) -> str:
    """Return a shell snippet that prints the remote Python executable for a profile (or fails with a message)."""
    if profile.get("python_path"):
        path = profile["python_path"]
        word = '"$HOME"/' + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)
        return f'p={word}; [ -x "$p" ] && {{ printf %s "$p"; exit 0; }}; echo "python path $p is not executable" >&2; exit 3'
    env = profile.get("conda_env")
    if env:
        env_q = shlex.quote(env)
        bases = " ".join(f'"{b}"' for b in CONDA_BASES)
        return (
            f'for b in "$(conda info --base 2>/dev/null)" {bases}; do '
            f'[ -n "$b" ] && [ -x "$b/envs/"{env_q}"/bin/python" ] && {{ printf %s "$b/envs/"{env_q}"/bin/python"; exit 0; }}; '
            f'done; echo "conda environment "{env_q}" not found" >&2; exit 3'
        )
    venv = (
        f'"$HOME"/{shlex.quote(profile["workdir"][2:])}'
        if profile["workdir"].startswith("~/")
        else shlex.quote(profile["workdir"])
    )
    return (
        f'p={venv}/.venv/bin/python; [ -x "$p" ] && {{ printf %s "$p"; exit 0; }}; '
        'command -v python3 >/dev/null && { command -v python3 | tr -d "\\n"; exit 0; }; '
        'echo "no python3 on PATH" >&2; exit 3'
    )


def remote_python(session: SSHSession) -> str:
    """Return the absolute path of the profile's Python on the server."""
    out = session.check(["bash", "-c", python_locator_script(session.profile)], "locating Python")
    return out.strip()


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class ConnectionReport:
    """The outcome of "Test connection": one step per check, in order; later steps are skipped after a failure."""

    connection: str
    ok: bool = False
    steps: list[Step] = field(default_factory=list)
    unknown_host_key: dict[str, str] | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    nvidia_smi: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def test_connection(platform: Platform, name: str, accept_host_key: bool = False) -> ConnectionReport:
    """Check reachability and authentication, the work directory, the Python stack and the GPUs of a profile."""
    profile = get_connection(platform, name)
    report = ConnectionReport(connection=profile["name"])
    started = time.monotonic()
    try:
        session = open_session(platform, profile["id"], accept_host_key=accept_host_key)
    except UnknownHostKey as exc:
        report.unknown_host_key = {"host_key": exc.host_key, "fingerprint": exc.fingerprint}
        report.steps.append(Step("connect", False, str(exc), time.monotonic() - started))
        return report
    except RemoteError as exc:
        report.steps.append(Step("connect", False, str(exc), time.monotonic() - started))
        return report
    report.steps.append(
        Step("connect", True, f"connected and authenticated as {session.describe()}", time.monotonic() - started)
    )
    try:
        _check_workdir(session, report)
        if report.steps[-1].ok:
            _check_python(session, report)
            _check_gpus(session, report)
    except RemoteError as exc:
        report.steps.append(Step("remote", False, str(exc)))
    finally:
        session.close()
    report.ok = all(step.ok for step in report.steps if step.name != "gpus")
    return report


def _check_workdir(session: SSHSession, report: ConnectionReport) -> None:
    started = time.monotonic()
    workdir = session.workdir()
    dirs = [workdir] + [f"{workdir}/{a}" for a in REMOTE_AREAS] + [f"{workdir}/{PLATFORM_DIR}"]
    probe = f"{workdir}/.write-test-{int(time.time())}"
    script = f"mkdir -p -- {' '.join(shlex.quote(d) for d in dirs)} && touch -- {shlex.quote(probe)} && rm -f -- {shlex.quote(probe)}"
    result = session.run(["bash", "-c", script], timeout=20)
    if result.exited == 0:
        report.steps.append(Step("workdir", True, f"{workdir} exists and is writable", time.monotonic() - started))
    else:
        report.steps.append(
            Step(
                "workdir",
                False,
                f"{workdir}: {result.stderr.strip() or 'cannot create or write'}",
                time.monotonic() - started,
            )
        )


def _check_python(session: SSHSession, report: ConnectionReport) -> None:
    started = time.monotonic()
    try:
        python = remote_python(session)
    except RemoteError as exc:
        report.steps.append(Step("python", False, str(exc), time.monotonic() - started))
        return
    result = session.run([python, "-c", VERSIONS_SNIPPET], timeout=120)
    if result.exited != 0:
        report.steps.append(
            Step("python", False, f"{python}: {result.stderr.strip()[-300:]}", time.monotonic() - started)
        )
        return
    versions = json.loads(result.stdout.strip().splitlines()[-1])
    report.versions = {"python_path": python, **versions}
    missing = [k for k in ("torch", "verl") if not versions.get(k)]
    detail = ", ".join(f"{k} {v}" for k, v in versions.items() if v not in (None, False)) + (
        f"; missing: {', '.join(missing)} (use Prepare server)" if missing else ""
    )
    report.steps.append(Step("python", True, f"{python}: {detail}", time.monotonic() - started))


def _check_gpus(session: SSHSession, report: ConnectionReport) -> None:
    started = time.monotonic()
    result = session.run(
        [
            "bash",
            "-c",
            "command -v nvidia-smi >/dev/null || { echo 'nvidia-smi not found' >&2; exit 127; }; nvidia-smi",
        ],
        timeout=30,
    )
    if result.exited == 0:
        report.nvidia_smi = result.stdout
        report.steps.append(Step("gpus", True, "nvidia-smi answered", time.monotonic() - started))
    else:
        report.nvidia_smi = result.stderr.strip()
        report.steps.append(
            Step(
                "gpus",
                False,
                f"no NVIDIA GPU usable: {result.stderr.strip() or 'nvidia-smi failed'}",
                time.monotonic() - started,
            )
        )


def prepare_server(platform: Platform, name: str, log, requirements_file: Path | None = None) -> dict[str, Any]:
    """Install the training stack into the profile's environment over SSH, then run the training env check there.

    Creates the environment when missing: a conda env when the profile names one (needs conda on the server),
    otherwise a venv at <workdir>/.venv. `log` receives every output line as it arrives. Returns the check result.
    """
    requirements_file = requirements_file or REPO_ROOT / "requirements-gpu.txt"
    session = open_session(platform, name)
    try:
        profile = session.profile
        kit = f"{session.workdir()}/{PLATFORM_DIR}"
        session.mkdirs(kit)
        session.put_atomic(str(requirements_file), f"{kit}/requirements-gpu.txt")
        session.put_atomic(str(REPO_ROOT / "platform_core" / "envcheck.py"), f"{kit}/envcheck.py")
        python = _ensure_environment(session, profile, log)
        log(f"$ {python} -m pip install -r {kit}/requirements-gpu.txt")
        stream = _LineWriter(log)
        result = session.run(
            [python, "-m", "pip", "install", "--progress-bar", "off", "-r", f"{kit}/requirements-gpu.txt"],
            timeout=3 * 3600,
            out_stream=stream,
            err_stream=stream,
        )
        stream.flush()
        if result.exited != 0:
            raise RemoteError(f"pip install failed on {session.describe()} (exit {result.exited}); see the log above")
        log(f"$ {python} {kit}/envcheck.py --mode training")
        check = session.run([python, f"{kit}/envcheck.py", "--mode", "training", "--json"], timeout=300)
        outcome = json.loads(check.stdout.strip().splitlines()[-1]) if check.stdout.strip() else {"passed": False}
        from platform_core.envcheck import format_checks

        for line in format_checks(outcome.get("checks", [])).splitlines():
            log(line)
        return {"python": python, **outcome}
    finally:
        session.close()


def _ensure_environment(session: SSHSession, profile: dict[str, Any], log) -> str:
    try:
        return (
            remote_python(session)
            if (profile.get("python_path") or profile.get("conda_env"))
            else _ensure_venv(session, log)
        )
    except RemoteError:
        if not profile.get("conda_env"):
            raise
    env = profile["conda_env"]
    log(f"$ conda create -y -n {env} python=3.11")
    stream = _LineWriter(log)
    script = (
        f'source "$(conda info --base)/etc/profile.d/conda.sh" && conda create -y -n {shlex.quote(env)} python=3.11'
    )
    result = session.run(["bash", "-lc", script], timeout=1800, out_stream=stream, err_stream=stream)
    stream.flush()
    if result.exited != 0:
        raise RemoteError(f"creating conda environment {env!r} failed (is conda installed on the server?)")
    return remote_python(session)


def _ensure_venv(session: SSHSession, log) -> str:
    venv = f"{session.workdir()}/.venv"
    if session.run(["test", "-x", f"{venv}/bin/python"], timeout=10).exited != 0:
        log(f"$ python3 -m venv {venv}")
        session.check(["python3", "-m", "venv", venv], "creating the virtual environment", timeout=300)
    return f"{venv}/bin/python"


class _LineWriter:
    """A file-like sink for Fabric's output streams that hands complete lines to a callback."""

    def __init__(self, callback):
        self.callback = callback
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.callback(line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            self.callback(self.buffer)
            self.buffer = ""
