"""How rating reads metering.accepted.v1: usage and time share the topic (``record_type``); usage without the
JSON string "time" is parsed straight from the bytes, and must read exactly as the general path reads it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from services.rating.handlers import parse_accepted
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.messaging.consumer import Reject
from shared.messaging.envelope import Envelope

TENANT = uuid.uuid4()


def usage(**changes: Any) -> dict[str, Any]:
    return {
        "record_type": "usage",
        "record_id": str(uuid.uuid4()),
        "tenant_id": str(TENANT),
        "source": "ninjaone",
        "event_id": "evt-1",
        "company_id": str(uuid.uuid4()),
        "company_ref": "acme",
        "service_id": str(uuid.uuid4()),
        "service_ref": "managed-device",
        "kind": "delta",
        "quantity": "3",
        "unit": "device",
        "occurred_at": "2026-01-15T10:00:00+00:00",
    } | changes


def time_entry() -> dict[str, Any]:
    return {
        "record_type": "time",
        "record_id": str(uuid.uuid4()),
        "tenant_id": str(TENANT),
        "source": "connectwise",
        "entry_id": "cw-1",
        "company_id": str(uuid.uuid4()),
        "company_ref": "acme",
        "service_id": str(uuid.uuid4()),
        "service_ref": "helpdesk",
        "user_ref": "tech.jane",
        "start_time": "2026-01-05T09:00:00+00:00",
        "end_time": "2026-01-05T10:30:00+00:00",
        "hours": "1.5",
        "billable": True,
    }


def envelope(doc: dict[str, Any] | str) -> Envelope:
    raw = doc if isinstance(doc, str) else json.dumps(doc)
    return Envelope("metering.accepted.v1", 0, 0, "k", raw.encode(), {})


class TestParsingAcceptedRecords:
    @pytest.mark.parametrize(
        "doc",
        [
            usage(),
            {k: v for k, v in usage().items() if k != "record_type"},  # usage when absent
            usage(unit="time"),  # "time" as a value: the general path, still usage
            usage(attributes={"device_id": "dev-42", "nested": {"a": [1, 2]}}, approved_by="user:x"),
        ],
        ids=["usage", "no-record-type", "time-as-a-value", "attributes"],
    )
    def test_usage_reads_the_same_on_the_fast_and_the_general_path(self, doc: dict[str, Any]) -> None:
        tenant, body = parse_accepted(envelope(doc))
        assert tenant == TENANT
        assert isinstance(body, AcceptedUsage)
        assert body == AcceptedUsage.model_validate(json.loads(json.dumps(doc)))

    def test_a_time_entry_is_read_as_time_whatever_its_spacing(self) -> None:
        doc = time_entry()
        spaced = json.dumps(doc, indent=2)
        for raw in (json.dumps(doc), spaced, json.dumps(doc, separators=(",", ":"))):
            _, body = parse_accepted(envelope(raw))
            assert isinstance(body, AcceptedTime)
            assert str(body.hours) == "1.5"

    @pytest.mark.parametrize(
        ("doc", "field"),
        [
            (usage(quantity=3.5), "quantity"),  # a JSON number: a float has already lost the value
            (usage(quantity="-1"), "quantity"),
            (usage(company_id="not-a-uuid"), "company_id"),
            ({k: v for k, v in usage().items() if k != "occurred_at"}, "occurred_at"),
        ],
        ids=["json-number", "negative", "bad-uuid", "missing"],
    )
    def test_a_bad_usage_record_is_rejected_naming_the_field(self, doc: dict[str, Any], field: str) -> None:
        with pytest.raises(Reject) as caught:
            parse_accepted(envelope(doc))
        assert caught.value.field == field

    def test_a_message_that_is_not_json_is_rejected(self) -> None:
        with pytest.raises(Reject):
            parse_accepted(envelope("{not json"))
