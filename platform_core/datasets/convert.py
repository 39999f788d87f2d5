"""Conversion to the Parquet files the engines read (../shared/reference/verl.md section 2).

    verl_rl   data_source, prompt [{role, content}], ability, reward_model {style, ground_truth},
              extra_info {index, split, question, answer}                 (verl RLHFDataset: GRPO / PPO)
    verl_sft  messages [{role, content}, ...] and index                    (verl MultiTurnSFTDataset)
    trl_dpo   prompt, chosen, rejected (strings)                           (TRL DPOTrainer, standard format)
    trl_rl    prompt [{role: user, content}], solution, data_source        (TRL GRPOTrainer; extra columns reach
                                                                            the reward functions as kwargs)
    raw       the dataset's own columns                                    (evaluation sets, other tools)

Only valid rows are converted (rows flagged by the `empty` or `format_errors` check are left out); export a cleaned
version first to also drop duplicates or outliers. `extra_info.index` / `index` keep the original 0-based row.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from platform_core.datasets.loader import arrow_kind
from platform_core.datasets.schemas import EXTRA_KEYS, FIELD_KEYS, Prepared, get_field, roles
from platform_core.errors import InvalidInput

TARGETS: dict[str, tuple[str, ...]] = {
    "verl_rl": ("grpo", "ppo", "eval"),
    "verl_sft": ("sft", "dpo", "eval"),
    "trl_dpo": ("dpo",),
    "trl_rl": ("grpo", "ppo", "eval"),
    "raw": ("sft", "grpo", "ppo", "dpo", "eval"),
}
DEFAULT_TARGET = {"sft": "verl_sft", "grpo": "verl_rl", "ppo": "verl_rl", "dpo": "trl_dpo", "eval": "raw"}
DEFAULT_DATA_SOURCE = "default"
DEFAULT_ABILITY = "general"
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])


CONVERSION_KEYS = (*FIELD_KEYS, "format", *EXTRA_KEYS)  # label_fields and other areas' keys do not change the file


def conversion_config(dataset_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The part of a field configuration that decides a converted file's content (its version key)."""
    kept = {k: config[k] for k in CONVERSION_KEYS if config.get(k) not in (None, "", [])}
    return {"type": dataset_type, **kept}


def check_target(dataset_type: str, target: str) -> str:
    """Return the target if a dataset of this type can be converted to it, else raise InvalidInput."""
    if target not in TARGETS:
        raise InvalidInput(f"conversion target: {target!r} is not one of {', '.join(TARGETS)}")
    if dataset_type not in TARGETS[target]:
        allowed = ", ".join(t for t, types in TARGETS.items() if dataset_type in types)
        raise InvalidInput(
            f"conversion target: {dataset_type.upper()} datasets cannot become {target} (possible: {allowed})"
        )
    return target


def targets_for(dataset_type: str) -> list[str]:
    """The conversion targets a dataset type supports, its default first."""
    default = DEFAULT_TARGET[dataset_type]
    return [default] + [t for t, types in TARGETS.items() if dataset_type in types and t != default]


def _field(prepared: Prepared, role: str) -> tuple[str, pa.ChunkedArray | None]:
    for r in roles(prepared.dataset_type, prepared.config):
        if r.role == role:
            return r.field, get_field(prepared.loaded.table, r.field)
    return role, None


def _as_text(array: pa.ChunkedArray | pa.Array | None, n: int, default: str) -> pa.Array:
    """Strings of a column (numbers and booleans as text, like the JSON they came from), `default` where null."""
    if array is None:
        return pa.array([default] * n, pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = arrow_kind(array.type)
    if kind == "boolean":
        array = pc.if_else(array, "true", "false")
    elif kind == "number" and pa.types.is_floating(array.type):
        array = pa.array(
            [None if v is None else json.dumps(int(v) if float(v).is_integer() else v) for v in array.to_pylist()],
            pa.string(),
        )
    elif kind != "string":
        array = pc.cast(array, pa.string())
    return array.fill_null(default)


def _single_messages(contents: pa.Array, role: str) -> pa.ListArray:
    n = len(contents)
    values = pa.StructArray.from_arrays([pa.array([role] * n, pa.string()), contents], fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), values)


