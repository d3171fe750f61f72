"""Signed client links, pure: an invoice a client opens without a platform user.

A link names the tenant, the invoice and when it expires, and carries an HMAC-SHA256 of the three under the
service's link secret (``INVOICE_LINK_SECRET``), hex-encoded. Verification recomputes it and compares in
constant time; a link whose signature matches but whose expiry has passed is *expired* (410), any other
mismatch is *forged* (403). Nothing is stored: revoking every link means rotating the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from uuid import UUID


class BadLink(ValueError):
    """The signature does not match what was signed (tampered, truncated or from another secret)."""


class ExpiredLink(ValueError):
    """The signature matches but the link's time is up."""


def _message(tenant_id: UUID, invoice_id: UUID, expires: int) -> bytes:
    return f"invoice-link:{tenant_id}:{invoice_id}:{expires}".encode()


def sign(secret: str, *, tenant_id: UUID, invoice_id: UUID, expires: int) -> str:
    """The signature of a link expiring at ``expires`` (Unix seconds)."""
    if not secret:
        raise ValueError("no link secret is configured")
    return hmac.new(secret.encode(), _message(tenant_id, invoice_id, expires), hashlib.sha256).hexdigest()


def verify(secret: str, *, tenant_id: UUID, invoice_id: UUID, expires: int, signature: str, now: datetime) -> None:
    """Raise `BadLink` or `ExpiredLink`; return when the link opens the invoice at ``now``."""
    expected = sign(secret, tenant_id=tenant_id, invoice_id=invoice_id, expires=expires)
    # as bytes: compare_digest refuses a str with non-ASCII characters, and a forged link may carry any
    if not hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace")):
        raise BadLink("the link's signature does not match: ask the sender for a new link")
    if now >= datetime.fromtimestamp(expires, tz=UTC):
        raise ExpiredLink(f"the link expired at {datetime.fromtimestamp(expires, tz=UTC):%Y-%m-%d %H:%M} UTC")
