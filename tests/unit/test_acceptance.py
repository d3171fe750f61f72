"""Spec for services.metering.domain.acceptance: accept, hold as unmapped, or reject a usage record."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.metering.domain.acceptance import CompanyRef, ServiceRef, Verdict, decide, record_id
from shared.contracts.usage import UsageKind, UsageRecord

TENANT = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
OTHER_TENANT = UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
COMPANY = CompanyRef(company_id=UUID("11111111-1111-4111-8111-111111111111"), company_ref="acme")
SERVICE = ServiceRef(service_id=UUID("22222222-2222-4222-8222-222222222222"), unit="device")


def a_record(**changes: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "event_id": "ninja-7f3a9c21",
        "source": "ninjaone",
        "tenant_id": TENANT,
        "company_ref": "ACME-001",
        "service_ref": "RMM-DEVICE",
        "quantity": Decimal("12.50"),
        "occurred_at": datetime(2026, 1, 31, 9, tzinfo=UTC),
    }
    return UsageRecord(**(fields | changes))


class TestDecide:
    def test_accepts_a_mapped_record_with_the_catalog_ids(self) -> None:
        record = a_record(kind=UsageKind.SNAPSHOT, unit="device", attributes={"device_id": "WS-1"})

        decision = decide(record, COMPANY, SERVICE)

        assert decision.verdict is Verdict.ACCEPTED
        assert (decision.reason, decision.field) == (None, None)
        accepted = decision.accepted
        assert accepted is not None
        assert accepted.record_id == record_id(TENANT, "ninjaone", "ninja-7f3a9c21")
        assert accepted.company_id == COMPANY.company_id
        assert accepted.company_ref == "acme"
        assert accepted.service_id == SERVICE.service_id
        assert accepted.service_ref == "RMM-DEVICE"
        assert (accepted.tenant_id, accepted.source, accepted.event_id) == (TENANT, "ninjaone", "ninja-7f3a9c21")
        assert (accepted.kind, accepted.quantity, accepted.unit) == ("snapshot", Decimal("12.50"), "device")
        assert accepted.occurred_at == record.occurred_at
        assert accepted.attributes == {"device_id": "WS-1"}

    def test_fills_in_the_services_unit_when_the_record_has_none(self) -> None:
        decision = decide(a_record(unit=None), COMPANY, SERVICE)

        assert decision.accepted is not None
        assert decision.accepted.unit == "device"

    def test_keys_the_accepted_record_by_the_clients_primary_reference(self) -> None:
        decision = decide(a_record(), COMPANY, SERVICE)

        assert decision.accepted is not None
        assert decision.accepted.key() == f"{TENANT}:acme"

    @pytest.mark.parametrize("company", [COMPANY, None])
    def test_rejects_a_unit_that_does_not_match_the_service(self, company: CompanyRef | None) -> None:
        decision = decide(a_record(unit="GB"), company, SERVICE)

        assert decision.verdict is Verdict.REJECTED
        assert decision.field == "unit"
        assert decision.reason == "unit 'GB' does not match the service's unit 'device'"
        assert decision.accepted is None

    def test_holds_a_record_of_an_unknown_company_as_unmapped(self) -> None:
        decision = decide(a_record(company_ref="NOPE-9"), None, SERVICE)

        assert decision.verdict is Verdict.UNMAPPED
        assert decision.reason is not None
        assert "company_ref 'NOPE-9'" in decision.reason
        assert decision.accepted is None

    @pytest.mark.parametrize("company", [COMPANY, None])
    def test_holds_a_record_of_an_unknown_service_as_unmapped(self, company: CompanyRef | None) -> None:
        decision = decide(a_record(service_ref="NOPE-SVC", company_ref="NOPE-9"), company, None)

        assert decision.verdict is Verdict.UNMAPPED
        assert decision.reason is not None
        assert "NOPE" in decision.reason
        assert decision.accepted is None

    def test_names_the_service_ref_when_only_the_service_is_unknown(self) -> None:
        decision = decide(a_record(service_ref="NOPE-SVC"), COMPANY, None)

        assert decision.reason == "service_ref 'NOPE-SVC' is not in the catalog yet"


# Contracts refuse lone surrogates, so keys never hold them; sources here avoid the ':' separator (see below).
keys = st.tuples(
    st.sampled_from([TENANT, OTHER_TENANT]),
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=":"), min_size=1, max_size=20),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
)


class TestRecordId:
    def test_is_stable_for_the_same_tenant_source_and_event_id(self) -> None:
        assert record_id(TENANT, "ninjaone", "e-1") == record_id(TENANT, "ninjaone", "e-1")

    @pytest.mark.parametrize(
        ("tenant", "source", "event_id"),
        [(OTHER_TENANT, "ninjaone", "e-1"), (TENANT, "datto-rmm", "e-1"), (TENANT, "ninjaone", "e-2")],
    )
    def test_differs_when_any_part_differs(self, tenant: UUID, source: str, event_id: str) -> None:
        assert record_id(tenant, source, event_id) != record_id(TENANT, "ninjaone", "e-1")

    @given(keys, keys)
    def test_is_distinct_for_distinct_keys(self, a: tuple[UUID, str, str], b: tuple[UUID, str, str]) -> None:
        assert (record_id(*a) == record_id(*b)) == (a == b)

    def test_is_distinct_even_when_the_source_contains_the_separator(self) -> None:
        assert record_id(TENANT, "psa:eu", "e-1") != record_id(TENANT, "psa", "eu:e-1")


class TestMonthPartitions:
    def test_a_timestamp_with_an_offset_falls_in_its_utc_month(self) -> None:
        from datetime import timedelta, timezone

        from services.metering.adapters.repository import month_of

        # 2026-01-01T00:30+01:00 is 2025-12-31T23:30Z: December's partition; 2026-01-15T09:00+01:00 is January's
        plus_one = timezone(timedelta(hours=1))
        assert month_of(datetime(2026, 1, 1, 0, 30, tzinfo=plus_one)) == datetime(2025, 12, 1, tzinfo=UTC)
        assert month_of(datetime(2026, 1, 15, 9, tzinfo=plus_one)) == datetime(2026, 1, 1, tzinfo=UTC)
