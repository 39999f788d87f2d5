"""The platform plugin's cost inside a training run: the demo SFT run (real verl trainer on the CPU) with and
without the plugin's hooks, side by side, alternating, in one run of this script.

"Without hooks" loads the plugin only for the CPU platform (no control, status or gradient-norm environment), so
no hook is installed; "with hooks" is how the platform runs jobs (status + pause polling every step, per-layer
gradient norms every step). Step times come from the arrival of each step in verl's own metrics file, polled every
20 ms; the first steps (warm-up) are dropped. The gradient-norm hook also measures its own CPU time per step.

    python bench/bench_jobs_plugin_overhead.py [--steps 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_plan(home: Path, steps: int, hooks: bool, run_dir: Path):
    from platform_core.context import get_platform
    from platform_core.jobs.data import converted_dataset
    from platform_core.jobs.engines import RunContext
    from platform_core.jobs.engines import build_plan as plan_for
    from platform_core.jobs.layout import build_local_kit
    from platform_core.jobs.service import load_spec_file
    from platform_core.jobs.specs import parse_spec

    platform = get_platform(home)
    fields = load_spec_file(str(home / "demo/specs/sft.yaml"))
    fields.update(total_steps=steps, save_freq=steps, val_dataset=None, test_freq=0, gradnorm_every=1 if hooks else 0)
    spec = parse_spec(fields)
    data, rows = converted_dataset(platform, "demo-sft", "verl_sft")
    ctx = RunContext(
        job_id=0,
        attempt=1,
        job_dir=str(run_dir),
        attempt_dir=str(run_dir / "attempt-1"),
        checkpoint_dir=str(run_dir / "checkpoints"),
        config_dir=str(run_dir / "config"),
        plugin_dir=str(build_local_kit(platform.workspace.cache)),
        python=sys.executable,
        model_path=str(home / "models/demo-qwen2-tiny"),
        train_files=str(data),
        val_files=None,
        device="cpu",
        train_rows=rows,
        extra_env={"OMP_NUM_THREADS": "2"},
    )
    plan = plan_for("verl", spec, ctx)
    env = dict(plan.env)
    if not hooks:
        for key in (
            "PLATFORM_CONTROL_FILE",
            "PLATFORM_STATUS_FILE",
            "PLATFORM_GRADNORM_FILE",
            "PLATFORM_GRADNORM_EVERY",
        ):
            env.pop(key, None)
    return plan.argv, env


def run_once(home: Path, steps: int, hooks: bool) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="bench-plugin-"))
    argv, env = build_plan(home, steps, hooks, run_dir)
    (run_dir / "attempt-1").mkdir(parents=True)
    metrics = run_dir / "attempt-1" / "metrics.jsonl"
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=run_dir
    )
    arrivals: dict[int, float] = {}
    offset = 0
    while proc.poll() is None or offset < (metrics.stat().st_size if metrics.exists() else 0):
        if metrics.exists():
            with open(metrics, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            offset += len(complete)
            now = time.perf_counter()
            for line in complete.splitlines():
                arrivals.setdefault(json.loads(line)["step"], now)
        time.sleep(0.02)
    assert proc.returncode == 0, f"training failed (hooks={hooks})"
    ordered = [arrivals[s] for s in sorted(arrivals)]
    warm = 3
    per_step = [(b - a) for a, b in zip(ordered[warm:-1], ordered[warm + 1 :], strict=False)]
    hook_ms = []
    gradnorms = run_dir / "attempt-1" / "gradnorms.jsonl"
    if gradnorms.exists():
        hook_ms = [json.loads(line)["hook_cpu_ms"] for line in gradnorms.read_text().splitlines()]
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    return {"step_s": statistics.median(per_step), "mean_step_s": statistics.mean(per_step), "hook_ms": hook_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    home = Path(tempfile.mkdtemp(prefix="bench-plugin-ws-"))
    os.environ["PLATFORM_HOME"] = str(home)
    subprocess.run(
        [sys.executable, "-m", "platform_core", "demo", "init"],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    results = {True: [], False: []}
    for round_ in range(args.rounds):
        for hooks in (False, True) if round_ % 2 == 0 else (True, False):
            result = run_once(home, args.steps, hooks)
            results[hooks].append(result)
            print(
                f"round {round_ + 1} hooks={'on ' if hooks else 'off'}: median step {result['step_s'] * 1000:.1f} ms"
                f" (mean {result['mean_step_s'] * 1000:.1f} ms)",
                flush=True,
            )
    off = statistics.median(r["step_s"] for r in results[False])
    on = statistics.median(r["step_s"] for r in results[True])
    hook = statistics.median(ms for r in results[True] for ms in r["hook_ms"][3:])
    print(
        f"\nmedian step time: hooks off {off * 1000:.1f} ms, hooks on {on * 1000:.1f} ms, "
        f"difference {100 * (on - off) / off:+.2f}% (noise included)"
    )
    print(f"gradient-norm hook, its own CPU time: {hook:.2f} ms per step = {100 * hook / 1000 / on:.2f}% of a step")
    import shutil

    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
