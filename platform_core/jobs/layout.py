"""Where a job's files live (on the machine that runs it), and the plugin kit shipped next to runs."""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

PLUGINS_DIR = Path(__file__).resolve().parents[1] / "plugins"
KIT_FILES = {  # file name in the kit -> source
    "verl_plugin.py": PLUGINS_DIR / "verl_plugin.py",
    "reward.py": PLUGINS_DIR / "reward.py",
    "supervisor.py": PLUGINS_DIR / "supervisor.py",
    "attention.py": PLUGINS_DIR / "attention.py",
    "trl_runner.py": PLUGINS_DIR / "trl_runner.py",
    "trl_callback.py": PLUGINS_DIR / "trl_callback.py",
    "trl_ppo.py": PLUGINS_DIR / "trl_ppo.py",
    "sampling.py": PLUGINS_DIR.parent / "monitor" / "sampling.py",
}


def kit_hash() -> str:
    """A content hash of the kit files (a new kit directory whenever a plugin changes)."""
    digest = hashlib.sha256()
    for name, source in sorted(KIT_FILES.items()):
        digest.update(name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:12]


def build_local_kit(cache_dir: Path) -> Path:
    """Copy the kit into <cache>/plugin-kit/<hash>/ once and return that directory."""
    target = cache_dir / "plugin-kit" / kit_hash()
    if not (target / ".complete").exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, source in KIT_FILES.items():
            shutil.copy2(source, tmp / name)
        (tmp / ".complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def slug(name: str) -> str:
    """An ASCII file-name fragment for a job name (Chinese names keep their id-based directory)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return text[:40] or "job"


@dataclass(frozen=True)
class JobPaths:
    """Paths of one job as strings on the machine that runs it (POSIX on servers)."""

    job_dir: str

    @property
    def checkpoints(self) -> str:
        return f"{self.job_dir}/checkpoints"

    @property
    def config(self) -> str:
        return f"{self.job_dir}/config"

    @property
    def rollouts(self) -> str:
        return f"{self.job_dir}/rollouts"

    def attempt(self, number: int) -> str:
        return f"{self.job_dir}/attempt-{number}"


def job_dir_name(job_id: int, name: str) -> str:
    return f"job-{job_id}-{slug(name)}"
