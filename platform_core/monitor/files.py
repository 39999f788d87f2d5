"""Where a run's bytes come from: the local disk or a remote server, behind one small interface.

Every reader in this package goes through a `FileAccess`: `stat(path)`, `read(path, offset, limit)`, `listdir(path)`.
`LocalFiles` reads this machine; `RemoteFiles` wraps an `SSHSession` (its `read_from(path, offset, limit)` and
`file_size(path)`), and `CallableFiles` takes any pair of such callables, so tests and other transports plug in.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

ATTEMPT_DIR = re.compile(r"^attempt-(\d+)$")


@dataclass(frozen=True)
class FileStat:
    """Size in bytes; `identity` (device, inode) where the transport knows it; modification time if known."""

    size: int
    identity: tuple[int, int] | None = None
    mtime: float | None = None


class FileAccess(Protocol):
    def stat(self, path: str) -> FileStat | None: ...

    def read(self, path: str, offset: int, limit: int | None = None) -> bytes: ...

    def listdir(self, path: str) -> list[str]: ...

    def join(self, *parts: str) -> str: ...


class LocalFiles:
    """Files on this machine."""

    def stat(self, path: str) -> FileStat | None:
        """Return the file's size, (device, inode) and mtime, or None when it does not exist."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileStat(st.st_size, (st.st_dev, st.st_ino), st.st_mtime)

    def read(self, path: str, offset: int, limit: int | None = None) -> bytes:
        """Return up to `limit` bytes from `offset` (all remaining bytes when limit is None); b"" if missing."""
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(limit) if limit else handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return b""

    def listdir(self, path: str) -> list[str]:
        """Return the names in a directory, or [] when it does not exist."""
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def join(self, *parts: str) -> str:
        """Join path parts the local way."""
        return os.path.join(*parts)

    def local_path(self, path: str) -> str:
        """Return the path itself (local files can be handed to the browser by path)."""
        return path


class CallableFiles:
    """Files reached through callables: `read_from(path, offset[, limit]) -> bytes` and `size(path) -> int | None`.

    Remote transports do not expose inodes, so rotation is detected by the reader from a shrinking size or a changed
    first line. `listdir` is optional (without it, attempt directories are not discovered).
    """

    def __init__(
        self,
        read_from: Callable[..., bytes],
        size: Callable[[str], int | None],
        listdir: Callable[[str], list[str]] | None = None,
    ):
        self._read_from = read_from
        self._size = size
        self._listdir = listdir
        self._takes_limit = _accepts_limit(read_from)

    def stat(self, path: str) -> FileStat | None:
        """Return the size (no inode or mtime through these callables), or None when missing."""
        size = self._size(path)
        return None if size is None else FileStat(int(size))

    def read(self, path: str, offset: int, limit: int | None = None) -> bytes:
        """Return up to `limit` bytes from `offset`."""
        if self._takes_limit:
            return self._read_from(path, offset, limit)
        data = self._read_from(path, offset)
        return data[:limit] if limit else data

    def listdir(self, path: str) -> list[str]:
        """Return the names in a directory ([] without a listdir callable)."""
        return self._listdir(path) if self._listdir else []

    def join(self, *parts: str) -> str:
        """Join path parts the POSIX way (remote servers)."""
        return posixpath.join(*parts)


class RemoteFiles(CallableFiles):
    """Files on an SSH server, through an open `SSHSession` (SFTP reads at an offset, so offsets never drift)."""

    def __init__(self, session: Any):
        self.session = session
        super().__init__(session.read_from, session.file_size, self._list)

    def _list(self, path: str) -> list[str]:
        from platform_core.errors import RemoteError

        try:
            return self.session.sftp().listdir(self.session.expand(path))
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.session.reconnect()
            raise RemoteError(f"listing {path} on {self.session.describe()} failed: {exc}") from exc


def _accepts_limit(func: Callable[..., bytes]) -> bool:
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


def attempt_dirs(access: FileAccess, run_dir: str) -> list[tuple[int, str]]:
    """Return [(attempt number, directory)]: the run directory itself as attempt 0, then `attempt-N/` in order."""
    found = [(0, run_dir)]
    for name in access.listdir(run_dir):
        match = ATTEMPT_DIR.match(name)
        if match:
            found.append((int(match.group(1)), access.join(run_dir, name)))
    return sorted(found)


def attempt_files(access: FileAccess, run_dir: str, name: str) -> list[tuple[int, str]]:
    """Return [(attempt, path)] of the files called `name` in the run directory and its attempt directories."""
    return [
        (attempt, access.join(directory, name))
        for attempt, directory in attempt_dirs(access, run_dir)
        if access.stat(access.join(directory, name)) is not None
    ]
