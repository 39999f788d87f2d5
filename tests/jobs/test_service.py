"""The job service and its CLI without training: export bundles, logs, the CLI contract as a subprocess, SSH jobs
created while the server is unreachable, and the local runner's liveness check against reused pids."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_helpers import closed_port

from platform_core.cli.jobs import write_bundle
from platform_core.errors import InvalidInput
from platform_core.jobs import service
from platform_core.jobs.service import load_spec_file
from platform_core.runners.local import LocalRunner
from platform_core.runners.process import kill_tree, pid_alive, process_started_at, spawn_detached


def demo_spec(platform, algorithm: str, **changes) -> dict:
    return {**load_spec_file(str(platform.workspace.demo / "specs" / f"{algorithm}.yaml")), **changes}


def cli(platform, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_HOME": str(platform.workspace.root)}
    out = subprocess.run(
        [sys.executable, "-m", "platform_core", *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def bash_n(script: Path) -> None:
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# -- export ----------------------------------------------------------------------------------------------------------
def test_exported_sft_bundle_is_self_consistent(demo_platform, tmp_path):
    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft"), validate=False)
    out = tmp_path / "bundle sft"  # a space: run.sh must quote its own directory
    result = cli(demo_platform, "job", "export", str(job_id), "--out", str(out), "--json")
    exported = json.loads(result.stdout)
    script = (out / "run.sh").read_text()
    assert os.access(out / "run.sh", os.X_OK)
    bash_n(out / "run.sh")
    assert 'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"' in script
    # The validation data the real run reads, and the evaluation interval that goes with it.
    val = exported["val_files"]
    assert val and Path(val).is_file() and f"data.val_files={val}" in script
    assert "trainer.test_freq=25" in script and "trainer.test_freq=-1" not in script
    # Every file the script reads is shipped and referenced through $HERE, nothing in the platform's job folder.
    job = service.get_job(demo_platform, job_id)
    assert job["output_dir"] not in script
    for name in ("spec.yaml", "kit/verl_plugin.py", "kit/supervisor.py"):
        assert (out / name).is_file(), name
    assert 'export PYTHONPATH="$HERE"/kit' in script
    assert """'trainer.default_local_dir='"'"''"$HERE_Q"/checkpoints''"'"''""" in script  # Hydra-quoted
    assert "@@" not in script and not any("@@" in p.read_text() for p in out.rglob("*") if p.is_file())
    # The printed script is the bundle's.
    assert cli(demo_platform, "job", "export", str(job_id)).stdout.strip() == script.strip()


def test_bundle_paths_reach_hydra_quoted_wherever_it_is_unpacked(demo_platform, tmp_path):
    """Hydra rejects parentheses, CJK and quotes in a plain value: the overrides that point into the bundle are
    Hydra-quoted at run time, so `job-3 (1)` (a re-downloaded zip) or a Chinese folder name still parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft"), validate=False)
    out = tmp_path / "job-3 (1) 目录 it's"
    cli(demo_platform, "job", "export", str(job_id), "--out", str(out))
    lines = (out / "run.sh").read_text().splitlines()
    here = next(line for line in lines if line.startswith("HERE_Q="))
    word = next(line for line in lines if "trainer.default_local_dir=" in line).strip().removesuffix("\\").strip()
    snippet = f'HERE={shlex.quote(str(out))}\n{here}\nprintf "%s" {word}\n'
    override = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, check=True).stdout
    parsed = OverridesParser.create().parse_override(override)
    assert parsed.key_or_group == "trainer.default_local_dir"
    assert parsed.value() == f"{out}/checkpoints"


