"""Job specs: one validated pydantic model per algorithm, every field with its default, range and hint.

The New job form is drawn from these models (`form_fields`), and `python -m platform_core job create --spec
SPEC.yaml` reads the same fields. Hints quote the user's guide recommended ranges.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from platform_core.errors import InvalidInput
from platform_core.security.validation import check_name, check_path_text

ALGORITHMS = ("sft", "grpo", "ppo", "dpo")


def hint(text: str, group: str = "basic", **extra: Any) -> dict[str, Any]:
    """Field metadata for the form: the recommended range shown next to the field, and its section."""
    return {"hint": text, "group": group, **extra}


def without_retired(data: Any, *keys: str) -> Any:
    """Stored specs written before a field was removed still load: the retired keys are dropped."""
    if isinstance(data, dict) and any(key in data for key in keys):
        return {k: v for k, v in data.items() if k not in keys}
    return data


class RewardSpec(BaseModel):
    """How GRPO (and PPO without a reward model) scores a response against the dataset's answer.

    Which column holds the answer is the dataset's field configuration (`answer_field`, set on the Datasets page):
    the conversion puts it in verl's `reward_model.ground_truth` / TRL's `solution`, and the dry run reads it from
    the same converted rows. There is no answer column here, so the two cannot disagree.
    """

    model_config = ConfigDict(extra="forbid")

    reward_type: Literal["math_verify", "format_check", "custom"] = Field(
        "math_verify", json_schema_extra=hint("math_verify / format_check / custom", "reward")
    )
    extraction: Literal["boxed", "last_number", "json"] = Field(
        "boxed", json_schema_extra=hint("boxed = \\boxed{...}", "reward")
    )
    comparison: Literal["exact", "numeric", "fuzzy"] = Field("numeric", json_schema_extra=hint("", "reward"))
    json_key: str = Field("answer", json_schema_extra=hint("json extraction key", "reward"))
    custom_path: str | None = Field(
        None,
        json_schema_extra=hint(
            "compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)", "reward"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_retired(cls, data: Any) -> Any:
        # answer_field: training never read it, the dataset's field configuration decides the answer column
        return without_retired(data, "answer_field")

    @field_validator("json_key")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.replace("_", "").isalnum():
            raise ValueError(f"{value!r} must be a JSON key (letters, digits, _)")
        return value

    @field_validator("custom_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return check_path_text(value, "custom reward file", allow_home=True) if value else None

    @model_validator(mode="after")
    def _custom_needs_file(self):
        if self.reward_type == "custom" and not self.custom_path:
            raise ValueError("reward_type 'custom' needs custom_path (a Python file with compute_score)")
        return self


class JobSpec(BaseModel):
    """Fields shared by every algorithm."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(..., min_length=1, max_length=128, json_schema_extra=hint(""))
    algorithm: Literal["sft", "grpo", "ppo", "dpo"]
    model: str = Field(..., json_schema_extra=hint("path or registered model name"))
    dataset: str = Field(..., json_schema_extra=hint("registered dataset name or id"))
    val_dataset: str | None = Field(None, json_schema_extra=hint("optional"))
    engine: Literal["auto", "verl", "trl"] = Field("auto", json_schema_extra=hint("auto picks by algorithm and GPU"))
    target: str = Field("local", json_schema_extra=hint("local / ssh:<connection> / ray"))
    gpus_per_node: int = Field(1, ge=0, le=64, json_schema_extra=hint("0 = CPU"))
    nodes: int = Field(1, ge=1, le=128, json_schema_extra=hint(""))
    seed: int = Field(42, ge=0, json_schema_extra=hint("", "advanced"))
    total_steps: int | None = Field(None, ge=1, json_schema_extra=hint("empty = epochs x batches", "advanced"))
    micro_batch_size_per_gpu: int = Field(4, ge=1, le=1024, json_schema_extra=hint("per GPU", "advanced"))
    use_dynamic_bsz: bool = Field(False, json_schema_extra=hint("pack by token budget", "advanced"))
    max_token_len_per_gpu: int = Field(8192, ge=128, json_schema_extra=hint("with dynamic batch", "advanced"))
    lora_enabled: bool = Field(False, json_schema_extra=hint("when GPU memory is short", "advanced"))
    lora_rank: int = Field(16, ge=1, le=1024, json_schema_extra=hint("8 / 16 / 32", "advanced"))
    lora_alpha: int | None = Field(None, ge=1, json_schema_extra=hint("empty = 2 x rank", "advanced"))
    save_freq: int = Field(10, ge=1, json_schema_extra=hint("checkpoint every N steps", "advanced"))
    test_freq: int = Field(0, ge=0, json_schema_extra=hint("evaluate every N steps (0 = off)", "advanced"))
    max_checkpoints: int | None = Field(None, ge=1, json_schema_extra=hint("empty = keep all", "advanced"))
    gradient_checkpointing: bool = Field(True, json_schema_extra=hint("saves memory, ~30% slower", "advanced"))
    param_offload: bool = Field(False, json_schema_extra=hint("FSDP parameter offload", "advanced"))
    optimizer_offload: bool = Field(False, json_schema_extra=hint("FSDP optimizer offload", "advanced"))
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = Field(
        "auto", json_schema_extra=hint("auto = flash_attention_2 when installed, else sdpa", "advanced")
    )
    model_dtype: Literal["fp32", "bf16"] = Field(
        "fp32", json_schema_extra=hint("FSDP master weights on a GPU (bf16 halves them); CPU runs use fp32", "advanced")
    )
    use_fused_kernels: bool = Field(
        False, json_schema_extra=hint("verl fused logits + loss (no full logits tensor); GPU runs only", "advanced")
    )
    warmup_ratio: float = Field(0.0, ge=0, le=0.5, json_schema_extra=hint("0 - 0.1", "advanced"))
    gradnorm_every: int = Field(
        1, ge=0, json_schema_extra=hint("per-layer gradient norms every N steps (0 = off)", "advanced")
    )
    extra_overrides: list[str] = Field(
        default_factory=list, json_schema_extra=hint("key=value (verl Hydra)", "advanced")
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "job name")

    @field_validator("model", "dataset")
    @classmethod
    def _ref(cls, value: str) -> str:
        return check_path_text(str(value), "reference", allow_home=True)

    @field_validator("val_dataset")
    @classmethod
    def _val(cls, value: str | None) -> str | None:
        return check_path_text(str(value), "validation dataset", allow_home=True) if value else None

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if value in ("local", "ray") or (value.startswith("ssh:") and len(value) > 4):
            if value.startswith("ssh:"):
                check_name(value[4:], "connection")
            return value
        raise ValueError("target must be 'local', 'ray' or 'ssh:<connection name>'")

    @field_validator("extra_overrides")
    @classmethod
    def _overrides(cls, values: list[str]) -> list[str]:
        for value in values:
            key = value.split("=", 1)[0].lstrip("+~")
            if "=" not in value or not key.replace(".", "").replace("_", "").isalnum():
                raise ValueError(f"override {value!r} must look like key.path=value")
            if any(ch in value for ch in "\n\r\0`$;|&<>") or "../" in value or value.endswith(".."):
                raise ValueError(
                    f"override {value!r} contains characters that are not allowed (shell metacharacters or '..')"
                )
        return values

    @property
    def effective_lora_alpha(self) -> int:
        return self.lora_alpha or 2 * self.lora_rank

    @property
    def world_size(self) -> int:
        return max(1, self.gpus_per_node) * self.nodes


