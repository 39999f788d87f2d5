"""Sync against the real sshd: content-addressed uploads, status, an interrupted transfer, permission and disk-full errors."""

from __future__ import annotations

import random
import string
import subprocess

import pyarrow.parquet as pq
import pytest

from platform_core.datasets.service import add_dataset, convert_for, update_field_config
from platform_core.datasets.sync import ensure_synced, start_sync_task, sync_datasets, sync_status
from platform_core.errors import RemoteError
from platform_core.tasks import wait_task

pytestmark = pytest.mark.ssh


def _random_rows(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    letters = string.ascii_letters + string.digits + " "
    return [
        {"prompt": "".join(rng.choices(letters, k=120)), "response": "".join(rng.choices(letters, k=240))}
        for _ in range(count)
    ]


def _remote_dir(sshd):
    return sshd.home / "verl_jobs" / "datasets"


def test_sync_uploads_the_engine_file_once_and_tracks_its_status(platform, sshd, ssh_profile, write):
    small = add_dataset(platform, write.jsonl("a.jsonl", _random_rows(20)), "sft", "small")["id"]
    other = add_dataset(platform, write.jsonl("b.jsonl", _random_rows(10, 1)), "sft", "other")["id"]
    assert sync_status(platform, ssh_profile)[small]["status"] == "not_synced"
    remote = ensure_synced(platform, small, ssh_profile)
    local = convert_for(platform, small, "verl_sft")
    assert remote == f"{sshd.home}/verl_jobs/datasets/{local.name}"
    assert (_remote_dir(sshd) / local.name).read_bytes() == local.read_bytes()
    status = sync_status(platform, ssh_profile)
    assert status[small]["status"] == "synced" and status[small]["remote_path"] == remote
    assert status[other]["status"] == "not_synced"
    calls = []
    assert ensure_synced(platform, small, ssh_profile, progress=lambda done, total: calls.append(done)) == remote
    assert calls == []  # same name and size already there: nothing uploaded
    original = ensure_synced(platform, small, ssh_profile, kind="original")
    assert original.endswith(".jsonl") and (_remote_dir(sshd) / original.rsplit("/", 1)[1]).is_file()
    update_field_config(platform, small, {"label_fields": []})
    assert sync_status(platform, ssh_profile)[small]["status"] == "synced"  # same conversion: no label in it
    update_field_config(
        platform, small, {"format": "prompt_response", "prompt_field": "response", "response_field": "prompt"}
    )
    assert sync_status(platform, ssh_profile)[small]["status"] == "changed"
    newer = add_dataset(platform, write.jsonl("a2.jsonl", _random_rows(5, 7)), "sft", "small")
    assert newer["parent_id"] == small
    assert sync_status(platform, ssh_profile)[newer["id"]]["status"] == "changed"


def test_an_interrupted_transfer_leaves_no_file_under_the_final_name(platform, sshd, ssh_profile, write):
    dataset_id = add_dataset(platform, write.jsonl("big.jsonl", _random_rows(3000)), "sft", "big")["id"]
    local = convert_for(platform, dataset_id)
    assert local.stat().st_size > 300_000
    final = _remote_dir(sshd) / local.name
    dropped = []

    def drop_midway(done: int, total: int) -> None:
        if not dropped and done >= 64_000:
            dropped.append(done)
            sshd.drop_connections()

    with pytest.raises(RemoteError) as failure:
        ensure_synced(platform, dataset_id, ssh_profile, progress=drop_midway)
    assert dropped and dropped[0] < local.stat().st_size
    assert not final.exists()
    assert "uploading" in str(failure.value) or "connection" in str(failure.value)
    status = sync_status(platform, ssh_profile)[dataset_id]
    assert status["status"] == "failed" and status["error"]
    remote = ensure_synced(platform, dataset_id, ssh_profile)
    assert final.read_bytes() == local.read_bytes() and remote.endswith(local.name)
    assert [p.name for p in _remote_dir(sshd).iterdir()] == [local.name]  # the partial upload was cleaned up
    assert pq.read_table(final).num_rows == 3000


def test_permission_denied_is_reported(platform, sshd, ssh_profile, write):
    dataset_id = add_dataset(platform, write.jsonl("a.jsonl", _random_rows(10)), "sft", "p")["id"]
    folder = _remote_dir(sshd)
    folder.mkdir(parents=True)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(folder.parent)], check=True)
    folder.chmod(0o555)
    try:
        with pytest.raises(RemoteError, match="(?i)permission denied"):
            ensure_synced(platform, dataset_id, ssh_profile)
        assert sync_status(platform, ssh_profile)[dataset_id]["status"] == "failed"
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_full_remote_disk_is_reported(platform, sshd, ssh_profile, write):
    dataset_id = add_dataset(platform, write.jsonl("big.jsonl", _random_rows(2000)), "sft", "big")["id"]
    folder = _remote_dir(sshd)
    folder.mkdir(parents=True)
    uid = subprocess.run(["id", "-u", sshd.user], capture_output=True, text=True, check=True).stdout.strip()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=64k,uid={uid},gid={uid},mode=755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up here: {mounted.stderr.strip()}")
    try:
        with pytest.raises(RemoteError, match="disk may be full"):
            ensure_synced(platform, dataset_id, ssh_profile)
        assert not (folder / convert_for(platform, dataset_id).name).exists()
        assert "disk may be full" in sync_status(platform, ssh_profile)[dataset_id]["error"]
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_sync_all_as_a_task(platform, sshd, ssh_profile, write):
    ids = [
        add_dataset(platform, write.jsonl(f"{i}.jsonl", _random_rows(5, i)), "sft", f"set {i}")["id"] for i in range(3)
    ]
    grpo = add_dataset(platform, write.jsonl("g.jsonl", [{"prompt": "1+1", "solution": "2"}]), "grpo", "g")["id"]
    task_id = start_sync_task(platform, [*ids, grpo], ssh_profile)
    assert {sync_status(platform, ssh_profile)[i]["status"] for i in ids} <= {"syncing", "synced"}
    task = wait_task(platform, task_id, timeout_s=120)
    assert task["state"] == "completed", task["error"]
    status = sync_status(platform, ssh_profile)
    assert all(status[i]["status"] == "synced" for i in [*ids, grpo])
    assert status[grpo]["remote_path"].endswith(convert_for(platform, grpo, "verl_rl").name)
    results = sync_datasets(platform, ids, ssh_profile)
    assert all("remote_path" in r for r in results.values())


