"""The configurator's memory model against real training steps on this machine's GPU (needs CUDA; CI has none).

For each case a child process builds the preset's architecture with random weights directly on the GPU (fp32
parameters, AdamW, bf16 autocast, transformers' own loss, gradient checkpointing on or off), runs three optimizer
steps on random tokens and reports the peak: PyTorch's reserved memory plus the CUDA context the driver holds for
the process (what NVML sees the device gain when the process first touches CUDA, less PyTorch's own reservation). That is what decides an OOM. The prediction
is `estimate_memory` for the same plan (DDP on one GPU, precision fp32-master, loss kernel "hf").

    python bench/bench_compute_gpu.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GiB = 2**30
# (preset, sequence length, micro batch, gradient checkpointing)
CASES = [
    ("Qwen2.5-0.5B", 1024, 4, True),
    ("Qwen2.5-0.5B", 2048, 2, False),
    ("Qwen2.5-1.5B", 2048, 4, True),
    ("Qwen2.5-1.5B", 4096, 1, False),
    ("Qwen2.5-3B", 2048, 2, True),
]
STEPS = 3

CHILD = r"""
import json, sys, time
import pynvml, torch
from transformers import AutoConfig, AutoModelForCausalLM
from platform_core.compute.architectures import PRESETS

name, seq_len, micro_batch, checkpointing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
pynvml.nvmlInit()
handle = pynvml.nvmlDeviceGetHandleByIndex(0)
before = pynvml.nvmlDeviceGetMemoryInfo(handle).used
torch.zeros(1, device="cuda")
torch.cuda.synchronize()
context = pynvml.nvmlDeviceGetMemoryInfo(handle).used - before - torch.cuda.memory_reserved()
fields = {k: v for k, v in PRESETS[name].items() if k != "hf_id"}
config = AutoConfig.for_model(**fields)
config.use_cache = False
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
if checkpointing:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
times = []
for _ in range(%(steps)d):
    tokens = torch.randint(0, config.vocab_size, (micro_batch, seq_len), device="cuda")
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    times.append(time.perf_counter() - started)
print(json.dumps({
    "params": sum(p.numel() for p in model.parameters()),
    "max_allocated": torch.cuda.max_memory_allocated(),
    "max_reserved": torch.cuda.max_memory_reserved(),
    "context": context,
    "step_s": sorted(times)[len(times) // 2],
    "loss": float(loss),
}))
"""


def predicted(name: str, seq_len: int, micro_batch: int, checkpointing: bool, gpu_name: str) -> dict:
    from platform_core.compute.architectures import preset
    from platform_core.compute.gpus import get_gpu
    from platform_core.compute.memory import Plan, estimate_memory

    plan = Plan(
        algorithm="sft",
        seq_len=seq_len,
        micro_batch=micro_batch,
        sharding="ddp",
        gradient_checkpointing=checkpointing,
        precision="fp32-master",
        loss_kernel="hf",
        optimizer="adamw",
    )
    estimate = estimate_memory(preset(name), get_gpu(gpu_name), plan)
    return {"peak": estimate.peak, "breakdown": estimate.to_dict()["breakdown"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="write the results here as well")
    parser.add_argument("--gpu", default="H100", help="the configurator's GPU preset for this card")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_compute_gpu: no CUDA GPU here, nothing measured (run it on a GPU machine)")
        return
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    import transformers

    print(f"transformers {transformers.__version__}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    results = []
    header = f"{'case':<36}{'measured':>10}{'predicted':>11}{'error':>8}{'step':>8}"
    print(header)
    for name, seq_len, micro_batch, checkpointing in CASES:
        label = f"{name} L={seq_len} mb={micro_batch} gc={'on' if checkpointing else 'off'}"
        started = time.time()
        try:
            done = subprocess.run(
                [sys.executable, "-c", CHILD % {"steps": STEPS}, name, str(seq_len), str(micro_batch),
                 "1" if checkpointing else "0"],
                capture_output=True, text=True, env=env, timeout=300,
            )  # fmt: skip
            failure = done.stderr.strip()[-2000:] if done.returncode != 0 else None
        except subprocess.TimeoutExpired:
            failure = "no result within 300 s"
        if failure:
            print(f"{label:<36} failed after {time.time() - started:.0f} s: {failure[-600:]}")
            results.append({"case": label, "failure": failure})
            continue
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        total = measured["max_reserved"] + measured["context"]
        guess = predicted(name, seq_len, micro_batch, checkpointing, args.gpu)
        error = (guess["peak"] - total) / total
        print(f"{label:<36}{total / GiB:>9.2f}G{guess['peak'] / GiB:>10.2f}G{error:>+8.1%}{measured['step_s']:>7.2f}s")
        results.append({"case": label, "measured_bytes": total, "predicted_bytes": guess["peak"], "error": error,
                        "measured": measured, "predicted_breakdown_gib": guess["breakdown"]})  # fmt: skip
    errors = sorted(abs(r["error"]) for r in results if "error" in r)
    if errors:
        print(f"\n|error|: median {errors[len(errors) // 2]:.1%}, max {errors[-1]:.1%} over {len(errors)} cases")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if any("failure" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
