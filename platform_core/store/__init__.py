"""The platform's records in one SQLite file (WAL mode), shared safely by the app and the job supervisors."""

from platform_core.store.db import Store, open_store

__all__ = ["Store", "open_store"]
