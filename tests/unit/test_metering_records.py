"""Spec for metering's pure rules: reading a record (codes per reason), time entries, approval holding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from services.metering.domain.acceptance import (
    CompanyRef,
    ServiceRef,
    Verdict,
    decide,
    decide_time,
    plan_in_force,
    time_record_id,
)
from services.metering.domain.approval import request_id_for
from services.metering.domain.validation import Malformed, read_record
from shared.contracts.approvals import ApprovalRuleSet
from shared.contracts.metering import AcceptedTime
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord

TENANT = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
COMPANY = CompanyRef(UUID("11111111-1111-4111-8111-111111111111"), "acme")
TIME_SERVICE = ServiceRef(UUID("33333333-3333-4333-8333-333333333333"), "hour", "Time")
USAGE_SERVICE = ServiceRef(UUID("22222222-2222-4222-8222-222222222222"), "device", "Usage")


def usage(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "source": "ninjaone",
        "tenant_id": str(TENANT),
        "company_ref": "ACME-001",
        "service_ref": "managed-device",
        "quantity": "3",
        "occurred_at": "2026-01-15T10:00:00Z",
    } | changes


def entry(**changes: Any) -> TimeEntry:
    doc = {
        "entry_id": "cw-1",
        "source": "connectwise",
        "tenant_id": str(TENANT),
        "company_ref": "ACME-001",
        "service_ref": "helpdesk",
        "user_ref": "tech.jane",
        "start_time": "2026-01-15T09:00:00Z",
        "end_time": "2026-01-15T18:30:00Z",
    } | changes
    return TimeEntry.model_validate(doc)


def rules(
    item_type: str, field: str, threshold: str, *, active: bool = True, service_codes: list[str] | None = None
) -> ApprovalRuleSet:
    at = "2026-01-01T00:00:00Z"
    return ApprovalRuleSet.model_validate(
        {
            "tenant_id": str(TENANT),
            "version": 1,
            "occurred_at": at,
            "rules": [
                {
                    "rule_id": "d9428888-122b-41e5-a6e8-b6f1c9b3c2a1",
                    "tenant_id": str(TENANT),
                    "item_type": item_type,
                    "threshold_field": field,
                    "threshold": threshold,
                    "steps": [{"step": 1, "roles": ["billing_manager"]}],
                    "active": active,
                    "service_codes": service_codes,
                    "version": 1,
                    "updated_at": at,
                }
            ],
        }
    )


class TestReadingARecord:
    @pytest.mark.parametrize(
        ("changes", "field", "code"),
        [
            ({"quantity": "-1"}, "quantity", "negative_quantity"),
            ({"quantity": 3}, "quantity", "wrong_type"),
            ({"occurred_at": "2026-01-15T10:00:00"}, "occurred_at", "timestamp_without_offset"),
            ({"company_ref": None}, "company_ref", "wrong_type"),
            ({"kind": "average"}, "kind", "invalid_value"),
        ],
    )
    def test_names_the_field_and_a_code_for_each_reason(self, changes: dict[str, Any], field: str, code: str) -> None:
        result = read_record(json.dumps(usage(**changes)).encode(), UsageRecord, "event_id")

        assert isinstance(result, Malformed)
        assert (result.field, result.code, result.error_class) == (field, code, "validation_error")
        assert (result.tenant_id, result.source, result.external_id) == (TENANT, "ninjaone", "e-1")

    def test_a_missing_field_is_named(self) -> None:
        doc = usage()
        del doc["service_ref"]

        result = read_record(doc, UsageRecord, "event_id")

        assert isinstance(result, Malformed)
        assert (result.field, result.code) == ("service_ref", "missing_field")

    def test_an_end_not_after_the_start_is_its_own_reason(self) -> None:
        doc = entry().model_dump(mode="json") | {"end_time": "2026-01-15T09:00:00Z"}

        result = read_record(doc, TimeEntry, "entry_id")

        assert isinstance(result, Malformed)
        assert (result.field, result.code) == ("end_time", "end_not_after_start")

    def test_bytes_that_are_not_json_have_no_tenant(self) -> None:
        result = read_record(b"{nope", UsageRecord, "event_id")

        assert isinstance(result, Malformed)
        assert (result.error_class, result.code, result.tenant_id) == ("invalid_json", "invalid_json", None)

    def test_unknown_extra_fields_are_kept(self) -> None:
        result = read_record(usage(site="Leeds"), UsageRecord, "event_id")

        assert isinstance(result, UsageRecord)
        assert result.model_extra == {"site": "Leeds"}


class TestTimeEntries:
    def test_accepts_a_mapped_entry_with_its_hours_and_keeps_extra_fields(self) -> None:
        e = TimeEntry.model_validate(entry().model_dump(mode="json") | {"board": "L2"})

        decision = decide_time(e, COMPANY, TIME_SERVICE, user_id=None)

        assert decision.verdict is Verdict.ACCEPTED
        assert isinstance(decision.accepted, AcceptedTime)
        assert decision.accepted.hours == Decimal("9.5")  # 09:00 to 18:30
        assert decision.accepted.record_id == time_record_id(TENANT, "connectwise", "cw-1")
        assert decision.accepted.attributes == {"board": "L2"}
        assert decision.accepted.user_id is None

    def test_rejects_time_booked_on_a_service_that_is_not_a_time_service(self) -> None:
        decision = decide_time(entry(), COMPANY, USAGE_SERVICE)

        assert (decision.verdict, decision.field, decision.code) == (
            Verdict.REJECTED,
            "service_ref",
            "not_a_time_service",
        )

    def test_an_unknown_client_leaves_the_entry_unmapped(self) -> None:
        decision = decide_time(entry(), None, TIME_SERVICE)

        assert (decision.verdict, decision.code) == (Verdict.UNMAPPED, "unknown_company")

    def test_a_time_and_a_usage_record_with_the_same_ids_never_share_a_record_id(self) -> None:
        from services.metering.domain.acceptance import record_id

        assert record_id(TENANT, "psa", "1") != time_record_id(TENANT, "psa", "1")


class TestApprovalHolding:
    @pytest.mark.parametrize(("end", "held"), [("17:00", False), ("17:01", True)])
    def test_a_billable_entry_is_held_only_when_strictly_above_the_threshold(self, end: str, held: bool) -> None:
        e = entry(end_time=f"2026-01-15T{end}:00Z")  # 8 h, then 8 h 1 min, against a threshold of 8

        decision = decide_time(e, COMPANY, TIME_SERVICE, rules=rules("time_entry", "hours", "8"))

        assert (decision.verdict is Verdict.HELD) is held

    def test_a_non_billable_entry_is_never_held(self) -> None:
        decision = decide_time(entry(billable=False), COMPANY, TIME_SERVICE, rules=rules("time_entry", "hours", "1"))

        assert decision.verdict is Verdict.ACCEPTED

    def test_an_inactive_rule_or_another_item_type_holds_nothing(self) -> None:
        inactive = decide_time(entry(), COMPANY, TIME_SERVICE, rules=rules("time_entry", "hours", "1", active=False))
        other = decide_time(entry(), COMPANY, TIME_SERVICE, rules=rules("usage_report", "quantity", "1"))

        assert (inactive.verdict, other.verdict) == (Verdict.ACCEPTED, Verdict.ACCEPTED)

    def test_a_usage_report_above_a_quantity_rule_is_held(self) -> None:
        record = UsageRecord.model_validate(usage(quantity="501"))

        decision = decide(record, COMPANY, USAGE_SERVICE, rules=rules("usage_report", "quantity", "500"))

        assert (decision.verdict, decision.code, decision.field) == (Verdict.HELD, "approval_required", "quantity")

    def test_a_usage_rule_scoped_to_other_services_does_not_hold_this_ones(self) -> None:
        record = UsageRecord.model_validate(usage(quantity="50000", service_ref="backup-gb"))
        seats_only = rules("usage_report", "quantity", "500", service_codes=["m365-seats"])
        devices = rules("usage_report", "quantity", "500", service_codes=["backup-gb"])

        assert decide(record, COMPANY, USAGE_SERVICE, rules=seats_only).verdict is Verdict.ACCEPTED
        assert decide(record, COMPANY, USAGE_SERVICE, rules=devices).verdict is Verdict.HELD

    def test_the_request_id_is_the_same_on_every_retry_and_differs_per_record(self) -> None:
        a, b = time_record_id(TENANT, "cw", "1"), time_record_id(TENANT, "cw", "2")

        assert request_id_for(TENANT, "time", a) == request_id_for(TENANT, "time", a)
        assert request_id_for(TENANT, "time", a) != request_id_for(TENANT, "time", b)


class TestPlanInForce:
    def test_an_assignment_covers_its_start_and_not_its_end(self) -> None:
        from datetime import date

        span = [(date(2026, 1, 1), date(2026, 2, 1))]

        assert plan_in_force(span, date(2026, 1, 1))
        assert not plan_in_force(span, date(2026, 2, 1))
        assert not plan_in_force([], datetime(2026, 1, 5, tzinfo=UTC).date())
