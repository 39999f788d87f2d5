"""Model registry: config.json facts, scans of the workspace and extra directories, bad directories named."""

from __future__ import annotations

import shutil

import pytest

from platform_core.errors import InvalidInput
from platform_core.models import add_model_dir, list_models, read_model_info, register_model, scan_local_models


def test_read_model_info_counts_parameters_from_safetensors(demo_model_dir):
    from transformers import AutoModelForCausalLM

    info = read_model_info(demo_model_dir)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["architecture"] == "Qwen2ForCausalLM" and info["dtype"] == "float32"
    assert info["meta"]["has_tokenizer"]


def test_scan_registers_models_in_workspace_and_extra_dirs(platform, demo_model_dir, tmp_path):
    shutil.copytree(demo_model_dir, platform.workspace.models / "a")
    extra = tmp_path / "big-disk"
    shutil.copytree(demo_model_dir, extra / "qwen_0.5b")
    add_model_dir(platform, str(extra))
    names = {m["name"] for m in scan_local_models(platform)}
    assert names == {"a", "qwen_0.5b"}
    assert all(m["exists"] for m in list_models(platform))


def test_not_a_model_directory_is_refused(platform, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no config.json"):
        register_model(platform, tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{oops")
    with pytest.raises(InvalidInput, match="config.json: invalid JSON at line 1"):
        register_model(platform, tmp_path / "broken")


@pytest.mark.ssh
def test_remote_models_are_listed_over_ssh(platform, sshd, ssh_profile, demo_model_dir):
    import subprocess

    from platform_core.models import scan_remote_models

    target = sshd.home / "verl_jobs" / "models" / "tiny"
    shutil.copytree(demo_model_dir, target)
    extra = sshd.home / "autodl-tmp" / "qwen_0.5b"
    shutil.copytree(demo_model_dir, extra)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(sshd.home)], check=True)
    add_model_dir(platform, "~/autodl-tmp", ssh_profile)
    rows = scan_remote_models(platform, ssh_profile)
    paths = {r["path"] for r in rows}
    assert paths == {str(target), str(extra)}
    assert all(r["architecture"] == "Qwen2ForCausalLM" and r["size_bytes"] > 0 for r in rows)


def test_reward_models_are_not_offered_as_a_base_or_for_evaluation(demo_platform):
    """The demo kit's reward model (a scoring head) is registered, but only generative models are a training base."""
    everything = {m["name"]: m["architecture"] for m in list_models(demo_platform)}
    generative = {m["name"] for m in list_models(demo_platform, generative=True)}
    scoring = {name for name, arch in everything.items() if arch.endswith("ForSequenceClassification")}
    assert scoring and "demo-qwen2-tiny" in generative
    assert generative == set(everything) - scoring
