"""User settings kept in the store: language, run target (local or an SSH profile), Ray address, access password,
the training Python of local runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from platform import python_version
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.security.secrets import hash_password, verify_password

LANGUAGES = ("zh", "en")
DEFAULTS: dict[str, Any] = {
    "language": "zh",
    "run_target": "local",  # "local" or "ssh:<connection name>"
    "ray_address": "",  # e.g. http://127.0.0.1:8265 for `ray job submit`
    "refresh_seconds": 2,
    "local_python": "",  # the interpreter local training runs use ("" = the app's own .venv)
}


def get(platform: Platform, key: str) -> Any:
    """Return a setting, or its default."""
    return platform.store.get_setting(key, DEFAULTS.get(key))


def set_language(platform: Platform, language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInput(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    platform.store.set_setting("language", language)


def run_target(platform: Platform) -> str:
    """Return the current run target ("local" or "ssh:<name>"), falling back to local if the profile is gone."""
    target = get(platform, "run_target")
    if target.startswith("ssh:"):
        name = target[4:]
        if not platform.store.find_one("connections", "name = ?", (name,)):
            return "local"
    return target


def set_run_target(platform: Platform, target: str) -> None:
    """Switch between local and a stored SSH profile (the sidebar's quick switch)."""
    if target != "local":
        if not target.startswith("ssh:") or not platform.store.find_one("connections", "name = ?", (target[4:],)):
            raise InvalidInput(f"run target: {target!r} is neither 'local' nor 'ssh:<an existing connection>'")
    platform.store.set_setting("run_target", target)


def target_connection(target: str) -> str | None:
    """Return the connection name of an `ssh:` target, else None."""
    return target[4:] if target.startswith("ssh:") else None


def set_ray_address(platform: Platform, address: str) -> None:
    address = address.strip()
    if address and not address.startswith(("http://", "https://", "ray://")):
        raise InvalidInput(f"Ray address: {address!r} must start with http://, https:// or ray://")
    platform.store.set_setting("ray_address", address)


def set_access_password(platform: Platform, password: str | None) -> None:
    """Set (or clear, with None/empty) the password that guards the app when it listens beyond 127.0.0.1."""
    if password:
        if len(password) < 8:
            raise InvalidInput("access password: use at least 8 characters")
        platform.store.set_setting("access_password_hash", hash_password(password))
    else:
        platform.store.set_setting("access_password_hash", None)


def access_password_required(platform: Platform) -> bool:
    return bool(platform.store.get_setting("access_password_hash"))


def check_access_password(platform: Platform, password: str) -> bool:
    stored = platform.store.get_setting("access_password_hash")
    return bool(stored) and verify_password(password, stored)


def local_python(platform: Platform) -> str:
    """The Python that local training runs use: the configured GPU environment, or the app's own interpreter."""
    from platform_core.runners.process import python_executable

    return get(platform, "local_python") or python_executable()


def set_local_python(platform: Platform, path: str) -> str:
    """Point local training runs at another environment's interpreter (a GPU env with requirements-gpu.txt);
    empty = the app's own. Returns the interpreter's Python version. Refuses a path that is not a working Python."""
    from platform_core.security.validation import check_path_text

    path = path.strip()
    if not path:
        platform.store.set_setting("local_python", "")
        return ".".join(python_version().split(".")[:2])
    check_path_text(path, "training Python", allow_home=True)
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        raise InvalidInput(f"training Python: {path!r} must be an absolute path (e.g. /opt/verl-env/bin/python)")
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        raise InvalidInput(f"training Python: {candidate} is not an executable file")
    try:
        result = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"training Python: {candidate} does not run: {exc}") from exc
    if result.returncode != 0:
        raise InvalidInput(f"training Python: {candidate} does not run: {result.stderr.strip()[-300:]}")
    platform.store.set_setting("local_python", str(candidate))
    return result.stdout.strip()
