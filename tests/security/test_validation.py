"""Hostile values never pass path validation, and quoting keeps them inert in a real shell."""

from __future__ import annotations

import subprocess

import pytest

from platform_core.errors import InvalidInput
from platform_core.security.shell import quote_command, quote_env, remote_path_expr
from platform_core.security.validation import check_name, check_path_text, check_remote_path, resolve_inside

HOSTILE = [
    "../../etc/passwd",
    "x; touch PWNED",
    "$(id)",
    "`id`",
    "a\nb",
    "a|b",
    "a && b",
    "a > b",
    "~root/x",
    "a\rb",
    "models/../../../etc",
    "x\0y",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_paths_are_refused_with_the_field_named(value):
    with pytest.raises(InvalidInput, match="output path"):
        check_path_text(value, "output path")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_are_refused(value):
    with pytest.raises(InvalidInput, match="job name"):
        check_name(value, "job name")


def test_ordinary_values_pass():
    assert check_name("Qwen2.5 SFT 实验-1", "job name") == "Qwen2.5 SFT 实验-1"
    assert check_path_text("~/autodl-tmp/qwen_0.5b", "model path", allow_home=True) == "~/autodl-tmp/qwen_0.5b"


def test_resolve_inside_refuses_escapes_including_symlinks(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    (root / "ok").mkdir()
    (root / "link").symlink_to("/etc")
    assert resolve_inside("ok", [root], "output") == root / "ok"
    with pytest.raises(InvalidInput, match="outside the allowed places"):
        resolve_inside("link/passwd", [root], "output")
    with pytest.raises(InvalidInput, match="outside the allowed places"):
        resolve_inside("/etc/passwd", [root], "output")
    with pytest.raises(InvalidInput, match="'..'"):
        resolve_inside("ok/../../x", [root], "output")


def test_remote_paths_stay_under_their_roots():
    assert check_remote_path("~/verl_jobs/models/q", "model", ["~/verl_jobs"]) == "~/verl_jobs/models/q"
    with pytest.raises(InvalidInput, match="outside"):
        check_remote_path("/etc/shadow", "model", ["~/verl_jobs"])
    with pytest.raises(InvalidInput):
        check_remote_path("~/verl_jobs/$(id)", "model", ["~/verl_jobs"])


@pytest.mark.parametrize("value", HOSTILE[:-1] + ["it's", 'say "hi"'])
def test_quoted_values_reach_a_real_shell_as_one_inert_word(value, tmp_path):
    command = quote_command(["printf", "%s", value])
    out = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, check=True)
    assert out.stdout == value.encode()
    assert not (tmp_path / "PWNED").exists()
    env_line = quote_env({"X": value}) + " bash -c 'printf %s \"$X\"'"
    out = subprocess.run(["bash", "-c", env_line], cwd=tmp_path, capture_output=True, check=True)
    assert out.stdout == value.encode()


def test_remote_path_expr_expands_home_only_at_the_start(tmp_path):
    out = subprocess.run(
        ["bash", "-c", "printf %s " + remote_path_expr("~/a b/$(id)")],
        capture_output=True,
        text=True,
        env={"HOME": "/h"},
    )
    assert out.stdout == "/h/a b/$(id)"
