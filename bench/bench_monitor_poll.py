"""Benchmark: a monitoring poll costs the new bytes only, and the loss chart of 100,000 steps draws in under 1 s.

Builds two run directories in a temp dir -- a 1 MB stdout.log with a 100-step metrics.jsonl (baseline) and a 1 GB
stdout.log with a 100,000-step metrics.jsonl -- reads each fully once with a RunMonitor, then appends one training
step (one metrics line, its console line and a few log lines) to both and times the poll that picks it up,
alternating between the two. Then times building the loss figure (EMA + min/max downsampling + Plotly) for 100,000
steps and serialising it with fig.to_json(). The files are deleted at the end.

    .venv/bin/python bench/bench_monitor_poll.py [--log-mb 1024] [--steps 100000] [--repeats 40]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.charts import build_line_figure  # noqa: E402
from platform_core.monitor.canonical import resolve  # noqa: E402
from platform_core.monitor.files import LocalFiles  # noqa: E402
from platform_core.monitor.run import RunMonitor  # noqa: E402

LOG_BLOCK = [
    "\x1b[36m(TaskRunnerV1 pid=16724)\x1b[0m Training Progress:  12%|█▏        | 52/435 [10:41<1:18:42, 12.33s/it]",
    "\x1b[36m(WorkerDict pid=17002, ip=10.0.0.2)\x1b[0m WARNING 11-26 10:03:02 [config.py:1474] Chunked prefill is "
    "enabled with max_num_batched_tokens=8192. [repeated 7x across cluster]",
    "[2026-11-26 10:04:10,551][/opt/verl/verl/utils/checkpoint/fsdp_checkpoint_manager.py][INFO] - [Rank 0] Saved "
    "model to /work/jobs/31/ckpt/global_step_50/model_world_size_8_rank_0.pt",
    "/opt/venv/lib/python3.11/site-packages/torch/distributed/c10d_logger.py:83: FutureWarning: "
    "`torch.distributed.all_gather_into_tensor` is deprecated.",
    "  return func(*args, **kwargs)",
]


def metrics_record(step: int) -> dict:
    """A verl GRPO-like record (25 metrics)."""
    x = step / 1000
    return {
        "actor/pg_loss": -0.01 * math.sin(x),
        "actor/pg_clipfrac": 0.002,
        "actor/ppo_kl": 1e-4 * (1 + math.cos(x)),
        "actor/entropy": 0.6 - 0.001 * x,
        "actor/kl_loss": 0.001 * x,
        "actor/grad_norm": 0.2 + 0.05 * math.sin(3 * x),
        "actor/lr": 1e-6,
        "critic/score/mean": min(1.0, 0.2 + 0.01 * x),
        "critic/score/max": 1.0,
        "critic/score/min": 0.0,
        "critic/rewards/mean": 0.5,
        "critic/advantages/mean": 0.0,
        "critic/advantages/max": 2.1,
        "critic/advantages/min": -2.1,
        "response_length/mean": 300 + 10 * math.sin(x),
        "response_length/max": 1024,
        "response_length/min": 12,
        "response_length/clip_ratio": 0.01,
        "prompt_length/mean": 120.5,
        "timing_s/step": 12.3,
        "timing_s/gen": 7.1,
        "perf/throughput": 1234.5,
        "perf/time_per_step": 12.3,
        "training/global_step": step,
        "training/epoch": step // 435,
    }


def console_line(step: int, record: dict) -> str:
    values = " - ".join(f"{k}:{v!r}" for k, v in record.items())
    return f"\x1b[36m(TaskRunnerV1 pid=16724)\x1b[0m step:{step} - {values}"


def make_run(directory: Path, steps: int, log_bytes: int) -> None:
    directory.mkdir(parents=True)
    with open(directory / "metrics.jsonl", "w") as out:
        for step in range(1, steps + 1):
            out.write(json.dumps({"step": step, "data": metrics_record(step)}) + "\n")
    block = ("\n".join(LOG_BLOCK) + "\n" + console_line(1, metrics_record(1)) + "\n").encode()
    chunk = block * max(1, (1 << 20) // len(block))
    written = 0
    with open(directory / "stdout.log", "wb") as out:
        while written < log_bytes:
            out.write(chunk)
            written += len(chunk)


def append_step(directory: Path, step: int) -> None:
    record = metrics_record(step)
    with open(directory / "stdout.log", "a") as log:
        log.write("\n".join(LOG_BLOCK[:3]) + "\n" + console_line(step, record) + "\n")
    with open(directory / "metrics.jsonl", "a") as metrics:
        metrics.write(json.dumps({"step": step, "data": record}) + "\n")


def first_read(monitor: RunMonitor) -> tuple[float, int]:
    start = time.perf_counter()
    polls = 0
    while True:
        polls += 1
        if not monitor.poll().more:
            return time.perf_counter() - start, polls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-mb", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    try:
        small, large = root / "small", root / "large"
        t0 = time.perf_counter()
        make_run(small, 100, 1 << 20)
        make_run(large, args.steps, args.log_mb << 20)
        print(
            f"generated the files in {time.perf_counter() - t0:.1f} s: "
            f"large log {(large / 'stdout.log').stat().st_size / 2**30:.2f} GiB, "
            f"large metrics {(large / 'metrics.jsonl').stat().st_size / 2**20:.0f} MiB ({args.steps} steps)"
        )
        monitors = {"small": RunMonitor(LocalFiles(), str(small)), "large": RunMonitor(LocalFiles(), str(large))}
        for name, monitor in monitors.items():
            seconds, polls = first_read(monitor)
            print(f"initial full read, {name}: {seconds:.2f} s in {polls} polls (last step {monitor.store.last_step})")
        next_step = {"small": 101, "large": args.steps + 1}
        timings: dict[str, list[float]] = {"small": [], "large": []}
        for _ in range(args.repeats):
            for name, directory in (("small", small), ("large", large)):
                append_step(directory, next_step[name])
                start = time.perf_counter()
                result = monitors[name].poll()
                timings[name].append(time.perf_counter() - start)
                assert result.records == 1 and monitors[name].store.last_step == next_step[name], result
                next_step[name] += 1
        med = {name: statistics.median(values) * 1000 for name, values in timings.items()}
        p90 = {name: sorted(values)[int(0.9 * len(values))] * 1000 for name, values in timings.items()}
        print()
        print(f"{'one poll picking up one new step':40s} {'median ms':>10s} {'p90 ms':>10s}")
        print(f"{'baseline: 1 MB log, 100 steps':40s} {med['small']:10.2f} {p90['small']:10.2f}")
        label = f"{args.log_mb} MB log, {args.steps} steps"
        print(f"{label:40s} {med['large']:10.2f} {p90['large']:10.2f}")
        ratio = med["large"] / med["small"]
        print(f"ratio large / baseline (median): {ratio:.2f}x  (target: within 2x) -> {'OK' if ratio <= 2 else 'FAIL'}")

        store = monitors["large"].store
        raw = resolve(store.names())["policy_loss"]
        draw = []
        for _ in range(5):
            start = time.perf_counter()
            steps, values = store.series(raw)
            figure = build_line_figure({"policy_loss": (steps, values)}, smoothing=0.6, title="loss")
            payload = figure.to_json()
            draw.append(time.perf_counter() - start)
        print()
        print(
            f"loss chart for {steps.size} steps (series + EMA + downsampling + Plotly + to_json): "
            f"median {statistics.median(draw) * 1000:.0f} ms, max {max(draw) * 1000:.0f} ms, "
            f"{len(payload) / 1024:.0f} KiB JSON, {sum(len(t.x) for t in figure.data)} points drawn "
            f"(target: under 1 s) -> {'OK' if max(draw) < 1 else 'FAIL'}"
        )
        return 0 if ratio <= 2 and max(draw) < 1 else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
