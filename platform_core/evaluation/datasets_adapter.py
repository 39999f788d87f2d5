"""Eval sets in the `datasets` table (type "eval"): add one from a JSON / JSONL / Parquet file, load its records.

Storage goes through the datasets area (`platform_core.datasets.service.add_dataset`, type "eval"); this adapter
adds what evaluation needs on top: every row must be usable (a bad row refuses the file, with the file, line and
field named, rather than being flagged and skipped), per-type checks (an option letter for multiple choice, tests
for code), and the evaluation type (qa, multiple_choice, math, code, translation, summarization, general), kept in
the record's `field_config` as `eval_type`, which suggests the default metrics.

    record = add_eval_dataset(platform, "qa.jsonl", "my-qa", eval_type="qa")
    load_eval_records(platform, record["id"])     # [{"prompt": ..., "reference": ..., "category": ...}, ...]
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound
from platform_core.evaluation.evaltypes import EVAL_TYPES
from platform_core.evaluation.extract import reference_choice
from platform_core.evaluation.metrics import UNCATEGORIZED
from platform_core.security.validation import check_name

FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
MAX_REPORTED_ERRORS = 20


def _read_rows(path: Path, fmt: str) -> list[tuple[str, Any]]:
    """Return (location, row) pairs: "line N" for JSONL, "item N" for a JSON array, "row N" for Parquet."""
    if fmt == "parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise InvalidInput(f"{path.name}: not a readable Parquet file ({exc})") from exc
        records = json.loads(frame.to_json(orient="records", force_ascii=False))
        return [(f"row {i + 1}", row) for i, row in enumerate(records)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: not UTF-8 text (byte {exc.start})") from exc
    if fmt == "jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"{path.name} line {number}: invalid JSON ({exc.msg} at column {exc.colno})"
                ) from exc
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, list):
        raise InvalidInput(f"{path.name}: a JSON eval set must be an array of objects, got {type(data).__name__}")
    return [(f"item {i + 1}", row) for i, row in enumerate(data)]


def _text(value: Any, allow_number: bool) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def validate_eval_rows(rows: list[tuple[str, Any]], source: str, eval_type: str | None = None) -> list[dict[str, Any]]:
    """Return normalised eval records, or raise InvalidInput listing the bad rows (file, line/item/row, field)."""
    errors: list[str] = []
    records: list[dict[str, Any]] = []
    for location, row in rows:
        if not isinstance(row, dict):
            errors.append(f"{location}: expected an object with prompt and reference, got {type(row).__name__}")
            continue
        prompt = _text(row.get("prompt"), allow_number=False)
        reference = _text(row.get("reference"), allow_number=True)
        for field, value in (("prompt", prompt), ("reference", reference)):
            if value is None:
                got = "missing" if field not in row else f"got {json.dumps(row[field], ensure_ascii=False)[:40]}"
                errors.append(f"{location}: field '{field}' must be a non-empty string ({got})")
        category = row.get("category")
        if category is not None and _text(category, allow_number=True) is None:
            errors.append(f"{location}: field 'category' must be a string when present")
        tests = row.get("tests")
        if tests is not None and not isinstance(tests, str):
            errors.append(f"{location}: field 'tests' must be a string of Python test code")
        if eval_type == "code" and not (isinstance(tests, str) and tests.strip()):
            errors.append(f"{location}: field 'tests' is required for a code eval set (the reference tests)")
        if eval_type == "multiple_choice" and reference is not None and reference_choice(reference) is None:
            errors.append(f"{location}: field 'reference' must be an option letter (A-J) in a multiple-choice set")
        if prompt is None or reference is None:
            continue
        record = {
            "prompt": prompt,
            "reference": reference,
            "category": _text(category, allow_number=True) or UNCATEGORIZED,
        }
        if isinstance(tests, str) and tests.strip():
            record["tests"] = tests
        records.append(record)
    if errors:
        shown = "; ".join(errors[:MAX_REPORTED_ERRORS])
        more = f" (and {len(errors) - MAX_REPORTED_ERRORS} more)" if len(errors) > MAX_REPORTED_ERRORS else ""
        raise InvalidInput(f"{source}: {len(errors)} problem(s): {shown}{more}")
    if not records:
        raise InvalidInput(f"{source}: the file has no records")
    return records


def read_eval_file(path: Path | str, eval_type: str | None = None) -> list[dict[str, Any]]:
    """Read and validate an eval set file; return its records."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{path.name}: unsupported file type (use .json, .jsonl or .parquet)")
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    return validate_eval_rows(_read_rows(path, fmt), path.name, eval_type)


