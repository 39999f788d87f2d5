"""The demo kit's training side: a tiny reward model for PPO and ready job specs for SFT, GRPO, PPO and DPO.

The specs are sized for a 2-core CPU: the SFT run (real verl trainer, 135 steps) takes two to three minutes; its loss
falls and the demo eval set's `counting` category goes from 0 to nearly 100% (one-digit arithmetic only partly);
GRPO, PPO and DPO run on TRL because verl's RL needs a GPU. Hyper-parameters are far outside the user's guide
ranges on purpose: the demo model is tiny and random, and a demo must show learning within minutes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from platform_core.runners.process import platform_python_env, python_executable

REWARD_MODEL_NAME = "demo-reward-model"
MODEL = "demo-qwen2-tiny"


def demo_specs(reward_model_path: str) -> dict[str, dict[str, Any]]:
    """The demo job specs by algorithm (the fields of the New job form)."""
    common = {"model": MODEL, "target": "local", "gpus_per_node": 0, "save_freq": 10, "seed": 1, "gradnorm_every": 1}
    return {
        "sft": {
            **common,
            "name": "demo-sft",
            "algorithm": "sft",
            "dataset": "demo-sft",
            "val_dataset": "demo-sft-val",
            "save_freq": 25,
            "test_freq": 25,
            "learning_rate": 1e-3,
            "batch_size": 32,
            "micro_batch_size_per_gpu": 8,
            "epochs": 9,
            "max_length": 64,
            "gradient_checkpointing": False,
        },
        "grpo": {
            **common,
            "name": "demo-grpo",
            "algorithm": "grpo",
            "dataset": "demo-grpo",
            "learning_rate": 1e-4,
            "batch_size": 8,
            "rollout_n": 4,
            "micro_batch_size_per_gpu": 8,
            "kl_coef": 0.01,
            "epochs": 1,
            "max_prompt_length": 64,
            "max_response_length": 12,
            "save_freq": 5,
            "reward": {"reward_type": "math_verify", "extraction": "last_number", "comparison": "numeric"},
        },
        "ppo": {
            **common,
            "name": "demo-ppo",
            "algorithm": "ppo",
            "dataset": "demo-ppo",
            "learning_rate": 1e-4,
            "batch_size": 8,
            "rollout_n": 1,
            "micro_batch_size_per_gpu": 8,
            "kl_coef": 0.05,
            "epochs": 1,
            "max_prompt_length": 64,
            "max_response_length": 12,
            "save_freq": 4,
            "reward_model_path": reward_model_path,
        },
        "dpo": {
            **common,
            "name": "demo-dpo",
            "algorithm": "dpo",
            "dataset": "demo-dpo",
            "learning_rate": 5e-4,
            "batch_size": 16,
            "micro_batch_size_per_gpu": 8,
            "beta": 0.1,
            "epochs": 1,
            "max_length": 64,
            "save_freq": 5,
        },
    }


def train_demo_reward_model(model_dir: Path, pairs_file: Path, out_dir: Path, log=print) -> Path:
    """Train the tiny reward model on the demo preference pairs with TRL's RewardTrainer (seconds on a CPU)."""
    runner = Path(__file__).resolve().parents[1] / "plugins" / "trl_runner.py"
    log(f"training the demo reward model in {out_dir}")
    out = subprocess.run(  # noqa: S603 - an argument list
        [
            python_executable(),
            str(runner),
            "--train-reward-model",
            "--model",
            str(model_dir),
            "--pairs",
            str(pairs_file),
            "--out",
            str(out_dir),
            "--steps",
            "24",
        ],
        capture_output=True,
        text=True,
        env=platform_python_env({"PLATFORM_TORCH_THREADS": "1"}),
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"training the demo reward model failed: {out.stderr.strip()[-800:]}")
    return out_dir


def write_demo_job_kit(platform, paths: dict[str, Path], files: dict[str, Path], force: bool, log) -> dict[str, Any]:
    """Train/register the reward model and write <workspace>/demo/specs/<algorithm>.yaml; return what was made."""
    from platform_core.models import register_model

    reward_dir = platform.workspace.models / REWARD_MODEL_NAME
    if force or not (reward_dir / "config.json").is_file():
        train_demo_reward_model(paths["model"], files["dpo"], reward_dir, log)
    reward_id = register_model(platform, reward_dir, name=REWARD_MODEL_NAME, source="demo")
    paths["specs"].mkdir(parents=True, exist_ok=True)
    specs = {}
    for algorithm, spec in demo_specs(str(reward_dir)).items():
        target = paths["specs"] / f"{algorithm}.yaml"
        target.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
        specs[algorithm] = str(target)
    return {"specs": specs, "reward_model_id": reward_id}
