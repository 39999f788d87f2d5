"""Rule-based reward functions for GRPO/PPO, one implementation for verl and TRL.

verl loads this file through `reward.custom_reward_function.path=<this file>` and calls
`compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)`; the TRL runner calls the same
function. Settings arrive as keyword arguments:

    reward_type  math_verify | format_check | custom
    extraction   boxed | last_number | json            (how the answer is taken from the response)
    comparison   exact | numeric | fuzzy               (how it is compared when math_verify is not used)
    json_key     the key read by json extraction (default "answer")
    custom_path  a user's Python file defining compute_score(...) (reward_type=custom)

Only the standard library is needed; math-verify is used when installed.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import threading
import unicodedata
from fractions import Fraction
from typing import Any

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?%?")
_CUSTOM_CACHE: dict[str, Any] = {}


def extract_boxed(text: str) -> str | None:
    """Return the content of the last \\boxed{...} (nested braces allowed), or None."""
    start = text.rfind("\\boxed")
    while start != -1:
        brace = text.find("{", start)
        if brace == -1:
            return None
        depth = 0
        for i in range(brace, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[brace + 1 : i].strip()
        start = text.rfind("\\boxed", 0, start)
    return None


def extract_last_number(text: str) -> str | None:
    """Return the last number in the text (integers, decimals, 1,234, fractions like 3/4, percentages)."""
    matches = _NUMBER.findall(unicodedata.normalize("NFKC", text))
    return matches[-1] if matches else None


def extract_json(text: str, key: str = "answer") -> str | None:
    """Return `key` of the last JSON object in the text whose value can be read, or None."""
    for match in reversed(list(re.finditer(r"\{[^{}]*\}", text))):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and key in data:
            return str(data[key]).strip()
    return None


def extract_answer(text: str, extraction: str = "boxed", json_key: str = "answer") -> str | None:
    """Return the answer taken from a response by the chosen extraction, or None if it cannot be found."""
    if extraction == "boxed":
        return extract_boxed(text)
    if extraction == "last_number":
        return extract_last_number(text)
    if extraction == "json":
        return extract_json(text, json_key)
    raise ValueError(f"unknown extraction {extraction!r} (boxed, last_number, json)")


def to_number(text: str) -> float | None:
    """Parse '1,234', '3/4', '50%', '-2.5' (full-width digits too) into a float, or None."""
    if text is None:
        return None
    cleaned = unicodedata.normalize("NFKC", str(text)).strip().replace(",", "").replace("$", "")
    cleaned = cleaned.removeprefix("\\(").removesuffix("\\)").strip()
    percent = cleaned.endswith("%")
    cleaned = cleaned.rstrip("%").strip()
    try:
        value = float(Fraction(cleaned)) if "/" in cleaned else float(cleaned)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def normalise_text(text: str) -> str:
    """Lower-case, NFKC (full-width to half-width), no whitespace or trailing punctuation."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return re.sub(r"\s+", "", text).strip(".。!！?？")


def compare(answer: str, truth: str, comparison: str = "numeric") -> float:
    """Return 1.0/0.0 for exact and numeric comparison, the similarity ratio (0..1) for fuzzy."""
    if comparison == "exact":
        return float(normalise_text(answer) == normalise_text(truth))
    if comparison == "numeric":
        a, b = to_number(answer), to_number(truth)
        if a is None or b is None:
            return float(normalise_text(answer) == normalise_text(truth))
        return float(abs(a - b) <= 1e-6 * max(1.0, abs(b)))
    if comparison == "fuzzy":
        return difflib.SequenceMatcher(None, normalise_text(answer), normalise_text(truth)).ratio()
    raise ValueError(f"unknown comparison {comparison!r} (exact, numeric, fuzzy)")


def math_verify_equal(answer: str, truth: str) -> bool | None:
    """Return whether math-verify finds the answer equal to the truth, or None when math-verify is missing.

    math-verify times out with signal.alarm, which only works in a main thread; elsewhere its timeouts are off.
    """
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    main = threading.current_thread() is threading.main_thread()
    timeout = {} if main else {"parsing_timeout": None}
    verify_timeout = {} if main else {"timeout_seconds": None}
    gold = parse(f"${truth}$", **timeout) or parse(str(truth), **timeout)
    pred = parse(f"${answer}$", **timeout) or parse(str(answer), **timeout)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, **verify_timeout))


def _custom_function(path: str):
    if path not in _CUSTOM_CACHE:
        spec = importlib.util.spec_from_file_location("platform_custom_reward", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"custom reward file {path} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "compute_score", None)):
            raise ValueError(
                f"custom reward file {path} defines no compute_score(data_source, solution_str, "
                "ground_truth, extra_info, **kwargs)"
            )
        _CUSTOM_CACHE[path] = module.compute_score
    return _CUSTOM_CACHE[path]


def score_details(
    solution_str: str,
    ground_truth: Any,
    reward_type: str = "math_verify",
    extraction: str = "boxed",
    comparison: str = "numeric",
    json_key: str = "answer",
    data_source: str = "",
    extra_info: dict | None = None,
    custom_path: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Return {"score", "acc", "format_ok", "extracted"} for one response (what compute_score and the dry run use)."""
    if reward_type == "custom":
        if not custom_path:
            raise ValueError("reward_type=custom needs custom_path")
        value = _custom_function(custom_path)(
            data_source=data_source, solution_str=solution_str, ground_truth=ground_truth, extra_info=extra_info
        )
        score = float(value["score"]) if isinstance(value, dict) else float(value)
        return {"score": score, "acc": score, "format_ok": 1.0, "extracted": None}
    extracted = extract_answer(solution_str, extraction, json_key)
    format_ok = float(extracted is not None)
    if reward_type == "format_check":
        return {"score": format_ok, "acc": format_ok, "format_ok": format_ok, "extracted": extracted}
    if reward_type != "math_verify":
        raise ValueError(f"unknown reward_type {reward_type!r} (math_verify, format_check, custom)")
    if extracted is None:
        return {"score": 0.0, "acc": 0.0, "format_ok": 0.0, "extracted": None}
    truth = str(ground_truth)
    equal = math_verify_equal(extracted, truth)
    correct = compare(extracted, truth, comparison) if equal is None else float(equal)
    if not correct and comparison != "fuzzy" and equal is not None:
        correct = compare(extracted, truth, comparison)  # e.g. text answers math-verify cannot parse
    return {"score": float(correct), "acc": float(correct), "format_ok": format_ok, "extracted": extracted}


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, float]:
    """verl's custom reward entry point: returns {"score", "acc", "format_ok"} (numbers only)."""
    details = score_details(solution_str, ground_truth, data_source=data_source, extra_info=extra_info, **kwargs)
    return {k: v for k, v in details.items() if k != "extracted"}
