"""Engines turn a job spec into a run: the command (argument list), environment and config files.

Two engines are registered: verl (SFT through torchrun + sft_trainer, GRPO/PPO through main_ppo) and TRL (offline
DPO, and GRPO/PPO/SFT where verl cannot run: RL on a machine without a GPU). `choose_engine` picks one from the
algorithm and the hardware and says why; the user can override it where both can run.

Paths in a RunContext are strings for the machine that runs the job (local paths, or POSIX paths on the server),
so one plan works for the local, SSH and Ray runners.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from platform_core.errors import InvalidInput
from platform_core.jobs.specs import DPOSpec, GRPOSpec, JobSpec, PPOSpec, SFTSpec

PLUGIN_MODULE = "verl_plugin"
RAY_NOSET_FLAGS = (
    "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES",
    "RAY_EXPERIMENTAL_NOSET_ROCR_VISIBLE_DEVICES",
    "RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES",
    "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES",
    "RAY_EXPERIMENTAL_NOSET_HABANA_VISIBLE_MODULES",
    "RAY_EXPERIMENTAL_NOSET_NEURON_RT_VISIBLE_CORES",
    "RAY_EXPERIMENTAL_NOSET_TPU_VISIBLE_CHIPS",
    "RAY_EXPERIMENTAL_NOSET_ONEAPI_DEVICE_SELECTOR",
)
PROJECT_NAME = "training-platform"


@dataclass
class RunContext:
    """Where a run's files are, on the machine that runs it."""

    job_id: int
    attempt: int
    job_dir: str  # <outputs>/job-<id>-<slug>
    attempt_dir: str  # <job_dir>/attempt-<n>
    checkpoint_dir: str  # <job_dir>/checkpoints
    config_dir: str  # <job_dir>/config
    plugin_dir: str  # a directory holding platform_core/plugins/*.py
    python: str  # the Python that runs the trainer
    model_path: str
    train_files: str  # the converted dataset the engine reads
    val_files: str | None
    device: str  # "cuda" or "cpu"
    train_rows: int  # rows in the training file (for the step plan)
    reward_model_path: str | None = None
    critic_model_path: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class RunPlan:
    """The exact run: what the runner executes, and what the platform needs to know about it."""

    engine: str
    argv: list[str]
    env: dict[str, str]
    files: dict[str, str]  # file name in config_dir -> content
    total_steps: int
    steps_per_epoch: int
    data_format: str  # which conversion of the dataset the engine reads
    overrides: list[str] = field(default_factory=list)  # verl Hydra overrides (validated before launch)
    config_name: str | None = None  # verl config the overrides apply to
    unset_env: list[str] = field(default_factory=list)  # variables removed from the inherited environment

    def shell_command(self) -> str:
        """The run as one shell line (env + command), every word quoted; secrets never appear in a plan."""
        words = ["env"] + [f"-u {name}" for name in self.unset_env]
        words += [f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        return " ".join([*words, shlex.join(self.argv)])


def needs_gpu_for(spec: JobSpec, engine: str) -> bool:
    """verl's RL needs a GPU and a rollout server; everything else can run on a CPU."""
    return engine == "verl" and spec.algorithm in ("grpo", "ppo")


# Why an engine was chosen: a code the UI translates (STRINGS "jobs.reason.<code>") and the English the CLI prints.
ENGINE_REASONS = {
    "dpo_offline": "verl 0.9.1 has no offline DPO trainer, so DPO runs on TRL's DPOTrainer",
    "trl_sft_chosen": "TRL's SFTTrainer, as chosen",
    "verl_sft": "verl's sft_trainer",
    "verl_sft_cpu": "verl's sft_trainer on the CPU through the platform's verl plugin",
    "verl_rl_chosen": "verl main_ppo with a {rollout} rollout, as chosen",
    "trl_rl_chosen": "TRL's {algorithm} trainer, as chosen",
    "verl_rl_gpu": "verl main_ppo with a {rollout} rollout (a GPU is available)",
    "trl_rl_no_gpu": "no GPU on this target: verl's RL needs one, so {algorithm} runs on TRL",
}


class EngineReason(str):
    """The English reason for an engine choice, carrying its code and values so that the UI can translate it."""

    code: str
    params: dict[str, str]

    def __new__(cls, code: str, **params: str) -> EngineReason:
        reason = super().__new__(cls, ENGINE_REASONS[code].format(**params))
        reason.code, reason.params = code, params
        return reason

    def record(self) -> dict[str, Any]:
        return {"code": self.code, "params": self.params}

    def __reduce__(self):  # copy, deepcopy and pickle rebuild it from its code and values, not from its text
        return (_engine_reason, (self.code, self.params))


def _engine_reason(code: str, params: dict[str, str]) -> EngineReason:
    return EngineReason(code, **params)


def choose_engine(spec: JobSpec, has_gpu: bool) -> tuple[str, EngineReason]:
    """Return (engine, reason) for a spec on a target with or without a GPU; respects an explicit choice."""
    algorithm = spec.algorithm.upper()
    if spec.algorithm == "dpo":
        if spec.engine == "verl":
            raise InvalidInput("engine: verl 0.9.1 has no offline DPO trainer; DPO runs on TRL")
        return "trl", EngineReason("dpo_offline")
    if spec.algorithm == "sft":
        if spec.engine == "trl":
            return "trl", EngineReason("trl_sft_chosen")
        return "verl", EngineReason("verl_sft" if has_gpu else "verl_sft_cpu")
    if spec.engine == "verl":
        if not has_gpu:
            raise InvalidInput(
                f"engine: verl's {algorithm} needs a GPU and a rollout server (vLLM); "
                "this target has no GPU, choose engine auto or trl"
            )
        return _rl_on_verl(spec, EngineReason("verl_rl_chosen", rollout=spec.rollout_engine))
    if spec.engine == "trl":
        return _rl_on_trl(spec, has_gpu, EngineReason("trl_rl_chosen", algorithm=algorithm))
    if has_gpu:
        return _rl_on_verl(spec, EngineReason("verl_rl_gpu", rollout=spec.rollout_engine))
    return _rl_on_trl(spec, has_gpu, EngineReason("trl_rl_no_gpu", algorithm=algorithm))


def _rl_on_verl(spec: JobSpec, reason: EngineReason) -> tuple[str, EngineReason]:
    # main_ppo places its workers through Ray: on the local or SSH targets it starts a one-machine Ray, so more
    # nodes would wait for resources that never join.
    if spec.nodes > 1 and spec.target != "ray":
        raise InvalidInput(
            f"nodes: multi-node {spec.algorithm.upper()} ({spec.nodes} nodes) needs the Ray target (a Ray cluster "
            "spanning the nodes); the local and SSH targets run on one machine"
        )
    return "verl", reason


def _rl_on_trl(spec: JobSpec, has_gpu: bool, reason: EngineReason) -> tuple[str, EngineReason]:
    if spec.nodes > 1:
        raise InvalidInput(
            f"nodes: TRL runs on one machine here; {spec.nodes} nodes need verl on a GPU Ray cluster (target ray)"
        )
    if isinstance(spec, PPOSpec) and not spec.reward_model_path:
        where = "PPO on TRL (no GPU)" if not has_gpu else "PPO on TRL"
        raise InvalidInput(
            f"reward_model_path: {where} needs reward_model_path; use GRPO with a rule reward, or a GPU target for verl"
        )
    return "trl", reason


def steps_plan(spec: JobSpec, rows: int, ranks: int = 1) -> tuple[int, int]:
    """Return (steps_per_epoch, total_steps) the way the engines count them (sharded sampler, drop_last loaders)."""
    batch = spec.batch_size
    steps_per_epoch = (rows // ranks) // max(1, batch // ranks)
    if steps_per_epoch == 0:
        raise InvalidInput(
            f"batch_size: the dataset has {rows} rows, fewer than one batch of {batch}; lower batch_size or add data"
        )
    total = spec.total_steps or steps_per_epoch * spec.epochs
    if total > steps_per_epoch * spec.epochs:
        raise InvalidInput(
            f"total_steps: {total} is more than epochs x steps per epoch ({spec.epochs} x "
            f"{steps_per_epoch}); raise epochs or lower total_steps"
        )
    return steps_per_epoch, total


def _attn(spec: JobSpec, ctx: RunContext) -> str:
    if spec.attn_implementation != "auto":
        return spec.attn_implementation
    return "flash_attention_2" if ctx.device == "cuda" else "sdpa"


def _common_env(spec: JobSpec, ctx: RunContext) -> dict[str, str]:
    env = {
        "PYTHONPATH": ctx.plugin_dir,
        "PYTHONUNBUFFERED": "1",
        "HYDRA_FULL_ERROR": "1",
        "RAY_DEDUP_LOGS": "0",
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PLATFORM_CONTROL_FILE": f"{ctx.attempt_dir}/control.json",
        "PLATFORM_STATUS_FILE": f"{ctx.attempt_dir}/status.json",
        "PLATFORM_METRICS_FILE": f"{ctx.attempt_dir}/metrics.jsonl",
        "VERL_FILE_LOGGER_PATH": f"{ctx.attempt_dir}/metrics.jsonl",
    }
    if spec.attn_implementation == "auto" and ctx.device == "cuda":
        env["PLATFORM_ATTN_FALLBACK"] = "sdpa"  # the supervisor checks flash-attn on the machine (plugins/attention.py)
    if spec.gradnorm_every:
        env["PLATFORM_GRADNORM_FILE"] = f"{ctx.attempt_dir}/gradnorms.jsonl"
        env["PLATFORM_GRADNORM_EVERY"] = str(spec.gradnorm_every)
    env.update(ctx.extra_env)
    return env


# -- verl ------------------------------------------------------------------------------------------------------------
def _bool(value: bool) -> str:
    return "True" if value else "False"


_HYDRA_PLAIN = re.compile(r"[A-Za-z0-9_./+\-@%]+")


def hydra_str(value: str) -> str:
    """A string as a Hydra override value: plain when it only has safe characters, else single-quoted.

    Hydra's override grammar rejects unquoted CJK characters and parentheses, which real paths contain.
    """
    if _HYDRA_PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def verl_sft_overrides(spec: SFTSpec, ctx: RunContext, total_steps: int) -> list[str]:
    """Hydra overrides for verl.trainer.sft_trainer."""
    o = [
        f"model.path={hydra_str(ctx.model_path)}",
        f"+model.override_config.attn_implementation={_attn(spec, ctx)}",
        "model.use_remove_padding=True",
        f"model.enable_gradient_checkpointing={_bool(spec.gradient_checkpointing)}",
        "engine=fsdp",
        "engine.strategy=fsdp2",
        f"engine.param_offload={_bool(spec.param_offload)}",
        f"engine.optimizer_offload={_bool(spec.optimizer_offload)}",
        f"data.train_files={hydra_str(ctx.train_files)}",
        "data.messages_key=messages",
        f"data.max_length={spec.max_length}",
        "data.truncation=right",
        f"data.train_batch_size={spec.batch_size}",
        f"data.micro_batch_size_per_gpu={spec.micro_batch_size_per_gpu}",
        f"data.use_dynamic_bsz={_bool(spec.use_dynamic_bsz)}",
        f"data.max_token_len_per_gpu={spec.max_token_len_per_gpu}",
        f"data.num_workers={0 if ctx.device == 'cpu' else 4}",
        f"optim.lr={spec.learning_rate}",
        f"optim.lr_warmup_steps_ratio={spec.warmup_ratio}",
        "trainer.logger=[console,file]",
        f"trainer.project_name={PROJECT_NAME}",
        f"trainer.experiment_name=job-{ctx.job_id}",
        f"trainer.default_local_dir={hydra_str(ctx.checkpoint_dir)}",
        f"trainer.total_epochs={spec.epochs}",
        f"trainer.total_training_steps={total_steps}",
        f"trainer.save_freq={spec.save_freq}",
        f"trainer.test_freq={spec.test_freq if spec.test_freq and ctx.val_files else -1}",
        "trainer.resume_mode=auto",
        f"trainer.seed={spec.seed}",
        f"trainer.device={ctx.device}",
        f"trainer.n_gpus_per_node={max(1, spec.gpus_per_node)}",
        f"trainer.nnodes={spec.nodes}",
    ]
    if ctx.val_files:
        o.append(f"data.val_files={hydra_str(ctx.val_files)}")
    if spec.max_checkpoints:
        o.append(f"trainer.max_ckpt_to_keep={spec.max_checkpoints}")
    if spec.lora_enabled:
        o += [
            f"model.lora_rank={spec.lora_rank}",
            f"model.lora_alpha={spec.effective_lora_alpha}",
            "model.target_modules=all-linear",
        ]
    if ctx.device == "cpu":
        # CPUs are slow in bf16 and the tiny demo model learns poorly with it: train in fp32.
        o.append("+engine.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}")
    else:
        o += [f"engine.model_dtype={spec.model_dtype}", f"model.use_fused_kernels={_bool(spec.use_fused_kernels)}"]
    return o + list(spec.extra_overrides)


def verl_rl_overrides(spec: GRPOSpec | PPOSpec, ctx: RunContext, total_steps: int) -> list[str]:
    """Hydra overrides for verl.trainer.main_ppo (GRPO: adv_estimator=grpo; PPO: gae with a critic)."""
    a = "actor_rollout_ref"
    gpus = max(1, spec.gpus_per_node)
    o = [
        f"algorithm.adv_estimator={'grpo' if spec.algorithm == 'grpo' else 'gae'}",
        f"data.train_files={hydra_str(ctx.train_files)}",
        f"data.val_files={hydra_str(ctx.val_files or ctx.train_files)}",
        f"data.train_batch_size={spec.batch_size}",
        f"data.max_prompt_length={spec.max_prompt_length}",
        f"data.max_response_length={spec.max_response_length}",
        "data.filter_overlong_prompts=True",
        "data.truncation=error",
        f"{a}.model.path={hydra_str(ctx.model_path)}",
        "data.prompt_key=prompt",
        f"+{a}.model.override_config.attn_implementation={_attn(spec, ctx)}",
        f"{a}.model.use_remove_padding=True",
        f"{a}.model.enable_gradient_checkpointing={_bool(spec.gradient_checkpointing)}",
        f"{a}.actor.optim.lr={spec.learning_rate}",
        f"{a}.actor.optim.lr_warmup_steps_ratio={spec.warmup_ratio}",
        f"{a}.actor.ppo_mini_batch_size={spec.mini_batch}",
        f"{a}.actor.use_kl_loss={_bool(spec.kl_coef > 0)}",
        f"{a}.actor.kl_loss_coef={spec.kl_coef}",
        f"{a}.actor.kl_loss_type=low_var_kl",
        f"{a}.actor.entropy_coeff=0",
        f"{a}.actor.fsdp_config.param_offload={_bool(spec.param_offload)}",
        f"{a}.actor.fsdp_config.optimizer_offload={_bool(spec.optimizer_offload)}",
        # Both are GPU settings (verl's fused kernels are Triton); on a CPU the defaults stay.
        f"{a}.actor.fsdp_config.model_dtype={spec.model_dtype if ctx.device == 'cuda' else 'fp32'}",
        f"{a}.model.use_fused_kernels={_bool(spec.use_fused_kernels and ctx.device == 'cuda')}",
        f"{a}.ref.fsdp_config.param_offload=True",
        f"{a}.rollout.name={spec.rollout_engine}",
        f"{a}.rollout.n={spec.rollout_n}",
        f"{a}.rollout.temperature={spec.temperature}",
        f"{a}.rollout.tensor_model_parallel_size={spec.rollout_tensor_parallel_size}",
        f"{a}.rollout.gpu_memory_utilization={spec.rollout_gpu_memory_utilization}",
        "trainer.logger=[console,file]",
        f"trainer.project_name={PROJECT_NAME}",
        f"trainer.experiment_name=job-{ctx.job_id}",
        f"trainer.default_local_dir={hydra_str(ctx.checkpoint_dir)}",
        f"trainer.rollout_data_dir={hydra_str(ctx.job_dir + '/rollouts')}",
        f"trainer.total_epochs={spec.epochs}",
        f"trainer.total_training_steps={total_steps}",
        f"trainer.save_freq={spec.save_freq}",
        f"trainer.test_freq={spec.test_freq if spec.test_freq else -1}",
        "trainer.val_before_train=False",
        "trainer.resume_mode=auto",
        f"trainer.n_gpus_per_node={gpus}",
        f"trainer.nnodes={spec.nodes}",
        "trainer.critic_warmup=0",
    ]
    if spec.use_dynamic_bsz:
        # The configurator's budgets when it gave them; else twice the actor's (forward passes keep no gradients).
        log_prob_budget = spec.log_prob_max_token_len_per_gpu or 2 * spec.max_token_len_per_gpu
        o += [
            f"{a}.actor.use_dynamic_bsz=True",
            f"{a}.actor.ppo_max_token_len_per_gpu={spec.max_token_len_per_gpu}",
            f"{a}.rollout.log_prob_use_dynamic_bsz=True",
            f"{a}.rollout.log_prob_max_token_len_per_gpu={log_prob_budget}",
            f"{a}.ref.log_prob_use_dynamic_bsz=True",
            f"{a}.ref.log_prob_max_token_len_per_gpu={log_prob_budget}",
        ]
    else:
        micro = spec.micro_batch_size_per_gpu
        o += [
            f"{a}.actor.ppo_micro_batch_size_per_gpu={micro}",
            f"{a}.rollout.log_prob_micro_batch_size_per_gpu={2 * micro}",
            f"{a}.ref.log_prob_micro_batch_size_per_gpu={2 * micro}",
        ]
    if spec.max_checkpoints:
        o.append(f"trainer.max_actor_ckpt_to_keep={spec.max_checkpoints}")
    if spec.lora_enabled:
        o += [
            f"{a}.model.lora_rank={spec.lora_rank}",
            f"{a}.model.lora_alpha={spec.effective_lora_alpha}",
            f"{a}.model.target_modules=all-linear",
            f"{a}.rollout.load_format=safetensors",
            f"{a}.rollout.layered_summon=True",
        ]
    if isinstance(spec, PPOSpec):
        o += [
            f"critic.model.path={hydra_str(ctx.critic_model_path or ctx.model_path)}",
            # verl's critic defaults to flash_attention_2 on its own: it gets the same choice (and fallback) as the actor
            f"+critic.model.override_config.attn_implementation={_attn(spec, ctx)}",
            f"critic.optim.lr={spec.critic_learning_rate}",
            f"critic.model.enable_gradient_checkpointing={_bool(spec.gradient_checkpointing)}",
            f"critic.fsdp.param_offload={_bool(spec.param_offload)}",
            f"critic.fsdp.optimizer_offload={_bool(spec.optimizer_offload)}",
            f"{a}.actor.clip_ratio={spec.clip_ratio}",
        ]
        critic_budget = spec.critic_max_token_len_per_gpu or 2 * spec.max_token_len_per_gpu
        o += (
            [
                "critic.use_dynamic_bsz=True",
                f"critic.ppo_max_token_len_per_gpu={critic_budget}",
                f"critic.forward_max_token_len_per_gpu={critic_budget}",
            ]
            if spec.use_dynamic_bsz
            else [f"critic.ppo_micro_batch_size_per_gpu={spec.micro_batch_size_per_gpu}"]
        )
    if isinstance(spec, PPOSpec) and ctx.reward_model_path:
        o += [
            "reward.reward_model.enable=True",
            f"reward.reward_model.model_path={hydra_str(ctx.reward_model_path)}",
            f"reward.reward_model.rollout.name={spec.rollout_engine}",
            f"reward.reward_model.rollout.tensor_model_parallel_size={spec.rollout_tensor_parallel_size}",
            f"reward.reward_model.rollout.max_num_seqs={spec.reward_model_micro_batch_size * 64}",
            f"reward.reward_model.rollout.free_cache_engine={_bool(spec.reward_model_param_offload)}",
            "data.return_raw_chat=True",
        ]
    else:
        reward = spec.reward
        o += [
            f"reward.custom_reward_function.path={hydra_str(ctx.config_dir + '/reward.py')}",
            "reward.custom_reward_function.name=compute_score",
            f"+reward.custom_reward_function.reward_kwargs.reward_type={reward.reward_type}",
            f"+reward.custom_reward_function.reward_kwargs.extraction={reward.extraction}",
            f"+reward.custom_reward_function.reward_kwargs.comparison={reward.comparison}",
            f"+reward.custom_reward_function.reward_kwargs.json_key={reward.json_key}",
        ]
        if reward.reward_type == "custom":
            o.append(
                f"+reward.custom_reward_function.reward_kwargs.custom_path={hydra_str(ctx.config_dir + '/custom_reward.py')}"
            )
    return o + list(spec.extra_overrides)


def plan_verl(spec: JobSpec, ctx: RunContext) -> RunPlan:
    """The verl run for a spec: SFT through torchrun, GRPO/PPO through main_ppo."""
    ranks = max(1, spec.gpus_per_node) if spec.algorithm == "sft" and ctx.device == "cuda" else 1
    steps_per_epoch, total = steps_plan(spec, ctx.train_rows, ranks)
    env = _common_env(spec, ctx)
    env["VERL_USE_EXTERNAL_MODULES"] = PLUGIN_MODULE
    if ctx.device == "cpu":
        env.update({"VERL_PLATFORM": "cpu", "VERL_ENGINE_DEVICE": "cuda"})
    hydra_dir = [f"hydra.run.dir={hydra_str(ctx.attempt_dir + '/hydra')}"]
    if isinstance(spec, SFTSpec):
        # torchrun ranks are not Ray actors: inside a Ray job entrypoint Ray's "don't set *_VISIBLE_DEVICES" flags
        # would make verl's worker look up accelerator ids Ray never assigned to them (KeyError: 'CPU').
        overrides = verl_sft_overrides(spec, ctx, total)
        nproc = max(1, spec.gpus_per_node) if ctx.device == "cuda" else 1
        argv = [
            ctx.python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc_per_node={nproc}",
            "-m",
            "verl.trainer.sft_trainer",
            *overrides,
            *hydra_dir,
        ]
        return RunPlan(
            "verl",
            argv,
            env,
            {},
            total,
            steps_per_epoch,
            "verl_sft",
            overrides,
            "sft_trainer_engine",
            unset_env=list(RAY_NOSET_FLAGS),
        )
    if isinstance(spec, (GRPOSpec, PPOSpec)):
        overrides = verl_rl_overrides(spec, ctx, total)
        argv = [ctx.python, "-m", "verl.trainer.main_ppo", *overrides, *hydra_dir]
        files = (
            {} if isinstance(spec, PPOSpec) and ctx.reward_model_path else {"reward.py": _plugin_source("reward.py")}
        )
        return RunPlan("verl", argv, env, files, total, steps_per_epoch, "verl_rl", overrides, "ppo_trainer")
    raise InvalidInput(f"engine: verl cannot run {spec.algorithm}")


# -- TRL -------------------------------------------------------------------------------------------------------------
TRL_DATA_FORMATS = {"sft": "verl_sft", "dpo": "trl_dpo", "grpo": "trl_rl", "ppo": "trl_rl"}


def trl_job_config(spec: JobSpec, ctx: RunContext, total_steps: int) -> dict[str, Any]:
    """The JSON the TRL runner (platform_core/plugins/trl_runner.py) reads."""
    config: dict[str, Any] = {
        "algorithm": spec.algorithm,
        "model_path": ctx.model_path,
        "train_files": ctx.train_files,
        "val_files": ctx.val_files,
        "output_dir": ctx.checkpoint_dir,
        "rollout_dir": f"{ctx.job_dir}/rollouts",
        "learning_rate": spec.learning_rate,
        "batch_size": spec.batch_size,
        "micro_batch_size_per_gpu": spec.micro_batch_size_per_gpu,
        "world_size": spec.world_size if ctx.device == "cuda" else 1,
        "epochs": spec.epochs,
        "total_steps": total_steps,
        "save_freq": spec.save_freq,
        "test_freq": spec.test_freq,
        "max_checkpoints": spec.max_checkpoints,
        "seed": spec.seed,
        "warmup_ratio": spec.warmup_ratio,
        "gradient_checkpointing": spec.gradient_checkpointing,
        "lora": {"enabled": spec.lora_enabled, "rank": spec.lora_rank, "alpha": spec.effective_lora_alpha},
        "attn_implementation": _attn(spec, ctx),
        "device": ctx.device,
    }
    if isinstance(spec, SFTSpec):
        config["max_length"] = spec.max_length
    if isinstance(spec, DPOSpec):
        config.update(beta=spec.beta, max_length=spec.max_length)
    if isinstance(spec, (GRPOSpec, PPOSpec)):
        reward = spec.reward.model_dump()
        if spec.reward.reward_type == "custom":
            reward["custom_path"] = f"{ctx.config_dir}/custom_reward.py"
        config.update(
            rollout_n=spec.rollout_n,
            kl_coef=spec.kl_coef,
            temperature=spec.temperature,
            max_prompt_length=spec.max_prompt_length,
            max_response_length=spec.max_response_length,
            mini_batch_size=spec.mini_batch,
            reward=reward,
        )
    if isinstance(spec, PPOSpec):
        config.update(
            clip_ratio=spec.clip_ratio,
            critic_learning_rate=spec.critic_learning_rate,
            critic_model_path=ctx.critic_model_path or ctx.model_path,
            reward_model_path=ctx.reward_model_path,
        )
    return config


def plan_trl(spec: JobSpec, ctx: RunContext) -> RunPlan:
    """The TRL run for a spec: the platform's runner script with a JSON config."""
    steps_per_epoch, total = steps_plan(spec, ctx.train_rows)
    config = trl_job_config(spec, ctx, total)
    env = _common_env(spec, ctx)
    config_file = f"{ctx.config_dir}/trl_job.json"
    argv = [ctx.python]
    if ctx.device == "cuda" and config["world_size"] > 1:  # one process per GPU (DDP), as the batch arithmetic assumes
        argv += [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc_per_node={config['world_size']}",
        ]
    argv += [f"{ctx.plugin_dir}/trl_runner.py", "--config", config_file, "--resume" if ctx.attempt > 1 else "--fresh"]
    files = {"trl_job.json": json.dumps(config, indent=2, ensure_ascii=False)}
    if isinstance(spec, (GRPOSpec, PPOSpec)):
        files["reward.py"] = _plugin_source("reward.py")
    return RunPlan("trl", argv, env, files, total, steps_per_epoch, TRL_DATA_FORMATS[spec.algorithm])


ENGINES = {"verl": plan_verl, "trl": plan_trl}


def build_plan(engine: str, spec: JobSpec, ctx: RunContext) -> RunPlan:
    """Return the run plan of `engine` for a spec."""
    return ENGINES[engine](spec, ctx)


def data_format_for(engine: str, algorithm: str) -> str:
    """Which dataset conversion an engine reads for an algorithm."""
    if engine == "verl":
        return "verl_sft" if algorithm == "sft" else "verl_rl"
    return TRL_DATA_FORMATS[algorithm]


def _plugin_source(name: str) -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parents[1] / "plugins" / name).read_text()
