"""Sync datasets to a remote server (SSH mode): what the engines read, content-addressed, uploaded atomically.

What travels is the converted Parquet a job reads (`convert_for`; by default the type's engine format: SFT ->
verl_sft, GRPO/PPO -> verl_rl, DPO -> trl_dpo, eval -> raw), or with kind "original" the uploaded file itself. The
remote path is `<workdir>/datasets/<file name>`, where the file name carries the content hash, the format and a hash
of the field configuration (`3f2a...-verl_rl-1c9e0b7d.parquet`), so a file already there with the right size is
never uploaded again. Uploads go to `<name>.partial-<ms>` and are renamed at the end (`SSHSession.put_atomic`): an
interrupted transfer leaves nothing under the final name, and leftovers are removed by the next sync.

Status per dataset and connection (table dataset_syncs, the default kind only): synced; syncing; failed (with the
error, e.g. disk full or permission denied); changed (an older version, or another field configuration, is on the
server); not_synced.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platform_core.connections import get_connection
from platform_core.context import Platform
from platform_core.datasets.convert import DEFAULT_TARGET, TARGETS
from platform_core.datasets.service import convert_for, converted_name, dataset_path, get_dataset, list_datasets
from platform_core.errors import InvalidInput, RemoteError
from platform_core.tasks import ACTIVE_STATES, TaskContext, task_kind

STATES = ("synced", "syncing", "failed", "changed", "not_synced")
Transfer = Callable[[int, int], None]


def default_kind(record: dict[str, Any]) -> str:
    return DEFAULT_TARGET[record["type"]]


def remote_file_name(record: dict[str, Any], kind: str) -> str:
    """The file name a dataset has on a server for a kind (a conversion target, or "original")."""
    if kind == "original":
        return Path(record["path"]).name
    return converted_name(record, kind)


def _local_file(platform: Platform, record: dict[str, Any], kind: str) -> Path:
    if kind == "original":
        return dataset_path(platform, record)
    return convert_for(platform, record["id"], kind)


def _set_state(platform: Platform, dataset_id: int, connection_id: int, **values: Any) -> None:
    """Insert or update the (dataset, connection) sync row."""
    row = {"dataset_id": dataset_id, "connection_id": connection_id, **values}
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    updates = ", ".join(f"{k} = excluded.{k}" for k in values)
    with platform.store.transaction() as conn:
        conn.execute(
            f"INSERT INTO dataset_syncs ({columns}) VALUES ({marks}) "
            f"ON CONFLICT(dataset_id, connection_id) DO UPDATE SET {updates}",
            tuple(row.values()),
        )


def ensure_synced(
    platform: Platform,
    dataset_id: int | str,
    connection: str | int,
    kind: str | None = None,
    session=None,
    progress: Transfer | None = None,
) -> str:
    """Make sure a dataset is on a server in the given kind; return its absolute remote path.

    `kind`: a conversion target (verl_rl, verl_sft, trl_dpo, trl_rl, raw) or "original"; default: the type's
    engine format. Nothing is uploaded when a file of the same name and size is already there. Raises RemoteError
    naming the step (disk full, permission denied, dropped connection); the final name never holds a partial file.
    """
    from platform_core.runners.ssh import open_session

    record = get_dataset(platform, dataset_id)
    kind = check_kind(kind) or default_kind(record)
    profile = get_connection(platform, connection)
    tracked = kind == default_kind(record)
    local = _local_file(platform, record, kind)
    own_session = session is None
    session = session or open_session(platform, profile["id"])

    def mark(status: str, **values: Any) -> None:
        if tracked:  # the table tracks the type's default format only
            _set_state(platform, record["id"], profile["id"], status=status, **values)

    try:
        folder = posixpath.join(session.workdir(), "datasets")
        remote = posixpath.join(folder, remote_file_name(record, kind))
        there = {"remote_path": remote, "content_hash": record["content_hash"], "error": None}
        size = local.stat().st_size
        if session.file_size(remote) == size:
            mark("synced", **there, synced_at=time.time())
            return remote
        mark("syncing", **there, synced_at=time.time())
        try:
            session.mkdirs(folder)
            session.run(
                ["find", folder, "-maxdepth", "1", "-name", posixpath.basename(remote) + ".partial-*", "-delete"],
                timeout=30,
            )
            session.put_atomic(str(local), remote, progress=progress)
        except RemoteError as exc:
            error = _diagnose(session, folder, size, exc)
            mark("failed", error=str(error))
            if error is exc:
                raise
            raise error from exc
        mark("synced", **there, synced_at=time.time())
        return remote
    finally:
        if own_session:
            session.close()


def _diagnose(session, folder: str, size: int, exc: RemoteError) -> RemoteError:
    """Name a full disk when that is why an upload failed (SFTP servers often report it as a size mismatch)."""
    if "disk may be full" in str(exc) or "permission denied" in str(exc).lower():
        return exc
    try:
        result = session.run(["df", "-Pk", folder], timeout=15)
        free_kib = int(result.stdout.strip().splitlines()[-1].split()[3]) if result.exited == 0 else None
    except (RemoteError, ValueError, IndexError):
        return exc
    if free_kib is not None and free_kib * 1024 < size:
        return RemoteError(
            f"{exc}. The remote disk is full: {free_kib} KiB free in {folder} on {session.describe()}, the file "
            f"needs {-(-size // 1024)} KiB (the disk may be full; free some space and sync again)"
        )
    return exc


def sync_status(
    platform: Platform, connection: str | int, records: list[dict[str, Any]] | None = None
) -> dict[int, dict[str, Any]]:
    """Status of every dataset (or of `records`) on a server: {id: {status, remote_path, synced_at, error}}."""
    profile = get_connection(platform, connection)
    records = records if records is not None else list_datasets(platform)
    rows = {r["dataset_id"]: r for r in platform.store.find("dataset_syncs", "connection_id = ?", (profile["id"],))}
    active = platform.store.count("tasks", f"kind = 'datasets.sync' AND state IN {ACTIVE_STATES}")
    by_id = {r["id"]: r for r in records}
    out = {}
    for record in records:
        row = rows.get(record["id"])
        info = {"status": "not_synced", "remote_path": None, "synced_at": None, "error": None}
        if row is None:
            ancestor = record.get("parent_id")
            while ancestor is not None:
                if ancestor in rows and rows[ancestor]["status"] == "synced":
                    info["status"] = "changed"
                    break
                parent = by_id.get(ancestor) or platform.store.get("datasets", ancestor)
                ancestor = parent.get("parent_id") if parent else None
        else:
            info.update(remote_path=row["remote_path"], synced_at=row["synced_at"], error=row["error"])
            current = remote_file_name(record, default_kind(record))
            if row["status"] == "syncing":
                info["status"] = "syncing" if active else "failed"
                if not active:
                    info["error"] = info["error"] or "the transfer was interrupted"
            elif row["status"] == "failed":
                info["status"] = "failed"
            elif (
                row["content_hash"] == record["content_hash"]
                and posixpath.basename(row["remote_path"] or "") == current
            ):
                info["status"] = "synced"
            else:
                info["status"] = "changed"
        out[record["id"]] = info
    return out


def _names_by_record(records: list[dict[str, Any]]) -> tuple[dict[str, tuple[dict, str]], dict[str, list[dict]]]:
    """{file name: (record, kind)} for every name a record's files have on a server, and {content hash prefix: records}."""
    from platform_core.datasets.convert import targets_for

    exact: dict[str, tuple[dict, str]] = {}
    by_hash: dict[str, list[dict]] = {}
    for record in records:
        exact.setdefault(remote_file_name(record, "original"), (record, "original"))
        for target in targets_for(record["type"]):
            exact.setdefault(remote_file_name(record, target), (record, target))
        by_hash.setdefault(record["content_hash"][:16], []).append(record)
    return exact, by_hash


