"""The SSH runner against a real sshd: a CPU SFT run (real verl trainer) launched detached on the "server"
127.0.0.1, its connection cut mid-run, re-attached, finished, with every metric step recorded exactly once.

The "server" is this machine reached over SSH as root (a remote host on another network cannot be reached here);
everything between the platform and the run goes through SSH/SFTP. Stop is checked down to the trainer's process
group, also when the supervisor died without taking it along."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest
from tests_helpers import add_root_profile, wait_for

from platform_core.jobs import service
from platform_core.jobs.service import load_spec_file
from platform_core.monitor.files import RemoteFiles
from platform_core.monitor.run import RunMonitor
from platform_core.runners.ssh import open_session
from platform_core.runners.ssh_runner import SSHRunner

pytestmark = [pytest.mark.slow, pytest.mark.ssh]


def test_sft_on_the_server_survives_a_dropped_connection(demo_platform, sshd, tmp_path):
    workdir = tmp_path / "服务器 dir" / "verl_jobs"  # a space and CJK: every remote path must be quoted
    add_root_profile(demo_platform, sshd, "gpu-lab", workdir)
    spec = load_spec_file(str(demo_platform.workspace.demo / "specs" / "sft.yaml"))
    spec.update(target="ssh:gpu-lab", total_steps=14, save_freq=5, name="remote sft")
    job_id = service.create_job(demo_platform, spec, start=True)
    job = service.get_job(demo_platform, job_id)
    assert job["output_dir"].startswith(str(workdir / "outputs"))

    monitor = RunMonitor(RemoteFiles(open_session(demo_platform, "gpu-lab")), job["output_dir"])
    wait_for(lambda: service.refresh_job(demo_platform, job_id)["step"] >= 3, 900, 1, "step 3 on the server")
    monitor.poll()
    run = demo_platform.store.get("runs", job["current_run_id"])
    assert run["host"] == "127.0.0.1"
    supervisor = psutil.Process(run["pid"])
    assert supervisor.ppid() == 1 or supervisor.parent().name() != "sshd"  # detached from the SSH session

    sshd.drop_connections()  # the link goes away mid-run (server side kill of every session)
    assert supervisor.is_running()
    wait_for(lambda: service.refresh_job(demo_platform, job_id)["step"] >= 6, 900, 1, "progress after the drop")

    job = None

    def finished():
        nonlocal job
        job = service.refresh_job(demo_platform, job_id)
        try:
            monitor.poll()  # the same monitor re-attaches: its session reconnects by itself
        except Exception:  # noqa: BLE001 - a poll during the drop may fail; the next one reconnects
            pass
        return job["state"] in service.FINAL_STATES

    wait_for(finished, 900, 2, "the remote run to finish")
    assert job["state"] == "completed", job["error"]
    monitor.read_all()
    loss = monitor.store.series("train/loss")
    assert list(loss[0]) == list(range(1, 15))  # every step once, none lost or duplicated
    metrics = (workdir / "outputs").glob("job-*/attempt-1/metrics.jsonl")
    steps = [
        json.loads(line)["step"] for path in metrics for line in path.read_text().splitlines() if "train/loss" in line
    ]
    assert steps == list(range(1, 15))
    status = service.job_status(demo_platform, job_id)
    assert status["checkpoints"] == [5, 10, 14]
    assert demo_platform.store.find_one("checkpoints", "job_id = ?", (job_id,))["location"] == "gpu-lab"
    synced = demo_platform.store.find("dataset_syncs")
    assert synced and synced[0]["status"] == "synced"


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def _launch_sleeper(runner: SSHRunner, attempt: int) -> tuple[dict, int]:
    """A real supervisor on the server whose "trainer" is a shell with two children in its own process group."""
    attempt_dir = f"{runner.workdir()}/outputs/job-1/attempt-{attempt}"
    spec = {"argv": ["bash", "-c", "sleep 600 & sleep 600 & wait"], "env": {}, "sample_every": 60}
    launched = runner.launch(attempt_dir, spec, run_id=attempt)
    run = {"pid": launched["pid"], "run_dir": attempt_dir}
    status = wait_for(
        lambda: (s := runner.read_json(f"{attempt_dir}/supervisor.json")) and s.get("pgid") and s, 60, 0.5, "pgid"
    )
    pgid = status["pgid"]
    wait_for(lambda: len(_group_alive(pgid)) >= 3, 30, 0.2, "the trainer and its two children")
    return run, pgid


def test_stop_verifies_the_trainer_process_group_is_gone(platform, sshd, ssh_profile):
    runner = SSHRunner(platform, ssh_profile)
    try:
        # A normal stop: the supervisor takes its trainer group down, nothing left to report.
        run, pgid = _launch_sleeper(runner, 1)
        assert runner.stop(run) is True and runner.stop_note == ""
        assert _group_alive(pgid) == [] and _gone(run["pid"])
        assert runner.read_json(f"{run['run_dir']}/supervisor.json")["state"] == "stopped"

        # The supervisor dies on its own (OOM killer, kill -9): its trainer group lives on in its own session.
        run, pgid = _launch_sleeper(runner, 2)
        os.kill(run["pid"], signal.SIGKILL)
        wait_for(lambda: _gone(run["pid"]), 10, 0.2, "supervisor gone")
        survivors = _group_alive(pgid)
        assert len(survivors) >= 3  # what the previous stop() declared gone without looking
        assert runner.stop(run) is True
        assert _group_alive(pgid) == []
        assert f"(group {pgid}) outlived the supervisor and were killed" in runner.stop_note
        assert str(pgid) in runner.stop_note.split("(")[0]
    finally:
        runner.close()


def _gone(pid: int) -> bool:
    """The pid no longer runs (absent, or a zombie nobody reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
