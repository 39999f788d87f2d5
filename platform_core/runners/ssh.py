"""SSH sessions through Fabric with bounded timeouts, a pinned host key, and errors that say what went wrong.

Fabric's defaults accept any host key, read ~/.ssh/config and wait up to an hour for a channel; here every step
has a timeout, the server must present the host key stored in the profile (the first one is shown to the user to
trust), and configuration files and agents on this machine are ignored so a profile means the same everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import posixpath
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut, UnexpectedExit

from platform_core.connections import connection_credentials, get_connection
from platform_core.context import Platform
from platform_core.errors import RemoteError
from platform_core.security.shell import quote_command, remote_path_expr

CONNECT_TIMEOUT_S = 6
COMMAND_TIMEOUT_S = 60

# paramiko logs a failed handshake ("Exception (client): Error reading SSH protocol banner" and a traceback) at
# ERROR; with no handler configured Python prints that on stderr. Every failure reaches the user as our own
# message (RemoteError), so paramiko's log is silenced.
_PARAMIKO_LOG = logging.getLogger("paramiko")
_PARAMIKO_LOG.setLevel(logging.CRITICAL)
_PARAMIKO_LOG.addHandler(logging.NullHandler())
_PARAMIKO_LOG.propagate = False


class UnknownHostKey(RemoteError):
    """The server's host key is not yet trusted; `host_key` and `fingerprint` describe it for the user."""

    def __init__(self, host: str, port: int, host_key: str, fingerprint: str):
        self.host_key = host_key
        self.fingerprint = fingerprint
        super().__init__(
            f"The host key of {host}:{port} is not trusted yet ({fingerprint}). Check it with the server's "
            "administrator, then trust it (Settings -> Test connection -> Trust, or `connection test NAME "
            "--accept-host-key`)."
        )


def key_fingerprint(key: paramiko.PKey) -> str:
    """Return the OpenSSH-style SHA256 fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


class _CapturePolicy(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown key, remembering it so the caller can offer it to the user."""

    def __init__(self):
        self.seen: paramiko.PKey | None = None

    def missing_host_key(self, client, hostname, key):
        self.seen = key
        raise paramiko.SSHException(f"unknown host key for {hostname}")


def _known_host_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException as exc:
            raise RemoteError("the private key is encrypted: give its passphrase") from exc
        except (paramiko.SSHException, ValueError) as exc:
            errors.append(str(exc))
    raise RemoteError("the pasted private key could not be read (not an Ed25519, ECDSA or RSA key)")


@dataclass
class SSHSession:
    """One Fabric connection to a profile's server, with helpers that quote every path they pass to the shell."""

    profile: dict[str, Any]
    connection: Connection
    _home: str | None = field(default=None, repr=False)

    # -- commands ----------------------------------------------------------------------------------------------
    def run(
        self,
        command: str | list[str],
        timeout: float | None = COMMAND_TIMEOUT_S,
        warn: bool = True,
        out_stream=None,
        err_stream=None,
    ) -> Any:
        """Run a command (an argument list is quoted; a string is passed as is, so build it with shlex.quote)."""
        text = quote_command(command) if isinstance(command, list) else command
        kwargs: dict[str, Any] = {"hide": True, "warn": warn, "timeout": timeout, "in_stream": False}
        if out_stream is not None:
            kwargs["out_stream"] = out_stream
        if err_stream is not None:
            kwargs["err_stream"] = err_stream
        try:
            return self.connection.run(text, **kwargs)
        except CommandTimedOut as exc:
            raise RemoteError(f"remote command timed out after {timeout:.0f} s on {self.describe()}") from exc
        except UnexpectedExit as exc:
            if exc.result.exited == -1:
                self.reconnect()
                raise RemoteError(f"the SSH connection to {self.describe()} dropped during a command") from exc
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.reconnect()
            raise RemoteError(f"the SSH connection to {self.describe()} failed: {exc}") from exc

    def check(self, command: str | list[str], what: str, timeout: float | None = COMMAND_TIMEOUT_S) -> str:
        """Run a command that must succeed; return its stdout or raise RemoteError with its stderr."""
        result = self.run(command, timeout=timeout)
        if result.exited != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise RemoteError(f"{what} failed on {self.describe()} (exit {result.exited}): {' '.join(detail)}")
        return result.stdout

    def describe(self) -> str:
        return f"{self.profile['username']}@{self.profile['host']}:{self.profile['port']}"

    def reconnect(self) -> None:
        """Close the transport so the next call opens a fresh one (also resets Fabric's cached SFTP client)."""
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 - closing a dead transport may raise anything; the next call reopens it
            pass

    def close(self) -> None:
        self.reconnect()

    # -- paths -------------------------------------------------------------------------------------------------
    @property
    def home(self) -> str:
        if self._home is None:
            self._home = self.check('printf %s "$HOME"', "reading $HOME").strip()
        return self._home

    def expand(self, path: str) -> str:
        """Return a remote path with a leading ~ replaced by the remote home directory."""
        if path == "~":
            return self.home
        if path.startswith("~/"):
            return posixpath.join(self.home, path[2:])
        return path

    def workdir(self) -> str:
        """Return the profile's absolute remote work directory."""
        return self.expand(self.profile["workdir"])

    def sftp(self) -> paramiko.SFTPClient:
        return self.connection.sftp()

    def read_from(self, path: str, offset: int, limit: int | None = None) -> bytes:
        """Return the bytes of a remote file from `offset` (raw bytes through SFTP, so offsets never drift)."""
        try:
            with self.sftp().open(self.expand(path), "rb") as handle:
                handle.seek(offset)
                return handle.read(limit) if limit else handle.read()
        except FileNotFoundError:
            return b""
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.reconnect()
            raise RemoteError(f"reading {path} on {self.describe()} failed: {exc}") from exc

    def file_size(self, path: str) -> int | None:
        try:
            return self.sftp().stat(self.expand(path)).st_size
        except FileNotFoundError:
            return None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.reconnect()
            raise RemoteError(f"stat {path} on {self.describe()} failed: {exc}") from exc

    def mkdirs(self, path: str) -> None:
        self.check(["mkdir", "-p", "--", self.expand(path)], f"creating {path}")

    def put_atomic(self, local_path: str, remote_path: str, progress=None) -> None:
        """Upload to `<remote>.partial-<time>` and rename, so an interrupted transfer leaves nothing under the final name."""
        remote = self.expand(remote_path)
        tmp = f"{remote}.partial-{int(time.time() * 1000)}"
        self.mkdirs(posixpath.dirname(remote))
        try:
            self.sftp().put(local_path, tmp, callback=progress)
            self.sftp().posix_rename(tmp, remote)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            try:
                self.run(["rm", "-f", "--", tmp], timeout=10)
            except RemoteError:
                pass
            raise RemoteError(_describe_transfer_error(exc, remote_path, self.describe())) from exc

    def path_expr(self, path: str) -> str:
        """Return a shell word for a remote path (for commands that must go through the shell)."""
        return remote_path_expr(path)


