"""The demo kit: a tiny but real HF causal LM and sample datasets, built offline in seconds.

The model is a Qwen2 architecture with random weights and a byte-level BPE tokenizer trained on the demo text,
with a Qwen-style chat template, saved with save_pretrained. The datasets follow the user's guide formats. Their
main task is one-digit arithmetic with short answers, which the tiny model learns within a minute on a CPU, so
a demo run visibly improves it (loss down, eval accuracy up).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from platform_core.workspace.layout import Workspace

DEMO_MODEL_NAME = "demo-qwen2-tiny"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MODEL_CONFIG = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}

GENERAL_QA = [
    ("什么是机器学习？", "机器学习是人工智能的一个分支，通过数据训练模型来做出预测或决策。"),
    ("如何学习编程？", "学习编程建议从 Python 开始，它语法简洁，适合入门。"),
    ("What is a GPU?", "A GPU is a processor built for parallel math, used to train neural networks."),
    ("What does SFT mean?", "SFT means supervised fine-tuning: training a model on prompts with reference responses."),
    ("什么是强化学习？", "强化学习让模型通过奖励信号不断改进自己的行为。"),
    ("Why use LoRA?", "LoRA trains small low-rank adapters, so fine-tuning needs far less GPU memory."),
    ("什么是过拟合？", "过拟合是模型记住了训练数据，却在新数据上表现变差。"),
    ("What is a learning rate?", "The learning rate sets how big each optimizer step is."),
]
POEM_PROMPTS = [
    "请写一首关于春天的诗",
    "Write a haiku about the sea",
    "请写一句关于月亮的诗",
    "Write one line about rain",
]


def _question(a: int, b: int, op: str, style: int) -> str:
    styles = [f"What is {a}{op}{b}?", f"计算: {a} {op} {b} = ?", f"{a}{op}{b}="]
    return styles[style % len(styles)]


def _answer(a: int, b: int, op: str) -> int:
    return a + b if op == "+" else a - b


def arithmetic_items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Return `count` one-digit additions/subtractions (non-negative results) with question and answer text."""
    items = []
    for i in range(count):
        op = "+" if rng.random() < 0.6 else "-"
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        if op == "-" and b > a:
            a, b = b, a
        items.append(
            {
                "prompt": _question(a, b, op, i),
                "answer": str(_answer(a, b, op)),
                "category": "addition" if op == "+" else "subtraction",
            }
        )
    return items


def counting_items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Return `count` "what comes after N" questions (N 0..8): nine facts a random tiny model learns in about two
    minutes of demo SFT on a CPU, where one-digit arithmetic (a hundred facts) needs far longer."""
    styles = ["What comes after {n}?", "{n} 的下一个数是？", "Count on from {n}:"]
    items = []
    for i in range(count):
        n = rng.randint(0, 8)
        items.append({"prompt": styles[i % len(styles)].format(n=n), "answer": str(n + 1), "category": "counting"})
    return items


def demo_records(seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Return the demo datasets by type (sft, grpo, ppo, dpo, eval) in the user's guide formats.

    The SFT set is half counting (learned within the demo SFT run: the eval's `counting` category goes from 0 to
    nearly 100%), half one-digit arithmetic (partly learned), plus a few general questions."""
    rng = random.Random(seed)
    sft = [{"prompt": it["prompt"], "response": it["answer"]} for it in arithmetic_items(rng, 240)]
    sft += [{"prompt": it["prompt"], "response": it["answer"]} for it in counting_items(rng, 240)]
    sft += [{"prompt": q, "response": a} for q, a in GENERAL_QA]
    rng.shuffle(sft)
    grpo = [
        {"prompt": it["prompt"], "data_source": "math", "solution": it["answer"]} for it in arithmetic_items(rng, 128)
    ]
    ppo = [{"prompt": it["prompt"], "data_source": "math"} for it in arithmetic_items(rng, 48)]
    ppo += [{"prompt": p, "data_source": "creative"} for p in POEM_PROMPTS * 4]
    dpo = []
    for it in arithmetic_items(rng, 160):
        wrong = str(int(it["answer"]) + rng.choice([-3, -2, -1, 1, 2, 3]))
        dpo.append({"prompt": it["prompt"], "chosen": it["answer"], "rejected": wrong})
    for q, a in GENERAL_QA:
        dpo.append(
            {
                "prompt": q,
                "chosen": a,
                "rejected": "不知道。" if any("\u4e00" <= c <= "\u9fff" for c in q) else "No idea.",
            }
        )
    sft_val = [
        {"prompt": it["prompt"], "response": it["answer"]}
        for it in arithmetic_items(rng, 32) + counting_items(rng, 32)
    ]
    eval_items = [
        {"prompt": it["prompt"], "reference": it["answer"], "category": it["category"]}
        for it in arithmetic_items(rng, 32) + counting_items(rng, 16)
    ]
    eval_items += [{"prompt": q, "reference": a, "category": "general"} for q, a in GENERAL_QA]
    return {"sft": sft, "grpo": grpo, "ppo": ppo, "dpo": dpo, "eval": eval_items, "sft_val": sft_val}


