"""`python -m platform_core configure`: the JSON contract of the issue, both modes, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from platform_core.cli import main

CONTRACT = {"fits", "peak_gib_per_gpu", "breakdown", "recommendation", "estimate"}
RECOMMENDATION = {
    "global_batch_size",
    "micro_batch_size_per_gpu",
    "sharding",
    "offload",
    "lora",
    "gradient_checkpointing",
}


def _json(capsys, *args) -> dict:
    assert main(["configure", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_documented_command_line(tmp_path):
    """The exact invocation of the issue, in a fresh interpreter."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "platform_core",
            "--home",
            str(tmp_path),
            "configure",
            "--model",
            "Qwen2.5-7B",
            "--gpu",
            "h100",
            "--gpus",
            "8",
            "--seq-len",
            "2048",
            "--algo",
            "grpo",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert CONTRACT <= set(result) and RECOMMENDATION <= set(result["recommendation"])
    assert isinstance(result["fits"], bool) and isinstance(result["peak_gib_per_gpu"], float)
    assert all(isinstance(v, float) for v in result["breakdown"].values())
    assert isinstance(result["estimate"]["seconds_per_step"], float)


def test_recommend_for_every_algorithm(capsys):
    for algo in ("sft", "sft-lora", "dpo", "grpo", "ppo"):
        result = _json(
            capsys, "--model", "Qwen2.5-1.5B", "--gpu", "a100-80g", "--gpus", "2", "--seq-len", "2048", "--algo", algo
        )
        assert result["fits"] and result["mode"] == "recommend", algo
        assert RECOMMENDATION <= set(result["recommendation"])
        assert abs(sum(result["breakdown"].values()) - result["peak_gib_per_gpu"]) < 0.05


def test_rl_lengths_and_rollout_n(capsys):
    result = _json(
        capsys,
        "--model",
        "Qwen2.5-3B",
        "--gpu",
        "h100",
        "--gpus",
        "4",
        "--prompt-len",
        "1024",
        "--response-len",
        "3072",
        "--rollout-n",
        "8",
        "--algo",
        "grpo",
        "--lora-rank",
        "64",
    )
    rec = result["recommendation"]
    assert result["lengths"] == {"seq_len": 4096, "prompt_len": 1024, "response_len": 3072}
    assert rec["rollout_n"] == 8 and rec["lora"] and rec["lora_rank"] == 64
    assert {"rollout_gpu_memory_utilization", "rollout_tensor_parallel_size", "ppo_mini_batch_size"} <= set(rec)


def test_concrete_configuration_is_predicted(capsys):
    args = ["--model", "Llama-3-8B", "--gpu", "a100-80g", "--gpus", "8", "--seq-len", "4096", "--algo", "sft"]
    result = _json(
        capsys,
        *args,
        "--strategy",
        "zero2",
        "--micro-batch",
        "2",
        "--gradient-checkpointing",
        "off",
        "--offload",
        "optimizer",
        "--fused-ce",
        "on",
        "--packing",
        "on",
        "--precision",
        "bf16",
    )
    rec = result["recommendation"]
    assert result["mode"] == "predict"
    assert rec["sharding"] == "zero2" and rec["micro_batch_size_per_gpu"] == 2 and rec["offload"] == "optimizer"
    assert rec["gradient_checkpointing"] is False and rec["fused_ce"] is True and rec["precision"] == "bf16"
    assert "logits" not in result["breakdown"]


def test_text_output_and_errors(capsys):
    assert main(["configure", "--model", "Qwen2.5-72B", "--gpu", "rtx4090", "--seq-len", "2048", "--algo", "sft"]) == 0
    text = capsys.readouterr().out
    assert "fits: NO" in text and "would fit: more_gpus" in text
    assert main(["configure", "--model", "nope-13b", "--gpu", "h100", "--seq-len", "2048", "--algo", "sft"]) == 2
    assert "unknown model 'nope-13b'" in capsys.readouterr().err
    assert (
        main(
            [
                "configure",
                "--model",
                "Qwen2.5-7B",
                "--gpu",
                "h100",
                "--algo",
                "sft",
                "--micro-batch",
                "2",
                "--seq-len",
                "512",
            ]
        )
        == 2
    )
    assert "--strategy" in capsys.readouterr().err


def test_concrete_flags_without_strategy_are_not_ignored(capsys):
    """--packing, --rollout-tp, --rollout-gpu-memory-utilization, --log-prob-token-budget describe a configuration
    to predict: without --strategy they are refused (exit 2), never silently dropped."""
    args = ["configure", "--model", "Qwen2.5-7B", "--gpu", "h100", "--gpus", "8", "--seq-len", "2048", "--algo", "grpo"]
    for flag, value in (
        ("--packing", "on"),
        ("--rollout-tp", "2"),
        ("--rollout-gpu-memory-utilization", "0.6"),
        ("--log-prob-token-budget", "8192"),
    ):
        assert main([*args, flag, value]) == 2, flag
        err = capsys.readouterr().err
        assert "--strategy" in err and flag in err, err
    result = _json(capsys, *args[1:], "--rollout-tp", "2", "--strategy", "fsdp")
    assert result["mode"] == "predict" and result["recommendation"]["rollout_tensor_parallel_size"] == 2


def test_rollout_fraction_too_small_for_the_weights(capsys):
    result = _json(
        capsys,
        *("--model", "Qwen2.5-7B", "--gpu", "rtx5090", "--seq-len", "4096", "--algo", "grpo", "--strategy", "fsdp"),
        *("--lora-rank", "32", "--offload", "all", "--precision", "bf16", "--rollout-gpu-memory-utilization", "0.4"),
    )
    assert result["fits"] is False and result["problems"][0]["kind"] == "rollout_kv_too_small"
    assert (
        main(
            ["configure", "--model", "Qwen2.5-7B", "--gpu", "rtx5090", "--seq-len", "4096", "--algo", "grpo"]
            + ["--strategy", "fsdp", "--lora-rank", "32", "--offload", "all", "--rollout-gpu-memory-utilization", "0.4"]
        )
        == 0
    )
    assert "fits: NO" in capsys.readouterr().out


def test_samples_flag_and_v100(capsys):
    args = ["--model", "Qwen2.5-0.5B", "--gpu", "v100", "--seq-len", "1024", "--algo", "sft", "--global-batch", "64"]
    default = _json(capsys, *args)
    assert "samples=10000" in default["estimate"]["assumptions"] and default["estimate"]["total_steps"] == 157
    given = _json(capsys, *args, "--samples", "6400")
    assert "samples=6400" in given["estimate"]["assumptions"] and given["estimate"]["total_steps"] == 100
    assert given["recommendation"]["precision"] == "fp16" and given["job_prefill"]["model_dtype"] == "float32"
