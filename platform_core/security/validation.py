"""Validation of names and paths that users type, before they reach a file system or a command."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from platform_core.errors import InvalidInput

# Characters a shell would interpret. A path or a name never needs them, so refusing them is cheaper than
# reasoning about every place the value could travel (a remote shell, a Hydra override, a YAML file).
SHELL_METACHARACTERS = set(";|&$`<>!*?{}[]()'\"\\#~^") | {"\n", "\r", "\t", "\0"}
_NAME_PATTERN = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff .@+:=,-]{0,127}$")


def _show(value: str) -> str:
    """Return a short printable rendering of a user value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def check_name(value: str, field: str) -> str:
    """Return the stripped name if it is a safe display name (letters, digits, CJK, space and ._-@+:=,)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: must not be empty")
    value = value.strip()
    if not _NAME_PATTERN.match(value):
        raise InvalidInput(
            f"{field}: {_show(value)} is not allowed; use letters, digits, Chinese characters, spaces and . _ - @ + : = ,"
            " (at most 128 characters, starting with a letter or digit)"
        )
    return value


def check_path_text(value: str, field: str, allow_home: bool = False) -> str:
    """Return the path text if it has no shell metacharacters, control characters or `..` components.

    `allow_home` accepts a leading `~/` (remote work directories are often given that way).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: a path is required")
    value = value.strip()
    body = value[1:] if allow_home and (value == "~" or value.startswith("~/")) else value
    bad = sorted({ch for ch in body if ch in SHELL_METACHARACTERS or ord(ch) < 32})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidInput(f"{field}: {_show(value)} contains characters not allowed in a path ({shown})")
    if ".." in PurePosixPath(value).parts:
        raise InvalidInput(f"{field}: {_show(value)} must not contain '..'")
    return value


def resolve_inside(value: str | os.PathLike, roots: list[Path], field: str) -> Path:
    """Return the absolute, symlink-resolved path if it lies inside one of `roots`, else raise InvalidInput.

    >>> resolve_inside("models/demo", [Path("/ws")], "output")   # relative paths are taken from the first root
    """
    text = os.fspath(value)
    check_path_text(text, field, allow_home=True)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = roots[0] / path
    resolved = path.resolve()
    for root in roots:
        root_resolved = Path(root).expanduser().resolve()
        if resolved == root_resolved or resolved.is_relative_to(root_resolved):
            return resolved
    allowed = ", ".join(str(r) for r in roots)
    raise InvalidInput(f"{field}: {_show(text)} is outside the allowed places ({allowed})")


def check_remote_path(value: str, field: str, roots: list[str]) -> str:
    """Return a normalised remote POSIX path if it lies under one of `roots` (which may start with `~`)."""
    text = check_path_text(value, field, allow_home=True)
    normalised = str(PurePosixPath(text))
    for root in roots:
        root_norm = str(PurePosixPath(root))
        if normalised == root_norm or normalised.startswith(root_norm.rstrip("/") + "/"):
            return normalised
    raise InvalidInput(f"{field}: {_show(text)} is outside the allowed remote places ({', '.join(roots)})")
