"""Real tiny models for surgery tests: variants of the demo model (other seeds), real fine-tunes, misfits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helper modules beside this file (surgery_models, surgery_reference) are imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from surgery_models import fine_tune, save_llama_twin, save_variant  # noqa: E402


@pytest.fixture(scope="session")
def variants(demo_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Two independently initialised models with the demo architecture and tokenizer ("a", "b")."""
    root = tmp_path_factory.mktemp("variants")
    return {name: save_variant(demo_model_dir, root / name, seed) for name, seed in (("a", 1), ("b", 2))}


@pytest.fixture(scope="session")
def fine_tunes(demo_model_dir, tmp_path_factory) -> dict[str, Path]:
    """The demo model as base and two real fine-tunes of it ("ft1", "ft2")."""
    root = tmp_path_factory.mktemp("finetunes")
    return {
        "base": demo_model_dir,
        "ft1": fine_tune(demo_model_dir, root / "ft1", seed=11),
        "ft2": fine_tune(demo_model_dir, root / "ft2", seed=12),
    }


@pytest.fixture(scope="session")
def misfits(demo_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Models that must not be merged with the demo: other architecture, other shapes, other tokenizer."""
    from platform_core.workspace.demo import build_model

    root = tmp_path_factory.mktemp("misfits")
    return {
        "llama": save_llama_twin(demo_model_dir, root / "llama"),
        "wider": save_variant(demo_model_dir, root / "wider", 4, intermediate_size=320),
        "other_tokenizer": build_model(root / "other_tokenizer", seed=5),
    }


@pytest.fixture(scope="session")
def verl_run(demo_model_dir, tmp_path_factory) -> dict[str, Path]:
    """A real verl SFT run on CPU (3 steps, checkpoints at steps 2 and 3): {"root": checkpoints, "metrics": jsonl}."""
    from surgery_models import run_verl_sft

    work = tmp_path_factory.mktemp("verl_sft")
    return {"root": run_verl_sft(demo_model_dir, work), "metrics": work / "metrics.jsonl"}


@pytest.fixture(scope="session")
def verl_lora_run(demo_model_dir, tmp_path_factory) -> dict[str, Path]:
    """A real verl LoRA SFT run on CPU (2 steps, rank 4, one checkpoint at step 2)."""
    from surgery_models import run_verl_sft

    work = tmp_path_factory.mktemp("verl_lora_sft")
    return {
        "root": run_verl_sft(demo_model_dir, work, steps=2, save_freq=2, lora_rank=4),
        "metrics": work / "metrics.jsonl",
    }
