"""verl checkpoints of a real CPU SFT run: listed with their metrics, converted with verl's merger, exported.

The run is verl's own SFT trainer (torchrun, FSDP2, the demo model) with `hf_model` in save_contents, so each
checkpoint also carries the trained weights as verl saves them in huggingface/. The conversion is checked against
those and against the FSDP shards read directly.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from surgery_models import load_state

from platform_core.errors import InvalidInput
from platform_core.surgery.compat import resolve_model_dir
from platform_core.surgery.convert import (
    attach_metrics,
    conversion_is_current,
    convert_verl_checkpoint,
    converted_dir,
    list_checkpoints,
    plan_convert,
    read_metrics_jsonl,
)
from platform_core.surgery.export import plan_export
from platform_core.surgery.select import select_checkpoint
from platform_core.tasks import create_task, execute_task

pytestmark = pytest.mark.slow


def fsdp_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model state in verl's FSDP shard (world size 1: the local tensor is the whole tensor)."""
    state = torch.load(checkpoint / "model_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    return {k: (v.to_local() if hasattr(v, "to_local") else v) for k, v in state.items()}


def without_hf_weights(checkpoint: Path, target: Path) -> Path:
    """A copy of a checkpoint as verl's default save_contents leaves it: huggingface/ has config and tokenizer only."""
    shutil.copytree(checkpoint, target)
    (target / "huggingface" / "model.safetensors").unlink()
    return target


def model_logits(model) -> torch.Tensor:
    ids = torch.tensor([[5, 17, 42, 99, 3, 250, 7]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_checkpoints_are_listed_with_their_metrics_and_selected(verl_run):
    checkpoints = list_checkpoints(verl_run["root"])
    assert [c["step"] for c in checkpoints] == [2, 3]
    assert all(c["format"] == "verl-fsdp+hf" and c["size_bytes"] > 0 and not c["lora"] for c in checkpoints)
    with_metrics = attach_metrics(checkpoints, read_metrics_jsonl([verl_run["metrics"]]))
    assert all("val/loss" in c["metrics"] and "train/loss" in c["metrics"] for c in with_metrics)
    chosen, reason, series = select_checkpoint(with_metrics, "lowest_val_loss")
    best = min(with_metrics, key=lambda c: c["metrics"]["val/loss"])
    assert chosen["step"] == best["step"] and f"step {best['step']} has the lowest val/loss" in reason
    assert [p["step"] for p in series["points"]] == [2, 3]


def test_conversion_gives_the_trained_weights_and_logits(platform, verl_run, tmp_path):
    from transformers import AutoModelForCausalLM

    original = verl_run["root"] / "global_step_3"
    checkpoint = without_hf_weights(original, tmp_path / "global_step_3")
    with pytest.raises(InvalidInput, match="has not been converted"):
        resolve_model_dir(platform, str(checkpoint))

    params = plan_convert(platform, str(checkpoint))
    task_id = create_task(platform, "surgery.convert", "convert", params)
    assert execute_task(platform, task_id)["state"] == "completed"
    target = converted_dir(platform, checkpoint)
    assert Path(params["target"]) == target and resolve_model_dir(platform, str(checkpoint)) == target
    log = Path(platform.store.get("tasks", task_id)["log_path"]).read_text()
    assert "verl.model_merger" in log and "Saving model to" in log

    converted = load_state(target)
    shards = fsdp_state(original)
    trained = load_file(str(original / "huggingface" / "model.safetensors"))  # verl's own save, fp32
    assert converted.keys() <= shards.keys() and converted.keys() == trained.keys()
    for name, tensor in converted.items():
        assert tensor.dtype == torch.bfloat16  # verl's merger writes bf16
        assert torch.equal(trained[name], shards[name]), name
        assert torch.equal(tensor, shards[name].to(torch.bfloat16)), name

    ours = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32).eval()
    theirs = AutoModelForCausalLM.from_pretrained(original / "huggingface", dtype=torch.float32).eval()
    full_precision = model_logits(theirs)
    rounded = model_logits(theirs.to(torch.bfloat16).to(torch.float32))  # the trained weights, rounded as verl does
    ours_logits = model_logits(ours)
    torch.testing.assert_close(ours_logits, rounded, atol=1e-5, rtol=1e-5)
    rounding = (rounded - full_precision).abs().max()
    assert 1e-5 < rounding < 0.05 * full_precision.abs().max()

    again = convert_verl_checkpoint(checkpoint, target, log=lambda line: None)
    assert again["skipped"]
    later = time.time() + 60  # newer than the conversion, however long ago the fixture trained
    os.utime(checkpoint / "model_world_size_1_rank_0.pt", (later, later))
    assert not conversion_is_current(checkpoint, target)


def test_export_converts_when_needed_and_copies_only_the_model(platform, verl_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with_weights = verl_run["root"] / "global_step_2"
    plan = plan_export(platform, str(with_weights), "sft-step2")
    assert plan["checkpoint"] is None and plan["source"] == str((with_weights / "huggingface").resolve())

    checkpoint = without_hf_weights(with_weights, tmp_path / "global_step_2")
    plan = plan_export(platform, str(checkpoint), "sft-step2-converted")
    assert plan["checkpoint"] == str(checkpoint)
    task_id = create_task(platform, "surgery.export", "export", plan)
    assert execute_task(platform, task_id)["state"] == "completed"
    out = platform.workspace.models / "sft-step2-converted"
    assert sorted(p.name for p in out.iterdir()) == [
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        assert torch.isfinite(model(**tokenizer("What is 2+2?", return_tensors="pt")).logits).all()
    row = platform.store.find_one("models", "name = ?", ("sft-step2-converted",))
    assert row["source"] == "export" and row["path"] == str(out.resolve())
    with pytest.raises(InvalidInput, match="already exists and is not empty"):
        plan_export(platform, str(checkpoint), "sft-step2-converted")


def test_a_lora_checkpoint_becomes_a_full_model_with_the_trained_adapter_merged(verl_lora_run, tmp_path):
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    (checkpoint,) = list_checkpoints(verl_lora_run["root"])
    assert checkpoint["lora"] and checkpoint["format"] == "verl-fsdp"  # its huggingface/ holds PEFT-wrapped tensors
    source = Path(checkpoint["path"])
    target = tmp_path / "merged"
    lines: list[str] = []
    result = convert_verl_checkpoint(source, target, log=lines.append)
    assert result["lora"] and any("Saving lora adapter" in line for line in lines)
    assert (target / "lora_adapter" / "adapter_config.json").is_file()
    assert not any("lora_" in name or "base_layer" in name for name in load_state(target))
    assert conversion_is_current(source, target)

    # The trained weights as verl saved them (fp32, PEFT-wrapped), applied by peft.
    adapter = json.loads((target / "lora_adapter" / "adapter_config.json").read_text())
    base = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source / "huggingface"))
    trained = get_peft_model(
        base, LoraConfig(r=adapter["r"], lora_alpha=adapter["lora_alpha"], target_modules=adapter["target_modules"])
    )
    missing, unexpected = trained.load_state_dict(
        load_file(str(source / "huggingface" / "model.safetensors")), strict=False
    )
    assert not unexpected and all("lm_head" in name for name in missing)
    trained_logits = model_logits(trained.eval())
    with trained.disable_adapter():
        adapter_effect = (model_logits(trained) - trained_logits).abs().max()
    ours = model_logits(AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32).eval())
    error = (ours - trained_logits).abs().max()  # bf16 rounding of the merged weights
    assert error < 0.02 * trained_logits.abs().max()
    assert adapter_effect > 3 * error  # the merged adapter is really there
