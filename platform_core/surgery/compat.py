"""Cheap facts about HF model directories (config, safetensors headers, tokenizer) and the checks run before a merge.

Nothing here reads tensor data: the safetensors header (a few KB at the start of each file) gives every tensor's
name, dtype and shape, so two 7B models can be compared in milliseconds.

    >>> report = check_compatible([Path("models/a"), Path("models/b")])
    >>> report["ok"], report["problems"]
    (False, ["different shape for model.embed_tokens.weight: models/a has [1024, 128], models/b has [2048, 128]"])
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_core.context import Platform
from platform_core.errors import InvalidInput, NotFound
from platform_core.security.validation import check_path_text

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)
# Files besides the weights that make a directory a loadable model (copied by averaging and export).
SIDE_FILES = ("config.json", "generation_config.json", *TOKENIZER_FILES)
MAX_HEADER_BYTES = 100 * 1024 * 1024
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


# English text of the compatibility findings; the page translates them by code (app/i18n/surgery.py
# "surgery.reason.<code>"), the CLI prints the English text.
REASONS = {
    "architecture": "different architecture: {a} is {arch_a} ({type_a}), {b} is {arch_b} ({type_b})",
    "missing_tensors": "different tensors: {other} lacks {names}{more} (which {first} has)",
    "extra_tensors": "different tensors: {other} has {names}{more}, which {first} has not",
    "shape": "different shape for {name}: {first} has {shape_a}, {other} has {shape_b}",
    "tokenizer": "different tokenizer: {a} and {b} have different vocabularies (tokenizer files differ)",
    "no_tokenizer": "{lacks} has no tokenizer files; the tokenizer of {has} is used",
    "dtype": "{a} is {dtype_a} and {b} is {dtype_b}; the result takes the first's dtype",
    "pending_conversion": (
        "{path} is a verl checkpoint not converted to Hugging Face format yet; the task converts it first (cached) "
        "and checks it then"
    ),
}


class SurgeryReason(str):
    """The English text of a compatibility finding, carrying its code and values so that the UI can translate it."""

    code: str
    params: dict[str, str]

    def __new__(cls, code: str, **params: Any) -> SurgeryReason:
        values = {k: str(v) for k, v in params.items()}
        reason = super().__new__(cls, REASONS[code].format(**values))
        reason.code, reason.params = code, values
        return reason

    def record(self) -> dict[str, Any]:
        return {"code": self.code, "params": self.params}

    def __reduce__(self):  # copy, deepcopy and pickle rebuild it from its code and values, not from its text
        return (_surgery_reason, (self.code, self.params))


def _surgery_reason(code: str, params: dict[str, str]) -> SurgeryReason:
    return SurgeryReason(code, **params)


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: its safetensors dtype code (F32, BF16, ...), shape and file."""

    dtype: str
    shape: tuple[int, ...]
    file: Path

    @property
    def nbytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * DTYPE_BYTES.get(self.dtype, 1)


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Return the JSON header of a safetensors file ({name: {dtype, shape, data_offsets}}, plus __metadata__)."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) != 8:
                raise InvalidInput(f"{path}: not a safetensors file (shorter than 8 bytes)")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or length > os.path.getsize(path):
                raise InvalidInput(f"{path}: not a safetensors file (header length {length} is implausible)")
            return json.loads(handle.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: the safetensors header is not valid JSON ({exc})") from exc


def weight_files(model_dir: Path) -> list[Path]:
    """Return the safetensors files of an HF model directory, in index order; explain when there are none."""
    index = model_dir / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{index}: not a valid safetensors index ({exc})") from exc
        files = []
        for name in weight_map.values():
            if name not in files:
                files.append(name)
        missing = [f for f in files if not (model_dir / f).is_file()]
        if missing:
            raise InvalidInput(f"{model_dir}: {INDEX_FILE} lists {missing[0]}, which is missing (incomplete copy?)")
        return [model_dir / f for f in files]
    if (model_dir / SINGLE_FILE).is_file():
        return [model_dir / SINGLE_FILE]
    if any(model_dir.glob("pytorch_model*.bin")):
        raise InvalidInput(
            f"{model_dir}: has only PyTorch .bin weights; model surgery reads safetensors "
            "(load it and save_pretrained it again, which writes safetensors)"
        )
    raise InvalidInput(f"{model_dir}: no model weights ({SINGLE_FILE} or {INDEX_FILE}) found")


def tensor_index(model_dir: Path) -> dict[str, TensorInfo]:
    """Return {tensor name: TensorInfo} for a model directory, from the safetensors headers only."""
    result: dict[str, TensorInfo] = {}
    for path in weight_files(model_dir):
        for name, info in read_safetensors_header(path).items():
            if name == "__metadata__":
                continue
            if name in result:
                raise InvalidInput(
                    f"{model_dir}: tensor {name} appears in both {result[name].file.name} and {path.name}"
                )
            result[name] = TensorInfo(info["dtype"], tuple(info["shape"]), path)
    return result


def read_config(model_dir: Path) -> dict[str, Any]:
    """Return config.json of a model directory as a dict."""
    path = model_dir / "config.json"
    if not path.is_file():
        raise InvalidInput(f"{model_dir}: not a Hugging Face model directory (no config.json)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc


def tokenizer_fingerprint(model_dir: Path) -> str | None:
    """Return a hash of the tokenizer's vocabulary (None when the directory has no tokenizer).

    tokenizer.json is hashed on its vocabulary, merges and added tokens rather than its bytes, so the same tokenizer
    saved again (other formatting, another transformers version) has the same fingerprint.
    """
    digest = hashlib.sha256()
    fast = model_dir / "tokenizer.json"
    if fast.is_file():
        try:
            data = json.loads(fast.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{fast}: invalid JSON ({exc})") from exc
        model = data.get("model") or {}
        added = sorted((t.get("id"), t.get("content")) for t in data.get("added_tokens") or [])
        canonical = {
            "type": model.get("type"),
            "vocab": model.get("vocab"),
            "merges": model.get("merges"),
            "added": added,
        }
        digest.update(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode())
        return digest.hexdigest()[:16]
    slow = [model_dir / n for n in ("tokenizer.model", "vocab.json", "merges.txt") if (model_dir / n).is_file()]
    if not slow:
        return None
    for path in slow:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_adapter_dir(path: Path) -> bool:
    """True for a PEFT adapter directory (adapter_config.json), which holds no full model."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def describe_model(model_dir: Path) -> dict[str, Any]:
    """Return what the checks compare: architecture, model_type, dtype, tensor count, parameters, tokenizer hash."""
    config = read_config(model_dir)
    tensors = tensor_index(model_dir)
    dtypes: dict[str, int] = {}
    params = 0
    for info in tensors.values():
        count = info.nbytes // DTYPE_BYTES.get(info.dtype, 1)
        params += count
        dtypes[info.dtype] = dtypes.get(info.dtype, 0) + count
    return {
        "path": str(model_dir),
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": config.get("model_type"),
        "dtype": max(dtypes, key=dtypes.get) if dtypes else None,
        "tensors": len(tensors),
        "params": params,
        "tie_word_embeddings": config.get("tie_word_embeddings"),
        "tokenizer": tokenizer_fingerprint(model_dir),
    }


def _names(names: list[str], shown: int = 3) -> dict[str, Any]:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return {"names": ", ".join(names[:shown]), "more": more, "count": len(names)}


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def compare_tensors(
    first: Path, first_tensors: dict[str, TensorInfo], other: Path, other_tensors: dict[str, TensorInfo]
) -> SurgeryReason | None:
    """Return why two models' tensors differ (names, then shapes, naming the first such tensor), or None."""
    missing = [n for n in first_tensors if n not in other_tensors]
    if missing:
        return SurgeryReason("missing_tensors", other=other, first=first, **_names(missing))
    extra = [n for n in other_tensors if n not in first_tensors]
    if extra:
        return SurgeryReason("extra_tensors", other=other, first=first, **_names(extra))
    for name, info in first_tensors.items():
        if other_tensors[name].shape != info.shape:
            return SurgeryReason(
                "shape",
                name=name,
                first=first,
                shape_a=_shape(info.shape),
                other=other,
                shape_b=_shape(other_tensors[name].shape),
            )
    return None


def check_compatible(model_dirs: list[Path]) -> dict[str, Any]:
    """Compare models for a merge: same architecture, tensor names and shapes, tokenizer; return a report.

    The report is {"ok", "problems": [reasons], "notes": [harmless differences], "models": [describe_model(...)]}.
    Each problem names the two models and the first tensor (or field) that differs.
    """
    problems: list[SurgeryReason] = []
    notes: list[SurgeryReason] = []
    described = [describe_model(Path(d)) for d in model_dirs]
    first = described[0]
    first_tensors = tensor_index(Path(first["path"]))
    for other in described[1:]:
        a, b = first["path"], other["path"]
        if (other["architecture"], other["model_type"]) != (first["architecture"], first["model_type"]):
            problems.append(
                SurgeryReason(
                    "architecture",
                    a=a,
                    arch_a=first["architecture"],
                    type_a=first["model_type"],
                    b=b,
                    arch_b=other["architecture"],
                    type_b=other["model_type"],
                )
            )
            continue
        reason = compare_tensors(Path(a), first_tensors, Path(b), tensor_index(Path(b)))
        if reason:
            problems.append(reason)
        if first["tokenizer"] and other["tokenizer"] and first["tokenizer"] != other["tokenizer"]:
            problems.append(SurgeryReason("tokenizer", a=a, b=b))
        elif bool(first["tokenizer"]) != bool(other["tokenizer"]):
            has, lacks = (a, b) if first["tokenizer"] else (b, a)
            notes.append(SurgeryReason("no_tokenizer", lacks=lacks, has=has))
        if other["dtype"] != first["dtype"]:
            notes.append(SurgeryReason("dtype", a=a, dtype_a=first["dtype"], b=b, dtype_b=other["dtype"]))
    return {"ok": not problems, "problems": problems, "notes": notes, "models": described}


def require_compatible(model_dirs: list[Path]) -> dict[str, Any]:
    """Return the compatibility report, raising InvalidInput with every reason when the models cannot be merged."""
    report = check_compatible(model_dirs)
    if not report["ok"]:
        error = InvalidInput("these models cannot be merged: " + "; ".join(report["problems"]))
        error.reasons = report["problems"]  # the findings with their codes, for a translated message
        raise error
    return report


def locate(platform: Platform, ref: str | int | os.PathLike, field: str = "model") -> Path:
    """Return the absolute directory a user's reference names: a registered model (id or name), a path, or a name.

    An absolute path is taken as is. A relative one is looked up as a registered model, then inside the workspace
    models/ (`models/x` and `x` both name `<workspace>/models/x`), then from the current directory.
    """
    text = os.fspath(ref).strip() if not isinstance(ref, int) else str(ref)
    if not text:
        raise InvalidInput(f"{field}: a model is required")
    check_path_text(text, field, allow_home=True)
    candidate = Path(text).expanduser()
    if candidate.is_absolute():
        path = candidate
    else:
        row = platform.store.find_one("models", "name = ?", (text,)) or (
            platform.store.get("models", int(text)) if text.isdigit() else None
        )
        models_root = platform.workspace.models
        inside = Path(*candidate.parts[1:]) if len(candidate.parts) > 1 and candidate.parts[0] == "models" else None
        if row is not None:
            if row["location"] != "local":
                raise InvalidInput(f"{field}: model {row['name']} is on {row['location']}, not on this machine")
            path = Path(row["path"])
        elif (models_root / candidate).exists():
            path = models_root / candidate
        elif inside is not None and (models_root / inside).exists():
            path = models_root / inside
        else:
            path = candidate
    if not path.is_dir():
        raise NotFound(f"{field}: {text} is neither a registered model nor a directory on this machine")
    return path.resolve()


def resolve_model_dir(
    platform: Platform, ref: str | int | os.PathLike, field: str = "model", conversions: list[Path] | None = None
) -> Path:
    """Return the HF model directory for a registered model (id or name), a local directory, or a verl checkpoint.

    A relative path is looked up in the workspace models/ first (see `locate`). A verl FSDP checkpoint resolves to
    its HF weights (saved by the trainer or converted earlier). An unconverted one is refused, unless the caller
    passes a `conversions` list: then its shard directory is appended there and the checkpoint directory is
    returned (the caller converts it before reading it). A LoRA adapter is refused with what to do instead.
    """
    from platform_core.surgery.convert import converted_form, find_verl_checkpoint

    path = locate(platform, ref, field)
    if is_adapter_dir(path):
        raise InvalidInput(
            f"{field}: {path} is a LoRA adapter (adapter_config.json), not a full model; merge it into its base "
            "first (LoRA merge)"
        )
    checkpoint = find_verl_checkpoint(path)
    if checkpoint is not None:
        converted = converted_form(platform, checkpoint)
        if converted is None:
            if conversions is not None:
                conversions.append(checkpoint)
                return path
            raise InvalidInput(
                f"{field}: {path} is a verl FSDP checkpoint that has not been converted to Hugging Face format yet; "
                "convert it first (Checkpoints tab or `surgery convert`)"
            )
        path = converted
    read_config(path)
    return path


def resolve_inputs(
    platform: Platform, refs: list[Any], fields: list[str]
) -> tuple[list[Path], dict[Path, Path], list[SurgeryReason]]:
    """Resolve a task's input models, allowing verl checkpoints that still need converting.

    Returns (directories, {directory: shard directory to convert first}, notes): a directory that is an
    unconverted verl checkpoint stays the checkpoint's own directory until the task has converted it.
    """
    dirs: list[Path] = []
    pending: dict[Path, Path] = {}
    notes: list[SurgeryReason] = []
    for ref, field in zip(refs, fields, strict=True):
        conversions: list[Path] = []
        path = resolve_model_dir(platform, ref, field, conversions=conversions)
        dirs.append(path)
        if conversions:
            pending[path] = conversions[0]
            notes.append(SurgeryReason("pending_conversion", path=path))
    return dirs, pending, notes


def check_ready(dirs: list[Path], pending: dict[Path, Path]) -> dict[str, Any]:
    """`require_compatible` on the inputs that are HF models already (converted ones are checked by the task)."""
    ready = [d for d in dirs if d not in pending]
    if len(ready) >= 2:
        return require_compatible(ready)
    return {"ok": True, "problems": [], "notes": [], "models": [describe_model(d) for d in ready]}
