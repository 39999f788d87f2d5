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


def test_dpo_models_what_the_trl_runner_does():
    """The platform runs DPO with TRL under DDP (trl_runner, plan_trl): full DPO keeps a bf16 reference copy (loaded
    like the policy) on every GPU; with LoRA the base with adapters disabled is the reference. (Before: this case recommended ZeRO-1 full
    fine-tuning, which the platform cannot run; under DDP 7B full DPO needs 8 + 2 bytes per parameter plus a bucket
    copy of the gradients and the activations, more than 80 GB, so LoRA is recommended.)"""
    result = run(model="Qwen2.5-7B", gpu="a100-80g", gpus_per_node=8, algorithm="dpo", seq_len=2048)
    rec = result["recommendation"]
    assert result["fits"] and rec["sharding"] == "ddp" and rec["lora"] and rec["offload"] == "none"
    assert "reference_model" not in result["breakdown"]  # PEFT: the base with adapters disabled is the reference
    assert rec["precision"] == "bf16" and not rec["fused_ce"]
    small = run(model="Qwen2.5-1.5B", gpu="h100", algorithm="dpo", seq_len=4096)
    assert small["fits"] and small["recommendation"]["sharding"] == "ddp" and not small["recommendation"]["lora"]
    ref, states = small["breakdown"]["reference_model"], small["states_gib"]
    assert ref == pytest.approx(2 * small["model"]["total_params"] / 2**30, rel=1e-3)  # a bf16 copy
    assert ref == pytest.approx(states["parameters"], rel=1e-3)  # of the bf16 weights being trained
    assert states["optimizer"] == pytest.approx(2 * states["parameters"], rel=1e-3)  # bf16 AdamW moments


@pytest.mark.parametrize(
    "case",
    [
        dict(model="Qwen2.5-3B", gpu="rtx4090", seq_len=16384),
        dict(model="Qwen2.5-3B", gpu="rtx4090", seq_len=2048),
        dict(model="Qwen2.5-7B", gpu="a100-80g", gpus_per_node=8, seq_len=2048),
        dict(model="Qwen2.5-0.5B", gpu="a100-80g", gpus_per_node=4, seq_len=1024),
        dict(model="Qwen2.5-1.5B", gpu="v100", gpus_per_node=8, seq_len=2048),
        dict(model="Llama-3-70B", gpu="h100", gpus_per_node=8, seq_len=4096),
    ],
)
def test_dpo_recommendations_are_always_ddp(case):
    """Whatever the model, GPU and length: DDP, no offload, no fused loss, bf16 weights; when nothing fits the
    suggestions are LoRA, a shorter sequence or a bigger GPU, never more GPUs (DDP replicates the model)."""
    result = run(algorithm="dpo", **case)
    rec = result["recommendation"]
    if result["fits"]:
        assert rec["sharding"] == "ddp" and rec["zero_stage"] == 0 and rec["offload"] == "none"
        assert not rec["param_offload"] and not rec["optimizer_offload"] and not rec["fused_ce"]
        assert rec["precision"] == "bf16" and rec["compute_dtype"] == "bf16"
        prefill = result["job_prefill"]
        assert prefill["model_dtype"] == "bfloat16" and not prefill["use_fused_kernels"]
        assert not prefill["param_offload"] and not prefill["optimizer_offload"]
    else:
        assert rec["sharding"] is None and result["job_prefill"] is None
        # 70B on 8 H100s: nothing in reach (even LoRA holds 140 GB of bf16 base per GPU), so no suggestion at all
        assert {s["kind"] for s in result["suggestions"]} <= {
            "lora",
            "shorter_sequence",
            "bigger_gpu",
        }


def test_dpo_at_16k_on_a_4090_says_what_would_fit():
    """Before: ZeRO-3 + full offload + fused CE (none of which the TRL runner does). Now: even LoRA at 2 × 16k tokens
    holds about 77 GB of fp32 logits and their gradients (Qwen's 152k vocabulary), so nothing fits."""
    result = run(model="Qwen2.5-3B", gpu="rtx4090", algorithm="dpo", seq_len=16384)
    assert not result["fits"] and result["recommendation"]["micro_batch_size_per_gpu"] is None
    kinds = {s["kind"]: s for s in result["suggestions"]}
    assert kinds["shorter_sequence"]["length"] < 16384 and "bigger_gpu" in kinds
    assert "more_gpus" not in kinds


