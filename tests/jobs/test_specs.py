"""Job specs and engines: invalid combinations refused with the reason; generated verl commands pass verl's own
config composition and validation (real Hydra + verl.utils.config.validate_config, no GPU needed)."""

from __future__ import annotations

import pytest

from platform_core.errors import InvalidInput
from platform_core.jobs.engines import RunContext, build_plan, choose_engine
from platform_core.jobs.specs import parse_spec
from platform_core.jobs.validate import validate_verl_overrides

BASE = {"model": "m", "dataset": "d"}


def ctx(model_path: str, device: str = "cuda", rows: int = 1024, **extra) -> RunContext:
    return RunContext(
        job_id=7,
        attempt=1,
        job_dir="/o/job-7",
        attempt_dir="/o/job-7/attempt-1",
        checkpoint_dir="/o/job-7/checkpoints",
        config_dir="/o/job-7/config",
        plugin_dir="/kit",
        python="python3",
        model_path=model_path,
        train_files="/d/train.parquet",
        val_files=None,
        device=device,
        train_rows=rows,
        **extra,
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"algorithm": "grpo", "rollout_n": 1}, "GRPO needs rollout_n >= 2"),
        ({"algorithm": "grpo", "batch_size": 8, "ppo_mini_batch_size": 16}, "must be >= ppo_mini_batch_size"),
        ({"algorithm": "grpo", "batch_size": 96, "ppo_mini_batch_size": 64}, "multiple of ppo_mini_batch_size"),
        (
            {"algorithm": "grpo", "batch_size": 6, "rollout_n": 3, "gpus_per_node": 4, "micro_batch_size_per_gpu": 1},
            "must be divisible by the number of GPUs",
        ),
        (
            {"algorithm": "grpo", "batch_size": 8, "rollout_n": 2, "gpus_per_node": 2, "micro_batch_size_per_gpu": 3},
            "multiple of micro_batch_size_per_gpu",
        ),
        ({"algorithm": "grpo", "rollout_tensor_parallel_size": 4, "gpus_per_node": 2}, "exceeds the 2 GPU"),
        ({"algorithm": "sft", "batch_size": 10, "micro_batch_size_per_gpu": 4}, "must be divisible by GPUs x micro"),
        ({"algorithm": "sft", "learning_rate": -1}, "learning_rate"),
        ({"algorithm": "dpo", "beta": 0}, "beta"),
        ({"algorithm": "ppo", "reward_model_path": "/m/$(id)"}, "not allowed in a path"),
        ({"algorithm": "grpo", "reward": {"reward_type": "custom"}}, "needs custom_path"),
        ({"algorithm": "sft", "extra_overrides": ["trainer.x=1; rm -rf /"]}, "not allowed"),
        ({"algorithm": "sft", "target": "ssh:a b;c"}, "connection"),
        ({"algorithm": "rlhf"}, "is not one of sft, grpo, ppo, dpo"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(fields, reason):
    with pytest.raises(InvalidInput, match=reason):
        parse_spec({"name": "j", **BASE, **fields})


def test_configurator_prefill_without_lora_keeps_the_form_defaults():
    """The configurator says "LoRA off" with rank 0, which the form's rank field (>= 1) cannot show."""
    from platform_core.jobs.service import spec_from_prefill

    values = spec_from_prefill({"algorithm": "sft", "train_batch_size": 64, "lora_enabled": False, "lora_rank": 0,
                                "lora_alpha": 0, "model_dtype": "float32"})  # fmt: skip
    assert values == {"algorithm": "sft", "batch_size": 64, "lora_enabled": False, "model_dtype": "fp32"}
    lora = spec_from_prefill({"lora_enabled": True, "lora_rank": 16, "lora_alpha": 32})
    assert lora == {"lora_enabled": True, "lora_rank": 16, "lora_alpha": 32}


def test_lora_alpha_defaults_to_twice_the_rank():
    spec = parse_spec({"name": "j", "algorithm": "sft", **BASE, "lora_enabled": True, "lora_rank": 8})
    assert spec.effective_lora_alpha == 16


def test_engine_choice_and_its_reason():
    sft = parse_spec({"name": "j", "algorithm": "sft", **BASE})
    grpo = parse_spec({"name": "j", "algorithm": "grpo", **BASE})
    dpo = parse_spec({"name": "j", "algorithm": "dpo", **BASE})
    assert choose_engine(sft, False)[0] == "verl" and "CPU" in choose_engine(sft, False)[1]
    assert choose_engine(grpo, True)[0] == "verl"
    assert choose_engine(grpo, False) == ("trl", "no GPU on this target: verl's RL needs one, so GRPO runs on TRL")
    engine, reason = choose_engine(grpo, False)
    assert reason.record() == {"code": "trl_rl_no_gpu", "params": {"algorithm": "GRPO"}}  # what the UI translates
    import copy
    import pickle

    for again in (copy.deepcopy(reason), pickle.loads(pickle.dumps(reason))):
        assert again == reason and again.record() == reason.record()
    assert choose_engine(dpo, True)[0] == "trl"
    with pytest.raises(InvalidInput, match="no offline DPO"):
        choose_engine(parse_spec({"name": "j", "algorithm": "dpo", **BASE, "engine": "verl"}), True)
    with pytest.raises(InvalidInput, match="needs a GPU"):
        choose_engine(parse_spec({"name": "j", "algorithm": "ppo", **BASE, "engine": "verl"}), False)


RL_SPECS = [
    {"algorithm": "grpo", "batch_size": 64, "rollout_n": 4, "micro_batch_size_per_gpu": 2, "gpus_per_node": 2},
    {
        "algorithm": "grpo",
        "batch_size": 128,
        "rollout_n": 8,
        "use_dynamic_bsz": True,
        "gpus_per_node": 8,
        "lora_enabled": True,
        "lora_rank": 32,
        "param_offload": True,
        "rollout_tensor_parallel_size": 2,
    },
    {
        "algorithm": "grpo",
        "batch_size": 32,
        "rollout_n": 5,
        "micro_batch_size_per_gpu": 5,
        "kl_coef": 0,
        "reward": {"reward_type": "format_check", "extraction": "json"},
    },
    {"algorithm": "ppo", "batch_size": 64, "rollout_n": 1, "micro_batch_size_per_gpu": 4},
    {
        "algorithm": "ppo",
        "batch_size": 32,
        "rollout_n": 4,
        "micro_batch_size_per_gpu": 2,
        "gpus_per_node": 4,
        "use_dynamic_bsz": True,
        "optimizer_offload": True,
    },
]


@pytest.mark.parametrize("fields", RL_SPECS)
def test_generated_rl_commands_pass_verl_validation(fields, demo_model_dir):
    spec = parse_spec({"name": "j", **BASE, **fields})
    plan = build_plan("verl", spec, ctx(str(demo_model_dir)))
    assert plan.argv[1:3] == ["-m", "verl.trainer.main_ppo"]
    assert "trainer.logger=[console,file]" in plan.overrides
    assert plan.env["VERL_FILE_LOGGER_PATH"] == "/o/job-7/attempt-1/metrics.jsonl"
    assert any(o.startswith("trainer.save_freq=") and int(o.split("=")[1]) > 0 for o in plan.overrides)
    validate_verl_overrides(plan.config_name, plan.overrides)


def test_ppo_with_a_reward_model_and_sft_commands_pass_verl_validation(demo_model_dir):
    ppo = parse_spec(
        {
            "name": "j",
            **BASE,
            "algorithm": "ppo",
            "batch_size": 64,
            "rollout_n": 2,
            "micro_batch_size_per_gpu": 4,
            "reward_model_path": str(demo_model_dir),
        }
    )
    plan = build_plan("verl", ppo, ctx(str(demo_model_dir), reward_model_path=str(demo_model_dir)))
    assert "reward.reward_model.enable=True" in plan.overrides
    validate_verl_overrides(plan.config_name, plan.overrides)
    sft = parse_spec(
        {"name": "j", **BASE, "algorithm": "sft", "batch_size": 32, "micro_batch_size_per_gpu": 8, "lora_enabled": True}
    )
    plan = build_plan("verl", sft, ctx(str(demo_model_dir), device="cpu"))
    assert plan.argv[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert plan.env["VERL_PLATFORM"] == "cpu" and plan.env["VERL_USE_EXTERNAL_MODULES"] == "verl_plugin"
    validate_verl_overrides(plan.config_name, plan.overrides)


def test_the_configurators_dtype_and_fused_kernels_reach_verl_on_a_gpu(demo_model_dir):
    """The recommendation counts on a bf16 actor and fused CE; a GPU run gets both, a CPU run keeps fp32."""
    from platform_core.jobs.service import spec_from_prefill

    prefill = spec_from_prefill({"model_dtype": "bfloat16", "use_fused_kernels": True})
    assert prefill == {"model_dtype": "bf16", "use_fused_kernels": True}
    sft = parse_spec({"name": "j", **BASE, "algorithm": "sft", "batch_size": 32, **prefill})
    plan = build_plan("verl", sft, ctx(str(demo_model_dir)))
    assert {"engine.model_dtype=bf16", "model.use_fused_kernels=True"} <= set(plan.overrides)
    validate_verl_overrides(plan.config_name, plan.overrides)
    cpu = build_plan("verl", sft, ctx(str(demo_model_dir), device="cpu"))
    assert not any("model_dtype" in o or "fused_kernels" in o for o in cpu.overrides)
    grpo = parse_spec({"name": "j", **BASE, **RL_SPECS[0], **prefill})
    plan = build_plan("verl", grpo, ctx(str(demo_model_dir)))
    assert "actor_rollout_ref.actor.fsdp_config.model_dtype=bf16" in plan.overrides
    assert "actor_rollout_ref.model.use_fused_kernels=True" in plan.overrides
    validate_verl_overrides(plan.config_name, plan.overrides)
    cpu = build_plan("verl", grpo, ctx(str(demo_model_dir), device="cpu"))
    assert "actor_rollout_ref.model.use_fused_kernels=False" in cpu.overrides


def test_verl_rejects_what_it_would_reject_on_the_gpu(demo_model_dir):
    good = parse_spec({"name": "j", **BASE, **RL_SPECS[0]})
    plan = build_plan("verl", good, ctx(str(demo_model_dir)))
    with pytest.raises(InvalidInput, match="save_frq"):
        validate_verl_overrides(plan.config_name, [*plan.overrides, "trainer.save_frq=3"])
    with pytest.raises(InvalidInput, match="ppo_micro_batch_size"):
        validate_verl_overrides(plan.config_name, [*plan.overrides, "actor_rollout_ref.actor.ppo_micro_batch_size=4"])
    with pytest.raises(InvalidInput, match="is not a number"):
        validate_verl_overrides(plan.config_name, [*plan.overrides, "actor_rollout_ref.actor.optim.lr=fast"])


def test_step_plan_refuses_a_dataset_smaller_than_a_batch(demo_model_dir):
    spec = parse_spec({"name": "j", **BASE, "algorithm": "sft", "batch_size": 64, "micro_batch_size_per_gpu": 8})
    with pytest.raises(InvalidInput, match="fewer than one batch"):
        build_plan("verl", spec, ctx(str(demo_model_dir), rows=40))
    plan = build_plan("verl", spec, ctx(str(demo_model_dir), rows=1000))
    assert plan.steps_per_epoch == 15 and plan.total_steps == 45
