"""`configure`: predict GPU memory and recommend batch sizes and strategy (the compute configurator)."""

from __future__ import annotations

import argparse

from platform_core.cli import add_json_flag, emit


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")
    return value == "on"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "configure",
        help="predict GPU memory and recommend batch sizes, sharding, LoRA and checkpointing",
        description="Recommend a configuration that fits; with --strategy, predict that configuration instead.",
    )
    p.add_argument("--model", required=True, help="preset name (e.g. Qwen2.5-7B) or a local model directory")
    p.add_argument(
        "--gpu",
        required=True,
        help="rtx4090, rtx5090, a100-40g, a100-80g, h100, h200, l40s, a10g, v100, v100-16g, or custom:<GiB>",
    )
    p.add_argument("--gpu-memory", type=float, dest="gpu_memory_gib", help="memory of a custom GPU in GiB")
    p.add_argument("--gpu-tflops", type=float, help="bf16 TFLOPS of a custom GPU")
    p.add_argument("--gpus", type=int, default=1, dest="gpus_per_node", help="GPUs per node")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--seq-len", type=int, help="max sequence length (RL: prompt + response)")
    p.add_argument("--prompt-len", type=int, help="RL: max prompt length")
    p.add_argument("--response-len", type=int, help="RL: max response length")
    p.add_argument("--rollout-n", type=int, help="RL: responses per prompt (GRPO default 5)")
    p.add_argument("--algo", required=True, dest="algorithm", choices=["sft", "sft-lora", "dpo", "grpo", "ppo"])
    p.add_argument("--lora-rank", type=int, help="use LoRA with this rank")
    p.add_argument("--global-batch", type=int, dest="global_batch_size", help="SFT sequences / DPO pairs / RL prompts")
    p.add_argument(
        "--samples",
        type=int,
        default=10_000,
        help="training samples (RL: prompts) per epoch for the whole-run time (default 10000, listed in assumptions)",
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--ppo-epochs", type=int, default=1)
    p.add_argument("--mfu", type=float, help="model FLOPs utilisation for the time estimate")
    p.add_argument("--reward-model", action="store_true", help="PPO: a reward model of the policy's size")
    concrete = p.add_argument_group(
        "a concrete configuration (predict it instead of recommending): any of these needs --strategy"
    )
    concrete.add_argument("--strategy", choices=["ddp", "zero1", "zero2", "zero3", "fsdp"])
    concrete.add_argument("--micro-batch", type=int, help="sequences (DPO: pairs) per GPU per micro batch")
    concrete.add_argument("--gradient-checkpointing", type=_on_off, metavar="on|off")
    concrete.add_argument("--offload", choices=["none", "optimizer", "all"])
    concrete.add_argument("--fused-ce", type=_on_off, metavar="on|off")
    concrete.add_argument("--packing", type=_on_off, metavar="on|off")
    concrete.add_argument(
        "--precision",
        choices=["bf16", "fp32-master", "fp16"],
        help="fp32-master: fp32 weights, bf16 compute; bf16: pure bf16 / bf16 actor; fp16: fp32 weights, fp16 compute",
    )
    concrete.add_argument("--token-budget", type=int, help="tokens per GPU per micro batch (dynamic batching)")
    concrete.add_argument("--rollout-gpu-memory-utilization", type=float, help="RL: vLLM memory fraction")
    concrete.add_argument("--rollout-tp", type=int, help="RL: vLLM tensor parallel size")
    concrete.add_argument("--log-prob-token-budget", type=int, help="RL: log_prob_max_token_len_per_gpu")
    add_json_flag(p)
    p.set_defaults(handler=cmd_configure)


REQUEST_FIELDS = (
    "model",
    "gpu",
    "gpu_memory_gib",
    "gpu_tflops",
    "gpus_per_node",
    "nodes",
    "algorithm",
    "seq_len",
    "prompt_len",
    "response_len",
    "rollout_n",
    "lora_rank",
    "global_batch_size",
    "samples",
    "epochs",
    "ppo_epochs",
    "mfu",
    "reward_model",
    "strategy",
)  # plus recommend.CONCRETE_FIELDS (the predict-mode settings)


def cmd_configure(args: argparse.Namespace) -> int:
    from platform_core.compute.recommend import CONCRETE_FIELDS, configure, parse_request, summary_text

    fields = (*REQUEST_FIELDS, *CONCRETE_FIELDS)
    values = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    result = configure(parse_request(values))
    emit(args, result, summary_text(result))
    return 0
