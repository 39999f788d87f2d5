"""Attention "auto": use flash-attention 2 only where it really works, else fall back (sdpa).

The job plan asks for flash_attention_2 on a GPU when the spec says `auto`, and sets PLATFORM_ATTN_FALLBACK. Before
the trainer starts, the supervisor asks the training interpreter (on the machine that runs it) whether flash-attn
imports and the GPU supports it (compute capability 8.0+: Ampere, Ada, Hopper, Blackwell). When it does not, the
run uses the fallback: verl's `...attn_implementation=flash_attention_2` overrides are rewritten, and the TRL runner
reads PLATFORM_ATTN_OVERRIDE. Nobody edits verl's source to get rid of flash-attention errors.

Standard library only: this file ships in the plugin kit next to the supervisor.
"""

from __future__ import annotations

import subprocess

FLASH = "flash_attention_2"
FALLBACK_ENV = "PLATFORM_ATTN_FALLBACK"
OVERRIDE_ENV = "PLATFORM_ATTN_OVERRIDE"
PROBE_TIMEOUT_S = 180

PROBE = """
import importlib.util, sys
if importlib.util.find_spec("flash_attn") is None:
    print("flash-attn is not installed"); sys.exit(0)
import torch
if not torch.cuda.is_available():
    print("no CUDA device is visible"); sys.exit(0)
major, minor = torch.cuda.get_device_capability(0)
if major < 8:
    print(f"the GPU's compute capability {major}.{minor} is below 8.0 (flash-attention 2 needs Ampere or newer)")
    sys.exit(0)
try:
    import flash_attn  # noqa: F401
except Exception as exc:
    print(f"flash_attn does not import: {type(exc).__name__}: {str(exc)[:200]}"); sys.exit(0)
print("OK")
"""


def flash_attention_problem(python: str, env: dict[str, str] | None = None) -> str | None:
    """Why flash-attention 2 cannot run with `python` here, or None when it can."""
    try:
        result = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, env=env, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the probe could not run: {exc}"
    lines = result.stdout.strip().splitlines()
    verdict = lines[-1] if lines else ""
    if result.returncode == 0 and verdict == "OK":
        return None
    return verdict or f"the probe failed (exit {result.returncode}): {result.stderr.strip()[-200:]}"


def with_fallback(argv: list[str], fallback: str) -> list[str]:
    """The command with every `...attn_implementation=flash_attention_2` override set to `fallback`."""
    suffix = f"attn_implementation={FLASH}"
    return [arg[: -len(FLASH)] + fallback if arg.endswith(suffix) else arg for arg in argv]


def resolve(argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str], str | None]:
    """Apply the fallback when flash-attention is unusable. Returns (argv, env, a line for the log or None)."""
    fallback = env.get(FALLBACK_ENV)
    if not fallback or not argv:
        return argv, env, None
    problem = flash_attention_problem(argv[0], env)
    if problem is None:
        return argv, env, f"attention: {FLASH}"
    return with_fallback(argv, fallback), {**env, OVERRIDE_ENV: fallback}, f"attention: {fallback} ({problem})"
