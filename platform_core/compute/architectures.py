"""Decoder architectures (Llama / Qwen2 / Mistral family): presets with their exact config.json numbers, or any local
model directory's config.json, and the parameter counts the memory model needs.

>>> arch = get_architecture("Qwen2.5-7B")
>>> arch.total_params
7615616512
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_core.errors import InvalidInput, NotFound

# The config.json fields that define each preset (values copied from the Hugging Face model repos); tests build each
# one on the meta device with transformers and compare the parameter count with `Architecture.total_params`.
PRESETS: dict[str, dict[str, Any]] = {
    "Qwen2.5-0.5B": {
        "hf_id": "Qwen/Qwen2.5-0.5B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "max_position_embeddings": 32768,
    },
    "Qwen2.5-1.5B": {
        "hf_id": "Qwen/Qwen2.5-1.5B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 1536,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "intermediate_size": 8960,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "max_position_embeddings": 32768,
    },
    "Qwen2.5-3B": {
        "hf_id": "Qwen/Qwen2.5-3B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 2048,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "intermediate_size": 11008,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "max_position_embeddings": 32768,
    },
    "Qwen2.5-7B": {
        "hf_id": "Qwen/Qwen2.5-7B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
    "Qwen2.5-14B": {
        "hf_id": "Qwen/Qwen2.5-14B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 5120,
        "num_hidden_layers": 48,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "intermediate_size": 13824,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
    "Qwen2.5-32B": {
        "hf_id": "Qwen/Qwen2.5-32B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 5120,
        "num_hidden_layers": 64,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "intermediate_size": 27648,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
    "Qwen2.5-72B": {
        "hf_id": "Qwen/Qwen2.5-72B-Instruct",
        "model_type": "qwen2",
        "hidden_size": 8192,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "intermediate_size": 29568,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
    "Llama-3-8B": {
        "hf_id": "meta-llama/Meta-Llama-3-8B-Instruct",
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
        "max_position_embeddings": 8192,
    },
    "Llama-3-70B": {
        "hf_id": "meta-llama/Meta-Llama-3-70B-Instruct",
        "model_type": "llama",
        "hidden_size": 8192,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "intermediate_size": 28672,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
        "max_position_embeddings": 8192,
    },
    "Mistral-7B": {
        "hf_id": "mistralai/Mistral-7B-v0.1",
        "model_type": "mistral",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
    "Mistral-7B-v0.3": {
        "hf_id": "mistralai/Mistral-7B-Instruct-v0.3",
        "model_type": "mistral",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32768,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
}

# Families whose attention has biases on q/k/v only (Qwen2) or RMSNorm on q and k (Qwen3); others follow the config's
# `attention_bias` / `mlp_bias` flags (Llama, Mistral).
QKV_BIAS_TYPES = {"qwen2"}
QK_NORM_TYPES = {"qwen3"}
MOE_FIELDS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size")
LORA_TENSORS_PER_LAYER = 14  # A and B of q, k, v, o, gate, up, down


@dataclass(frozen=True)
class Architecture:
    """The numbers of a Llama-style decoder that decide its parameter count, activations and FLOPs."""

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    max_position_embeddings: int = 32768
    source: str = "preset"

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer (attention, MLP, two RMSNorms)."""
        h, q, kv, i = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        attention = h * q + 2 * h * kv + q * h
        if self.qkv_bias:
            attention += q + 2 * kv
        if self.o_bias:
            attention += h
        mlp = 3 * h * i + (2 * i + h if self.mlp_bias else 0)
        norms = 2 * h + (2 * self.head_dim if self.qk_norm else 0)
        return attention + mlp + norms

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def head_params(self) -> int:
        """The lm_head's own parameters (0 when it shares the embedding matrix)."""
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        """All parameters, counted once (what `sum(p.numel() for p in model.parameters())` gives)."""
        return self.num_layers * self.layer_params + self.embedding_params + self.head_params + self.hidden_size

    @property
    def non_embedding_params(self) -> int:
        return self.total_params - self.embedding_params - self.head_params

    @property
    def matmul_params(self) -> int:
        """Parameters that take part in a matmul per token: every layer plus the lm_head (the lookup is free)."""
        return self.non_embedding_params + self.vocab_size * self.hidden_size

    @property
    def largest_layer_params(self) -> int:
        """DeepSpeed's `largest_layer_params`: the largest single module, the embedding (or lm_head) matrix."""
        return max(self.embedding_params, self.hidden_size * self.intermediate_size)

    @property
    def param_tensors(self) -> int:
        """How many parameter tensors the model has (each gets its own AdamW `step` counter)."""
        per_layer = 4 + 3 + 2 + (3 if self.qkv_bias else 0) + (1 if self.o_bias else 0) + (3 if self.mlp_bias else 0)
        per_layer += 2 if self.qk_norm else 0
        return self.num_layers * per_layer + 1 + 1 + (0 if self.tie_embeddings else 1)

    def lora_params(self, rank: int) -> int:
        """Trainable parameters of LoRA rank `rank` on all linear layers of the decoder (PEFT `all-linear`)."""
        h, q, kv, i = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        per_rank = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h)
        return self.num_layers * rank * per_rank

    def lora_tensors(self, rank: int) -> int:
        return self.num_layers * LORA_TENSORS_PER_LAYER if rank > 0 else 0

    @property
    def kv_bytes_per_token(self) -> int:
        """bf16 KV-cache bytes per token (keys and values of every layer)."""
        return 2 * self.num_layers * self.kv_dim * 2

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (config numbers and derived counts)."""
        return {
            "name": self.name,
            "source": self.source,
            "model_type": self.model_type,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "tie_embeddings": self.tie_embeddings,
            "total_params": self.total_params,
            "non_embedding_params": self.non_embedding_params,
        }


def _field(config: dict[str, Any], name: str, where: str) -> int:
    value = config.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(f"{where}: field {name!r} must be a positive integer (found {value!r})")
    return value


def architecture_from_config(config: dict[str, Any], name: str, source: str = "config") -> Architecture:
    """Return the Architecture described by a Hugging Face config.json dict (Llama / Qwen2 / Qwen3 / Mistral style)."""
    where = source if source != "config" else name
    if isinstance(config.get("text_config"), dict):
        config = {**config["text_config"], "model_type": config["text_config"].get("model_type", "")}
    for moe in MOE_FIELDS:
        if config.get(moe):
            raise InvalidInput(f"{where}: mixture-of-experts models ({moe}={config[moe]}) are not covered by the model")
    hidden = _field(config, "hidden_size", where)
    heads = _field(config, "num_attention_heads", where)
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    model_type = str(config.get("model_type") or "")
    return Architecture(
        name=name,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=_field(config, "num_hidden_layers", where),
        num_heads=heads,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate_size=_field(config, "intermediate_size", where),
        vocab_size=_field(config, "vocab_size", where),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=model_type in QKV_BIAS_TYPES or bool(config.get("attention_bias", False)),
        o_bias=model_type not in QKV_BIAS_TYPES and bool(config.get("attention_bias", False)),
        mlp_bias=bool(config.get("mlp_bias", False)),
        qk_norm=model_type in QK_NORM_TYPES,
        max_position_embeddings=int(config.get("max_position_embeddings") or 32768),
        source=source,
    )


def architecture_from_dir(path: Path | str) -> Architecture:
    """Read a local model directory's config.json."""
    directory = Path(path).expanduser()
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise NotFound(f"{directory}: no config.json (not a Hugging Face model directory)")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{config_file}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    return architecture_from_config(config, directory.name, source=str(directory))


