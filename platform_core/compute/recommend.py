"""The configurator: recommend a configuration that fits (../shared/reference/memory.md §10), or predict a given one.

`configure(ComputeRequest(...))` returns one JSON-able dict, the same for the page and `python -m platform_core
configure --json`: fits, the peak per GPU and its breakdown, every phase, the recommendation (batch sizes in verl's
vocabulary, sharding, offload, LoRA, gradient checkpointing, rollout memory fraction and tensor parallel size), the
derived counts, the time estimate, suggestions when nothing fits, and the values for a new job (`job_prefill`).

>>> result = configure(ComputeRequest(model="Qwen2.5-0.5B", gpu="h100", algorithm="sft", seq_len=2048))
>>> result["fits"], result["recommendation"]["sharding"]
(True, 'fsdp')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from platform_core.compute.architectures import Architecture, get_architecture
from platform_core.compute.gpus import GPU, GPUS, get_gpu
from platform_core.compute.memory import (
    MemoryEstimate,
    Plan,
    critic_phase,
    critic_states,
    estimate_memory,
    kv_cache_tokens,
    log_prob_phase,
    model_states,
    rollout_phase,
    training_phase,
)
from platform_core.compute.timing import estimate_time
from platform_core.errors import InvalidInput

# Recommendation targets: stay under this share of the GPU; a micro batch of at most this many sequences; RL rollout
# memory fraction between these bounds (verl: 0.5-0.7 without offload, up to 0.9 with it).
SAFETY = 0.95
MAX_MICRO_BATCH = 16
MAX_RL_MICRO_BATCH = 32
GMU_MIN, GMU_MAX = 0.3, 0.85
MIN_CONCURRENT_SEQUENCES = 16
TOKEN_ROUNDING = 256
DEFAULT_LORA_RANK = {"sft": 16, "sft-lora": 16, "dpo": 16, "grpo": 32, "ppo": 32}
DEFAULT_ROLLOUT_N = {"grpo": 5, "ppo": 1}
DEFAULT_GLOBAL_BATCH = 64
SHORTEST_SEQUENCE = 256
ZERO_STAGE = {"ddp": 0, "zero1": 1, "zero2": 2, "zero3": 3, "fsdp": 3}
# What the platform runs DPO as (platform_core/plugins/trl_runner.py, jobs/engines.py plan_trl): TRL's DPOTrainer in
# one process or torchrun DDP, the model loaded in bf16 (so AdamW keeps bf16 state: 2 + 2 + 4 bytes per parameter),
# accelerate's bf16 autocast around it, TRL's selective log-softmax, no DeepSpeed/FSDP, offload or fused loss. Full
# DPO keeps a reference copy, which the runner loads like the policy (bf16 on a GPU; TRL's own default would be float32).
DPO_PLATFORM = {"sharding": "ddp", "offload": "none", "precision": "bf16", "loss_kernel": "trl_amp"}
DPO_REFERENCE_BYTES = 2
# Request fields that describe a concrete configuration: any of them switches to predict mode, which needs --strategy
# (notes/configurator.md, "CLI contract"); none is ever silently ignored.
CONCRETE_FIELDS = (
    "micro_batch",
    "gradient_checkpointing",
    "offload",
    "fused_ce",
    "packing",
    "precision",
    "token_budget",
    "rollout_gpu_memory_utilization",
    "rollout_tp",
    "log_prob_token_budget",
)
RL_ONLY_FIELDS = ("rollout_gpu_memory_utilization", "rollout_tp", "log_prob_token_budget")


class ComputeRequest(BaseModel):
    """What the user asks: a model, GPUs, lengths and an algorithm; optionally a concrete configuration to predict."""

    model: str = Field(description="a preset name or a local model directory")
    gpu: str = Field(description="GPU key (rtx4090, a100-80g, h100, ...) or custom")
    gpu_memory_gib: float | None = Field(None, gt=0, description="memory of a custom GPU")
    gpu_tflops: float | None = Field(None, gt=0, description="bf16 TFLOPS of a custom GPU")
    gpus_per_node: int = Field(1, ge=1, le=64)
    nodes: int = Field(1, ge=1, le=1024)
    algorithm: Literal["sft", "sft-lora", "dpo", "grpo", "ppo"]
    seq_len: int | None = Field(None, ge=16, le=1_048_576, description="SFT/DPO max length; RL prompt+response")
    prompt_len: int | None = Field(None, ge=1, le=1_048_576)
    response_len: int | None = Field(None, ge=1, le=1_048_576)
    rollout_n: int | None = Field(None, ge=1, le=256)
    lora_rank: int | None = Field(None, ge=1, le=4096)
    global_batch_size: int | None = Field(None, ge=1, description="SFT sequences / DPO pairs / RL prompts per step")
    samples: int = Field(10_000, ge=1, description="training samples (prompts for RL) per epoch")
    epochs: float = Field(1.0, gt=0)
    ppo_epochs: int = Field(1, ge=1, le=16)
    mfu: float | None = Field(None, gt=0, le=1)
    reward_model: bool = Field(False, description="PPO with a model-based reward of the policy's size")
    # a concrete configuration: predict it instead of recommending one
    strategy: Literal["ddp", "zero1", "zero2", "zero3", "fsdp"] | None = None
    micro_batch: int | None = Field(None, ge=1, le=4096)
    gradient_checkpointing: bool | None = None
    offload: Literal["none", "optimizer", "all"] | None = None
    fused_ce: bool | None = None
    packing: bool | None = None
    precision: Literal["bf16", "fp32-master", "fp16"] | None = Field(
        None, description="fp32-master (bf16 compute), bf16 (pure bf16 / bf16 actor), fp16 (fp32 master, fp16 compute)"
    )
    token_budget: int | None = Field(None, ge=16, description="tokens per GPU per micro batch (dynamic batching)")
    rollout_gpu_memory_utilization: float | None = Field(None, ge=0.05, le=0.99)
    rollout_tp: int | None = Field(None, ge=1, le=64)
    log_prob_token_budget: int | None = Field(None, ge=16)

    @model_validator(mode="after")
    def _lengths(self) -> ComputeRequest:
        rl = self.algorithm in ("grpo", "ppo")
        if rl:
            if self.seq_len is None and (self.prompt_len is None or self.response_len is None):
                raise ValueError("RL needs --seq-len or both --prompt-len and --response-len")
        elif self.seq_len is None:
            raise ValueError(f"{self.algorithm} needs --seq-len")
        given = [name for name in CONCRETE_FIELDS if getattr(self, name) is not None]
        if self.strategy is None and given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(
                f"{flags} describe a concrete configuration to predict: add --strategy (ddp|zero1|zero2|zero3|fsdp)"
            )
        if not rl:
            rl_only = [name for name in RL_ONLY_FIELDS if getattr(self, name) is not None]
            if rl_only:
                flags = ", ".join("--" + name.replace("_", "-") for name in rl_only)
                raise ValueError(f"{flags} only apply to RL (grpo, ppo), not {self.algorithm}")
        return self

    @property
    def predict(self) -> bool:
        return self.strategy is not None


def parse_request(values: dict[str, Any]) -> ComputeRequest:
    """Validate raw values into a ComputeRequest; errors name the field."""
    try:
        return ComputeRequest(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise InvalidInput(f"{where}: {first['msg']}") from exc


@dataclass
class Lengths:
    seq_len: int  # tokens of one sequence (RL: prompt + response)
    prompt_len: int = 0
    response_len: int = 0


def lengths_for(req: ComputeRequest) -> Lengths:
    """Sequence lengths; for RL with only --seq-len, a third goes to the prompt (verl's 512 + 1024 examples)."""
    if req.algorithm not in ("grpo", "ppo"):
        return Lengths(req.seq_len or 0)
    prompt, response = req.prompt_len, req.response_len
    if prompt is None and response is None:
        prompt = req.seq_len // 3
        response = req.seq_len - prompt
    elif prompt is None:
        prompt = max(1, (req.seq_len or 0) - response) if req.seq_len and req.seq_len > response else response // 2
    elif response is None:
        response = max(1, (req.seq_len or 0) - prompt) if req.seq_len and req.seq_len > prompt else prompt * 2
    return Lengths(prompt + response, prompt, response)


def _round_down(value: int, step: int = TOKEN_ROUNDING) -> int:
    return value - value % step if value >= step else value


def max_budget(peak_at: Callable[[int], int], limit: int, floor: int = 1) -> int:
    """The largest token count whose peak stays within `limit` (0 when even `floor` tokens do not fit)."""
    if peak_at(floor) > limit:
        return 0
    low, high = floor, floor * 2
    while peak_at(high) <= limit and high < 1 << 26:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if peak_at(mid) <= limit:
            low = mid
        else:
            high = mid
    return low


# -- candidates ---------------------------------------------------------------------------------------------------------


def default_loss_kernel(algorithm: str, strategy: str, gpu: GPU) -> str:
    """The log-prob/loss kernel the framework uses: TRL's row-wise log-softmax for DPO, verl's flash-attn cross
    entropy under FSDP where flash-attn runs (sm80+), otherwise verl's fallback, a row-wise log-softmax with the same
    bytes as TRL's (logprobs_from_logits_v2); transformers' loss for plain DDP/ZeRO SFT."""
    if algorithm == "dpo":
        return DPO_PLATFORM["loss_kernel"]  # fp32 logits under accelerate's autocast wrapper (memory.py LOGITS)
    if strategy == "fsdp":
        return "logprob" if gpu.flash_attention else "trl"
    return "hf"


def compute_dtype(gpu: GPU, precision: str | None = None) -> str:
    """The 16-bit compute dtype: bf16 where the GPU has it (and the user did not ask for fp16), otherwise fp16."""
    return "fp16" if precision == "fp16" or not gpu.bf16 else "bf16"


def candidate_plans(req: ComputeRequest, arch: Architecture, gpu: GPU, lengths: Lengths) -> list[Plan]:
    """Configurations from fastest to most memory-frugal (§10.4): full fine-tuning first, then offload, then LoRA."""
    algo = req.algorithm
    rl = algo in ("grpo", "ppo")
    base = Plan(
        algorithm=algo,
        seq_len=lengths.seq_len,
        prompt_len=lengths.prompt_len,
        response_len=lengths.response_len,
        gpus_per_node=req.gpus_per_node,
        nodes=req.nodes,
        rollout_n=req.rollout_n or DEFAULT_ROLLOUT_N.get(algo, 1),
        reward_model=req.reward_model,
        loss_kernel=default_loss_kernel(algo, "fsdp", gpu),
        optimizer="adamw_fused" if algo == "dpo" else "adamw",
    )
    lora_only = algo == "sft-lora" or req.lora_rank is not None
    rank = req.lora_rank or DEFAULT_LORA_RANK[algo]
    ranks = [rank] if lora_only else [0, rank]
    plans: list[Plan] = []
    if algo == "dpo":
        # only what the platform's TRL runner can carry out: DDP (replicated bf16 weights), full then LoRA; the
        # checkpointing and micro batch are settled by fit_candidate (never the fused loss, which TRL is not given)
        for r in ranks:
            plans.append(replace(base, lora_rank=r, reference_bytes_per_param=DPO_REFERENCE_BYTES, **DPO_PLATFORM))
        return plans
    for r in ranks:
        if rl:
            combos = [("fp32-master", "none"), ("fp32-master", "all")]
            if r and gpu.bf16:
                combos.append(("bf16", "all"))
        else:
            # a 16-bit actor only where the GPU has bf16: verl has no fp16 weights without an fp32 master (§10.2)
            combos = [("fp32-master", "none")] + ([("bf16", "none")] if r and gpu.bf16 else [])
        for precision, offload in combos:
            plans.append(replace(base, lora_rank=r, sharding="fsdp", precision=precision, offload=offload))
    return plans


def _train_peak(arch: Architecture, plan: Plan) -> Callable[[int], int]:
    states = model_states(arch, plan)
    critic = critic_states(arch, plan) if plan.algorithm == "ppo" else None

    def peak(tokens: int) -> int:
        return training_phase(arch, replace(plan, token_budget=tokens), states, critic).peak

    return peak


def _choose_rollout(arch: Architecture, gpu: GPU, plan: Plan) -> tuple[float, int] | None:
    """The rollout memory fraction and the smallest tensor-parallel size whose KV cache holds enough sequences."""
    states = model_states(arch, plan)
    critic = critic_states(arch, plan) if plan.algorithm == "ppo" else None
    resident = rollout_phase(arch, gpu, replace(plan, rollout_gpu_memory_utilization=0.05), states, critic)
    resident_bytes = resident.peak - resident.parts["rollout_engine"]
    free = gpu.memory_bytes * SAFETY - resident_bytes
    gmu = math.floor(min(GMU_MAX, free / gpu.memory_bytes) * 20) / 20
    if gmu < GMU_MIN:
        return None
    for tp in (1, 2, 4, 8):
        if tp > plan.gpus_per_node or plan.world_size % tp or arch.num_heads % tp:
            continue
        trial = replace(plan, rollout_gpu_memory_utilization=gmu, rollout_tp=tp)
        if kv_cache_tokens(arch, gpu, trial) >= MIN_CONCURRENT_SEQUENCES * plan.seq_len:
            return gmu, tp
    return None


@dataclass
class Choice:
    plan: Plan
    estimate: MemoryEstimate
    token_budget: int


def fit_candidate(arch: Architecture, gpu: GPU, plan: Plan) -> Choice | None:
    """Settle gradient checkpointing, fused cross entropy and the token budgets for one candidate, or None."""
    limit = int(gpu.memory_bytes * SAFETY)
    unit = plan.seq_len * (2 if plan.algorithm == "dpo" else 1)
    settings = ((False, False), (True, False), (True, True))
    if plan.algorithm == "dpo":  # the TRL runner has no fused (Liger) loss
        settings = settings[:2]
    for checkpointing, fused in settings:
        trial = replace(plan, gradient_checkpointing=checkpointing)
        if fused:
            trial = replace(trial, loss_kernel="fused")
        budget = max_budget(_train_peak(arch, trial), limit, floor=unit)
        needed = 2 * unit if not checkpointing else unit
        if budget < needed:
            continue
        budget = max(unit, _round_down(budget))
        trial = replace(trial, token_budget=budget)
        if trial.is_rl:
            rollout = _choose_rollout(arch, gpu, trial)
            if rollout is None:
                return None
            trial = _fit_side_budgets(
                arch, replace(trial, rollout_gpu_memory_utilization=rollout[0], rollout_tp=rollout[1]), limit
            )
            if trial is None:
                continue
        estimate = estimate_memory(arch, gpu, trial)
        if estimate.fits:  # within memory and vLLM can load the weights with room for a full sequence
            return Choice(trial, estimate, budget)
    return None


def _fit_side_budgets(arch: Architecture, plan: Plan, limit: int) -> Plan | None:
    """Log-prob (and PPO critic) token budgets: up to twice the actor's, within memory, at least one sequence."""
    states = model_states(arch, plan)
    critic = critic_states(arch, plan) if plan.algorithm == "ppo" else None

    def lp_peak(tokens: int) -> int:
        return log_prob_phase(arch, replace(plan, log_prob_token_budget=tokens), states, critic).peak

    lp = min(2 * plan.token_budget, max_budget(lp_peak, limit, floor=plan.seq_len))
    if lp < plan.seq_len:
        return None
    plan = replace(plan, log_prob_token_budget=max(plan.seq_len, _round_down(lp)))
    if critic is not None:

        def critic_peak(tokens: int) -> int:
            return critic_phase(arch, replace(plan, critic_token_budget=tokens), states, critic).peak

        ct = min(2 * plan.token_budget, max_budget(critic_peak, limit, floor=plan.seq_len))
        if ct < plan.seq_len:
            return None
        plan = replace(plan, critic_token_budget=max(plan.seq_len, _round_down(ct)))
    return plan


# -- batch sizes --------------------------------------------------------------------------------------------------------


def _largest_divisor_at_most(value: int, cap: int) -> int:
    for d in range(max(1, min(cap, value)), 0, -1):
        if value % d == 0:
            return d
    return 1


def batch_sizes(req: ComputeRequest, plan: Plan, token_budget: int, micro: int | None = None) -> dict[str, Any]:
    """Global batch, micro batch and the derived counts verl users get wrong (§4 batch semantics, verl.md §1.4).

    `micro` fixes the micro batch (a configuration being predicted); otherwise it is the largest that fits.
    """
    world = plan.world_size
    if plan.is_rl:
        n = plan.rollout_n
        train_batch = req.global_batch_size or min(1024, DEFAULT_GLOBAL_BATCH * world)
        while (train_batch * n) % world:
            train_batch += 1
        mini = max(1, train_batch // 4)
        while (mini * n) % world or train_batch % mini:
            mini += 1
        per_gpu_mini = mini * n // world
        micro = micro or _largest_divisor_at_most(per_gpu_mini, min(MAX_RL_MICRO_BATCH, token_budget // plan.seq_len))
        return {
            "global_batch_size": train_batch,
            "ppo_mini_batch_size": mini,
            "micro_batch_size_per_gpu": micro,
            "derived": {
                "sequences_per_step": train_batch * n,
                "sequences_per_mini_batch": mini * n,
                "sequences_per_mini_batch_per_gpu": per_gpu_mini,
                "optimizer_steps_per_global_step": train_batch // mini * req.ppo_epochs,
                "gradient_accumulation_steps": max(1, per_gpu_mini // micro),
                "micro_batches_per_optimizer_step_dynamic": math.ceil(per_gpu_mini * plan.seq_len / token_budget),
                "tokens_per_step": train_batch * n * plan.seq_len,
            },
        }
    unit = plan.seq_len * (2 if plan.algorithm == "dpo" else 1)
    micro = micro or max(1, min(MAX_MICRO_BATCH, token_budget // unit))
    per_step = micro * world
    wanted = req.global_batch_size or DEFAULT_GLOBAL_BATCH
    global_batch = max(per_step, math.ceil(wanted / per_step) * per_step)
    return {
        "global_batch_size": global_batch,
        "micro_batch_size_per_gpu": micro,
        "derived": {
            "gradient_accumulation_steps": global_batch // per_step,
            "optimizer_steps_per_global_step": 1,
            "sequences_per_step": global_batch,
            "tokens_per_step": global_batch * unit,
        },
    }


def total_steps(req: ComputeRequest, global_batch: int) -> int:
    return max(1, math.ceil(req.samples * req.epochs / global_batch))


# -- results ------------------------------------------------------------------------------------------------------------


def _recommendation(plan: Plan, sizes: dict[str, Any], token_budget: int, dtype: str = "bf16") -> dict[str, Any]:
    """The recommendation dict; `dtype` is the compute dtype (fp16 on GPUs without bf16): fp32 master weights with fp16
    compute are reported as precision "fp16"."""
    precision = "fp16" if dtype == "fp16" and plan.precision == "fp32-master" else plan.precision
    if plan.algorithm == "dpo" and plan.precision == "bf16":
        dtype = "bf16"  # TRL loads the model in bf16 on every GPU (trl_runner._load_model)
    rec = {
        "global_batch_size": sizes["global_batch_size"],
        "micro_batch_size_per_gpu": sizes["micro_batch_size_per_gpu"],
        "sharding": plan.sharding,
        "zero_stage": ZERO_STAGE[plan.sharding],
        "offload": plan.offload,
        "param_offload": plan.offload == "all",
        "optimizer_offload": plan.offload in ("optimizer", "all"),
        "lora": bool(plan.lora_rank),
        "lora_rank": plan.lora_rank or None,
        "gradient_checkpointing": plan.gradient_checkpointing,
        "precision": precision,
        "compute_dtype": dtype,
        "fused_ce": plan.loss_kernel == "fused",
        "use_dynamic_bsz": plan.algorithm != "dpo",
        "max_token_len_per_gpu": token_budget if plan.algorithm != "dpo" else None,
    }
    if plan.is_rl:
        rec.update(
            {
                "ppo_mini_batch_size": sizes["ppo_mini_batch_size"],
                "rollout_n": plan.rollout_n,
                "ppo_max_token_len_per_gpu": token_budget,
                "log_prob_max_token_len_per_gpu": plan.log_prob_token_budget,
                "critic_max_token_len_per_gpu": plan.critic_token_budget,
                "rollout_gpu_memory_utilization": plan.rollout_gpu_memory_utilization,
                "rollout_tensor_parallel_size": plan.rollout_tp,
            }
        )
    return rec


EMPTY_RECOMMENDATION = dict.fromkeys(
    (
        "global_batch_size",
        "micro_batch_size_per_gpu",
        "sharding",
        "zero_stage",
        "offload",
        "lora",
        "lora_rank",
        "gradient_checkpointing",
    )
)


def _base_result(req: ComputeRequest, arch: Architecture, gpu: GPU, lengths: Lengths, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "algorithm": req.algorithm,
        "model": arch.to_dict(),
        "gpu": gpu.to_dict(),
        "gpus_per_node": req.gpus_per_node,
        "nodes": req.nodes,
        "world_size": req.gpus_per_node * req.nodes,
        "lengths": {"seq_len": lengths.seq_len, "prompt_len": lengths.prompt_len, "response_len": lengths.response_len},
    }


def gpu_notes(gpu: GPU, precision: str | None = None, algorithm: str = "") -> list[str]:
    """Notes on what the plan assumes because of the GPU: fp16 instead of bf16, no flash-attn kernels."""
    notes = []
    if algorithm == "dpo" and precision in (None, "bf16"):
        if not gpu.bf16:  # TRL loads bf16 weights whatever the GPU: torch emulates bf16 there
            notes.append("dpo_bf16_without_hardware_bf16")
    elif not gpu.bf16:
        notes.append("fp16_no_bf16")
    elif precision == "fp16":
        notes.append("fp16_requested")
    if not gpu.flash_attention:
        notes.append("no_flash_attention")
    return notes


def _fill(
    result: dict[str, Any], req: ComputeRequest, arch: Architecture, gpu: GPU, choice: Choice, micro: int | None = None
) -> None:
    plan, estimate = choice.plan, choice.estimate
    sizes = batch_sizes(req, plan, choice.token_budget, micro)
    result.update(estimate.to_dict())
    dtype = compute_dtype(gpu, req.precision)
    if plan.algorithm == "dpo" and plan.precision == "bf16":
        dtype = "bf16"  # TRL loads the model in bf16 on every GPU (trl_runner._load_model)
    result["recommendation"] = _recommendation(plan, sizes, choice.token_budget, dtype)
    result["notes"] = [*result["notes"], *gpu_notes(gpu, req.precision, req.algorithm)]
    result["derived"] = sizes["derived"]
    micro_steps = sizes["derived"]["gradient_accumulation_steps"]
    steps = total_steps(req, sizes["global_batch_size"])
    timing = estimate_time(arch, gpu, plan, sizes["global_batch_size"], micro_steps, steps, req.ppo_epochs, req.mfu)
    # the whole-run figure rests on the sample count and epochs (defaults unless given): say so
    timing.assumptions += [f"samples={req.samples}", f"epochs={req.epochs:g}", f"compute_dtype={dtype}"]
    result["estimate"] = timing.to_dict()
    result["suggestions"] = []
    result["job_prefill"] = job_prefill(req, result)


def recommend(req: ComputeRequest, arch: Architecture, gpu: GPU, suggest: bool = True) -> dict[str, Any]:
    """The first candidate that fits, with its batch sizes and time; when none fits, what would."""
    lengths = lengths_for(req)
    result = _base_result(req, arch, gpu, lengths, "recommend")
    plans = candidate_plans(req, arch, gpu, lengths)
    for plan in plans:
        choice = fit_candidate(arch, gpu, plan)
        if choice is not None:
            _fill(result, req, arch, gpu, choice)
            return result
    # Nothing fits: show the most frugal candidate with one sequence, checkpointing and fused loss, and what would fit.
    kernel = plans[-1].loss_kernel if req.algorithm == "dpo" else "fused"
    frugal = replace(plans[-1], gradient_checkpointing=True, loss_kernel=kernel, token_budget=None, micro_batch=1)
    if frugal.is_rl:
        frugal = replace(frugal, rollout_gpu_memory_utilization=GMU_MIN)
    estimate = estimate_memory(arch, gpu, frugal)
    result.update(estimate.to_dict())
    result["notes"] = [*result["notes"], *gpu_notes(gpu, req.precision, req.algorithm)]
    result["fits"] = False
    result["recommendation"] = {**EMPTY_RECOMMENDATION, "lora": bool(frugal.lora_rank)}
    result["derived"] = {}
    result["estimate"] = {"seconds_per_step": None}
    result["suggestions"] = suggestions(req, arch, gpu) if suggest else []
    result["job_prefill"] = None
    return result


def suggestions(req: ComputeRequest, arch: Architecture, gpu: GPU) -> list[dict[str, Any]]:
    """What would fit instead: more GPUs, LoRA, a shorter sequence, a bigger GPU."""
    found: list[dict[str, Any]] = []
    # DPO runs under DDP: every GPU holds the whole model, so more GPUs never lower the per-GPU peak
    more_gpus = () if req.algorithm == "dpo" else ((2, 1), (4, 1), (8, 1), (8, 2), (8, 4), (8, 8), (8, 16))

    def fits(**changes: Any) -> dict[str, Any] | None:
        trial = req.model_copy(update=changes)
        trial_gpu = get_gpu(trial.gpu, trial.gpu_memory_gib, trial.gpu_tflops) if "gpu" in changes else gpu
        result = recommend(trial, arch, trial_gpu, suggest=False)
        return result if result["fits"] else None

    for gpus_per_node, nodes in more_gpus:
        if gpus_per_node * nodes <= req.gpus_per_node * req.nodes:
            continue
        result = fits(gpus_per_node=gpus_per_node, nodes=nodes)
        if result:
            found.append(
                {
                    "kind": "more_gpus",
                    "gpus_per_node": gpus_per_node,
                    "nodes": nodes,
                    "peak_gib_per_gpu": result["peak_gib_per_gpu"],
                    "lora": result["recommendation"]["lora"],
                }
            )
            break
    if req.algorithm != "sft-lora" and req.lora_rank is None:
        result = fits(lora_rank=DEFAULT_LORA_RANK[req.algorithm])
        if result:
            found.append(
                {
                    "kind": "lora",
                    "lora_rank": DEFAULT_LORA_RANK[req.algorithm],
                    "peak_gib_per_gpu": result["peak_gib_per_gpu"],
                }
            )
    lengths = lengths_for(req)
    rl = req.algorithm in ("grpo", "ppo")
    length = lengths.response_len if rl else lengths.seq_len
    while length // 2 >= SHORTEST_SEQUENCE:
        length //= 2
        changes = (
            {"response_len": length, "prompt_len": lengths.prompt_len, "seq_len": None} if rl else {"seq_len": length}
        )
        result = fits(**changes)
        if result:
            found.append(
                {
                    "kind": "shorter_response" if rl else "shorter_sequence",
                    "length": length,
                    "peak_gib_per_gpu": result["peak_gib_per_gpu"],
                }
            )
            break
    for other in sorted(GPUS.values(), key=lambda g: g.memory_gib):
        if other.memory_gib <= gpu.memory_gib:
            continue
        result = fits(gpu=other.key)
        if result:
            found.append({"kind": "bigger_gpu", "gpu": other.key, "peak_gib_per_gpu": result["peak_gib_per_gpu"]})
            break
    return found


def plan_from_request(req: ComputeRequest, lengths: Lengths, gpu: GPU) -> Plan:
    """The concrete configuration a request describes (predict mode), with the framework's defaults for the rest."""
    algo = req.algorithm
    strategy = req.strategy or "fsdp"
    rank = req.lora_rank or (DEFAULT_LORA_RANK[algo] if algo == "sft-lora" else 0)
    if req.precision == "bf16" and not gpu.bf16 and algo != "dpo":  # TRL's DPO loads bf16 anyway (emulated)
        raise InvalidInput(
            f"precision: {gpu.name} has no bf16; use fp16 (fp32 master weights, fp16 compute with loss scaling) "
            "or fp32-master, which runs in fp16 there"
        )
    kernel = "fused" if req.fused_ce else default_loss_kernel(algo, strategy, gpu)
    micro = req.micro_batch or 1
    unit = lengths.seq_len * (2 if algo == "dpo" else 1)
    token_budget = req.token_budget or (micro * unit if req.packing or algo in ("grpo", "ppo") else None)
    side_budget = req.log_prob_token_budget or (2 * token_budget if token_budget else None)
    precision = "bf16" if req.precision == "bf16" else "fp32-master"  # fp16 mixed: the same bytes as bf16 mixed
    if algo == "dpo" and req.precision is None:
        precision = DPO_PLATFORM["precision"]  # what the TRL runner loads
    return Plan(
        algorithm=algo,
        seq_len=lengths.seq_len,
        prompt_len=lengths.prompt_len,
        response_len=lengths.response_len,
        gpus_per_node=req.gpus_per_node,
        nodes=req.nodes,
        sharding=strategy,
        micro_batch=micro,
        token_budget=token_budget,
        gradient_checkpointing=True if req.gradient_checkpointing is None else req.gradient_checkpointing,
        offload=req.offload or "none",
        precision=precision,
        lora_rank=rank,
        optimizer="adamw" if strategy in ("ddp", "fsdp") and algo != "dpo" else "adamw_fused",
        loss_kernel=kernel,
        packing=bool(req.packing),
        rollout_n=req.rollout_n or DEFAULT_ROLLOUT_N.get(algo, 1),
        rollout_gpu_memory_utilization=req.rollout_gpu_memory_utilization or 0.5,
        rollout_tp=req.rollout_tp or 1,
        log_prob_token_budget=side_budget,
        critic_token_budget=side_budget if algo == "ppo" else None,
        reward_model=req.reward_model,
        reference_bytes_per_param=DPO_REFERENCE_BYTES if algo == "dpo" else 2,
    )


def dpo_differs_from_platform(req: ComputeRequest, plan: Plan) -> bool:
    """True when a predicted DPO configuration is not what the platform runs (TRL DDP, bf16 weights, TRL's loss,
    no offload, no packing): a job created from it will not use those settings."""
    return plan.algorithm == "dpo" and (
        any(getattr(plan, key) != value for key, value in DPO_PLATFORM.items())
        or bool(req.packing)
        or req.token_budget is not None
    )


def predict(req: ComputeRequest, arch: Architecture, gpu: GPU) -> dict[str, Any]:
    """The peak and time of the configuration the request gives (no recommendation)."""
    lengths = lengths_for(req)
    plan = plan_from_request(req, lengths, gpu)
    estimate = estimate_memory(arch, gpu, plan)
    result = _base_result(req, arch, gpu, lengths, "predict")
    _fill(result, req, arch, gpu, Choice(plan, estimate, plan.tokens_per_micro_batch), req.micro_batch)
    if not plan.token_budget:
        result["recommendation"]["use_dynamic_bsz"] = False
        result["recommendation"]["max_token_len_per_gpu"] = None
    if dpo_differs_from_platform(req, plan):
        result["notes"].append("dpo_platform_runs_trl_ddp")
    result["job_prefill"] = job_prefill(req, result)
    return result


def configure(req: ComputeRequest) -> dict[str, Any]:
    """Recommend a configuration for the request, or predict the one it gives (`--strategy ...`)."""
    arch = get_architecture(req.model)
    gpu = get_gpu(req.gpu, req.gpu_memory_gib, req.gpu_tflops)
    if req.algorithm in ("grpo", "ppo") and req.rollout_tp and arch.num_heads % req.rollout_tp:
        raise InvalidInput(f"rollout_tp: {arch.num_heads} attention heads are not divisible by {req.rollout_tp}")
    return predict(req, arch, gpu) if req.predict else recommend(req, arch, gpu)


def job_prefill(req: ComputeRequest, result: dict[str, Any]) -> dict[str, Any]:
    """Values for the new-job form (keys documented in notes/configurator.md); plain numbers, bools and strings."""
    rec = result["recommendation"]
    lengths = result["lengths"]
    algo = "sft" if req.algorithm == "sft-lora" else req.algorithm
    rank = rec.get("lora_rank") or 0
    values: dict[str, Any] = {
        "algorithm": algo,
        "model": result["model"]["source"] if result["model"]["source"] != "preset" else result["model"]["name"],
        "gpus_per_node": req.gpus_per_node,
        "nodes": req.nodes,
        "train_batch_size": rec["global_batch_size"],
        "micro_batch_size_per_gpu": rec["micro_batch_size_per_gpu"],
        "use_dynamic_bsz": bool(rec.get("use_dynamic_bsz")),
        "max_token_len_per_gpu": rec.get("max_token_len_per_gpu"),
        "gradient_checkpointing": bool(rec["gradient_checkpointing"]),
        "param_offload": bool(rec.get("param_offload")),
        "optimizer_offload": bool(rec.get("optimizer_offload")),
        "lora_enabled": bool(rec["lora"]),
        "lora_rank": rank,
        "lora_alpha": 2 * rank if rank else 0,
        # verl has no fp16 master weights: only the bf16 actor loads in 16 bit; fp16 runs keep fp32 weights
        "model_dtype": "bfloat16" if rec.get("precision") == "bf16" else "float32",
        "mixed_precision_dtype": "float16" if rec.get("compute_dtype") == "fp16" else None,
        "use_fused_kernels": bool(rec.get("fused_ce")),
    }
    if req.algorithm == "dpo":
        # the platform runs DPO with TRL under DDP whatever was predicted: no offload, no fused kernels, bf16 weights
        # (trl_runner ignores these fields; they must not claim settings the job will not have)
        values.update(
            {
                "param_offload": False,
                "optimizer_offload": False,
                "use_fused_kernels": False,
                "use_dynamic_bsz": False,
                "max_token_len_per_gpu": None,
                "model_dtype": "bfloat16",
                "mixed_precision_dtype": None,
            }
        )
    if req.algorithm in ("grpo", "ppo"):
        values.update(
            {
                "max_prompt_length": lengths["prompt_len"],
                "max_response_length": lengths["response_len"],
                "ppo_mini_batch_size": rec["ppo_mini_batch_size"],
                "rollout_n": rec["rollout_n"],
                "log_prob_max_token_len_per_gpu": rec.get("log_prob_max_token_len_per_gpu"),
                "critic_max_token_len_per_gpu": rec.get("critic_max_token_len_per_gpu"),
                "rollout_gpu_memory_utilization": rec["rollout_gpu_memory_utilization"],
                "rollout_tensor_parallel_size": rec["rollout_tensor_parallel_size"],
            }
        )
    else:
        values["max_length"] = lengths["seq_len"]
    return {key: value for key, value in values.items() if value is not None}


def summary_text(result: dict[str, Any]) -> str:
    """A short plain-text rendering of a result for the terminal."""
    lines = [
        f"{result['model']['name']} · {result['algorithm']} · {result['world_size']}× {result['gpu']['name']}",
        f"fits: {'yes' if result['fits'] else 'NO'} · peak {result['peak_gib_per_gpu']} GiB per GPU "
        f"({result['peak_phase']}) of {result['usable_gib_per_gpu']} GiB",
    ]
    lines += [f"  {part:<18} {value:8.2f} GiB" for part, value in result["breakdown"].items()]
    rec = result["recommendation"]
    if result["fits"]:
        lines.append("configuration:" if result["mode"] == "predict" else "recommendation:")
        lines += [f"  {key:<32} {value}" for key, value in rec.items() if value is not None]
        lines += [f"  {key:<32} {value}" for key, value in result["derived"].items()]
        est = result["estimate"]
        lines.append(
            f"time: {est['seconds_per_step']} s per step × {est['total_steps']} steps ≈ {est['hours_total']} h "
            f"(MFU {est['mfu']}, {est['gpu_bf16_tflops']} TFLOPS bf16)"
        )
    for item in result.get("suggestions") or []:
        detail = ", ".join(f"{k}={v}" for k, v in item.items() if k != "kind")
        lines.append(f"would fit: {item['kind']} ({detail})")
    if not result["fits"] and not result.get("suggestions"):
        lines.append("nothing in reach fits: more GPUs, a shorter sequence or a smaller model")
    return "\n".join(lines)