class SFTSpec(JobSpec):
    """Supervised fine-tuning (verl sft_trainer)."""

    algorithm: Literal["sft"] = "sft"
    learning_rate: float = Field(1e-5, gt=0, le=1, json_schema_extra=hint("1e-5 ~ 5e-5"))
    batch_size: int = Field(16, ge=1, json_schema_extra=hint("4 - 32 (global)"))
    epochs: int = Field(3, ge=1, le=1000, json_schema_extra=hint("2 - 5"))
    max_length: int = Field(2048, ge=16, le=131072, json_schema_extra=hint("2048 - 4096"))

    @model_validator(mode="after")
    def _batches(self):
        if self.nodes > 1:
            raise ValueError(
                f"nodes: multi-node SFT ({self.nodes} nodes) is not supported: verl's SFT is launched with "
                "torchrun --standalone on one node on every target (Ray included), and TRL runs on one machine; "
                "set nodes to 1"
            )
        if not self.use_dynamic_bsz and self.batch_size % (self.world_size * self.micro_batch_size_per_gpu):
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by GPUs x micro batch "
                f"({self.world_size} x {self.micro_batch_size_per_gpu}); verl accumulates gradients over the rest"
            )
        return self


class _RLSpec(JobSpec):
    batch_size: int = Field(128, ge=1, json_schema_extra=hint("128 - 512 prompts"))
    epochs: int = Field(1, ge=1, le=1000, json_schema_extra=hint(""))
    ppo_mini_batch_size: int | None = Field(None, ge=1, json_schema_extra=hint("empty = batch_size / 4", "advanced"))
    max_prompt_length: int = Field(512, ge=8, json_schema_extra=hint("tokens"))
    max_response_length: int = Field(512, ge=8, json_schema_extra=hint("tokens"))
    rollout_engine: Literal["vllm", "sglang"] = Field("vllm", json_schema_extra=hint("", "advanced"))
    rollout_gpu_memory_utilization: float = Field(
        0.5, gt=0.05, lt=0.98, json_schema_extra=hint("0.4 - 0.7", "advanced")
    )
    rollout_tensor_parallel_size: int = Field(1, ge=1, le=16, json_schema_extra=hint("1 for one GPU", "advanced"))
    temperature: float = Field(1.0, gt=0, le=2, json_schema_extra=hint("rollout sampling", "advanced"))
    log_prob_max_token_len_per_gpu: int | None = Field(
        None,
        ge=128,
        json_schema_extra=hint(
            "with dynamic batch: rollout/ref log-prob token budget per GPU (empty = 2 x max_token_len_per_gpu)",
            "advanced",
        ),
    )
    reward: RewardSpec = Field(default_factory=RewardSpec)

    @property
    def mini_batch(self) -> int:
        return self.ppo_mini_batch_size or max(1, self.batch_size // 4)

    @model_validator(mode="after")
    def _rl_batches(self):
        n = getattr(self, "rollout_n", 1)
        if self.batch_size < self.mini_batch:
            raise ValueError(f"batch_size ({self.batch_size}) must be >= ppo_mini_batch_size ({self.mini_batch})")
        if self.batch_size % self.mini_batch:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of ppo_mini_batch_size ({self.mini_batch})"
            )
        if self.rollout_tensor_parallel_size > max(1, self.gpus_per_node):
            raise ValueError(
                f"rollout tensor parallel size {self.rollout_tensor_parallel_size} exceeds the "
                f"{self.gpus_per_node} GPU(s) per node"
            )
        if not self.use_dynamic_bsz and self.gpus_per_node > 0:
            if (self.batch_size * n) % self.world_size:
                raise ValueError(
                    f"batch_size x rollout_n ({self.batch_size} x {n}) must be divisible by the number "
                    f"of GPUs ({self.world_size})"
                )
            per_gpu = self.mini_batch * n // self.world_size
            if per_gpu == 0 or per_gpu % self.micro_batch_size_per_gpu:
                raise ValueError(
                    f"each GPU gets ppo_mini_batch_size x rollout_n / GPUs = {self.mini_batch} x {n} / "
                    f"{self.world_size} = {per_gpu} sequences per mini batch, which must be a positive multiple of "
                    f"micro_batch_size_per_gpu ({self.micro_batch_size_per_gpu})"
                )
        return self


