"""Recommendations make sense, obey verl's batch rules, and say what would fit when nothing does."""

from __future__ import annotations

import pytest

from platform_core.compute.recommend import configure, parse_request
from platform_core.errors import InvalidInput, NotFound


def run(**values):
    return configure(parse_request(values))


def test_7b_grpo_on_one_rtx5090_needs_lora_and_offload():
    result = run(model="Qwen2.5-7B", gpu="rtx5090", algorithm="grpo", seq_len=4096)
    rec = result["recommendation"]
    assert result["fits"] and result["peak_gib_per_gpu"] <= result["usable_gib_per_gpu"]
    assert rec["lora"] and rec["offload"] == "all" and rec["param_offload"] and rec["optimizer_offload"]
    assert rec["gradient_checkpointing"] and rec["rollout_tensor_parallel_size"] == 1
    assert 0.3 <= rec["rollout_gpu_memory_utilization"] <= 0.9
    assert result["lengths"] == {"seq_len": 4096, "prompt_len": 1365, "response_len": 2731}
    assert result["estimate"]["seconds_per_step"] > 0


def test_72b_on_one_gpu_does_not_fit_and_says_what_would():
    result = run(model="Qwen2.5-72B", gpu="h100", algorithm="sft", seq_len=2048)
    assert not result["fits"]
    assert result["recommendation"]["micro_batch_size_per_gpu"] is None  # no number that would OOM
    assert result["estimate"]["seconds_per_step"] is None
    more = [s for s in result["suggestions"] if s["kind"] == "more_gpus"]
    assert more and more[0]["gpus_per_node"] * more[0]["nodes"] > 1
    assert more[0]["peak_gib_per_gpu"] <= 79.2


def test_small_model_full_fine_tuning_without_checkpointing():
    result = run(model="Qwen2.5-0.5B", gpu="a100-80g", algorithm="sft", seq_len=2048)
    rec = result["recommendation"]
    assert result["fits"] and not rec["lora"] and rec["sharding"] == "fsdp" and rec["offload"] == "none"
    assert not rec["gradient_checkpointing"]
    assert rec["micro_batch_size_per_gpu"] >= 2 and rec["max_token_len_per_gpu"] >= 2 * 2048


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_rl_batches_obey_verl_rules(gpus):
    result = run(
        model="Qwen2.5-1.5B", gpu="h100", gpus_per_node=gpus, algorithm="grpo", prompt_len=512, response_len=1024
    )
    rec, derived = result["recommendation"], result["derived"]
    n, train, mini, micro = (
        rec["rollout_n"],
        rec["global_batch_size"],
        rec["ppo_mini_batch_size"],
        rec["micro_batch_size_per_gpu"],
    )
    assert (train * n) % gpus == 0 and train >= mini and train % mini == 0
    per_gpu = mini * n // gpus
    assert per_gpu % micro == 0 and derived["gradient_accumulation_steps"] == per_gpu // micro
    assert derived["optimizer_steps_per_global_step"] == train // mini
    assert derived["sequences_per_step"] == train * n
    assert rec["ppo_max_token_len_per_gpu"] >= 1536 and rec["log_prob_max_token_len_per_gpu"] >= 1536


def test_sft_batches_add_up():
    result = run(
        model="Llama-3-8B", gpu="a100-80g", gpus_per_node=8, algorithm="sft", seq_len=4096, global_batch_size=100
    )
    rec, derived = result["recommendation"], result["derived"]
    assert rec["global_batch_size"] == rec["micro_batch_size_per_gpu"] * 8 * derived["gradient_accumulation_steps"]
    assert rec["global_batch_size"] >= 100


def test_dpo_uses_deepspeed_and_a_reference_copy():
    result = run(model="Qwen2.5-7B", gpu="a100-80g", gpus_per_node=8, algorithm="dpo", seq_len=2048)
    assert result["fits"] and result["recommendation"]["sharding"].startswith(("zero", "ddp"))
    assert result["breakdown"].get("reference_model", 0) > 0
    lora = run(model="Qwen2.5-7B", gpu="a100-80g", gpus_per_node=8, algorithm="dpo", seq_len=2048, lora_rank=16)
    assert "reference_model" not in lora["breakdown"]  # PEFT: the base with adapters disabled is the reference