def test_dpo_predicted_with_sharding_says_the_platform_runs_ddp():
    common = dict(model="Qwen2.5-7B", gpu="a100-80g", gpus_per_node=8, algorithm="dpo", seq_len=2048)
    zero = run(**common, strategy="zero3", micro_batch=1, offload="optimizer", fused_ce=True)
    assert zero["mode"] == "predict" and zero["recommendation"]["sharding"] == "zero3"
    assert "dpo_platform_runs_trl_ddp" in zero["notes"]
    prefill = zero["job_prefill"]  # the job runs TRL DDP: the prefill claims no offload and no fused kernels
    assert not prefill["param_offload"] and not prefill["optimizer_offload"] and not prefill["use_fused_kernels"]
    assert prefill["model_dtype"] == "bfloat16" and prefill["micro_batch_size_per_gpu"] == 1
    for strategy in ("zero1", "zero2", "fsdp"):
        assert "dpo_platform_runs_trl_ddp" in run(**common, strategy=strategy, micro_batch=1)["notes"]
    ddp = run(**common, strategy="ddp", micro_batch=1, lora_rank=16)
    assert "dpo_platform_runs_trl_ddp" not in ddp["notes"] and ddp["recommendation"]["precision"] == "bf16"
    assert "dpo_platform_runs_trl_ddp" in run(**common, strategy="ddp", micro_batch=1, precision="fp32-master")["notes"]
    sft = run(**{**common, "algorithm": "sft"}, strategy="zero3", micro_batch=1)
    assert "dpo_platform_runs_trl_ddp" not in sft["notes"]


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


# -- audit fixes ----------------------------------------------------------------------------------------------------


def test_predict_refuses_a_rollout_fraction_that_cannot_load_the_weights():
    """Qwen2.5-7B GRPO, LoRA, offload all, gmu 0.4 on an RTX 5090: 0.4 × 31.4 = 12.6 GiB < 14.2 GiB of weights."""
    common = dict(model="Qwen2.5-7B", gpu="rtx5090", algorithm="grpo", seq_len=4096, strategy="fsdp", lora_rank=32)
    common |= dict(offload="all", precision="bf16", micro_batch=1)
    result = run(**common, rollout_gpu_memory_utilization=0.4)
    assert result["fits"] is False and result["mode"] == "predict"
    (problem,) = result["problems"]
    assert problem["kind"] == "rollout_kv_too_small" and problem["min_gpu_memory_utilization"] == 0.55
    assert "12.6 GiB" in problem["message"] and "14.2 GiB" in problem["message"]
    fixed = run(**common, rollout_gpu_memory_utilization=0.55)
    assert not fixed["problems"] and fixed["fits"] is (fixed["peak_gib_per_gpu"] <= fixed["usable_gib_per_gpu"])


@pytest.mark.parametrize(
    ("model", "gpu", "gpus", "algorithm"),
    [
        ("Qwen2.5-7B", "rtx5090", 1, "grpo"),
        ("Qwen2.5-7B", "rtx4090", 2, "grpo"),
        ("Qwen2.5-14B", "a100-40g", 2, "ppo"),
        ("Qwen2.5-3B", "a10g", 1, "grpo"),
    ],
)
def test_recommend_never_picks_a_rollout_that_cannot_hold_a_sequence(model, gpu, gpus, algorithm):
    from platform_core.compute.architectures import preset
    from platform_core.compute.gpus import get_gpu
    from platform_core.compute.memory import Plan, kv_cache_tokens

    result = run(model=model, gpu=gpu, gpus_per_node=gpus, algorithm=algorithm, seq_len=4096)
    assert not result["problems"] or not result["fits"]
    if result["fits"]:
        rec = result["recommendation"]
        plan = Plan(
            algorithm=algorithm,
            seq_len=4096,
            gpus_per_node=gpus,
            rollout_gpu_memory_utilization=rec["rollout_gpu_memory_utilization"],
            rollout_tp=rec["rollout_tensor_parallel_size"],
        )
        assert kv_cache_tokens(preset(model), get_gpu(gpu), plan) >= 4096


def test_job_prefill_has_the_side_token_budgets():
    common = dict(model="Qwen2.5-0.5B", gpu="rtx4090", prompt_len=512, response_len=512)
    grpo = run(**common, algorithm="grpo")
    assert (
        grpo["job_prefill"]["log_prob_max_token_len_per_gpu"]
        == grpo["recommendation"]["log_prob_max_token_len_per_gpu"]
    )
    assert "critic_max_token_len_per_gpu" not in grpo["job_prefill"]  # GRPO has no critic
    ppo = run(**common, algorithm="ppo")
    prefill, rec = ppo["job_prefill"], ppo["recommendation"]
    assert prefill["critic_max_token_len_per_gpu"] == rec["critic_max_token_len_per_gpu"] >= 1024
    assert prefill["log_prob_max_token_len_per_gpu"] == rec["log_prob_max_token_len_per_gpu"] >= 1024
    predicted = run(**common, algorithm="ppo", strategy="fsdp", micro_batch=2)["job_prefill"]
    assert predicted["critic_max_token_len_per_gpu"] == predicted["log_prob_max_token_len_per_gpu"] == 4096


@pytest.mark.parametrize("algorithm", ["sft", "sft-lora", "grpo"])
def test_v100_plans_in_fp16_without_flash_attention(algorithm):
    """V100 has no bf16 and no flash-attn: fp32 master weights with fp16 compute, never a 16-bit actor, and the
    logits at verl's row-wise fallback rather than the flash-attn cross entropy."""
    result = run(model="Qwen2.5-1.5B", gpu="v100", gpus_per_node=8, algorithm=algorithm, seq_len=2048)
    rec, prefill = result["recommendation"], result["job_prefill"]
    assert result["fits"]
    assert rec["precision"] == "fp16" and rec["compute_dtype"] == "fp16"
    assert {"fp16_no_bf16", "no_flash_attention"} <= set(result["notes"])
    assert prefill["model_dtype"] == "float32" and prefill["mixed_precision_dtype"] == "float16"
    assert "compute_dtype=fp16" in result["estimate"]["assumptions"]


