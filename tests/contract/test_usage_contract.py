"""`billing.usage.v1` — UsageRecord, as fixed in docs/contracts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contracts import UsageKind, UsageRecord, format_decimal

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
VALID: dict[str, Any] = {
    "event_id": "ninja-7f3a9c21",
    "source": "ninjaone",
    "tenant_id": TENANT,
    "company_ref": "ACME-001",
    "service_ref": "RMM-DEVICE",
    "quantity": "12.50",
    "occurred_at": "2025-01-31T09:00:00Z",
}


def parse(**changes: Any) -> UsageRecord:
    payload = {**VALID, **changes}
    return UsageRecord.model_validate_json(json.dumps({k: v for k, v in payload.items() if v is not ...}))


def first_error(**changes: Any) -> Any:
    with pytest.raises(ValidationError) as exc:
        parse(**changes)
    return exc.value.errors()[0]


class TestUsageRecord:
    def test_accepts_the_minimal_record_with_defaults(self) -> None:
        record = parse()
        assert record.kind is UsageKind.DELTA
        assert record.quantity == Decimal("12.50")
        assert record.tenant_id == UUID(TENANT)
        assert record.unit is None
        assert record.attributes == {}

    def test_accepts_a_snapshot_with_unit_and_attributes(self) -> None:
        record = parse(kind="snapshot", unit="device", attributes={"device_id": "WS-1"})
        assert record.kind is UsageKind.SNAPSHOT
        assert record.attributes == {"device_id": "WS-1"}

    def test_accepts_an_event_id_of_200_chars(self) -> None:
        assert len(parse(event_id="e" * 200).event_id) == 200

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"event_id": ...}, "event_id"),
            ({"source": ...}, "source"),
            ({"tenant_id": ...}, "tenant_id"),
            ({"company_ref": ...}, "company_ref"),
            ({"service_ref": ...}, "service_ref"),
            ({"quantity": ...}, "quantity"),
            ({"occurred_at": ...}, "occurred_at"),
            ({"event_id": ""}, "event_id"),
            ({"event_id": "e" * 201}, "event_id"),
            ({"source": ""}, "source"),
            ({"company_ref": ""}, "company_ref"),
            ({"tenant_id": "acme"}, "tenant_id"),
            ({"quantity": "-1"}, "quantity"),
            ({"quantity": 1.5}, "quantity"),
            ({"quantity": 2}, "quantity"),
            ({"quantity": "1e3"}, "quantity"),
            ({"quantity": "twelve"}, "quantity"),
            ({"occurred_at": "2025-01-31T09:00:00"}, "occurred_at"),
            ({"occurred_at": 1738314000}, "occurred_at"),
            ({"kind": "weekly"}, "kind"),
            ({"attributes": "device=1"}, "attributes"),
        ],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], field: str) -> None:
        assert first_error(**changes)["loc"] == (field,)

    def test_rejects_a_float_quantity_saying_decimals_are_strings(self) -> None:
        assert "JSON strings" in first_error(quantity=1.5)["msg"]

    def test_rejects_a_timestamp_without_offset_saying_the_offset_is_missing(self) -> None:
        assert "offset is missing" in first_error(occurred_at="2025-01-31T09:00:00")["msg"]

    def test_keeps_unknown_fields(self) -> None:
        record = parse(batch=7, origin={"site": "HQ"})
        assert record.model_extra == {"batch": 7, "origin": {"site": "HQ"}}
        assert json.loads(record.model_dump_json())["batch"] == 7

    def test_round_trips_json_keeping_decimal_strings_exactly(self) -> None:
        record = parse(quantity="12.50")
        text = record.model_dump_json()
        assert json.loads(text)["quantity"] == "12.50"
        assert UsageRecord.model_validate_json(text) == record

    def test_writes_python_decimals_without_exponent(self) -> None:
        record = parse().model_copy(update={"quantity": Decimal("1E+2")})
        assert json.loads(record.model_dump_json())["quantity"] == "100"

    def test_is_immutable(self) -> None:
        with pytest.raises(ValidationError):
            parse().quantity = Decimal(1)  # type: ignore[misc]

    def test_is_keyed_by_tenant_and_company(self) -> None:
        assert parse().key() == f"{TENANT}:ACME-001"


class TestUsageFingerprint:
    def test_is_equal_for_the_same_content(self) -> None:
        assert parse().content_fingerprint() == parse().content_fingerprint()

    def test_compares_quantities_by_value(self) -> None:
        assert parse(quantity="1.0").content_fingerprint() == parse(quantity="1").content_fingerprint()

    def test_compares_timestamps_by_instant(self) -> None:
        utc = parse(occurred_at="2025-01-31T09:00:00Z")
        berlin = parse(occurred_at="2025-01-31T10:00:00+01:00")
        assert utc.content_fingerprint() == berlin.content_fingerprint()

    def test_ignores_attribute_order(self) -> None:
        a = parse(attributes={"a": 1, "b": 2})
        b = parse(attributes={"b": 2, "a": 1})
        assert a.content_fingerprint() == b.content_fingerprint()

    @pytest.mark.parametrize(
        "changes",
        [
            {"quantity": "12.51"},
            {"kind": "snapshot"},
            {"occurred_at": "2025-01-31T09:00:01Z"},
            {"attributes": {"device_id": "WS-2"}},
            {"unit": "device"},
            {"batch": 7},
        ],
        ids=str,
    )
    def test_differs_for_different_content(self, changes: dict[str, Any]) -> None:
        assert parse(**changes).content_fingerprint() != parse().content_fingerprint()


@given(st.decimals(min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=4))
def test_any_non_negative_decimal_string_round_trips_unchanged(value: Decimal) -> None:
    text = format_decimal(value)
    record = parse(quantity=text)
    assert json.loads(record.model_dump_json())["quantity"] == text
