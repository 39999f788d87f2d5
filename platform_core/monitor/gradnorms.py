"""Per-layer gradient norms (gradnorms.jsonl, written by the platform's plugin) as heatmap data, and their diagnosis.

Each line: `{"step": N, "layers": ["embed", "layers.0", ..., "head"], "norms": [...], "total": x}`; layer names may be
finer (`layers.0.attn`, `layers.0.mlp`). The "layer" view folds sub-modules into their block (the norm of the
concatenation: square root of the sum of squares); the "module" view keeps them.

    store = GradNormStore(); store.add_lines(lines)
    gradnorm_matrix(store)      # {"layers": [...], "steps": [...], "values": [[norm per layer] per step]}
    diagnose(store)             # [Finding(kind="uneven", ...)]
"""

from __future__ import annotations

import json
import math
import re
from array import array
from dataclasses import dataclass, field

import numpy as np

SUBMODULE = re.compile(r"^(.*?layers\.\d+)\.(.+)$")

VANISHING_NORM = 1e-7
EXPLODING_NORM = 1e3
GROWTH_FACTOR = 100.0
UNEVEN_RATIO = 1e3


class GradNormStore:
    """The records of a run's gradnorms files, keyed by step (a later attempt replaces an earlier one's step)."""

    def __init__(self) -> None:
        self.records: dict[int, tuple[tuple[str, ...], array, int]] = {}
        self.bad_lines = 0
        self.version = 0

    def add_line(self, line: str, attempt: int = 0) -> bool:
        """Add one gradnorms JSONL line; return False (and count it) if it is not a gradnorm record."""
        line = line.strip()
        if not line:
            return False
        try:
            record = json.loads(line)
            step = int(record["step"])
            layers = tuple(str(name) for name in record["layers"])
            norms = array("d", (math.nan if v is None else float(v) for v in record["norms"]))
        except (ValueError, KeyError, TypeError):
            self.bad_lines += 1
            return False
        if len(layers) != len(norms):
            self.bad_lines += 1
            return False
        previous = self.records.get(step)
        if previous is None or attempt >= previous[2]:
            self.records[step] = (layers, norms, attempt)
            self.version += 1
        return True

    def add_lines(self, lines, attempt: int = 0) -> int:
        """Add gradnorms lines; return how many were records."""
        return sum(self.add_line(line, attempt) for line in lines)

    def steps(self) -> list[int]:
        """Return the recorded steps in order."""
        return sorted(self.records)

    def has_modules(self) -> bool:
        """Return True when some layer names are sub-modules (`layers.0.attn`), so a module view is possible."""
        return any(SUBMODULE.match(name) for layers, _n, _a in self.records.values() for name in layers)

    def clear(self) -> None:
        """Forget every record (the file was truncated or replaced)."""
        self.__init__()


def parent_layer(name: str) -> str:
    """Return the block a sub-module belongs to (`model.layers.3.mlp` -> `model.layers.3`), or the name itself."""
    match = SUBMODULE.match(name)
    return match.group(1) if match else name


def _ordered_union(names_lists) -> list[str]:
    seen: dict[str, None] = {}
    for names in names_lists:
        for name in names:
            seen.setdefault(name, None)
    return list(seen)


