"""FLOPs per token and step times follow memory.md §8."""

from __future__ import annotations

import pytest

from platform_core.compute.architectures import preset
from platform_core.compute.gpus import get_gpu
from platform_core.compute.memory import Plan
from platform_core.compute.timing import estimate_time, flops_per_token


@pytest.mark.parametrize(("name", "flops"), [("Qwen2.5-7B", 5.8e10), ("Llama-3-8B", 6.2e10), ("Qwen2.5-72B", 5.8e11)])
def test_flops_per_token_examples(name, flops):
    """memory.md §8: full fine-tuning with checkpointing at s = 2048."""
    assert flops_per_token(preset(name), 2048, "full", gradient_checkpointing=True) == pytest.approx(flops, rel=0.02)


def test_flops_modes():
    arch = preset("Qwen2.5-7B")
    full, lora, forward = (flops_per_token(arch, 1, mode) for mode in ("full", "lora", "forward"))
    assert full / forward == pytest.approx(3, rel=1e-3) and lora / forward == pytest.approx(2, rel=1e-3)


def test_step_time_scales_with_gpus_and_mfu():
    arch, gpu = preset("Llama-3-8B"), get_gpu("h100")
    one = estimate_time(arch, gpu, Plan(algorithm="sft", seq_len=2048, sharding="fsdp"), 64, 8, 100)
    eight = estimate_time(arch, gpu, Plan(algorithm="sft", seq_len=2048, sharding="fsdp", gpus_per_node=8), 64, 1, 100)
    faster = estimate_time(arch, gpu, Plan(algorithm="sft", seq_len=2048, sharding="fsdp"), 64, 8, 100, mfu=0.7)
    assert one.seconds_per_step / eight.seconds_per_step == pytest.approx(8, rel=0.05)
    assert faster.seconds_per_step == pytest.approx(one.seconds_per_step / 2, rel=1e-6)
    assert one.seconds_total == pytest.approx(100 * one.seconds_per_step)


def test_rl_step_uses_verl_timing_keys():
    arch, gpu = preset("Qwen2.5-7B"), get_gpu("h100")
    plan = Plan(algorithm="ppo", seq_len=1536, prompt_len=512, response_len=1024, gpus_per_node=8, rollout_n=1)
    parts = estimate_time(arch, gpu, plan, 256, 1, 10).parts
    assert {"gen", "old_log_prob", "ref", "values", "update_critic", "update_actor"} <= set(parts)
    offloaded = estimate_time(arch, gpu, Plan(**{**plan.__dict__, "offload": "all"}), 256, 1, 10)
    assert offloaded.parts["offload"] > 0
