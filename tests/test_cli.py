"""The CLI is the same library as the pages: JSON output, clear errors, no secrets printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _cli(home, *args, stdin=""):
    env = {**os.environ, "PLATFORM_HOME": str(home)}
    env.pop("PLATFORM_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "platform_core", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_verify_env_manager_reports_one_line_per_check(tmp_path):
    out = _cli(tmp_path, "verify-env", "--mode", "manager", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    names = {c["name"] for c in report["checks"]}
    assert {"python", "torch", "transformers", "verl", "trl", "mergekit", "cuda"} <= names
    assert report["passed"] is True
    text = _cli(tmp_path, "verify-env", "--lang", "zh").stdout
    assert "✓ Python 版本" in text and "环境验证通过" in text


def test_verify_env_training_fails_honestly_without_a_gpu(tmp_path):
    out = _cli(tmp_path, "verify-env", "--mode", "training", "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["passed"] is False
    cuda = next(c for c in report["checks"] if c["name"] == "cuda")
    assert not cuda["ok"] and cuda["required"]


def test_connection_list_never_shows_the_secret(tmp_path):
    assert (
        _cli(
            tmp_path,
            "connection",
            "add",
            "--name",
            "gpu",
            "--host",
            "gpu.example.com",
            "--port",
            "2222",
            "--user",
            "root",
            "--password-stdin",
            stdin="hunter2-hunter2\n",
        ).returncode
        == 0
    )
    out = _cli(tmp_path, "connection", "list", "--json")
    assert "hunter2" not in out.stdout
    assert json.loads(out.stdout)[0]["port"] == 2222


def test_bad_input_is_one_clear_line_on_stderr(tmp_path):
    out = _cli(
        tmp_path,
        "connection",
        "add",
        "--name",
        "x; rm -rf /",
        "--host",
        "h",
        "--user",
        "u",
        "--password-stdin",
        stdin="pw\n",
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: connection name:") and "Traceback" not in out.stderr
    out = _cli(
        tmp_path,
        "connection",
        "add",
        "--name",
        "ok",
        "--host",
        "h",
        "--user",
        "u",
        "--workdir",
        "~/jobs; touch /tmp/PWNED",
        "--password-stdin",
        stdin="pw\n",
    )
    assert out.returncode == 2 and "work directory" in out.stderr
