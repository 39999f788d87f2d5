"""Fixtures for the datasets tests: a writer of real dataset files, and a listing of the stored files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _jsonl(path: Path, records: list, encoding: str = "utf-8") -> Path:
    path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode(encoding))
    return path


def _json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _parquet(path: Path, records: list) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def write(tmp_path):
    """`write.jsonl(name, records)`, `write.json(...)`, `write.parquet(...)`, `write.raw(name, bytes)` -> Path."""
    folder = tmp_path / "in"
    folder.mkdir()
    return SimpleNamespace(
        folder=folder,
        jsonl=lambda name, records, encoding="utf-8": _jsonl(folder / name, records, encoding),
        json=lambda name, records: _json(folder / name, records),
        parquet=lambda name, records: _parquet(folder / name, records),
        raw=lambda name, data: _raw(folder / name, data),
    )


@pytest.fixture
def stored(platform):
    """A function listing every file under the workspace datasets/ folder (hidden temporary files included)."""
    return lambda: sorted(
        p.relative_to(platform.workspace.root) for p in platform.workspace.datasets.rglob("*") if p.is_file()
    )
