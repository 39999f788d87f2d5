"""Fixtures of the monitoring tests: copies of real run directories (verl SFT, TRL GRPO / DPO / PPO) and real logs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def verl_sft_run(tmp_path) -> Path:
    """A real verl SFT run (CPU, 2 ranks) paused after step 4 and resumed: attempt-1/ and attempt-2/."""
    return Path(shutil.copytree(FIXTURES / "verl_sft", tmp_path / "verl_sft"))


@pytest.fixture
def trl_grpo_run(tmp_path) -> Path:
    """A real TRL GRPO run (20 steps, two reward functions) with its sampled completions under rollouts/."""
    return Path(shutil.copytree(FIXTURES / "trl_grpo", tmp_path / "trl_grpo"))


@pytest.fixture
def log_fixture():
    """Return a function giving the lines of a log fixture (tests/monitor/fixtures/logs/NAME)."""

    def lines(name: str) -> list[str]:
        return (FIXTURES / "logs" / name).read_text(encoding="utf-8").split("\n")

    return lines
