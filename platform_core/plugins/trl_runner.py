"""The platform's TRL runner: `python trl_runner.py --config job.json [--resume|--fresh]`.

Runs SFT, DPO, GRPO or PPO with TRL on the model and data the platform prepared, writing the same files as a verl
run (metrics.jsonl in verl's file-logger shape, gradnorms.jsonl, status.json, rollouts/<step>.jsonl) and honouring
the pause control file. Imports only the training stack (torch, transformers, trl, datasets) and its sibling
plugin modules, so it runs unchanged next to a remote job.

`python trl_runner.py --train-reward-model --model DIR --pairs FILE --out DIR --steps N` trains a tiny reward
model (sequence classification, 1 label) on preference pairs with TRL's RewardTrainer (used by the demo kit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from trl_callback import PlatformCallback, TrainingPaused, attach_preclip_gradnorms  # noqa: E402

if os.environ.get("PLATFORM_TORCH_THREADS"):
    # On a small shared CPU box, intra-op threads competing with other processes slow generation ~10x.
    torch.set_num_threads(int(os.environ["PLATFORM_TORCH_THREADS"]))


def _status(step: int, total: int, **extra) -> None:
    path = os.environ.get("PLATFORM_STATUS_FILE")
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(
            {"step": step, "total_training_steps": total, "time": time.time(), "pid": os.getpid(), **extra}, handle
        )
    os.replace(tmp, path)


def _training_args(cls, cfg: dict, **extra):
    cpu = cfg["device"] == "cpu"
    micro = cfg["micro_batch_size_per_gpu"]
    per_step = extra.pop("sequences_per_step", cfg["batch_size"])
    accumulation = max(1, per_step // (micro * cfg["world_size"]))
    return cls(
        output_dir=cfg["output_dir"],
        max_steps=cfg["total_steps"],
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        learning_rate=cfg["learning_rate"],
        warmup_ratio=cfg.get("warmup_ratio", 0.0),
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg["save_freq"],
        save_total_limit=cfg.get("max_checkpoints"),
        seed=cfg["seed"],
        use_cpu=cpu,
        bf16=not cpu and torch.cuda.is_bf16_supported(),
        fp16=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        gradient_checkpointing=cfg["gradient_checkpointing"] and not cpu,
        **extra,
    )


def _load_model(cfg: dict, path: str | None = None):
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if cfg["device"] == "cpu" else torch.bfloat16
    # The supervisor sets PLATFORM_ATTN_OVERRIDE when attention "auto" asked for flash-attention and it cannot run here.
    attn = os.environ.get("PLATFORM_ATTN_OVERRIDE") or cfg.get("attn_implementation") or "sdpa"
    return AutoModelForCausalLM.from_pretrained(path or cfg["model_path"], dtype=dtype, attn_implementation=attn)


def _peft_config(cfg: dict):
    if not cfg["lora"]["enabled"]:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg["lora"]["rank"], lora_alpha=cfg["lora"]["alpha"], target_modules="all-linear", task_type="CAUSAL_LM"
    )


def _dataset(path: str | None):
    if not path:
        return None
    from datasets import load_dataset

    return load_dataset("parquet", data_files=path, split="train")


def _rl_dataset(path: str | None):
    """TRL's RL data: prompt (chat list), solution (ground truth), data_source; verl's RL parquet is mapped to it."""
    ds = _dataset(path)
    if ds is None or "solution" in ds.column_names:
        return ds
    keep = {"prompt", "solution", "data_source"}
    return ds.map(
        lambda r: {
            "solution": str((r.get("reward_model") or {}).get("ground_truth", "")),
            "prompt": r["prompt"],
            "data_source": r.get("data_source", ""),
        },
        remove_columns=[c for c in ds.column_names if c not in keep],
    )


def _dpo_dataset(path: str | None, tokenizer):
    """Plain prompt/chosen/rejected strings become conversations when the model has a chat template."""
    ds = _dataset(path)
    if ds is None or not tokenizer.chat_template or not isinstance(ds[0]["prompt"], str):
        return ds
    return ds.map(
        lambda r: {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
    )


def _resume_arg(cfg: dict, resume: bool):
    if not resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(cfg["output_dir"]) if os.path.isdir(cfg["output_dir"]) else None


def _callbacks(cfg: dict, raise_on_pause: bool = False):
    from transformers import TrainerCallback

    status = type(
        "PlatformStatus",
        (TrainerCallback,),
        {"on_step_end": lambda self, args, state, control, **kw: _status(state.global_step, cfg["total_steps"])},
    )
    return [PlatformCallback(raise_on_pause=raise_on_pause), status()]


def run_sft(cfg: dict, tokenizer, resume: bool):
    from trl import SFTConfig, SFTTrainer

    args = _training_args(SFTConfig, cfg, max_length=cfg.get("max_length", 1024), assistant_only_loss=False)
    trainer = SFTTrainer(
        model=_load_model(cfg),
        args=args,
        train_dataset=_dataset(cfg["train_files"]),
        eval_dataset=_dataset(cfg.get("val_files")),
        processing_class=tokenizer,
        peft_config=_peft_config(cfg),
        callbacks=_callbacks(cfg),
    )
    attach_preclip_gradnorms(trainer)
    trainer.train(resume_from_checkpoint=_resume_arg(cfg, resume))


def run_dpo(cfg: dict, tokenizer, resume: bool):
    from trl import DPOConfig, DPOTrainer

    args = _training_args(DPOConfig, cfg, beta=cfg["beta"], max_length=cfg["max_length"])
    # Full DPO needs a frozen reference: load it like the policy (bf16 on a GPU). Left to TRL (ref_model=None) it would
    # be loaded from the path in float32, twice the memory. With LoRA the base with adapters disabled is the reference.
    trainer = DPOTrainer(
        model=_load_model(cfg),
        ref_model=None if cfg["lora"]["enabled"] else _load_model(cfg),
        args=args,
        train_dataset=_dpo_dataset(cfg["train_files"], tokenizer),
        eval_dataset=_dpo_dataset(cfg.get("val_files"), tokenizer),
        processing_class=tokenizer,
        peft_config=_peft_config(cfg),
        callbacks=_callbacks(cfg),
    )
    attach_preclip_gradnorms(trainer)
    trainer.train(resume_from_checkpoint=_resume_arg(cfg, resume))


def reward_function(cfg: dict):
    """A TRL reward function scoring completions with the platform's reward (reward.py), dumping rollouts."""
    from reward import score_details

    settings = dict(cfg["reward"])
    settings.pop("answer_field", None)  # in configs written before it left the spec; the answer is `solution`
    rollout_dir = cfg.get("rollout_dir")
    if rollout_dir:
        os.makedirs(rollout_dir, exist_ok=True)

    def platform_reward(prompts, completions, solution, trainer_state=None, data_source=None, **kwargs):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        sources = data_source or [""] * len(texts)
        details = [
            score_details(text, truth, data_source=src, **settings)
            for text, truth, src in zip(texts, solution, sources, strict=True)
        ]
        step = trainer_state.global_step + 1 if trainer_state is not None else 0
        if rollout_dir:
            with open(os.path.join(rollout_dir, f"{step}.jsonl"), "a", encoding="utf-8") as handle:
                for prompt, text, truth, d in zip(prompts, texts, solution, details, strict=True):
                    shown = prompt[-1]["content"] if isinstance(prompt, list) else prompt
                    handle.write(
                        json.dumps(
                            {
                                "input": shown,
                                "output": text,
                                "gts": truth,
                                "score": d["score"],
                                "acc": d["acc"],
                                "extracted": d["extracted"],
                                "step": step,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
        return [d["score"] for d in details]

    platform_reward.__name__ = f"reward_{cfg['reward']['reward_type']}"
    return platform_reward


def run_grpo(cfg: dict, tokenizer, resume: bool):
    from trl import GRPOConfig, GRPOTrainer

    args = _training_args(
        GRPOConfig,
        cfg,
        sequences_per_step=cfg["batch_size"] * cfg["rollout_n"],
        num_generations=cfg["rollout_n"],
        max_completion_length=cfg["max_response_length"],
        temperature=cfg["temperature"],
        beta=cfg["kl_coef"],
        log_completions=False,
    )
    trainer = GRPOTrainer(
        model=_load_model(cfg),
        reward_funcs=[reward_function(cfg)],
        args=args,
        train_dataset=_rl_dataset(cfg["train_files"]),
        processing_class=tokenizer,
        peft_config=_peft_config(cfg),
        callbacks=_callbacks(cfg),
    )
    attach_preclip_gradnorms(trainer)
    trainer.train(resume_from_checkpoint=_resume_arg(cfg, resume))


def run_ppo(cfg: dict, tokenizer, resume: bool):
    from transformers import AutoModelForSequenceClassification
    from trl.experimental.ppo import PPOConfig
    from trl_ppo import ResumablePPOTrainer

    if not cfg.get("reward_model_path"):
        raise SystemExit("TRL's PPO needs a reward model: set reward_model_path (or run GRPO for a rule reward)")
    checkpoint = _resume_arg(cfg, resume)
    tokenizer.padding_side = "left"  # PPOTrainer generates from the padded prompt batch: pad on the left
    dtype = torch.float32 if cfg["device"] == "cpu" else torch.bfloat16
    policy = _load_model(cfg, checkpoint or cfg["model_path"])
    reference = _load_model(cfg)
    value_source = os.path.join(checkpoint, "value_model") if checkpoint else cfg["critic_model_path"]
    value = AutoModelForSequenceClassification.from_pretrained(value_source, num_labels=1, dtype=dtype)
    reward = AutoModelForSequenceClassification.from_pretrained(cfg["reward_model_path"], num_labels=1, dtype=dtype)
    for model in (value, reward):
        model.config.pad_token_id = tokenizer.pad_token_id
    ds = _rl_dataset(cfg["train_files"])

    def tokenize(row):
        prompt = row["prompt"]
        if isinstance(prompt, list) and tokenizer.chat_template:
            # transformers 5 returns a BatchEncoding (a Mapping, not a dict) unless return_dict=False
            ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        else:
            ids = tokenizer(prompt if isinstance(prompt, str) else prompt[-1]["content"], add_special_tokens=False)[
                "input_ids"
            ]
        return {"input_ids": ids}

    ds = ds.map(tokenize, remove_columns=ds.column_names)
    micro = cfg["micro_batch_size_per_gpu"]
    args = _training_args(
        PPOConfig,
        cfg,
        total_episodes=cfg["total_steps"] * cfg["batch_size"],
        num_ppo_epochs=1,
        num_mini_batches=max(1, cfg["batch_size"] // cfg["mini_batch_size"]),
        local_rollout_forward_batch_size=micro,
        response_length=cfg["max_response_length"],
        stop_token="eos",
        kl_coef=cfg["kl_coef"] or 0.05,
        cliprange=cfg["clip_ratio"],
        num_sample_generations=0,
    )
    trainer = ResumablePPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=ds,
        eval_dataset=ds.select(range(min(8, len(ds)))),
        callbacks=_callbacks(cfg, raise_on_pause=True),
    )
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except TrainingPaused:
        print("paused: checkpoint written", flush=True)


RUNNERS = {"sft": run_sft, "dpo": run_dpo, "grpo": run_grpo, "ppo": run_ppo}


def train_reward_model(model_dir: str, pairs_file: str, out_dir: str, steps: int = 16) -> str:
    """Train a sequence-classification reward model on prompt/chosen/rejected pairs; return its directory."""
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    data = load_dataset(
        "json" if pairs_file.endswith((".json", ".jsonl")) else "parquet", data_files=pairs_file, split="train"
    )
    args = RewardConfig(
        output_dir=os.path.join(out_dir, "_run"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=steps,
        save_strategy="no",
        max_length=64,
        use_cpu=True,
        report_to="none",
        seed=0,
        disable_tqdm=True,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--train-reward-model", action="store_true")
    parser.add_argument("--model")
    parser.add_argument("--pairs")
    parser.add_argument("--out")
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args(argv)
    if args.train_reward_model:
        print(train_reward_model(args.model, args.pairs, args.out, args.steps))
        return 0
    with open(args.config, encoding="utf-8") as handle:
        cfg = json.load(handle)
    from transformers import AutoTokenizer

    torch.manual_seed(cfg["seed"])
    tokenizer = AutoTokenizer.from_pretrained(cfg["model_path"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    print(
        f"[platform] TRL {cfg['algorithm'].upper()} on {cfg['device']}: {cfg['total_steps']} steps "
        f"({'resume' if args.resume else 'fresh'})",
        flush=True,
    )
    _status(0, cfg["total_steps"])
    RUNNERS[cfg["algorithm"]](cfg, tokenizer, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