def list_remote_datasets(platform: Platform, connection: str | int, session=None) -> dict[str, Any]:
    """List the files in a server's `<workdir>/datasets/` folder and match them to local records by their
    content-addressed names.

    Returns {folder, files: [{name, path, size_bytes, mtime, partial, match, dataset_id, dataset_name, version,
    kind}]}, newest first. `match`: "current" (the name one of the record's files has now: the original upload or a
    conversion with the current field configuration), "other_config" (the same content converted with another field
    configuration), or None (no local record: a file put there by other means). A missing folder lists nothing."""
    import stat as stat_mod

    from platform_core.runners.ssh import open_session

    profile = get_connection(platform, connection)
    paths = {row["id"]: row["path"] for row in platform.store.find("datasets", columns="id, path")}
    exact, by_hash = _names_by_record([{**r, "path": paths[r["id"]]} for r in list_datasets(platform)])
    own_session = session is None
    session = session or open_session(platform, profile["id"])
    try:
        folder = posixpath.join(session.workdir(), "datasets")
        try:
            entries = session.sftp().listdir_attr(folder)
        except FileNotFoundError:
            entries = []
        except (OSError, EOFError) as exc:
            session.reconnect()
            raise RemoteError(f"listing {folder} on {session.describe()} failed: {exc}") from exc
    finally:
        if own_session:
            session.close()
    files = []
    for entry in entries:
        if entry.st_mode is not None and not stat_mod.S_ISREG(entry.st_mode):
            continue
        name = entry.filename
        info: dict[str, Any] = {
            "name": name,
            "path": posixpath.join(folder, name),
            "size_bytes": entry.st_size or 0,
            "mtime": entry.st_mtime,
            "partial": ".partial-" in name,
            "match": None,
            "dataset_id": None,
            "dataset_name": None,
            "version": None,
            "kind": None,
        }
        if name in exact:
            record, kind = exact[name]
            info.update(match="current", kind=kind)
        elif not info["partial"] and name.split("-", 1)[0] in by_hash:
            record = by_hash[name.split("-", 1)[0]][0]
            parts = name.split("-")
            info.update(match="other_config", kind=parts[1] if len(parts) > 2 else None)
        else:
            record = None
        if record is not None:
            info.update(dataset_id=record["id"], dataset_name=record["name"], version=record["version"])
        files.append(info)
    files.sort(key=lambda f: (-(f["mtime"] or 0), f["name"]))
    return {"connection": profile["name"], "folder": folder, "files": files}


