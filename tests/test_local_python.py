"""The training Python of local runs (Settings): a GPU environment separate from the app's CPU stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from platform_core import settings
from platform_core.errors import InvalidInput
from platform_core.runners.local import LocalRunner
from platform_core.runners.local_env import check_python_env


def test_local_runs_use_the_configured_interpreter(platform, tmp_path):
    assert LocalRunner(platform).python() == sys.executable
    other = tmp_path / "gpu-env" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.symlink_to(sys.executable)  # a second environment's interpreter, as a GPU env would have
    version = settings.set_local_python(platform, str(other))
    assert version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert LocalRunner(platform).python() == str(other)
    settings.set_local_python(platform, "")
    assert LocalRunner(platform).python() == sys.executable


@pytest.mark.parametrize(
    "value, reason",
    [
        ("bin/python", "absolute path"),
        ("/nonexistent/python", "not an executable file"),
        ("/dev/null", "not an executable file"),
    ],
)
def test_a_path_that_is_not_a_working_python_is_refused(platform, value, reason):
    settings.set_local_python(platform, "")
    with pytest.raises(InvalidInput, match=reason):
        settings.set_local_python(platform, value)
    assert settings.local_python(platform) == sys.executable  # nothing stored


def test_a_python_that_does_not_start_is_refused(platform, tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'cannot load libpython' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(InvalidInput, match="does not run: cannot load libpython"):
        settings.set_local_python(platform, str(broken))


def test_the_environment_check_runs_with_the_interpreter_under_test(tmp_path):
    report = check_python_env(sys.executable, "manager")
    assert report["python"] == sys.executable and report["passed"] is True
    assert {c["name"] for c in report["checks"]} >= {"python", "torch"}
    empty = tmp_path / "python"
    empty.write_text("#!/bin/sh\nexit 0\n")
    empty.chmod(0o755)
    with pytest.raises(InvalidInput, match="printed no report"):
        check_python_env(str(empty))


def test_verify_env_cli_checks_another_interpreter(tmp_path):
    env = {**os.environ, "PLATFORM_HOME": str(tmp_path / "ws")}
    result = subprocess.run(
        [sys.executable, "-m", "platform_core", "verify-env", "--python", sys.executable, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["python"] == sys.executable and report["mode"] == "manager" and report["passed"]
    key = subprocess.run(
        [sys.executable, "-m", "platform_core", "gen-key", "--json"], capture_output=True, text=True, env=env
    )
    assert key.returncode == 0 and len(json.loads(key.stdout)["key"]) == 44
