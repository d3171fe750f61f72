"""Signed client links: a link opens only the invoice it was signed for, until it expires."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.invoicing.domain.links import BadLink, ExpiredLink, sign, verify

TENANT, INVOICE = uuid.uuid4(), uuid.uuid4()
EXPIRES = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
BEFORE, AT = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)


def test_a_link_verifies_until_its_expiry_and_is_expired_from_that_instant() -> None:
    signature = sign("s3cret", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES)
    verify("s3cret", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES, signature=signature, now=BEFORE)
    with pytest.raises(ExpiredLink, match="expired at 2026-03-01 00:00 UTC"):
        verify("s3cret", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES, signature=signature, now=AT)


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "other"},
        {"tenant_id": uuid.uuid4()},
        {"invoice_id": uuid.uuid4()},
        {"expires": EXPIRES + 86_400},  # extending the expiry breaks the signature
    ],
)
def test_a_link_signed_for_something_else_is_forged(change: dict[str, object]) -> None:
    signature = sign("s3cret", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES)
    given: dict[str, object] = {"secret": "s3cret", "tenant_id": TENANT, "invoice_id": INVOICE, "expires": EXPIRES}
    given |= change
    with pytest.raises(BadLink):
        verify(
            str(given["secret"]),
            tenant_id=given["tenant_id"],  # type: ignore[arg-type]
            invoice_id=given["invoice_id"],  # type: ignore[arg-type]
            expires=int(given["expires"]),  # type: ignore[call-overload]
            signature=signature,
            now=BEFORE,
        )


def test_a_forged_expired_link_is_forged_not_expired() -> None:
    with pytest.raises(BadLink):
        verify("s3cret", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES, signature="0" * 64, now=AT)


@pytest.mark.parametrize("signature", ["Ô\U000c576f\x99}'", "\ud800", "", "0" * 65])
def test_a_signature_that_is_not_hex_is_forged_not_an_error(signature: str) -> None:  # found by the fuzz tier
    with pytest.raises(BadLink):
        verify("s3cret", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES, signature=signature, now=BEFORE)


def test_without_a_secret_no_link_is_signed() -> None:
    with pytest.raises(ValueError, match="no link secret"):
        sign("", tenant_id=TENANT, invoice_id=INVOICE, expires=EXPIRES)
