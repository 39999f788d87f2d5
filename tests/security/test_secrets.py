"""Secrets at rest: encrypted in the store, a wrong key is a clear error, rotation re-encrypts everything."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from platform_core.connections import add_connection, connection_credentials, list_connections
from platform_core.context import get_platform, reset_platforms
from platform_core.errors import SecretKeyError
from platform_core.security.secrets import generate_key, hash_password, verify_password

PASSWORD = "very-Secret-pass-123"


def _db_bytes(platform) -> bytes:
    platform.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = platform.workspace.db_path.read_bytes()
    wal = platform.workspace.db_path.with_name("platform.db-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_password_is_not_stored_in_plain_text(platform):
    add_connection(platform, "gpu", "10.0.0.5", "root", password=PASSWORD)
    assert PASSWORD.encode() not in _db_bytes(platform)
    assert "secret" not in list_connections(platform)[0]
    assert connection_credentials(platform, "gpu") == {"password": PASSWORD}


def test_key_file_is_created_with_mode_0600(platform):
    add_connection(platform, "gpu", "10.0.0.5", "root", password=PASSWORD)
    key_file = platform.workspace.key_path
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert platform.key_source.created


def test_wrong_key_is_a_clear_error_and_keeps_the_profiles(platform, monkeypatch):
    add_connection(platform, "gpu", "10.0.0.5", "root", password=PASSWORD)
    before = _db_bytes(platform)
    monkeypatch.setenv("PLATFORM_SECRET_KEY", generate_key())
    reset_platforms()
    again = get_platform(platform.workspace.root)
    with pytest.raises(SecretKeyError, match="fingerprint .* Set PLATFORM_SECRET_KEY to the original key"):
        connection_credentials(again, "gpu")
    with pytest.raises(SecretKeyError):
        add_connection(again, "other", "10.0.0.6", "root", password="x")
    assert list_connections(again)[0]["name"] == "gpu"
    assert _db_bytes(again) == before


def test_malformed_key_is_named(platform, monkeypatch):
    monkeypatch.setenv("PLATFORM_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretKeyError, match="PLATFORM_SECRET_KEY is not a valid Fernet key"):
        add_connection(platform, "gpu", "10.0.0.5", "root", password=PASSWORD)


def _cli(home, *args, stdin="", env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "PLATFORM_SECRET_KEY"}
    full_env.update({"PLATFORM_HOME": str(home), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "platform_core", *args], input=stdin, capture_output=True, text=True, env=full_env
    )


def test_cli_reads_the_password_from_stdin_and_rotate_key_reencrypts(tmp_path):
    home = tmp_path / "ws"
    added = _cli(
        home,
        "connection",
        "add",
        "--name",
        "gpu",
        "--host",
        "10.0.0.5",
        "--user",
        "root",
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    old_key = (home / "secret.key").read_text().strip()
    rotated = _cli(home, "rotate-key", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new_key = (home / "secret.key").read_text().strip()
    assert new_key != old_key and stat.S_IMODE(os.stat(home / "secret.key").st_mode) == 0o600
    assert PASSWORD not in rotated.stdout + rotated.stderr
    reset_platforms()
    platform = get_platform(home)
    assert connection_credentials(platform, "gpu") == {"password": PASSWORD}
    assert PASSWORD.encode() not in _db_bytes(platform)
    reset_platforms()


def test_rotate_key_from_env_prints_the_new_key(tmp_path):
    home = tmp_path / "ws"
    old = generate_key()
    env = {"PLATFORM_SECRET_KEY": old}
    assert (
        _cli(
            home,
            "connection",
            "add",
            "--name",
            "gpu",
            "--host",
            "h",
            "--user",
            "u",
            "--password-stdin",
            stdin="pw-123\n",
            env=env,
        ).returncode
        == 0
    )
    out = _cli(home, "rotate-key", "--json", env=env)
    assert out.returncode == 0, out.stderr
    import json

    new_key = json.loads(out.stdout)["new_key"]
    assert not (home / "secret.key").exists()
    failing = _cli(home, "connection", "test", "gpu", env=env)
    assert "fingerprint" in failing.stderr and failing.returncode != 0
    reset_platforms()
    os.environ["PLATFORM_SECRET_KEY"] = new_key
    try:
        assert connection_credentials(get_platform(home), "gpu") == {"password": "pw-123"}
    finally:
        del os.environ["PLATFORM_SECRET_KEY"]
        reset_platforms()


def test_gen_key_prints_a_valid_key():
    out = subprocess.run([sys.executable, "-m", "platform_core", "gen-key"], capture_output=True, text=True, check=True)
    from cryptography.fernet import Fernet

    Fernet(out.stdout.strip().encode())


def test_access_password_hash_is_salted():
    first, second = hash_password("open sesame"), hash_password("open sesame")
    assert first != second
    assert verify_password("open sesame", first) and not verify_password("open sesam", first)


def test_a_running_platform_picks_up_a_key_rotated_by_another_process(platform):
    """rotate-key (key file) in another process; this process's Platform then stores secrets under the new key."""
    add_connection(platform, "before", "10.0.0.5", "root", password="pw-before")
    old_fp = platform.secret_box().fingerprint
    rotated = _cli(platform.workspace.root, "rotate-key", "--json")
    assert rotated.returncode == 0, rotated.stderr
    add_connection(platform, "after", "10.0.0.6", "root", password="pw-after")  # the same, long-lived Platform
    assert platform.secret_box().fingerprint != old_fp
    assert connection_credentials(platform, "before") == {"password": "pw-before"}
    reset_platforms()
    fresh = get_platform(platform.workspace.root)
    assert connection_credentials(fresh, "before") == {"password": "pw-before"}
    assert connection_credentials(fresh, "after") == {"password": "pw-after"}
    assert fresh.store.get_setting("secret_key_fingerprint") == fresh.secret_box().fingerprint != old_fp


