"""Tenant secrets encrypted at rest (issue 17, item 9): SMTP passwords, SMS gateway tokens, webhook signing
secrets and unsubscribe-link keys were stored in plaintext.

Each is stored as ``v1:<Fernet token>`` (AES-128-CBC with HMAC-SHA256, from `cryptography`), under the keys of
``SECRETS_KEYS``: comma-separated Fernet keys, newest first. The first encrypts; every one decrypts, so a key is
rotated by putting a new one first and keeping the old until every secret has been saved again. A value without
the prefix is a secret stored before encryption: read as it is, encrypted when next saved. Without keys, nothing
new can be stored (`NotConfigured`). API answers never carry a secret (only whether one is set).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "v1:"


class NotConfigured(Exception):
    """No SECRETS_KEYS: tenant secrets cannot be stored."""


class Undecryptable(Exception):
    """A stored secret none of the keys opens (a key was removed too early)."""


class SecretBox:
    def __init__(self, keys: str) -> None:
        parsed = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        self._fernet = MultiFernet(parsed) if parsed else None

    def seal(self, secret: str | None) -> str | None:
        if secret is None:
            return None
        if self._fernet is None:
            raise NotConfigured("tenant secrets cannot be stored: SECRETS_KEYS is not set")
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(PREFIX):
            return stored  # none, or stored before encryption
        if self._fernet is None:
            raise Undecryptable("a stored secret is encrypted but SECRETS_KEYS is not set")
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken as exc:
            raise Undecryptable("no key of SECRETS_KEYS opens a stored secret") from exc


BOX = SecretBox("")
"""The process's box, set once by the composition root (`configure`)."""


def configure(keys: str) -> None:
    global BOX
    BOX = SecretBox(keys)
