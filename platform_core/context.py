"""The Platform object: one workspace, its store and its secret key, shared by the pages and the CLI."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from platform_core.errors import SecretKeyError
from platform_core.security.secrets import KeySource, SecretBox, fingerprint, load_key
from platform_core.store import Store
from platform_core.workspace import Workspace, default_home

FINGERPRINT_SETTING = "secret_key_fingerprint"


@dataclass
class Platform:
    """Everything a service function needs: `platform.workspace`, `platform.store`, `platform.secret_box()`."""

    workspace: Workspace
    store: Store
    _box: SecretBox | None = field(default=None, repr=False)
    _rotated_away: bool = field(default=False, repr=False)  # a rotation by another process was seen
    key_source: KeySource | None = field(default=None, repr=False)

    def secret_box(self) -> SecretBox:
        """Return the SecretBox for the active key, refusing a key that differs from the one secrets were stored with.

        The stored fingerprint is read on every call (one indexed SELECT): when `rotate-key` ran in another process
        since the key was loaded, the key is loaded again (from PLATFORM_SECRET_KEY or the key file), so this process
        never writes a secret under the old key."""
        stored = self.store.get_setting(FINGERPRINT_SETTING)
        if self._box is not None and (not stored or stored == self._box.fingerprint):
            return self._box
        rotated = self._box is not None or self._rotated_away  # a key was loaded, and the store names another one
        source = load_key(self.workspace.key_path)
        origin = "PLATFORM_SECRET_KEY" if source.origin == "env" else source.origin
        box = SecretBox(source.key, origin)
        if stored and stored != box.fingerprint and source.origin != "env":
            staged = _staged_key(self.workspace.key_path, stored)  # rotate-key is between its commit and its rename
            if staged is not None:
                source, box = staged, SecretBox(staged.key, staged.origin)
        if stored and stored != box.fingerprint and self.store.count("connections", "secret IS NOT NULL"):
            if rotated:
                self.forget_key()
                self._rotated_away = True  # later calls keep telling the user about the new key, not the original
                raise SecretKeyError(
                    f"The stored SSH secrets were re-encrypted under a new key (fingerprint {stored}) by "
                    f"`rotate-key` in another process, but the key from {origin} is still fingerprint "
                    f"{box.fingerprint}. Set PLATFORM_SECRET_KEY to the new key that rotate-key printed and restart "
                    "the app. Nothing was written with the old key."
                )
            raise SecretKeyError(
                f"The stored SSH secrets were encrypted with the key whose fingerprint is {stored}, but the key "
                f"from {origin} has fingerprint {box.fingerprint}. Set PLATFORM_SECRET_KEY to the original key "
                "(or run `python -m platform_core rotate-key` with it). The stored profiles were not changed."
            )
        if self.key_source is not None and self.key_source.created and source.origin == self.key_source.origin:
            source.created = True  # keep "created just now" for this process when the same file is read again
        self.key_source = source
        self._box = box
        self._rotated_away = False
        return box

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a secret with the active key and remember the key's fingerprint."""
        return self.encrypt_with_fingerprint(plaintext)[0]

    def encrypt_with_fingerprint(self, plaintext: str) -> tuple[str, str]:
        """Encrypt a secret; return the token and the fingerprint of the key used (to check it before storing)."""
        box = self.secret_box()
        if self.store.get_setting(FINGERPRINT_SETTING) != box.fingerprint:
            self.store.set_setting(FINGERPRINT_SETTING, box.fingerprint)
        return box.encrypt(plaintext), box.fingerprint

    def key_fingerprint_is(self, fingerprint: str | None) -> bool:
        """Return True when secrets are stored under the key with this fingerprint (call inside the transaction
        that stores a secret, so that a concurrent `rotate-key` cannot slip between the encryption and the write)."""
        return fingerprint is None or self.store.get_setting(FINGERPRINT_SETTING) == fingerprint

    def forget_key(self) -> None:
        """Drop the cached key (after a rotation, or when the environment changed)."""
        self._box = None
        self.key_source = None


def _staged_key(key_file: Path, wanted: str) -> KeySource | None:
    """The key rotate-key stages next to the key file before it commits, if its fingerprint is `wanted`."""
    staged = key_file.with_suffix(".new")
    try:
        key = staged.read_text().strip()
    except OSError:
        return None
    return KeySource(key, str(key_file)) if key and fingerprint(key) == wanted else None


_lock = threading.Lock()
_instances: dict[Path, Platform] = {}


def get_platform(home: Path | str | None = None) -> Platform:
    """Return the Platform for a workspace root (default: $PLATFORM_HOME or ./workspace), creating it once."""
    root = Path(home).expanduser().resolve() if home else default_home()
    with _lock:
        platform = _instances.get(root)
        if platform is None:
            workspace = Workspace(root).ensure()
            platform = Platform(workspace, Store(workspace.db_path))
            _instances[root] = platform
        return platform


def reset_platforms() -> None:
    """Forget cached Platform objects (tests switch workspaces)."""
    with _lock:
        _instances.clear()