class GRPOSpec(_RLSpec):
    """Group relative policy optimisation with a rule reward (verl main_ppo, adv_estimator=grpo)."""

    algorithm: Literal["grpo"] = "grpo"
    learning_rate: float = Field(1e-6, gt=0, le=1, json_schema_extra=hint("1e-6 ~ 1e-5"))
    rollout_n: int = Field(8, ge=1, le=256, json_schema_extra=hint("4 - 16"))
    kl_coef: float = Field(0.01, ge=0, le=10, json_schema_extra=hint("0.01 - 0.1"))

    @field_validator("rollout_n")
    @classmethod
    def _group(cls, value: int) -> int:
        if value < 2:
            raise ValueError("GRPO needs rollout_n >= 2: advantages are computed within each group of samples")
        return value


class PPOSpec(_RLSpec):
    """PPO with a critic (verl main_ppo, adv_estimator=gae) and a reward model or a rule reward."""

    algorithm: Literal["ppo"] = "ppo"
    learning_rate: float = Field(1e-6, gt=0, le=1, json_schema_extra=hint("1e-6 ~ 5e-6 (actor)"))
    rollout_n: int = Field(4, ge=1, le=64, json_schema_extra=hint("4 - 8"))
    clip_ratio: float = Field(0.2, gt=0, lt=1, json_schema_extra=hint("0.2"))
    kl_coef: float = Field(0.001, ge=0, le=10, json_schema_extra=hint("0.001 - 0.05"))
    critic_learning_rate: float = Field(1e-5, gt=0, le=1, json_schema_extra=hint("1e-5", "critic"))
    critic_model: str | None = Field(None, json_schema_extra=hint("empty = the base model", "critic"))
    critic_max_token_len_per_gpu: int | None = Field(
        None,
        ge=128,
        json_schema_extra=hint(
            "PPO with dynamic batch: critic train/forward token budget per GPU (empty = 2 x max_token_len_per_gpu)",
            "advanced",
        ),
    )
    reward_model_path: str | None = Field(
        None, json_schema_extra=hint("a trained reward model (needed when PPO runs on TRL)", "reward_model")
    )
    reward_model_param_offload: bool = Field(
        False,
        json_schema_extra=hint(
            "verl: free the reward model's rollout cache between steps (free_cache_engine)", "reward_model"
        ),
    )
    reward_model_micro_batch_size: int = Field(
        4, ge=1, json_schema_extra=hint("verl: sequences in flight = 64 x this (rollout.max_num_seqs)", "reward_model")
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_retired(cls, data: Any) -> Any:
        return without_retired(data, "reward_model_gradient_checkpointing")  # it reached no engine

    @field_validator("critic_model", "reward_model_path")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return check_path_text(value, "model path", allow_home=True) if value else None


class DPOSpec(JobSpec):
    """Offline direct preference optimisation (TRL DPOTrainer; verl has no offline DPO)."""

    algorithm: Literal["dpo"] = "dpo"
    learning_rate: float = Field(1e-6, gt=0, le=1, json_schema_extra=hint("1e-6 ~ 5e-6"))
    beta: float = Field(0.1, gt=0, le=10, json_schema_extra=hint("0.1 - 0.5"))
    batch_size: int = Field(32, ge=1, json_schema_extra=hint("32 - 128"))
    epochs: int = Field(1, ge=1, le=1000, json_schema_extra=hint("1 - 3"))
    max_length: int = Field(1024, ge=16, json_schema_extra=hint("prompt + response tokens"))

    @model_validator(mode="after")
    def _batches(self):
        if self.nodes > 1:
            raise ValueError(
                f"nodes: multi-node DPO ({self.nodes} nodes) is not supported: DPO runs on TRL on one machine; "
                "set nodes to 1"
            )
        if self.batch_size % (self.world_size * self.micro_batch_size_per_gpu):
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by GPUs x micro batch "
                f"({self.world_size} x {self.micro_batch_size_per_gpu})"
            )
        return self


