"""Real training runs on this CPU: verl's SFT trainer (through the platform plugin) and TRL's DPO/GRPO/PPO, with
pause, resume, stop, and a launcher that is killed while the run goes on. No fake trainer anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests_helpers import metric_steps, wait_for

from platform_core.jobs import service
from platform_core.jobs.service import load_spec_file

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 900


def demo_spec(platform, algorithm: str, **changes) -> dict:
    spec = load_spec_file(str(platform.workspace.demo / "specs" / f"{algorithm}.yaml"))
    return {**spec, **changes}


def job_state(platform, job_id: int) -> str:
    return service.refresh_job(platform, job_id)["state"]


def wait_final(platform, job_id: int, timeout: float = RUN_TIMEOUT) -> dict:
    wait_for(
        lambda: job_state(platform, job_id) in service.FINAL_STATES,
        timeout,
        2,
        f"job #{job_id} to finish (log: {service.job_logs(platform, job_id, tail=20)})",
    )
    return service.get_job(platform, job_id)


def attempt_dirs(job: dict) -> list[Path]:
    return sorted(Path(job["output_dir"]).glob("attempt-*"))


def losses(job: dict) -> list[float]:
    values = []
    for attempt in attempt_dirs(job):
        for line in (attempt / "metrics.jsonl").read_text().splitlines():
            data = json.loads(line)["data"]
            if data.get("train/loss") is not None:
                values.append(data["train/loss"])
    return values


def test_demo_sft_runs_on_the_real_verl_trainer_and_learns(demo_platform):
    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft", total_steps=16, save_freq=6), start=True)
    job = wait_final(demo_platform, job_id)
    assert job["state"] == "completed", job["error"]
    assert job["engine"] == "verl" and job["step"] == 16
    assert metric_steps(attempt_dirs(job)) == list(range(1, 17))
    values = losses(job)
    assert sum(values[-4:]) / 4 < 0.6 * sum(values[:4]) / 4, values  # the loss visibly goes down
    checkpoints = service.job_status(demo_platform, job_id)["checkpoints"]
    assert checkpoints == [6, 12, 16]
    assert (Path(job["output_dir"]) / "checkpoints" / "global_step_16" / "huggingface" / "config.json").exists()
    gradnorms = [json.loads(line) for line in (attempt_dirs(job)[0] / "gradnorms.jsonl").read_text().splitlines()]
    assert [g["step"] for g in gradnorms] == list(range(1, 17))
    assert gradnorms[0]["layers"][:2] == ["embed", "layers.0"] and all(n >= 0 for n in gradnorms[0]["norms"])
    system = (attempt_dirs(job)[0] / "system.jsonl").read_text().splitlines()
    assert system and json.loads(system[0])["gpus"] == []


def test_pause_then_resume_continues_from_the_checkpoint(demo_platform):
    total = 14
    job_id = service.create_job(
        demo_platform, demo_spec(demo_platform, "sft", total_steps=total, save_freq=5), start=True
    )
    wait_for(lambda: service.refresh_job(demo_platform, job_id)["step"] >= 3, RUN_TIMEOUT, 1, "step 3")
    service.pause_job(demo_platform, job_id)
    job = wait_final(demo_platform, job_id)
    assert job["state"] == "paused", job["error"]
    paused_at = job["step"]
    assert 3 <= paused_at < total
    assert (Path(job["output_dir"]) / "checkpoints" / f"global_step_{paused_at}").is_dir()
    service.resume_job(demo_platform, job_id)
    job = wait_final(demo_platform, job_id)
    assert job["state"] == "completed", job["error"]
    assert job["step"] == total  # what an uninterrupted run reaches
    steps = metric_steps(attempt_dirs(job))
    assert steps == list(range(1, total + 1)), steps  # each step exactly once across the two attempts
    runs = service.job_runs(demo_platform, job_id)
    assert [r["attempt"] for r in runs] == [1, 2] and [r["state"] for r in runs] == ["paused", "completed"]


def test_trl_dpo_and_grpo_run_with_the_platform_reward(demo_platform):
    dpo = service.create_job(demo_platform, demo_spec(demo_platform, "dpo", total_steps=4, save_freq=2), start=True)
    grpo = service.create_job(demo_platform, demo_spec(demo_platform, "grpo", total_steps=3, save_freq=3), start=True)
    for job_id in (dpo, grpo):
        job = wait_final(demo_platform, job_id)
        assert job["state"] == "completed", job["error"]
        assert job["engine"] == "trl"
    dpo_job, grpo_job = service.get_job(demo_platform, dpo), service.get_job(demo_platform, grpo)
    assert metric_steps(attempt_dirs(dpo_job)) == [1, 2, 3, 4]
    first = json.loads((attempt_dirs(dpo_job)[0] / "metrics.jsonl").read_text().splitlines()[0])["data"]
    assert {"loss", "rewards/margins", "rewards/accuracies"} <= set(first)
    rollouts = [
        json.loads(line)
        for f in sorted((Path(grpo_job["output_dir"]) / "rollouts").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert len(rollouts) == 3 * 8 * 4  # steps x prompts x rollout_n, each scored by platform_core/plugins/reward.py
    assert {"input", "output", "gts", "score", "extracted", "step"} <= set(rollouts[0])
    from platform_core.plugins.reward import score_details

    for sample in rollouts[:10]:
        assert sample["score"] == score_details(sample["output"], sample["gts"], extraction="last_number")["score"]
    assert service.job_status(demo_platform, dpo)["checkpoints"] == [2, 4]


def test_stop_kills_the_whole_process_tree(demo_platform):
    import psutil

    job_id = service.create_job(demo_platform, demo_spec(demo_platform, "sft"), start=True)
    wait_for(lambda: service.refresh_job(demo_platform, job_id)["step"] >= 1, RUN_TIMEOUT, 1, "step 1")
    run = demo_platform.store.get("runs", service.get_job(demo_platform, job_id)["current_run_id"])
    tree = [run["pid"], *[p.pid for p in psutil.Process(run["pid"]).children(recursive=True)]]
    assert len(tree) >= 3  # supervisor, torchrun, the trainer rank
    job = service.stop_job(demo_platform, job_id)
    assert job["state"] == "stopped"
    alive = [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive


LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from platform_core.context import get_platform
    from platform_core.jobs.service import create_job, load_spec_file
    platform = get_platform(sys.argv[1])
    spec = load_spec_file(sys.argv[2])
    spec["total_steps"] = 30
    print(create_job(platform, spec, start=True), flush=True)
    time.sleep(3600)
    """
)


