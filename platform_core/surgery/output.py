"""Where surgery writes: a directory inside the workspace models/, built in a staging directory and swapped in.

A result is written to `cache/surgery/staging/<name>-<pid>` and moved into models/ only when complete, so a failed
or stopped task never leaves a half-written model where a loader (or the model scan) would find it; an existing
directory is replaced only when the user asked to overwrite, and only after the new one is complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput
from platform_core.security.validation import check_name
from platform_core.surgery.compat import SIDE_FILES, TOKENIZER_FILES


def resolve_output(
    platform: Platform, out: str | os.PathLike, overwrite: bool = False, inputs: Iterable[Path] = ()
) -> Path:
    """Return the absolute output directory inside the workspace models/, refusing unsafe or occupied places.

    `out` is a name (`merged-a-b`, taken inside models/), `models/<name>` (the same place: a leading `models/` of
    a relative path names the workspace models/, not models/models/) or an absolute path inside models/. An
    existing non-empty directory is refused unless `overwrite`; an input model directory (or one containing it) is
    always refused.
    """
    models_root = platform.workspace.models.resolve()
    text = os.fspath(out).strip()
    relative = Path(text)
    if not relative.is_absolute() and len(relative.parts) > 1 and relative.parts[0] == "models":
        text = str(Path(*relative.parts[1:]))
    path = platform.workspace.resolve(text, "output directory", areas=("models",))
    if path == models_root:
        raise InvalidInput(f"output directory: name a directory inside {models_root}, not the models folder itself")
    check_name(path.name, "output name")
    if path.name.startswith("."):
        raise InvalidInput(f"output name: {path.name!r} must not start with a dot")
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"output directory: {path} exists and is a file")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InvalidInput(
            f"output directory: {path} already exists and is not empty; choose another name or ask to overwrite it"
        )
    for source in inputs:
        source = Path(source).resolve()
        if path == source or source.is_relative_to(path) or path.is_relative_to(source):
            raise InvalidInput(f"output directory: {path} would overwrite the input {source}; choose another name")
    return path


def staging_dir(platform: Platform, out: Path) -> Path:
    """Create and return an empty staging directory for `out` (removed by `discard` or consumed by `publish`)."""
    staging = platform.workspace.cache / "surgery" / "staging" / f"{out.name}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def publish(staging: Path, out: Path) -> Path:
    """Move a complete staging directory to `out`, replacing what was there; return `out`."""
    old = None
    if out.exists():
        old = staging.parent / f"{out.name}-replaced-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        shutil.move(str(out), str(old))
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), str(out))
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def discard(staging: Path) -> None:
    """Remove a staging directory after a failure."""
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def building(platform: Platform, out: Path) -> Iterator[Path]:
    """Yield a staging directory; publish it to `out` when the block succeeds, discard it when it raises."""
    staging = staging_dir(platform, out)
    try:
        yield staging
    except BaseException:
        discard(staging)
        raise
    publish(staging, out)


def copy_side_files(source: Path, target: Path, names: Iterable[str] = SIDE_FILES, replace: bool = False) -> list[str]:
    """Copy config, generation config and tokenizer files that exist in `source`; return the names copied."""
    copied = []
    for name in names:
        src = source / name
        if src.is_file() and (replace or not (target / name).exists()):
            shutil.copy2(src, target / name)
            copied.append(name)
    return copied


def copy_tokenizer(sources: Iterable[Path], target: Path) -> Path | None:
    """Copy the tokenizer files of the first source that has a tokenizer into `target` (unless it has one)."""
    if (target / "tokenizer_config.json").is_file():
        return None
    for source in sources:
        if (source / "tokenizer_config.json").is_file():
            copy_side_files(source, target, TOKENIZER_FILES)
            return source
    return None


def register_output(platform: Platform, out: Path, source: str, recipe: dict[str, Any]) -> int:
    """Register a finished model directory (name = directory name) with how it was made; return the model id."""
    from platform_core.models import read_model_info, register_model

    info = read_model_info(out)
    info["meta"] = {**(info.get("meta") or {}), "surgery": recipe}
    return register_model(platform, out, name=out.name, source=source, info=info)
