"""Benchmark: streaming SWA of 5 checkpoints of a ~1 GB model against "load all five" and a plain file copy.

Builds 5 random fp32 checkpoints of a Qwen2-shaped model (about 244M parameters, 0.98 GB each, 2 shards each)
in a temporary directory, then measures, each in its own subprocess:

- streaming: `platform_core.surgery.average.average_checkpoints` (uniform weights, 500 MB output shards)
- naive: `safetensors.torch.load_file` of all five state dicts, then the mean, then `save_file`
- copy: `shutil.copyfile` of the same input bytes (the I/O floor)

Peak memory is the child's peak resident set size (`ru_maxrss`) minus its resident size right before the work
(Python, torch and safetensors loaded), compared with the bound "2 x largest tensor + one output shard".
Throughput is input bytes / wall time. Everything is deleted afterwards.

    .venv/bin/python bench/bench_surgery_average.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIG = {
    "vocab_size": 32000,
    "hidden_size": 1536,
    "intermediate_size": 4096,
    "num_hidden_layers": 8,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
    "max_position_embeddings": 2048,
}
CHECKPOINTS = 5
INPUT_SHARD_BYTES = 500_000_000
OUTPUT_SHARD_BYTES = 500_000_000


def tensor_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of the model's tensors, from a model built on the meta device (no memory)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(Qwen2Config(**CONFIG))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "lm_head.weight"}


def build_checkpoint(out: Path, seed: int, shapes: dict[str, tuple[int, ...]]) -> int:
    """Write one random fp32 checkpoint as sharded safetensors with an index; return its weight bytes."""
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2Config

    out.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, shape in shapes.items():
        nbytes = 4 * int(torch.Size(shape).numel())
        if shards[-1] and size + nbytes > INPUT_SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = torch.randn(shape, generator=generator) * 0.02
        size += nbytes
    weight_map, total = {}, 0
    for number, shard in enumerate(shards, start=1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / file), metadata={"format": "pt"})
        total += (out / file).stat().st_size
        weight_map.update(dict.fromkeys(shard, file))
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    config = Qwen2Config(**CONFIG)
    config.architectures = ["Qwen2ForCausalLM"]
    config.save_pretrained(out)
    return total


def largest_tensor(model_dir: Path) -> tuple[int, int]:
    """(bytes of the largest tensor, parameter count) of a checkpoint, from its safetensors headers."""
    from platform_core.surgery.compat import tensor_index

    index = tensor_index(model_dir)
    return max(i.nbytes for i in index.values()), sum(i.nbytes // 4 for i in index.values())


def _rss_now() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakSampler:
    """Samples this process's resident set size every few milliseconds in a thread; `peak` is the highest seen."""

    def __init__(self, interval_s: float = 0.002):
        import threading

        self.interval_s = interval_s
        self.peak = _rss_now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_now())
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_now())


def child(mode: str, inputs: list[Path], out: Path) -> dict:
    """Run one approach in this (fresh) process; return wall time and memory figures.

    The peak is both sampled (every 2 ms) and read from ru_maxrss; the parent is a small process that never
    loads tensors, so the children do not inherit a high-water mark through fork.
    """
    import torch  # noqa: F401 - loaded before the baseline so that it is not counted as work
    from safetensors.torch import load_file, save_file

    from platform_core.surgery.average import average_checkpoints
    from platform_core.surgery.compat import weight_files

    out.mkdir(parents=True, exist_ok=True)
    baseline = _rss_now()
    started = time.perf_counter()
    with PeakSampler() as sampler:
        if mode == "streaming":
            average_checkpoints(inputs, out, [1 / len(inputs)] * len(inputs), OUTPUT_SHARD_BYTES)
        elif mode == "naive":
            states = []
            for path in inputs:
                state = {}
                for file in weight_files(path):
                    state.update(load_file(str(file)))
                states.append(state)
            mean = {k: sum(s[k] for s in states) / len(states) for k in states[0]}
            save_file(mean, str(out / "model.safetensors"), metadata={"format": "pt"})
        elif mode == "copy":
            for number, path in enumerate(inputs):
                for file in weight_files(path):
                    shutil.copyfile(file, out / f"{number}-{file.name}")
        elif mode == "read":
            buffer = bytearray(64 * 1024 * 1024)
            for path in inputs:
                for file in weight_files(path):
                    with open(file, "rb", buffering=0) as handle:
                        while handle.readinto(buffer):
                            pass
    seconds = time.perf_counter() - started
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return {"mode": mode, "seconds": seconds, "baseline_rss": baseline, "peak_rss": max(sampler.peak, maxrss)}


