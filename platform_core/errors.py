"""Errors whose message is meant for the user: they name the file, row, field or value that is wrong."""


class PlatformError(Exception):
    """Base class for errors the UI and the CLI show as they are (no traceback)."""


class InvalidInput(PlatformError):
    """A value a user typed or a file they gave is not acceptable."""


class NotFound(PlatformError):
    """A record or a file the user named does not exist."""


class SecretKeyError(PlatformError):
    """The encryption key cannot decrypt the stored secrets (or is missing/malformed)."""


class SchemaError(PlatformError):
    """The database was written by a newer version of the platform, or is not a platform database."""


class RemoteError(PlatformError):
    """An SSH connection or a remote command failed; the message says which step and why."""