def test_exported_trl_grpo_bundle_ships_its_config_and_custom_reward(demo_platform, tmp_path):
    reward_file = tmp_path / "my_reward.py"
    reward_file.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):\n"
        "    return 1.0 if str(ground_truth) in solution_str else 0.0\n"
    )
    spec = demo_spec(
        demo_platform,
        "grpo",
        val_dataset="demo-grpo",
        reward={"reward_type": "custom", "custom_path": str(reward_file)},
    )
    job_id = service.create_job(demo_platform, spec, validate=False)
    job = service.get_job(demo_platform, job_id)
    assert job["engine"] == "trl" and job["state"] == "pending"
    exported = service.export_job(demo_platform, job_id)
    out = tmp_path / "bundle"
    write_bundle(exported, str(out))
    script = (out / "run.sh").read_text()
    bash_n(out / "run.sh")
    # Pending job: the config is in the bundle, not in the job folder that does not exist yet.
    assert not Path(job["output_dir"], "config", "trl_job.json").exists()
    assert '"$HERE"/config/trl_job.json' in script and '"$HERE"/kit/trl_runner.py' in script
    config = json.loads((out / "config" / "trl_job.json").read_text())
    assert config["output_dir"] == "checkpoints" and config["reward"]["custom_path"] == "config/custom_reward.py"
    assert config["val_files"] == exported["val_files"] and Path(config["val_files"]).is_file()
    assert (out / "config" / "custom_reward.py").read_text() == reward_file.read_text()
    assert (out / "config" / "reward.py").is_file() and (out / "kit" / "trl_runner.py").is_file()
    # The shipped reward file is the one the trainer would load: the platform's reward module calls it.
    from platform_core.plugins.reward import score_details

    hit = score_details("it is 42", "42", reward_type="custom", custom_path=str(out / "config/custom_reward.py"))
    assert hit["score"] == 1.0
    # A bundle missing a file says so instead of starting a half-configured run.
    (out / "config" / "trl_job.json").unlink()
    run = subprocess.run(["bash", str(out / "run.sh")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "missing" in run.stderr and "trl_job.json" in run.stderr


# -- CLI contract and logs -------------------------------------------------------------------------------------------
def test_cli_create_status_and_logs_json(demo_platform, tmp_path):
    spec_file = demo_platform.workspace.demo / "specs" / "dpo.yaml"
    job_id = json.loads(cli(demo_platform, "job", "create", "--spec", str(spec_file), "--json").stdout)["id"]
    status = json.loads(cli(demo_platform, "job", "status", str(job_id), "--json").stdout)
    assert status["state"] == "pending" and status["engine"] == "trl" and status["step"] == 0
    assert status["total_steps"] > 0
    assert json.loads(cli(demo_platform, "job", "logs", str(job_id), "--json").stdout)["lines"] == []
    # A log with verl-sized lines: --tail N gives N whole lines, the last ones.
    log = tmp_path / "stdout.log"
    lines = [f"step:{i} " + "x" * 3000 * (i % 3 + 1) for i in range(40)]
    log.write_text("\n".join(lines) + "\n")
    run_id = demo_platform.store.insert(
        "runs", {"job_id": job_id, "attempt": 1, "state": "completed", "run_dir": str(tmp_path), "log_path": str(log)}
    )
    demo_platform.store.update("jobs", job_id, current_run_id=run_id)
    payload = json.loads(cli(demo_platform, "job", "logs", str(job_id), "--tail", "5", "--json").stdout)
    assert payload["lines"] == lines[-5:]
    assert cli(demo_platform, "job", "logs", str(job_id), "--tail", "2").stdout == "\n".join(lines[-2:]) + "\n"


def test_last_lines_reads_back_until_it_has_whole_lines(tmp_path):
    runner = LocalRunner.__new__(LocalRunner)
    path = tmp_path / "log"
    lines = ["a" * 50_000, "b" * 70_000, "short", "c" * 100_000]
    path.write_text("\n".join(lines) + "\n")
    assert service.last_lines(runner, str(path), 3) == lines[-3:]
    assert service.last_lines(runner, str(path), 10) == lines
    path.write_text("\n".join(lines))  # no final newline (a run still writing)
    assert service.last_lines(runner, str(path), 2) == lines[-2:]
    assert service.last_lines(runner, str(tmp_path / "missing"), 2) == []


# -- SSH job created while the server is unreachable ----------------------------------------------------------------
def test_ssh_job_created_offline_uses_the_connections_work_directory(demo_platform):
    from platform_core.connections import add_connection

    add_connection(
        demo_platform, "gpu1", "127.0.0.1", "trainer", port=closed_port(), password="pw", workdir="~/train-here"
    )
    demo_platform.store.set_setting("facts:gpu1", {"gpus": 0, "checked_at": time.time()})
    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft", target="ssh:gpu1"), validate=False)
    job = service.get_job(demo_platform, job_id)
    assert job["output_dir"] == f"~/train-here/outputs/job-{job_id}-demo-sft"
    assert "verl_jobs" not in job["output_dir"]
    # At launch a ~ path becomes the work directory on the machine (a runner that knows its root: the local one).
    runner = LocalRunner(demo_platform)
    assert service._job_dir_on_target(runner, job["output_dir"]) == f"{runner.outputs_root()}/job-{job_id}-demo-sft"
    assert service._job_dir_on_target(runner, "/abs/outputs/job-1-x") == "/abs/outputs/job-1-x"
    with pytest.raises(InvalidInput, match="unreachable"):
        service._outputs_root(_NoWorkdir(demo_platform, "gpu1"))


class _NoWorkdir:
    """A real SSH runner for an unreachable server whose profile lost its work directory."""

    def __new__(cls, platform, name):
        from platform_core.runners.ssh_runner import SSHRunner

        runner = SSHRunner(platform, name)
        runner.profile = {**runner.profile, "workdir": ""}
        runner.planned_outputs_root = lambda: ""
        return runner


# -- local runner liveness -------------------------------------------------------------------------------------------
def test_a_reused_pid_is_not_taken_for_the_run(tmp_path, platform):
    pid = spawn_detached(["sleep", "30"], tmp_path / "sleep.log")
    try:
        started = process_started_at(pid)
        assert started and abs(started - time.time()) < 10
        runner = LocalRunner(platform)
        run = {"pid": pid, "remote": {"pid_started_at": started}}
        assert runner.alive(run) and pid_alive(pid, started)
        # The same pid with another start time is another process: the run is dead, and stop leaves it alone.
        reused = {"pid": pid, "remote": {"pid_started_at": started - 3600}}
        assert not runner.alive(reused)
        assert runner.stop(reused) and pid_alive(pid)
        assert runner.alive({"pid": pid})  # runs recorded before the start time was kept: the pid alone
    finally:
        kill_tree(pid, grace_s=5)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not LocalRunner(platform).alive({"pid": pid, "remote": {"pid_started_at": started}})


def test_stop_kills_a_trainer_that_outlived_its_supervisor(tmp_path, platform):
    """The supervisor died (kill -9, OOM) and its trainer, in its own session, runs on: Stop kills that group, and
    leaves alone a group whose leader is not the run's (a pgid reused by another program)."""
    import json

    since = time.time()
    trainer = spawn_detached(["sh", "-c", "sleep 60 & sleep 60; wait"], tmp_path / "trainer.log")  # own session
    dead = spawn_detached(["true"], tmp_path / "sup.log")
    time.sleep(0.5)
    run_dir = tmp_path / "attempt-1"
    run_dir.mkdir()
    record = {"state": "running", "pid": trainer, "pgid": trainer, "started_at": since}
    runner = LocalRunner(platform)
    run = {"pid": dead, "run_dir": str(run_dir)}
    try:
        # Not the run's: the supervisor's record says it started an hour after this group's leader.
        (run_dir / "supervisor.json").write_text(json.dumps({**record, "started_at": since + 3600}))
        assert runner.stop(run) and pid_alive(trainer) and runner.stop_note == ""
        (run_dir / "supervisor.json").write_text(json.dumps(record))
        assert runner.stop(run)
        assert not pid_alive(trainer) and f"group {trainer}" in runner.stop_note
    finally:
        kill_tree(trainer, grace_s=2)


def test_a_dead_supervisor_fails_the_job_and_its_trainer_is_killed(demo_platform, tmp_path):
    """The refresh after a supervisor died: the job is failed with the reason (log tail, the killed trainer)."""
    import json

    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft"), validate=False)
    run_dir = tmp_path / "attempt-1"
    since = time.time()
    trainer = spawn_detached(["sleep", "60"], run_dir / "stdout.log")  # the trainer, in a session of its own
    (run_dir / "stdout.log").write_text("step:3 - train/loss:2.0\nKilled\n")
    (run_dir / "supervisor.json").write_text(
        json.dumps({"state": "running", "pid": trainer, "pgid": trainer, "started_at": since})
    )
    dead = spawn_detached(["true"], tmp_path / "sup.log")
    time.sleep(0.5)
    run_id = demo_platform.store.insert(
        "runs",
        {"job_id": job_id, "attempt": 1, "state": "running", "pid": dead, "run_dir": str(run_dir),
         "log_path": str(run_dir / "stdout.log"), "metrics_path": str(run_dir / "metrics.jsonl"), "started_at": since},
    )  # fmt: skip
    demo_platform.store.update("jobs", job_id, state="running", current_run_id=run_id)
    try:
        job = service.refresh_job(demo_platform, job_id)
        assert job["state"] == "failed"
        assert "the supervisor process died" in job["error"] and "Killed" in job["error"]
        assert f"group {trainer}" in job["error"] and not pid_alive(trainer)
    finally:
        kill_tree(trainer, grace_s=2)


def test_local_launch_records_the_supervisors_start_time(platform, tmp_path):
    info = LocalRunner(platform).launch(str(tmp_path / "attempt-1"), {"argv": ["true"]}, 999_999)
    try:
        assert info["pid"] and info["remote"]["pid_started_at"] is not None
        assert abs(info["remote"]["pid_started_at"] - time.time()) < 30
    finally:
        kill_tree(info["pid"], grace_s=5)


def test_the_export_download_is_the_whole_bundle(demo_platform):
    """The job page's download: a zip with run.sh (executable), spec.yaml, config/ and kit/."""
    import io
    import zipfile

    from platform_core.jobs.service import export_job, export_job_zip

    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft"), validate=False)
    archive = zipfile.ZipFile(io.BytesIO(export_job_zip(demo_platform, job_id)))
    names = set(archive.namelist())
    bundle = export_job(demo_platform, job_id)
    assert {f"job-{job_id}/run.sh", f"job-{job_id}/spec.yaml"} <= names
    assert {f"job-{job_id}/{name}" for name in bundle["files"]} <= names
    assert archive.getinfo(f"job-{job_id}/run.sh").external_attr >> 16 == 0o755
    assert archive.read(f"job-{job_id}/run.sh").decode() == bundle["script"]
