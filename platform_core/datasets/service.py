"""Dataset records: add (upload), list, get, field configuration, preview, export, conversion, removal, demo sets.

A dataset's file lives in the workspace `datasets/` folder under its content hash (`datasets/<sha256[:32]>.jsonl`);
the record (table `datasets`) keeps its name, type, rows, columns, size, format, field configuration, description
and `parent_id` (the version it replaces). Records are immutable in content: a fixed file or a cleaned export is a
new record with the same name (a new version, `parent_id` set); `get_dataset(platform, "name")` gives the latest.

    result = add_dataset(platform, Path("train.jsonl"), "sft", "my-sft")   # {"id": 3, "rows": 1200, ...}
    frame = load_records(platform, 3)                                       # a pandas DataFrame
    path = convert_for(platform, 3, "verl_sft")                             # Parquet for verl's SFT trainer
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from platform_core.context import Platform
from platform_core.datasets.convert import DEFAULT_TARGET, check_target, conversion_config, convert_table
from platform_core.datasets.loader import EXTENSIONS, arrow_kind, format_for, ingest
from platform_core.datasets.schemas import (
    OWN_KEYS,
    Prepared,
    check_type,
    prepare,
    refuse_if_unusable,
    resolve_field_config,
)
from platform_core.errors import InvalidInput, NotFound
from platform_core.security.validation import check_name

LIST_COLUMNS = (
    "id, name, type, rows, size_bytes, format, created_at, content_hash, parent_id, original_name, "
    "description, field_config, columns"
)


# -- records -------------------------------------------------------------------------------------------------------
def dataset_path(platform: Platform, record: dict[str, Any]) -> Path:
    """The absolute path of a dataset's stored file (records keep it relative to the workspace root)."""
    path = Path(record["path"])
    return path if path.is_absolute() else platform.workspace.root / path


def get_dataset(platform: Platform, ref: str | int) -> dict[str, Any]:
    """Return a dataset record by id, or by name (the latest version of that name); raise NotFound naming it."""
    row = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        row = platform.store.get("datasets", int(ref))
    if row is None and isinstance(ref, str):
        rows = platform.store.find("datasets", "name = ?", (ref.strip(),), order_by="id DESC", limit=1)
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"dataset {ref!r} does not exist (list them with `dataset list`)")
    return row


resolve_dataset = get_dataset


def list_datasets(platform: Platform) -> list[dict[str, Any]]:
    """All datasets, newest first, each with its `version` (1, 2, ... among records of the same name)."""
    rows = platform.store.find("datasets", order_by="id DESC", columns=LIST_COLUMNS)
    seen: dict[str, int] = {}
    for row in reversed(rows):
        seen[row["name"]] = seen.get(row["name"], 0) + 1
        row["version"] = seen[row["name"]]
    return rows


def _display_name(source: Path | BinaryIO, original_name: str | None) -> str:
    if original_name:
        return Path(original_name).name
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return Path(getattr(source, "name", "upload")).name


def _check_source(source: Path | BinaryIO) -> Path | BinaryIO:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidInput(f"dataset file: {path} does not exist or is not a file")
        return path
    return source


