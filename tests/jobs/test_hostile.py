"""Hostile values in every free-text field of a job never reach a shell unquoted: they are refused, or they travel
as single argument-list elements and as quoted words in exported scripts."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from platform_core.errors import InvalidInput
from platform_core.jobs.engines import RunContext, build_plan
from platform_core.jobs.service import export_script
from platform_core.jobs.specs import parse_spec

HOSTILE = ["x; touch /tmp/PWNED", "$(id)", "`id`", "a\nb", "a|b", "a && b", "../../etc/passwd", "a > /tmp/x"]
FIELDS = {
    "name": lambda v: {"name": v},
    "model": lambda v: {"model": v},
    "dataset": lambda v: {"dataset": v},
    "val_dataset": lambda v: {"val_dataset": v},
    "critic_model": lambda v: {"algorithm": "ppo", "critic_model": v},
    "reward_model_path": lambda v: {"algorithm": "ppo", "reward_model_path": v},
    "custom_reward": lambda v: {"algorithm": "grpo", "reward": {"reward_type": "custom", "custom_path": v}},
    "target": lambda v: {"target": f"ssh:{v}"},
    "extra_overrides": lambda v: {"extra_overrides": [f"trainer.project_name={v}"]},
}


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused(field, value):
    data = {"name": "ok", "algorithm": "sft", "model": "m", "dataset": "d", **FIELDS[field](value)}
    if field == "name" and value == "../../etc/passwd":
        data["name"] = "../x"
    with pytest.raises(InvalidInput):
        parse_spec(data)


def test_unusual_but_legal_values_stay_single_quoted_words(tmp_path):
    model = tmp_path / "我的 模型 (v2)"
    spec = parse_spec(
        {
            "name": "实验 one",
            "algorithm": "sft",
            "model": "m",
            "dataset": "d",
            "batch_size": 8,
            "micro_batch_size_per_gpu": 8,
        }
    )
    ctx = RunContext(
        job_id=1,
        attempt=1,
        job_dir=str(tmp_path / "out dir" / "job-1"),
        attempt_dir=str(tmp_path / "out dir" / "job-1" / "attempt-1"),
        checkpoint_dir=str(tmp_path / "out dir" / "job-1" / "checkpoints"),
        config_dir=str(tmp_path / "out dir" / "job-1" / "config"),
        plugin_dir=str(tmp_path / "kit dir"),
        python="python3",
        model_path=str(model).replace(" (v2)", ""),
        train_files=str(tmp_path / "d.parquet"),
        val_files=None,
        device="cpu",
        train_rows=64,
    )
    plan = build_plan("verl", spec, ctx)
    line = plan.shell_command()
    words = shlex.split(line)
    assert words[0] == "env"
    words = words[1 + 2 * len(plan.unset_env) :]
    assert dict(a.split("=", 1) for a in words[: len(plan.env)]) == plan.env
    assert words[len(plan.env) :] == plan.argv
    script = export_script(plan, ctx)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    probe = script.replace(shlex.quote(plan.argv[0]), "printf '%s\\n'", 1).replace("set -euo pipefail", "set -eu")
    out = subprocess.run(
        ["bash", "-c", probe.replace("mkdir -p", "true").replace("cd ", "true ")], capture_output=True, text=True
    )
    assert out.stdout.splitlines()[: len(plan.argv) - 1] == plan.argv[1:]
