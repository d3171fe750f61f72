"""Metering's ingestion answers, against the real broker, Postgres and service processes: Kafka and HTTP
batches through one exactly-once path; duplicates, conflicts, malformed and unmapped records; approvals."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from shared.faults import INGEST_AFTER_COMMIT_BEFORE_ANSWER, INGEST_BEFORE_COMMIT
from shared.services import service
from tests.support.platform import Platform, Tenant

MONTH_END = "2026-02-01T00:00:00+00:00"


# -- helpers ------------------------------------------------------------------------------------------
def metering(platform: Platform, tenant: Tenant) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.stack.url(service("metering")), headers=tenant.auth, timeout=120.0)


async def post_batch(platform: Platform, tenant: Tenant, path: str, records: list[Any]) -> list[dict[str, Any]]:
    async with metering(platform, tenant) as api:
        response = await api.post(path, json={"records": records})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def get(platform: Platform, tenant: Tenant, path: str, **params: Any) -> Any:
    async with metering(platform, tenant) as api:
        response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def time_service(platform: Platform, tenant: Tenant, code: str = "helpdesk-hourly") -> str:
    sid = uuid.uuid4()
    await platform.put(
        f"/v1/services/{sid}",
        {
            "service_id": str(sid),
            "code": code,
            "name": "Helpdesk (hourly)",
            "service_type": "Time",
            "default_rate": "90.00",
            "currency": tenant.currency,
            "unit": "hour",
        },
        token=tenant.token,
    )

    async def known() -> bool:  # metering's copy of the catalog may lag the PUT
        query = "SELECT service_type FROM services WHERE service_id = $1"
        return bool(await platform.value_as_tenant("metering", tenant, query, sid) == "Time")

    await platform.wait_for(known, timeout_s=60)
    return code


def time_entry(
    tenant: Tenant, service_ref: str, *, start: str, end: str, entry_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "entry_id": entry_id or f"cw-{uuid.uuid4().hex[:10]}",
        "source": "connectwise",
        "tenant_id": str(tenant.tenant_id),
        "company_ref": tenant.company_ref,
        "service_ref": service_ref,
        "user_ref": "tech.jane",
        "ticket_ref": "T-20931",
        "start_time": start,
        "end_time": end,
    } | extra


async def accepted_messages(platform: Platform, tenant: Tenant, count: int, **kw: Any) -> list[dict[str, Any]]:
    return await platform.messages(
        "metering.accepted.v1", where=lambda d: d["tenant_id"] == str(tenant.tenant_id), count=count, **kw
    )


async def wait_status(platform: Platform, tenant: Tenant, kind: str, source: str, ext: str, status: str) -> Any:
    async def probe() -> Any:
        async with metering(platform, tenant) as api:
            r = await api.get(f"/v1/ingestion/{kind}/{source}/{ext}")
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    return await platform.wait_for(probe, timeout_s=60)


async def audit_rows(platform: Platform, tenant: Tenant, action: str) -> list[Any]:
    return await platform.fetch_as_tenant(
        "metering", tenant, "SELECT actor, after FROM audit_log WHERE action = $1 ORDER BY seq", action
    )


# -- HTTP batches -------------------------------------------------------------------------------------
class TestHttpBatch:
    async def test_every_record_gets_its_own_answer_and_a_resent_batch_is_answered_duplicate(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        good = platform.usage(tenant, event_id="ok-1", quantity="3", note="kept")  # an unknown extra field
        batch = [
            good,
            dict(good),  # the same id, same content, in the same batch
            platform.usage(tenant, event_id="ok-1", quantity="4"),  # the same id, other content
            platform.usage(tenant, event_id="neg", quantity="-1"),
            {k: v for k, v in platform.usage(tenant, event_id="nocompany").items() if k != "company_ref"},
            platform.usage(tenant, event_id="float", quantity=3.5),
            platform.usage(tenant, event_id="naive", occurred_at="2026-01-15T10:00:00"),
            platform.usage(tenant, event_id="gb", unit="GB"),
            platform.usage(tenant, event_id="other-tenant", tenant_id=str(uuid.uuid4())),
            platform.usage(tenant, event_id="who", company_ref="not-yet-a-client"),
        ]

        first = await post_batch(platform, tenant, "/v1/usage:batch", batch)
        again = await post_batch(platform, tenant, "/v1/usage:batch", batch)

        answers = [(r["status"], r.get("state"), r.get("field"), r.get("code")) for r in first]
        assert answers == [
            ("accepted", "accepted", None, None),
            ("duplicate", None, None, None),
            ("conflict", None, "event_id", "conflict"),
            ("rejected", None, "quantity", "negative_quantity"),
            ("rejected", None, "company_ref", "missing_field"),
            ("rejected", None, "quantity", "wrong_type"),
            ("rejected", None, "occurred_at", "timestamp_without_offset"),
            ("rejected", None, "unit", "unit_mismatch"),
            ("rejected", None, "tenant_id", "tenant_mismatch"),
            ("accepted", "unmapped", "company_ref", "unknown_company"),
        ]
        assert [r["status"] for r in again] == [
            "duplicate",
            "duplicate",
            "conflict",
            *(["rejected"] * 6),
            "duplicate",
        ]
        assert first[0]["record_id"] == again[0]["record_id"] == first[1]["record_id"]
        [published] = await accepted_messages(platform, tenant, 1, settle_s=2.0)
        assert (published["event_id"], published["quantity"]) == ("ok-1", "3")

    async def test_the_query_api_shows_status_dead_letters_and_unmapped_records_with_reasons(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await post_batch(
            platform,
            tenant,
            "/v1/usage:batch",
            [
                platform.usage(tenant, event_id="a", quantity="2", extra_field={"x": 1}),
                platform.usage(tenant, event_id="a", quantity="5"),
                platform.usage(tenant, event_id="lost", company_ref="nobody"),
            ],
        )

        status = await get(platform, tenant, "/v1/ingestion/usage/ninjaone/a")
        letters = (await get(platform, tenant, "/v1/dead-letters"))["dead_letters"]
        unmapped = (await get(platform, tenant, "/v1/unmapped"))["records"]

        assert status["status"] == "accepted"
        assert status["record"]["payload"]["extra_field"] == {"x": 1}  # unknown fields are kept
        assert [(d["code"], d["field"]) for d in status["dead_letters"]] == [("conflict", "event_id")]
        assert [(d["external_id"], d["code"]) for d in letters] == [("a", "conflict")]
        assert "different content" in letters[0]["reason"]
        assert [(u["event_id"], u["reason_code"]) for u in unmapped] == [("lost", "unknown_company")]
        assert "'nobody' is not in the catalog yet" in unmapped[0]["reason"]

    async def test_a_batch_needs_a_token_that_may_ingest_and_at_most_1000_records(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering"))) as anonymous:
            unauthenticated = await anonymous.post("/v1/usage:batch", json={"records": []})
        async with metering(platform, tenant) as api:
            too_many = await api.post("/v1/usage:batch", json={"records": [{}] * 1001})

        assert unauthenticated.status_code == 401
        assert too_many.status_code == 413

    async def test_a_dead_letter_redriven_after_its_cause_is_fixed_is_accepted(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        sid = uuid.uuid4()
        service_body = {
            "service_id": str(sid),
            "code": "m365-seat",
            "name": "M365 seat",
            "service_type": "Usage",
            "default_rate": "8.00",
            "currency": tenant.currency,
            "unit": "licence",
        }
        await platform.put(f"/v1/services/{sid}", service_body, token=tenant.token)
        await platform.wait_for(lambda: unit_known(platform, tenant, "licence"))
        seat = platform.usage(tenant, event_id="seat-1", service_ref="m365-seat", unit="seat")
        [refused] = await post_batch(platform, tenant, "/v1/usage:batch", [seat])
        await platform.put(f"/v1/services/{sid}", service_body | {"unit": "seat"}, token=tenant.token)
        await platform.wait_for(lambda: unit_known(platform, tenant, "seat"))
        async with metering(platform, tenant) as api:
            accepted = (await api.post(f"/v1/dead-letters/{refused['dead_letter_id']}/redrive")).json()
        open_letters = (await get(platform, tenant, "/v1/dead-letters"))["dead_letters"]
        status = await get(platform, tenant, "/v1/ingestion/usage/ninjaone/seat-1")

        assert (refused["status"], refused["code"]) == ("rejected", "unit_mismatch")
        assert (accepted["status"], accepted["state"]) == ("accepted", "accepted")
        assert open_letters == []
        assert status["status"] == "accepted"
        assert status["dead_letters"][0]["redrive_result"] == "accepted"
        assert len(await audit_rows(platform, tenant, "dead_letter_redriven")) >= 1


async def unit_known(platform: Platform, tenant: Tenant, unit: str) -> bool:
    """Metering's copy of the catalog has caught up with the service (it may lag the PUT)."""
    query = "SELECT unit FROM services WHERE code = 'm365-seat'"
    return bool(await platform.value_as_tenant("metering", tenant, query) == unit)


