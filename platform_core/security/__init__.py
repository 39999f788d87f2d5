"""Secrets at rest (Fernet), safe command construction and validation of what users type."""