def _normalise(name: str) -> str:
    name = name.strip().split("/")[-1].lower()
    name = re.sub(r"[-_ ](instruct|chat|base|hf)$", "", name)
    name = re.sub(r"^meta-", "", name)
    name = name.replace("llama-3.1", "llama-3").replace("llama3.1", "llama-3").replace("llama3", "llama-3")
    return re.sub(r"[\s_]", "-", name)


ALIASES = {
    "mistral-7b-v0.1": "Mistral-7B",
    "mistral-7b-v0.2": "Mistral-7B",
    "mistral-7b-instruct-v0.1": "Mistral-7B",
    "mistral-7b-instruct-v0.2": "Mistral-7B",
    "mistral-7b-instruct-v0.3": "Mistral-7B-v0.3",
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> Architecture:
    """Return a preset by its name or an alias ("Qwen/Qwen2.5-7B-Instruct", "llama3-8b", "mistral-7b-v0.1")."""
    key = _normalise(name)
    by_key = {_normalise(n): n for n in PRESETS}
    found = by_key.get(key) or ALIASES.get(key) or ALIASES.get(name.strip().split("/")[-1].lower())
    if found is None:
        raise NotFound(f"unknown model {name!r}: give a local model directory or one of {', '.join(PRESETS)}")
    config = {k: v for k, v in PRESETS[found].items() if k != "hf_id"}
    return architecture_from_config(config, found, source="preset")


def get_architecture(name_or_dir: str | Path) -> Architecture:
    """A preset by name, or the config.json of a local directory (an existing directory wins)."""
    text = str(name_or_dir).strip()
    if not text:
        raise InvalidInput("model: give a preset name or a local model directory")
    path = Path(text).expanduser()
    if path.is_dir():
        return architecture_from_dir(path)
    if "/" in text and (text.startswith((".", "/", "~")) or path.suffix == ".json"):
        raise NotFound(f"{text}: no such model directory")
    return preset(text)
