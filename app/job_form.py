"""The New job form, drawn from the job spec models (platform_core/jobs/specs.py): one widget per field."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

import streamlit as st

from app.i18n import STRINGS, t
from platform_core.jobs.specs import SPEC_CLASSES, RewardSpec, form_fields

BASIC_FIELDS = ("name", "model", "dataset", "val_dataset", "target", "engine", "gpus_per_node", "nodes")
REF_FIELDS = {"model", "dataset", "val_dataset", "target", "critic_model", "reward_model_path"}


def _label(name: str) -> str:
    return t(f"jobs.field.{name}")


def _help(name: str, hint: str) -> str | None:
    key = f"jobs.hint.{name}"
    text = t(key) if key in STRINGS else hint
    return t("jobs.recommended", hint=text) if text else None


def _base_type(annotation):
    args = [a for a in get_args(annotation) if a is not type(None)]
    return (
        args[0] if get_origin(annotation) is not None and args and get_origin(annotation) is not Literal else annotation
    )


def field_widget(field: dict[str, Any], key: str, value: Any) -> Any:
    """One widget for a spec field (number, toggle, choice, text); returns the value (None for an empty optional)."""
    name, annotation = field["name"], field["annotation"]
    label, help_text = _label(name), _help(name, field["hint"])
    if field["choices"]:
        choices = field["choices"]
        return st.selectbox(
            label, choices, index=choices.index(value) if value in choices else 0, key=key, help=help_text
        )
    base = _base_type(annotation)
    optional = type(None) in get_args(annotation)
    if base is bool:
        return st.toggle(label, value=bool(value), key=key, help=help_text)
    if base is int:
        if optional:
            text = st.text_input(label, value="" if value is None else str(value), key=key, help=help_text)
            return int(text) if text.strip().lstrip("-").isdigit() else None
        low = field["ge"] if field["ge"] is not None else (field["gt"] + 1 if field["gt"] is not None else None)
        return int(
            st.number_input(
                label, value=int(value), min_value=low, max_value=field["le"], step=1, key=key, help=help_text
            )
        )
    if base is float:
        small = value is not None and 0 < abs(value) < 1e-2
        return float(
            st.number_input(
                label,
                value=float(value),
                min_value=None,
                format="%.2e" if small else "%.4g",
                step=float(value) / 10 if value else 0.1,
                key=key,
                help=help_text,
            )
        )
    if name == "extra_overrides":
        text = st.text_area(label, value="\n".join(value or []), key=key, help=help_text, height=80)
        return [line.strip() for line in text.splitlines() if line.strip()]
    text = st.text_input(label, value="" if value is None else str(value), key=key, help=help_text)
    return text.strip() or (None if optional else "")


def algorithm_fields(algorithm: str, groups: tuple[str, ...]) -> list[dict[str, Any]]:
    """The spec fields of an algorithm in the given form sections (basic fields excluded)."""
    return [
        f
        for f in form_fields(algorithm)
        if f["group"] in groups and f["name"] not in BASIC_FIELDS and f["name"] not in REF_FIELDS
    ]


def defaults(algorithm: str) -> dict[str, Any]:
    """Default values of every field of an algorithm's spec."""
    return {f["name"]: f["default"] for f in form_fields(algorithm)}


def reward_form(key_prefix: str, current: dict[str, Any]) -> dict[str, Any]:
    """The reward function section (GRPO, and PPO without a reward model)."""
    values = {}
    columns = st.columns(3)
    for i, (name, info) in enumerate(RewardSpec.model_fields.items()):
        extra = info.json_schema_extra or {}
        choices = list(get_args(info.annotation)) if get_origin(info.annotation) is Literal else None
        field = {
            "name": name,
            "annotation": info.annotation,
            "choices": choices,
            "hint": extra.get("hint", ""),
            "ge": None,
            "le": None,
            "gt": None,
        }
        with columns[i % 3]:
            values[name] = field_widget(field, f"{key_prefix}_reward_{name}", current.get(name, info.get_default()))
    return values


def spec_class(algorithm: str):
    return SPEC_CLASSES[algorithm]