def test_ppo_has_a_critic_and_fits_the_quickstart():
    """verl's quickstart: Qwen2.5-0.5B PPO on one 24 GB GPU."""
    result = run(model="Qwen2.5-0.5B", gpu="rtx4090", algorithm="ppo", prompt_len=512, response_len=512)
    assert result["fits"] and "critic_update" in result["phases"]
    assert result["recommendation"]["critic_max_token_len_per_gpu"] >= 1024
    assert set(result["estimate"]["parts"]) >= {"gen", "values", "update_critic", "update_actor"}


def test_predict_mode_reports_the_given_configuration():
    common = dict(model="Qwen2.5-7B", gpu="a100-80g", gpus_per_node=8, algorithm="sft", seq_len=4096)
    one = run(**common, strategy="zero3", micro_batch=1, gradient_checkpointing=True, offload="none")
    four = run(**common, strategy="zero3", micro_batch=4, gradient_checkpointing=True, offload="none")
    off = run(**common, strategy="zero3", micro_batch=1, gradient_checkpointing=True, offload="all")
    assert one["mode"] == "predict" and one["recommendation"]["micro_batch_size_per_gpu"] == 1
    assert four["peak_gib_per_gpu"] > one["peak_gib_per_gpu"] > off["peak_gib_per_gpu"]
    ddp = run(**common, strategy="ddp", micro_batch=1)
    assert not ddp["fits"] and ddp["peak_gib_per_gpu"] > 80  # 7B full fine-tuning without sharding: 18 B/param
    fused = run(**common, strategy="zero3", micro_batch=4, fused_ce=True)
    assert fused["peak_gib_per_gpu"] < four["peak_gib_per_gpu"]


def test_job_prefill_contract():
    sft = run(model="Qwen2.5-0.5B", gpu="rtx4090", algorithm="sft-lora", seq_len=1024)["job_prefill"]
    assert sft["algorithm"] == "sft" and sft["lora_enabled"] and sft["lora_rank"] == 16 and sft["lora_alpha"] == 32
    assert sft["model"] == "Qwen2.5-0.5B" and sft["max_length"] == 1024
    assert {"train_batch_size", "micro_batch_size_per_gpu", "gradient_checkpointing", "gpus_per_node", "nodes"} <= set(
        sft
    )
    grpo = run(model="Qwen2.5-0.5B", gpu="h100", algorithm="grpo", prompt_len=256, response_len=512)["job_prefill"]
    for key in (
        "max_prompt_length",
        "max_response_length",
        "ppo_mini_batch_size",
        "rollout_n",
        "use_dynamic_bsz",
        "max_token_len_per_gpu",
        "param_offload",
        "optimizer_offload",
        "rollout_gpu_memory_utilization",
        "rollout_tensor_parallel_size",
    ):
        assert key in grpo
    assert all(isinstance(v, (int, float, str, bool)) for v in grpo.values())


def test_local_model_directory(demo_model_dir):
    result = run(model=str(demo_model_dir), gpu="custom", gpu_memory_gib=8, algorithm="sft", seq_len=512)
    assert result["fits"] and result["model"]["source"] == str(demo_model_dir)
    assert result["job_prefill"]["model"] == str(demo_model_dir)


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        ({"gpu": "tpu-v5"}, NotFound, "unknown GPU"),
        ({"gpu": "custom"}, InvalidInput, "custom"),
        ({"algorithm": "grpo", "seq_len": None}, InvalidInput, "prompt-len"),
        ({"micro_batch": 2}, InvalidInput, "strategy"),
        ({"gpus_per_node": 0}, InvalidInput, "gpus_per_node"),
    ],
)
def test_bad_requests(values, error, match):
    base = {"model": "Qwen2.5-0.5B", "gpu": "h100", "algorithm": "sft", "seq_len": 1024}
    with pytest.raises(error, match=match):
        run(**{k: v for k, v in {**base, **values}.items() if v is not None})
