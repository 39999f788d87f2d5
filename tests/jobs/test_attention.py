"""Attention "auto": the supervisor falls back to sdpa where flash-attention cannot run (this machine: no CUDA)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests_helpers import JOB_BASE as BASE
from tests_helpers import run_context as ctx

from platform_core.jobs.engines import build_plan
from platform_core.jobs.specs import parse_spec
from platform_core.plugins import attention

SUPERVISOR = Path(attention.__file__).with_name("supervisor.py")


def test_auto_on_a_gpu_asks_the_supervisor_to_check(demo_model_dir):
    spec = parse_spec({"name": "j", **BASE, "algorithm": "sft", "batch_size": 32})
    gpu = build_plan("verl", spec, ctx(str(demo_model_dir)))
    assert "+model.override_config.attn_implementation=flash_attention_2" in gpu.argv
    assert gpu.env[attention.FALLBACK_ENV] == "sdpa"
    assert attention.FALLBACK_ENV not in build_plan("verl", spec, ctx(str(demo_model_dir), device="cpu")).env
    chosen = parse_spec({"name": "j", **BASE, "algorithm": "sft", "batch_size": 32, "attn_implementation": "eager"})
    assert attention.FALLBACK_ENV not in build_plan("verl", chosen, ctx(str(demo_model_dir))).env


def test_ppo_gives_the_critic_the_same_attention(demo_model_dir):
    from platform_core.jobs.validate import validate_verl_overrides

    spec = parse_spec(
        {"name": "j", **BASE, "algorithm": "ppo", "batch_size": 64, "rollout_n": 1, "micro_batch_size_per_gpu": 4}
    )
    plan = build_plan("verl", spec, ctx(str(demo_model_dir)))
    flash = [o for o in plan.overrides if o.endswith("attn_implementation=flash_attention_2")]
    assert {o.split(".model.")[0] for o in flash} == {"+actor_rollout_ref", "+critic"}
    assert all(o.endswith("=sdpa") for o in attention.with_fallback(flash, "sdpa"))
    validate_verl_overrides(plan.config_name, plan.overrides)


def test_the_supervisor_rewrites_flash_attention_where_it_cannot_run(tmp_path):
    """The real supervisor, run as on a GPU server (a standalone file), probing this machine's Python."""
    seen = tmp_path / "seen.json"
    script = tmp_path / "trainer.py"
    script.write_text(
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'override': os.environ.get('{attention.OVERRIDE_ENV}')}}, "
        f"open({str(seen)!r}, 'w'))\n"
    )
    run = {
        "argv": [sys.executable, str(script), "+model.override_config.attn_implementation=flash_attention_2", "x=1"],
        "env": {attention.FALLBACK_ENV: "sdpa"},
        "sample_every": 60,
    }
    (tmp_path / "run.json").write_text(json.dumps(run))
    subprocess.run([sys.executable, str(SUPERVISOR), "--run-dir", str(tmp_path)], check=True, timeout=240)
    result = json.loads(seen.read_text())
    assert result == {"argv": ["+model.override_config.attn_implementation=sdpa", "x=1"], "override": "sdpa"}
    log = (tmp_path / "stdout.log").read_text()
    assert "[platform] attention: sdpa (" in log
    assert ("flash-attn is not installed" in log) or ("no CUDA device" in log)
    assert json.loads((tmp_path / "supervisor.json").read_text())["state"] == "completed"


def test_the_probe_names_what_is_missing():
    problem = attention.flash_attention_problem(sys.executable)
    assert problem in ("flash-attn is not installed", "no CUDA device is visible") or "capability" in problem
    assert attention.flash_attention_problem("/nonexistent/python").startswith("the probe could not run")
    assert attention.with_fallback(["a", "k.attn_implementation=flash_attention_2"], "eager") == [
        "a",
        "k.attn_implementation=eager",
    ]
