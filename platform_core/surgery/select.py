"""Checkpoint selection: lowest validation loss, highest mean reward, the last one, or a given step.

A pure function over `[{"step": int, "metrics": {name: value}}, ...]` (as the jobs area records them, or as
`convert.attach_metrics` builds them from a run's metrics JSONL):

    >>> chosen, reason, series = select_checkpoint(checkpoints, "lowest_val_loss")
    >>> reason
    'step 300 has the lowest val/loss, 0.8123 (of 4 checkpoints with it; next: step 200 with 0.8310)'
    >>> series
    {'metric': 'val/loss', 'points': [{'step': 100, 'value': 1.02}, ...], 'chosen_step': 300}

`series` is what the page charts: the metric over the checkpoints with the pick marked.
"""

from __future__ import annotations

import math
from typing import Any

from platform_core.errors import InvalidInput

STRATEGIES = ("lowest_val_loss", "highest_reward", "last", "custom")
# Names runs log, in the order they are tried: verl SFT, TRL/HF Trainer, other loggers.
VAL_LOSS_METRICS = ("val/loss", "eval/loss", "eval_loss", "val_loss", "val/lm_loss")
# verl PPO/GRPO: critic/rewards/mean (after the KL penalty) then critic/score/mean (raw); TRL names after.
REWARD_METRICS = (
    "critic/rewards/mean",
    "critic/score/mean",
    "reward/mean",
    "reward",
    "rewards/mean",
    "train/reward",
    "rewards/chosen",
)
FALLBACK_METRICS = ("train/loss", "loss", "actor/pg_loss")


def _value(checkpoint: dict[str, Any], metric: str) -> float | None:
    value = (checkpoint.get("metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _first_logged(checkpoints: list[dict[str, Any]], names: tuple[str, ...]) -> str | None:
    for name in names:
        if any(_value(c, name) is not None for c in checkpoints):
            return name
    return None


def strategy_metric(checkpoints: list[dict[str, Any]], strategy: str, metric: str | None = None) -> str | None:
    """Return the metric a strategy ranks by (or charts, for last/custom): the given one or the first logged."""
    if metric:
        return metric
    if strategy == "lowest_val_loss":
        return _first_logged(checkpoints, VAL_LOSS_METRICS)
    if strategy == "highest_reward":
        return _first_logged(checkpoints, REWARD_METRICS)
    return _first_logged(checkpoints, VAL_LOSS_METRICS + REWARD_METRICS + FALLBACK_METRICS)


def _series(ordered: list[dict[str, Any]], metric: str | None, chosen: dict[str, Any]) -> dict[str, Any]:
    points = [{"step": int(c["step"]), "value": _value(c, metric) if metric else None} for c in ordered]
    return {"metric": metric, "points": points, "chosen_step": int(chosen["step"])}


def select_checkpoint(
    checkpoints: list[dict[str, Any]], strategy: str, step: int | None = None, metric: str | None = None
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Return (chosen checkpoint, why it won, the metric series to chart) for a strategy.

    lowest_val_loss / highest_reward rank by `metric` or the first known name the run logged; checkpoints without
    a value are skipped and counted in the reason. When no checkpoint has the metric, InvalidInput says so and
    what to choose instead. custom needs `step`, which must be one of the checkpoints' steps.
    """
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not checkpoints:
        raise InvalidInput("checkpoints: there are none to choose from")
    ordered = sorted(checkpoints, key=lambda c: int(c["step"]))
    chart_metric = strategy_metric(ordered, strategy, metric)
    if strategy == "last":
        chosen = ordered[-1]
        return (
            chosen,
            f"step {chosen['step']} is the last of {len(ordered)} checkpoints",
            _series(ordered, chart_metric, chosen),
        )
    if strategy == "custom":
        if step is None:
            raise InvalidInput("step: the custom strategy needs a step")
        chosen = next((c for c in ordered if int(c["step"]) == int(step)), None)
        if chosen is None:
            steps = ", ".join(str(c["step"]) for c in ordered)
            raise InvalidInput(f"step: there is no checkpoint at step {step} (steps: {steps})")
        return chosen, f"step {chosen['step']} was chosen by hand", _series(ordered, chart_metric, chosen)
    lowest = strategy == "lowest_val_loss"
    if chart_metric is None or all(_value(c, chart_metric) is None for c in ordered):
        looked = metric or ", ".join(VAL_LOSS_METRICS if lowest else REWARD_METRICS)
        what = "a validation loss" if lowest else "a mean reward"
        hint = (
            "validation runs only when the job has a validation set and a test frequency"
            if lowest
            else "rewards are logged by RL jobs (GRPO, PPO)"
        )
        raise InvalidInput(
            f"no checkpoint has {what} (looked for {looked}); {hint}. Choose 'last' or a custom step instead"
        )
    scored = [(c, _value(c, chart_metric)) for c in ordered]
    valued = [(c, v) for c, v in scored if v is not None]
    ranked = sorted(valued, key=lambda cv: (cv[1] if lowest else -cv[1], int(cv[0]["step"])))
    chosen, best = ranked[0]
    word = "lowest" if lowest else "highest"
    reason = f"step {chosen['step']} has the {word} {chart_metric}, {best:.4g} (of {len(valued)} checkpoints with it"
    if len(ranked) > 1:
        reason += f"; next: step {ranked[1][0]['step']} with {ranked[1][1]:.4g}"
    reason += ")"
    skipped = len(scored) - len(valued)
    if skipped:
        reason += f"; {skipped} checkpoint(s) had no {chart_metric} and were not ranked"
    return chosen, reason, _series(ordered, chart_metric, chosen)
