"""SSH connection profiles: stored with their password or private key encrypted, never in plain text."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound, SecretKeyError
from platform_core.security.validation import check_name, check_path_text

DEFAULT_WORKDIR = "~/verl_jobs"
REMOTE_AREAS = ("datasets", "models", "outputs", "logs")
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:]+\]?$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$", re.IGNORECASE)
_CONDA_ENV = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PUBLIC_FIELDS = (
    "id",
    "name",
    "host",
    "port",
    "username",
    "auth",
    "key_path",
    "workdir",
    "conda_env",
    "python_path",
    "host_key",
    "created_at",
    "updated_at",
)


def _validate(
    host: str,
    port: int,
    username: str,
    workdir: str,
    conda_env: str | None,
    python_path: str | None,
    key_path: str | None,
) -> None:
    if not _HOST.match(host or ""):
        raise InvalidInput(f"host: {host!r} is not a host name or IP address")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"port: {port!r} must be a number between 1 and 65535")
    if not _USER.match(username or ""):
        raise InvalidInput(f"user: {username!r} is not a valid user name")
    check_path_text(workdir, "work directory", allow_home=True)
    if conda_env and not _CONDA_ENV.match(conda_env):
        raise InvalidInput(f"conda environment: {conda_env!r} may only contain letters, digits and . _ -")
    if python_path:
        check_path_text(python_path, "python path", allow_home=True)
    if key_path:
        check_path_text(key_path, "key file", allow_home=True)


def add_connection(
    platform: Platform,
    name: str,
    host: str,
    username: str,
    port: int = 22,
    password: str | None = None,
    private_key: str | None = None,
    key_path: str | None = None,
    passphrase: str | None = None,
    workdir: str = DEFAULT_WORKDIR,
    conda_env: str | None = None,
    python_path: str | None = None,
) -> int:
    """Store a new profile and return its id. Give a password, a pasted private key, or a key file path."""
    name = check_name(name, "connection name")
    _validate(host, port, username, workdir, conda_env, python_path, key_path)
    if platform.store.find_one("connections", "name = ?", (name,)):
        raise InvalidInput(f"connection name: {name!r} already exists")
    for _attempt in range(3):
        auth, secret, key_fp = _secret_for(platform, password, private_key, key_path, passphrase)
        now = time.time()
        with platform.store.transaction():
            if not platform.key_fingerprint_is(key_fp):
                continue  # `rotate-key` ran in another process meanwhile: encrypt again under the new key
            return platform.store.insert(
                "connections",
                {
                    "name": name,
                    "host": host,
                    "port": port,
                    "username": username,
                    "auth": auth,
                    "secret": secret,
                    "key_path": str(Path(key_path).expanduser()) if key_path else None,
                    "workdir": workdir,
                    "conda_env": conda_env or None,
                    "python_path": python_path or None,
                    "created_at": now,
                    "updated_at": now,
                },
            )
    raise SecretKeyError("the encryption key kept changing while the connection was saved; try again")


def _secret_for(
    platform: Platform, password: str | None, private_key: str | None, key_path: str | None, passphrase: str | None
) -> tuple[str, str | None, str | None]:
    """Return (auth, encrypted secret or None, fingerprint of the key it was encrypted with or None)."""
    given = [x for x in (password, private_key, key_path) if x]
    if len(given) != 1:
        raise InvalidInput("authentication: give exactly one of a password, a pasted private key or a key file")
    if password:
        return "password", *platform.encrypt_with_fingerprint(json.dumps({"password": password}))
    payload: dict[str, str] = {}
    if private_key:
        if "PRIVATE KEY" not in private_key:
            raise InvalidInput("private key: the pasted text is not an OpenSSH/PEM private key")
        payload["private_key"] = private_key.strip() + "\n"
    if key_path and not Path(key_path).expanduser().is_file():
        raise InvalidInput(f"key file: {key_path} does not exist on this machine")
    if passphrase:
        payload["passphrase"] = passphrase
    if not payload:
        return "key", None, None
    return "key", *platform.encrypt_with_fingerprint(json.dumps(payload))


def update_connection(platform: Platform, name: str, **changes: Any) -> None:
    """Change fields of a profile; `password`, `private_key`, `key_path` and `passphrase` replace the credentials."""
    current = get_connection(platform, name)
    creds = {k: changes.pop(k) for k in ("password", "private_key", "key_path", "passphrase") if k in changes}
    merged = {**current, **changes}
    _validate(
        merged["host"],
        merged["port"],
        merged["username"],
        merged["workdir"],
        merged.get("conda_env"),
        merged.get("python_path"),
        creds.get("key_path") or merged.get("key_path"),
    )
    update = {
        k: v
        for k, v in changes.items()
        if k in ("host", "port", "username", "workdir", "conda_env", "python_path", "host_key")
    }
    if "name" in changes:
        update["name"] = check_name(changes["name"], "connection name")
    if {"host", "port"} & set(update) and "host_key" not in update:
        update["host_key"] = None  # a different server: its key must be confirmed again
    new_creds = creds.get("password") or creds.get("private_key") or creds.get("key_path")
    for _attempt in range(3):
        key_fp = None
        if new_creds:
            auth, secret, key_fp = _secret_for(
                platform,
                creds.get("password"),
                creds.get("private_key"),
                creds.get("key_path"),
                creds.get("passphrase"),
            )
            update.update(auth=auth, secret=secret, key_path=creds.get("key_path"))
        update["updated_at"] = time.time()
        with platform.store.transaction():
            if not platform.key_fingerprint_is(key_fp):
                continue  # `rotate-key` ran in another process meanwhile: encrypt again under the new key
            platform.store.update("connections", current["id"], **update)
            return
    raise SecretKeyError("the encryption key kept changing while the connection was saved; try again")


def list_connections(platform: Platform) -> list[dict[str, Any]]:
    """Return all profiles without their secrets."""
    return [{k: row[k] for k in PUBLIC_FIELDS} for row in platform.store.find("connections", order_by="name")]


def get_connection(platform: Platform, name: str | int) -> dict[str, Any]:
    """Return one profile (without its secret) by name or id."""
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        row = platform.store.get("connections", int(name))
    else:
        row = platform.store.find_one("connections", "name = ?", (name,))
    if row is None:
        raise NotFound(f"connection {name!r} does not exist")
    return {k: row[k] for k in PUBLIC_FIELDS}


def connection_credentials(platform: Platform, name: str | int) -> dict[str, str]:
    """Return the decrypted credentials of a profile ({password} or {private_key?, passphrase?, key_path?})."""
    profile = get_connection(platform, name)
    row = platform.store.get("connections", profile["id"])
    creds: dict[str, str] = {}
    if row["secret"]:
        creds = json.loads(
            platform.secret_box().decrypt(row["secret"], f"the secret of connection {profile['name']!r}")
        )
    if row["key_path"]:
        creds["key_path"] = row["key_path"]
    return creds


def remove_connection(platform: Platform, name: str) -> None:
    """Delete a profile."""
    profile = get_connection(platform, name)
    platform.store.delete("connections", profile["id"])


def trust_host_key(platform: Platform, name: str, host_key: str) -> None:
    """Remember the server's public host key ("type base64"); later connections must present exactly this key."""
    profile = get_connection(platform, name)
    platform.store.update("connections", profile["id"], host_key=host_key, updated_at=time.time())


def rotate_secrets(platform: Platform, new_key: str) -> int:
    """Re-encrypt every stored secret under `new_key` in one transaction; return how many were re-encrypted."""
    from platform_core.context import FINGERPRINT_SETTING
    from platform_core.security.secrets import SecretBox

    old_box = platform.secret_box()
    new_box = SecretBox(new_key, "the new key")
    with platform.store.transaction() as conn:
        # Read inside the write transaction: a secret another process stores meanwhile is re-encrypted too.
        if platform.store.get_setting(FINGERPRINT_SETTING) not in (None, old_box.fingerprint):
            raise SecretKeyError(
                "the stored secrets were re-encrypted by another rotate-key meanwhile; nothing changed"
            )
        rows = platform.store.find("connections", "secret IS NOT NULL")
        plaintexts = {
            row["id"]: old_box.decrypt(row["secret"], f"the secret of connection {row['name']!r}") for row in rows
        }
        for row_id, plaintext in plaintexts.items():
            conn.execute("UPDATE connections SET secret = ? WHERE id = ?", (new_box.encrypt(plaintext), row_id))
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (FINGERPRINT_SETTING, json.dumps(new_box.fingerprint)),
        )
    platform.forget_key()
    return len(plaintexts)
