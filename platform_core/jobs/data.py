"""The dataset a job reads: the training dataset converted to its engine's format, with its row count."""

from __future__ import annotations

from pathlib import Path

from platform_core.context import Platform


def converted_dataset(platform: Platform, dataset_ref: int | str, data_format: str) -> tuple[Path, int]:
    """Return (local Parquet path, rows) of a dataset in an engine format (verl_sft, verl_rl, trl_dpo, trl_rl)."""
    import pyarrow.parquet as pq

    from platform_core.datasets.service import convert_for

    path = convert_for(platform, dataset_ref, data_format)
    return path, pq.ParquetFile(path).metadata.num_rows