def gradnorm_arrays(
    store: GradNormStore, view: str = "layer", step_range: tuple[int, int] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Return (layer names, steps, matrix of shape layers x steps) with NaN where a layer has no norm at a step."""
    if view not in ("layer", "module"):
        raise ValueError(f"view must be 'layer' or 'module', not {view!r}")
    steps = [s for s in sorted(store.records) if step_range is None or step_range[0] <= s <= step_range[1]]
    rows = [store.records[s] for s in steps]
    if view == "module":
        names = _ordered_union(layers for layers, _n, _a in rows)
    else:
        names = _ordered_union((parent_layer(n) for n in layers) for layers, _n, _a in rows)
    index = {name: i for i, name in enumerate(names)}
    matrix = np.full((len(names), len(steps)), np.nan)
    for column, (layers, norms, _attempt) in enumerate(rows):
        if view == "module":
            for name, value in zip(layers, norms, strict=True):
                matrix[index[name], column] = value
            continue
        squares: dict[str, float] = {}
        for name, value in zip(layers, norms, strict=True):
            parent = parent_layer(name)
            squares[parent] = squares.get(parent, 0.0) + value * value
        for parent, total in squares.items():
            matrix[index[parent], column] = math.sqrt(total)
    return names, np.asarray(steps, dtype=np.int64), matrix


def gradnorm_matrix(
    store: GradNormStore, view: str = "layer", step_range: tuple[int, int] | None = None
) -> dict[str, list]:
    """Return `{"layers": [names], "steps": [ints], "values": [[norm per layer] per step]}` (the CLI contract).

    A missing or non-finite norm is None (JSON null).
    """
    names, steps, matrix = gradnorm_arrays(store, view, step_range)
    values = [[float(v) if math.isfinite(v) else None for v in column] for column in matrix.T.tolist()]
    return {"layers": names, "steps": steps.tolist(), "values": values}


@dataclass
class Finding:
    """One diagnosis: kind ("vanishing" | "exploding" | "growing" | "uneven" | "non_finite") and its evidence."""

    kind: str
    layers: list[str]
    steps: list[int] = field(default_factory=list)
    value: float | None = None
    ratio: float | None = None
    detail: dict = field(default_factory=dict)


def diagnose(
    store: GradNormStore,
    step_range: tuple[int, int] | None = None,
    view: str = "layer",
    vanishing_norm: float = VANISHING_NORM,
    exploding_norm: float = EXPLODING_NORM,
    growth_factor: float = GROWTH_FACTOR,
    uneven_ratio: float = UNEVEN_RATIO,
) -> list[Finding]:
    """Return the findings of the user's guide for the selected steps: vanishing, exploding, uneven across layers.

    - vanishing: the median norm of most layers (more than half) is below `vanishing_norm`;
    - exploding: a norm above `exploding_norm`; growing: a layer's median over the last tenth of the steps is
      `growth_factor` times its median over the first tenth (orders of magnitude);
    - uneven: the largest layer median over the smallest non-vanishing one exceeds `uneven_ratio`;
    - non_finite: NaN or Inf norms.
    """
    names, steps, matrix = gradnorm_arrays(store, view, step_range)
    if not names or steps.size == 0:
        return []
    findings: list[Finding] = []
    bad = ~np.isfinite(matrix) & ~np.isnan(matrix)
    nan_cells = np.isnan(matrix) & _present_mask(store, names, steps, view)
    non_finite = bad | nan_cells
    if non_finite.any():
        layer_idx, step_idx = np.nonzero(non_finite)
        findings.append(
            Finding(
                "non_finite",
                sorted({names[i] for i in layer_idx}, key=names.index),
                sorted({int(steps[j]) for j in step_idx})[:20],
                detail={"count": int(non_finite.sum())},
            )
        )
    finite = np.where(np.isfinite(matrix), matrix, np.nan)
    with np.errstate(all="ignore"):
        medians = np.nanmedian(finite, axis=1)
    valid = np.isfinite(medians)
    if not valid.any():
        return findings
    vanishing = [names[i] for i in range(len(names)) if valid[i] and medians[i] < vanishing_norm]
    if len(vanishing) > valid.sum() / 2:
        findings.append(
            Finding(
                "vanishing",
                vanishing,
                [int(steps[0]), int(steps[-1])],
                value=float(np.nanmax(medians[[names.index(n) for n in vanishing]])),
                detail={"threshold": vanishing_norm, "layers_total": int(valid.sum())},
            )
        )
    peak = np.nanmax(finite) if np.isfinite(finite).any() else math.nan
    if math.isfinite(peak) and peak > exploding_norm:
        layer_i, step_j = np.unravel_index(np.nanargmax(finite), finite.shape)
        over = np.nonzero((finite > exploding_norm).any(axis=0))[0]
        findings.append(
            Finding(
                "exploding",
                [names[i] for i in range(len(names)) if (finite[i] > exploding_norm).any()],
                [int(steps[j]) for j in over[:20]],
                value=float(peak),
                detail={"threshold": exploding_norm, "peak_layer": names[layer_i], "peak_step": int(steps[step_j])},
            )
        )
    if steps.size >= 4:
        tenth = max(1, steps.size // 10)
        with np.errstate(all="ignore"):
            first = np.nanmedian(finite[:, :tenth], axis=1)
            last = np.nanmedian(finite[:, -tenth:], axis=1)
            growth = last / first
        growing = [
            i for i in range(len(names)) if np.isfinite(growth[i]) and first[i] > 0 and growth[i] >= growth_factor
        ]
        if growing:
            worst = max(growing, key=lambda i: growth[i])
            findings.append(
                Finding(
                    "growing",
                    [names[i] for i in growing],
                    [int(steps[0]), int(steps[-1])],
                    value=float(last[worst]),
                    ratio=float(growth[worst]),
                    detail={"from": float(first[worst]), "to": float(last[worst]), "worst_layer": names[worst]},
                )
            )
    alive = [i for i in range(len(names)) if valid[i] and medians[i] >= vanishing_norm]
    if len(alive) >= 2:
        high = max(alive, key=lambda i: medians[i])
        low = min(alive, key=lambda i: medians[i])
        ratio = float(medians[high] / medians[low])
        if ratio > uneven_ratio:
            findings.append(
                Finding(
                    "uneven",
                    [names[high], names[low]],
                    [int(steps[0]), int(steps[-1])],
                    ratio=ratio,
                    detail={
                        "max_layer": names[high],
                        "max": float(medians[high]),
                        "min_layer": names[low],
                        "min": float(medians[low]),
                        "threshold": uneven_ratio,
                        "vanishing_layers": vanishing if len(vanishing) <= valid.sum() / 2 else [],
                    },
                )
            )
    return findings


def _present_mask(store: GradNormStore, names: list[str], steps: np.ndarray, view: str) -> np.ndarray:
    """True where a record named the layer at that step (so a NaN there was written as null, not missing)."""
    mask = np.zeros((len(names), steps.size), dtype=bool)
    index = {name: i for i, name in enumerate(names)}
    for column, step in enumerate(steps.tolist()):
        layers = store.records[step][0]
        for name in layers:
            mask[index[name if view == "module" else parent_layer(name)], column] = True
    return mask