def add_dataset(
    platform: Platform,
    source: Path | BinaryIO,
    dataset_type: str,
    name: str,
    original_name: str | None = None,
    field_config: dict[str, Any] | None = None,
    description: str | None = None,
    convert_encoding: bool | str = False,
    parent_id: int | None = None,
) -> dict[str, Any]:
    """Validate and store a dataset file (a path or a binary stream such as an upload); return its id and summary.

    Returns {"id", "name", "rows", "columns", "format", "encoding", "existing", "flagged", "warnings"}. Identical
    content is stored once: when the latest version of `name` already holds it (same type and field configuration)
    that record comes back with `existing: True`; under another name (or over another latest version) a new record
    is made that shares the stored file (`shares_file_with`: the id of a record holding it). A file that cannot be
    used raises InvalidInput and leaves nothing behind.
    """
    dataset_type = check_type(dataset_type)
    name = check_name(name, "dataset name")
    source = _check_source(source)
    display = _display_name(source, original_name)
    fmt = format_for(display)
    folder = platform.workspace.datasets
    incoming = ingest(source, folder, display, fmt, convert_encoding)
    try:
        prepared = prepare(incoming.path, fmt, dataset_type, field_config, display)
        refuse_if_unusable(prepared.loaded, prepared.validation)
        summary = _summary(prepared, incoming.encoding)
        latest = platform.store.find("datasets", "name = ?", (name,), order_by="id DESC", limit=1)
        same = [
            r
            for r in platform.store.find(
                "datasets", "content_hash = ? AND type = ?", (incoming.content_hash, dataset_type), order_by="id"
            )
            if r["field_config"] == prepared.config and dataset_path(platform, r).is_file()
        ]
        if same and latest and latest[0]["id"] in {r["id"] for r in same}:
            # The name's current version already is this content: nothing new to store.
            existing = latest[0]
            summary["warnings"].insert(
                0,
                f"identical content is already stored as dataset #{existing['id']} {existing['name']!r}; that record "
                "is reused",
            )
            return {"id": existing["id"], "name": existing["name"], "existing": True, **summary}
        if same:  # the content is stored under another name (or an older version): a new record shares the file
            summary["warnings"].insert(
                0,
                f"identical content is already stored as dataset #{same[0]['id']} {same[0]['name']!r}; the file is "
                f"shared and a new record is made under the name {name!r}",
            )
            summary["shares_file_with"] = same[0]["id"]
        final = folder / f"{incoming.content_hash[:32]}{EXTENSIONS[fmt]}"
        created = not final.exists()
        if created:
            os.replace(incoming.path, final)
        try:
            with platform.store.transaction():
                if parent_id is None:
                    previous = platform.store.find("datasets", "name = ?", (name,), order_by="id DESC", limit=1)
                    parent_id = previous[0]["id"] if previous else None
                dataset_id = platform.store.insert(
                    "datasets",
                    {
                        "name": name,
                        "type": dataset_type,
                        "content_hash": incoming.content_hash,
                        "path": str(final.relative_to(platform.workspace.root)),
                        "original_name": display,
                        "format": fmt,
                        "rows": prepared.loaded.rows,
                        "columns": summary["columns"],
                        "size_bytes": incoming.size,
                        "field_config": prepared.config,
                        "description": (description or "").strip() or None,
                        "parent_id": parent_id,
                        "created_at": time.time(),
                    },
                )
        except BaseException:
            if created:
                final.unlink(missing_ok=True)
            raise
        return {"id": dataset_id, "name": name, "existing": False, "parent_id": parent_id, **summary}
    finally:
        incoming.path.unlink(missing_ok=True)


def _summary(prepared: Prepared, encoding: str) -> dict[str, Any]:
    validation = prepared.validation
    empty, errors = validation.mask("empty"), validation.mask("format_errors")
    warnings = []
    if encoding not in ("utf-8", "utf-8 with BOM", "binary"):
        warnings.append(f"converted from {encoding} to UTF-8")
    flagged = int((empty | errors).sum())
    if flagged:
        first = validation.row_errors(prepared.loaded, limit=3)
        warnings.append(
            f"{flagged} of {validation.rows} rows are flagged ({int(empty.sum())} empty, {int(errors.sum())} format "
            "errors) and will be left out of conversions; see the audit, or export a cleaned version. First: "
            + "; ".join(e["message"] for e in first)
        )
    return {
        "rows": prepared.loaded.rows,
        "columns": [{"name": f.name, "type": str(f.type)} for f in prepared.loaded.table.schema],
        "format": prepared.loaded.format,
        "encoding": encoding,
        "field_config": prepared.config,
        "flagged": flagged,
        "warnings": warnings,
    }


# -- loading (with a small per-process cache: the page reruns often) ----------------------------------------------
_prepared_cache: OrderedDict[tuple, Prepared] = OrderedDict()
_cache_lock = threading.Lock()
PREPARED_CACHE_SIZE = 2


