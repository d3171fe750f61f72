"""API keys: the long-lived credential a user (or an integration acting as one) trades for a token.

A key reads ``msp_<tenant hex>_<key id hex>_<secret>``: the tenant and key id let catalog find the key
inside that tenant's rows (row-level security stays on); only a scrypt hash of the secret is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from uuid import UUID

_PREFIX = "msp"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class MalformedApiKey(ValueError):
    def __init__(self) -> None:
        super().__init__("the API key is malformed (expected msp_<tenant>_<key id>_<secret>)")


@dataclass(frozen=True, slots=True)
class ApiKey:
    tenant_id: UUID
    key_id: UUID
    secret: str

    def __str__(self) -> str:
        return f"{_PREFIX}_{self.tenant_id.hex}_{self.key_id.hex}_{self.secret}"


def new_api_key(*, tenant_id: UUID, key_id: UUID) -> ApiKey:
    return ApiKey(tenant_id, key_id, secrets.token_urlsafe(32))


def parse_api_key(text: str) -> ApiKey:
    parts = text.split("_", 3)
    if len(parts) != 4 or parts[0] != _PREFIX or not parts[3]:
        raise MalformedApiKey
    try:
        return ApiKey(UUID(hex=parts[1]), UUID(hex=parts[2]), parts[3])
    except ValueError as exc:
        raise MalformedApiKey from exc


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


# A hash no secret matches, checked when a key id is unknown so the answer takes as long as for a known one:
# timing no longer tells which key ids exist (issue 17: 895 ms against 133 ms).
DECOY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 32


def secret_matches(secret: str, stored: str) -> bool:
    scheme, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)
