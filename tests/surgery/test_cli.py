"""`python -m platform_core surgery ...`: the CLI contract, through real detached worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from surgery_models import load_state, logits

pytestmark = pytest.mark.slow


def _cli(home, *args):
    env = {**os.environ, "PLATFORM_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "platform_core", "surgery", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_merge_and_average_print_the_output_of_a_model_that_loads(tmp_path, variants, fine_tunes):
    home = tmp_path / "ws"
    merged = _cli(
        home,
        "merge",
        "--method",
        "linear",
        "--models",
        str(variants["a"]),
        str(variants["b"]),
        "--weights",
        "3",
        "1",
        "--out",
        "soup",
        "--json",
    )
    assert merged.returncode == 0, merged.stderr
    result = json.loads(merged.stdout)
    assert result["out"] == str((home / "models" / "soup").resolve()) and result["weights"] == [0.75, 0.25]
    a, b, soup = load_state(variants["a"]), load_state(variants["b"]), load_state(home / "models" / "soup")
    for name, tensor in soup.items():
        torch.testing.assert_close(tensor, 0.75 * a[name] + 0.25 * b[name], atol=1e-6, rtol=1e-5)

    checkpoints = [str(fine_tunes[k]) for k in ("base", "ft1", "ft2")]
    averaged = _cli(
        home,
        "average",
        "--checkpoints",
        *checkpoints,
        "--mode",
        "ema",
        "--decay",
        "0.5",
        "--shard-size",
        "1MB",
        "--out",
        "ema",
        "--json",
    )
    assert averaged.returncode == 0, averaged.stderr
    result = json.loads(averaged.stdout)
    assert result["out"] == str((home / "models" / "ema").resolve()) and result["shards"] > 1
    assert torch.isfinite(logits(home / "models" / "ema")).all()

    again = _cli(home, "average", "--checkpoints", *checkpoints, "--out", "ema", "--json")
    assert again.returncode == 2 and "already exists and is not empty" in again.stderr
    replaced = _cli(home, "average", "--checkpoints", *checkpoints, "--out", "ema", "--overwrite", "--json")
    assert replaced.returncode == 0, replaced.stderr


def test_refusals_exit_2_with_the_reason(tmp_path, demo_model_dir, misfits):
    out = _cli(
        tmp_path,
        "merge",
        "--method",
        "ties",
        "--models",
        str(demo_model_dir),
        str(misfits["wider"]),
        "--base",
        str(demo_model_dir),
        "--out",
        "x",
        "--json",
    )
    assert out.returncode == 2 and "different shape for model.layers.0.mlp" in out.stderr
    out = _cli(
        tmp_path,
        "merge",
        "--method",
        "linear",
        "--models",
        str(demo_model_dir),
        str(misfits["llama"]),
        "--out",
        "/tmp/elsewhere",
        "--json",
    )
    assert out.returncode == 2 and "different architecture" in out.stderr


def test_select_convert_and_export_a_real_checkpoint(tmp_path, verl_run):
    import shutil

    home = tmp_path / "ws"
    root, metrics = verl_run["root"], verl_run["metrics"]
    selected = _cli(
        home, "select", "--dir", str(root), "--metrics", str(metrics), "--strategy", "lowest_val_loss", "--json"
    )
    assert selected.returncode == 0, selected.stderr
    pick = json.loads(selected.stdout)
    losses = {p["step"]: p["value"] for p in pick["series"]["points"]}
    assert pick["chosen"]["step"] == min(losses, key=losses.get) and "lowest val/loss" in pick["reason"]

    checkpoint = tmp_path / "global_step_3"
    shutil.copytree(root / "global_step_3", checkpoint)
    (checkpoint / "huggingface" / "model.safetensors").unlink()  # as verl's default save_contents leaves it
    converted = _cli(home, "convert", "--checkpoint", str(checkpoint), "--json")
    assert converted.returncode == 0, converted.stderr
    out = json.loads(converted.stdout)["out"]
    assert out.startswith(str((home / "cache" / "surgery" / "converted").resolve()))
    exported = _cli(home, "export", "--source", str(checkpoint), "--name", "sft-best", "--json")
    assert exported.returncode == 0, exported.stderr
    result = json.loads(exported.stdout)
    assert result["out"] == str((home / "models" / "sft-best").resolve()) and result["source"] == out
    assert torch.isfinite(logits(home / "models" / "sft-best")).all()


def test_readme_paths_under_models_and_an_adapter_export(tmp_path, variants, demo_model_dir):
    """`--models models/a models/b --out models/x` names the workspace models (not models/models/x), and a TRL
    adapter-only checkpoint-N exports as a merged model instead of being refused."""
    import shutil

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    home = tmp_path / "ws"
    for name in ("a", "b"):
        shutil.copytree(variants[name], home / "models" / name)
    merged = _cli(
        home, "merge", "--method", "slerp", "--models", "models/a", "models/b", "--t", "0.3", "--out",
        "models/ab-slerp", "--json",
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["out"] == str((home / "models" / "ab-slerp").resolve())
    assert not (home / "models" / "models").exists()

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    adapter = tmp_path / "job" / "checkpoints" / "checkpoint-5"
    peft_model.save_pretrained(adapter)
    exported = _cli(home, "export", "--source", str(adapter), "--name", "trl-step5", "--json")
    assert exported.returncode == 0, exported.stderr
    out = json.loads(exported.stdout)["out"]
    assert out == str((home / "models" / "trl-step5").resolve())
    assert torch.isfinite(logits(home / "models" / "trl-step5")).all()