def prepare_dataset(platform: Platform, ref: str | int | dict[str, Any]) -> Prepared:
    """Load and validate a stored dataset under its field configuration (kept for reuse while the file is unchanged)."""
    record = ref if isinstance(ref, dict) else get_dataset(platform, ref)
    path = dataset_path(platform, record)
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise NotFound(f"dataset #{record['id']} {record['name']!r}: its file {path} is missing") from exc
    key = (
        str(path),
        stat.st_mtime_ns,
        stat.st_size,
        record["type"],
        json.dumps(record["field_config"], sort_keys=True),
    )
    with _cache_lock:
        if key in _prepared_cache:
            _prepared_cache.move_to_end(key)
            return _prepared_cache[key]
    prepared = prepare(
        path, record["format"], record["type"], record["field_config"], record["original_name"] or path.name
    )
    with _cache_lock:
        _prepared_cache[key] = prepared
        while len(_prepared_cache) > PREPARED_CACHE_SIZE:
            _prepared_cache.popitem(last=False)
    return prepared


def load_table(platform: Platform, ref: str | int, valid_only: bool = False) -> pa.Table:
    """A dataset's rows as an Arrow table (only the rows without empty/format problems when `valid_only`)."""
    prepared = prepare_dataset(platform, ref)
    table = prepared.loaded.table
    return table.filter(pa.array(prepared.validation.valid_mask())) if valid_only else table


def load_records(platform: Platform, ref: str | int, valid_only: bool = False, as_frame: bool = True):
    """A dataset's rows as a pandas DataFrame (default) or a list of dicts."""
    table = load_table(platform, ref, valid_only)
    return table.to_pandas() if as_frame else table.to_pylist()


# -- field configuration -------------------------------------------------------------------------------------------
def update_field_config(platform: Platform, ref: str | int, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a dataset's field configuration (prompt/response/answer/label fields); return the new configuration."""
    record = get_dataset(platform, ref)
    unknown = set(changes) - OWN_KEYS
    if unknown:
        raise InvalidInput(f"field configuration: unknown keys {', '.join(sorted(unknown))}")
    config = {**record["field_config"], **changes}
    if "format" in changes and changes["format"] not in (None, "prompt_response", "messages"):
        raise InvalidInput(f"SFT format: {changes['format']!r} is neither 'prompt_response' nor 'messages'")
    path = dataset_path(platform, record)
    from platform_core.datasets.loader import load_table as read
    from platform_core.datasets.schemas import column_rules

    loaded = read(path, record["format"], record["original_name"], column_rules(record["type"], config))
    resolved = resolve_field_config(
        record["type"],
        config,
        loaded.table,
        record["original_name"] or path.name,
        "The field configuration was not changed.",
    )
    platform.store.update("datasets", record["id"], field_config=resolved)
    return resolved


# -- preview -------------------------------------------------------------------------------------------------------
def _search_mask(table: pa.Table, text: str) -> np.ndarray:
    mask = np.zeros(table.num_rows, dtype=bool)
    for name in table.column_names:
        column = table.column(name)
        kind = arrow_kind(column.type)
        if kind == "string":
            hit = pc.match_substring(column, text, ignore_case=True)
            mask |= np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        elif kind in ("number", "boolean"):
            hit = pc.match_substring(pc.cast(column, pa.string()), text, ignore_case=True)
            mask |= np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        elif kind == "array" and pa.types.is_struct(column.type.value_type):
            lists = column.combine_chunks()
            flat = lists.flatten()
            if flat.type.get_field_index("content") >= 0 and arrow_kind(flat.type.field("content").type) == "string":
                hit = np.asarray(
                    pc.match_substring(flat.field("content"), text, ignore_case=True)
                    .fill_null(False)
                    .to_numpy(zero_copy_only=False),
                    dtype=bool,
                )
                parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False))
                mask[np.unique(parents[hit])] = True
    return mask


