"""Datasets: upload, validation per type, audit, preview, field configuration, conversion and sync.

The API other areas use lives in `platform_core.datasets.service` (records, loading, conversion for an engine,
demo registration) and `platform_core.datasets.sync` (`ensure_synced` for a remote job):

    from platform_core.datasets.service import get_dataset, load_records, convert_for
    path = convert_for(platform, dataset_id, "verl_rl")          # a Parquet file verl's RLHFDataset reads
    from platform_core.datasets.sync import ensure_synced
    remote = ensure_synced(platform, dataset_id, "gpu-box", "verl_rl")   # <workdir>/datasets/<file>.parquet
"""
