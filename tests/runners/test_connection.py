"""The connection test and server preparation against a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from platform_core.connections import add_connection, get_connection, trust_host_key
from platform_core.runners.remote_setup import test_connection as check_connection
from platform_core.runners.ssh import open_session

pytestmark = pytest.mark.ssh


def test_password_profile_passes_every_step(platform, sshd, ssh_profile):
    report = check_connection(platform, ssh_profile)
    steps = {s.name: s for s in report.steps}
    assert report.ok, report.to_dict()
    assert steps["connect"].ok and steps["workdir"].ok and steps["python"].ok
    assert (sshd.home / "verl_jobs" / "datasets").is_dir() and (sshd.home / "verl_jobs" / "outputs").is_dir()
    assert report.versions["python"].startswith("3.")
    assert not steps["gpus"].ok and "nvidia-smi" in steps["gpus"].detail  # this machine has no GPU


def test_key_file_and_pasted_key_profiles_connect(platform, sshd):
    add_connection(platform, "byfile", "127.0.0.1", sshd.user, port=sshd.port, key_path=str(sshd.client_key))
    add_connection(platform, "pasted", "127.0.0.1", sshd.user, port=sshd.port, private_key=sshd.client_key.read_text())
    for name in ("byfile", "pasted"):
        trust_host_key(platform, name, sshd.host_key_line())
        session = open_session(platform, name)
        assert session.check(["id", "-un"], "id").strip() == sshd.user
        session.close()


def test_wrong_password_fails_fast_with_a_clear_message(platform, sshd):
    add_connection(platform, "bad", "127.0.0.1", sshd.user, port=sshd.port, password="wrong-password")
    trust_host_key(platform, "bad", sshd.host_key_line())
    started = time.monotonic()
    report = check_connection(platform, "bad")
    assert time.monotonic() - started < 8
    assert not report.ok
    assert "Authentication failed" in report.steps[0].detail
    assert "wrong-password" not in str(report.to_dict())


def test_closed_port_fails_fast(platform):
    from tests_helpers import closed_port

    add_connection(platform, "closed", "127.0.0.1", "nobody", port=closed_port(), password="x")
    started = time.monotonic()
    report = check_connection(platform, "closed")
    assert time.monotonic() - started < 5
    assert "connection refused" in report.steps[0].detail


def test_unknown_host_key_is_shown_then_trusted_on_request(platform, sshd):
    add_connection(platform, "new", "127.0.0.1", sshd.user, port=sshd.port, password=sshd.password)
    report = check_connection(platform, "new")
    assert not report.ok and report.unknown_host_key
    assert report.unknown_host_key["fingerprint"].startswith("ssh-ed25519 SHA256:")
    assert "not trusted yet" in report.steps[0].detail
    assert get_connection(platform, "new")["host_key"] is None
    trusted = check_connection(platform, "new", accept_host_key=True)
    assert trusted.steps[0].ok
    assert get_connection(platform, "new")["host_key"] == sshd.host_key_line()


def test_changed_host_key_is_refused(platform, sshd, tmp_path):
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    add_connection(platform, "mitm", "127.0.0.1", sshd.user, port=sshd.port, password=sshd.password)
    trust_host_key(platform, "mitm", " ".join(other.with_suffix(".pub").read_text().split()[:2]))
    report = check_connection(platform, "mitm")
    assert not report.ok and "CHANGED" in report.steps[0].detail


def test_prepare_server_installs_into_a_venv_and_runs_the_env_check(platform, sshd, ssh_profile, tmp_path):
    """The real mechanism (venv creation, pip over SSH, streamed log, envcheck) with a small requirements file:
    requirements-gpu.txt itself needs CUDA wheels, which this machine cannot run."""
    from pathlib import Path

    from platform_core.runners.remote_tasks import start_prepare_server
    from platform_core.tasks import wait_task

    requirements = tmp_path / "req.txt"
    requirements.write_text("six\n")
    task_id = start_prepare_server(platform, ssh_profile, str(requirements))
    task = wait_task(platform, task_id, timeout_s=300)
    log = Path(task["log_path"]).read_text()
    # The install worked, the check did not: the task fails (no green "Done") and names the failing checks.
    assert task["state"] == "failed", log
    assert (sshd.home / "verl_jobs" / ".venv" / "bin" / "python").exists()
    assert "Successfully installed six" in log or "Requirement already satisfied: six" in log
    assert "✗ torch: not installed" in log  # the training check ran there and reported honestly
    assert "training environment check failed" in task["error"]
    assert "torch (not installed)" in task["error"] and "verl (not installed)" in task["error"]
    assert "flash_attn" not in task["error"]  # optional checks are not blamed
    assert sshd.password not in task["error"] + log
    # The CLI says so too, and exits 1 (the venv exists now, so this run is quick).
    import os
    import subprocess
    import sys

    env = {**os.environ, "PLATFORM_HOME": str(platform.workspace.root)}
    cli = subprocess.run(
        [sys.executable, "-m", "platform_core", "connection", "prepare", ssh_profile]
        + ["--requirements", str(requirements), "--wait"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "failed: " in cli.stdout and "torch (not installed)" in cli.stdout


def test_transfer_errors_name_the_likely_cause():
    """What paramiko raises when the server's disk fills up, or the directory is not writable, is explained."""
    from platform_core.runners.ssh import _describe_transfer_error

    for exc in (
        OSError(28, "No space left on device"),
        OSError("size mismatch in put!  0 != 1024"),
        OSError("Failure"),
    ):
        assert "the remote disk may be full" in _describe_transfer_error(exc, "/w/d.parquet", "gpu1")
    denied = _describe_transfer_error(PermissionError(13, "Permission denied"), "/w/d.parquet", "gpu1")
    assert "permission denied" in denied and "/w/d.parquet" in denied
