"""One mapping from engine / algorithm metric names to the canonical names the charts, the CLI and the watchdog use.

verl SFT writes `train/loss`, verl PPO/GRPO `actor/pg_loss` and `critic/score/mean`, TRL `loss`, `reward`, `kl`...
Each canonical metric lists its raw names in order of preference; the first one a run has is used. Patterns turn
families (one reward per reward function) into `reward/<function>`. A raw name no canonical metric claims is still
listed (and charted) under its own name.

    resolve(["train/loss", "train/lr", "train/mfu"])   # {"loss": "train/loss", "lr": "train/lr"}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from platform_core.monitor.metrics import MetricsStore


@dataclass(frozen=True)
class CanonicalMetric:
    """A chart name, the raw names that feed it (preferred first), and whether a log scale suits it by default."""

    name: str
    aliases: tuple[str, ...]
    log_scale: bool = False


CANONICAL_METRICS: tuple[CanonicalMetric, ...] = (
    # total loss: SFT, TRL (SFT / DPO / GRPO / reward model), verl actor total
    CanonicalMetric("loss", ("train/loss", "loss", "actor/loss")),
    CanonicalMetric("policy_loss", ("actor/pg_loss", "loss/policy_avg")),
    CanonicalMetric("value_loss", ("critic/vf_loss", "loss/value_avg")),
    CanonicalMetric("val_loss", ("val/loss", "eval_loss", "eval/loss")),
    CanonicalMetric("reward_mean", ("critic/score/mean", "reward", "objective/scores", "platform/reward_mean")),
    CanonicalMetric("reward_std", ("critic/score/std", "reward_std", "platform/reward_std")),
    CanonicalMetric("reward_max", ("critic/score/max",)),
    CanonicalMetric("reward_min", ("critic/score/min",)),
    # KL to the reference policy (loss term, in-reward penalty, TRL GRPO / PPO)
    CanonicalMetric("kl", ("actor/kl_loss", "actor/reward_kl_penalty", "kl", "objective/kl")),
    # KL between the policy before and after the update (PPO's approximate KL)
    CanonicalMetric("ppo_kl", ("actor/ppo_kl", "policy/approxkl_avg")),
    CanonicalMetric("entropy", ("actor/entropy", "entropy", "policy/entropy_avg", "objective/entropy")),
    CanonicalMetric("lr", ("train/lr", "actor/lr", "learning_rate", "lr"), log_scale=True),
    CanonicalMetric("grad_norm", ("train/grad_norm", "actor/grad_norm", "grad_norm"), log_scale=True),
    CanonicalMetric("value_grad_norm", ("critic/grad_norm",), log_scale=True),
    CanonicalMetric("response_length", ("response_length/mean", "completions/mean_length")),
    # verl RL logs tokens/s per GPU; for the others `throughput.py` derives tokens/s of the whole run
    CanonicalMetric("throughput", ("perf/throughput", "platform/throughput")),
    CanonicalMetric("step_time", ("timing_s/step", "perf/time_per_step", "step_time")),
    CanonicalMetric("epoch", ("training/epoch", "epoch")),
    # DPO (TRL) and reward-model training
    CanonicalMetric("rewards_chosen", ("rewards/chosen",)),
    CanonicalMetric("rewards_rejected", ("rewards/rejected",)),
    CanonicalMetric("reward_margin", ("rewards/margins", "margin")),
    CanonicalMetric("reward_accuracy", ("rewards/accuracies", "accuracy")),
)

CANONICAL_BY_NAME = {metric.name: metric for metric in CANONICAL_METRICS}

# (pattern over raw names, canonical template): families with one member per reward function or data source
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^rewards/(?P<key>[^/]+)/mean$"), "reward/{key}"),  # TRL GRPO, one per reward function
    (re.compile(r"^reward_extra/(?P<key>[^/]+?)(?:/mean)?$"), "reward/{key}"),
    (re.compile(r"^platform/reward/(?P<key>[^/]+)$"), "reward/{key}"),  # derived from rollout dumps
    (re.compile(r"^val-core/(?P<key>.+)/(?:acc|reward)/mean@\d+$"), "val_score/{key}"),  # verl validation
)


@dataclass(frozen=True)
class ChartGroup:
    """One chart: its key (the i18n label is `monitor.chart.<key>`) and the canonical names (or prefixes) drawn on it."""

    key: str
    members: tuple[str, ...]
    log_scale: bool = False


CHART_GROUPS: tuple[ChartGroup, ...] = (
    ChartGroup("loss", ("loss", "policy_loss", "value_loss", "val_loss")),
    ChartGroup("reward", ("reward_mean", "reward_std", "reward/")),
    ChartGroup("dpo_rewards", ("rewards_chosen", "rewards_rejected", "reward_margin")),
    ChartGroup("reward_accuracy", ("reward_accuracy",)),
    ChartGroup("kl", ("kl", "ppo_kl")),
    ChartGroup("entropy", ("entropy",)),
    ChartGroup("lr", ("lr",), log_scale=True),
    ChartGroup("grad_norm", ("grad_norm", "value_grad_norm"), log_scale=True),
    ChartGroup("response_length", ("response_length",)),
    ChartGroup("throughput", ("throughput",)),
    ChartGroup("validation", ("val_score/",)),
)

LOSS_NAMES = ("loss", "policy_loss", "value_loss", "val_loss")


def resolve(raw_names) -> dict[str, str]:
    """Return {canonical name: raw name} for the canonical metrics these raw names provide."""
    present = set(raw_names)
    mapping: dict[str, str] = {}
    for metric in CANONICAL_METRICS:
        for alias in metric.aliases:
            if alias in present:
                mapping[metric.name] = alias
                break
    for raw in sorted(present):
        for pattern, template in PATTERNS:
            match = pattern.match(raw)
            if match:
                mapping.setdefault(template.format(**match.groupdict()), raw)
                break
    return mapping


def unmapped(raw_names) -> list[str]:
    """Return the raw names that no canonical metric uses (listed and chartable under their own names)."""
    used = set(resolve(raw_names).values())
    return sorted(name for name in raw_names if name not in used)


def canonical_series(store: MetricsStore) -> dict[str, tuple]:
    """Return {canonical name: (steps, values)} for every canonical metric the run has."""
    return {name: store.series(raw) for name, raw in resolve(store.names()).items()}


def group_members(group: ChartGroup, available) -> list[str]:
    """Return the canonical names of a chart group that are available, in the group's order."""
    available = list(available)
    members: list[str] = []
    for member in group.members:
        if member.endswith("/"):
            members.extend(sorted(name for name in available if name.startswith(member)))
        elif member in available:
            members.append(member)
    return members


def metrics_payload(store: MetricsStore, include_other: bool = True) -> dict:
    """Return `{"series": {canonical: [[step, value], ...]}, "raw_names": {canonical: raw}, "other": {...}}`.

    This is the `job metrics ID --json` contract; NaN/Inf are written as null.
    """
    mapping = resolve(store.names())
    payload: dict = {
        "series": {name: _pairs(*store.series(raw)) for name, raw in mapping.items()},
        "raw_names": mapping,
    }
    if include_other:
        payload["other"] = {name: _pairs(*store.series(name)) for name in unmapped(store.names())}
    return payload


def _pairs(steps, values) -> list[list]:
    return [
        [int(s), float(v) if math.isfinite(v) else None] for s, v in zip(steps.tolist(), values.tolist(), strict=True)
    ]