def build_all(root: Path) -> None:
    """Build the input checkpoints (run in a child, so the parent stays small)."""
    shapes = tensor_shapes()
    for i in range(CHECKPOINTS):
        path = root / f"global_step_{(i + 1) * 100}"
        if not path.exists():
            build_checkpoint(path, seed=i, shapes=shapes)


def run_child(mode: str, inputs: list[Path], out: Path) -> dict:
    argv = [sys.executable, __file__, "--child", mode, "--out", str(out), *map(str, inputs)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["build", "streaming", "naive", "copy", "read"])
    parser.add_argument("--out")
    parser.add_argument("--keep", help="build the checkpoints here and keep them")
    parser.add_argument("inputs", nargs="*")
    args = parser.parse_args()
    if args.child == "build":
        build_all(Path(args.out))
        return
    if args.child:
        print(json.dumps(child(args.child, [Path(p) for p in args.inputs], Path(args.out))))
        return

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_surgery_"))
    try:
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run([sys.executable, __file__, "--child", "build", "--out", str(root)], env=env, check=True)
        inputs = sorted(root.glob("global_step_*"), key=lambda p: int(p.name.split("_")[-1]))
        headers = [json.loads((p / "model.safetensors.index.json").read_text()) for p in inputs]
        input_bytes = sum(h["metadata"]["total_size"] for h in headers)
        largest, params = largest_tensor(inputs[0])
        print(
            f"built {CHECKPOINTS} checkpoints of {params / 1e6:.0f}M fp32 parameters "
            f"({input_bytes / CHECKPOINTS / 1e9:.2f} GB each) in {time.perf_counter() - started:.0f} s"
        )
        modes = ("read", "copy", "streaming", "naive")
        results = {mode: run_child(mode, inputs, root / f"out-{mode}") for mode in modes}
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    bound = 2 * largest + OUTPUT_SHARD_BYTES
    mb = 1e6
    print(
        f"largest tensor {largest / mb:.0f} MB; output shard {OUTPUT_SHARD_BYTES / mb:.0f} MB; "
        f"bound 2 x largest + shard = {bound / mb:.0f} MB; input {input_bytes / mb:.0f} MB"
    )
    print(f"{'approach':<12}{'time s':>9}{'MB/s':>9}{'peak RSS MB':>13}{'work MB':>10}{'x bound':>9}")
    for mode, r in results.items():
        work = r["peak_rss"] - r["baseline_rss"]
        print(
            f"{mode:<12}{r['seconds']:>9.1f}{input_bytes / mb / r['seconds']:>9.0f}{r['peak_rss'] / mb:>13.0f}"
            f"{work / mb:>10.0f}{work / bound:>9.2f}"
        )
    streaming, naive, copy, read = (results[m] for m in ("streaming", "naive", "copy", "read"))
    saving = (naive["peak_rss"] - naive["baseline_rss"]) / (streaming["peak_rss"] - streaming["baseline_rss"])
    print(
        f"streaming uses {saving:.1f}x less working memory than loading all five; its throughput is "
        f"{copy['seconds'] / streaming['seconds']:.2f}x that of a plain copy of the same bytes and "
        f"{read['seconds'] / streaming['seconds']:.2f}x that of only reading them"
    )


if __name__ == "__main__":
    main()
