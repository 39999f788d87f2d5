"""The store: migrations, refusal of newer schemas, JSON columns, and many writers at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from platform_core.errors import SchemaError
from platform_core.store import Store
from platform_core.store.db import migrate
from platform_core.store.migrations import LATEST_VERSION


def test_old_schema_is_upgraded_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, upto=1) == 1
    conn.execute("INSERT INTO models (name, path, created_at) VALUES ('kept', '/m', 1)")
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone()
    conn.close()

    store = Store(path)
    assert store.version() == LATEST_VERSION
    assert store.find_one("models", "name = ?", ("kept",))["path"] == "/m"
    job_id = store.insert(
        "jobs",
        {"name": "j", "algorithm": "sft", "engine": "verl", "spec": {"lr": 1e-5}, "created_at": 1, "updated_at": 1},
    )
    assert store.get("jobs", job_id)["spec"] == {"lr": 1e-5}


def test_newer_schema_is_refused_without_change(tmp_path):
    path = tmp_path / "new.db"
    Store(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST_VERSION + 5,))
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match=f"schema version {LATEST_VERSION + 5}"):
        Store(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE something (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="not a platform database"):
        Store(path)


def test_wal_mode_and_settings_roundtrip(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.set_setting("model_dirs", {"local": ["/data/models"]})
    assert store.get_setting("model_dirs") == {"local": ["/data/models"]}
    assert store.get_setting("missing", 7) == 7


WRITER = textwrap.dedent(
    """
    import sys
    from platform_core.store import Store
    store = Store(sys.argv[1])
    for i in range(150):
        with store.transaction() as conn:
            n = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
            conn.execute("INSERT INTO tasks (kind, title, created_at) VALUES ('w', ?, ?)", (f"{sys.argv[2]}-{n}", i))
        store.update("tasks", 1, progress=i / 150)
    """
)


def test_concurrent_writers_never_see_database_locked(tmp_path):
    path = tmp_path / "busy.db"
    store = Store(path)
    store.insert("tasks", {"kind": "w", "title": "seed", "created_at": 0})
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{i}"], stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for _ in range(150):
        store.find("tasks", order_by="id DESC", limit=5)
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
    assert store.count("tasks") == 1 + 4 * 150
