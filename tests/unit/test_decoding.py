"""Spec for reading records with limits (issue 17): nothing a sender writes can make the decoder raise anything but
a specific refusal, and no record is read past its topic's size limit."""

from __future__ import annotations

import json

import pytest

from services.metering.domain.validation import Malformed, read_record
from shared.contracts.usage import UsageRecord
from shared.messaging.consumer import EXCERPT_CHARS, Reject, payload_excerpt
from shared.messaging.decoding import MAX_DEPTH, Undecodable, depth, loads
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

USAGE = {"event_id": "e-1", "source": "ninjaone", "tenant_id": "0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b",
         "company_ref": "acme", "service_ref": "rmm", "quantity": "3",
         "occurred_at": "2026-01-05T10:00:00Z"}  # fmt: skip


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


class TestLoads:
    @pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1_000, 100_000])
    def test_nesting_deeper_than_the_limit_is_too_deep_however_deep(self, levels: int) -> None:
        with pytest.raises(Undecodable) as refused:
            loads(nested(levels).encode())
        assert (refused.value.code, refused.value.reason) == ("too_deep", "payload nests deeper than 32 levels")

    def test_nesting_up_to_the_limit_is_read(self) -> None:
        assert depth(loads(nested(MAX_DEPTH))) == MAX_DEPTH

    @pytest.mark.parametrize("raw", [b"\xff" * 10, b"{", b"", b"NaN-ish"])
    def test_anything_else_unreadable_is_invalid_json(self, raw: bytes) -> None:
        with pytest.raises(Undecodable) as refused:
            loads(raw)
        assert refused.value.code == "invalid_json"

    def test_depth_counts_objects_and_arrays_without_recursion(self) -> None:
        assert [depth(1), depth([]), depth({"a": [1, {"b": 2}]})] == [0, 1, 3]
        assert depth(json.loads(nested(900)), limit=10) == 11  # stops counting past the limit


class TestMeteringReadsAttributesWithTheSameLimit:
    def test_a_record_with_deep_attributes_is_refused_too_deep_on_the_fast_path(self) -> None:
        raw = (json.dumps(USAGE)[:-1] + ', "attributes": {"x": ' + nested(100) + "}}").encode()
        refused = read_record(raw, UsageRecord, "event_id")
        assert isinstance(refused, Malformed)
        assert (refused.error_class, refused.code) == ("too_deep", "too_deep")

    def test_shallow_attributes_are_kept(self) -> None:
        raw = json.dumps(USAGE | {"attributes": {"device": {"id": "D-1", "tags": ["a"]}}}).encode()
        record = read_record(raw, UsageRecord, "event_id")
        assert isinstance(record, UsageRecord)


class TestTheKernelsParse:
    def test_a_deep_record_is_a_reject_naming_too_deep(self) -> None:
        env = Envelope("billing.clock.v1", 0, 7, None, nested(5_000).encode(), {})
        with pytest.raises(Reject) as refused:
            parse_contract(env, UsageRecord)
        assert refused.value.error_class == "too_deep"


class TestDeadLetterExcerpts:
    def test_a_small_payload_is_kept_whole(self) -> None:
        assert payload_excerpt(b'{"a": 1}') == ('{"a": 1}', False)

    def test_a_large_payload_is_cut_to_the_excerpt_after_escaping(self) -> None:
        text, cut = payload_excerpt(b"\xff" * 250_000)
        assert (len(text), cut, text[:8]) == (EXCERPT_CHARS, True, "\\xff\\xff")


class TestStrictValues:
    def test_billable_is_a_json_boolean_not_yes(self) -> None:
        from shared.contracts.time_entries import TimeEntry

        entry = {"entry_id": "t-1", "source": "halopsa", "tenant_id": "0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b",
                 "company_ref": "acme", "service_ref": "helpdesk", "user_ref": "tech.sam",
                 "start_time": "2026-01-05T09:00:00Z", "end_time": "2026-01-05T10:00:00Z"}  # fmt: skip
        refused = read_record(json.dumps(entry | {"billable": "yes"}).encode(), TimeEntry, "entry_id")
        assert isinstance(refused, Malformed)
        assert (refused.code, refused.field) == ("wrong_type", "billable")
        assert isinstance(
            read_record(json.dumps(entry | {"billable": False}).encode(), TimeEntry, "entry_id"), TimeEntry
        )
