"""mergekit merges checked against independent computations on the same tensors; refusals before anything runs.

The merges run through the task function in this process (`execute_task`, what the detached worker runs) to keep
the suite fast; the CLI test runs them through a real worker process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from surgery_models import load_state, logits
from surgery_reference import linear, slerp, ties

from platform_core.errors import InvalidInput
from platform_core.surgery.merge import plan_merge, start_merge, task_params
from platform_core.tasks import create_task, execute_task


def run_merge_here(platform, method, models, **options) -> tuple[dict, dict]:
    """Plan a merge, run its task in this process; return (plan, task record)."""
    plan = plan_merge(platform, method, [str(m) for m in models], **options)
    task_id = create_task(platform, "surgery.merge", f"test {method}", task_params(plan))
    outcome = execute_task(platform, task_id)
    assert outcome["state"] == "completed", outcome
    return plan, platform.store.get("tasks", task_id)


def test_slerp_matches_the_reference_and_the_result_is_a_registered_model(platform, variants):
    plan, task = run_merge_here(platform, "slerp", [variants["a"], variants["b"]], t=0.3, out="ab-slerp")
    out = Path(plan["out"])
    assert out == platform.workspace.models.resolve() / "ab-slerp"
    merged, a, b = load_state(out), load_state(variants["a"]), load_state(variants["b"])
    assert merged.keys() == a.keys()
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, slerp(0.3, a[name], b[name]), atol=1e-6, rtol=1e-5, msg=name)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(merged[q], 0.7 * a[q] + 0.3 * b[q], atol=1e-4)  # spherical, not linear
    assert torch.isfinite(logits(out)).all()
    assert (out / "tokenizer.json").is_file()
    row = platform.store.find_one("models", "path = ?", (str(out),))
    assert row["source"] == "merge" and row["meta"]["surgery"]["method"] == "slerp"
    assert task["result"]["model_id"] == row["id"] and task["progress"] == 1.0
    assert "Executing graph" in (task["message"] or "")


def test_linear_weights_are_normalised_and_the_mean_matches(platform, variants, demo_model_dir):
    models = [variants["a"], variants["b"], demo_model_dir]
    plan, _task = run_merge_here(platform, "linear", models, weights=[2, 1, 1], out="soup")
    assert plan["weights"] == [0.5, 0.25, 0.25]
    merged = load_state(Path(plan["out"]))
    states = [load_state(m) for m in models]
    for name, tensor in merged.items():
        expected = linear([s[name] for s in states], [0.5, 0.25, 0.25])
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=1e-5, msg=name)


def test_ties_matches_the_reference(platform, fine_tunes):
    models = [fine_tunes["ft1"], fine_tunes["ft2"]]
    plan, _task = run_merge_here(
        platform, "ties", models, base=str(fine_tunes["base"]), weights=[3, 1], density=0.4, out="ties"
    )
    assert plan["weights"] == [0.75, 0.25]
    merged = load_state(Path(plan["out"]))
    base, ft1, ft2 = (load_state(fine_tunes[k]) for k in ("base", "ft1", "ft2"))
    changed = 0
    for name, tensor in merged.items():
        expected = ties(base[name], [ft1[name], ft2[name]], [0.75, 0.25], 0.4)
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=1e-5, msg=name)
        changed += int(not torch.equal(tensor, base[name]))
    assert changed > len(merged) // 2


def test_dare_linear_drops_a_density_share_and_rescales_the_rest(platform, fine_tunes):
    """One fine-tune onto its base: out - base = delta * mask * (L1(delta) / L1(delta * mask)) per tensor."""
    base_dir = fine_tunes["base"]
    plan, _task = run_merge_here(
        platform,
        "dare_linear",
        [base_dir, fine_tunes["ft1"]],
        base=str(base_dir),
        density=0.3,
        seed=7,
        out="dare-linear",
    )
    assert plan["models"] == [str(fine_tunes["ft1"])] and plan["weights"] == [1.0]
    assert any("is the base model" in n for n in plan["notes"])
    merged, base, ft1 = load_state(Path(plan["out"])), load_state(base_dir), load_state(fine_tunes["ft1"])
    kept_total = moved_total = 0
    for name, tensor in merged.items():
        delta = (ft1[name] - base[name]).double()
        out_delta = (tensor - base[name]).double()
        moved = delta != 0
        kept = (out_delta != 0) & moved
        kept_total += int(kept.sum())
        moved_total += int(moved.sum())
        assert not (out_delta[~moved] != 0).any(), name  # nothing appears where the fine-tune changed nothing
        if kept.sum() > 100:
            scale = delta.abs().sum() / delta[kept].abs().sum()
            torch.testing.assert_close(out_delta[kept], delta[kept] * scale, rtol=2e-3, atol=1e-7, msg=name)
    assert moved_total > 100_000
    assert abs(kept_total / moved_total - 0.3) < 0.01


def test_dare_ties_keeps_each_delta_with_probability_density_and_is_reproducible(platform, fine_tunes):
    """Two fine-tunes, density 0.5: an entry stays at the base value only when both deltas were dropped (p=0.25);
    every changed entry is a, b or a+b with a, b the rescaled deltas (a+b only when their signs agree)."""
    models = [fine_tunes["ft1"], fine_tunes["ft2"]]
    options = {"base": str(fine_tunes["base"]), "density": 0.5, "seed": 3}
    plan, _task = run_merge_here(platform, "dare_ties", models, out="dare-ties", **options)
    assert plan["weights"] == [1.0, 1.0]  # DARE weights scale task vectors and are not normalised
    merged = load_state(Path(plan["out"]))
    base, ft1, ft2 = (load_state(fine_tunes[k]) for k in ("base", "ft1", "ft2"))
    unchanged = both = 0
    for name, tensor in merged.items():
        d1, d2 = (ft1[name] - base[name]).double(), (ft2[name] - base[name]).double()
        out_delta = (tensor - base[name]).double()
        mask = (d1 != 0) & (d2 != 0)
        both += int(mask.sum())
        unchanged += int(((out_delta == 0) & mask).sum())
        if d1.numel() >= 30_000:
            a, b = d1 / 0.5, d2 / 0.5
            options_per_entry = torch.stack([torch.zeros_like(a), a, b, a + b])
            closest = (options_per_entry - out_delta).abs().min(dim=0).values
            assert (closest <= 0.05 * out_delta.abs() + 1e-6).float().mean() > 0.99, name
    assert both > 100_000
    assert abs(unchanged / both - 0.25) < 0.01
    again, _task = run_merge_here(platform, "dare_ties", models, out="dare-ties-again", **options)
    repeated = load_state(Path(again["out"]))
    assert all(torch.equal(repeated[n], merged[n]) for n in merged)
    other_seed, _task = run_merge_here(platform, "dare_ties", models, out="dare-ties-seed4", **{**options, "seed": 4})
    assert not all(torch.equal(load_state(Path(other_seed["out"]))[n], merged[n]) for n in merged)


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("dare-ties", {}, "'dare-ties' is not one of"),
        ("slerp", {"t": 1.5}, r"t: 1.5 must be in \[0, 1\]"),
        ("ties", {}, "needs the base model"),
        ("ties", {"base": "BASE", "density": 0}, r"density: 0 must be in \(0, 1\]"),
        ("linear", {"weights": [1]}, "1 given for 2 models"),
        ("linear", {"weights": [1, -1]}, "must be a number >= 0"),
        ("linear", {"dtype": "int8"}, "dtype"),
    ],
)
def test_bad_requests_are_refused_before_a_task_exists(platform, variants, demo_model_dir, method, options, message):
    options = {k: (str(demo_model_dir) if v == "BASE" else v) for k, v in options.items()}
    with pytest.raises(InvalidInput, match=message):
        start_merge(platform, method, [str(variants["a"]), str(variants["b"])], out="x", **options)
    assert platform.store.count("tasks") == 0


def test_slerp_needs_exactly_two_models(platform, variants, demo_model_dir):
    with pytest.raises(InvalidInput, match="exactly two models, got 3"):
        start_merge(platform, "slerp", [str(variants["a"]), str(variants["b"]), str(demo_model_dir)], out="x")


def test_incompatible_models_are_refused_with_the_reason(platform, demo_model_dir, misfits):
    with pytest.raises(InvalidInput, match=r"cannot be merged: different shape for model\.layers\.0\.mlp"):
        start_merge(platform, "linear", [str(demo_model_dir), str(misfits["wider"])], out="x")
    with pytest.raises(InvalidInput, match="different architecture"):
        start_merge(platform, "slerp", [str(demo_model_dir), str(misfits["llama"])], out="x")
    assert platform.store.count("tasks") == 0
    assert not (platform.workspace.models / "x").exists()


def test_output_must_be_inside_models_and_not_overwrite_unless_asked(platform, variants, tmp_path):
    models = [str(variants["a"]), str(variants["b"])]
    for outside in (str(tmp_path / "elsewhere"), "../datasets/x", str(platform.workspace.outputs / "m")):
        with pytest.raises(InvalidInput, match="output directory"):
            plan_merge(platform, "linear", models, out=outside)
    occupied = platform.workspace.models / "taken"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="already exists and is not empty"):
        plan_merge(platform, "linear", models, out="taken")
    inside = platform.workspace.models / "a-copy"
    shutil.copytree(variants["a"], inside)
    with pytest.raises(InvalidInput, match="would overwrite the input"):
        plan_merge(platform, "linear", [str(inside), models[1]], out="a-copy", overwrite=True)
    plan, _task = run_merge_here(platform, "linear", models, out="taken", overwrite=True)
    assert not (occupied / "keep.txt").exists() and (occupied / "config.json").is_file()
    assert not list((platform.workspace.cache / "surgery" / "staging").iterdir())
