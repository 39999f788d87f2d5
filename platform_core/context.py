"""The Platform object: one workspace, its store and its secret key, shared by the pages and the CLI."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from platform_core.errors import SecretKeyError
from platform_core.security.secrets import KeySource, SecretBox, load_key
from platform_core.store import Store
from platform_core.workspace import Workspace, default_home

FINGERPRINT_SETTING = "secret_key_fingerprint"


@dataclass
class Platform:
    """Everything a service function needs: `platform.workspace`, `platform.store`, `platform.secret_box()`."""

    workspace: Workspace
    store: Store
    _box: SecretBox | None = field(default=None, repr=False)
    key_source: KeySource | None = field(default=None, repr=False)

    def secret_box(self) -> SecretBox:
        """Return the SecretBox for the active key, refusing a key that differs from the one secrets were stored with."""
        if self._box is None:
            source = load_key(self.workspace.key_path)
            origin = "PLATFORM_SECRET_KEY" if source.origin == "env" else source.origin
            box = SecretBox(source.key, origin)
            stored = self.store.get_setting(FINGERPRINT_SETTING)
            if stored and stored != box.fingerprint and self.store.count("connections", "secret IS NOT NULL"):
                raise SecretKeyError(
                    f"The stored SSH secrets were encrypted with the key whose fingerprint is {stored}, but the key "
                    f"from {origin} has fingerprint {box.fingerprint}. Set PLATFORM_SECRET_KEY to the original key "
                    "(or run `python -m platform_core rotate-key` with it). The stored profiles were not changed."
                )
            self.key_source = source
            self._box = box
        return self._box

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a secret with the active key and remember the key's fingerprint."""
        box = self.secret_box()
        if self.store.get_setting(FINGERPRINT_SETTING) != box.fingerprint:
            self.store.set_setting(FINGERPRINT_SETTING, box.fingerprint)
        return box.encrypt(plaintext)

    def forget_key(self) -> None:
        """Drop the cached key (after a rotation, or when the environment changed)."""
        self._box = None
        self.key_source = None


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
