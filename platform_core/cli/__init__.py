"""`python -m platform_core <command>`: the headless face of the library. Each area adds its commands.

Every command that reports something takes `--json`; errors meant for the user go to stderr as one line and the
exit status is non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Any

from platform_core.errors import PlatformError


def command_modules() -> list[str]:
    """Every module in platform_core/cli/ adds its commands through `register(subparsers)`; core comes first."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    names.sort(key=lambda n: n != "core")
    return [f"{__name__}.{n}" for n in names]


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """Print `data` as JSON when --json was given, else the human text (or a readable rendering of data)."""
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, default=str))
    elif text is not None:
        print(text)
    elif isinstance(data, (dict, list)):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(data)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m platform_core", description="Training Platform command line")
    parser.add_argument("--home", help="workspace root (default: $PLATFORM_HOME or ./workspace)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in command_modules():
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(result or 0)


def platform_for(args: argparse.Namespace):
    """Return the Platform for the --home given on the command line (or the default workspace)."""
    from platform_core.context import get_platform

    return get_platform(args.home)