def preview(
    platform: Platform,
    ref: str | int,
    page: int = 0,
    page_size: int = 20,
    search: str = "",
    rows: list[int] | None = None,
) -> dict[str, Any]:
    """One page of rows (each with its 0-based `_row`), optionally only rows containing `search` or only `rows`."""
    prepared = prepare_dataset(platform, ref)
    table = prepared.loaded.table
    if page_size <= 0 or page < 0:
        raise InvalidInput("preview: page must be >= 0 and page size > 0")
    candidates = np.arange(table.num_rows) if rows is None else np.asarray(sorted(set(rows)), dtype=np.int64)
    if search.strip():
        candidates = candidates[_search_mask(table, search.strip())[candidates]]
    total = len(candidates)
    chosen = candidates[page * page_size : (page + 1) * page_size]
    records = table.take(pa.array(chosen, pa.int64())).to_pylist() if len(chosen) else []
    for row, record in zip(chosen, records, strict=True):
        record["_row"] = int(row)
    return {
        "total": int(total),
        "page": page,
        "page_size": page_size,
        "pages": max(1, -(-total // page_size)),
        "rows": records,
    }


def record_detail(platform: Platform, ref: str | int, row: int) -> dict[str, Any]:
    """One row as a dict, where it is in the file, and its problems (empty / format errors) if any."""
    prepared = prepare_dataset(platform, ref)
    if not 0 <= row < prepared.loaded.rows:
        raise InvalidInput(f"row: {row} is outside 0..{prepared.loaded.rows - 1}")
    record = prepared.loaded.table.slice(row, 1).to_pylist()[0]
    problems = [
        {"field": p.field, "problem": p.problem, "check": p.check, "message": p.text(row)}
        for p in prepared.validation.problems
        if row in set(p.rows.tolist())
    ]
    return {"row": row, "place": prepared.loaded.place(row), "record": record, "problems": problems}


# -- export of a cleaned version -----------------------------------------------------------------------------------
DEFAULT_DROP = ("empty", "format_errors", "duplicate_normalized")


def flagged_rows(platform: Platform, ref: str | int, checks: tuple[str, ...] | list[str]) -> np.ndarray:
    """Rows flagged by any of the given checks (from the cached or freshly computed audit)."""
    from platform_core.datasets.audit import CHECKS, audit_dataset

    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise InvalidInput(f"checks: unknown {', '.join(sorted(unknown))} (choose from {', '.join(CHECKS)})")
    result = audit_dataset(platform, ref)
    rows = set()
    for check in checks:
        rows.update(result["checks"][check]["rows"])
    return np.asarray(sorted(rows), dtype=np.int64)


def export_cleaned(
    platform: Platform,
    ref: str | int,
    drop: tuple[str, ...] | list[str] = DEFAULT_DROP,
    name: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Store the dataset without the rows flagged by the `drop` checks, as a new version (parent_id set)."""
    record = get_dataset(platform, ref)
    dropped = flagged_rows(platform, record["id"], tuple(drop))
    loaded = prepare_dataset(platform, record).loaded
    keep = np.setdiff1d(np.arange(loaded.rows), dropped)
    if len(keep) == 0:
        raise InvalidInput(f"dataset #{record['id']}: every row is flagged by {', '.join(drop)}; nothing to export")
    fmt = "parquet" if record["format"] == "parquet" else "jsonl"
    stem = Path(record["original_name"] or record["name"]).stem
    tmp_dir = platform.workspace.cache / "datasets" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}{EXTENSIONS[fmt]}"
    try:
        copy_rows(dataset_path(platform, record), record["format"], loaded, keep, tmp)
        result = add_dataset(
            platform,
            tmp,
            record["type"],
            name or record["name"],
            original_name=f"{stem}.clean{EXTENSIONS[fmt]}",
            field_config=record["field_config"],
            description=description or f"dataset #{record['id']} without rows flagged by {', '.join(drop)}",
            parent_id=record["id"],
        )
    finally:
        tmp.unlink(missing_ok=True)
    return {**result, "dropped": int(len(dropped)), "dropped_rows": dropped.tolist(), "source_id": record["id"]}


def copy_rows(source: Path, fmt: str, loaded, keep: np.ndarray, out: Path) -> None:
    """Write the rows `keep` (sorted 0-based) of a stored file to `out` exactly as the source holds them.

    JSON Lines: the source lines themselves; a JSON array: its elements as JSON Lines (decoded and re-encoded, so
    values keep their types); Parquet: the source table's rows (types and encodings kept). The loaded table is not
    used for the values: it holds null where a value had the wrong type for its role.
    """
    from platform_core.datasets.loader import _ArrayReader

    if fmt == "parquet":
        pq.write_table(pq.read_table(source).take(pa.array(keep, pa.int64())), out)
        return
    if fmt == "jsonl":
        lines = loaded.line_numbers()
        wanted = np.zeros(int(lines[-1]) + 1 if len(lines) else 1, dtype=bool)
        wanted[lines[keep]] = True
        with open(source, "rb") as handle, open(out, "wb") as sink:
            for number, raw in enumerate(handle, 1):
                if number < len(wanted) and wanted[number]:
                    sink.write(raw if raw.endswith(b"\n") else raw + b"\n")
        return
    wanted = np.zeros(loaded.rows, dtype=bool)
    wanted[keep] = True
    with open(out, "wb") as sink:
        for row, (_, value) in enumerate(_ArrayReader(source, loaded.name)):
            if row < len(wanted) and wanted[row]:
                try:
                    line = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
                except TypeError:  # an integer beyond 64 bits
                    line = json.dumps(value, ensure_ascii=False).encode()
                sink.write(line + b"\n")


def write_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Write rows as Parquet, or as JSON Lines / a JSON array (streamed batch by batch)."""
    if fmt == "parquet":
        pq.write_table(table, path)
        return
    with open(path, "wb") as out:
        if fmt == "json":
            out.write(b"[\n")
        first = True
        for batch in table.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                line = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS)
                if fmt == "json":
                    out.write((b"" if first else b",\n") + line)
                else:
                    out.write(line + b"\n")
                first = False
        if fmt == "json":
            out.write(b"\n]\n")


# -- conversion ----------------------------------------------------------------------------------------------------
def converted_dir(platform: Platform) -> Path:
    return platform.workspace.cache / "datasets" / "converted"


def converted_name(record: dict[str, Any], target: str) -> str:
    """File name of a conversion: content hash, target and a hash of what in the field configuration shapes the file.

    Label fields (and keys other areas keep in the configuration) are left out: editing them changes no converted
    file, so it must not change the name (a new name reads as "changed since sync" and is uploaded again).
    """
    import hashlib

    key = conversion_config(record["type"], record["field_config"] or {})
    config = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return f"{record['content_hash'][:16]}-{target}-{config}.parquet"


def convert_for(platform: Platform, ref: str | int, target: str | None = None) -> Path:
    """Return a Parquet file of the dataset in an engine's format (verl_rl, verl_sft, trl_dpo, trl_rl, raw).

    The file is versioned by content hash and field configuration, written once and reused.
    """
    record = get_dataset(platform, ref)
    target = check_target(record["type"], target or DEFAULT_TARGET[record["type"]])
    out = converted_dir(platform) / converted_name(record, target)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    table = convert_table(
        prepare_dataset(platform, record), target, {"dataset_id": record["id"], "content_hash": record["content_hash"]}
    )
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# -- removal -------------------------------------------------------------------------------------------------------
def remove_dataset(platform: Platform, ref: str | int) -> dict[str, Any]:
    """Delete a dataset record, and its file and cached audits/conversions when no other record shares them."""
    from platform_core.datasets.audit import forget_audits

    record = get_dataset(platform, ref)
    platform.store.delete("datasets", record["id"])
    removed_file = False
    if not platform.store.count("datasets", "path = ?", (record["path"],)):
        dataset_path(platform, record).unlink(missing_ok=True)
        removed_file = True
    if not platform.store.count("datasets", "content_hash = ?", (record["content_hash"],)):
        forget_audits(platform, record["content_hash"])
        directory = converted_dir(platform)
        if directory.is_dir():
            for path in directory.glob(f"{record['content_hash'][:16]}-*"):
                path.unlink(missing_ok=True)
    return {"id": record["id"], "name": record["name"], "file_removed": removed_file}


# -- demo ----------------------------------------------------------------------------------------------------------
def register_demo_datasets(platform: Platform, files: dict[str, Path]) -> dict[str, int]:
    """Register the demo kit's files ({key: path}) as datasets named demo-<key>; idempotent. Return {key: id}.

    A key is a dataset type, or a validation set named in the demo kit's VALIDATION_SETS (e.g. sft_val -> sft).
    """
    from platform_core.workspace.demo import VALIDATION_SETS

    ids = {}
    for key, path in files.items():
        dataset_type = VALIDATION_SETS.get(key, key)
        name = f"demo-{key.replace('_', '-')}"
        ids[key] = add_dataset(platform, Path(path), dataset_type, name, description="demo kit")["id"]
    return ids
