"""Benchmark: the full dataset audit against a plain `datasets` + tokenizer `.map` baseline, side by side.

    .venv/bin/python bench/bench_datasets_audit.py               # 1,000,000 rows (the figure in notes/datasets.md)
    .venv/bin/python bench/bench_datasets_audit.py --rows 50000  # a quick run

It writes an SFT JSON Lines file (prompt ~200 characters, response ~400, a quarter of the rows in Chinese) with
planted defects (nulls, whitespace-only fields, exact and near duplicates, length outliers), builds the demo
tokenizer, and then runs, each in its own process so peak memory is measured cleanly (ru_maxrss):

    audit     platform_core.datasets.audit.audit_file: load + validate + every check + character statistics + token
              statistics (prompt, response, total) with the demo tokenizer + truncation at a max length
    baseline  datasets.load_dataset("json") and .map(tokenizer, batched=True) producing input_ids, as training
              tools preprocess, then the lengths of those ids and their percentiles
    lean      the same, but the map returns only the lengths (the least a `.map` baseline can do)

Targets (issue 3): audit at least 2x faster than the baseline; audit peak memory at most 3x the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EN_WORDS = (
    "the model learns from data and every training step updates its weights using the gradient of a loss "
    "function computed on a batch of examples while the optimizer keeps running averages of past gradients "
    "reward policy value advantage critic actor rollout sampling temperature context window attention head "
    "layer norm residual stream embedding vocabulary token sequence length batch size learning rate warmup "
    "schedule cosine decay checkpoint evaluation benchmark accuracy precision recall dataset prompt response "
    "question answer explain describe compare why how what when which please briefly in detail"
).split()
ZH_CHARS = list(
    "机器学习模型数据训练优化梯度损失函数奖励策略价值注意力层归一化残差嵌入词表序列长度批量学习率预热调度评估准确"
)
MAX_LENGTH = 256


def _text(rng: random.Random, chars: int, chinese: bool) -> str:
    if chinese:
        return "".join(rng.choices(ZH_CHARS, k=chars // 2)) + "，" + "".join(rng.choices(ZH_CHARS, k=chars // 2)) + "？"
    out, size = [], 0
    while size < chars:
        word = rng.choice(EN_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out).capitalize() + "?"


def _near(text: str) -> str:
    """A near duplicate: upper case, full-width letters, extra spaces and punctuation."""
    wide = "".join(
        chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c.isalpha() and i % 3 == 0 else c
        for i, c in enumerate(text.upper())
    )
    return "  " + wide.replace(" ", "   ").replace("?", "？！") + "..."


def generate(path: Path, rows: int, seed: int = 0) -> dict[str, int]:
    """Write the benchmark file; return how many rows carry each planted defect."""
    import orjson

    rng = random.Random(seed)
    planted = {"null_prompt": 0, "blank_response": 0, "exact": 0, "near": 0, "too_long": 0, "too_short": 0}
    prompts: list[str] = []
    with open(path, "wb") as out:
        for i in range(rows):
            chinese = i % 4 == 3
            prompt: str | None = _text(rng, 200, chinese)
            response = _text(rng, 400, chinese)
            if i > 100 and i % 997 == 0:
                prompt, planted["exact"] = prompts[i - 50], planted["exact"] + 1
            elif i > 100 and i % 991 == 0:
                prompt, planted["near"] = _near(prompts[i - 60]), planted["near"] + 1
            elif i % 1009 == 0:
                prompt, planted["null_prompt"] = None, planted["null_prompt"] + 1
            elif i % 5003 == 0:
                prompt, planted["too_short"] = "ok", planted["too_short"] + 1
            if i % 1013 == 0:
                response, planted["blank_response"] = "   ", planted["blank_response"] + 1
            elif i % 4999 == 0:
                response, planted["too_long"] = response * 100, planted["too_long"] + 1
            prompts.append(prompt or "")
            out.write(orjson.dumps({"prompt": prompt, "response": response}) + b"\n")
    return planted


def worker_audit(path: str, tokenizer: str) -> dict:
    from platform_core.datasets.audit import audit_file

    cache = Path(tempfile.mkdtemp(prefix="bench-tokenizer-"))  # cold: the tokenizer export is part of the time
    result = audit_file(Path(path), "sft", tokenizer=Path(tokenizer), max_length=MAX_LENGTH, tokenizer_cache=cache)
    return {
        "cleanup": str(cache),
        "checks": {k: v["count"] for k, v in result["checks"].items()},
        "tokens": {k: v.get("tokens") for k, v in result["lengths"].items()},
        "truncated": result["truncated"],
    }


def worker_baseline(path: str, tokenizer: str, lean: bool) -> dict:
    import datasets
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    cache = tempfile.mkdtemp(prefix="bench-hf-")
    data = datasets.load_dataset("json", data_files=path, split="train", cache_dir=cache)

    def ids(batch):
        prompt = tok([p or "" for p in batch["prompt"]], add_special_tokens=False)["input_ids"]
        response = tok([r or "" for r in batch["response"]], add_special_tokens=False)["input_ids"]
        if lean:
            return {"prompt_len": [len(x) for x in prompt], "response_len": [len(x) for x in response]}
        return {"prompt_ids": prompt, "response_ids": response}

    data = data.map(ids, batched=True, remove_columns=data.column_names if lean else None)
    if not lean:
        data = data.map(
            lambda b: {
                "prompt_len": [len(x) for x in b["prompt_ids"]],
                "response_len": [len(x) for x in b["response_ids"]],
            },
            batched=True,
            remove_columns=data.column_names,
        )
    out = {}
    for field in ("prompt_len", "response_len"):
        values = np.asarray(data[field])
        out[field] = {
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "max": int(values.max()),
        }
    out["cleanup"] = cache  # the parent removes it after the measurement (the ids cache is several GB at 1M rows)
    return out


def run_worker(kind: str, path: Path, tokenizer: Path) -> dict:
    """Run one measurement in a fresh process; return its wall time, peak RSS and result."""
    command = [sys.executable, __file__, "--worker", kind, str(path), str(tokenizer)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["wall_s"] = elapsed
    shutil.rmtree(report.pop("cleanup"), ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    parser.add_argument("--no-lean", action="store_true", help="skip the lengths-only baseline")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "FILE", "TOKENIZER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, path, tokenizer = args.worker
        started = time.perf_counter()
        result = worker_audit(path, tokenizer) if kind == "audit" else worker_baseline(path, tokenizer, kind == "lean")
        result["inner_s"] = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["peak_rss_bytes"] = usage.ru_maxrss * 1024
        result["cpu_s"] = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
        result["child_peak_rss_bytes"] = children.ru_maxrss * 1024
        print(json.dumps(result))
        return

    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-datasets-"))
    work.mkdir(parents=True, exist_ok=True)
    from platform_core.workspace.demo import build_tokenizer

    tokenizer = work / "demo-tokenizer"
    build_tokenizer(tokenizer)
    path = work / f"sft-{args.rows}.jsonl"
    started = time.perf_counter()
    planted = generate(path, args.rows)
    size = path.stat().st_size
    print(
        f"generated {args.rows:,} rows, {size / 2**20:,.1f} MiB in {time.perf_counter() - started:.1f} s; "
        f"planted {planted}",
        flush=True,
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}",
        flush=True,
    )
    reports = {"audit": run_worker("audit", path, tokenizer)}
    print(f"audit done in {reports['audit']['wall_s']:.1f} s", flush=True)
    reports["baseline"] = run_worker("baseline", path, tokenizer)
    print(f"baseline done in {reports['baseline']['wall_s']:.1f} s", flush=True)
    if not args.no_lean:
        reports["lean"] = run_worker("lean", path, tokenizer)
        print(f"lean baseline done in {reports['lean']['wall_s']:.1f} s", flush=True)

    names = {"audit": "full audit (ours)", "baseline": "datasets + map(ids)", "lean": "datasets + map(lengths)"}
    print()
    print(f"{'':26} {'wall s':>9} {'CPU s':>9} {'peak RSS MiB':>13} {'RSS / file':>11} {'child RSS MiB':>14}")
    for kind, report in reports.items():
        rss = report["peak_rss_bytes"]
        print(
            f"{names[kind]:26} {report['wall_s']:9.1f} {report['cpu_s']:9.1f} {rss / 2**20:13.0f} "
            f"{rss / size:10.2f}x {report['child_peak_rss_bytes'] / 2**20:14.0f}"
        )
    audit = reports["audit"]
    print()
    for kind in ("baseline", "lean"):
        if kind in reports:
            print(
                f"speed-up vs {names[kind]}: {reports[kind]['wall_s'] / audit['wall_s']:.2f}x wall, "
                f"{reports[kind]['cpu_s'] / audit['cpu_s']:.2f}x CPU time (target >= 2x)"
            )
    print(f"audit peak memory: {audit['peak_rss_bytes'] / size:.2f}x the file size (target <= 3x)")
    print(f"audit checks: {audit['checks']}")
    print(f"audit tokens: prompt {audit['tokens']['prompt']}, response p99 {audit['tokens']['response']['p99']}")
    base = reports["baseline"]
    same = (
        audit["tokens"]["prompt"]["max"] == base["prompt_len"]["max"]
        and audit["tokens"]["response"]["p99"] == base["response_len"]["p99"]
    )
    print(f"token statistics agree with the baseline: {same}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine stretches wall times)")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
