"""Checks that an environment can run the platform (manager) or its training runs (training).

This file imports only the standard library at module level, so the platform can copy it to a GPU server and run
it there with the server's Python (`python envcheck.py --mode training`). `python -m platform_core verify-env`
runs the same checks here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import json
import platform
import re
import shutil
import subprocess
import sys

MANAGER_PACKAGES = [
    ("torch", True),
    ("transformers", True),
    ("verl", True),
    ("trl", True),
    ("peft", True),
    ("mergekit", True),
    ("streamlit", True),
    ("plotly", True),
    ("pandas", True),
    ("pyarrow", True),
    ("fabric", True),
    ("cryptography", True),
    ("sqlite_utils", True),
    ("math_verify", True),
    ("sacrebleu", True),
    ("rouge_score", True),
    ("ray", True),
    ("pynvml", False),
]
TRAINING_PACKAGES = [
    ("torch", True),
    ("transformers", True),
    ("verl", True),
    ("ray", True),
    ("vllm", True),
    ("transfer_queue", True),
    ("flash_attn", False),
    ("peft", True),
    ("trl", False),
    ("math_verify", False),
    ("pynvml", False),
]
DISTRIBUTIONS = {
    "sqlite_utils": "sqlite-utils",
    "math_verify": "math-verify",
    "rouge_score": "rouge-score",
    "pynvml": "nvidia-ml-py",
    "transfer_queue": "TransferQueue",
    "flash_attn": "flash-attn",
}


# Version ranges that matter, per mode: a package outside its range is a failed check. They mirror the pins of
# requirements.txt (manager) and requirements-gpu.txt (training) -- tests/runners/test_envcheck.py keeps them in
# step -- and are written here because this file runs on servers without the repository.
# {package: (range, why)}; ranges are comma-separated clauses of ==, !=, >=, <=, <, > and ==X.Y.* (a prefix).
VERSION_RANGES: dict[str, dict[str, tuple[str, str]]] = {
    "manager": {
        "torch": ("==2.13.*", "requirements.txt pins torch 2.13"),
        "transformers": ("==5.10.*", "requirements.txt pins transformers 5.10 (verl 0.9.1 needs <5.11)"),
        "verl": ("==0.9.*", "requirements.txt pins verl 0.9"),
        "trl": ("==1.12.*", "trl >= 1.13 removed trl.experimental.ppo, which verl 0.9.1 imports"),
    },
    "training": {
        "torch": ("==2.11.*", "requirements-gpu.txt pins torch 2.11 (vllm 0.24 and verl[vllm,fsdp] 0.9.1 need it)"),
        "transformers": (">=5.5.3,!=5.6.0,<5.11", "verl 0.9.1 requires transformers>=5.5.3,!=5.6.0,<5.11"),
        "verl": ("==0.9.*", "requirements-gpu.txt pins verl 0.9"),
        "trl": ("<1.13", "trl >= 1.13 removed trl.experimental.ppo, which verl 0.9.1 imports"),
    },
}
_CLAUSE = re.compile(r"^(==|!=|>=|<=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?$")


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: "2.13.0+cpu" -> (2, 13, 0), "1.12.0rc1" -> (1, 12, 0)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    if not match:
        raise ValueError(f"{version!r} is not a version number")
    return tuple(int(x) for x in match.group(1).split("."))


def version_matches(version: str, spec: str) -> bool:
    """Return True when `version` lies in `spec` (e.g. "==1.12.*", ">=5.5.3,!=5.6.0,<5.11")."""
    found = _release(version)
    for clause in (c.strip() for c in spec.split(",") if c.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError(f"version range clause {clause!r} is not understood")
        op, number, wildcard = match.groups()
        target = tuple(int(x) for x in number.split("."))
        if wildcard:
            same = found[: len(target)] == target
            ok = same if op == "==" else (not same if op == "!=" else None)
            if ok is None:
                raise ValueError(f"version range clause {clause!r}: .* goes only with == or !=")
        else:
            width = max(len(found), len(target))
            a, b = found + (0,) * (width - len(found)), target + (0,) * (width - len(target))
            ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, "<": a < b, ">": a > b}[op]
        if not ok:
            return False
    return True


def check_version(package: str, version: str, spec: str, why: str = "") -> dict:
    """Return the check record for one package's version against its expected range."""
    try:
        ok = version_matches(version, spec)
    except ValueError as exc:
        ok, why = False, str(exc)
    if ok:
        detail = f"{version} (expected {spec})"
    else:
        detail = f"{package} {version} found, expected {spec}" + (f": {why}" if why else "")
    return {"name": f"{package} version", "ok": ok, "required": True, "detail": detail}


