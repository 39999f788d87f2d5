"""Per-layer gradient norms: heatmap data from real runs, the CLI contract, sub-module folding, the diagnosis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from platform_core.monitor.gradnorms import GradNormStore, diagnose, gradnorm_arrays, gradnorm_matrix, parent_layer

FIXTURES = Path(__file__).parent / "fixtures"


def _load(path: Path) -> GradNormStore:
    store = GradNormStore()
    store.add_lines(path.read_text().splitlines())
    return store


def test_heatmap_data_of_a_real_verl_run_has_one_row_per_layer_and_finite_values():
    store = _load(FIXTURES / "verl_sft" / "gradnorms.jsonl")
    config = json.loads((FIXTURES / "verl_sft" / "model_config.json").read_text())
    data = gradnorm_matrix(store)
    blocks = [f"layers.{i}" for i in range(config["num_hidden_layers"])]
    # embedding, every transformer block, the rest (final norm) and the untied head
    assert data["layers"] == ["embed", *blocks, "rest", "head"]
    assert data["steps"] == list(range(1, 13))
    assert len(data["values"]) == 12 and all(len(row) == len(data["layers"]) for row in data["values"])
    assert all(v is not None and math.isfinite(v) and v > 0 for row in data["values"] for v in row)
    # the per-layer norms add up (in squares) to the global norm the trainer logged
    first = json.loads((FIXTURES / "verl_sft" / "gradnorms.jsonl").read_text().splitlines()[0])
    assert math.isclose(math.sqrt(sum(v * v for v in data["values"][0])), first["total"], rel_tol=1e-5)
    assert json.loads(json.dumps(data)) == data  # plain JSON: the `job gradnorms ID --json` contract


def test_heatmap_data_of_real_trl_runs():
    for run in ("trl_grpo", "trl_dpo", "trl_ppo"):
        store = _load(FIXTURES / run / "gradnorms.jsonl")
        names, steps, matrix = gradnorm_arrays(store)
        assert matrix.shape == (len(names), steps.size) and np.isfinite(matrix).all()
    ppo = gradnorm_matrix(_load(FIXTURES / "trl_ppo" / "gradnorms.jsonl"))
    assert ppo["layers"][:2] == ["policy.embedding", "policy.model.layers.0"]


def test_step_range_selection():
    store = _load(FIXTURES / "verl_sft" / "gradnorms.jsonl")
    assert gradnorm_matrix(store, step_range=(5, 8))["steps"] == [5, 6, 7, 8]


def test_sub_modules_fold_into_their_block():
    store = GradNormStore()
    store.add_line(
        json.dumps(
            {
                "step": 1,
                "layers": ["embed", "layers.0.attn", "layers.0.mlp", "layers.0.norm", "head"],
                "norms": [1.0, 3.0, 4.0, 0.0, 2.0],
                "total": 5.477,
            }
        )
    )
    assert store.has_modules()
    layer = gradnorm_matrix(store, view="layer")
    assert layer["layers"] == ["embed", "layers.0", "head"] and layer["values"] == [[1.0, 5.0, 2.0]]
    module = gradnorm_matrix(store, view="module")
    assert module["layers"] == ["embed", "layers.0.attn", "layers.0.mlp", "layers.0.norm", "head"]
    assert parent_layer("model.layers.12.self_attn") == "model.layers.12" and parent_layer("lm_head") == "lm_head"


def _synthetic(norms_per_step: list[list[float]], layers=("embed", "layers.0", "layers.1", "layers.2", "head")):
    store = GradNormStore()
    for step, norms in enumerate(norms_per_step, start=1):
        store.add_line(json.dumps({"step": step, "layers": list(layers), "norms": norms, "total": 0}))
    return store


def test_no_finding_on_real_healthy_runs():
    assert diagnose(_load(FIXTURES / "verl_sft" / "gradnorms.jsonl")) == []
    assert diagnose(_load(FIXTURES / "trl_dpo" / "gradnorms.jsonl")) == []


def test_vanishing():
    store = _synthetic([[1e-2, 1e-9, 2e-9, 1e-10, 1e-2]] * 6)
    (finding,) = [f for f in diagnose(store) if f.kind == "vanishing"]
    assert finding.layers == ["layers.0", "layers.1", "layers.2"] and finding.value < 1e-7
    assert finding.steps == [1, 6] and finding.detail["layers_total"] == 5


def test_exploding_and_growing():
    rows = [[0.5 * 10**k] * 5 for k in np.linspace(0, 4, 20)]  # 0.5 -> 5000 over 20 steps
    kinds = {f.kind: f for f in diagnose(_synthetic(rows))}
    assert kinds["exploding"].value == 5000 and kinds["exploding"].detail["peak_step"] == 20
    assert kinds["exploding"].steps[0] > 1
    assert kinds["growing"].ratio >= 100 and kinds["growing"].detail["from"] < kinds["growing"].detail["to"]


def test_uneven_across_layers():
    kinds = {f.kind: f for f in diagnose(_synthetic([[10.0, 1.0, 1.0, 1.0, 1e-3]] * 5))}
    uneven = kinds["uneven"]
    assert uneven.detail["max_layer"] == "embed" and uneven.detail["min_layer"] == "head"
    assert math.isclose(uneven.ratio, 1e4) and "vanishing" not in kinds


def test_non_finite_norms():
    store = GradNormStore()
    store.add_line('{"step": 1, "layers": ["a", "b"], "norms": [1.0, null], "total": null}')
    store.add_line('{"step": 2, "layers": ["a", "b"], "norms": [1.0, 2.0], "total": 2.2}')
    (finding,) = [f for f in diagnose(store) if f.kind == "non_finite"]
    assert finding.layers == ["b"] and finding.steps == [1]


def test_later_attempt_replaces_a_step_and_bad_lines_are_counted():
    store = GradNormStore()
    store.add_line('{"step": 3, "layers": ["a"], "norms": [1.0]}', attempt=1)
    store.add_line('{"step": 3, "layers": ["a"], "norms": [2.0]}', attempt=2)
    store.add_line('{"step": 3, "layers": ["a"], "norms": [9.0]}', attempt=1)
    assert not store.add_line('{"step": 4, "layers": ["a", "b"], "norms": [1.0]}')
    assert gradnorm_matrix(store)["values"] == [[2.0]] and store.bad_lines == 1
