"""Benchmark of the evaluation metrics.

1. Metric computation for 10,000 samples with every metric but pass@k (accuracy, exact match, BLEU, ROUGE-1/2/L),
   overall and per category, with standard errors and bootstrap intervals; target: under 10 s on the dev machine.
   Baseline: the direct way (math-verify on every answer in this process, sacrebleu and rouge-score called per
   category and overall).
2. pass@k execution throughput: generated programs run against their tests in the sandbox with the limits
   enforced, 2 at a time; baseline: a bare `python -I -S` subprocess per program, no limits, one at a time.

    .venv/bin/python bench/bench_evaluation_metrics.py [--samples 10000] [--programs 200] [--latex-share 0.02]
        [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_core.evaluation.metrics import EvalItem, score_items  # noqa: E402
from platform_core.evaluation.sandbox import Sandbox  # noqa: E402

WORDS = "the a model data train loss fast slow network layer token batch gradient learning rate GPU memory".split()
ZH = "机器学习是人工智能的一个分支通过数据训练模型来做出预测或决策强化学习让模型不断改进自己的行为"


def sentence(rng: random.Random, chinese: bool) -> str:
    if chinese:
        return "".join(rng.choice(ZH) for _ in range(rng.randint(8, 40))) + "。"
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))).capitalize() + "."


def perturb(rng: random.Random, text: str, chinese: bool) -> str:
    """Drop about 30% of the tokens (characters for Chinese, words otherwise)."""
    if chinese:
        return "".join(c for c in text if rng.random() > 0.3)
    return " ".join(w for w in text.split() if rng.random() > 0.3)


def make_items(count: int, seed: int = 0, latex_share: float = 0.02) -> list[EvalItem]:
    """A mix like a real eval set: 30% arithmetic, 20% multiple choice, `latex_share` math answers in LaTeX (checked
    by math-verify unless literally the reference), the rest English and Chinese free text."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.3:
            a, b = rng.randint(0, 99), rng.randint(0, 99)
            answer = a + b if rng.random() < 0.6 else a + b + rng.choice([-1, 1])
            items.append(EvalItem(f"What is {a}+{b}?", str(a + b), [f"{a} + {b} = {answer}"], "arithmetic"))
        elif draw < 0.5:
            gold = rng.choice("ABCD")
            said = gold if rng.random() < 0.5 else rng.choice("ABCD")
            items.append(EvalItem("Q?\nA. x\nB. y\nC. z\nD. w", gold, [f"The answer is ({said})."], "choice"))
        elif draw < 0.5 + latex_share:
            p = rng.randint(2, 5000)
            shown = rng.choice([f"\\sqrt{{{p}}}", f"{p}^{{1/2}}", f"\\sqrt{{{p + 1}}}"])
            items.append(EvalItem("Simplify", f"\\sqrt{{{p}}}", [f"So the result is ${shown}$."], "math"))
        else:
            chinese = draw > 0.75
            reference = sentence(rng, chinese)
            prediction = reference if rng.random() < 0.1 else perturb(rng, reference, chinese)
            items.append(EvalItem("Explain.", reference, [prediction], "zh-qa" if chinese else "en-qa"))
    return items


def baseline_metrics(items: list[EvalItem]) -> float:
    """The direct way: every accuracy check through math-verify here, library calls per category and overall."""
    import numpy as np
    import sacrebleu.metrics
    from math_verify import parse, verify
    from rouge_score import rouge_scorer

    from platform_core.evaluation.extract import CJKTokenizer, exact_match

    started = time.perf_counter()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CJKTokenizer())
    groups: dict[str, list[EvalItem]] = {"all": items}
    for item in items:
        groups.setdefault(item.category, []).append(item)
    for group in groups.values():
        hyps = [i.predictions[0] for i in group]
        refs = [i.reference for i in group]
        sacrebleu.metrics.BLEU(tokenize="zh").corpus_score(hyps, [refs], n_bootstrap=1000 if len(group) < 2000 else 1)
    rouge = [scorer.score(i.reference, i.predictions[0]) for i in items]
    em = [exact_match(i.predictions[0], i.reference) for i in items]
    accuracy = [bool(verify(parse(f"${i.reference}$"), parse(i.predictions[0]))) for i in items]
    np.mean([r["rougeL"].fmeasure for r in rouge]), np.mean(em), np.mean(accuracy)
    return time.perf_counter() - started


