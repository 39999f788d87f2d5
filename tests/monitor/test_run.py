"""RunMonitor over real run directories: attempts joined, live appends, restarts, console fallback, derived rewards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from platform_core.monitor.canonical import metrics_payload, resolve
from platform_core.monitor.files import LocalFiles
from platform_core.monitor.run import RunMonitor
from platform_core.monitor.sampling import append_sample, sample_system

FIXTURES = Path(__file__).parent / "fixtures"

APPEND = r"""
import json, sys, time
run, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(run + "/metrics.jsonl", "a") as metrics, open(run + "/stdout.log", "a") as log:
    for step in range(first, last + 1):
        time.sleep(0.05)
        log.write(f"step:{step} - train/loss:{3.0 / step}\n"); log.flush()
        metrics.write(json.dumps({"step": step, "data": {"train/loss": 3.0 / step, "train/lr": 0.003}}) + "\n")
        metrics.flush()
"""


def test_a_real_resumed_verl_run(verl_sft_run):
    monitor = RunMonitor(LocalFiles(), str(verl_sft_run))
    summary = monitor.poll()
    assert summary.records == 12 + 2 + 12 and not summary.more and not summary.restarted  # train, val, gradnorm lines
    assert [a for a, _d in monitor.attempts] == [0, 1, 2]
    assert monitor.store.series("train/loss")[0].tolist() == list(range(1, 13))
    assert monitor.metrics_source == "file"
    assert monitor.gradnorms.steps() == list(range(1, 13))
    assert monitor.status["step"] == 12 and monitor.status["total_training_steps"] == 12
    assert monitor.log.path.endswith("attempt-2/stdout.log") and len(monitor.log.entries) > 50
    assert [a for a, _p in monitor.log_paths()] == [1, 2]
    assert monitor.progress().fraction == 1.0
    assert monitor.progress().epoch is None  # verl's SFT trainer logs no epoch...
    assert monitor.progress(steps_per_epoch=8).epoch == 1.5  # ...the job knows its steps per epoch
    assert monitor.first_error() is None
    assert monitor.download().file_name == "stdout.log"
    assert monitor.canonical_names()["val_loss"] == "val/loss"
    quiet = monitor.poll()
    assert quiet.records == 0 and quiet.bytes_read == 0


def test_a_new_attempt_written_live_by_another_process(verl_sft_run):
    monitor = RunMonitor(LocalFiles(), str(verl_sft_run))
    monitor.poll()
    attempt = verl_sft_run / "attempt-3"
    attempt.mkdir()
    # resumed from the step-10 checkpoint: steps 11-12 run again, then 13-15 are new
    proc = subprocess.Popen([sys.executable, "-c", APPEND, str(attempt), "11", "15"])
    while proc.poll() is None:
        monitor.poll()
        time.sleep(0.02)
    assert proc.wait() == 0
    monitor.poll()
    steps, loss = monitor.store.series("train/loss")
    assert steps.tolist() == list(range(1, 16))
    assert loss[steps.tolist().index(11)] == 3.0 / 11  # the later attempt won the overlapping step
    assert monitor.log.path.endswith("attempt-3/stdout.log") and monitor.log.entries[-1].text.startswith("step:15")
    arrived = [step for step, _t in monitor.store.arrivals]
    assert arrived and arrived[-1] == 15 and all(step >= 13 for step in arrived)  # history is not "live"


def test_a_truncated_metrics_file_is_read_again(verl_sft_run):
    monitor = RunMonitor(LocalFiles(), str(verl_sft_run))
    monitor.poll()
    metrics = verl_sft_run / "attempt-2" / "metrics.jsonl"
    metrics.write_text('{"step": 5, "data": {"train/loss": 9.0}}\n')  # a writer re-created it with "wb"
    summary = monitor.poll()
    assert summary.restarted == [(str(metrics), "truncated")]
    monitor.poll()  # attempt-1's reader was reset too; this poll reads it again
    steps, loss = monitor.store.series("train/loss")
    assert steps.tolist() == [1, 2, 3, 4, 5] and loss[-1] == 9.0


def test_read_all_in_bounded_chunks_for_the_cli(verl_sft_run):
    monitor = RunMonitor(LocalFiles(), str(verl_sft_run), max_chunk=512)
    assert monitor.poll().more  # one chunk of each file per poll
    monitor.read_all()
    assert monitor.store.last_step == 12 and len(monitor.gradnorms.steps()) == 12
    payload = metrics_payload(monitor.store)
    assert [step for step, _v in payload["series"]["loss"]] == list(range(1, 13))


def test_console_fallback_without_a_metrics_file(tmp_path):
    shutil.copy(FIXTURES / "logs" / "torchrun_fail_tee.log", tmp_path / "stdout.log")
    monitor = RunMonitor(LocalFiles(), str(tmp_path))
    monitor.poll()
    assert monitor.metrics_source == "console"
    assert monitor.store.series("train/loss")[0].tolist() == [1, 2, 3]
    assert resolve(monitor.store.names())["grad_norm"] == "train/grad_norm"
    report = monitor.first_error()
    assert report.summary == "ValueError: bad sample at index 17: 'messages' is missing"


def test_reward_std_and_per_function_rewards_derived_from_rollout_dumps(tmp_path):
    """verl V1 logs critic/score/mean but no std: the monitor computes it from trainer.rollout_data_dir dumps."""
    with open(tmp_path / "metrics.jsonl", "w") as out:
        for step in (1, 2):
            out.write(json.dumps({"step": step, "data": {"critic/score/mean": 0.5, "actor/pg_loss": 0.1}}) + "\n")
    (tmp_path / "rollouts").mkdir()
    for step in (1, 2):
        with open(tmp_path / "rollouts" / f"{step}.jsonl", "w") as out:
            for score in (0.0, 1.0, 1.0, 0.0):
                out.write(
                    json.dumps({"input": "q", "output": "a", "gts": "a", "score": score, "step": step, "acc": score})
                    + "\n"
                )
    monitor = RunMonitor(LocalFiles(), str(tmp_path))
    monitor.poll()
    monitor.poll()  # a dump is read once its size is seen unchanged
    mapping = resolve(monitor.store.names())
    assert mapping["reward_std"] == "platform/reward_std" and mapping["reward_mean"] == "critic/score/mean"
    assert monitor.store.series("platform/reward_std")[1].tolist() == [0.5, 0.5]
    assert mapping["reward/acc"] == "platform/reward/acc"
    assert sorted(monitor.rollout_files()) == [1, 2] and len(monitor.read_rollouts([2])) == 4


def test_system_samples_of_this_machine(tmp_path):
    for _ in range(3):
        append_sample(str(tmp_path / "system.jsonl"), sample_system([os.getpid()]))
    monitor = RunMonitor(LocalFiles(), str(tmp_path))
    monitor.poll()
    host = monitor.system.host_series()
    assert host["rss_mib"][1].size == 3 and host["ram_total_mib"][1][0] > 0
    assert monitor.system.latest()["rss_mib"] > 0
