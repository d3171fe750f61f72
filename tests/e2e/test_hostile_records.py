"""One hostile record must never stop a pipeline (issue 17): records nested thousands deep, a quarter megabyte of
invalid bytes, a record over its topic's limit, and an outbox row the broker will never take — each published
between good records, against the real broker, Postgres and services. Every bad one is dead-lettered with its
reason, every good one is billed once, and the pipeline flows on."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx

from shared.services import service
from tests.e2e.test_metering_ingestion import on_the_plan, time_entry, time_service
from tests.support.platform import Platform, Tenant

MONTH_END = "2026-02-01T00:00:00+00:00"


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


async def letter_for(platform: Platform, topic: str, payload: bytes) -> dict[str, Any]:
    """The dead letter of exactly this payload (matched by its hash), whatever tenant it was kept under."""
    digest = hashlib.sha256(payload).hexdigest()
    [letter] = await platform.messages(f"{topic}.dlq", where=lambda d: d.get("payload_sha256") == digest, timeout_s=60)
    return letter


async def billed_quantity(platform: Platform, tenant: Tenant) -> str:
    await platform.advance_clock(tenant, MONTH_END)
    [event] = await platform.invoices(tenant, settle_s=1.0)
    [line] = event["invoice"]["lines"]
    quantity: str = line["quantity"]
    return quantity


class TestRecordsThatCannotBeRead:
    async def test_a_time_entry_nested_1000_deep_is_dead_lettered_too_deep_and_the_partition_flows(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        entry = {"entry_id": "deep-1", "source": "halopsa", "tenant_id": str(tenant.tenant_id),
                 "company_ref": tenant.company_ref, "service_ref": "helpdesk", "user_ref": "tech.jane",
                 "start_time": "2026-01-05T09:00:00Z", "end_time": "2026-01-05T10:00:00Z"}  # fmt: skip
        raw = json.dumps(entry)[:-1] + ', "extra": ' + nested(1000) + "}"
        key = f"{tenant.tenant_id}:{tenant.company_ref}"
        await platform.send_usage(tenant, platform.usage(tenant, quantity="1"))
        await platform.publish("billing.time-entries.v1", raw.encode(), key=key)
        await platform.send_usage(tenant, platform.usage(tenant, quantity="2"))

        letter = await letter_for(platform, "billing.time-entries.v1", raw.encode())
        assert (letter["error_class"], letter["tenant_id"]) == ("too_deep", None)  # not read, so no tenant
        assert letter["reason"] == "payload nests deeper than 32 levels"
        assert await billed_quantity(platform, tenant) == "3"  # both good records, once each

    async def test_a_usage_record_40000_deep_is_dead_lettered_under_no_tenant(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        deep = deep_object(40_000).encode()  # 240,001 bytes: under the topic's limit, so it is read
        await platform.publish("billing.usage.v1", deep, key="hostile")
        await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))

        letter = await letter_for(platform, "billing.usage.v1", deep)
        assert (letter["error_class"], letter["tenant_id"], letter["payload_bytes"]) == ("too_deep", None, 240_001)
        assert await billed_quantity(platform, tenant) == "4"

    async def test_a_quarter_megabyte_of_invalid_bytes_gets_a_bounded_dead_letter_and_the_relay_flows_on(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        garbage = b"\xff" * 250_000  # escaped, 1.25 MB: once more than the producer could send
        await platform.publish("billing.usage.v1", garbage, key=f"{tenant.tenant_id}:{tenant.company_ref}")
        await platform.send_usage(tenant, platform.usage(tenant, quantity="5"))

        letter = await letter_for(platform, "billing.usage.v1", garbage)
        assert letter["error_class"] == "invalid_json"
        assert (letter["payload_bytes"], letter["payload_truncated"]) == (250_000, True)
        assert len(letter["payload"]) == 16 * 1024  # an excerpt: "\\xff" repeated
        assert await billed_quantity(platform, tenant) == "5"  # metering's relay published what came after

    async def test_a_record_over_its_topics_limit_is_dead_lettered_whole_as_too_large(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        record = platform.usage(tenant, quantity="6") | {"attributes": {"blob": "x" * 300_000}}
        await platform.send_usage(tenant, record)
        await platform.send_usage(tenant, platform.usage(tenant, quantity="7"))

        letter = await letter_for(platform, "billing.usage.v1", json.dumps(record).encode())
        assert letter["error_class"] == "too_large"
        assert letter["reason"].endswith("over the topic's limit of 262144")
        assert await billed_quantity(platform, tenant) == "7"


class TestAnOutboxRowTheBrokerWillNeverTake:
    async def test_is_set_aside_with_its_reason_and_the_rows_behind_it_are_published(self, platform: Platform) -> None:
        marker = str(uuid.uuid4())
        conn = await platform.connect("metering", owner=True)
        try:
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', '00000000-0000-0000-0000-000000000000', true)")
                for payload in (b"x" * (9 * 1024 * 1024), json.dumps({"marker": marker}).encode()):
                    await conn.execute(
                        """INSERT INTO outbox (tenant_id, message_id, topic, key, payload) VALUES
                           ('00000000-0000-0000-0000-000000000000', $1, 'billing.usage.v1.dlq', 'relay-spec', $2)""",
                        uuid.uuid4(),
                        payload,
                    )
                await conn.execute("SELECT pg_notify('metering_outbox', '')")
        finally:
            await conn.close()

        found = await platform.messages("billing.usage.v1.dlq", where=lambda d: d.get("marker") == marker, timeout_s=60)
        assert len(found) == 1  # the row behind the one the broker refuses went out
        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=30) as metering:
            health: dict[str, Any] = (await metering.get("/health/outbox")).json()
        assert health["set_aside"] >= 1
        assert health["pending"] == 0


class TestRecordsOutsideTheAcceptedWindow:
    async def test_are_rejected_out_of_window_and_never_reported_accepted(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.advance_clock(tenant, "2026-01-10T00:00:00+00:00")  # the sandbox's billing time
        far_future = platform.usage(tenant, quantity="1", occurred_at="2150-06-01T00:00:00+00:00")
        too_old = platform.usage(tenant, quantity="1", occurred_at="2023-06-01T00:00:00+00:00")
        too_soon = platform.usage(tenant, quantity="1", occurred_at="2026-03-01T00:00:00+00:00")  # 50 days ahead
        inside = platform.usage(tenant, quantity="8", occurred_at="2026-01-20T00:00:00+00:00")
        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=60) as metering:

            async def clock_known() -> bool:  # metering keeps the tenant's billing time from billing.clock.v1
                answer = await metering.post("/v1/usage:batch", json={"records": [too_soon]}, headers=tenant.auth)
                return answer.json()["results"][0].get("code") == "out_of_window"

            await platform.wait_for(clock_known, timeout_s=60)
            answer = await metering.post(
                "/v1/usage:batch", json={"records": [far_future, too_old, inside]}, headers=tenant.auth
            )
        results = answer.json()["results"]
        assert [(r["status"], r.get("code"), r.get("field")) for r in results] == [
            ("rejected", "out_of_window", "occurred_at"),
            ("rejected", "out_of_window", "occurred_at"),
            ("accepted", None, None),
        ]
        assert await billed_quantity(platform, tenant) == "8"


def corpus(tenant: Tenant, good: dict[str, Any]) -> list[bytes]:
    """Hostile records for billing.usage.v1, each with a reason metering must give (issue 17's corpus)."""
    base = dict(good)
    return [
        nested(5_000).encode(),  # deep
        b"\xff\xfe" * 1000,  # invalid bytes
        json.dumps(base | {"event_id": "nul-1", "company_ref": "acme\u0000"}).encode(),  # NUL
        json.dumps(base | {"event_id": "sur-1", "attributes": {"x": "\ud800"}}).encode(),  # lone surrogate
        json.dumps(base | {"event_id": "big-1", "quantity": "9" * 5000}).encode(),  # a 5,000-digit amount
        json.dumps(base | {"event_id": "yr1", "occurred_at": "0001-01-01T00:00:00+14:00"}).encode(),  # year 1
        json.dumps(base | {"event_id": "uni-1", "quantity": "\u0663"}).encode(),  # an Arabic-Indic digit
        json.dumps(base | {"event_id": "num-1", "quantity": 3}).encode(),  # a JSON number
        b"[]",
        b"",
    ]


class TestAHostileCorpusBetweenGoodRecords:
    async def test_every_bad_record_is_dead_lettered_every_good_one_billed_once_and_the_platform_settles(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        key = f"{tenant.tenant_id}:{tenant.company_ref}"
        good = [platform.usage(tenant, quantity="1") for _ in range(11)]
        bad = corpus(tenant, good[0] | {"event_id": "template"})
        for i, record in enumerate(bad):
            await platform.send_usage(tenant, good[i])
            await platform.publish("billing.usage.v1", record, key=key)
        await platform.send_usage(tenant, good[-1])

        letters = [await letter_for(platform, "billing.usage.v1", record) for record in bad]
        assert [d["error_class"] for d in letters] == [
            "too_deep",
            "invalid_json",
            "validation_error",  # NUL: unstorable_text
            "validation_error",  # surrogate: unstorable_text
            "validation_error",  # 5,000 digits: decimal_too_large
            "validation_error",  # year 1: out of range
            "validation_error",  # not an ASCII digit
            "validation_error",  # a number for a decimal
            "validation_error",  # not an object
            "invalid_json",
        ]
        assert "company_ref" in letters[2]["reason"]
        answer = await platform.catalog.post(
            "/v1/test-clock/advance", json={"to": MONTH_END, "settle": True}, headers=tenant.auth
        )
        assert (answer.status_code, answer.json()["settled"]) == (200, True)  # lag back to zero, outboxes empty
        [event] = await platform.invoices(tenant, settle_s=1.0)
        [line] = event["invoice"]["lines"]
        assert line["quantity"] == "11"  # every good record once
        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=30) as metering:
            assert (await metering.get("/health/ready")).status_code == 200


class TestAHostileTimeEntryCorpus:
    async def test_every_bad_entry_is_dead_lettered_with_its_reason_and_good_ones_are_billed_once(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        code = await time_service(platform, tenant)
        await on_the_plan(platform, tenant, code)
        key = f"{tenant.tenant_id}:{tenant.company_ref}"
        good = [
            time_entry(tenant, code, start=f"2026-01-{10 + i:02d}T09:00:00Z", end=f"2026-01-{10 + i:02d}T10:00:00Z")
            for i in range(6)
        ]
        template = good[0] | {"entry_id": "template"}
        bad = [
            (json.dumps(template)[:-1] + ', "extra": ' + nested(2_000) + "}").encode(),  # deep
            json.dumps(template | {"entry_id": "nul", "notes": "a\u0000b"}).encode(),  # NUL
            json.dumps(template | {"entry_id": "yes", "billable": "yes"}).encode(),  # not a boolean
            json.dumps(template | {"entry_id": "back", "end_time": "2026-01-10T08:00:00Z"}).encode(),  # ends first
            json.dumps(template | {"entry_id": "yr", "start_time": "9999-12-31T23:00:00-14:00"}).encode(),  # overflow
        ]
        for i, record in enumerate(bad):
            await platform.publish("billing.time-entries.v1", good[i], key=key)
            await platform.publish("billing.time-entries.v1", record, key=key)
        await platform.publish("billing.time-entries.v1", good[-1], key=key)

        letters = [await letter_for(platform, "billing.time-entries.v1", record) for record in bad]
        assert [d["error_class"] for d in letters] == ["too_deep", *["validation_error"] * 4]
        assert [d["field"] for d in letters[1:]] == ["notes", "billable", "end_time", "start_time"]
        answer = await platform.catalog.post(
            "/v1/test-clock/advance", json={"to": MONTH_END, "settle": True}, headers=tenant.auth
        )
        assert answer.json()["settled"] is True
        [event] = await platform.invoices(tenant, settle_s=1.0)
        hours = [ln["quantity"] for ln in event["invoice"]["lines"] if ln["kind"] == "time"]
        assert hours == ["6"]  # six good hours, each once
