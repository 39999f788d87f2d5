"""Time per step and per run from FLOPs, the GPU's bf16 throughput and a stated MFU (../shared/reference/memory.md §8).

Training FLOPs per token: full fine-tuning 6·N_mm (+2·N_mm with gradient checkpointing), LoRA 4·N_mm (+2·N_mm),
forward-only 2·N_mm, plus causal attention 6·L·a·hd·s (+2 with checkpointing) or 2·L·a·hd·s forward, where N_mm is
every matmul parameter (layers + lm_head). Generation is a roofline per vLLM replica: each decode step reads the
weights and the KV cache at a fraction of the memory bandwidth, or is bound by compute, whichever is slower.
MFU here counts the FLOPs actually executed, recomputation included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from platform_core.compute.architectures import Architecture
from platform_core.compute.gpus import GPU
from platform_core.compute.memory import Plan, kv_cache_tokens

# Stated efficiencies (§8 "practical defaults"): training MFU on one GPU or NVLink, over PCIe with sharding, with
# DeepSpeed CPU offload; forward-only passes; vLLM decode bandwidth and compute efficiency.
MFU_TRAIN = 0.35
MFU_TRAIN_PCIE_SHARDED = 0.25
MFU_OFFLOAD = 0.15
MFU_FORWARD = 0.40
DECODE_BANDWIDTH_EFFICIENCY = 0.7
DECODE_COMPUTE_EFFICIENCY = 0.5
MAX_NUM_SEQS = 256  # verl's rollout default
DECODE_STEP_OVERHEAD_S = 0.015  # vLLM scheduling, sampling and detokenisation per decode step (assumed)
# Link bandwidths in bytes/s (effective): NVLink inside a node, PCIe peer traffic, the network between nodes, and
# host<->GPU copies for offload; CPU Adam processes about this many optimizer bytes per second.
NVLINK_BPS = 150e9
PCIE_BPS = 15e9
INTER_NODE_BPS = 20e9
HOST_COPY_BPS = 20e9
CPU_ADAM_BPS = 10e9
WEIGHT_SYNC_BPS = 50e9


@dataclass
class TimeEstimate:
    """Seconds per step split by part, and for the whole run."""

    seconds_per_step: float
    parts: dict[str, float]
    steps: int
    mfu: float
    tflops_per_gpu: float
    assumptions: list[str] = field(default_factory=list)

    @property
    def seconds_total(self) -> float:
        return self.seconds_per_step * self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds_per_step": round(self.seconds_per_step, 2),
            "total_steps": self.steps,
            "seconds_total": round(self.seconds_total, 1),
            "hours_total": round(self.seconds_total / 3600, 2),
            "mfu": self.mfu,
            "gpu_bf16_tflops": self.tflops_per_gpu,
            "parts": {k: round(v, 2) for k, v in self.parts.items() if v},
            "assumptions": self.assumptions,
        }


def flops_per_token(arch: Architecture, seq_len: int, mode: str, gradient_checkpointing: bool = False) -> float:
    """FLOPs per token of one pass: mode "full" (forward+backward), "lora" (no weight gradients) or "forward"."""
    n_mm = arch.matmul_params
    attention = arch.num_layers * arch.q_dim * seq_len
    if mode == "forward":
        return 2 * n_mm + 2 * attention
    dense = (6 if mode == "full" else 4) * n_mm
    attn = 6 * attention
    if gradient_checkpointing:
        dense += 2 * n_mm
        attn += 2 * attention
    return dense + attn


def default_mfu(gpu: GPU, plan: Plan) -> float:
    """The MFU this estimate states for training passes."""
    if plan.offload != "none" and plan.sharding.startswith("zero"):
        return MFU_OFFLOAD
    if plan.world_size > 1 and gpu.interconnect == "pcie" and plan.sharding in ("zero3", "fsdp"):
        return MFU_TRAIN_PCIE_SHARDED
    return MFU_TRAIN


def _link_bps(gpu: GPU, plan: Plan) -> float:
    intra = NVLINK_BPS if gpu.interconnect == "nvlink" else PCIE_BPS
    return min(intra, INTER_NODE_BPS) if plan.nodes > 1 else intra


def communication_seconds(arch: Architecture, gpu: GPU, plan: Plan, micro_steps: int) -> float:
    """Collective traffic per step per GPU: FSDP/ZeRO-3 gather and reduce every micro batch, DDP/ZeRO-1/2 once."""
    n = plan.world_size
    if n == 1:
        return 0.0
    trainable = arch.lora_params(plan.lora_rank) if plan.lora_rank else arch.total_params
    share = (n - 1) / n
    if plan.sharding in ("zero3", "fsdp"):
        traffic = micro_steps * (2 * 2 * arch.total_params + 2 * trainable) * share
    else:
        traffic = 2 * 2 * trainable * share
    return traffic / _link_bps(gpu, plan)


def deepspeed_offload_seconds(arch: Architecture, plan: Plan) -> float:
    """ZeRO-Offload: gradients down, parameters up, and the Adam step on the CPU."""
    if plan.offload == "none" or not plan.sharding.startswith("zero"):
        return 0.0
    trainable = arch.lora_params(plan.lora_rank) if plan.lora_rank else arch.total_params
    share = trainable / plan.world_size
    return (4 * share) / HOST_COPY_BPS + (16 * share) / CPU_ADAM_BPS


def training_step_seconds(
    arch: Architecture, gpu: GPU, plan: Plan, global_batch: int, micro_steps: int, mfu: float
) -> dict[str, float]:
    """SFT / DPO step: forward+backward over the global batch (DPO: both sides, plus the reference forward)."""
    mode = "lora" if plan.lora_rank else "full"
    sides = 2 if plan.algorithm == "dpo" else 1
    tokens = global_batch * plan.seq_len * sides
    peak = plan.world_size * gpu.bf16_tflops * 1e12
    compute = tokens * flops_per_token(arch, plan.seq_len, mode, plan.gradient_checkpointing) / (peak * mfu)
    parts = {"compute": compute}
    if plan.algorithm == "dpo":
        parts["reference"] = tokens * flops_per_token(arch, plan.seq_len, "forward") / (peak * MFU_FORWARD)
    comm = communication_seconds(arch, gpu, plan, micro_steps)
    parts["communication_not_hidden"] = max(0.0, comm - compute)
    parts["offload"] = deepspeed_offload_seconds(arch, plan)
    return parts


def generation_seconds(arch: Architecture, gpu: GPU, plan: Plan, prompts: int) -> float:
    """vLLM rollout of prompts × n responses, every response assumed to run to max_response_length (the long tail)."""
    tp = plan.rollout_tp
    replicas = max(1, plan.world_size // tp)
    sequences = math.ceil(prompts * plan.rollout_n / replicas)
    length = plan.prompt_len + plan.response_len
    kv_tokens = kv_cache_tokens(arch, gpu, plan)
    active = max(1, min(sequences, MAX_NUM_SEQS, kv_tokens // max(1, length)))
    waves = math.ceil(sequences / active)
    n_mm = arch.matmul_params
    peak = gpu.bf16_tflops * 1e12
    bandwidth = gpu.bandwidth_gbs * 1e9 * DECODE_BANDWIDTH_EFFICIENCY
    context = plan.prompt_len + plan.response_len / 2
    memory_term = (2 * arch.total_params / tp + active * context * arch.kv_bytes_per_token / tp) / bandwidth
    compute_term = 2 * n_mm * active / (tp * peak * DECODE_COMPUTE_EFFICIENCY)
    decode = waves * plan.response_len * (max(memory_term, compute_term) + DECODE_STEP_OVERHEAD_S)
    prefill = 2 * n_mm * sequences * plan.prompt_len / (tp * peak * DECODE_COMPUTE_EFFICIENCY)
    return decode + prefill


def rl_step_seconds(
    arch: Architecture, gpu: GPU, plan: Plan, train_batch: int, ppo_epochs: int, mfu: float
) -> dict[str, float]:
    """One GRPO/PPO step in verl's timing keys: gen, old_log_prob, ref, values, update_critic, update_actor."""
    length = plan.prompt_len + plan.response_len
    tokens = train_batch * plan.rollout_n * length
    peak = plan.world_size * gpu.bf16_tflops * 1e12
    forward = tokens * flops_per_token(arch, length, "forward") / (peak * MFU_FORWARD)
    mode = "lora" if plan.lora_rank else "full"
    update = tokens * flops_per_token(arch, length, mode, plan.gradient_checkpointing) * ppo_epochs / (peak * mfu)
    parts = {
        "gen": generation_seconds(arch, gpu, plan, train_batch),
        "old_log_prob": forward,
        "ref": forward,
        "update_actor": update,
        "weight_sync": 2 * arch.total_params / WEIGHT_SYNC_BPS,
    }
    if plan.algorithm == "ppo":
        parts["values"] = forward
        critic_mode = "lora" if plan.lora_rank else "full"
        parts["update_critic"] = (
            tokens * flops_per_token(arch, length, critic_mode, plan.gradient_checkpointing) * ppo_epochs / (peak * mfu)
        )
    if plan.offload != "none":
        # verl moves the states to the CPU and back around each phase
        fp32_states = plan.precision == "fp32-master" or (plan.lora_rank and plan.lora_fp32_adapters)
        moved = (16 if fp32_states else 8) * (arch.lora_params(plan.lora_rank) if plan.lora_rank else arch.total_params)
        moved += (4 if plan.precision == "fp32-master" else 2) * arch.total_params if plan.lora_rank else 0
        parts["offload"] = 2 * 2 * moved / plan.world_size / HOST_COPY_BPS
    return parts


def estimate_time(
    arch: Architecture,
    gpu: GPU,
    plan: Plan,
    global_batch: int,
    micro_steps: int,
    steps: int,
    ppo_epochs: int = 1,
    mfu: float | None = None,
) -> TimeEstimate:
    """Seconds per step (parts in verl's vocabulary for RL) and for `steps` steps, at `mfu` (or the default)."""
    mfu = mfu or default_mfu(gpu, plan)
    if plan.is_rl:
        parts = rl_step_seconds(arch, gpu, plan, global_batch, ppo_epochs, mfu)
    else:
        parts = training_step_seconds(arch, gpu, plan, global_batch, micro_steps, mfu)
    assumptions = [f"mfu={mfu}", f"bf16_tflops={gpu.bf16_tflops}"]
    if plan.is_rl:
        assumptions.append("responses_run_to_max_length")
    if not plan.is_rl and not plan.packing:
        assumptions.append("sequences_padded_to_max_length")
    return TimeEstimate(sum(parts.values()), parts, steps, mfu, gpu.bf16_tflops, assumptions)
