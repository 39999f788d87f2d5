"""Registered HF model directories, local or on a server, with architecture, size and dtype from config.json."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound
from platform_core.security.validation import check_name, check_path_text
from platform_core.tasks import TaskContext, task_kind

MODEL_DIRS_SETTING = "model_dirs"  # {"local": [paths], "<connection>": [remote paths]}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _safetensors_numel(path: Path) -> tuple[int, str | None]:
    """Return (parameter count, dominant dtype) from a safetensors header, without reading the tensors."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total, by_dtype = 0, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info["shape"]:
            count *= dim
        total += count
        by_dtype[info["dtype"]] = by_dtype.get(info["dtype"], 0) + count
    dominant = max(by_dtype, key=by_dtype.get) if by_dtype else None
    return total, dominant


_ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I8": "int8", "U8": "uint8"}


def read_model_info(path: Path | str) -> dict[str, Any]:
    """Return architecture, model_type, params, dtype and size_bytes of a local HF model directory."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InvalidInput(f"{path}: not a Hugging Face model directory (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{config_file}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    weights = [p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    params, dtype = 0, None
    for weight in weights:
        if weight.suffix == ".safetensors":
            count, dominant = _safetensors_numel(weight)
            params += count
            dtype = dtype or _ST_DTYPES.get(dominant or "", dominant)
    adapter = (path / "adapter_config.json").is_file()
    return {
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": config.get("model_type"),
        "params": params or None,
        "dtype": dtype or config.get("dtype") or config.get("torch_dtype"),
        "size_bytes": sum(p.stat().st_size for p in weights),
        "meta": {
            "hidden_size": config.get("hidden_size"),
            "num_hidden_layers": config.get("num_hidden_layers"),
            "vocab_size": config.get("vocab_size"),
            "has_tokenizer": (path / "tokenizer_config.json").is_file(),
            "lora_adapter": adapter,
        },
    }


def register_model(
    platform: Platform,
    path: Path | str,
    name: str | None = None,
    source: str = "user",
    location: str = "local",
    info: dict[str, Any] | None = None,
) -> int:
    """Register a model directory (reading its config.json) and return the model id.

    A path already registered keeps its record: its config facts are refreshed, its name and source stay (a record
    a scan found takes the more specific source). A user registration (source "user") that asks for another name
    than the record's is refused, naming the record, instead of being ignored."""
    text = check_path_text(str(path), "model path", allow_home=location != "local")
    if location == "local":
        resolved = Path(text).expanduser().resolve()
        info = info or read_model_info(resolved)
        text = str(resolved)
    elif info is None:
        raise InvalidInput("a remote model needs its config information (list it through the connection)")
    requested = check_name(name, "model name") if name else None
    name = requested or check_name(Path(text).name, "model name")
    existing = platform.store.find_one("models", "path = ? AND location = ?", (text, location))
    if existing:
        if requested and source == "user" and not _same_name(existing["name"], requested, location):
            raise InvalidInput(
                f"model path: {text} is already registered as {existing['name']!r} (#{existing['id']}); "
                f"use `model rename {existing['id']} {requested}` or remove it first"
            )
        changes = dict(info)
        if existing["source"] == "scan" and source != "scan":
            changes["source"] = source
        platform.store.update("models", existing["id"], **changes)
        return existing["id"]
    record = {"name": name, "path": text, "location": location, "source": source, **info}
    clash = platform.store.find_one("models", "name = ?", (name,))
    if clash:
        record["name"] = f"{name}@{location}" if location != "local" else f"{name}-{int(time.time())}"
    return platform.store.insert("models", {**record, "created_at": time.time()})


def _same_name(stored: str, requested: str, location: str) -> bool:
    """Whether a stored name is the requested one, or the variant registration gave it on a clash (name-<time>)."""
    if stored == requested or stored == f"{requested}@{location}":
        return True
    suffix = stored.removeprefix(f"{requested}-")
    return suffix != stored and suffix.isdigit()


def find_registered(platform: Platform, path: Path | str, location: str = "local") -> dict[str, Any] | None:
    """Return the record of a model directory if it is registered (a local path is compared resolved)."""
    text = str(Path(str(path)).expanduser().resolve()) if location == "local" else str(path)
    return platform.store.find_one("models", "path = ? AND location = ?", (text, location))