def check_kind(kind: str | None) -> str | None:
    """Return a sync kind (None, "original" or a conversion target), or raise InvalidInput listing them."""
    if kind is not None and kind != "original" and kind not in TARGETS:
        raise InvalidInput(f"sync kind: {kind!r} is not one of original, {', '.join(TARGETS)}")
    return kind


def kind_fits(record: dict[str, Any], kind: str | None) -> bool:
    """Whether a dataset can be synced in a kind (its type converts to that target; any type for original/default)."""
    return kind in (None, "original") or record["type"] in TARGETS[kind]


def sync_datasets(
    platform: Platform,
    dataset_ids: list[int],
    connection: str | int,
    progress: Callable[[float, str], None] | None = None,
    kind: str | None = None,
) -> dict[int, dict[str, Any]]:
    """Sync several datasets over one SSH session; return {id: {remote_path} or {error}} (one failure does not stop the rest).

    `kind`: as for `ensure_synced` (default: each type's engine format).
    """
    from platform_core.runners.ssh import open_session

    check_kind(kind)
    profile = get_connection(platform, connection)
    records = [get_dataset(platform, dataset_id) for dataset_id in dataset_ids]

    def tracked(record: dict[str, Any]) -> bool:
        return kind is None or kind == default_kind(record)

    results: dict[int, dict[str, Any]] = {}
    session = None
    try:
        session = open_session(platform, profile["id"])
    except RemoteError as exc:
        for record in records:
            if tracked(record):
                _set_state(platform, record["id"], profile["id"], status="failed", error=str(exc))
        raise
    try:
        for number, record in enumerate(records):

            def transfer(done: int, total: int, number=number, record=record) -> None:
                if progress:
                    share = done / total if total else 1.0
                    progress(
                        (number + share) / len(dataset_ids),
                        f"{record['name']}: {done / 2**20:.1f}/{total / 2**20:.1f} MiB",
                    )

            try:
                results[record["id"]] = {
                    "remote_path": ensure_synced(
                        platform, record["id"], profile["id"], kind=kind, session=session, progress=transfer
                    )
                }
            except (RemoteError, InvalidInput) as exc:
                results[record["id"]] = {"error": str(exc)}
                if isinstance(exc, InvalidInput) and tracked(record):
                    _set_state(platform, record["id"], profile["id"], status="failed", error=str(exc))
    finally:
        session.close()
    return results


def start_sync_task(platform: Platform, dataset_ids: list[int], connection: str) -> int:
    """Mark the datasets as syncing and start the upload as a task; return the task id."""
    from platform_core.tasks import TaskTitle, submit_task

    profile = get_connection(platform, connection)
    ids = [get_dataset(platform, d)["id"] for d in dataset_ids]
    if not ids:
        raise InvalidInput("sync: no dataset to sync")
    for dataset_id in ids:
        _set_state(platform, dataset_id, profile["id"], status="syncing", error=None, synced_at=time.time())
    title = TaskTitle("sync", f"Sync {len(ids)} dataset(s) to {profile['name']}", n=len(ids), name=profile["name"])
    return submit_task(platform, "datasets.sync", title, {"dataset_ids": ids, "connection": profile["name"]})


@task_kind("datasets.sync")
def run_sync_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Task: sync datasets (params: dataset_ids, connection); fails when any dataset failed."""
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        if time.monotonic() - last[0] > 0.5 or fraction >= 1:
            last[0] = time.monotonic()
            ctx.progress(fraction, message)

    results = sync_datasets(ctx.platform, params["dataset_ids"], params["connection"], report)
    for dataset_id, result in results.items():
        ctx.log(f"dataset #{dataset_id}: " + (result.get("remote_path") or f"FAILED {result.get('error')}"))
    failed = {k: v["error"] for k, v in results.items() if "error" in v}
    if failed:
        raise RemoteError("; ".join(f"#{k}: {v}" for k, v in failed.items()))
    return {str(k): v for k, v in results.items()}
