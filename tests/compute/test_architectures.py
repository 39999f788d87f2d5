"""Presets count exactly what transformers builds from the same config; local config.json files are read."""

from __future__ import annotations

import json

import pytest
import torch

from platform_core.compute.architectures import PRESETS, architecture_from_dir, get_architecture, preset
from platform_core.errors import InvalidInput, NotFound


def _meta_model(config: dict):
    from transformers import AutoConfig, AutoModelForCausalLM

    hf = AutoConfig.for_model(**{k: v for k, v in config.items() if k != "hf_id"})
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_parameter_count_equals_the_meta_model(name):
    model = _meta_model(PRESETS[name])
    arch = preset(name)
    params = list(model.parameters())
    assert arch.total_params == sum(p.numel() for p in params)
    assert arch.param_tensors == len(params)
    largest_linear = max(p.numel() for p in params)
    assert arch.largest_layer_params == largest_linear


def test_published_totals():
    """Totals quoted in memory.md §6 (also the Qwen2.5 blog)."""
    assert preset("Qwen2.5-7B").total_params == 7_615_616_512
    assert preset("Qwen2.5-72B").non_embedding_params == 70_214_787_072
    assert preset("Llama-3-8B").lora_params(16) == 41_943_040
    assert preset("Qwen2.5-7B").lora_params(8) == 20_185_088


def test_local_directory_matches_the_real_model(demo_model_dir):
    from transformers import AutoModelForCausalLM

    arch = get_architecture(str(demo_model_dir))
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    assert arch.source == str(demo_model_dir)
    assert arch.tie_embeddings is True
    assert arch.total_params == sum(p.numel() for p in model.parameters())
    assert arch.param_tensors == len(list(model.parameters()))


def test_lora_count_equals_peft_all_linear(demo_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    arch = architecture_from_dir(demo_model_dir)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(demo_model_dir), LoraConfig(r=4, target_modules="all-linear")
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert arch.lora_params(4) == sum(p.numel() for p in trainable)
    assert arch.lora_tensors(4) == len(trainable)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B"),
        ("qwen2.5-0.5b", "Qwen2.5-0.5B"),
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", "Llama-3-8B"),
        ("llama3-70b", "Llama-3-70B"),
        ("mistralai/Mistral-7B-Instruct-v0.2", "Mistral-7B"),
        ("Mistral-7B-Instruct-v0.3", "Mistral-7B-v0.3"),
    ],
)
def test_aliases(alias, name):
    assert get_architecture(alias).name == name


def test_unknown_model_lists_the_presets():
    with pytest.raises(NotFound, match="Qwen2.5-7B"):
        get_architecture("gpt-5")
    with pytest.raises(NotFound, match="no such model directory"):
        get_architecture("./missing/model")


def test_bad_configs_name_the_field(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    with pytest.raises(InvalidInput, match="num_attention_heads"):
        architecture_from_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**PRESETS["Qwen2.5-0.5B"], "num_experts": 64}))
    with pytest.raises(InvalidInput, match="mixture-of-experts"):
        architecture_from_dir(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="invalid JSON at line 1"):
        architecture_from_dir(tmp_path)


def test_qwen3_style_config_counts_exactly(tmp_path):
    """A family that is not a preset (explicit head_dim, q/k norms, no biases) read from its config.json."""
    config = {
        "model_type": "qwen3",
        "hidden_size": 256,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 96,
        "intermediate_size": 512,
        "vocab_size": 1000,
        "tie_word_embeddings": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = _meta_model(config)
    assert architecture_from_dir(tmp_path).total_params == sum(p.numel() for p in model.parameters())
