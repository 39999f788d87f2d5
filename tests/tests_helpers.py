"""Small helpers shared by tests (importable as `tests_helpers`; the name avoids verl's top-level `tests`)."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """Return a localhost port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