AnySpec = Annotated[Union[SFTSpec, GRPOSpec, PPOSpec, DPOSpec], Field(discriminator="algorithm")]
SPEC_CLASSES: dict[str, type[JobSpec]] = {"sft": SFTSpec, "grpo": GRPOSpec, "ppo": PPOSpec, "dpo": DPOSpec}
_ADAPTER = TypeAdapter(AnySpec)


def describe_validation_error(exc: ValidationError, source: str = "job spec") -> str:
    """Return one readable line per problem: `field: message (got value)`."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"] if not (isinstance(p, str) and p in ALGORITHMS))
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
        lines.append(f"{field}: {message}{shown}" if field else message)
    return f"{source}: " + "; ".join(lines)


def parse_spec(data: dict[str, Any], source: str = "job spec") -> JobSpec:
    """Validate a dict into the spec model of its algorithm; raise InvalidInput naming each bad field."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping of fields, got {type(data).__name__}")
    algorithm = str(data.get("algorithm", "")).lower()
    if algorithm not in ALGORITHMS:
        raise InvalidInput(f"{source}: algorithm: {data.get('algorithm')!r} is not one of {', '.join(ALGORITHMS)}")
    try:
        return _ADAPTER.validate_python({**data, "algorithm": algorithm})
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc, source)) from exc


def form_fields(algorithm: str) -> list[dict[str, Any]]:
    """Describe the form of an algorithm: [{name, type, default, hint, group, choices, ge, le}] in model order."""
    cls = SPEC_CLASSES[algorithm]
    fields = []
    for name, info in cls.model_fields.items():
        if name in ("algorithm", "reward"):
            continue
        extra = info.json_schema_extra or {}
        annotation = info.annotation
        choices = (
            list(getattr(annotation, "__args__", ())) if getattr(annotation, "__origin__", None) is Literal else None
        )
        bounds = {type(m).__name__: getattr(m, type(m).__name__.lower(), None) for m in info.metadata}
        fields.append(
            {
                "name": name,
                "annotation": annotation,
                "default": None if info.is_required() else info.get_default(call_default_factory=True),
                "required": info.is_required(),
                "hint": extra.get("hint", ""),
                "group": extra.get("group", "basic"),
                "choices": choices,
                "ge": bounds.get("Ge"),
                "le": bounds.get("Le"),
                "gt": bounds.get("Gt"),
                "lt": bounds.get("Lt"),
            }
        )
    return fields
