"""Conversions are read back by the engines' own code: verl's RLHFDataset and MultiTurnSFTDataset, TRL's DPOTrainer."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from platform_core.datasets.convert import targets_for
from platform_core.datasets.service import add_dataset, convert_for, converted_dir, update_field_config
from platform_core.errors import InvalidInput

GRPO = [{"prompt": f"计算: {i} + 2 = ?", "data_source": "math", "solution": i + 2, "level": i % 3} for i in range(8)]
GRPO.append({"prompt": "What is 1+1?", "data_source": "math"})  # row 8: no solution -> left out


@pytest.fixture
def tokenizer(demo_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(demo_model_dir))


def test_grpo_becomes_verl_rl_that_rlhfdataset_reads(platform, write, tokenizer, tmp_path):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    dataset_id = add_dataset(platform, write.jsonl("grpo.jsonl", GRPO), "grpo", "grpo")["id"]
    path = convert_for(platform, dataset_id, "verl_rl")
    assert (
        path.parent == converted_dir(platform) and convert_for(platform, dataset_id) == path
    )  # default target, reused
    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 64,
            "cache_dir": str(tmp_path / "verl"),
            "truncation": "error",
            "filter_overlong_prompts": True,
        }
    )
    dataset = RLHFDataset(str(path), tokenizer, config)
    assert len(dataset) == 8
    item = dataset[3]
    assert item["data_source"] == "math" and item["ability"] == "general"
    assert item["raw_prompt"] == [{"role": "user", "content": "计算: 3 + 2 = ?"}]
    assert item["reward_model"] == {"style": "rule", "ground_truth": "5"}
    assert (
        item["extra_info"]["index"] == 3 and item["index"] == 3 and item["extra_info"]["question"] == GRPO[3]["prompt"]
    )
    rendered = tokenizer.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")


def test_ppo_and_eval_become_verl_rl_too(platform, write, tokenizer, tmp_path):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    ppo = add_dataset(
        platform, write.json("ppo.json", [{"prompt": "写一首诗"}, {"prompt": "Write a poem"}]), "ppo", "p"
    )
    evals = add_dataset(
        platform, write.jsonl("e.jsonl", [{"prompt": "2+2=", "reference": 4, "category": "add"}]), "eval", "e"
    )
    config = OmegaConf.create({"max_prompt_length": 32, "cache_dir": str(tmp_path / "verl")})
    ppo_set = RLHFDataset(str(convert_for(platform, ppo["id"], "verl_rl")), tokenizer, config)
    assert ppo_set[1]["reward_model"]["style"] == "model" and ppo_set[1]["data_source"] == "default"
    eval_set = RLHFDataset(str(convert_for(platform, evals["id"], "verl_rl")), tokenizer, config)
    assert eval_set[0]["reward_model"]["ground_truth"] == "4" and eval_set[0]["data_source"] == "add"


def test_sft_pairs_and_chats_become_messages_that_multiturn_sft_dataset_reads(platform, write, tokenizer):
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    pairs = [{"prompt": f"What is {i}+1?", "response": str(i + 1)} for i in range(5)] + [{"prompt": "x", "response": 7}]
    chat = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4", "weight": 1},
            ]
        }
    ]
    config = OmegaConf.create({"max_length": 64, "truncation": "right"})
    for name, rows in (("pairs.jsonl", pairs), ("chat.jsonl", chat)):
        dataset_id = add_dataset(platform, write.jsonl(name, rows), "sft", name)["id"]
        path = convert_for(platform, dataset_id, "verl_sft")
        assert pq.read_schema(path).names == ["messages", "index"]
        dataset = MultiTurnSFTDataset(str(path), tokenizer, config)
        assert len(dataset) == (5 if name == "pairs.jsonl" else 1)
        item = dataset[0]
        trained = tokenizer.decode(item["input_ids"][item["loss_mask"].bool()])
        assert ("1" if name == "pairs.jsonl" else "4") in trained and "What is" not in trained
        assert int(item["attention_mask"].sum()) > int(item["loss_mask"].sum()) > 0


def test_dpo_becomes_what_trl_dpo_trainer_tokenizes(platform, write, tokenizer, demo_model_dir, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    rows = [{"prompt": f"{i}+1=?", "chosen": str(i + 1), "rejected": str(i + 2)} for i in range(6)]
    rows.append({"prompt": "same?", "chosen": "yes", "rejected": "yes"})  # identical: left out
    dataset_id = add_dataset(platform, write.jsonl("dpo.jsonl", rows), "dpo", "dpo")["id"]
    path = convert_for(platform, dataset_id, "trl_dpo")
    data = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert data.column_names == ["prompt", "chosen", "rejected"] and len(data) == 6
    assert not is_conversational(data[0]) and maybe_apply_chat_template(data[0], tokenizer) == rows[0]
    model = AutoModelForCausalLM.from_pretrained(str(demo_model_dir))
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        report_to=[],
        max_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
        max_length=32,
    )
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    first = trainer.train_dataset[0]
    assert first["chosen_ids"] == tokenizer("1<|im_end|>", add_special_tokens=False)["input_ids"]
    assert first["prompt_ids"] == tokenizer("0+1=?", add_special_tokens=False)["input_ids"]


def test_grpo_becomes_a_conversational_trl_dataset(platform, write, tokenizer, tmp_path):
    import datasets
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    dataset_id = add_dataset(platform, write.jsonl("grpo.jsonl", GRPO), "grpo", "grpo")["id"]
    data = datasets.load_dataset(
        "parquet",
        data_files=str(convert_for(platform, dataset_id, "trl_rl")),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert len(data) == 8 and data[2]["solution"] == "4" and data[2]["data_source"] == "math"
    assert is_conversational(data[2])
    assert maybe_apply_chat_template(data[2], tokenizer)["prompt"].endswith("<|im_start|>assistant\n")


def test_conversion_follows_the_field_configuration_and_refuses_wrong_targets(platform, write):
    rows = [{"question": f"{i}*2?", "gold": str(i * 2), "source": "mul"} for i in range(4)]
    dataset_id = add_dataset(
        platform,
        write.parquet("mul.parquet", rows),
        "grpo",
        "mul",
        field_config={"prompt_field": "question", "answer_field": "gold", "data_source_field": "source"},
    )["id"]
    first = convert_for(platform, dataset_id, "verl_rl")
    table = pq.read_table(first)
    assert table.column("reward_model").to_pylist()[3]["ground_truth"] == "6"
    assert table.column("data_source").to_pylist() == ["mul"] * 4
    update_field_config(platform, dataset_id, {"data_source_field": "", "data_source_default": "arith"})
    second = convert_for(platform, dataset_id, "verl_rl")
    assert second != first and pq.read_table(second).column("data_source").to_pylist() == ["arith"] * 4
    with pytest.raises(InvalidInput, match="GRPO datasets cannot become trl_dpo"):
        convert_for(platform, dataset_id, "trl_dpo")
    assert targets_for("grpo")[0] == "verl_rl"
