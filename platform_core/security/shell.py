"""Building commands safely: argument lists locally, `shlex.quote` for anything a remote shell will parse."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_command(argv: Iterable[str]) -> str:
    """Return one shell-safe command line for an argument list (`shlex.join`), e.g. for a remote `bash -c`."""
    return shlex.join(str(a) for a in argv)


def quote_env(env: Mapping[str, str]) -> str:
    """Return `K1=v1 K2=v2` with every value quoted; names must be valid identifiers."""
    parts = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        parts.append(f"{name}={shlex.quote(str(value))}")
    return " ".join(parts)


def remote_path_expr(path: str) -> str:
    """Return a shell word for a remote path, expanding a leading `~/` to `$HOME` and quoting the rest."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)
