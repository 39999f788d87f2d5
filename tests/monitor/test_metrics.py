"""Metrics store (merge by step across attempts), the canonical-name mapping, and the console-line parser."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from platform_core.monitor.canonical import CHART_GROUPS, group_members, metrics_payload, resolve, unmapped
from platform_core.monitor.console import parse_console_line, parse_value, strip_prefixes
from platform_core.monitor.metrics import MetricsStore

FIXTURES = Path(__file__).parent / "fixtures"


def _store(*paths: Path) -> MetricsStore:
    store = MetricsStore()
    for attempt, path in enumerate(paths, start=1):
        store.add_lines(path.read_text().splitlines(), attempt)
    return store


def test_verl_sft_attempts_join_into_one_series():
    run = FIXTURES / "verl_sft"
    store = _store(run / "attempt-1" / "metrics.jsonl", run / "attempt-2" / "metrics.jsonl")
    steps, loss = store.series("train/loss")
    assert steps.tolist() == list(range(1, 13))  # attempt 1 paused after step 4, attempt 2 resumed at 5
    assert np.all(np.diff(loss) < 0)  # the real run's loss decreases steadily
    assert store.series("val/loss")[0].tolist() == [4, 12]  # logged on separate lines, merged by step
    assert store.attempt_steps == {1: [1, 4], 2: [5, 12]}
    assert store.last_step == 12


def test_overlapping_steps_later_attempt_wins():
    store = MetricsStore()
    for step in range(1, 11):
        store.add_record(step, {"loss": 10.0 + step}, attempt=1)
    for step in range(8, 13):  # resumed from the step-7 checkpoint: steps 8-10 run again
        store.add_record(step, {"loss": float(step)}, attempt=2)
    store.add_record(9, {"loss": 999.0}, attempt=1)  # a late line of the older attempt does not win
    steps, values = store.series("loss")
    assert steps.tolist() == list(range(1, 13))
    assert values.tolist() == [11, 12, 13, 14, 15, 16, 17, 8, 9, 10, 11, 12]


def test_null_is_nan_and_bad_lines_are_counted():
    store = MetricsStore()
    assert store.add_line('{"step": 3, "data": {"train/loss": null, "train/lr": 0.1, "note": "text"}}')
    assert not store.add_line('{"step": 4, "data": {"train/loss": 1.0')  # cut line
    assert not store.add_line("Creating file logger at /x")
    assert math.isnan(store.last_value("train/loss")) and store.last_value("train/lr") == 0.1
    assert "note" not in store.names() and store.bad_lines == 2


def test_out_of_order_steps_are_inserted_in_order():
    store = MetricsStore()
    for step in (5, 1, 3, 2, 4):
        store.add_record(step, {"x": float(step)})
    assert store.series("x")[0].tolist() == [1, 2, 3, 4, 5]
    assert store.series("x")[1].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_canonical_names_for_each_engine():
    sft = _store(FIXTURES / "verl_sft" / "attempt-1" / "metrics.jsonl")
    assert resolve(sft.names()) == {
        "loss": "train/loss",
        "lr": "train/lr",
        "grad_norm": "train/grad_norm",
        "val_loss": "val/loss",
    }
    grpo = _store(FIXTURES / "trl_grpo" / "metrics.jsonl")
    mapping = resolve(grpo.names())
    assert mapping["reward_mean"] == "reward" and mapping["reward_std"] == "reward_std"
    assert mapping["reward/math_reward"] == "rewards/math_reward/mean"
    assert mapping["reward/digit_reward"] == "rewards/digit_reward/mean"
    assert mapping["kl"] == "kl" and mapping["entropy"] == "entropy" and mapping["lr"] == "learning_rate"
    assert mapping["response_length"] == "completions/mean_length" and mapping["step_time"] == "step_time"
    dpo = _store(FIXTURES / "trl_dpo" / "metrics.jsonl")
    mapping = resolve(dpo.names())
    assert mapping["loss"] == "loss" and mapping["reward_margin"] == "rewards/margins"
    assert mapping["reward_accuracy"] == "rewards/accuracies" and mapping["rewards_chosen"] == "rewards/chosen"
    ppo = _store(FIXTURES / "trl_ppo" / "metrics.jsonl")
    mapping = resolve(ppo.names())
    assert mapping["policy_loss"] == "loss/policy_avg" and mapping["value_loss"] == "loss/value_avg"
    assert mapping["reward_mean"] == "objective/scores" and mapping["kl"] == "objective/kl"
    assert "logps/chosen" in unmapped(dpo.names())  # still listed, chartable under its raw name


def test_canonical_names_for_verl_ppo():
    names = [
        "actor/pg_loss",
        "critic/vf_loss",
        "critic/score/mean",
        "actor/kl_loss",
        "actor/ppo_kl",
        "actor/entropy",
        "actor/lr",
        "actor/grad_norm",
        "response_length/mean",
        "perf/throughput",
        "timing_s/step",
        "val-core/openai/gsm8k/acc/mean@1",
    ]
    mapping = resolve(names)
    assert mapping["policy_loss"] == "actor/pg_loss" and mapping["value_loss"] == "critic/vf_loss"
    assert mapping["reward_mean"] == "critic/score/mean" and mapping["kl"] == "actor/kl_loss"
    assert mapping["ppo_kl"] == "actor/ppo_kl" and mapping["throughput"] == "perf/throughput"
    assert mapping["val_score/openai/gsm8k"] == "val-core/openai/gsm8k/acc/mean@1"
    assert "reward_std" not in mapping  # verl V1 logs none: derived from rollout dumps (see test_run)
    groups = {g.key: group_members(g, mapping) for g in CHART_GROUPS}
    assert groups["loss"] == ["policy_loss", "value_loss"] and groups["validation"] == ["val_score/openai/gsm8k"]


def test_metrics_payload_is_the_cli_contract():
    store = _store(FIXTURES / "trl_grpo" / "metrics.jsonl")
    store.add_record(21, {"loss": None})
    payload = json.loads(json.dumps(metrics_payload(store), allow_nan=False))
    assert set(payload) >= {"series"}
    assert payload["series"]["reward_mean"][0] == [1, 0.0]
    assert payload["series"]["loss"][-1] == [21, None]
    assert all(len(pair) == 2 and isinstance(pair[0], int) for pair in payload["series"]["grad_norm"])
    assert "frac_reward_zero_std" in payload["other"]


def test_console_parser_matches_the_file_logger_on_a_real_run():
    """verl printed each step to stdout and to metrics.jsonl: the parsed console line equals the file record."""
    attempt = FIXTURES / "verl_sft" / "attempt-2"
    records = {}
    for line in (attempt / "stdout.log").read_text(encoding="utf-8").split("\n"):
        parsed = parse_console_line(line)
        if parsed:
            records.setdefault(parsed[0], {}).update(parsed[1])
    file_store = _store(attempt / "metrics.jsonl")
    assert sorted(records) == file_store.series("train/loss")[0].tolist()
    for step, values in records.items():
        for name, value in values.items():
            steps, series = file_store.series(name)
            assert math.isclose(series[steps.tolist().index(step)], value, rel_tol=1e-9), (step, name)


def test_console_parser_ray_prefix_numpy_values_and_special_values():
    line = (
        "\x1b[36m(TaskRunnerV1 pid=16724)\x1b[0m step:1 - actor/pg_loss:-0.0123 - training/num_turns/mean:np.float64(1.0)"
        " - val-core/openai/gsm8k/acc/mean@1:np.float64(0.25) - timing_s/step:12.3 - perf/throughput:np.float32(1234.5)"
        " - training/global_step:1 - critic/vf_explained_var:nan - train/total_tokens(B):7.24e-07 - ok:True"
    )
    step, values = parse_console_line(line)
    assert step == 1
    assert values["val-core/openai/gsm8k/acc/mean@1"] == 0.25 and values["perf/throughput"] == 1234.5
    assert values["train/total_tokens(B)"] == 7.24e-07 and values["ok"] == 1.0
    assert math.isnan(values["critic/vf_explained_var"]) and values["training/global_step"] == 1
    tqdm = "\rEpoch 2/2:   0%|          | 0/6 [00:00<?, ?it/s]step:7 - train/loss:4.4375"
    assert parse_console_line(tqdm) == (7, {"train/loss": 4.4375})
    assert parse_console_line("[default1]:step:3 - train/loss:0.5") == (3, {"train/loss": 0.5})
    assert parse_console_line("timing_s/step:12.3 - x:1") is None  # `step:` inside a key is not a step line
    assert parse_console_line("INFO: starting step:3") is None
    assert parse_value("-inf") == -math.inf and parse_value("np.int64(3)") == 3.0 and parse_value("tensor(1)") is None
    assert strip_prefixes("(WorkerDict pid=9, ip=10.0.0.2) hi") == "hi"