def test_the_sync_commands(platform, sshd, ssh_profile, write):
    import json
    import os
    import sys

    ids = [
        add_dataset(platform, write.jsonl(f"{i}.jsonl", _random_rows(5, i)), "sft", f"cli {i}")["id"] for i in range(2)
    ]
    env = {**os.environ, "PLATFORM_HOME": str(platform.workspace.root)}
    env.pop("PLATFORM_SECRET_KEY", None)

    def cli(*args):
        done = subprocess.run(
            [sys.executable, "-m", "platform_core", "dataset", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    synced = cli("sync", "--all", "--connection", ssh_profile, "--json")
    assert sorted(int(k) for k in synced) == sorted(ids) and all("remote_path" in v for v in synced.values())
    status = cli("sync-status", "--connection", ssh_profile, "--json")
    assert {v["status"] for v in status.values()} == {"synced"}
    original = cli("sync", str(ids[0]), "--kind", "original", "--connection", ssh_profile, "--json")
    assert original[str(ids[0])]["remote_path"].endswith(".jsonl")
    # --all with --kind: every dataset in that kind (a type that cannot take it is skipped, not failed)
    grpo = add_dataset(platform, write.jsonl("g.jsonl", [{"prompt": "1+1", "solution": "2"}]), "grpo", "g")["id"]
    every = cli("sync", "--all", "--kind", "original", "--connection", ssh_profile, "--json")
    assert sorted(int(k) for k in every) == sorted([*ids, grpo])
    for value in every.values():
        assert (
            value["remote_path"].endswith(".jsonl")
            and (_remote_dir(sshd) / value["remote_path"].rsplit("/", 1)[1]).is_file()
        )
    as_sft = cli("sync", "--all", "--kind", "verl_sft", "--connection", ssh_profile, "--json")
    assert "cannot be synced as verl_sft" in as_sft[str(grpo)]["skipped"]
    assert all(as_sft[str(i)]["remote_path"] == synced[str(i)]["remote_path"] for i in ids)
    status = cli("sync-status", "--connection", ssh_profile, "--json")
    assert status[str(grpo)]["status"] == "not_synced"  # only the type's engine format is tracked


def test_the_server_s_dataset_folder_is_listed_and_matched_to_local_records(platform, sshd, ssh_profile, write):
    """Files in <workdir>/datasets/ appear with size and mtime; content-addressed names name their local record."""
    import json
    import os
    import sys
    import time

    from platform_core.datasets.sync import list_remote_datasets

    empty = list_remote_datasets(platform, ssh_profile)  # no folder yet: nothing, not an error
    assert empty == {"connection": ssh_profile, "folder": f"{sshd.home}/verl_jobs/datasets", "files": []}
    synced = add_dataset(platform, write.jsonl("a.jsonl", _random_rows(20)), "sft", "synced set")["id"]
    local_only = add_dataset(platform, write.jsonl("b.jsonl", _random_rows(10, 1)), "sft", "local only")["id"]
    remote = ensure_synced(platform, synced, ssh_profile)
    original = ensure_synced(platform, synced, ssh_profile, kind="original")
    older = remote.rsplit("/", 1)[1]
    update_field_config(
        platform, synced, {"format": "prompt_response", "prompt_field": "response", "response_field": "prompt"}
    )
    current = ensure_synced(platform, synced, ssh_profile)
    assert current != remote
    folder = _remote_dir(sshd)
    (folder / "brought-by-hand.jsonl").write_text('{"prompt": "x", "response": "y"}\n')
    (folder / (older + ".partial-123")).write_bytes(b"half")
    (folder / "a-folder").mkdir()
    stamp = time.time() - 3600
    os.utime(folder / "brought-by-hand.jsonl", (stamp, stamp))
    listing = list_remote_datasets(platform, ssh_profile)
    files = {f["name"]: f for f in listing["files"]}
    assert set(files) == {
        older,
        current.rsplit("/", 1)[1],
        original.rsplit("/", 1)[1],
        "brought-by-hand.jsonl",
        older + ".partial-123",
    }
    for name, info in files.items():
        assert info["size_bytes"] == (folder / name).stat().st_size and info["path"] == f"{listing['folder']}/{name}"
    assert abs(files["brought-by-hand.jsonl"]["mtime"] - stamp) < 2
    assert listing["files"][-1]["name"] == "brought-by-hand.jsonl"  # newest first
    by_hand = files["brought-by-hand.jsonl"]
    assert by_hand["dataset_id"] is None and by_hand["match"] is None and not by_hand["partial"]
    assert files[older + ".partial-123"]["partial"] and files[older + ".partial-123"]["dataset_id"] is None
    now = files[current.rsplit("/", 1)[1]]
    assert (now["dataset_id"], now["match"], now["kind"], now["dataset_name"]) == (
        synced,
        "current",
        "verl_sft",
        "synced set",
    )
    assert (files[older]["dataset_id"], files[older]["match"], files[older]["kind"]) == (
        synced,
        "other_config",
        "verl_sft",
    )
    assert files[original.rsplit("/", 1)[1]]["kind"] == "original"
    assert local_only not in {f["dataset_id"] for f in listing["files"]}

    env = {**os.environ, "PLATFORM_HOME": str(platform.workspace.root)}
    env.pop("PLATFORM_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "platform_core", "dataset", "remote-list", "--connection", ssh_profile, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == json.loads(json.dumps(listing["files"]))
    text = subprocess.run(
        [sys.executable, "-m", "platform_core", "dataset", "remote-list", "--connection", ssh_profile],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    ).stdout
    assert "brought-by-hand.jsonl" in text and "no local record" in text and f"#{synced} synced set v1" in text


def test_listing_an_unreachable_server_names_it(platform, sshd, ssh_profile):
    import socket

    from platform_core.connections import update_connection
    from platform_core.datasets.sync import list_remote_datasets

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    update_connection(platform, ssh_profile, port=port)
    with pytest.raises(RemoteError, match="connection refused"):
        list_remote_datasets(platform, ssh_profile)
