"""Parse verl's console metric lines (`step:N - key:value - ...`), the fallback when a run has no metrics file.

verl prints one line per logged step (verl/utils/logger/aggregate_logger.py). Lines can carry a Ray actor prefix with
ANSI colours, a `[rankN]:` prefix, a tqdm bar redrawn with carriage returns before them, numpy reprs as values
(`np.float64(0.25)`), and `nan` / `inf`. Keys contain `/`, `@`, `-`, `(`, `)` and even `:`.

    >>> parse_console_line("\\x1b[36m(TaskRunner pid=7)\\x1b[0m step:3 - actor/pg_loss:np.float64(-0.01) - x:nan")
    (3, {'actor/pg_loss': -0.01, 'x': nan})
"""

from __future__ import annotations

import math
import re

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Prefixes added by Ray to actor / system output and by torchrun (`[rankN]:`, `--tee`'s `[defaultN]:`) to each line.
PROCESS_PREFIX = re.compile(
    r"^\s*(\((?:[\w.:-]+ )?pid=\d+(?:, ip=[^)]*)?\)|\((?:raylet|gcs_server|autoscaler|monitor|dashboard)[^)]*\)"
    r"|\[rank\d+\]:|\[default\d+\]:)\s?"
)
STEP = re.compile(r"(?<![\w/])step:(\d+) - (.+)$")
NUMPY_WRAPPED = re.compile(r"^np\.\w+\((.*)\)$")
SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "True": 1.0, "False": 0.0}


def strip_ansi(text: str) -> str:
    """Return the text without ANSI escape sequences."""
    return ANSI.sub("", text)


def strip_prefixes(text: str) -> str:
    """Return the text without ANSI codes and leading Ray `(Actor pid=N, ip=...)` / torchrun `[rankN]:` prefixes."""
    text = strip_ansi(text)
    while True:
        stripped = PROCESS_PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def parse_value(text: str) -> float | None:
    """Return a console value as a float (numpy reprs unwrapped, nan/inf/True/False accepted), or None."""
    text = text.strip()
    match = NUMPY_WRAPPED.match(text)
    if match:
        text = match.group(1).strip()
    if text in SPECIAL:
        return SPECIAL[text]
    try:
        return float(text)
    except ValueError:
        return None


def parse_console_line(line: str) -> tuple[int, dict[str, float]] | None:
    """Return (step, {metric: value}) for a verl console metrics line, or None for any other line."""
    text = strip_prefixes(line).rsplit("\r", 1)[-1]
    match = STEP.search(text)
    if not match:
        return None
    values: dict[str, float] = {}
    for chunk in match.group(2).split(" - "):
        key, sep, raw = chunk.rpartition(":")
        if not sep or not key:
            continue
        value = parse_value(raw)
        if value is not None:
            values[key.strip()] = value
    return (int(match.group(1)), values) if values else None