def _describe_transfer_error(exc: Exception, remote_path: str, where: str) -> str:
    text = str(exc)
    full = isinstance(exc, OSError) and getattr(exc, "errno", None) == 28
    # paramiko's put() says "size mismatch in put!" when the server wrote fewer bytes than were sent
    if full or "No space" in text or text == "Failure" or "size mismatch" in text:
        return f"uploading {remote_path} to {where} failed: the remote disk may be full ({text or 'SFTP failure'})"
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return f"uploading {remote_path} to {where} failed: permission denied (check the work directory's owner)"
    return f"uploading {remote_path} to {where} failed: {text or type(exc).__name__}"


def open_session(platform: Platform, name: str | int, accept_host_key: bool = False) -> SSHSession:
    """Connect to a profile's server and authenticate; raise RemoteError with the reason within a few seconds."""
    from platform_core.connections import trust_host_key

    profile = get_connection(platform, name)
    creds = connection_credentials(platform, profile["id"])
    host, port = profile["host"], int(profile["port"])
    connect_kwargs: dict[str, Any] = {
        "look_for_keys": False,
        "allow_agent": False,
        "banner_timeout": CONNECT_TIMEOUT_S,
        "auth_timeout": CONNECT_TIMEOUT_S,
        "channel_timeout": CONNECT_TIMEOUT_S * 2,
    }
    if "password" in creds:
        connect_kwargs["password"] = creds["password"]
    elif "private_key" in creds:
        connect_kwargs["pkey"] = _load_private_key(creds["private_key"], creds.get("passphrase"))
    elif "key_path" in creds:
        connect_kwargs["key_filename"] = creds["key_path"]
        if creds.get("passphrase"):
            connect_kwargs["passphrase"] = creds["passphrase"]
    conn = Connection(
        host,
        port=port,
        user=profile["username"],
        connect_timeout=CONNECT_TIMEOUT_S,
        config=Config(overrides={"load_ssh_configs": False}),
        connect_kwargs=connect_kwargs,
    )
    policy = _CapturePolicy()
    if profile["host_key"]:
        key_type, key_b64 = profile["host_key"].split(" ", 1)
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64))
        conn.client.get_host_keys().add(_known_host_name(host, port), key_type, key)
    conn.client.set_missing_host_key_policy(policy)
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        raise RemoteError(
            f"The host key of {host}:{port} CHANGED ({key_fingerprint(exc.key)}; trusted: "
            f"{key_fingerprint(exc.expected_key)}). This can mean a reinstalled server or an attack; the connection "
            "was refused. If the change is expected, trust the new key in Settings."
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise RemoteError(
            f"Authentication failed for {profile['username']}@{host}:{port}: wrong password or key "
            "(or the account is locked)."
        ) from exc
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        raise RemoteError(
            f"Nothing accepts connections on {host}:{port} (connection refused): is the SSH server "
            "running and the port right?"
        ) from exc
    except socket.gaierror as exc:
        raise RemoteError(f"Unknown host {host!r}: the name does not resolve ({exc.strerror}).") from exc
    except TimeoutError as exc:
        raise RemoteError(
            f"No answer from {host}:{port} within {CONNECT_TIMEOUT_S} s (firewall, wrong address, "
            "or the server is down)."
        ) from exc
    except paramiko.SSHException as exc:
        if policy.seen is not None:
            host_key = f"{policy.seen.get_name()} {policy.seen.get_base64()}"
            if accept_host_key:
                trust_host_key(platform, profile["name"], host_key)
                return open_session(platform, name, accept_host_key=False)
            raise UnknownHostKey(host, port, host_key, key_fingerprint(policy.seen)) from exc
        raise RemoteError(
            f"{host}:{port} did not complete the SSH handshake within {CONNECT_TIMEOUT_S} s "
            f"({exc}). Is it an SSH server?"
        ) from exc
    except OSError as exc:
        raise RemoteError(f"Cannot reach {host}:{port}: {exc.strerror or exc}.") from exc
    return SSHSession(profile, conn)
