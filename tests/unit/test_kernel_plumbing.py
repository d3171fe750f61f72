"""Spec for the messaging kernel's pure parts: envelopes, parsing, inline schemas, topics, lag settling."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from pydantic import Field, TypeAdapter

from shared import topics
from shared.clock.lag import ConsumerLagProbe, LagNotSettled, LagReport
from shared.contracts.base import Contract
from shared.contracts.catalog import CatalogEvent
from shared.contracts.rating import ChargeCreated
from shared.contracts.usage import UsageRecord
from shared.messaging.broker import inline_schema
from shared.messaging.consumer import Reject
from shared.messaging.envelope import MESSAGE_ID_HEADER, Envelope
from shared.messaging.parsing import parse_contract
from shared.topology import SUBSCRIPTIONS, of_service, subscription

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
USAGE: dict[str, Any] = {
    "event_id": "ninja-7f3a9c21",
    "source": "ninjaone",
    "tenant_id": TENANT,
    "company_ref": "ACME-001",
    "service_ref": "RMM-DEVICE",
    "quantity": "12.50",
    "occurred_at": "2026-01-31T09:00:00Z",
}


def an_envelope(
    value: bytes = b"{}", *, offset: int = 7, partition: int = 0, headers: dict[str, str] | None = None
) -> Envelope:
    return Envelope("billing.usage.v1", partition, offset, f"{TENANT}:ACME-001", value, headers or {})


def usage_envelope(**changes: Any) -> Envelope:
    payload = {k: v for k, v in (USAGE | changes).items() if v is not ...}
    return an_envelope(json.dumps(payload).encode())


def rejection(env: Envelope, model: type[Any] = UsageRecord) -> Reject:
    with pytest.raises(Reject) as exc:
        parse_contract(env, model)
    return exc.value


class TestEnvelopeMessageId:
    def test_is_the_producers_message_id_header_when_present(self) -> None:
        env = an_envelope(headers={MESSAGE_ID_HEADER: "3fa85f64-5717-4562-b3fc-2c963f66afa6"})

        assert env.message_id == "3fa85f64-5717-4562-b3fc-2c963f66afa6"

    def test_does_not_depend_on_position_when_the_header_is_present(self) -> None:
        headers = {MESSAGE_ID_HEADER: "m-1"}

        assert (
            an_envelope(b"a", offset=1, headers=headers).message_id
            == an_envelope(b"b", offset=9, headers=headers).message_id
        )

    def test_is_a_stable_digest_without_the_header(self) -> None:
        assert an_envelope(b'{"a":1}').message_id == an_envelope(b'{"a":1}').message_id
        assert len(an_envelope().message_id) == 64

    def test_differs_for_different_payloads_at_the_same_position(self) -> None:
        assert an_envelope(b'{"a":1}', offset=0).message_id != an_envelope(b'{"a":2}', offset=0).message_id

    @pytest.mark.parametrize(("offset", "partition"), [(8, 0), (7, 1)])
    def test_differs_for_the_same_payload_elsewhere(self, offset: int, partition: int) -> None:
        assert an_envelope(offset=offset, partition=partition).message_id != an_envelope().message_id

    def test_ignores_other_headers(self) -> None:
        assert an_envelope(headers={"trace": "x"}).message_id == an_envelope().message_id


class TestParseContract:
    def test_returns_the_tenant_and_the_validated_body(self) -> None:
        tenant, body = parse_contract(usage_envelope(), UsageRecord)

        assert tenant == UUID(TENANT)
        assert isinstance(body, UsageRecord)
        assert body.event_id == "ninja-7f3a9c21"

    @pytest.mark.parametrize("value", [b"{not json", b"", b"\xff\xfe\x00", b'{"a": 1'])
    def test_rejects_invalid_json(self, value: bytes) -> None:
        reject = rejection(an_envelope(value))

        assert reject.error_class == "invalid_json"
        assert reject.reason.startswith("payload is not valid JSON")
        assert reject.tenant_id is None

    @pytest.mark.parametrize("value", [b"[]", b"42", b'"text"', b"null"])
    def test_rejects_a_payload_that_is_not_an_object(self, value: bytes) -> None:
        reject = rejection(an_envelope(value))

        assert (reject.error_class, reject.reason) == ("validation_error", "payload must be a JSON object")

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"quantity": "-1"}, "quantity"),
            ({"quantity": 3}, "quantity"),
            ({"occurred_at": ...}, "occurred_at"),
            ({"occurred_at": "2026-01-31T09:00:00"}, "occurred_at"),
            ({"event_id": ""}, "event_id"),
            ({"kind": "weekly"}, "kind"),
        ],
    )
    def test_names_the_field_that_failed_validation(self, changes: dict[str, Any], field: str) -> None:
        reject = rejection(usage_envelope(**changes))

        assert reject.error_class == "validation_error"
        assert reject.field == field
        assert reject.reason.startswith(f"{field}: ")

    def test_counts_the_further_errors(self) -> None:
        reject = rejection(usage_envelope(quantity="-1", occurred_at=..., event_id=""))

        assert reject.reason.endswith("(and 2 more)")

    def test_carries_the_tenant_when_the_raw_payload_had_a_valid_one(self) -> None:
        assert rejection(usage_envelope(quantity="-1")).tenant_id == UUID(TENANT)

    @pytest.mark.parametrize("tenant", ["not-a-uuid", 42, None, ...])
    def test_carries_no_tenant_when_the_raw_payload_had_none_valid(self, tenant: Any) -> None:
        reject = rejection(usage_envelope(tenant_id=tenant))

        assert reject.field == "tenant_id"
        assert reject.tenant_id is None

    def test_rejects_a_model_without_a_tenant(self) -> None:
        class Untenanted(Contract):
            name: str = Field(description="Anything")

        reject = rejection(an_envelope(b'{"name": "x"}'), Untenanted)

        assert (reject.error_class, reject.field) == ("validation_error", "tenant_id")

    def test_tolerates_unknown_fields(self) -> None:
        _, body = parse_contract(usage_envelope(added_in_v1_1="x"), UsageRecord)

        assert body.model_extra == {"added_in_v1_1": "x"}


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)
    elif isinstance(node, str):
        yield node


class TestInlineSchema:
    def test_resolves_local_defs_refs_in_place(self) -> None:
        schema = TypeAdapter(ChargeCreated).json_schema()
        assert "$defs" in schema

        inlined = inline_schema(schema)

        assert "$defs" not in inlined
        assert list(refs_in(inlined)) == []
        assert inlined["properties"]["price_rule"]["properties"]["rate_source"]["description"]

    def test_resolves_refs_inside_lists_and_nested_defs(self) -> None:
        schema = {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/A"}}},
            "$defs": {"A": {"properties": {"b": {"$ref": "#/$defs/B"}}}, "B": {"type": "string"}},
        }

        assert inline_schema(schema) == {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"properties": {"b": {"type": "string"}}}}},
        }

    def test_leaves_a_schema_without_defs_as_it_was(self) -> None:
        schema = {"type": "object", "properties": {"a": {"type": "string", "description": "A"}}}

        assert inline_schema(schema) == schema

    def test_keeps_the_keywords_beside_a_ref(self) -> None:
        inlined = inline_schema(TypeAdapter(ChargeCreated).json_schema())

        assert inlined["properties"]["price_rule"]["description"] == "How it was priced"

    def test_leaves_no_pointer_into_the_removed_defs(self) -> None:
        inlined = inline_schema(TypeAdapter(CatalogEvent).json_schema())

        assert [s for s in strings_in(inlined) if s.startswith("#/$defs/")] == []


class TestTopicsAndTopology:
    def test_every_subscribed_topic_is_declared(self) -> None:
        declared = {t.name: t for t in topics.all_topics()}

        for sub in SUBSCRIPTIONS:
            assert declared.get(sub.topic.name) == sub.topic, sub.group

    def test_every_primary_topic_has_a_dead_letter_twin(self) -> None:
        declared = {t.name: t for t in topics.all_topics()}

        for topic in topics.PRIMARY_TOPICS:
            assert declared[topic.dlq].visibility is topics.Visibility.DEAD_LETTER
            assert topic.dlq == f"{topic.name}.dlq"

    def test_declares_each_topic_once(self) -> None:
        names = Counter(t.name for t in topics.all_topics())

        assert [name for name, n in names.items() if n > 1] == []
        assert len(names) == 2 * len(topics.PRIMARY_TOPICS)

    def test_gives_every_topic_an_explicit_positive_partition_count(self) -> None:
        for topic in topics.all_topics():
            assert type(topic.partitions) is int, topic.name
            assert topic.partitions > 0, topic.name

    def test_names_every_topic_legally_for_kafka(self) -> None:
        legal = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

        for topic in topics.all_topics():
            assert set(topic.name) <= legal, topic.name
            assert len(topic.name) <= 249

    def test_gives_every_subscription_a_unique_group_id(self) -> None:
        groups = Counter(s.group for s in SUBSCRIPTIONS)

        assert [g for g, n in groups.items() if n > 1] == []

    def test_names_a_group_service_dot_purpose(self) -> None:
        assert subscription("rating", "accepted").group == "rating.accepted"
        assert subscription("rating", "accepted").topic is topics.METERING_ACCEPTED

    def test_refuses_an_undeclared_subscription(self) -> None:
        with pytest.raises(KeyError, match=r"rating\.nope is not declared"):
            subscription("rating", "nope")

    def test_lists_a_services_subscriptions(self) -> None:
        assert {s.purpose for s in of_service("rating")} == {"accepted", "catalog", "clock"}

    def test_finds_a_topic_by_name_and_refuses_an_unknown_one(self) -> None:
        assert topics.by_name("billing.usage.v1.dlq").partitions == topics.DLQ_PARTITIONS
        with pytest.raises(KeyError):
            topics.by_name("billing.nope.v1")


class ScriptedProbe(ConsumerLagProbe):
    """Answers `measure` from a script instead of a broker; the last report repeats once it runs out."""

    def __init__(self, *reports: LagReport) -> None:
        super().__init__("unused:9092")
        self.reports = list(reports)
        self.probes = 0

    async def measure(self) -> LagReport:
        report = self.reports[min(self.probes, len(self.reports) - 1)]
        self.probes += 1
        return report


def lag(*, outboxes: dict[str, int | None] | None = None, ends: int = 10, **by_group: int) -> LagReport:
    """A probe's report: lag per group, unrelayed rows per service, and one partition ending at ``ends``."""
    groups = {k.replace("_", "."): v for k, v in by_group.items()}
    return LagReport(
        total=sum(groups.values()),
        by_group=groups,
        outboxes=outboxes if outboxes is not None else {"rating": 0, "invoicing": 0},
        ends=(("rating.charges.v1", 0, ends),),
    )


