"""Where the platform's files live, and the checks that keep user-given paths inside those places."""

from platform_core.workspace.layout import REPO_ROOT, Workspace, default_home

__all__ = ["REPO_ROOT", "Workspace", "default_home"]
