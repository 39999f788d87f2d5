"""The demo kit builds offline into a real HF model that loads and generates, and registers itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from platform_core.workspace.demo import DATASET_FILES, demo_records


def test_demo_model_loads_and_generates_with_its_chat_template(demo_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    assert model.config.architectures == ["Qwen2ForCausalLM"]
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3+4?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    text = tokenizer.decode(inputs["input_ids"][0])
    assert text.endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert tokenizer.decode(tokenizer("计算: 25 + 37 = ?")["input_ids"]) == "计算: 25 + 37 = ?"


def test_every_tokenizer_loader_gives_the_same_ids(demo_model_dir):
    """AutoTokenizer rebuilds Qwen2's pre-tokenizer; the demo tokenizer is trained with it, so ids agree."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer.from_file(str(demo_model_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(demo_model_dir)
    fast = PreTrainedTokenizerFast.from_pretrained(demo_model_dir)
    for text in ["What is 12+7? 19", "计算: 25 + 37 = ?", "<|im_start|>user\nhi<|im_end|>"]:
        assert auto(text)["input_ids"] == raw.encode(text).ids == fast(text)["input_ids"]


def test_demo_records_follow_the_guide_formats():
    records = demo_records()
    assert set(records["sft"][0]) == {"prompt", "response"}
    assert set(records["grpo"][0]) == {"prompt", "data_source", "solution"}
    assert set(records["ppo"][0]) == {"prompt", "data_source"}
    assert set(records["dpo"][0]) == {"prompt", "chosen", "rejected"}
    assert all(r["chosen"] != r["rejected"] for r in records["dpo"])
    assert {"prompt", "reference", "category"} <= set(records["eval"][0])
    assert demo_records() == records  # deterministic


def test_demo_init_cli_builds_offline_and_registers_the_model(tmp_path):
    home = tmp_path / "ws"
    env = {**os.environ, "PLATFORM_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "platform_core", "demo", "init", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for kind, name in DATASET_FILES.items():
        assert result["datasets"][kind].endswith(name)
    listed = subprocess.run(
        [sys.executable, "-m", "platform_core", "model", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    models = {m["name"]: m for m in json.loads(listed.stdout)}
    assert models["demo-qwen2-tiny"]["architecture"] == "Qwen2ForCausalLM"
    assert models["demo-qwen2-tiny"]["params"] > 100_000
    assert models["demo-reward-model"]["architecture"] == "Qwen2ForSequenceClassification"
    again = subprocess.run(
        [sys.executable, "-m", "platform_core", "demo", "init", "--if-missing", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(again.stdout) == {"skipped": True}
