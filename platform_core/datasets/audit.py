"""The audit of a dataset: field and label distributions, lengths in characters and tokens, and quality checks.

Everything is vectorised over the Arrow table (pyarrow compute, numpy); token lengths come from the model's fast
tokenizer in batches (`encode_batch_fast`, which skips offsets and never builds Python lists of ids). Results are
cached under `cache/datasets/audits/` by content hash, type and field configuration; token lengths additionally by
tokenizer fingerprint, kept per row so a new max length costs nothing.

Checks, each with a count and the offending 0-based row indices:
    empty                 a required field is missing, null or whitespace-only (or a chat has no messages)
    duplicate_exact       the prompt repeats an earlier row's prompt exactly (the first occurrence is not flagged)
    duplicate_normalized  the same after NFKC (full-width -> half-width), lower case, and removing whitespace and
                          punctuation (CJK punctuation included); includes the exact duplicates
    length_outliers       OUTLIER_RULE below, on the character length of each text field
    format_errors         wrong type, not a string, malformed chat message, no assistant turn, chosen == rejected
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from platform_core.context import Platform
from platform_core.datasets.loader import arrow_kind, chat_type_ok
from platform_core.datasets.schemas import Prepared, blank_mask, get_field, roles
from platform_core.datasets.tokenizer import TokenCounter, token_counter, tokenizer_fingerprint
from platform_core.errors import InvalidInput
from platform_core.tasks import TaskContext, task_kind

AUDIT_VERSION = 1
CHECKS = ("empty", "duplicate_exact", "duplicate_normalized", "length_outliers", "format_errors")
TOKEN_BATCH = 4096
HASH_CHUNK = 16_384
CATEGORICAL_MAX_DISTINCT = 50
TOP_VALUES = 30
HIST_BINS = 30
MAX_LISTED_ERRORS = 200
OUTLIER_MIN_ROWS = 20
OUTLIER_RULE = (
    "Tukey far-out fences on the log of the character length: a value is an outlier when it is shorter than "
    "Q1 / s^3 or longer than max(Q3 * s^3, Q3 + 100) characters, with s = max(Q3 / Q1, 2). Each text field is "
    "checked on its non-empty values; fields with fewer than 20 values are not checked."
)
NORMALIZE_PATTERN = r"[\p{P}\p{Z}\p{C}]+"  # punctuation (CJK too), separators/whitespace, control characters

Progress = Callable[[float, str], None]


def _quiet(fraction: float, message: str) -> None:
    pass


# -- text fields ---------------------------------------------------------------------------------------------------
@dataclass
class TextField:
    """One measured text field: which rows have it, and its pieces of text (one per row, or one per chat turn).

    For a plain text column `pieces` is the column itself (no copy; nulls count as absent) and `owner` is None.
    """

    name: str
    present: np.ndarray  # bool per row
    pieces: pa.ChunkedArray | pa.Array  # strings to measure
    owner: np.ndarray | None  # row of each piece; None: piece i is row i
    hashes: np.ndarray | None = None  # per piece, when already computed (the prompt's, by the duplicate check)

    def per_row(self, piece_values: np.ndarray, rows: int) -> np.ndarray:
        """Sum a per-piece measure into a per-row array (-1 where the field is absent)."""
        if self.owner is None:
            out = piece_values.astype(np.int64)
        else:
            out = np.bincount(self.owner, weights=piece_values, minlength=rows).astype(np.int64)
        out[~self.present] = -1
        return out


def _combined(array: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return array


def _mask(array) -> np.ndarray:
    return np.asarray(_combined(array).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(array) -> np.ndarray:
    return np.asarray(_combined(array).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def text_fields(prepared: Prepared) -> tuple[list[TextField], pa.ChunkedArray | pa.Array | None, np.ndarray | None]:
    """Return the measured text fields, the prompt text per row (for duplicates) and the number of chat turns."""
    table = prepared.loaded.table
    n = table.num_rows
    fields: list[TextField] = []
    prompt_key = None
    turns = None
    for role in roles(prepared.dataset_type, prepared.config):
        if not role.length:
            continue
        array = get_field(table, role.field)
        if array is None:
            continue
        kind = arrow_kind(array.type)
        if kind == "string":
            fields.append(TextField(role.role, ~_mask(array.is_null()), array, None))
            if role.role == "prompt":
                prompt_key = array
        elif kind == "array" and chat_type_ok(array.type):
            lists = _combined(array)
            present = ~_mask(lists.is_null()) & (_numbers(pc.list_value_length(lists)) > 0)
            flat = lists.flatten()
            parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
            contents = flat.field("content").fill_null("")
            is_assistant = _mask(pc.equal(flat.field("role"), "assistant"))
            if prepared.dataset_type == "sft":
                groups = (("prompt", ~is_assistant), ("response", is_assistant))
                turns = np.bincount(parents, minlength=n).astype(np.int64)
                turns[~present] = -1
            else:
                groups = ((role.role, np.ones(len(flat), dtype=bool)),)
            for name, selected in groups:
                owner = parents[selected]
                pieces = contents.filter(pa.array(selected))
                fields.append(TextField(name, present, pieces, owner))
                if name == "prompt":
                    counts = np.bincount(owner, minlength=n)
                    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
                    prompt_key = pc.binary_join(pa.ListArray.from_arrays(offsets, pieces), "\n")
    return fields, prompt_key, turns


# -- statistics ----------------------------------------------------------------------------------------------------
def stats(values: np.ndarray) -> dict[str, Any]:
    """Percentiles p50/p90/p99, max, mean, min and count of a 1-D array (all None for an empty one)."""
    if len(values) == 0:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None, "min": None, "count": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": int(values.max()),
        "mean": float(values.mean()),
        "min": int(values.min()),
        "count": int(len(values)),
    }


def histogram(values: np.ndarray, bins: int = HIST_BINS) -> dict[str, list]:
    """Counts and bin edges of a 1-D array (integer-aligned edges for small integer ranges)."""
    if len(values) == 0:
        return {"edges": [], "counts": []}
    low, high = float(values.min()), float(values.max())
    if np.issubdtype(values.dtype, np.integer) and high - low + 1 <= bins:
        edges = np.arange(low, high + 2) - 0.5
    else:
        edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    counts, edges = np.histogram(values, bins=edges)
    return {"edges": [round(float(e), 3) for e in edges], "counts": counts.astype(int).tolist()}


def _hash(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hash per string (pandas' SipHash; nulls hash like ""); collisions among 1e6 texts: probability ~3e-8."""
    return pd.util.hash_array(array.to_numpy(zero_copy_only=False), categorize=False)