def rename_model(platform: Platform, ref: str | int, new_name: str) -> dict[str, Any]:
    """Give a registered model another name (unique among all models); return the updated record."""
    model = get_model(platform, ref)
    new_name = check_name(new_name, "model name")
    clash = platform.store.find_one("models", "name = ? AND id != ?", (new_name, model["id"]))
    if clash:
        raise InvalidInput(f"model name: {new_name!r} is already used by model #{clash['id']} ({clash['path']})")
    platform.store.update("models", model["id"], name=new_name)
    return get_model(platform, model["id"])


def get_model(platform: Platform, ref: str | int) -> dict[str, Any]:
    """Return a registered model by id, name or path."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = platform.store.get("models", int(ref))
    else:
        row = platform.store.find_one("models", "name = ? OR path = ?", (ref, str(ref)))
    if row is None:
        raise NotFound(f"model {ref!r} is not registered (add it with `model add PATH` or in Settings)")
    return row


def remove_model(platform: Platform, ref: str | int) -> None:
    """Forget a model (its files stay where they are)."""
    platform.store.delete("models", get_model(platform, ref)["id"])


def model_dirs(platform: Platform, location: str = "local") -> list[str]:
    """Return the extra directories scanned for models at a location."""
    return list(platform.store.get_setting(MODEL_DIRS_SETTING, {}).get(location, []))


def add_model_dir(platform: Platform, path: str, location: str = "local") -> None:
    """Add a directory to scan for models (e.g. ~/autodl-tmp on a server)."""
    check_path_text(path, "model directory", allow_home=True)
    if location == "local" and not Path(path).expanduser().is_dir():
        raise InvalidInput(f"model directory: {path} does not exist on this machine")
    dirs = platform.store.get_setting(MODEL_DIRS_SETTING, {})
    entries = dirs.setdefault(location, [])
    if path not in entries:
        entries.append(path)
    platform.store.set_setting(MODEL_DIRS_SETTING, dirs)


def remove_model_dir(platform: Platform, path: str, location: str = "local") -> None:
    dirs = platform.store.get_setting(MODEL_DIRS_SETTING, {})
    dirs[location] = [p for p in dirs.get(location, []) if p != path]
    platform.store.set_setting(MODEL_DIRS_SETTING, dirs)


def _candidate_dirs(root: Path) -> list[Path]:
    """Model directories directly in root, one level down (e.g. models/qwen), or root itself."""
    if not root.is_dir():
        return []
    if (root / "config.json").is_file():
        return [root]
    found = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "config.json").is_file():
            found.append(child)
    return found


def scan_local_models(platform: Platform) -> list[dict[str, Any]]:
    """Register model directories found in the workspace models/ and the extra local directories; return all local models."""
    roots = [platform.workspace.models] + [Path(p).expanduser() for p in model_dirs(platform, "local")]
    known = {row["path"] for row in platform.store.find("models", "location = 'local'", columns="path")}
    for root in roots:
        for directory in _candidate_dirs(root):
            if str(directory.resolve()) not in known:
                try:
                    register_model(platform, directory, source="scan")
                except InvalidInput:
                    continue
    return list_models(platform, "local")


# Heads that score text instead of generating it: reward models, classifiers. Not a base for SFT/RL or an eval run.
SCORING_HEADS = ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering")


def is_generative(model: dict[str, Any]) -> bool:
    """True unless the model's architecture is a scoring head (an unknown architecture counts as generative)."""
    return not (model.get("architecture") or "").endswith(SCORING_HEADS)


def list_models(platform: Platform, location: str = "local", generative: bool = False) -> list[dict[str, Any]]:
    """Return registered models at a location (local or a connection name), newest first; marks missing local dirs.
    With `generative`, models with a scoring head (reward models) are left out."""
    rows = platform.store.find("models", "location = ?", (location,), order_by="created_at DESC")
    if generative:
        rows = [row for row in rows if is_generative(row)]
    if location == "local":
        for row in rows:
            row["exists"] = os.path.isdir(row["path"])
    return rows


REMOTE_SCAN = (
    'for d in "$@"; do '
    '  case "$d" in "~/"*) d="$HOME/${d#\\~/}";; "~") d="$HOME";; esac; '
    '  [ -d "$d" ] || continue; '
    '  for c in "$d/config.json" "$d"/*/config.json; do '
    '    [ -f "$c" ] || continue; m=$(dirname "$c"); '
    '    s=$(du -sb --apparent-size "$m" 2>/dev/null | cut -f1); '
    '    printf "%s\\t%s\\t" "$m" "${s:-0}"; head -c 20000 "$c" | tr -d "\\n"; printf "\\n"; '
    "  done; "
    "done"
)