def test_v100_dpo_is_bf16_as_trl_loads_it():
    """DPO left the fp16 case above: trl_runner loads bf16 weights on any GPU (torch emulates bf16 on a V100)."""
    result = run(model="Qwen2.5-1.5B", gpu="v100", gpus_per_node=8, algorithm="dpo", seq_len=2048)
    rec, prefill = result["recommendation"], result["job_prefill"]
    assert result["fits"] and rec["precision"] == "bf16" and rec["compute_dtype"] == "bf16"
    assert "dpo_bf16_without_hardware_bf16" in result["notes"] and "fp16_no_bf16" not in result["notes"]
    assert prefill["model_dtype"] == "bfloat16" and "mixed_precision_dtype" not in prefill


def test_v100_candidates_and_kernels():
    from platform_core.compute.architectures import preset
    from platform_core.compute.gpus import get_gpu
    from platform_core.compute.recommend import candidate_plans, lengths_for

    for algorithm in ("sft-lora", "grpo", "ppo"):
        req = parse_request(dict(model="Qwen2.5-7B", gpu="v100", algorithm=algorithm, seq_len=2048))
        v100 = candidate_plans(req, preset("Qwen2.5-7B"), get_gpu("v100"), lengths_for(req))
        assert all(p.precision == "fp32-master" and p.loss_kernel != "logprob" for p in v100), algorithm
        a100 = candidate_plans(req, preset("Qwen2.5-7B"), get_gpu("a100-40g"), lengths_for(req))
        assert any(p.precision == "bf16" for p in a100) and all(p.loss_kernel == "logprob" for p in a100)
    # same memory size, same plan: only the logits kernel differs (flash-attn CE 2V kept vs row-wise 4V)
    common = dict(model="Qwen2.5-1.5B", algorithm="sft", seq_len=2048, strategy="fsdp", micro_batch=8)
    v100 = run(**common, gpu="v100", gradient_checkpointing=True)
    same_size = run(**common, gpu="custom:31.7", gradient_checkpointing=True)
    assert v100["breakdown"]["logits"] == pytest.approx(2 * same_size["breakdown"]["logits"], rel=1e-3)
    assert v100["recommendation"]["precision"] == "fp16" and same_size["recommendation"]["precision"] == "fp32-master"
    with pytest.raises(InvalidInput, match="no bf16"):
        run(**common, gpu="v100", precision="bf16")
    asked = run(**common, gpu="a100-80g", precision="fp16")
    assert asked["recommendation"]["precision"] == "fp16" and asked["job_prefill"]["model_dtype"] == "float32"
    assert "fp16_requested" in asked["notes"]


@pytest.mark.parametrize(
    "concrete",
    [
        {"packing": True},
        {"rollout_tp": 2},
        {"rollout_gpu_memory_utilization": 0.6},
        {"log_prob_token_budget": 8192},
    ],
)
def test_concrete_options_without_a_strategy_are_refused(concrete):
    base = dict(model="Qwen2.5-7B", gpu="h100", gpus_per_node=8, algorithm="grpo", seq_len=2048)
    with pytest.raises(InvalidInput, match="--strategy"):
        run(**base, **concrete)
    predicted = run(**base, **concrete, strategy="fsdp")
    assert predicted["mode"] == "predict"
    rec = predicted["recommendation"]
    if "rollout_tp" in concrete:
        assert rec["rollout_tensor_parallel_size"] == 2
    if "rollout_gpu_memory_utilization" in concrete:
        assert rec["rollout_gpu_memory_utilization"] == 0.6
    if "log_prob_token_budget" in concrete:
        assert rec["log_prob_max_token_len_per_gpu"] == 8192


def test_rl_options_on_sft_are_refused():
    with pytest.raises(InvalidInput, match="only apply to RL"):
        run(model="Qwen2.5-0.5B", gpu="h100", algorithm="sft", seq_len=1024, strategy="fsdp", rollout_tp=2)


def test_sample_count_is_a_stated_assumption():
    common = dict(model="Qwen2.5-0.5B", gpu="h100", algorithm="sft", seq_len=1024, global_batch_size=64)
    default = run(**common)["estimate"]
    assert "samples=10000" in default["assumptions"] and "epochs=1" in default["assumptions"]
    assert default["total_steps"] == 157  # ceil(10000 / 64)
    given = run(**common, samples=640, epochs=2)["estimate"]
    assert "samples=640" in given["assumptions"] and "epochs=2" in given["assumptions"]
    assert given["total_steps"] == 20
    assert given["seconds_total"] == pytest.approx(20 * given["seconds_per_step"], rel=0.01)