def test_a_running_platform_refuses_to_write_with_a_key_rotated_away(platform, monkeypatch):
    """rotate-key (env key) in another process: until PLATFORM_SECRET_KEY holds the new key, nothing is written."""
    import json

    old = generate_key()
    monkeypatch.setenv("PLATFORM_SECRET_KEY", old)
    add_connection(platform, "before", "10.0.0.5", "root", password="pw-before")
    rotated = _cli(platform.workspace.root, "rotate-key", "--json", env={"PLATFORM_SECRET_KEY": old})
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["new_key"]
    before = _db_bytes(platform)
    with pytest.raises(SecretKeyError, match="rotate-key.* in another process.*Nothing was written with the old key"):
        add_connection(platform, "after", "10.0.0.6", "root", password="pw-after")
    with pytest.raises(SecretKeyError, match="new key that rotate-key printed"):
        connection_credentials(platform, "before")
    assert _db_bytes(platform) == before
    monkeypatch.setenv("PLATFORM_SECRET_KEY", new_key)  # the user sets the new key; the same Platform goes on
    add_connection(platform, "after", "10.0.0.6", "root", password="pw-after")
    reset_platforms()
    fresh = get_platform(platform.workspace.root)
    assert connection_credentials(fresh, "before") == {"password": "pw-before"}
    assert connection_credentials(fresh, "after") == {"password": "pw-after"}


def test_a_key_staged_by_rotate_key_is_used_before_its_rename(platform):
    """Between rotate-key's database commit and the key file's rename, the staged key (secret.new) is the key."""
    from platform_core.connections import rotate_secrets
    from platform_core.security.secrets import write_key_file

    add_connection(platform, "before", "10.0.0.5", "root", password="pw-before")
    from platform_core.context import Platform
    from platform_core.store import Store

    other = Platform(platform.workspace, Store(platform.workspace.db_path))  # a second process's Platform
    new_key = generate_key()
    write_key_file(platform.workspace.key_path.with_suffix(".new"), new_key)
    rotate_secrets(other, new_key)  # committed; secret.key still holds the old key
    add_connection(platform, "after", "10.0.0.6", "root", password="pw-after")
    platform.workspace.key_path.with_suffix(".new").replace(platform.workspace.key_path)
    reset_platforms()
    fresh = get_platform(platform.workspace.root)
    assert connection_credentials(fresh, "after") == {"password": "pw-after"}
    assert connection_credentials(fresh, "before") == {"password": "pw-before"}


def test_connection_add_says_when_it_created_the_key_file(tmp_path):
    import json

    home = tmp_path / "ws"
    args = ("connection", "add", "--host", "10.0.0.5", "--user", "root", "--password-stdin")
    first = _cli(home, *args, "--name", "one", "--json", stdin="pw-1\n")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["key_created"] is True
    assert json.loads(first.stdout)["key_file"] == str(home / "secret.key")
    second = _cli(home, *args, "--name", "two", "--json", stdin="pw-2\n")
    assert json.loads(second.stdout)["key_created"] is False
    text = _cli(tmp_path / "other", *args, "--name", "three", stdin="pw-3\n")
    assert text.returncode == 0, text.stderr
    assert f"created a new encryption key in {tmp_path / 'other' / 'secret.key'} (mode 0600)" in text.stdout
    assert "pw-3" not in text.stdout + text.stderr
    quiet = _cli(tmp_path / "other", *args, "--name", "four", stdin="pw-4\n")
    assert "encryption key" not in quiet.stdout