def test_the_run_survives_the_app_process_being_killed(demo_platform):
    """A process that created and started the job (as the app does) is killed with SIGKILL mid-run: the run goes
    on, and a fresh app instance (AppTest of the jobs page) shows it running with its metrics."""
    home = demo_platform.workspace.root
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(home), str(home / "demo/specs/sft.yaml")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PLATFORM_HOME": str(home)},
    )
    job_id = int(launcher.stdout.readline())
    wait_for(lambda: service.refresh_job(demo_platform, job_id)["step"] >= 2, RUN_TIMEOUT, 1, "step 2")
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    step_at_kill = service.refresh_job(demo_platform, job_id)["step"]
    wait_for(
        lambda: service.refresh_job(demo_platform, job_id)["step"] > step_at_kill + 1,
        RUN_TIMEOUT,
        1,
        "progress after the launcher died",
    )

    from streamlit.testing.v1 import AppTest

    repo = Path(__file__).resolve().parents[2]
    at = AppTest.from_file(str(repo / "app" / "main.py"), default_timeout=120)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("../pages/jobs.py")
    at.query_params["job"] = str(job_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "running" in text
    assert any(m.label.startswith("Step") and int(str(m.value).split("/")[0].strip()) > step_at_kill for m in at.metric)
    service.stop_job(demo_platform, job_id)


def test_trl_ppo_demo_runs_with_the_reward_model_then_pauses_and_resumes(demo_platform):
    """The demo PPO spec (TRL's PPO trainer through ResumablePPOTrainer, scored by the demo reward model)."""
    total = 4  # a pause asked for after step 1 lands at step 2 or 3 on a loaded machine, still before the end
    spec = demo_spec(demo_platform, "ppo", total_steps=total, save_freq=1)
    job_id = service.create_job(demo_platform, spec, start=True)

    def stepped() -> bool:
        job = service.refresh_job(demo_platform, job_id)
        assert job["state"] not in service.FINAL_STATES, service.job_logs(demo_platform, job_id, tail=20)
        return job["step"] >= 1

    wait_for(stepped, RUN_TIMEOUT, 1, "PPO step 1")
    service.pause_job(demo_platform, job_id)
    job = wait_final(demo_platform, job_id)
    assert job["state"] == "paused", job["error"]
    assert job["engine"] == "trl"
    paused_at = job["step"]
    assert 1 <= paused_at < total
    checkpoint = Path(job["output_dir"]) / "checkpoints" / f"checkpoint-{paused_at}"
    assert (checkpoint / "value_model" / "config.json").is_file()  # ResumablePPOTrainer also keeps the critic
    service.resume_job(demo_platform, job_id)
    job = wait_final(demo_platform, job_id)
    assert job["state"] == "completed", job["error"]
    assert job["step"] == total
    assert metric_steps(attempt_dirs(job)) == list(range(1, total + 1))  # each step once across both attempts
    records = [
        json.loads(line)
        for attempt in attempt_dirs(job)
        for line in (attempt / "metrics.jsonl").read_text().splitlines()
    ]
    for record in records:
        data = record["data"]
        assert {"objective/scores", "loss/value_avg", "loss/policy_avg", "lr"} <= set(data), sorted(data)
        assert all(v == v for v in data.values() if isinstance(v, float))  # no NaN
    rates = [r["data"]["lr"] for r in records]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == total, rates  # the schedule went on
    log = "".join((a / "stdout.log").read_text() for a in attempt_dirs(job))
    assert "right-padding was detected" not in log  # prompts are left-padded for generation
    assert service.job_status(demo_platform, job_id)["checkpoints"] == list(range(1, total + 1))
    runs = service.job_runs(demo_platform, job_id)
    assert [r["attempt"] for r in runs] == [1, 2] and [r["state"] for r in runs] == ["paused", "completed"]
