"""The store's schema, as an ordered list of migrations. Opening an older database applies the missing ones.

Never edit a migration that has shipped; add a new one at the end. Each runs inside one IMMEDIATE transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one by one inside the caller's transaction (`executescript` would commit it first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            conn.execute(buffer)
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]}")


def _initial(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        CREATE TABLE connections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            host TEXT NOT NULL,
            port INTEGER NOT NULL DEFAULT 22,
            username TEXT NOT NULL,
            auth TEXT NOT NULL,              -- 'password' or 'key'
            secret TEXT,                     -- Fernet token of {"password"| "private_key", "passphrase"}
            key_path TEXT,                   -- a private key file on this machine (not copied)
            workdir TEXT NOT NULL DEFAULT '~/verl_jobs',
            conda_env TEXT,
            python_path TEXT,
            host_key TEXT,                   -- trusted host key "type base64" (public)
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL,
            location TEXT NOT NULL DEFAULT 'local',   -- 'local' or a connection name
            source TEXT NOT NULL DEFAULT 'user',       -- demo, user, scan, export, merge, average
            architecture TEXT,
            model_type TEXT,
            params INTEGER,
            dtype TEXT,
            size_bytes INTEGER,
            meta TEXT,
            created_at REAL NOT NULL
        );
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            type TEXT NOT NULL,              -- sft, grpo, ppo, dpo, eval
            content_hash TEXT NOT NULL,
            path TEXT NOT NULL,
            original_name TEXT,
            format TEXT NOT NULL,            -- json, jsonl, parquet
            rows INTEGER NOT NULL,
            columns TEXT,
            size_bytes INTEGER NOT NULL,
            field_config TEXT,
            description TEXT,
            parent_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX datasets_name ON datasets(name);
        """,
    )


def _jobs_and_tasks(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            algorithm TEXT NOT NULL,         -- sft, grpo, ppo, dpo
            engine TEXT NOT NULL,            -- verl, trl
            target TEXT NOT NULL DEFAULT 'local',   -- 'local', 'ssh:<connection>', 'ray'
            spec TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            step INTEGER NOT NULL DEFAULT 0,
            total_steps INTEGER,
            output_dir TEXT,
            current_run_id INTEGER,
            health TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX jobs_state ON jobs(state);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'starting',
            pid INTEGER,
            pgid INTEGER,
            host TEXT,
            command TEXT,
            env TEXT,
            run_dir TEXT,
            log_path TEXT,
            metrics_path TEXT,
            started_at REAL,
            ended_at REAL,
            exit_code INTEGER,
            reason TEXT,
            remote TEXT,
            UNIQUE(job_id, attempt)
        );
        CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
            step INTEGER NOT NULL,
            path TEXT NOT NULL,
            location TEXT NOT NULL DEFAULT 'local',
            format TEXT,
            size_bytes INTEGER,
            metrics TEXT,
            hf_path TEXT,
            created_at REAL NOT NULL,
            UNIQUE(job_id, step)
        );
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            progress REAL NOT NULL DEFAULT 0,
            message TEXT,
            params TEXT,
            result TEXT,
            log_path TEXT,
            pid INTEGER,
            error TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL
        );
        CREATE INDEX tasks_kind ON tasks(kind, state);
        CREATE TABLE eval_runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            model_ref TEXT NOT NULL,
            model_path TEXT NOT NULL,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            metrics TEXT,
            gen_params TEXT,
            target TEXT NOT NULL DEFAULT 'local',
            state TEXT NOT NULL DEFAULT 'pending',
            progress REAL NOT NULL DEFAULT 0,
            task_id INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
            output_dir TEXT,
            summary TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE dataset_syncs (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
            remote_path TEXT,
            content_hash TEXT,
            status TEXT NOT NULL,            -- synced, syncing, failed
            error TEXT,
            synced_at REAL,
            PRIMARY KEY (dataset_id, connection_id)
        );
        """,
    )


MIGRATIONS: list[tuple[int, str, Callable[[sqlite3.Connection], None]]] = [
    (1, "initial: settings, connections, models, datasets", _initial),
    (2, "jobs, runs, checkpoints, tasks, eval runs, dataset syncs", _jobs_and_tasks),
]

LATEST_VERSION = MIGRATIONS[-1][0]

# Columns that hold JSON text; the store decodes them on read.
JSON_COLUMNS: dict[str, set[str]] = {
    "settings": {"value"},
    "models": {"meta"},
    "datasets": {"columns", "field_config"},
    "jobs": {"spec", "health"},
    "runs": {"command", "env", "remote"},
    "checkpoints": {"metrics"},
    "tasks": {"params", "result"},
    "eval_runs": {"metrics", "gen_params", "summary"},
}
