"""LoRA: adapters are found with their base, checked against it, and merged into a model that equals peft's merge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from surgery_models import logits, save_variant

from platform_core.errors import InvalidInput
from platform_core.surgery.lora import adapter_info, find_adapters, plan_lora_merge
from platform_core.tasks import create_task, execute_task


@pytest.fixture(scope="module")
def adapter(demo_model_dir, tmp_path_factory) -> Path:
    """A real LoRA adapter on the demo model with non-zero B matrices (so it changes the outputs)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(base, config)
    out = tmp_path_factory.mktemp("lora") / "run" / "checkpoint-8"
    model.save_pretrained(out)
    return out


def test_adapters_are_found_with_their_base(adapter, demo_model_dir):
    info = adapter_info(adapter)
    assert info["peft_type"] == "LORA" and info["r"] == 4
    assert Path(info["base_model_name_or_path"]).resolve() == demo_model_dir.resolve()
    assert find_adapters(adapter.parent.parent) == [adapter]
    assert adapter_info(demo_model_dir) is None


def test_merged_model_gives_the_logits_of_the_adapter_applied_by_peft(platform, adapter, demo_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plan = plan_lora_merge(platform, str(adapter), out="demo-lora")  # the base comes from adapter_config.json
    assert plan["base"] == str(demo_model_dir.resolve())
    task_id = create_task(platform, "surgery.lora_merge", "test", plan)
    assert execute_task(platform, task_id)["state"] == "completed"
    out = Path(plan["out"])
    assert not (out / "adapter_config.json").exists() and (out / "tokenizer.json").is_file()

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    inputs = tokenizer("What is 3+4?", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.no_grad():
        with_adapter = peft_model(**inputs).logits
        merged_by_peft = peft_model.merge_and_unload()(**inputs).logits
    ours = logits(out)
    torch.testing.assert_close(ours, merged_by_peft, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, with_adapter, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(ours, logits(demo_model_dir), atol=1e-3)  # the adapter did change the model
    assert platform.store.find_one("models", "path = ?", (str(out),))["meta"]["surgery"]["method"] == "lora"


def test_an_adapter_that_does_not_fit_the_base_is_refused(platform, adapter, demo_model_dir, tmp_path):
    wider = save_variant(demo_model_dir, tmp_path / "wider", 4, intermediate_size=320)
    with pytest.raises(
        InvalidInput, match="does not fit this base model: .*down_proj.lora_A.weight expects 256 inputs"
    ):
        plan_lora_merge(platform, str(adapter), base=str(wider), out="x")


def test_an_adapter_whose_base_is_unknown_asks_for_it(platform, adapter, tmp_path):
    moved = tmp_path / "adapter"
    shutil.copytree(adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInput, match="names 'Qwen/Qwen2.5-0.5B-Instruct' as its base.*choose the base"):
        plan_lora_merge(platform, str(moved), out="x")
    with pytest.raises(InvalidInput, match="not a LoRA adapter"):
        plan_lora_merge(platform, str(tmp_path), out="x")


def test_export_merges_an_adapter_checkpoint_and_links_it_to_the_job_checkpoint(
    platform, adapter, demo_model_dir, tmp_path
):
    """A TRL LoRA run saves adapter-only checkpoint-N folders: export merges them into the base (no refusal)."""
    from peft import PeftModel
    from surgery_models import record_job_checkpoints
    from transformers import AutoModelForCausalLM

    from platform_core.evaluation.runs import resolve_model
    from platform_core.surgery.export import plan_export

    ids = record_job_checkpoints(platform, adapter.parent, fmt="hf_lora")
    plan = plan_export(platform, str(adapter), "models/trl-lora-step8")
    assert plan["adapter"] == str(adapter.resolve()) and plan["base"] == str(demo_model_dir.resolve())
    out = platform.workspace.models.resolve() / "trl-lora-step8"
    assert plan["out"] == str(out)
    task_id = create_task(platform, "surgery.export", "export", plan)
    assert execute_task(platform, task_id)["state"] == "completed"
    assert not (out / "adapter_config.json").exists() and (out / "config.json").is_file()

    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32)
    merged_by_peft = PeftModel.from_pretrained(base, str(adapter)).eval().merge_and_unload()
    reference = tmp_path / "merged-by-peft"
    merged_by_peft.save_pretrained(reference)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(demo_model_dir / name, reference / name)
    torch.testing.assert_close(logits(out), logits(reference), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits(out), logits(demo_model_dir), atol=1e-3)

    row = platform.store.find_one("models", "path = ?", (str(out),))
    assert row["source"] == "export" and row["meta"]["surgery"]["adapter"] == str(adapter.resolve())
    # the job's checkpoint row now points at the exported model, so `checkpoint:<id>` can be evaluated
    checkpoint_id = ids[8]
    assert platform.store.get("checkpoints", checkpoint_id)["hf_path"] == str(out)
    assert resolve_model(platform, f"checkpoint:{checkpoint_id}") == (f"checkpoint:{checkpoint_id}", str(out))
