"""Page speed with a large store: 1,000 jobs, 200 datasets and 100 eval runs (target: every page's first render and
every job-list refresh under 1.5 s).

The store is filled with records the way the services write them (plus one real demo dataset file shared by the
dataset records); each page is rendered with Streamlit's AppTest (script run time, the server's share of a page
load), three times, reporting the first (cold caches) and the median.

    python bench/bench_pages_speed.py [--jobs 1000 --datasets 200 --evals 100]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACTIVE_JOBS = 10  # of the jobs, this many are running (a live process, real run files)
# The process the running jobs point at: alive for the whole benchmark, so their refresh reads files, not a death.
KEEPER = subprocess.Popen(["sleep", "86400"])
atexit.register(KEEPER.kill)
sys.path.insert(0, str(REPO))
PAGES = ["jobs", "datasets", "configurator", "surgery", "evaluation", "settings"]


def fill(home: Path, jobs: int, datasets: int, evals: int) -> None:
    from platform_core.context import get_platform

    platform = get_platform(home)
    store = platform.store
    template = store.find_one("datasets", "name = ?", ("demo-sft",))
    model = store.find_one("models", "name = ?", ("demo-qwen2-tiny",))
    now = time.time()
    with store.transaction() as conn:
        for i in range(datasets):
            conn.execute(
                "INSERT INTO datasets (name, type, content_hash, path, original_name, format, rows, columns, "
                "size_bytes, field_config, description, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f"bench-ds-{i}",
                    template["type"],
                    template["content_hash"],
                    template["path"],
                    template["original_name"],
                    template["format"],
                    template["rows"],
                    json.dumps(template["columns"]),
                    template["size_bytes"],
                    json.dumps(template["field_config"]),
                    "bench",
                    now - i,
                ),
            )
        states = ["completed", "failed", "stopped", "paused", "pending"]
        for i in range(jobs):
            spec = {
                "fields": {
                    "name": f"bench-job-{i}",
                    "algorithm": "sft",
                    "model": "demo-qwen2-tiny",
                    "dataset": "demo-sft",
                    "target": "local",
                },
                "model_id": model["id"],
                "dataset_id": template["id"],
                "engine_reason": "bench",
            }
            conn.execute(
                "INSERT INTO jobs (name, algorithm, engine, target, spec, state, step, total_steps, output_dir, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f"bench-job-{i}",
                    ["sft", "grpo", "ppo", "dpo"][i % 4],
                    "verl",
                    "local",
                    json.dumps(spec),
                    states[i % len(states)],
                    i % 100,
                    100,
                    str(home / "outputs" / f"job-{i}"),
                    now - i,
                    now - i,
                ),
            )
        for i in range(ACTIVE_JOBS):  # running jobs: a list refresh polls their run files, as it does for real
            run_dir = home / "outputs" / f"active-{i}" / "attempt-1"
            run_dir.mkdir(parents=True)
            (run_dir / "supervisor.json").write_text(json.dumps({"state": "running", "pid": KEEPER.pid}))
            (run_dir / "status.json").write_text(json.dumps({"step": 250, "total_steps": 1000}))
            with open(run_dir / "metrics.jsonl", "w") as out:
                for step in range(1, 251):
                    data = {"train/loss": 5.0 / step, "train/lr": 1e-5, "train/grad_norm": 1.0}
                    out.write(json.dumps({"step": step, "data": data}) + "\n")
            (run_dir / "stdout.log").write_text("".join(f"step:{k} - train/loss:{5.0 / k}\n" for k in range(1, 251)))
            spec = {
                "fields": {"name": f"active-{i}", "algorithm": "sft", "model": "demo-qwen2-tiny",
                           "dataset": "demo-sft", "target": "local"},
                "model_id": model["id"],
                "dataset_id": template["id"],
                "engine_reason": "bench",
            }  # fmt: skip
            job_id = conn.execute(
                "INSERT INTO jobs (name, algorithm, engine, target, spec, state, step, total_steps, output_dir, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (f"active-{i}", "sft", "verl", "local", json.dumps(spec), "running", 250, 1000,
                 str(run_dir.parent), now + i, now + i),
            ).lastrowid  # fmt: skip
            conn.execute(
                "INSERT INTO runs (job_id, attempt, state, pid, run_dir, log_path, metrics_path, started_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (job_id, 1, "running", KEEPER.pid, str(run_dir), str(run_dir / "stdout.log"),
                 str(run_dir / "metrics.jsonl"), now - 600),
            )  # fmt: skip
        eval_set = store.find_one("datasets", "name = ?", ("demo-eval",))
        for i in range(evals):
            summary = {
                "overall": {"accuracy": {"value": 0.5, "se": 0.1, "ci": [0.3, 0.7], "n": 56}},
                "per_category": {},
            }
            conn.execute(
                "INSERT INTO eval_runs (name, model_ref, model_path, dataset_id, metrics, gen_params, state, progress, "
                "output_dir, summary, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f"bench-eval-{i}",
                    "demo-qwen2-tiny",
                    model["path"],
                    eval_set["id"],
                    '["accuracy"]',
                    "{}",
                    "completed",
                    1.0,
                    str(home / "outputs" / "eval" / f"run-{i}"),
                    json.dumps(summary),
                    now - i,
                    now - i,
                ),
            )


def render(page: str, runs: int = 3) -> list[float]:
    """Seconds of the script run that draws a page in a new session (entry script + page), warm imports.

    AppTest scans the installed packages for components when it first runs (about 1.4 s here), which a running
    server did once at start; so each session first renders the default page, and the timed run is the switch to
    the page under test: one full script run, as a browser's page load triggers.
    """
    from streamlit.testing.v1 import AppTest

    times = []
    for _ in range(runs):
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=120)
        at.session_state["lang"] = "en"
        at.run()
        at.switch_page(f"../pages/{page}.py")
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        assert not at.exception, [e.value for e in at.exception]
        if page == "jobs":  # a job-list refresh: the list fragment reruns
            started = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - started)
    return times


def store_size_args() -> argparse.Namespace:
    """--jobs / --datasets / --evals: how large a store the page benchmarks fill (the issue's sizes by default)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--evals", type=int, default=100)
    return parser.parse_args()


def main() -> None:
    args = store_size_args()
    home = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    os.environ["PLATFORM_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    subprocess.run(
        [sys.executable, "-m", "platform_core", "demo", "init"],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    fill(home, args.jobs, args.datasets, args.evals)
    print(
        f"store: {args.jobs} jobs ({ACTIVE_JOBS} running, with run files), {args.datasets} datasets, "
        f"{args.evals} eval runs\n"
    )
    print(f"{'page':<14}{'first render':>14}{'median':>10}{'max':>8}")
    worst = 0.0
    for page in PAGES:
        times = render(page)
        worst = max(worst, max(times))
        print(f"{page:<14}{times[0]:>13.2f}s{statistics.median(times):>9.2f}s{max(times):>7.2f}s")
    print(f"\nslowest script run: {worst:.2f} s (target < 1.5 s; job-list refreshes are among the jobs runs)")


if __name__ == "__main__":
    main()
