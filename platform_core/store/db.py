"""SQLite access through sqlite-utils: WAL mode, a busy timeout, IMMEDIATE write transactions and migrations.

Several processes write at once (the app, job supervisors, task workers). WAL lets readers proceed while one
writer writes; `busy_timeout` makes a second writer wait instead of failing; read-modify-write sequences take the
write lock up front (`BEGIN IMMEDIATE`) so they never fail on a lock upgrade. A retry loop covers what is left.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from platform_core.errors import NotFound, SchemaError
from platform_core.store.migrations import JSON_COLUMNS, LATEST_VERSION, MIGRATIONS

BUSY_TIMEOUT_MS = 30_000
_RETRIES = 8


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _retry_locked(fn, *args, **kwargs):
    """Call fn, retrying with backoff while SQLite reports a lock the busy timeout did not absorb."""
    for attempt in range(_RETRIES):
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == _RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the database's schema version (0 for an empty database)."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if not has_table:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        if tables:
            raise SchemaError("this SQLite file has tables but no schema_version: it is not a platform database")
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, path: Path | str = "the database", upto: int | None = None) -> int:
    """Apply the missing migrations (up to `upto`, default all) and return the resulting version."""
    target = LATEST_VERSION if upto is None else upto
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > LATEST_VERSION:
            raise SchemaError(
                f"{path} has schema version {current}, but this version of the platform knows versions up to "
                f"{LATEST_VERSION}. Upgrade the platform, or point PLATFORM_HOME at another workspace. "
                "The database was not changed."
            )
        if current == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, description TEXT, applied_at REAL)")
        for version, description, apply in MIGRATIONS:
            if current < version <= target:
                apply(conn)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, time.time()))
                current = version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current


class Store:
    """Records of the platform. One instance may be shared by threads: each thread gets its own connection."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise SchemaError(f"{self.path}: could not switch SQLite to WAL mode (got {mode})")
        _retry_locked(migrate, conn, self.path)
        self._local.conn = conn

    # -- connections -------------------------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """A sqlite-utils view of this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None or db.conn is not self.conn:
            db = sqlite_utils.Database(self.conn)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one IMMEDIATE transaction (takes the write lock first, so it cannot fail midway on it)."""
        conn = self.conn
        _retry_locked(conn.execute, "BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- records -----------------------------------------------------------------------------------------------
    def _encode(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        json_cols = JSON_COLUMNS.get(table, set())
        return {
            k: (json.dumps(v, ensure_ascii=False) if k in json_cols and v is not None else v) for k, v in record.items()
        }

    def _decode(self, table: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        for col in JSON_COLUMNS.get(table, set()):
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
        return row

    def insert(self, table: str, record: dict[str, Any]) -> int:
        """Insert a record and return its id."""
        enc = self._encode(table, record)
        cols = ", ".join(enc)
        marks = ", ".join("?" for _ in enc)
        cur = _retry_locked(self.conn.execute, f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(enc.values()))
        return int(cur.lastrowid)

    def update(self, table: str, record_id: int, **changes: Any) -> None:
        """Set the given columns of one record."""
        if not changes:
            return
        enc = self._encode(table, changes)
        assignments = ", ".join(f"{k} = ?" for k in enc)
        _retry_locked(self.conn.execute, f"UPDATE {table} SET {assignments} WHERE id = ?", (*enc.values(), record_id))

    def delete(self, table: str, record_id: int) -> None:
        """Delete one record (dependent records follow the schema's ON DELETE rules)."""
        _retry_locked(self.conn.execute, f"DELETE FROM {table} WHERE id = ?", (record_id,))

    def get(self, table: str, record_id: int) -> dict[str, Any] | None:
        """Return one record by id, or None."""
        rows = self.find(table, "id = ?", (record_id,), limit=1)
        return rows[0] if rows else None

    def require(self, table: str, record_id: int, what: str | None = None) -> dict[str, Any]:
        """Return one record by id, or raise NotFound naming it."""
        row = self.get(table, record_id)
        if row is None:
            raise NotFound(f"{what or table[:-1]} #{record_id} does not exist")
        return row

    def find(
        self,
        table: str,
        where: str | None = None,
        params: Sequence[Any] = (),
        order_by: str | None = None,
        limit: int | None = None,
        columns: str = "*",
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return records matching a WHERE clause (with ? parameters), decoded."""
        rows = _retry_locked(
            lambda: list(
                self.db.table(table).rows_where(
                    where, list(params), order_by=order_by, limit=limit, offset=offset or None, select=columns
                )
            )
        )
        return [self._decode(table, row) for row in rows]

    def find_one(self, table: str, where: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """Return the first record matching a WHERE clause, or None."""
        rows = self.find(table, where, params, limit=1)
        return rows[0] if rows else None

    def count(self, table: str, where: str | None = None, params: Sequence[Any] = ()) -> int:
        """Return how many records match."""
        return int(_retry_locked(self.db.table(table).count_where, where, list(params)))

    # -- settings ----------------------------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """Return a setting's value (JSON-decoded), or the default."""
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None or row[0] is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store a setting (any JSON-serialisable value)."""
        _retry_locked(
            self.conn.execute,
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, ensure_ascii=False)),
        )

    def version(self) -> int:
        """Return the schema version of the open database."""
        return schema_version(self.conn)


def open_store(path: Path | str) -> Store:
    """Open (creating or upgrading) the store at `path`."""
    return Store(path)
