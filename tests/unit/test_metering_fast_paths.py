"""Spec for metering's faster per-record helpers: each gives exactly what the general way gives.

Stored fingerprints and record ids of records received before must keep matching, and a bad record must keep
its code and reason, so every shortcut is checked against the general computation it replaces.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from services.metering.domain.acceptance import _json_strings, record_id, time_record_id
from services.metering.domain.fingerprint import fingerprint
from services.metering.domain.validation import Malformed, read_record
from shared.contracts.base import canonical_fingerprint
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord

TENANT = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
decimals = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
offsets = st.sampled_from(["Z", "+00:00", "+01:00", "-05:30", "+14:00"])


@st.composite
def usage_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=10)),
        "source": draw(st.sampled_from(["ninjaone", "psa:eu", "m365"])),
        "tenant_id": str(TENANT),
        "company_ref": draw(st.text(min_size=1, max_size=6)),
        "service_ref": "managed-device",
        "quantity": format(draw(decimals), "f"),
        "occurred_at": f"2026-01-{draw(st.integers(1, 28)):02d}T{draw(st.integers(0, 23)):02d}:00:00" + draw(offsets),
    }
    if draw(st.booleans()):
        doc["kind"] = draw(st.sampled_from(["delta", "snapshot"]))
    if draw(st.booleans()):
        doc["unit"] = draw(st.sampled_from(["device", "GB", None]))
    if draw(st.booleans()):
        doc["attributes"] = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
    extras = draw(st.dictionaries(st.sampled_from(["site", "seq", "tags", "note"]), json_values, max_size=2))
    return doc | extras


class TestFingerprint:
    @given(usage_docs())
    @settings(max_examples=200)
    def test_a_usage_records_fingerprint_is_its_contract_fingerprint(self, doc: dict[str, Any]) -> None:
        record = UsageRecord.model_validate(doc)

        assert fingerprint(record) == record.content_fingerprint() == canonical_fingerprint(record)

    @given(
        st.integers(0, 23),
        st.integers(1, 600),
        offsets,
        st.booleans(),
        st.one_of(st.none(), st.text(max_size=10)),
        st.dictionaries(st.sampled_from(["task", "rate_code"]), json_values, max_size=2),
    )
    def test_a_time_entrys_fingerprint_is_its_contract_fingerprint(
        self, hour: int, minutes: int, offset: str, billable: bool, notes: str | None, extras: dict[str, Any]
    ) -> None:
        start = f"2026-01-12T{hour:02d}:00:00{offset}"
        end = f"2026-01-13T{hour:02d}:{minutes % 60:02d}:00{offset}"
        doc = {
            "entry_id": "cw-1",
            "source": "connectwise",
            "tenant_id": str(TENANT),
            "company_ref": "ACME-001",
            "service_ref": "helpdesk",
            "user_ref": "tech.jane",
            "start_time": start,
            "end_time": end,
            "billable": billable,
            "notes": notes,
        } | extras
        entry = TimeEntry.model_validate(doc)

        assert fingerprint(entry) == entry.content_fingerprint()

    def test_same_content_spelled_differently_has_one_fingerprint_and_different_content_another(self) -> None:
        base = {
            "event_id": "e-1",
            "source": "ninjaone",
            "tenant_id": str(TENANT),
            "company_ref": "ACME-001",
            "service_ref": "managed-device",
            "quantity": "1.50",
            "occurred_at": "2026-01-15T10:00:00Z",
        }
        respelled = base | {"quantity": "1.5", "occurred_at": "2026-01-15T11:00:00+01:00"}
        changed = base | {"quantity": "1.51"}

        one, same, other = (fingerprint(UsageRecord.model_validate(d)) for d in (base, respelled, changed))

        assert one == same
        assert one != other

    def test_values_a_python_producer_puts_in_attributes_are_fingerprinted_as_the_contract_does(self) -> None:
        class Colour(Enum):
            RED = "red"

        class Detail(BaseModel):
            size: Decimal

        odd = {
            "when": date(2026, 1, 15),
            "colour": Colour.RED,
            "pair": (Decimal("1.0"), uuid.UUID(int=7)),
            "detail": Detail(size=Decimal("2.50")),
            "amounts": {3: Decimal("0.00")},
        }
        record = UsageRecord(
            event_id="e-1",
            source="sdk",
            tenant_id=TENANT,
            company_ref="ACME-001",
            service_ref="managed-device",
            quantity=Decimal("1"),
            occurred_at="2026-01-15T10:00:00Z",  # type: ignore[arg-type]
            attributes=odd,
        )

        assert fingerprint(record) == record.content_fingerprint()


class TestReadingKafkaBytes:
    """Bytes are validated straight from JSON; whatever that refuses is read the general way, so a bad record
    keeps exactly the code and reason it had."""

    GOOD = {
        "event_id": "e-1",
        "source": "ninjaone",
        "tenant_id": str(TENANT),
        "company_ref": "ACME-001",
        "service_ref": "managed-device",
        "quantity": "2",
        "occurred_at": "2026-01-15T10:00:00+01:00",
    }

    def _general_way(self, raw: bytes) -> Any:
        """What reading bytes did before the shortcut: json.loads, then the model."""
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return Malformed("invalid_json", "invalid_json", f"payload is not valid JSON: {exc}")
        return read_record(decoded, UsageRecord, "event_id")

    def test_good_records_read_from_bytes_equal_those_read_from_decoded_json(self) -> None:
        variants = [
            self.GOOD,
            self.GOOD | {"kind": "snapshot", "unit": "device", "attributes": {"a": [1, 2.5, None, {"b": True}]}},
            self.GOOD | {"site": "Leeds", "seq": 12345678901234567890},
            self.GOOD | {"event_id": "e-1", "note": "caf\u00e9 \u2028"},
        ]
        for doc in variants:
            raw = json.dumps(doc).encode()
            fast, general = read_record(raw, UsageRecord, "event_id"), read_record(json.loads(raw), UsageRecord, "x")

            assert isinstance(fast, UsageRecord)
            assert fast == general
            assert fast.model_extra == general.model_extra  # type: ignore[union-attr]

    def test_bad_records_keep_their_code_and_reason(self) -> None:
        cases = {
            b"{not json": "invalid_json",
            b"[1, 2]": "not_an_object",
            json.dumps(self.GOOD | {"quantity": 2}).encode(): "wrong_type",
            json.dumps(self.GOOD | {"quantity": "-1"}).encode(): "negative_quantity",
            json.dumps(self.GOOD | {"occurred_at": "2026-01-15T10:00:00"}).encode(): "timestamp_without_offset",
            json.dumps({k: v for k, v in self.GOOD.items() if k != "source"}).encode(): "missing_field",
            json.dumps(self.GOOD).encode() + b" trailing": "invalid_json",
            b'{"event_id": "a\tb"}': "invalid_json",  # a raw control character inside a string
        }
        for raw, code in cases.items():
            fast = read_record(raw, UsageRecord, "event_id")
            general = self._general_way(raw)

            assert fast == general, raw
            assert getattr(fast, "code", None) == code, raw

    def test_what_only_the_general_reader_accepts_is_still_accepted(self) -> None:
        bom = b"\xef\xbb\xbf" + json.dumps(self.GOOD).encode()
        for raw in (bom, json.dumps(self.GOOD).encode("utf-16")):
            record = read_record(raw, UsageRecord, "event_id")

            assert isinstance(record, UsageRecord), raw

    def test_a_lone_surrogate_the_database_cannot_store_is_refused_naming_the_field(self) -> None:
        text = json.dumps(self.GOOD | {"note": "\ud800"})  # a lone surrogate, escaped: Postgres cannot store it
        refused = read_record(text.encode(), UsageRecord, "event_id")
        assert isinstance(refused, Malformed)
        assert (refused.code, refused.field) == ("unstorable_text", "note")


class TestRecordIds:
    @given(st.text(), st.text())
    def test_the_ids_json_is_json_dumps_byte_for_byte(self, source: str, ext: str) -> None:
        assert _json_strings(str(TENANT), source, ext) == json.dumps([str(TENANT), source, ext])

    @given(st.text(min_size=1), st.text(min_size=1))
    def test_record_ids_are_those_every_service_already_derives(self, source: str, ext: str) -> None:
        usage_id = uuid.uuid5(uuid.NAMESPACE_URL, "usage:" + json.dumps([str(TENANT), source, ext]))
        time_id = uuid.uuid5(uuid.NAMESPACE_URL, "time:" + json.dumps([str(TENANT), source, ext]))

        assert record_id(TENANT, source, ext) == usage_id
        assert time_record_id(TENANT, source, ext) == time_id
