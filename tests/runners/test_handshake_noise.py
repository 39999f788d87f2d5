"""A failed SSH handshake is reported as one clear line: paramiko's own log (and its traceback) stays quiet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

from platform_core.connections import add_connection


def _not_ssh_server() -> tuple[socket.socket, int]:
    """A TCP port that answers with something that is not an SSH banner, then hangs up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def serve():
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            client.sendall(b"hello, this is not ssh\r\n")
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_failed_handshake_prints_no_paramiko_traceback(platform):
    server, port = _not_ssh_server()
    try:
        add_connection(platform, "notssh", "127.0.0.1", "nobody", port=port, password="pw-123456")
        env = {**os.environ, "PLATFORM_HOME": str(platform.workspace.root)}
        out = subprocess.run(
            [sys.executable, "-m", "platform_core", "connection", "test", "notssh"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        server.close()
    assert out.returncode == 1
    assert "did not complete the SSH handshake" in out.stdout and "Is it an SSH server?" in out.stdout
    assert "Traceback" not in out.stderr and "Exception (client)" not in out.stderr, out.stderr
    assert out.stderr.strip() == ""