# -- Kafka ----------------------------------------------------------------------------------------------
class TestTimeEntriesOverKafka:
    async def test_a_time_entry_is_published_for_rating_with_its_hours_and_a_bad_one_is_dead_lettered(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        code = await time_service(platform, tenant)
        good = time_entry(tenant, code, start="2026-01-15T09:00:00+01:00", end="2026-01-15T10:30:00+01:00")
        backwards = time_entry(tenant, code, start="2026-01-15T10:00:00Z", end="2026-01-15T09:00:00Z")
        key = f"{tenant.tenant_id}:{tenant.company_ref}"
        await platform.publish("billing.time-entries.v1", backwards, key=key)
        await platform.publish("billing.time-entries.v1", good, key=key)

        # generous: on a fresh stack the broker may still be admitting metering.time into its group
        [published] = await accepted_messages(platform, tenant, 1, timeout_s=240)
        [letter] = await platform.dead_letters("billing.time-entries.v1", tenant)
        status = await get(platform, tenant, f"/v1/ingestion/time/connectwise/{backwards['entry_id']}")
        times = await get(platform, tenant, "/v1/time-entries", start="2026-01-01T00:00:00Z", end=MONTH_END)

        # 09:00 to 10:30 is 1.5 hours
        assert (published["record_type"], published["entry_id"], published["hours"]) == (
            "time",
            good["entry_id"],
            "1.5",
        )
        assert published["user_id"] is None  # an unknown technician does not hold the entry
        assert (letter["field"], letter["error_class"]) == ("end_time", "validation_error")
        assert status["status"] == "dead_lettered"
        assert status["dead_letters"][0]["code"] == "end_not_after_start"
        assert times["billable_hours"] == "1.5"


class TestUnmapped:
    async def test_an_unmapped_record_is_billed_once_its_mapping_arrives(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, source="datto", company_ref="datto-77", quantity="4"))
        waiting = await platform.wait_for(lambda: unmapped_of(platform, tenant))

        company = {
            "company_id": str(tenant.company_id),
            "company_ref": tenant.company_ref,
            "name": "Acme Dental",
            "billing_email": "ap@acme.example",
            "region": "GB",
            "currency": tenant.currency,
            "payment_terms_days": 30,
            "billing_anchor": "2026-01-01",
            "refs": [
                {"source": "ninjaone", "ref": f"ninja-{tenant.company_ref}"},
                {"source": "datto", "ref": "datto-77"},
            ],
        }
        await platform.put(f"/v1/companies/{tenant.company_id}", company, token=tenant.token)
        await platform.wait_for(lambda: no_unmapped(platform, tenant))
        await platform.advance_clock(tenant, MONTH_END)
        [event] = await platform.invoices(tenant)

        assert waiting[0]["reason_code"] == "unknown_company"
        [line] = event["invoice"]["lines"]
        assert line["quantity"] == "4"
        assert event["invoice"]["subtotal"] == "50.00"  # 4 devices x 12.50
        assert event["invoice"]["total"] == "60.00"  # + VAT 20 % of 50.00 = 10.00
        assert len(await audit_rows(platform, tenant, "usage_mapped")) == 1


