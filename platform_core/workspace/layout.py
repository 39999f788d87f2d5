"""The workspace: one root directory (PLATFORM_HOME, default ./workspace next to the repo) with fixed sub-folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platform_core.security.validation import resolve_inside

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_AREAS = ("datasets", "models", "outputs", "logs")


def default_home() -> Path:
    """Return the workspace root: $PLATFORM_HOME, or `workspace/` next to the repository."""
    env = os.environ.get("PLATFORM_HOME", "").strip()
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "workspace"


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace root. `ensure()` creates them."""

    root: Path

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        """Derived data that can be rebuilt (audits, conversions, converted checkpoints)."""
        return self.root / "cache"

    @property
    def demo(self) -> Path:
        return self.root / "demo"

    @property
    def db_path(self) -> Path:
        return self.root / "platform.db"

    @property
    def key_path(self) -> Path:
        return self.root / "secret.key"

    def ensure(self) -> Workspace:
        """Create the root and its sub-folders if missing; return self."""
        for sub in (*USER_AREAS, "cache", "demo"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        return self

    def area(self, name: str) -> Path:
        """Return one of the user areas (datasets, models, outputs, logs)."""
        if name not in USER_AREAS:
            raise ValueError(f"unknown workspace area {name!r}")
        return self.root / name

    def resolve(
        self,
        value: str | os.PathLike,
        field: str,
        areas: tuple[str, ...] = USER_AREAS,
        extra_roots: tuple[Path, ...] = (),
    ) -> Path:
        """Return an absolute path for user input, refusing anything outside the given areas and extra roots.

        A relative path is taken from the first area, e.g. `resolve("merged", "output", ("models",))`
        is `<root>/models/merged`.
        """
        roots = [self.area(a) for a in areas] + [Path(r) for r in extra_roots]
        return resolve_inside(value, roots, field)
