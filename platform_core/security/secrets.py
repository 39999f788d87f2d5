"""Encryption of stored secrets (SSH passwords and keys) with Fernet, and the key that protects them.

The key comes from PLATFORM_SECRET_KEY or, when that is unset, from a 0600 key file in the workspace that is
created on first use. A fingerprint of the key is kept in the store so that a wrong key is detected before any
decryption is attempted, and nothing stored is ever overwritten because of a wrong key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as pysecrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from platform_core.errors import SecretKeyError

ENV_VAR = "PLATFORM_SECRET_KEY"


def generate_key() -> str:
    """Return a new Fernet key (url-safe base64 text)."""
    return Fernet.generate_key().decode()


def fingerprint(key: str) -> str:
    """Return a short, non-reversible identifier of a key (shown to users and stored to detect a wrong key)."""
    return hashlib.sha256(("platform-key-fingerprint:" + key).encode()).hexdigest()[:16]


def _parse_key(key: str, source: str) -> Fernet:
    try:
        return Fernet(key.strip().encode())
    except (ValueError, TypeError) as exc:
        raise SecretKeyError(
            f"The encryption key from {source} is not a valid Fernet key (32 url-safe base64-encoded bytes). "
            "Create one with `python -m platform_core gen-key`."
        ) from exc


@dataclass
class KeySource:
    """Where the active key came from: the environment variable or the workspace key file."""

    key: str
    origin: str  # "env" or the key file path
    created: bool = False  # True when the key file was created just now


def load_key(key_file: Path) -> KeySource:
    """Return the active key: PLATFORM_SECRET_KEY if set, else the key file (created with mode 0600 if missing)."""
    env_key = os.environ.get(ENV_VAR, "").strip()
    if env_key:
        _parse_key(env_key, ENV_VAR)
        return KeySource(env_key, "env")
    if key_file.exists():
        key = key_file.read_text().strip()
        _parse_key(key, str(key_file))
        return KeySource(key, str(key_file))
    key = generate_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return KeySource(key, str(key_file), created=True)


def write_key_file(key_file: Path, key: str) -> None:
    """Replace the key file atomically, keeping mode 0600."""
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.replace(tmp, key_file)


class SecretBox:
    """Encrypts and decrypts secret strings with one key."""

    def __init__(self, key: str, origin: str = "the configured key"):
        self._fernet = _parse_key(key, origin)
        self.fingerprint = fingerprint(key.strip())
        self.origin = origin

    def encrypt(self, plaintext: str) -> str:
        """Return the Fernet token (text) for a secret."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, what: str = "a stored secret") -> str:
        """Return the plaintext of a token, or raise SecretKeyError naming what could not be decrypted."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                f"Cannot decrypt {what} with the key from {self.origin} (fingerprint {self.fingerprint}). "
                f"It was encrypted with another key: set {ENV_VAR} to that key. Nothing was changed."
            ) from exc


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return a salted scrypt hash `scrypt$<salt>$<hash>` for the app's access password."""
    salt = salt or pysecrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    """Return True if `password` matches a hash made by hash_password."""
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    salt = base64.b64decode(salt_b64)
    expected = base64.b64decode(digest_b64)
    actual = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return hmac.compare_digest(actual, expected)