def normalize_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC (full-width -> half-width), lower case, and remove whitespace and punctuation (CJK punctuation included)."""
    array = _combined(array)
    ascii_rows = _mask(pc.string_is_ascii(array))
    if not ascii_rows.all():  # NFKC changes nothing in ASCII text, and it is the slow step
        other = pa.array(~ascii_rows)
        array = pc.replace_with_mask(array, other, pc.utf8_normalize(array.filter(other), "NFKC"))
    return pc.replace_substring_regex(pc.utf8_lower(array), NORMALIZE_PATTERN, "")


def _later_repeats(hashes: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Usable rows whose hash appeared at an earlier usable row."""
    rows = np.flatnonzero(usable)
    if len(rows) == 0:
        return rows
    _, first = np.unique(hashes[rows], return_index=True)
    is_first = np.zeros(len(rows), dtype=bool)
    is_first[first] = True
    return rows[~is_first]


def duplicate_rows(
    prompt: pa.ChunkedArray | pa.Array, usable: np.ndarray, progress: Progress = _quiet
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (exact, normalized) duplicate rows (usable rows repeating an earlier row's prompt) and the hashes.

    The normalized set includes the exact one. Works slice by slice, so no copy of the column is kept.
    """
    n = len(prompt)
    exact = np.empty(n, dtype=np.uint64)
    normalized = np.empty(n, dtype=np.uint64)
    for start in range(0, n, HASH_CHUNK):
        piece = prompt.slice(start, HASH_CHUNK)
        exact[start : start + len(piece)] = _hash(piece)
        normalized[start : start + len(piece)] = _hash(normalize_text(piece))
        progress(min(1.0, (start + HASH_CHUNK) / max(n, 1)), "duplicates")
    exact_rows = _later_repeats(exact, usable)
    return exact_rows, np.union1d(_later_repeats(normalized, usable), exact_rows), exact


def outlier_fences(chars: np.ndarray) -> dict[str, float] | None:
    """Fences of OUTLIER_RULE for a field's character lengths (None when too few values)."""
    if len(chars) < OUTLIER_MIN_ROWS:
        return None
    q1, q3 = np.percentile(chars, [25, 75])
    q1 = max(float(q1), 1.0)
    spread = max(float(q3) / q1, 2.0)
    return {"q1": q1, "q3": float(q3), "low": q1 / spread**3, "high": max(float(q3) * spread**3, float(q3) + 100)}


# -- distributions -------------------------------------------------------------------------------------------------
def value_counts(array: pa.ChunkedArray | pa.Array, top: int) -> dict[str, Any]:
    """The `top` most frequent values (as text) with counts, the count of the rest, nulls and distinct values."""
    array = _combined(array)
    if pa.types.is_struct(array.type) or pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        array = pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in array.to_pylist()]
        )
    counts = pc.value_counts(array.drop_null())
    values = counts.field("values").to_pylist()
    numbers = counts.field("counts").to_numpy()
    order = np.argsort(-numbers, kind="stable")
    listed = [[_label(values[i]), int(numbers[i])] for i in order[:top]]
    return {
        "values": listed,
        "other": int(numbers[order[top:]].sum()),
        "nulls": int(array.null_count),
        "distinct": len(values),
    }


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def distributions(prepared: Prepared) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-column distributions (categorical counts, numeric histograms) and label distributions."""
    table = prepared.loaded.table
    role_fields = {r.field for r in roles(prepared.dataset_type, prepared.config) if r.length}
    out: dict[str, Any] = {}
    for name in table.column_names:
        if name in role_fields:
            continue
        column = table.column(name)
        kind = arrow_kind(column.type)
        if kind == "number":
            values = _combined(column).drop_null().to_numpy(zero_copy_only=False).astype(float)
            out[name] = {
                "kind": "numeric",
                "nulls": column.null_count,
                **histogram(values, 20),
                **(
                    {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
                    if len(values)
                    else {}
                ),
            }
        elif kind in ("string", "boolean"):
            distinct = pc.count_distinct(column).as_py()
            if distinct <= CATEGORICAL_MAX_DISTINCT or kind == "boolean":
                out[name] = {"kind": "categorical", **value_counts(column, TOP_VALUES)}
            else:
                chars = np.asarray(_combined(pc.utf8_length(column)).drop_null().to_numpy(zero_copy_only=False))
                out[name] = {"kind": "text", "distinct": distinct, "nulls": column.null_count, "chars": stats(chars)}
        else:
            out[name] = {"kind": "nested", "type": str(column.type), "nulls": column.null_count}
    labels = {}
    for label in prepared.config.get("label_fields") or []:
        array = get_field(table, label)
        if array is not None:
            labels[label] = value_counts(array, 50)
    return out, labels


# -- tokens ----------------------------------------------------------------------------------------------------
def token_lengths(
    fields: list[TextField], rows: int, counter: TokenCounter, progress: Progress = _quiet
) -> dict[str, np.ndarray]:
    """Tokens per row for each text field (-1 where absent).

    Each distinct text is tokenized once (repeated prompts, system turns shared by every chat), in batches.
    """
    plans = []
    for fld in fields:
        hashes = fld.hashes
        if hashes is None:
            hashes = np.concatenate(
                [_hash(fld.pieces.slice(s, HASH_CHUNK)) for s in range(0, len(fld.pieces), HASH_CHUNK)]
                or [np.zeros(0, np.uint64)]
            )
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        is_first = np.zeros(len(fld.pieces), dtype=bool)
        is_first[first] = True
        plans.append((fld, is_first, first[inverse]))
    total = sum(int(plan[1].sum()) for plan in plans) or 1
    done = 0
    out = {}
    for fld, is_first, first_of in plans:
        counts = np.zeros(len(fld.pieces), dtype=np.int64)
        # Read the column in order (slices, no copies); within a slice keep only first occurrences.
        for start in range(0, len(fld.pieces), TOKEN_BATCH):
            wanted = is_first[start : start + TOKEN_BATCH]
            if not wanted.any():
                continue
            piece = fld.pieces.slice(start, TOKEN_BATCH)
            texts = (piece if wanted.all() else piece.filter(pa.array(wanted))).to_pylist()
            counts[start + np.flatnonzero(wanted)] = counter.count([text or "" for text in texts])
            done += len(texts)
            progress(done / total, f"tokens of {fld.name}: {done:,}/{total:,}")
        out[fld.name] = fld.per_row(counts[first_of], rows)
    return out


# -- the audit -----------------------------------------------------------------------------------------------------
def base_audit(prepared: Prepared, progress: Progress = _quiet) -> tuple[dict[str, Any], list[TextField]]:
    """Everything that does not need a tokenizer: checks, character lengths, distributions, labels."""
    started = time.perf_counter()
    loaded, validation = prepared.loaded, prepared.validation
    n = loaded.rows
    progress(0.02, "checks")
    fields, prompt_key, turns = text_fields(prepared)
    empty = validation.mask("empty")
    format_errors = validation.mask("format_errors")
    checks: dict[str, Any] = {}
    empty_by_field: dict[str, int] = {}
    for problem in validation.problems:
        if problem.check == "empty":
            empty_by_field[problem.field] = empty_by_field.get(problem.field, 0) + len(problem.rows)
    checks["empty"] = {"count": int(empty.sum()), "rows": np.flatnonzero(empty).tolist(), "fields": empty_by_field}
    exact = normalized = np.zeros(0, dtype=np.int64)
    if prompt_key is not None:
        usable = ~_mask(prompt_key.is_null()) & ~blank_mask(prompt_key)
        exact, normalized, hashes = duplicate_rows(prompt_key, usable, lambda f, m: progress(0.05 + 0.5 * f, m))
        for fld in fields:
            if fld.name == "prompt" and fld.owner is None:
                fld.hashes = hashes
    checks["duplicate_exact"] = {"count": int(len(exact)), "rows": exact.tolist(), "field": "prompt"}
    checks["duplicate_normalized"] = {"count": int(len(normalized)), "rows": normalized.tolist(), "field": "prompt"}
    progress(0.6, "lengths")
    lengths: dict[str, Any] = {}
    histograms: dict[str, Any] = {}
    chars_per_row: dict[str, np.ndarray] = {}
    outliers = np.zeros(n, dtype=bool)
    fences: dict[str, Any] = {}
    for fld in fields:
        piece_chars = _numbers(pc.utf8_length(fld.pieces))
        chars = fld.per_row(piece_chars, n)
        chars_per_row[fld.name] = chars
        measured = chars[chars >= 0]
        lengths[fld.name] = {"chars": stats(measured)}
        histograms[fld.name] = {"chars": histogram(measured)}
        nonblank = (chars > 0) & ~empty
        limits = outlier_fences(chars[nonblank])
        if limits:
            short = nonblank & (chars < limits["low"])
            long = nonblank & (chars > limits["high"])
            outliers |= short | long
            fences[fld.name] = {
                **{k: round(v, 2) for k, v in limits.items()},
                "too_short": int(short.sum()),
                "too_long": int(long.sum()),
            }
    checks["length_outliers"] = {
        "count": int(outliers.sum()),
        "rows": np.flatnonzero(outliers).tolist(),
        "rule": OUTLIER_RULE,
        "fences": fences,
    }
    errors = validation.row_errors(loaded, "format_errors", MAX_LISTED_ERRORS)
    by_problem: dict[str, int] = {}
    for problem in validation.problems:
        if problem.check == "format_errors":
            by_problem[f"{problem.field}: {problem.problem}"] = by_problem.get(
                f"{problem.field}: {problem.problem}", 0
            ) + len(problem.rows)
    checks["format_errors"] = {
        "count": int(format_errors.sum()),
        "rows": np.flatnonzero(format_errors).tolist(),
        "errors": errors,
        "by_problem": by_problem,
    }
    checks["empty"]["errors"] = validation.row_errors(loaded, "empty", MAX_LISTED_ERRORS)
    progress(0.8, "distributions")
    columns_dist, labels = distributions(prepared)
    flagged = empty | format_errors
    result: dict[str, Any] = {
        "audit_version": AUDIT_VERSION,
        "type": prepared.dataset_type,
        "format": loaded.format,
        "rows": n,
        "valid_rows": int((~flagged).sum()),
        "columns": [{"name": f.name, "type": str(f.type)} for f in loaded.table.schema],
        "field_config": prepared.config,
        "checks": checks,
        "lengths": lengths,
        "histograms": histograms,
        "distributions": columns_dist,
        "labels": labels,
        "outlier_rule": OUTLIER_RULE,
    }
    if turns is not None:
        result["turns"] = stats(turns[turns >= 0])
        result["histograms"]["turns"] = histogram(turns[turns >= 0])
    result["_chars"] = chars_per_row
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    return result, fields


TOTAL_PARTS = {"sft": ("prompt", "response"), "dpo": ("prompt", "chosen|rejected"), "eval": ("prompt", "reference")}


def _totals(per_row: dict[str, np.ndarray], dataset_type: str) -> np.ndarray | None:
    """Prompt + answer length per row (the longer of chosen/rejected for DPO), -1 where a part is absent."""
    parts = TOTAL_PARTS.get(dataset_type)
    if not parts:
        return None
    arrays = []
    for part in parts:
        names = part.split("|")
        if not all(name in per_row for name in names):
            return None
        arrays.append(np.maximum.reduce([per_row[name] for name in names]) if len(names) > 1 else per_row[names[0]])
    total = np.sum(arrays, axis=0)
    total[np.any([a < 0 for a in arrays], axis=0)] = -1
    return total


def finish(result: dict[str, Any], tokens: dict[str, np.ndarray] | None, max_length: int | None) -> dict[str, Any]:
    """Add token statistics and truncation fractions to a base audit (a copy; the `_chars` arrays are dropped)."""
    out = {k: v for k, v in result.items() if not k.startswith("_")}
    out["lengths"] = {k: dict(v) for k, v in result["lengths"].items()}
    out["histograms"] = {k: dict(v) for k, v in result["histograms"].items()}
    per_row = dict(result["_chars"])
    unit = "chars"
    total = _totals(per_row, result["type"])
    if total is not None:  # the total in characters always, like every other field
        out["lengths"]["total"] = {"chars": stats(total[total >= 0])}
        out["histograms"]["total"] = {"chars": histogram(total[total >= 0])}
        per_row["total"] = total
    if tokens is not None:
        unit = "tokens"
        for name, values in tokens.items():
            measured = values[values >= 0]
            out["lengths"].setdefault(name, {})["tokens"] = stats(measured)
            out["histograms"].setdefault(name, {})["tokens"] = histogram(measured)
        per_row = dict(tokens)
        total = _totals(per_row, result["type"])
        if total is not None:
            out["lengths"].setdefault("total", {})["tokens"] = stats(total[total >= 0])
            out["histograms"].setdefault("total", {})["tokens"] = histogram(total[total >= 0])
            per_row["total"] = total
    if max_length:
        out["max_length"] = int(max_length)
        out["truncated_unit"] = unit
        out["truncated"] = {}
        out["truncated_rows"] = {}
        for name, values in per_row.items():
            measured = values >= 0
            over = measured & (values > max_length)
            out["truncated"][name] = float(over.sum() / measured.sum()) if measured.any() else 0.0
            out["truncated_rows"][name] = int(over.sum())
    return out


def audit_prepared(
    prepared: Prepared, counter: TokenCounter | None = None, max_length: int | None = None, progress: Progress = _quiet
) -> dict[str, Any]:
    """Audit a prepared dataset (no caching): checks, distributions, char lengths and, with a tokenizer, tokens."""
    started = time.perf_counter()
    base, fields = base_audit(prepared, lambda f, m: progress(f * (0.3 if counter else 1.0), m))
    tokens = None
    if counter is not None:
        tokens = token_lengths(fields, prepared.loaded.rows, counter, lambda f, m: progress(0.3 + 0.7 * f, m))
    result = finish(base, tokens, max_length)
    result["tokenizer"] = str(counter.directory) if counter else None
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    return result


def audit_file(
    path: Path,
    dataset_type: str,
    config: dict[str, Any] | None = None,
    tokenizer: Path | None = None,
    max_length: int | None = None,
    progress: Progress = _quiet,
    tokenizer_cache: Path | None = None,
) -> dict[str, Any]:
    """Load, validate and audit a dataset file that is not stored (what the benchmark measures)."""
    from platform_core.datasets.loader import format_for
    from platform_core.datasets.schemas import prepare

    # The tokenizer first, before the data is in memory: its export runs in a child process.
    counter = token_counter(Path(tokenizer), tokenizer_cache) if tokenizer else None
    prepared = prepare(Path(path), format_for(str(path)), dataset_type, config)
    return audit_prepared(prepared, counter, max_length, progress)


# -- cached audits of stored datasets ------------------------------------------------------------------------------
def audit_dir(platform: Platform) -> Path:
    return platform.workspace.cache / "datasets" / "audits"


def _base_key(record: dict[str, Any]) -> str:
    text = json.dumps(
        {"v": AUDIT_VERSION, "hash": record["content_hash"], "type": record["type"], "config": record["field_config"]},
        sort_keys=True,
    )
    return f"{record['content_hash'][:16]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _save_base(path: Path, base: dict[str, Any]) -> None:
    arrays = {f"chars__{k}": v for k, v in base["_chars"].items()}
    payload = {k: v for k, v in base.items() if not k.startswith("_")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, default=str))
    np.savez(path.with_suffix(".tmp.npz"), **arrays)
    path.with_suffix(".tmp.npz").replace(path.with_suffix(".npz"))
    tmp.replace(path)


def _load_base(path: Path) -> dict[str, Any] | None:
    arrays_path = path.with_suffix(".npz")
    if not path.is_file() or not arrays_path.is_file():
        return None
    try:
        base = json.loads(path.read_text())
        with np.load(arrays_path) as arrays:
            base["_chars"] = {k.removeprefix("chars__"): arrays[k] for k in arrays.files}
    except (OSError, ValueError):
        return None
    return base


def _load_tokens(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as arrays:
            return {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError):
        return None


def _save_tokens(path: Path, tokens: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **tokens)
    tmp.replace(path)


def resolve_tokenizer(platform: Platform, ref: str | int | Path | None) -> Path | None:
    """A local model directory with a tokenizer: a registered model (id or name) or a directory path; None for none."""
    if ref in (None, ""):
        return None
    path = Path(str(ref)).expanduser()
    if not path.is_dir():
        from platform_core.models import get_model

        model = get_model(platform, ref)
        if model["location"] != "local":
            raise InvalidInput(
                f"tokenizer: model {model['name']!r} is on {model['location']}; sync it to this machine first"
            )
        path = Path(model["path"])
    if not path.is_dir():
        raise InvalidInput(f"tokenizer: {path} is not a directory on this machine")
    tokenizer_fingerprint(path)
    return path.resolve()


def cached_audit(
    platform: Platform, record: dict[str, Any], tokenizer: Path | None = None, max_length: int | None = None
) -> dict[str, Any] | None:
    """The audit from the cache, or None when it (or its token part) has not been computed."""
    key = _base_key(record)
    base = _load_base(audit_dir(platform) / f"{key}.json")
    if base is None:
        return None
    tokens = None
    if tokenizer is not None:
        tokens = _load_tokens(audit_dir(platform) / f"{key}-{tokenizer_fingerprint(tokenizer)}.npz")
        if tokens is None:
            return None
    return _decorate(finish(base, tokens, max_length), record, tokenizer, cached=True)


def _decorate(result: dict[str, Any], record: dict[str, Any], tokenizer: Path | None, cached: bool) -> dict[str, Any]:
    result.update(
        {
            "dataset_id": record["id"],
            "name": record["name"],
            "content_hash": record["content_hash"],
            "tokenizer": str(tokenizer) if tokenizer else None,
            "cached": cached,
        }
    )
    return result


def audit_dataset(
    platform: Platform,
    ref: str | int,
    tokenizer: str | Path | None = None,
    max_length: int | None = None,
    progress: Progress = _quiet,
    refresh: bool = False,
) -> dict[str, Any]:
    """Audit a stored dataset, reusing cached parts (by content hash, field configuration and tokenizer)."""
    from platform_core.datasets.service import get_dataset, prepare_dataset

    record = get_dataset(platform, ref)
    tokenizer_path = resolve_tokenizer(platform, tokenizer)
    if max_length is not None and int(max_length) <= 0:
        raise InvalidInput(f"max length: {max_length} must be a positive number of tokens")
    if not refresh:
        hit = cached_audit(platform, record, tokenizer_path, max_length)
        if hit is not None:
            progress(1.0, "cached")
            return hit
    directory = audit_dir(platform)
    directory.mkdir(parents=True, exist_ok=True)
    key = _base_key(record)
    base_path = directory / f"{key}.json"
    base = None if refresh else _load_base(base_path)
    prepared = None
    fields = None
    tokens_path = None
    if tokenizer_path is not None:
        tokens_path = directory / f"{key}-{tokenizer_fingerprint(tokenizer_path)}.npz"
    tokens = None if refresh or tokens_path is None else _load_tokens(tokens_path)
    counter = None
    if tokens_path is not None and tokens is None:
        progress(0.01, "loading the tokenizer")
        counter = token_counter(tokenizer_path, platform.workspace.cache / "tokenizers")
    progress(0.02, "loading")
    scale = 0.3 if counter else 1.0
    if base is None:
        prepared = prepare_dataset(platform, record)
        base, fields = base_audit(prepared, lambda f, m: progress(0.05 + (scale - 0.05) * f, m))
        _save_base(base_path, base)
    if counter is not None:
        if fields is None:
            prepared = prepared or prepare_dataset(platform, record)
            fields, _, _ = text_fields(prepared)
        tokens = token_lengths(fields, base["rows"], counter, lambda f, m: progress(scale + (1 - scale) * f, m))
        _save_tokens(tokens_path, tokens)
    progress(1.0, "done")
    return _decorate(finish(base, tokens, max_length), record, tokenizer_path, cached=False)


def forget_audits(platform: Platform, content_hash: str) -> None:
    """Delete the cached audits of a content hash (when no dataset uses it any more)."""
    directory = audit_dir(platform)
    if directory.is_dir():
        for path in directory.glob(f"{content_hash[:16]}-*"):
            path.unlink(missing_ok=True)


@task_kind("datasets.audit")
def run_audit_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Task: audit a dataset (params: dataset_id, tokenizer, max_length) and leave the result in the cache."""
    os.environ["TOKENIZERS_PARALLELISM"] = "true"  # the worker's environment turns it off; this process never forks
    ctx.log(
        f"auditing dataset #{params['dataset_id']}"
        + (f" with the tokenizer of {params['tokenizer']}" if params.get("tokenizer") else "")
    )
    result = audit_dataset(
        ctx.platform, params["dataset_id"], params.get("tokenizer"), params.get("max_length"), progress=_throttled(ctx)
    )
    summary = {name: check["count"] for name, check in result["checks"].items()}
    ctx.log(f"{result['rows']} rows; " + ", ".join(f"{k}: {v}" for k, v in summary.items()))
    return {"dataset_id": params["dataset_id"], "rows": result["rows"], "checks": summary}


def _throttled(ctx: TaskContext, every_s: float = 0.5) -> Progress:
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s or fraction >= 1.0:
            last[0] = now
            ctx.progress(fraction, message)

    return report


def start_audit_task(
    platform: Platform, dataset_id: int, tokenizer: str | None = None, max_length: int | None = None
) -> int:
    """Start the audit of a dataset as a task (for large datasets); return the task id."""
    from platform_core.datasets.service import get_dataset
    from platform_core.tasks import TaskTitle, submit_task

    record = get_dataset(platform, dataset_id)
    return submit_task(
        platform,
        "datasets.audit",
        TaskTitle("audit", f"Audit {record['name']}", name=record["name"]),
        {"dataset_id": record["id"], "tokenizer": str(tokenizer) if tokenizer else None, "max_length": max_length},
    )