def programs(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for number in range(count):
        body = "return a + b" if rng.random() < 0.7 else "return a - b"
        out.append(f"def add(a, b):\n    {body}\n\nassert add({number}, 2) == {number + 2}\nassert add(-1, 1) == 0\n")
    return out


def bare_subprocess(sources: list[str]) -> float:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for number, source in enumerate(sources):
            path = Path(folder) / f"p{number}.py"
            path.write_text(source)
            subprocess.run([sys.executable, "-I", "-S", str(path)], capture_output=True, check=False)  # noqa: S603
    return time.perf_counter() - started


def cpu_seconds() -> tuple[float, float]:
    """CPU time (user + system) of this process and of its finished children: a figure the load of other users
    on a shared machine does not inflate, unlike wall time."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--latex-share", type=float, default=0.02, help="share of math answers in LaTeX")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")

    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (the machine is shared)")
    items = make_items(args.samples, latex_share=args.latex_share)
    score_items(make_items(50, seed=1), ["accuracy", "bleu", "rouge", "exact_match"])  # imports, not measured
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    report = score_items(items, ["accuracy", "bleu", "rouge", "exact_match"])
    ours = time.perf_counter() - started
    main_cpu, children_cpu = (after - before for after, before in zip(cpu_seconds(), cpu_before, strict=True))
    overall = {k: round(v["value"], 3) for k, v in report.overall.items()}
    print(f"\n1. metrics for {args.samples} samples (accuracy, exact_match, bleu, rouge1/2/L; overall + "
          f"{len(report.per_category)} categories, SE and 95% intervals)")  # fmt: skip
    print(f"   platform:  {ours:6.2f} s wall, CPU {main_cpu:.2f} s here + {children_cpu:.2f} s in workers "
          f"({report.notes['math_verify_checks']} math-verify checks in worker processes, the rest by regex; "
          f"ROUGE in a worker; BLEU tokenizer {report.notes['bleu_tokenize']})")  # fmt: skip
    print(f"   values:    {overall}")
    if not args.no_baseline:
        before = cpu_seconds()[0]
        wall = baseline_metrics(items)
        print(f"   baseline:  {wall:6.2f} s wall, CPU {cpu_seconds()[0] - before:.2f} s (math-verify on every item "
              "in-process, library calls per category)")  # fmt: skip

    sources = programs(args.programs)
    with Sandbox(timeout_s=5, workers=2) as sandbox:
        cpu_before = cpu_seconds()[1]
        started = time.perf_counter()
        results = sandbox.run_many(sources)
        elapsed = time.perf_counter() - started
        per_program = (cpu_seconds()[1] - cpu_before) / len(sources) * 1000
        isolation = sandbox.isolation
        limits = sandbox.limits
    passed = sum(r.passed for r in results)
    print(f"\n2. pass@k execution, {args.programs} programs ({passed} pass), 2 at a time")
    print(f"   sandbox:   {args.programs / elapsed:6.1f} programs/s ({elapsed:.2f} s, {per_program:.0f} ms CPU per "
          f"program) isolation={isolation}, "
          f"AS={limits['RLIMIT_AS'] >> 20} MiB, CPU={limits['RLIMIT_CPU']} s, NPROC={limits['RLIMIT_NPROC']}, "
          f"FSIZE={limits['RLIMIT_FSIZE'] >> 20} MiB, NOFILE={limits['RLIMIT_NOFILE']}")  # fmt: skip
    if not args.no_baseline:
        cpu_before = cpu_seconds()[1]
        bare = bare_subprocess(sources)
        bare_cpu = (cpu_seconds()[1] - cpu_before) / len(sources) * 1000
        print(f"   baseline:  {args.programs / bare:6.1f} programs/s ({bare:.2f} s, {bare_cpu:.0f} ms CPU per program) "
              "bare python -I -S subprocess, "
              "no limits, one at a time")  # fmt: skip


if __name__ == "__main__":
    main()