def _chat_column(array: pa.Array) -> pa.ListArray:
    """A chat list column reduced to {role, content} messages (offsets rebuilt from 0)."""
    lengths = np.asarray(pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    flat = array.flatten()
    values = pa.StructArray.from_arrays(
        [flat.field("role").cast(pa.string()), flat.field("content").cast(pa.string())], fields=list(MESSAGE_TYPE)
    )
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def _pairs(prompts: pa.Array, answers: pa.Array) -> pa.ListArray:
    """[{user: prompt}, {assistant: answer}] per row."""
    n = len(prompts)
    order = np.empty(2 * n, dtype=np.int64)
    order[0::2] = np.arange(n)
    order[1::2] = np.arange(n) + n
    contents = pa.concat_arrays([prompts.cast(pa.string()), answers.cast(pa.string())]).take(pa.array(order))
    roles_arr = pa.array(["user", "assistant"] * n, pa.string())
    values = pa.StructArray.from_arrays([roles_arr, contents], fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), values)


def _prompt_messages(array: pa.Array) -> pa.ListArray:
    return (
        _chat_column(array) if arrow_kind(array.type) == "array" else _single_messages(array.cast(pa.string()), "user")
    )


def _question_text(array: pa.Array) -> pa.Array:
    """The prompt as plain text: the string itself, or the chat's last user message."""
    if arrow_kind(array.type) != "array":
        return array.cast(pa.string())
    out = []
    for messages in array.to_pylist():
        users = [m.get("content") or "" for m in messages or [] if m.get("role") == "user"]
        out.append(users[-1] if users else "")
    return pa.array(out, pa.string())


def convert_table(prepared: Prepared, target: str, metadata: dict[str, Any] | None = None) -> pa.Table:
    """Return the valid rows of a prepared dataset in the target's columns."""
    check_target(prepared.dataset_type, target)
    valid = prepared.validation.valid_mask()
    keep = pa.array(np.flatnonzero(valid))
    if len(keep) == 0:
        raise InvalidInput(f"{prepared.loaded.name}: no valid row to convert")
    index = pa.array(np.flatnonzero(valid).astype(np.int64))
    n = len(keep)

    def column(role: str) -> pa.Array | None:
        _, array = _field(prepared, role)
        if array is None:
            return None
        return array.take(keep).combine_chunks()

    dtype = prepared.dataset_type
    if target == "raw":
        table = prepared.loaded.table.take(keep)
    elif target == "verl_sft":
        if dtype == "sft" and prepared.config.get("format") == "messages":
            messages = _chat_column(column("messages"))
        else:
            answer_role = {"sft": "response", "dpo": "chosen", "eval": "reference"}[dtype]
            messages = _pairs(column("prompt"), _as_text(column(answer_role), n, ""))
        table = pa.table({"messages": messages, "index": index})
    elif target == "trl_dpo":
        table = pa.table({"prompt": column("prompt"), "chosen": column("chosen"), "rejected": column("rejected")})
    else:
        prompt = column("prompt")
        truth_role = {"grpo": "answer", "eval": "reference"}.get(dtype)
        truth = _as_text(column(truth_role) if truth_role else None, n, "")
        source_role = "category" if dtype == "eval" else "data_source"
        data_source = _as_text(
            column(source_role), n, prepared.config.get("data_source_default") or DEFAULT_DATA_SOURCE
        )
        if target == "trl_rl":
            table = pa.table({"prompt": _prompt_messages(prompt), "solution": truth, "data_source": data_source})
        else:
            ability_array = get_field(prepared.loaded.table, "ability")
            ability = _as_text(
                ability_array.take(keep) if ability_array is not None else None,
                n,
                prepared.config.get("ability") or DEFAULT_ABILITY,
            )
            style = "model" if dtype == "ppo" else "rule"
            reward_model = pa.StructArray.from_arrays(
                [pa.array([style] * n, pa.string()), truth], names=["style", "ground_truth"]
            )
            extra_info = pa.StructArray.from_arrays(
                [index, pa.array(["train"] * n, pa.string()), _question_text(prompt), truth],
                names=["index", "split", "question", "answer"],
            )
            table = pa.table(
                {
                    "data_source": data_source,
                    "prompt": _prompt_messages(prompt),
                    "ability": ability,
                    "reward_model": reward_model,
                    "extra_info": extra_info,
                }
            )
    meta = {
        "platform.target": target,
        "platform.field_config": json.dumps(conversion_config(prepared.dataset_type, prepared.config), sort_keys=True),
        **{f"platform.{k}": str(v) for k, v in (metadata or {}).items()},
    }
    return table.replace_schema_metadata(
        {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}}
    )
