"""Token counting with a local model's tokenizer, fast and without importing transformers (and torch) in the caller.

transformers decides how a model's tokenizer is assembled (for some models it rebuilds it from the vocabulary instead
of using tokenizer.json as is), so the tokenizer is loaded once with `AutoTokenizer` in a child process
(`python -m platform_core.datasets.tokenizer DIR OUT`) and its Rust backend is saved as JSON under a cache folder,
keyed by a hash of the tokenizer files. The audit loads that JSON with the `tokenizers` library alone and counts with
`encode_batch_fast` (no offsets, no Python lists of ids): the counts equal `len(tokenizer(text,
add_special_tokens=False)["input_ids"])`. A model without a fast tokenizer falls back to transformers in-process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import unicodedata
from pathlib import Path

import numpy as np

from platform_core.errors import InvalidInput

TOKENIZER_FILES = (
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)
SLOW = 3  # exit status of the export when the model has no fast tokenizer


def tokenizer_fingerprint(directory: Path) -> str:
    """A hash of the tokenizer files in a model directory (what cached token lengths depend on)."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in Path(directory).iterdir()
        if p.is_file() and (p.name.startswith("tokenizer") or p.name in TOKENIZER_FILES)
    )
    if not files:
        raise InvalidInput(f"tokenizer: {directory} has no tokenizer files (tokenizer.json / tokenizer_config.json)")
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "platform-tokenizers"


def export_backend(directory: Path, cache_dir: Path | None = None) -> Path | None:
    """Return the cached JSON of the model's fast tokenizer backend (exporting it in a child process), or None if slow."""
    cache_dir = Path(cache_dir or default_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = tokenizer_fingerprint(directory)
    out = cache_dir / f"{fingerprint}.json"
    if out.is_file():
        return out
    if (cache_dir / f"{fingerprint}.slow").is_file():
        return None
    tmp = cache_dir / f".{fingerprint}.{os.getpid()}.tmp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "platform_core.datasets.tokenizer", str(directory), str(tmp)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"tokenizer: loading the tokenizer of {directory} took more than 10 minutes") from exc
    if done.returncode == SLOW:
        (cache_dir / f"{fingerprint}.slow").touch()
        return None
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InvalidInput(f"tokenizer: cannot load a tokenizer from {directory}: {detail}")
    tmp.replace(out)
    return out


class TokenCounter:
    """Counts tokens of many texts with a model's tokenizer, without special tokens, in batches."""

    def __init__(self, directory: Path, cache_dir: Path | None = None):
        self.directory = Path(directory)
        self.backend = None
        self.without_nfc = None
        self.tokenizer = None
        backend_json = export_backend(self.directory, cache_dir)
        if backend_json is not None:
            from tokenizers import Tokenizer, normalizers

            self.backend = Tokenizer.from_file(str(backend_json))
            self.backend.no_truncation()
            self.backend.no_padding()
            if isinstance(self.backend.normalizer, normalizers.NFC):
                # NFC leaves NFC text unchanged, so batches already in NFC skip that pass (Qwen tokenizers have it)
                self.without_nfc = Tokenizer.from_file(str(backend_json))
                self.without_nfc.no_truncation()
                self.without_nfc.no_padding()
                self.without_nfc.normalizer = None
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)

    def count(self, texts: list[str]) -> np.ndarray:
        """Token count of each text (as the tokenizer called with add_special_tokens=False)."""
        if self.backend is not None:
            backend = self.backend
            if self.without_nfc is not None and all(unicodedata.is_normalized("NFC", text) for text in texts):
                backend = self.without_nfc
            encodings = backend.encode_batch_fast(texts, add_special_tokens=False)
            return np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(texts))
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))


_counters: dict[tuple[str, str], TokenCounter] = {}
_lock = threading.Lock()


def token_counter(directory: Path, cache_dir: Path | None = None) -> TokenCounter:
    """A TokenCounter for a model directory, loaded once per process and tokenizer fingerprint."""
    key = (str(Path(directory).resolve()), tokenizer_fingerprint(directory))
    with _lock:
        if key not in _counters:
            _counters.clear()
            _counters[key] = TokenCounter(Path(directory), cache_dir)
        return _counters[key]


def _export(directory: str, out: str) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return SLOW
    Path(out).write_text(backend.to_str(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_export(sys.argv[1], sys.argv[2]))
