"""Per-GPU memory of one training configuration, phase by phase, broken down into named parts.

The formulas are the measured ones of ../shared/reference/memory.md (section numbers below refer to it):
model states per strategy (§1.4), saved activations per token with and without gradient checkpointing (§2.4), the
logits/loss term (§2.5), forward-only passes (§2.6), framework buffers and fixed overheads (§3), and for RL the
colocated vLLM rollout (§4). A configuration is a `Plan`; `estimate_memory(arch, gpu, plan)` returns every phase
(training step, rollout, log-prob pass, critic update) with its parts in bytes; the peak is the largest phase.

>>> from platform_core.compute.architectures import preset
>>> from platform_core.compute.gpus import get_gpu
>>> est = estimate_memory(preset("Qwen2.5-0.5B"), get_gpu("h100"), Plan(algorithm="sft", seq_len=2048))
>>> est.fits
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from platform_core.compute.architectures import Architecture
from platform_core.compute.gpus import GPU
from platform_core.errors import InvalidInput

GiB = 2**30

ALGORITHMS = ("sft", "sft-lora", "dpo", "grpo", "ppo")
RL_ALGORITHMS = ("grpo", "ppo")
SHARDINGS = ("ddp", "zero1", "zero2", "zero3", "fsdp")
OFFLOADS = ("none", "optimizer", "all")
PRECISIONS = ("bf16", "fp32-master")
OPTIMIZERS = ("adamw", "adamw_fused", "adamw8bit", "paged_adamw8bit")
LOSS_KERNELS = ("hf", "hf_legacy", "logprob", "trl", "trl_amp", "chunked", "chunked_compiled", "fused")
QUANTIZATIONS = ("none", "nf4")

# Fixed overheads (§3): CUDA context and kernels, NCCL communicators, allocator fragmentation, vLLM's CUDA graphs that
# stay on the GPU while the actor trains, and vLLM's own activation/graph reserve inside its memory fraction.
CUDA_CONTEXT_BYTES = 1 * GiB
NCCL_BYTES = GiB // 2
FRAGMENTATION = 0.08
ROLLOUT_RESIDUAL_BYTES = 1 * GiB
VLLM_RESERVE_BYTES = int(1.5 * GiB)
# DeepSpeed ZeRO-1/2 gradient reduce bucket (elements, LLaMA-Factory's configs) held in 16-bit.
ZERO_BUCKET_ELEMENTS = 500_000_000
# bitsandbytes NF4: 4 bits per weight plus double-quantised block constants (§1.3).
NF4_BYTES_PER_PARAM = 0.53

# Logits/loss bytes per token per vocabulary entry (§2.5): kept after the forward, backward peak, and the peak of a
# no-grad pass (ref / old log-prob). "hf": transformers' ForCausalLMLoss (measured); "hf_legacy": transformers before
# 4.45, which upcast logits to fp32 in the model; "logprob": verl's flash-attn cross entropy on bf16 logits with
# inplace backward (2V kept; one more V assumed for temporaries); "trl": TRL's row-wise selective log-softmax on bf16
# logits, which saves each row's log-softmax; "chunked": torchtune's CEWithChunkedOutputLoss (bf16 logit chunks plus
# each chunk's fp32 log-softmax, no full fp32 upcast: 14V - 8V, the 8.1 GiB torchtune measured); "chunked_compiled":
# the same under torch.compile, which keeps the bf16 chunks and each row's log-sum-exp and recomputes the softmax in
# backward (derived from what inductor saves, not measured); "fused": Liger's fused
# linear cross entropy, verl's use_fused_kernels, torchtune's LinearCrossEntropyLoss (logits never materialised).
# "trl_amp": the platform's TRL DPO (trl_runner sets TrainingArguments bf16=True on a bf16 model): accelerate's
# native AMP wraps the forward in convert_outputs_to_fp32, so TRL's selective_log_softmax gets fp32 logits and takes
# its gather + per-row logsumexp path. Measured on CPU by tracking live tensor bytes (trl 1.12, a [2, T, V] slice):
# 4.3V kept, 16.2V peak through backward (the fp32 logits, the gather's scattered gradient, the per-row logsumexp
# gradients and their stack); the no-grad reference pass holds the bf16 and the fp32 logits plus a row's temporary.
LOGITS = {
    "hf": (6, 14, 10),
    "hf_legacy": (10, 18, 14),
    "logprob": (2, 3, 3),
    "trl": (4, 6, 4),
    "trl_amp": (4, 16, 8),
    "chunked": (6, 6, 6),
    "chunked_compiled": (2, 3, 2),
    "fused": (0, 0, 0),
}
ENTROPY_BYTES = 7  # verl's entropy saved for backward when entropy_coeff != 0 (§2.5); no-grad passes compile it away

PARTS = (
    "parameters",
    "gradients",
    "optimizer",
    "reference_model",
    "critic",
    "reward_model",
    "framework_buffers",
    "activations",
    "logits",
    "transient",
    "rollout_engine",
    "cuda_context",
    "fragmentation",
)


@dataclass
class Plan:
    """One concrete training configuration: what runs, on how many GPUs, with which memory settings."""

    algorithm: str
    seq_len: int = 2048  # tokens per sequence (DPO: per side of a pair; RL: prompt + response)
    gpus_per_node: int = 1
    nodes: int = 1
    sharding: str = "fsdp"
    micro_batch: int = 1  # sequences per GPU per forward/backward (DPO: pairs)
    token_budget: int | None = None  # tokens per GPU per micro batch with packing / dynamic batching
    gradient_checkpointing: bool = True
    offload: str = "none"
    precision: str = "fp32-master"
    lora_rank: int = 0
    # PEFT upcasts LoRA adapters to fp32 on a bf16/fp16 base (verl, TRL, LLaMA-Factory); torchtune keeps them in the
    # model dtype. Only matters with precision="bf16": under fp32-master the adapters are fp32 anyway.
    lora_fp32_adapters: bool = True
    optimizer: str = "adamw"
    optimizer_in_backward: bool = False
    quantization: str = "none"
    loss_kernel: str = "logprob"
    packing: bool = False
    # RL (verl): rollout and the passes around it
    prompt_len: int = 0
    response_len: int = 0
    rollout_n: int = 1
    rollout_gpu_memory_utilization: float = 0.5
    rollout_tp: int = 1
    log_prob_token_budget: int | None = None
    critic_token_budget: int | None = None
    entropy_in_update: bool = False
    reward_model: bool = False
    reference_model: bool | None = None  # None: the algorithm's default (DPO without LoRA keeps a copy)
    # bytes per parameter of that copy: the platform's TRL runner loads it like the policy, bf16 on a GPU (TRL's own
    # ref_model=None would load it in float32: trl.trainer.utils.create_model_from_path's default dtype)
    reference_bytes_per_param: int = 2

    @property
    def world_size(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def is_rl(self) -> bool:
        return self.algorithm in RL_ALGORITHMS

    @property
    def tokens_per_micro_batch(self) -> int:
        """Tokens one GPU holds activations for in one forward/backward (DPO runs chosen and rejected together)."""
        if self.token_budget:
            return self.token_budget
        sides = 2 if self.algorithm == "dpo" else 1
        return self.micro_batch * self.seq_len * sides

    def check(self) -> None:
        """Refuse values the model cannot represent, naming the field."""
        if self.algorithm not in ALGORITHMS:
            raise InvalidInput(f"algorithm: {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        choices = {
            "sharding": SHARDINGS,
            "offload": OFFLOADS,
            "precision": PRECISIONS,
            "optimizer": OPTIMIZERS,
            "loss_kernel": LOSS_KERNELS,
            "quantization": QUANTIZATIONS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InvalidInput(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        for name in ("seq_len", "gpus_per_node", "nodes", "micro_batch", "rollout_n", "rollout_tp"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"{name}: must be at least 1 (found {getattr(self, name)})")
        if self.lora_rank < 0:
            raise InvalidInput(f"lora_rank: must be 0 (off) or positive (found {self.lora_rank})")
        if self.offload != "none" and self.sharding == "ddp":
            raise InvalidInput("offload: DDP cannot offload; use ZeRO (zero1/zero2/zero3) or fsdp")
        if self.offload == "all" and self.sharding in ("zero1", "zero2"):
            raise InvalidInput(f"offload: parameter offload needs ZeRO-3 (found {self.sharding})")
        if self.quantization != "none" and not self.lora_rank:
            raise InvalidInput("quantization: a quantized (QLoRA) base needs a LoRA rank")
        if not 0.05 <= self.rollout_gpu_memory_utilization <= 0.99:
            raise InvalidInput(
                f"rollout_gpu_memory_utilization: {self.rollout_gpu_memory_utilization} is outside 0.05-0.99"
            )


@dataclass
class States:
    """Bytes per GPU of parameters, gradients and optimizer state during the update, and what offload moved to CPU."""

    parameters: int
    gradients: int
    optimizer: int
    cpu: int = 0
    step_transient: int = 0  # foreach AdamW's one full-size temporary during step()

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer


@dataclass
class Phase:
    """One phase of a step (training step, rollout, ...) and its parts in bytes."""

    name: str
    parts: dict[str, int]
    tokens: int = 0

    @property
    def peak(self) -> int:
        return sum(self.parts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_gib": round(self.peak / GiB, 2),
            "tokens_per_gpu": self.tokens,
            "breakdown": {k: round(v / GiB, 3) for k, v in self.parts.items() if v},
        }


@dataclass
class MemoryEstimate:
    """Every phase's memory; the peak is the largest phase. `problems` are reasons the plan cannot run even though
    its peak may be below the GPU's memory (e.g. vLLM's memory fraction cannot load the weights)."""

    phases: dict[str, Phase]
    memory_bytes: int
    states: States
    trainable_params: int
    notes: list[str] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def peak_phase(self) -> Phase:
        return max(self.phases.values(), key=lambda p: p.peak)

    @property
    def peak(self) -> int:
        return self.peak_phase.peak

    @property
    def fits(self) -> bool:
        return self.peak <= self.memory_bytes and not self.problems

    def to_dict(self) -> dict[str, Any]:
        peak = self.peak_phase
        return {
            "fits": self.fits,
            "peak_gib_per_gpu": round(self.peak / GiB, 2),
            "usable_gib_per_gpu": round(self.memory_bytes / GiB, 2),
            "peak_phase": peak.name,
            "breakdown": {k: round(v / GiB, 3) for k, v in peak.parts.items() if v},
            "phases": {name: phase.to_dict() for name, phase in self.phases.items()},
            "trainable_params": self.trainable_params,
            "states_gib": {
                "parameters": round(self.states.parameters / GiB, 3),
                "gradients": round(self.states.gradients / GiB, 3),
                "optimizer": round(self.states.optimizer / GiB, 3),
                "cpu_offloaded": round(self.states.cpu / GiB, 3),
            },
            "notes": self.notes,
            "problems": self.problems,
        }


# -- model states (§1) ------------------------------------------------------------------------------------------------


def frozen_base_bytes(arch: Architecture, plan: Plan) -> int:
    """Bytes of the frozen base under LoRA: fp32 in verl (the actor is loaded in fp32), bf16 elsewhere, NF4 for QLoRA."""
    if not plan.lora_rank:
        return 0
    total = arch.total_params
    if plan.quantization == "nf4":
        dense = arch.embedding_params + arch.head_params + arch.hidden_size * (2 * arch.num_layers + 1)
        return int((total - dense) * NF4_BYTES_PER_PARAM + 2 * dense)
    per_param = 4 if plan.sharding == "fsdp" and plan.precision == "fp32-master" else 2
    return per_param * total


def state_bytes(trainable: int, tensors: int, frozen: int, largest_param: int, plan: Plan) -> States:
    """Parameters, gradients and optimizer bytes per GPU for `trainable` trained and `frozen` base bytes (§1.4).

    fp32-master means fp32 weights with bf16 compute (torch AMP under DDP, verl's fp32 FSDP actor) or DeepSpeed's bf16
    weights with an fp32 master copy; bf16 means pure bf16 (no master copy, bf16 AdamW state).
    """
    n = plan.world_size
    deepspeed = plan.sharding.startswith("zero")
    if plan.precision == "fp32-master":
        param_b, grad_b, master_b, state_b = (2, 2, 4, 8) if deepspeed else (4, 4, 0, 8)
    elif plan.lora_rank and plan.lora_fp32_adapters and not deepspeed:
        # PEFT upcasts the adapters to fp32 on a 16-bit base: 4 + 4 + 8 bytes per adapter parameter
        param_b, grad_b, master_b, state_b = 4, 4, 0, 8
    else:
        param_b, grad_b, master_b, state_b = 2, 2, 0, 4
    if plan.optimizer in ("adamw8bit", "paged_adamw8bit"):
        state_b = 2
    steps = 4 * tensors if plan.sharding in ("ddp", "fsdp") else 0  # torch AdamW keeps a float32 step per tensor
    t = trainable
    if plan.sharding == "ddp":
        params, grads, optim = param_b * t + frozen, grad_b * t, (master_b + state_b) * t + steps
    elif plan.sharding == "fsdp":
        params, grads, optim = (param_b * t + frozen) // n, grad_b * t // n, (state_b * t + steps) // n
    elif plan.sharding == "zero1":
        fp32_grads = 4 * t // n if plan.precision == "fp32-master" else 0
        params, grads, optim = param_b * t + frozen, grad_b * t + fp32_grads, (master_b + state_b) * t // n
    elif plan.sharding == "zero2":
        fp32_grads = 4 * t if plan.precision == "fp32-master" else 0
        params, grads, optim = param_b * t + frozen, (grad_b * t + fp32_grads) // n, (master_b + state_b) * t // n
    else:  # zero3: bf16 gradients are reduced straight into the fp32 partition
        grads_b = 4 if plan.precision == "fp32-master" else grad_b
        params, grads, optim = (param_b * t + frozen) // n, grads_b * t // n, (master_b + state_b) * t // n
    cpu = 0
    if deepspeed and plan.offload != "none":
        cpu = optim + (grads if plan.sharding != "zero1" else grads - grad_b * t)
        grads = grad_b * t if plan.sharding == "zero1" else 0
        optim = 0
        if plan.offload == "all":
            cpu += params
            params = 0
    if plan.optimizer == "paged_adamw8bit":
        # bitsandbytes pages its state in CUDA unified memory, outside PyTorch's allocator.
        cpu += optim
        optim = 0
    if plan.optimizer_in_backward:
        grads = grad_b * largest_param
    transient = 0
    if plan.optimizer == "adamw" and not deepspeed and not plan.optimizer_in_backward:
        # foreach AdamW allocates one full-size temporary in the state dtype during step() (§1.3)
        transient = (4 if state_b == 8 else 2) * t // (n if plan.sharding == "fsdp" else 1)
    return States(params, grads, optim, cpu, transient)


def model_states(arch: Architecture, plan: Plan) -> States:
    """The policy's states per GPU during its update."""
    trainable = arch.lora_params(plan.lora_rank) if plan.lora_rank else arch.total_params
    tensors = arch.lora_tensors(plan.lora_rank) if plan.lora_rank else arch.param_tensors
    largest = arch.embedding_params
    return state_bytes(trainable, tensors, frozen_base_bytes(arch, plan), largest, plan)


def critic_states(arch: Architecture, plan: Plan) -> States:
    """PPO's critic: the policy's architecture with a scalar value head instead of the lm_head."""
    total = arch.total_params - arch.head_params + arch.hidden_size
    if plan.lora_rank:
        trainable, tensors = arch.lora_params(plan.lora_rank) + arch.hidden_size, arch.lora_tensors(plan.lora_rank) + 1
        frozen = frozen_base_bytes(arch, plan)
    else:
        trainable, tensors, frozen = total, arch.param_tensors, 0
    return state_bytes(trainable, tensors, frozen, arch.embedding_params, plan)


def framework_buffer_bytes(arch: Architecture, plan: Plan) -> int:
    """Gathered FSDP units, ZeRO buckets and live parameters, autocast weight copies (§3)."""
    n = plan.world_size
    trainable = arch.lora_params(plan.lora_rank) if plan.lora_rank else arch.total_params
    if plan.sharding == "ddp":
        # torch autocast keeps bf16 copies of fp32 weights alive for backward
        autocast = 2 * trainable if plan.precision == "fp32-master" and not plan.lora_rank else 0
        # torch DDP (gradient_as_bucket_view=False, accelerate's default) copies every gradient into its own
        # flat reduce buckets: one more gradient-sized buffer on each GPU when there is more than one
        fp32_grads = plan.precision == "fp32-master" or (plan.lora_rank and plan.lora_fp32_adapters)
        buckets = (4 if fp32_grads else 2) * trainable if n > 1 else 0
        return autocast + buckets
    if plan.sharding in ("zero1", "zero2"):
        return 2 * min(trainable, ZERO_BUCKET_ELEMENTS)
    if plan.sharding == "zero3":
        return 4 * arch.largest_layer_params + 2 * 2 * arch.layer_params
    # FSDP: the current and the prefetched decoder unit in bf16, the root unit (embedding + lm_head) gathered for the
    # whole step, and a unit's gradient upcast to fp32 for the reduce-scatter.
    if n == 1 and plan.precision == "bf16":
        return 0
    units = 2 * 2 * arch.layer_params + 2 * (arch.embedding_params + arch.head_params)
    if not plan.lora_rank and plan.precision == "fp32-master":
        units += 4 * arch.layer_params
    return units


# -- activations and logits (§2) --------------------------------------------------------------------------------------


def layer_activation_bytes(arch: Architecture) -> int:
    """Saved activations per token per decoder layer, bf16, flash/SDPA attention (§2.4, measured exactly)."""
    h, kv, i, a = arch.hidden_size, arch.kv_dim, arch.intermediate_size, arch.num_heads
    return 20 * h + 4 * kv + 8 * i + 4 * a + 8


def activation_bytes_per_token(arch: Architecture, gradient_checkpointing: bool, lora_rank: int = 0) -> int:
    """Saved activations per token for the whole model; with checkpointing only each layer's input is kept."""
    h = arch.hidden_size
    if gradient_checkpointing:
        return arch.num_layers * 2 * h + 8 * h
    per_layer = layer_activation_bytes(arch)
    if lora_rank:
        per_layer += 16 * h + 2 * arch.intermediate_size + 28 * lora_rank  # fp32 adapter inputs and outputs
    return arch.num_layers * per_layer + 8 * h


def logits_bytes_per_token(arch: Architecture, kernel: str, entropy: bool = False) -> tuple[int, int]:
    """(bytes kept after the forward, backward peak) of the logits and loss per token."""
    kept, peak, _ = LOGITS[kernel]
    extra = ENTROPY_BYTES if entropy and kernel != "fused" else 0
    return (kept + extra) * arch.vocab_size, (peak + extra) * arch.vocab_size


def forward_only_bytes_per_token(arch: Architecture, kernel: str) -> int:
    """Peak per token of a no-grad pass (ref / old log-prob): one layer's intermediates or the logits (§2.6)."""
    logits = LOGITS[kernel][2] * arch.vocab_size
    return 2 * arch.hidden_size + max(layer_activation_bytes(arch), logits)


def dynamic_parts(arch: Architecture, plan: Plan, tokens: int, with_logits: bool = True) -> dict[str, int]:
    """Activations, logits and the backward transient for `tokens` tokens on one GPU."""
    gc = plan.gradient_checkpointing
    acts = activation_bytes_per_token(arch, gc, plan.lora_rank) * tokens
    if with_logits:
        kept, peak = logits_bytes_per_token(arch, plan.loss_kernel, entropy=plan.is_rl and plan.entropy_in_update)
    else:
        kept, peak = 0, 0
    recompute = layer_activation_bytes(arch) if gc else 0
    return {
        "activations": acts,
        "logits": kept * tokens,
        "transient": max(peak, recompute) * tokens - kept * tokens,
    }


# -- phases -----------------------------------------------------------------------------------------------------------


def _context(plan: Plan) -> int:
    return CUDA_CONTEXT_BYTES + (NCCL_BYTES if plan.world_size > 1 or plan.rollout_tp > 1 else 0)


def _finish(parts: dict[str, int], fragmented: int) -> dict[str, int]:
    parts["fragmentation"] = int(FRAGMENTATION * fragmented)
    return {k: int(parts.get(k, 0)) for k in PARTS}


def _reference_bytes(arch: Architecture, plan: Plan) -> int:
    keep = plan.reference_model if plan.reference_model is not None else plan.algorithm == "dpo" and not plan.lora_rank
    if not keep or plan.is_rl:  # verl keeps the RL reference policy offloaded to CPU (§1.3)
        return 0
    sharded = plan.sharding in ("zero3", "fsdp")
    return plan.reference_bytes_per_param * arch.total_params // (plan.world_size if sharded else 1)


def _reward_bytes(arch: Architecture, plan: Plan) -> int:
    return 2 * arch.total_params // plan.world_size if plan.algorithm == "ppo" and plan.reward_model else 0


def training_phase(arch: Architecture, plan: Plan, states: States, critic: States | None) -> Phase:
    """The policy's update (SFT/DPO step, RL actor update): states + buffers + activations + logits."""
    tokens = plan.tokens_per_micro_batch
    parts: dict[str, int] = {
        "parameters": states.parameters,
        "gradients": states.gradients,
        "optimizer": states.optimizer,
        "reference_model": _reference_bytes(arch, plan),
        "critic": critic.total if critic and plan.offload == "none" else 0,
        "reward_model": _reward_bytes(arch, plan),
        "framework_buffers": framework_buffer_bytes(arch, plan),
    }
    dynamic = dynamic_parts(arch, plan, tokens)
    if states.step_transient > sum(dynamic.values()):
        dynamic = {"activations": 0, "logits": 0, "transient": states.step_transient}
    parts.update(dynamic)
    fragmented = sum(parts.values())
    parts["rollout_engine"] = ROLLOUT_RESIDUAL_BYTES if plan.is_rl else 0
    parts["cuda_context"] = _context(plan)
    return Phase("train", _finish(parts, fragmented), tokens)


def _resident(states: States, plan: Plan) -> tuple[int, int]:
    """(parameters, optimizer) bytes that stay on the GPU outside the update; verl's offload moves them to CPU."""
    params = 0 if plan.offload == "all" else states.parameters
    optim = 0 if plan.offload in ("optimizer", "all") else states.optimizer
    return params, optim


def rollout_phase(arch: Architecture, gpu: GPU, plan: Plan, states: States, critic: States | None) -> Phase:
    """Generation with vLLM colocated: resident training states plus vLLM's fraction of the total memory."""
    params, optim = _resident(states, plan)
    critic_params, critic_optim = _resident(critic, plan) if critic else (0, 0)
    parts = {
        "parameters": params,
        "optimizer": optim,
        "critic": critic_params + critic_optim,
        "reward_model": _reward_bytes(arch, plan),
    }
    fragmented = sum(parts.values())
    parts["rollout_engine"] = int(plan.rollout_gpu_memory_utilization * gpu.memory_bytes)
    parts["cuda_context"] = _context(plan)
    return Phase("rollout", _finish(parts, fragmented), 0)


def log_prob_phase(arch: Architecture, plan: Plan, states: States, critic: States | None) -> Phase:
    """Old-policy / reference log-probs over the log-prob token budget, no grad."""
    tokens = plan.log_prob_token_budget or 2 * plan.tokens_per_micro_batch
    _, optim = _resident(states, plan)
    critic_params, critic_optim = _resident(critic, plan) if critic else (0, 0)
    parts = {
        "parameters": states.parameters,
        "gradients": 0 if plan.offload != "none" else states.gradients,
        "optimizer": optim,
        "critic": critic_params + critic_optim,
        "reward_model": _reward_bytes(arch, plan),
        "framework_buffers": framework_buffer_bytes(arch, plan),
        "transient": forward_only_bytes_per_token(arch, plan.loss_kernel) * tokens,
    }
    fragmented = sum(parts.values())
    parts["rollout_engine"] = ROLLOUT_RESIDUAL_BYTES
    parts["cuda_context"] = _context(plan)
    return Phase("log_prob", _finish(parts, fragmented), tokens)


def critic_phase(arch: Architecture, plan: Plan, states: States, critic: States) -> Phase:
    """PPO's critic update: the critic's states and activations (no vocabulary term), the actor resident."""
    tokens = plan.critic_token_budget or 2 * plan.tokens_per_micro_batch
    params, optim = _resident(states, plan)
    parts = {
        "parameters": params,
        "gradients": 0 if plan.offload != "none" else states.gradients,
        "optimizer": optim,
        "critic": critic.total,
        "reward_model": _reward_bytes(arch, plan),
        "framework_buffers": framework_buffer_bytes(arch, plan),
        **dynamic_parts(arch, plan, tokens, with_logits=False),
    }
    fragmented = sum(parts.values())
    parts["rollout_engine"] = ROLLOUT_RESIDUAL_BYTES
    parts["cuda_context"] = _context(plan)
    return Phase("critic_update", _finish(parts, fragmented), tokens)


def kv_cache_tokens(arch: Architecture, gpu: GPU, plan: Plan) -> int:
    """Tokens of KV cache one vLLM replica (TP GPUs) holds within its memory fraction (§4)."""
    budget = plan.rollout_tp * (plan.rollout_gpu_memory_utilization * gpu.memory_bytes - VLLM_RESERVE_BYTES)
    free = budget - 2 * arch.total_params
    return max(0, int(free // arch.kv_bytes_per_token))


def min_rollout_fraction(arch: Architecture, gpu: GPU, tokens: int, tp: int) -> float:
    """The smallest vLLM memory fraction (rounded up to 0.05) whose KV cache holds `tokens` tokens at TP `tp`."""
    needed = (2 * arch.total_params + tokens * arch.kv_bytes_per_token) / tp + VLLM_RESERVE_BYTES
    return math.ceil(round(needed / gpu.memory_bytes * 20, 6)) / 20


def rollout_kv_problem(arch: Architecture, gpu: GPU, plan: Plan) -> dict[str, Any] | None:
    """Why vLLM cannot run the rollout: its memory fraction holds neither the weights nor the KV cache of one full
    sequence (prompt + response); None when it can. Names the numbers and what would be enough."""
    tokens = kv_cache_tokens(arch, gpu, plan)
    if tokens >= plan.seq_len:
        return None
    tp, gmu = plan.rollout_tp, plan.rollout_gpu_memory_utilization
    fraction_bytes = gmu * gpu.memory_bytes
    weights = 2 * arch.total_params / tp
    one_sequence = plan.seq_len * arch.kv_bytes_per_token / tp
    needed = min_rollout_fraction(arch, gpu, plan.seq_len, tp)
    options = {}
    for other in (2, 4, 8):
        if other > tp and other <= plan.gpus_per_node and not plan.world_size % other and not arch.num_heads % other:
            options[other] = min_rollout_fraction(arch, gpu, plan.seq_len, other)
    fixes = []
    if needed <= 0.99:
        fixes.append(f"raise rollout_gpu_memory_utilization to at least {needed:.2f}")
    fixes += [f"rollout TP {other} (needs at least {frac:.2f})" for other, frac in options.items() if frac <= 0.99]
    if not fixes:
        fixes.append("use more GPUs per node for rollout tensor parallelism, or a bigger GPU")
    message = (
        f"vLLM's memory fraction {gmu:g} × {gpu.memory_bytes / GiB:.1f} GiB = {fraction_bytes / GiB:.1f} GiB "
        f"(minus its {VLLM_RESERVE_BYTES / GiB:g} GiB reserve) cannot hold the {weights / GiB:.1f} GiB of bf16 weights"
        + (f" per GPU at TP {tp}" if tp > 1 else "")
        + f" plus the KV cache of one {plan.seq_len}-token sequence ({one_sequence / GiB:.2f} GiB): "
        f"room for {tokens} KV tokens. Fix: " + "; or ".join(fixes) + "."
    )
    return {
        "kind": "rollout_kv_too_small",
        "rollout_gpu_memory_utilization": gmu,
        "rollout_tensor_parallel_size": tp,
        "rollout_gib": round(fraction_bytes / GiB, 2),
        "vllm_reserve_gib": round(VLLM_RESERVE_BYTES / GiB, 2),
        "weights_gib": round(weights / GiB, 2),
        "one_sequence_kv_gib": round(one_sequence / GiB, 3),
        "kv_cache_tokens": tokens,
        "needed_tokens": plan.seq_len,
        "min_gpu_memory_utilization": needed if needed <= 0.99 else None,
        "tp_options": {str(k): v for k, v in options.items() if v <= 0.99},
        "message": message,
    }


def estimate_memory(arch: Architecture, gpu: GPU, plan: Plan) -> MemoryEstimate:
    """Predict every phase's per-GPU memory for `plan` on `gpu`; the peak is the largest phase."""
    plan.check()
    states = model_states(arch, plan)
    critic = critic_states(arch, plan) if plan.algorithm == "ppo" else None
    phases = {"train": training_phase(arch, plan, states, critic)}
    notes: list[str] = []
    problems: list[dict[str, Any]] = []
    if plan.is_rl:
        phases["rollout"] = rollout_phase(arch, gpu, plan, states, critic)
        phases["log_prob"] = log_prob_phase(arch, plan, states, critic)
        if critic is not None:
            phases["critic_update"] = critic_phase(arch, plan, states, critic)
        problem = rollout_kv_problem(arch, gpu, plan)
        if problem is not None:
            notes.append("rollout_kv_too_small")
            problems.append(problem)
        if plan.offload != "none":
            notes.append("verl_offload_rollout_only")
    trainable = arch.lora_params(plan.lora_rank) if plan.lora_rank else arch.total_params
    return MemoryEstimate(phases, gpu.memory_bytes, states, trainable, notes, problems)