def add_eval_dataset(
    platform: Platform,
    path: Path | str,
    name: str,
    description: str | None = None,
    eval_type: str | None = None,
    original_name: str | None = None,
) -> dict[str, Any]:
    """Validate an eval set file and store it through the datasets area (type "eval"); return the record.

    Identical content with the same configuration is stored once: the existing record comes back."""
    from platform_core.datasets.service import add_dataset

    path = Path(path)
    name = check_name(name, "eval set name")
    if eval_type is not None and eval_type not in EVAL_TYPES:
        raise InvalidInput(f"evaluation type: {eval_type!r} is not one of {', '.join(EVAL_TYPES)}")
    records = read_eval_file(path, eval_type)
    config = {"eval_type": eval_type or "general", "categories": sorted({r["category"] for r in records})}
    result = add_dataset(platform, path, "eval", name, original_name, config, description)
    return get_eval_dataset(platform, result["id"])


def get_eval_dataset(platform: Platform, dataset_id: int | str) -> dict[str, Any]:
    """Return an eval set record by id or name (the latest version of that name)."""
    from platform_core.datasets.service import get_dataset

    try:
        row = get_dataset(platform, dataset_id)
    except NotFound:
        row = None
    if row is None or row["type"] != "eval":
        raise NotFound(f"eval set {dataset_id!r} does not exist (add one with `eval dataset-add FILE --name N`)")
    return row


def eval_type_of(record: dict[str, Any]) -> str:
    """Return the evaluation type stored in an eval set's field_config (default "general")."""
    return (record.get("field_config") or {}).get("eval_type") or "general"


def load_eval_records(platform: Platform, dataset_id: int | str) -> list[dict[str, Any]]:
    """Return the validated records of a stored eval set (prompt, reference, category, optional tests), reading the
    columns its field configuration names (prompt_field, reference_field, category_field)."""
    from platform_core.datasets.service import dataset_path

    record = get_eval_dataset(platform, dataset_id)
    path = dataset_path(platform, record)
    if not path.is_file():
        raise NotFound(f"eval set {record['name']!r}: its file {path} is missing")
    config = record.get("field_config") or {}
    columns = {
        "prompt": config.get("prompt_field") or "prompt",
        "reference": config.get("reference_field") or "reference",
        "category": config.get("category_field") or "category",
        "tests": "tests",
    }
    rows = _read_rows(path, record["format"])
    if any(column != role for role, column in columns.items()):
        rows = [
            (loc, {role: row.get(column) for role, column in columns.items() if column in row})
            if isinstance(row, dict) else (loc, row)
            for loc, row in rows
        ]  # fmt: skip
    return validate_eval_rows(rows, record.get("original_name") or path.name, eval_type_of(record))


def list_eval_datasets(platform: Platform) -> list[dict[str, Any]]:
    """Return the eval sets, newest first."""
    from platform_core.datasets.service import list_datasets

    return [row for row in list_datasets(platform) if row["type"] == "eval"]


def add_eval_dataset_upload(
    platform: Platform,
    filename: str,
    data: bytes,
    name: str,
    description: str | None = None,
    eval_type: str | None = None,
) -> dict[str, Any]:
    """Add an eval set from uploaded bytes (the browser's file); the file name gives its format."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(f"{filename}: unsupported file type (use .json, .jsonl or .parquet)")
    folder = platform.workspace.cache / "uploads" / hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    upload = folder / Path(filename).name  # keeps the user's file name in messages and in the record
    upload.write_bytes(data)
    try:
        return add_eval_dataset(platform, upload, name, description, eval_type, original_name=Path(filename).name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