SETTLED = lag(rating_accepted=0, invoicing_charges=0)
BEHIND = lag(rating_accepted=4, invoicing_charges=0)
FAST = {"interval_s": 0.001, "timeout_s": 5.0}


class TestWaitUntilSettled:
    async def test_returns_after_the_required_number_of_zero_lag_probes(self) -> None:
        probe = ScriptedProbe(SETTLED)

        waited = await probe.wait_until_settled(quiet_probes=3, **FAST)

        assert probe.probes == 3
        assert waited >= 0

    async def test_waits_for_lagging_consumers_to_catch_up(self) -> None:
        probe = ScriptedProbe(BEHIND, BEHIND, SETTLED)

        await probe.wait_until_settled(quiet_probes=2, **FAST)

        assert probe.probes == 4

    async def test_starts_counting_again_after_a_non_zero_probe(self) -> None:
        probe = ScriptedProbe(SETTLED, SETTLED, BEHIND, SETTLED)

        await probe.wait_until_settled(quiet_probes=3, **FAST)

        assert probe.probes == 6

    async def test_raises_naming_only_the_lagging_groups_after_the_timeout(self) -> None:
        probe = ScriptedProbe(SETTLED, BEHIND)

        with pytest.raises(LagNotSettled, match=r"not settled after .*still behind \{'rating\.accepted': 4\}") as exc:
            await probe.wait_until_settled(quiet_probes=3, interval_s=0.001, timeout_s=0.02)

        assert "invoicing.charges" not in str(exc.value)
        assert probe.probes > 1

    async def test_times_out_as_a_timeout_error(self) -> None:
        probe = ScriptedProbe(BEHIND)

        with pytest.raises(TimeoutError):
            await probe.wait_until_settled(quiet_probes=1, interval_s=0.001, timeout_s=0.01)

    async def test_two_quiet_probes_that_saw_different_end_offsets_are_not_settled(self) -> None:
        """Records arrived between them: what they cause may not be in any outbox yet."""
        probe = ScriptedProbe(lag(ends=10), lag(ends=12), lag(ends=12))

        await probe.wait_until_settled(quiet_probes=2, **FAST)

        assert probe.probes == 3

    async def test_a_row_committed_to_an_outbox_and_not_relayed_is_not_settled(self) -> None:
        held = lag(outboxes={"rating": 0, "tax_currency": 1}, rating_accepted=0)
        probe = ScriptedProbe(held, held, SETTLED)

        await probe.wait_until_settled(quiet_probes=2, **FAST)

        assert probe.probes == 4

    async def test_an_outbox_that_cannot_be_read_is_never_taken_for_an_empty_one(self) -> None:
        probe = ScriptedProbe(lag(outboxes={"rating": 0, "tax_currency": None}))

        with pytest.raises(LagNotSettled, match=r"outbox rows not yet relayed \{'tax_currency': None\}") as exc:
            await probe.wait_until_settled(quiet_probes=2, interval_s=0.001, timeout_s=0.02)

        assert exc.value.report.behind() == {"consumer_groups": {}, "outboxes": {"tax_currency": None}}


class TestSettledNow:
    async def test_is_settled_after_two_quiet_probes_that_agree(self) -> None:
        probe = ScriptedProbe(SETTLED)

        assert await probe.settled_now() is None
        assert probe.probes == 2

    async def test_names_what_is_behind_after_one_probe_that_is_not_quiet(self) -> None:
        probe = ScriptedProbe(lag(outboxes={"invoicing": 2}, invoicing_tax=1))

        report = await probe.settled_now()

        assert report is not None
        assert report.behind() == {"consumer_groups": {"invoicing.tax": 1}, "outboxes": {"invoicing": 2}}
        assert probe.probes == 1

    async def test_is_not_settled_when_records_arrived_between_its_two_probes(self) -> None:
        probe = ScriptedProbe(lag(ends=10), lag(ends=11))

        assert await probe.settled_now() is not None
