"""`billing.time-entries.v1` — TimeEntry, as fixed in docs/contracts."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts import TimeEntry

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
VALID: dict[str, Any] = {
    "entry_id": "cw-time-884213",
    "source": "connectwise",
    "tenant_id": TENANT,
    "company_ref": "ACME-001",
    "service_ref": "HELPDESK-HOURLY",
    "user_ref": "tech.jane",
    "start_time": "2025-01-31T09:00:00+01:00",
    "end_time": "2025-01-31T10:30:00+01:00",
}


def parse(**changes: Any) -> TimeEntry:
    payload = {**VALID, **changes}
    return TimeEntry.model_validate_json(json.dumps({k: v for k, v in payload.items() if v is not ...}))


def first_error(**changes: Any) -> Any:
    with pytest.raises(ValidationError) as exc:
        parse(**changes)
    return exc.value.errors()[0]


class TestTimeEntry:
    def test_accepts_the_minimal_entry_with_defaults(self) -> None:
        entry = parse()
        assert entry.billable is True
        assert entry.ticket_ref is None
        assert entry.notes is None

    def test_accepts_a_non_billable_entry_with_ticket_and_notes(self) -> None:
        entry = parse(billable=False, ticket_ref="T-1", notes="Swapped SSD")
        assert (entry.billable, entry.ticket_ref, entry.notes) == (False, "T-1", "Swapped SSD")

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"entry_id": ...}, "entry_id"),
            ({"source": ...}, "source"),
            ({"tenant_id": ...}, "tenant_id"),
            ({"company_ref": ...}, "company_ref"),
            ({"service_ref": ...}, "service_ref"),
            ({"user_ref": ...}, "user_ref"),
            ({"start_time": ...}, "start_time"),
            ({"end_time": ...}, "end_time"),
            ({"entry_id": ""}, "entry_id"),
            ({"entry_id": "e" * 201}, "entry_id"),
            ({"user_ref": ""}, "user_ref"),
            ({"tenant_id": 42}, "tenant_id"),
            ({"start_time": "2025-01-31T09:00:00"}, "start_time"),
            ({"end_time": "2025-01-31T10:30:00"}, "end_time"),
            ({"end_time": "2025-01-31T09:00:00+01:00"}, "end_time"),
            ({"end_time": "2025-01-31T08:59:59+01:00"}, "end_time"),
            ({"billable": "sometimes"}, "billable"),
        ],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], field: str) -> None:
        assert first_error(**changes)["loc"] == (field,)

    def test_rejects_an_end_time_not_after_start_time_saying_so(self) -> None:
        assert "end_time" in first_error(end_time=VALID["start_time"])["msg"]

    def test_rejects_a_timestamp_without_offset_saying_the_offset_is_missing(self) -> None:
        assert "offset is missing" in first_error(start_time="2025-01-31T09:00:00")["msg"]

    def test_measures_duration_and_exact_decimal_hours(self) -> None:
        entry = parse()
        assert entry.duration == timedelta(minutes=90)
        assert entry.hours == Decimal("1.5")

    def test_measures_hours_across_offsets(self) -> None:
        entry = parse(start_time="2025-01-31T09:00:00+01:00", end_time="2025-01-31T08:45:00Z")
        assert entry.hours == Decimal("0.75")

    def test_keeps_unknown_fields(self) -> None:
        assert parse(work_type="remote").model_extra == {"work_type": "remote"}

    def test_round_trips_json(self) -> None:
        entry = parse(notes="n", ticket_ref="T-1")
        assert TimeEntry.model_validate_json(entry.model_dump_json()) == entry

    def test_is_keyed_by_tenant_and_company(self) -> None:
        assert parse().key() == f"{TENANT}:ACME-001"


class TestTimeEntryFingerprint:
    def test_is_equal_for_the_same_content(self) -> None:
        assert parse().content_fingerprint() == parse().content_fingerprint()

    def test_compares_timestamps_by_instant(self) -> None:
        utc = parse(start_time="2025-01-31T08:00:00Z", end_time="2025-01-31T09:30:00Z")
        assert utc.content_fingerprint() == parse().content_fingerprint()

    @pytest.mark.parametrize(
        "changes",
        [{"end_time": "2025-01-31T10:31:00+01:00"}, {"billable": False}, {"notes": "x"}, {"extra": 1}],
        ids=str,
    )
    def test_differs_for_different_content(self, changes: dict[str, Any]) -> None:
        assert parse(**changes).content_fingerprint() != parse().content_fingerprint()
