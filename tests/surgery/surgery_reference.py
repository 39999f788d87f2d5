"""Independent reference computations of the merge methods, written from their papers, on whole tensors in fp64.

They share no code with mergekit: SLERP (Shoemake 1985, with the usual near-collinear fallback to linear
interpolation), a weighted linear average (model soup), TIES-merging (Yadav et al. 2023: trim to the top-k
magnitudes, elect a sign per entry from the summed task vectors, average the agreeing entries).
"""

from __future__ import annotations

import math

import torch


def slerp(t: float, a: torch.Tensor, b: torch.Tensor, threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation of two tensors seen as vectors; t=0 gives a, t=1 gives b."""
    x, y = a.double().flatten(), b.double().flatten()
    if x.norm() == 0 or y.norm() == 0:  # no direction (e.g. zero-initialised biases): interpolate linearly
        return ((1 - t) * x + t * y).reshape(a.shape).to(a.dtype)
    cos = torch.dot(x / x.norm(), y / y.norm()).clamp(-1, 1).item()
    if abs(cos) > threshold:
        out = (1 - t) * x + t * y
    else:
        theta = math.acos(cos)
        out = (math.sin((1 - t) * theta) * x + math.sin(t * theta) * y) / math.sin(theta)
    return out.reshape(a.shape).to(a.dtype)


def linear(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """The weighted mean sum_i w_i x_i / sum_i w_i."""
    total = sum(weights)
    out = sum(w * x.double() for w, x in zip(weights, tensors, strict=True)) / total
    return out.to(tensors[0].dtype)


def ties(base: torch.Tensor, models: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    """TIES-merging of fine-tuned tensors onto their base."""
    trimmed = []
    for model in models:
        delta = (model.double() - base.double()).flatten()
        keep = max(1, int(density * delta.numel()))
        kept = torch.zeros_like(delta)
        top = delta.abs().topk(keep).indices
        kept[top] = delta[top]
        trimmed.append(kept)
    weighted = [w * d for w, d in zip(weights, trimmed, strict=True)]
    elected = torch.where(sum(weighted) >= 0, 1.0, -1.0).double()
    numerator = torch.zeros_like(elected)
    denominator = torch.zeros_like(elected)
    for w, d in zip(weights, weighted, strict=True):
        agrees = (torch.sign(d) == elected).double()
        numerator += d * agrees
        denominator += w * agrees
    denominator[denominator == 0] = 1
    return (base.double().flatten() + numerator / denominator).reshape(base.shape).to(base.dtype)