def _version_checks(mode: str) -> list[dict]:
    """A version check for every installed package with a range in this mode (missing ones fail their import)."""
    checks = []
    for package, (spec, why) in VERSION_RANGES[mode].items():
        version = _version_of(package)
        if version is not None:
            checks.append(check_version(package, version, spec, why))
    return checks


def _version_of(module: str) -> str | None:
    try:
        return metadata.version(DISTRIBUTIONS.get(module, module))
    except metadata.PackageNotFoundError:
        return None


def _check_import(module: str, required: bool) -> dict:
    version = _version_of(module)
    try:
        importlib.import_module(module)
        return {"name": module, "ok": True, "required": required, "detail": version or "installed"}
    except Exception as exc:  # noqa: BLE001 - any import failure is what this check reports
        reason = "not installed" if version is None else f"{version} installed but import fails: {exc}"
        return {"name": module, "ok": False, "required": required, "detail": reason}


def _python_check() -> dict:
    ok = (3, 10) <= sys.version_info[:2] <= (3, 12)
    return {
        "name": "python",
        "ok": ok,
        "required": True,
        "detail": platform.python_version() + ("" if ok else " (3.10-3.12 required)"),
    }


def _cuda_check(required: bool) -> dict:
    try:
        import torch
    except Exception:  # noqa: BLE001
        return {"name": "cuda", "ok": False, "required": required, "detail": "torch is not importable"}
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {
            "name": "cuda",
            "ok": True,
            "required": required,
            "detail": f"{len(names)} GPU(s): {', '.join(names)}; CUDA {torch.version.cuda}",
        }
    return {"name": "cuda", "ok": False, "required": required, "detail": "no CUDA GPU visible to torch"}


def _nvidia_smi_check(required: bool) -> dict:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {"name": "nvidia-smi", "ok": False, "required": required, "detail": "not found (no NVIDIA driver)"}
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return {"name": "nvidia-smi", "ok": False, "required": required, "detail": "timed out after 15 s"}
    ok = out.returncode == 0
    detail = out.stdout.strip().replace("\n", "; ") if ok else (out.stderr.strip() or f"exit {out.returncode}")
    return {"name": "nvidia-smi", "ok": ok, "required": required, "detail": detail}


def run_checks(mode: str) -> list[dict]:
    """Return one record per check: {name, ok, required, detail}."""
    checks = [_python_check()]
    if mode == "manager":
        checks += [_check_import(m, r) for m, r in MANAGER_PACKAGES]
        checks += _version_checks(mode)
        checks.append(_cuda_check(required=False))
    elif mode == "training":
        checks += [_check_import(m, r) for m, r in TRAINING_PACKAGES]
        checks += _version_checks(mode)
        checks.append(_cuda_check(required=True))
        checks.append(_nvidia_smi_check(required=True))
    else:
        raise ValueError(f"mode must be 'manager' or 'training', not {mode!r}")
    return checks


LABELS = {
    "en": {
        "python": "Python",
        "cuda": "CUDA available",
        "ok": "Environment check passed!",
        "fail": "Environment check failed: {n} required check(s) did not pass",
        "optional": "optional",
    },
    "zh": {
        "python": "Python 版本",
        "cuda": "CUDA 可用",
        "ok": "环境验证通过！",
        "fail": "环境验证失败：{n} 项必需检查未通过",
        "optional": "可选",
    },
}


def format_checks(checks: list[dict], lang: str = "en") -> str:
    """Return the human-readable report, one line per check, as in the user's guide."""
    labels = LABELS.get(lang, LABELS["en"])
    lines = []
    for check in checks:
        mark = "✓" if check["ok"] else ("✗" if check["required"] else "-")
        label = labels.get(check["name"], check["name"])
        suffix = "" if check["required"] or check["ok"] else f" ({labels['optional']})"
        lines.append(f"{mark} {label}: {check['detail']}{suffix}")
    failed = [c for c in checks if c["required"] and not c["ok"]]
    lines.append(("✓ " + labels["ok"]) if not failed else ("✗ " + labels["fail"].format(n=len(failed))))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a manager or training environment")
    parser.add_argument("--mode", choices=["manager", "training"], default="manager")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--lang", choices=["en", "zh"], default="en")
    args = parser.parse_args(argv)
    checks = run_checks(args.mode)
    passed = all(c["ok"] for c in checks if c["required"])
    if args.json:
        print(json.dumps({"mode": args.mode, "passed": passed, "checks": checks}, ensure_ascii=False))
    else:
        print(format_checks(checks, args.lang))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
