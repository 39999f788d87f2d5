"""Job specs and engines: invalid combinations refused with the reason; generated verl commands pass verl's own
config composition and validation (real Hydra + verl.utils.config.validate_config, no GPU needed)."""

from __future__ import annotations

import pytest
from tests_helpers import JOB_BASE as BASE
from tests_helpers import run_context as ctx

from platform_core.errors import InvalidInput
from platform_core.jobs.engines import build_plan, choose_engine
from platform_core.jobs.specs import parse_spec
from platform_core.jobs.validate import validate_verl_overrides


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


def test_ppo_without_a_reward_model_is_refused_where_it_would_run_on_trl():
    """TRL's PPO trainer takes a reward model; a rule reward alone would fail at the runner's first line."""
    ppo = parse_spec({"name": "j", "algorithm": "ppo", **BASE, "batch_size": 16, "micro_batch_size_per_gpu": 4})
    with pytest.raises(InvalidInput, match=r"PPO on TRL \(no GPU\) needs reward_model_path; use GRPO"):
        choose_engine(ppo, False)
    with pytest.raises(InvalidInput, match="PPO on TRL needs reward_model_path"):
        choose_engine(parse_spec({**ppo.model_dump(), "engine": "trl"}), True)
    assert choose_engine(ppo, True)[0] == "verl"  # verl's PPO scores with the rule reward
    with_rm = parse_spec({**ppo.model_dump(), "reward_model_path": "/models/rm"})
    assert choose_engine(with_rm, False)[0] == "trl"


def test_ppo_without_a_reward_model_is_refused_by_job_validate(demo_platform):
    from platform_core.jobs.service import create_job, load_spec_file, preview_job

    spec = load_spec_file(str(demo_platform.workspace.demo / "specs" / "ppo.yaml"))
    spec.pop("reward_model_path", None)
    with pytest.raises(InvalidInput, match=r"needs reward_model_path; use GRPO with a rule reward, or a GPU target"):
        preview_job(demo_platform, {**spec, "target": "local"})
    with pytest.raises(InvalidInput, match="needs reward_model_path"):
        create_job(demo_platform, {**spec, "target": "local"}, validate=False)
    assert demo_platform.store.count("jobs") == 0


def test_multi_node_runs_are_refused_where_they_cannot_span_nodes():
    with pytest.raises(InvalidInput, match="multi-node SFT .* torchrun --standalone"):
        parse_spec({"name": "j", "algorithm": "sft", **BASE, "nodes": 2, "batch_size": 32})
    with pytest.raises(InvalidInput, match="multi-node DPO"):
        parse_spec({"name": "j", "algorithm": "dpo", **BASE, "nodes": 2})
    grpo = {"name": "j", "algorithm": "grpo", **BASE, "nodes": 2, "gpus_per_node": 2, "batch_size": 64}
    with pytest.raises(InvalidInput, match="TRL runs on one machine"):
        choose_engine(parse_spec(grpo), False)
    with pytest.raises(InvalidInput, match="needs the Ray target"):
        choose_engine(parse_spec({**grpo, "target": "local"}), True)
    with pytest.raises(InvalidInput, match="needs the Ray target"):
        choose_engine(parse_spec({**grpo, "target": "ssh:gpu1"}), True)
    assert choose_engine(parse_spec({**grpo, "target": "ray"}), True)[0] == "verl"


def test_the_retired_reward_model_gradient_checkpointing_key_still_loads():
    """It reached no engine and was removed; job specs stored before that keep loading (the key is dropped)."""
    from platform_core.jobs.service import job_spec
    from platform_core.jobs.specs import PPOSpec

    assert "reward_model_gradient_checkpointing" not in PPOSpec.model_fields
    fields = {"name": "j", "algorithm": "ppo", **BASE, "reward_model_gradient_checkpointing": False}
    spec = job_spec({"id": 3, "spec": {"fields": fields}})
    assert isinstance(spec, PPOSpec) and "reward_model_gradient_checkpointing" not in spec.model_dump()
    with pytest.raises(InvalidInput, match="reward_model_gradient_checkpointing"):
        parse_spec({"name": "j", "algorithm": "grpo", **BASE, "reward_model_gradient_checkpointing": True})