DATASET_FILES = {
    "sft": "sft_demo.jsonl",
    "grpo": "grpo_demo.json",
    "ppo": "ppo_demo.jsonl",
    "dpo": "dpo_demo.json",
    "eval": "eval_demo.jsonl",
    "sft_val": "sft_val_demo.jsonl",
}
VALIDATION_SETS = {"sft_val": "sft"}  # validation files: registered with their training type


def write_datasets(directory: Path, seed: int = 0) -> dict[str, Path]:
    """Write the demo datasets (JSONL or JSON array, as named in DATASET_FILES); return their paths by type."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, records in demo_records(seed).items():
        path = directory / DATASET_FILES[kind]
        if path.suffix == ".jsonl":
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        else:
            path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
        paths[kind] = path
    return paths


def tokenizer_corpus(seed: int = 0) -> list[str]:
    """Text the demo tokenizer is trained on: every demo record rendered with the chat template, plus all sums."""
    lines = []
    for records in demo_records(seed).values():
        for record in records:
            lines.extend(str(v) for v in record.values())
            answer = record.get("response") or record.get("chosen") or record.get("solution") or ""
            lines.append(f"<|im_start|>user\n{record['prompt']}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>")
    for a in range(10):
        for b in range(10):
            lines.append(f"What is {a}+{b}? {a + b}. 计算: {a} - {b} = {a - b}")
    return lines


# Qwen2's pre-tokenizer. AutoTokenizer loads a qwen2 model's tokenizer as Qwen2Tokenizer, which rebuilds this
# pipeline from vocab + merges and ignores the one saved in tokenizer.json, so training with anything else would
# give different token ids depending on how the tokenizer is loaded.
QWEN_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def build_tokenizer(directory: Path, seed: int = 0, vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer (Qwen2's pipeline) on the demo corpus, save it with the chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return fast


def build_model(directory: Path, seed: int = 0) -> Path:
    """Build and save the tiny Qwen2 model and its tokenizer in `directory`; return the directory."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(directory, seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_CONFIG,
    )
    config.architectures = ["Qwen2ForCausalLM"]
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, max_new_tokens=32
    )
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def demo_paths(workspace: Workspace) -> dict[str, Path]:
    """Return where the demo kit lives in a workspace."""
    return {
        "model": workspace.models / DEMO_MODEL_NAME,
        "data": workspace.demo / "data",
        "specs": workspace.demo / "specs",
    }


def demo_exists(workspace: Workspace) -> bool:
    paths = demo_paths(workspace)
    return (paths["model"] / "config.json").is_file() and all(
        (paths["data"] / name).is_file() for name in DATASET_FILES.values()
    )


def init_demo(platform, force: bool = False, log=print) -> dict[str, Any]:
    """Build the demo kit in the platform's workspace (skipping what exists unless `force`) and register it.

    Registers the model and the datasets (demo-sft, demo-grpo, ...), trains the tiny reward model PPO needs, and
    writes ready job specs under <workspace>/demo/specs/. Returns the paths and ids.
    """
    from platform_core.datasets.service import register_demo_datasets
    from platform_core.jobs.demo import write_demo_job_kit
    from platform_core.models import register_model

    paths = demo_paths(platform.workspace)
    result: dict[str, Any] = {"model": str(paths["model"])}
    if force or not (paths["model"] / "config.json").is_file():
        log(f"building the demo model in {paths['model']}")
        build_model(paths["model"])
    result["model_id"] = register_model(platform, paths["model"], name=DEMO_MODEL_NAME, source="demo")
    files = write_datasets(paths["data"])
    result["datasets"] = {kind: str(path) for kind, path in files.items()}
    result["dataset_ids"] = register_demo_datasets(platform, files)
    result.update(write_demo_job_kit(platform, paths, files, force, log))
    return result