async def unmapped_of(platform: Platform, tenant: Tenant) -> list[Any]:
    async with metering(platform, tenant) as api:
        records: list[Any] = (await api.get("/v1/unmapped")).json()["records"]
    return records


async def no_unmapped(platform: Platform, tenant: Tenant) -> bool:
    return not await unmapped_of(platform, tenant)


# -- approvals ------------------------------------------------------------------------------------------
async def on_the_plan(platform: Platform, tenant: Tenant, code: str) -> None:
    """Add the Time service ``code`` to the tenant's plan, at its default rate."""
    services = (await platform.catalog.get("/v1/services", params={"code": code}, headers=tenant.auth)).json()
    plan = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"][0]
    lines = [*plan["lines"], {"service_id": services["items"][0]["service_id"]}]
    await platform.put(f"/v1/plans/{plan['plan_id']}", plan | {"lines": lines}, token=tenant.token)


async def metering_holds_rules(platform: Platform, tenant: Tenant, *, version: int = 1) -> None:
    """Wait until metering holds the tenant's rule set (approvals publishes a new tenant's defaults as 1)."""

    async def held() -> bool:
        async with metering(platform, tenant) as api:
            response = await api.get("/v1/approval-rules")
        assert response.status_code in (200, 404), response.text  # 404: not received yet
        return response.status_code == 200 and response.json()["version"] >= version

    await platform.wait_for(held, timeout_s=60)