def scan_remote_models(platform: Platform, connection: str) -> list[dict[str, Any]]:
    """List model directories on a server (its work dir models/ and extra dirs), register them, return them."""
    from platform_core.connections import get_connection
    from platform_core.runners.ssh import open_session

    profile = get_connection(platform, connection)
    dirs = [f"{profile['workdir'].rstrip('/')}/models", *model_dirs(platform, profile["name"])]
    for d in dirs:
        check_path_text(d, "remote model directory", allow_home=True)
    session = open_session(platform, profile["id"])
    try:
        out = session.check(["bash", "-c", REMOTE_SCAN, "scan", *dirs], "listing remote models", timeout=60)
    finally:
        session.close()
    for line in out.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        model_path, size, config_text = parts
        try:
            config = json.loads(config_text)
        except json.JSONDecodeError:
            continue
        info = {
            "architecture": (config.get("architectures") or [None])[0],
            "model_type": config.get("model_type"),
            "params": None,
            "dtype": config.get("dtype") or config.get("torch_dtype"),
            "size_bytes": int(size or 0),
            "meta": {"hidden_size": config.get("hidden_size"), "num_hidden_layers": config.get("num_hidden_layers")},
        }
        register_model(platform, model_path, source="scan", location=profile["name"], info=info)
    scans = platform.store.get_setting(REMOTE_SCANS_SETTING, {})
    scans[profile["name"]] = time.time()
    platform.store.set_setting(REMOTE_SCANS_SETTING, scans)
    return list_models(platform, profile["name"])


REMOTE_SCANS_SETTING = "model_scans"  # {"<connection>": time of the last finished listing of its models}
SCAN_TASK = "models.scan_remote"


@task_kind(SCAN_TASK)
def scan_remote_task(ctx: TaskContext, params: dict[str, Any]) -> dict[str, Any]:
    """Task: list and register a server's models (params: connection)."""
    ctx.progress(0.1, f"connecting to {params['connection']}")
    rows = scan_remote_models(ctx.platform, params["connection"])
    for row in rows:
        ctx.log(f"{row['name']}: {row['path']} ({row['architecture'] or '?'})")
    ctx.progress(1.0, f"{len(rows)} model(s)")
    return {"connection": params["connection"], "models": len(rows)}


def _scan_tasks(platform: Platform, connection: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = platform.store.find("tasks", "kind = ?", (SCAN_TASK,), order_by="id DESC", limit=limit)
    return [row for row in rows if (row["params"] or {}).get("connection") == connection]


def start_remote_scan(platform: Platform, connection: str) -> int:
    """Start listing a server's models in the background (a task); return its id (the running one, if any)."""
    from platform_core.connections import get_connection
    from platform_core.tasks import TaskTitle, submit_task

    profile = get_connection(platform, connection)
    state = remote_scan_state(platform, profile["name"])
    if state["state"] == "running":
        return state["task_id"]
    title = TaskTitle("scan_models", f"List the models on {profile['name']}", name=profile["name"])
    return submit_task(platform, SCAN_TASK, title, {"connection": profile["name"]})


def remote_scan_state(platform: Platform, connection: str) -> dict[str, Any]:
    """How current a server's model list is: {state: never|running|completed|failed, task_id, at, error}.

    `at` is when the last listing finished (by a task, the CLI or Settings); a task whose worker died counts as
    failed."""
    from platform_core.runners.process import pid_alive

    at = platform.store.get_setting(REMOTE_SCANS_SETTING, {}).get(connection)
    tasks = _scan_tasks(platform, connection, limit=20)
    latest = tasks[0] if tasks else None
    out: dict[str, Any] = {"state": "completed" if at else "never", "task_id": None, "at": at, "error": None}
    if latest is None:
        return out
    out["task_id"] = latest["id"]
    if latest["state"] in ("pending", "running"):
        started = latest["started_at"] or latest["created_at"] or 0
        dead = latest["pid"] is not None and not pid_alive(latest["pid"])
        if not dead and (latest["pid"] is not None or time.time() - started < 60):
            out["state"] = "running"
            return out
        out.update(state="failed", error="the listing stopped without a result")
    elif latest["state"] in ("failed", "stopped") and (at is None or (latest["ended_at"] or 0) > at):
        out.update(state="failed", error=latest["error"] or latest["state"])
    return out