def test_configurator_token_budgets_reach_verl_and_pass_its_validation(demo_model_dir):
    """log_prob_max_token_len_per_gpu (rollout/ref) and critic_max_token_len_per_gpu (critic train + forward) from
    the configurator's prefill replace the 2 x actor budget default."""
    from platform_core.jobs.service import spec_from_prefill

    prefill = spec_from_prefill(
        {
            "algorithm": "ppo",
            "train_batch_size": 32,
            "rollout_n": 4,
            "gpus_per_node": 4,
            "use_dynamic_bsz": True,
            "max_token_len_per_gpu": 6000,
            "log_prob_max_token_len_per_gpu": 20000,
            "critic_max_token_len_per_gpu": 9000,
        }
    )
    assert prefill["log_prob_max_token_len_per_gpu"] == 20000 and prefill["critic_max_token_len_per_gpu"] == 9000
    ppo = parse_spec({"name": "j", **BASE, **prefill})
    plan = build_plan("verl", ppo, ctx(str(demo_model_dir)))
    a = "actor_rollout_ref"
    assert {
        f"{a}.actor.ppo_max_token_len_per_gpu=6000",
        f"{a}.rollout.log_prob_max_token_len_per_gpu=20000",
        f"{a}.ref.log_prob_max_token_len_per_gpu=20000",
        "critic.ppo_max_token_len_per_gpu=9000",
        "critic.forward_max_token_len_per_gpu=9000",
    } <= set(plan.overrides)
    validate_verl_overrides(plan.config_name, plan.overrides)
    # Empty = today's default: twice the actor's budget.
    default = parse_spec({"name": "j", **BASE, **{**prefill, "log_prob_max_token_len_per_gpu": None,
                                                  "critic_max_token_len_per_gpu": None}})  # fmt: skip
    overrides = set(build_plan("verl", default, ctx(str(demo_model_dir))).overrides)
    assert {f"{a}.ref.log_prob_max_token_len_per_gpu=12000", "critic.forward_max_token_len_per_gpu=12000"} <= overrides
    # GRPO has no critic: the key is dropped from its prefill, and the log-prob budget still arrives.
    grpo = spec_from_prefill({"algorithm": "grpo", "log_prob_max_token_len_per_gpu": 16384,
                              "critic_max_token_len_per_gpu": 9000})  # fmt: skip
    assert grpo == {"algorithm": "grpo", "log_prob_max_token_len_per_gpu": 16384}
    assert "log_prob_max_token_len_per_gpu" not in spec_from_prefill({"algorithm": "sft",
                                                                       "log_prob_max_token_len_per_gpu": 1})  # fmt: skip


def test_trl_on_several_gpus_runs_one_process_per_gpu(demo_model_dir):
    """The TRL batch arithmetic divides by the GPU count, so a multi-GPU TRL run is launched with torchrun (DDP)."""
    spec = parse_spec({"name": "j", **BASE, "algorithm": "dpo", "batch_size": 32, "gpus_per_node": 4})
    plan = build_plan("trl", spec, ctx(str(demo_model_dir)))
    assert plan.argv[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=4"]
    assert plan.argv[6].endswith("/trl_runner.py")
    one = parse_spec({"name": "j", **BASE, "algorithm": "dpo", "batch_size": 32, "gpus_per_node": 1})
    assert build_plan("trl", one, ctx(str(demo_model_dir))).argv[1].endswith("/trl_runner.py")
    assert build_plan("trl", spec, ctx(str(demo_model_dir), device="cpu")).argv[1].endswith("/trl_runner.py")