async def waiting_request(platform: Platform, token: str, tenant: Tenant, entry_id: str) -> dict[str, Any]:
    """The approval request for a held time entry, once the approvals service has opened it."""

    async def found() -> dict[str, Any] | None:
        response = await platform.approvals.get(
            "/v1/approvals", params={"item_type": "time_entry"}, headers={"Authorization": f"Bearer {token}"}
        )
        items = [r for r in response.json()["items"] if r["details"].get("entry_id") == entry_id]
        return items[0] if items else None

    result: dict[str, Any] = await platform.wait_for(found, timeout_s=60)
    return result


async def decide(platform: Platform, token: str, request_id: str, verb: str, comment: str) -> None:
    response = await platform.approvals.post(
        f"/v1/approvals/{request_id}/{verb}", json={"comment": comment}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text


class TestApprovals:
    """Seed 000: time entries exceeding a certain duration require approval before billing, and approval
    processes prevent unapproved data from affecting billing. The approvals service runs for real: its
    default rule holds time entries over 8 hours, and a billing manager decides through its API."""

    async def test_held_time_entries_reach_rating_only_once_approved_and_a_rejected_one_never(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        code = await time_service(platform, tenant)
        await on_the_plan(platform, tenant, code)
        manager_id, manager = await platform.add_user(tenant, "billing_manager")
        await metering_holds_rules(platform, tenant)
        long_day = time_entry(tenant, code, entry_id="long", start="2026-01-12T08:00:00Z", end="2026-01-12T17:30:00Z")
        longer = time_entry(tenant, code, entry_id="longer", start="2026-01-13T08:00:00Z", end="2026-01-13T18:00:00Z")
        exactly_8 = time_entry(tenant, code, entry_id="eight", start="2026-01-14T08:00:00Z", end="2026-01-14T16:00:00Z")
        answers = await post_batch(platform, tenant, "/v1/time-entries:batch", [long_day, longer, exactly_8])

        long_request = await waiting_request(platform, manager, tenant, "long")
        longer_request = await waiting_request(platform, manager, tenant, "longer")
        held = (await get(platform, tenant, "/v1/held"))["records"]
        before_decisions = await accepted_messages(platform, tenant, 1, settle_s=2.0)

        await decide(platform, manager, long_request["request_id"], "approve", "Onsite day")
        await decide(platform, manager, longer_request["request_id"], "reject", "Not agreed with the client")
        await wait_status(platform, tenant, "time", "connectwise", "longer", "rejected")
        after = await accepted_messages(platform, tenant, 2, settle_s=2.0)
        long_status = await get(platform, tenant, "/v1/ingestion/time/connectwise/long")
        await platform.advance_clock(tenant, MONTH_END)
        [event] = await platform.invoices(tenant, settle_s=1.0)

        # 9.5 h and 10 h are above 8 h; exactly 8 h is not (strictly greater holds)
        assert [(a["state"], a.get("code")) for a in answers] == [
            ("held", "approval_required"),
            ("held", "approval_required"),
            ("accepted", None),
        ]
        # metering answers with the very rule set approvals publishes (GET /v1/approval-rules on both)
        copy = await get(platform, tenant, "/v1/approval-rules")
        published = (await platform.approvals.get("/v1/approval-rules", headers=tenant.auth)).json()
        assert copy["version"] == published["version"]
        assert {r["rule_id"] for r in copy["rules"]} == {r["rule_id"] for r in published["rules"]}
        assert (long_request["trigger_field"], long_request["trigger_value"]) == ("hours", "9.5")
        assert (longer_request["trigger_field"], longer_request["trigger_value"]) == ("hours", "10")
        assert long_request["waiting_for_roles"] == ["billing_manager", "approver"]
        assert {h["entry_id"] for h in held} == {"long", "longer"}
        assert [m["entry_id"] for m in before_decisions] == ["eight"]
        actor = f"user:{manager_id}"
        assert sorted((m["entry_id"], m.get("approved_by")) for m in after) == [("eight", None), ("long", actor)]
        assert long_status["status"] == "accepted"
        assert [a["actor"] for a in await audit_rows(platform, tenant, "approval_rejected")] == [actor]
        # billed on one line: 8 h + the approved 9.5 h = 17.5 h x 90.00 = 1575.00; the rejected 10 h never
        times = [(ln["quantity"], ln["amount"]) for ln in event["invoice"]["lines"] if ln["kind"] == "time"]
        assert times == [("17.5", "1575.00")]

    async def test_held_time_is_never_invoiced_until_approved(self, platform: Platform, tenant: Tenant) -> None:
        rule = {
            "item_type": "time_entry",
            "threshold_field": "hours",
            "threshold": "0",
            "steps": [{"step": 1, "roles": ["billing_manager"]}],
        }
        changed = await platform.approvals.put(f"/v1/approval-rules/{uuid.uuid4()}", json=rule, headers=tenant.auth)
        assert changed.status_code == 200, changed.text
        await metering_holds_rules(platform, tenant, version=2)  # the defaults, then this rule
        code = await time_service(platform, tenant)
        await platform.send_usage(tenant, platform.usage(tenant, quantity="2"))  # usage is not gated here
        hour = time_entry(tenant, code, start="2026-01-12T08:00:00Z", end="2026-01-12T09:00:00Z")
        [answer] = await post_batch(platform, tenant, "/v1/time-entries:batch", [hour])
        await platform.advance_clock(tenant, MONTH_END)
        [event] = await platform.invoices(tenant, settle_s=1.0)
        published = await accepted_messages(platform, tenant, 1, settle_s=1.0)

        assert answer["state"] == "held"
        assert [line["kind"] for line in event["invoice"]["lines"]] == ["usage"]
        assert [m["record_type"] for m in published] == ["usage"]  # the held hour never went to rating


# -- partitions, crashes ----------------------------------------------------------------------------------
class TestPartitions:
    async def test_a_month_far_ahead_gets_its_partition_and_ids_stay_unique_across_months(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        far = platform.usage(tenant, event_id="far", occurred_at="2031-07-04T12:00:00Z")
        moved = platform.usage(tenant, event_id="far", occurred_at="2026-01-04T12:00:00Z")

        answers = await post_batch(platform, tenant, "/v1/usage:batch", [far])
        again = await post_batch(platform, tenant, "/v1/usage:batch", [moved])
        conn = await platform.connect("metering", admin=True)
        try:
            partition = await conn.fetchval("SELECT to_regclass('metering.usage_records_203107')::text")
        finally:
            await conn.close()

        assert answers[0]["status"] == "accepted"
        assert partition == "metering.usage_records_203107"
        assert again[0]["status"] == "conflict"


@pytest.mark.slow
class TestCrashes:
    async def _restart(self, platform: Platform, fault: str | None) -> None:
        stack = platform.stack
        stack.stop_service("metering")
        stack.start_service(service("metering"), extra_env={"MSP_FAULT_POINT": fault} if fault else None)
        stack.wait_ready(["metering"])

    async def test_a_batch_resent_after_a_kill_mid_batch_is_stored_once_and_answered_as_documented(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        records = [platform.usage(tenant, event_id=f"b-{i}", quantity="1") for i in range(40)]
        stored_first = await post_batch(platform, tenant, "/v1/usage:batch", records[:10])

        await self._restart(platform, INGEST_BEFORE_COMMIT)
        with pytest.raises(httpx.TransportError):
            await post_batch(platform, tenant, "/v1/usage:batch", records)  # killed before its commit
        await asyncio.to_thread(platform.stack.processes["metering"].wait, 60)
        await self._restart(platform, INGEST_AFTER_COMMIT_BEFORE_ANSWER)
        with pytest.raises(httpx.TransportError):
            await post_batch(platform, tenant, "/v1/usage:batch", records)  # killed after its commit
        await asyncio.to_thread(platform.stack.processes["metering"].wait, 60)
        await self._restart(platform, None)
        resent = await post_batch(platform, tenant, "/v1/usage:batch", records)

        published = await accepted_messages(platform, tenant, 40, settle_s=2.0)
        rows = await platform.value_as_tenant("metering", tenant, "SELECT count(*) FROM usage_records")
        await platform.advance_clock(tenant, MONTH_END)
        [event] = await platform.invoices(tenant, settle_s=1.0)

        assert {r["status"] for r in stored_first} == {"accepted"}
        assert {r["status"] for r in resent} == {"duplicate"}  # the second attempt committed all 40
        assert rows == 40
        assert len({m["record_id"] for m in published}) == 40
        assert event["invoice"]["lines"][0]["quantity"] == "40"  # 40 records of 1 device, none counted twice


# -- audit --------------------------------------------------------------------------------------------------
class TestEveryMutatingRouteIsAudited:
    async def test_each_post_route_in_the_openapi_document_writes_an_audit_row_naming_the_caller(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        [refused] = await post_batch(platform, tenant, "/v1/usage:batch", [platform.usage(tenant, quantity="-2")])
        calls = {
            "/v1/usage:batch": {"records": [platform.usage(tenant)]},
            "/v1/time-entries:batch": {
                "records": [time_entry(tenant, "nope", start="2026-01-02T09:00:00Z", end="2026-01-02T10:00:00Z")]
            },
            "/v1/dead-letters/{dead_letter_id}/redrive": None,
            "/v1/unmapped/redrive": None,
        }
        async with metering(platform, tenant) as api:
            document = (await api.get("/openapi.json")).json()
            posts = {path for path, ops in document["paths"].items() if {"post", "put", "patch", "delete"} & set(ops)}
            audited = {}
            for path in sorted(posts):
                before = await platform.value_as_tenant("metering", tenant, "SELECT count(*) FROM audit_log")
                url = path.replace("{dead_letter_id}", refused["dead_letter_id"])
                response = await api.post(url, json=calls[path])
                assert response.status_code == 200, response.text
                actors = await platform.fetch_as_tenant(
                    "metering", tenant, "SELECT actor FROM audit_log ORDER BY seq OFFSET $1", before
                )
                audited[path] = {a["actor"] for a in actors}

        assert posts == set(calls)  # a new mutating route needs a call here, and an audit row
        assert all(len(actors) == 1 and next(iter(actors)).startswith("user:") for actors in audited.values())
