"""Reading tax.requests.v1 records: the contract is chosen by ``type``; anything else is dead-lettered."""

from __future__ import annotations

import json
import uuid

import pytest

from services.tax_currency.handlers import parse_request
from shared.contracts.tax import ConversionRequested
from shared.messaging.consumer import Reject
from shared.messaging.envelope import Envelope

TENANT = uuid.uuid4()


def envelope(value: bytes) -> Envelope:
    return Envelope("tax.requests.v1", 0, 0, f"{TENANT}:x", value, {})


def test_a_conversion_request_is_read_as_its_contract() -> None:
    doc = {
        "type": "conversion.requested",
        "request_id": str(uuid.uuid4()),
        "tenant_id": str(TENANT),
        "invoice_id": str(uuid.uuid4()),
        "from_currency": "USD",
        "to_currency": "GBP",
        "on": "2026-02-01",
        "amounts": [{"line_id": str(uuid.uuid4()), "amount": "1.5"}],
    }

    tenant, body = parse_request(envelope(json.dumps(doc).encode()))

    assert (tenant, type(body)) == (TENANT, ConversionRequested)


def test_an_unknown_type_is_rejected_naming_the_field_and_keeping_the_tenant() -> None:
    with pytest.raises(Reject) as raised:
        parse_request(envelope(json.dumps({"type": "tax.quoted", "tenant_id": str(TENANT)}).encode()))

    assert (raised.value.field, raised.value.tenant_id) == ("type", TENANT)
    assert "conversion.requested or tax.requested" in raised.value.reason


def test_a_payload_that_is_not_json_is_rejected() -> None:
    with pytest.raises(Reject) as raised:
        parse_request(envelope(b"{not json"))

    assert raised.value.error_class == "invalid_json"
