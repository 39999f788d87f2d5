"""verify-env checks the versions that matter, and its ranges agree with the pinned requirements files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from platform_core.envcheck import VERSION_RANGES, check_version, run_checks, version_matches

REPO = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#;]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize(
    ("mode", "requirements"), [("manager", "requirements.txt"), ("training", "requirements-gpu.txt")]
)
def test_ranges_agree_with_the_pinned_requirements(mode, requirements):
    pins = _pins(REPO / requirements)
    for package, (spec, _why) in VERSION_RANGES[mode].items():
        assert package in pins, f"{requirements} does not pin {package}"
        assert version_matches(pins[package], spec), f"{requirements} pins {package}=={pins[package]}, outside {spec}"


def test_this_manager_environment_passes_its_version_checks():
    checks = {c["name"]: c for c in run_checks("manager")}
    for package in ("torch", "transformers", "verl", "trl"):
        assert checks[f"{package} version"]["ok"], checks[f"{package} version"]
    assert all(c["ok"] for c in checks.values() if c["required"]), [c for c in checks.values() if not c["ok"]]


def test_a_version_outside_its_range_is_a_failed_check_that_names_it():
    spec, why = VERSION_RANGES["manager"]["trl"]
    check = check_version("trl", "1.13.0", spec, why)
    assert not check["ok"] and check["required"] and check["name"] == "trl version"
    assert (
        check["detail"].startswith("trl 1.13.0 found, expected ==1.12.*") and "trl.experimental.ppo" in check["detail"]
    )
    assert check_version("trl", "1.12.3", spec)["ok"]
    assert not check_version("trl", "1.13.0", VERSION_RANGES["training"]["trl"][0])["ok"]
    assert check_version("trl", "0.27.0", VERSION_RANGES["training"]["trl"][0])["ok"]  # what verl[fsdp] pins
    assert not check_version("torch", "2.12.1+cu128", VERSION_RANGES["manager"]["torch"][0])["ok"]
    assert check_version("torch", "2.13.0+cpu", VERSION_RANGES["manager"]["torch"][0])["ok"]
    garbage = check_version("verl", "unknown", "==0.9.*")
    assert not garbage["ok"] and "'unknown' is not a version number" in garbage["detail"]


@pytest.mark.parametrize(
    ("version", "ok"),
    [("5.5.3", True), ("5.5.2", False), ("5.6.0", False), ("5.6.1", True), ("5.9.0", True), ("5.10.4", True)]
    + [("5.11.0", False), ("5.11", False), ("6.0.0rc1", False)],
)
def test_range_clauses(version, ok):
    assert version_matches(version, VERSION_RANGES["training"]["transformers"][0]) is ok


def test_a_bad_range_is_refused():
    with pytest.raises(ValueError, match="not understood"):
        version_matches("1.0", "~=1.0")
    with pytest.raises(ValueError, match=r"\.\* goes only with == or !="):
        version_matches("1.0", ">=1.*")
