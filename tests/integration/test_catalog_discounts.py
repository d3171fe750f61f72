"""Discounts and their approval, against the running platform (seed 000: "Discounts and Promotions",
"Approval Workflows"): catalog's side of the exchange. Rule sets and decisions are published here as the
approvals service publishes them, to pin down exactly what catalog does with each; the approvals service
itself runs too (it gives every new tenant its default rules as set version 1, so the sets here start
above that). tests/integration/test_approvals.py runs the whole exchange through the approvals API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import rows_as_tenant
from tests.support.platform import Platform, Tenant

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC).isoformat()


async def the_plan_id(platform: Platform, tenant: Tenant) -> str:
    listing = await platform.catalog.get("/v1/plans", headers=tenant.auth)
    plan_id: str = listing.json()["items"][0]["plan_id"]
    return plan_id


def discount_body(plan_id: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "discount_id": str(uuid.uuid4()),
        "name": f"{value}% off",
        "discount_type": "percentage",
        "value": value,
        "plan_id": plan_id,
    } | extra


async def save(platform: Platform, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    saved = await platform.put(f"/v1/discounts/{body['discount_id']}", body, token=tenant.token)
    state: dict[str, Any] = saved["event"]["state"]
    return state


async def read(platform: Platform, tenant: Tenant, discount_id: str) -> dict[str, Any]:
    response = await platform.catalog.get(f"/v1/discounts/{discount_id}", headers=tenant.auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def catalog_rows(platform: Platform, tenant: Tenant, query: str) -> list[Any]:
    conn = await platform.connect("catalog")
    try:
        return await rows_as_tenant(conn, tenant.tenant_id, query)
    finally:
        await conn.close()


async def managers_approve_discounts_over(
    platform: Platform, tenant: Tenant, percent: str, *, version: int = 2
) -> None:
    """The approvals service publishes the tenant's rules; wait until catalog holds this version (the
    approvals service's own defaults are version 1)."""
    rule_set = {
        "tenant_id": str(tenant.tenant_id),
        "version": version,
        "occurred_at": NOW,
        "rules": [
            {
                "rule_id": str(uuid.uuid4()),
                "tenant_id": str(tenant.tenant_id),
                "item_type": "discount",
                "threshold_field": "percentage",
                "threshold": percent,
                "steps": [{"step": 1, "roles": ["billing_manager"], "timeout_hours": 48, "on_timeout": "reject"}],
                "version": 1,
                "updated_at": NOW,
            }
        ],
    }
    await platform.publish("approvals.rules.v1", rule_set, key=str(tenant.tenant_id))

    async def held() -> bool:
        rows = await catalog_rows(platform, tenant, "SELECT version FROM approval_rules")
        return bool(rows) and rows[0]["version"] >= version

    await platform.wait_for(held, timeout_s=60)


async def request_for(platform: Platform, tenant: Tenant, discount_id: str, *, count: int = 1) -> list[dict[str, Any]]:
    return await platform.messages(
        "approvals.requests.v1",
        where=lambda d: d["tenant_id"] == str(tenant.tenant_id) and d["item_id"] == discount_id,
        count=count,
    )


async def decide(platform: Platform, tenant: Tenant, request: dict[str, Any], outcome: str) -> None:
    decision = {
        "decision_id": str(uuid.uuid4()),
        "request_id": request["request_id"],
        "tenant_id": str(tenant.tenant_id),
        "item_type": "discount",
        "item_id": request["item_id"],
        "outcome": outcome,
        "decided_by": "mgr.omar",
        "reason": "agreed at the quarterly review",
        "decided_at": NOW,
        "step": 1,
    }
    await platform.publish("approvals.decisions.v1", decision, key=f"{tenant.tenant_id}:discount:{request['item_id']}")


async def status_becomes(platform: Platform, tenant: Tenant, discount_id: str, status: str) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        found = await read(platform, tenant, discount_id)
        return found if found["approval_status"] == status else None

    result: dict[str, Any] = await platform.wait_for(settled, timeout_s=60)
    return result


class TestDiscountsOverACertainValueRequireManagerialApproval:
    async def test_a_discount_over_the_threshold_waits_for_a_manager_and_is_then_in_effect(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await managers_approve_discounts_over(platform, tenant, "20")
        plan_id = await the_plan_id(platform, tenant)

        saved = await save(platform, tenant, discount_body(plan_id, "50"))
        [request] = await request_for(platform, tenant, saved["discount_id"])

        assert saved["approval_status"] == "pending"
        assert request["request_id"] == saved["approval_request_id"]
        assert (request["item_type"], request["trigger_field"], request["trigger_value"]) == (
            "discount",
            "percentage",
            "50",
        )
        assert request["requesting_service"] == "catalog"
        assert request["requested_by"]
        assert "50%" in request["summary"]

        await decide(platform, tenant, request, "approved")

        approved = await status_becomes(platform, tenant, saved["discount_id"], "approved")
        assert approved["approval_request_id"] == request["request_id"]
        audited = await catalog_rows(
            platform, tenant, "SELECT actor, action FROM audit_log WHERE entity_type = 'discount' ORDER BY seq"
        )
        assert [(a["actor"], a["action"]) for a in audited][-1] == ("mgr.omar", "approval_approved")
        events = await platform.messages(
            "catalog.events.v1",
            where=lambda d: d["entity_id"] == saved["discount_id"] and d["state"]["approval_status"] == "approved",
        )
        assert events[0]["entity_type"] == "discount"

    async def test_a_rejected_discount_stays_out_of_effect(self, platform: Platform, tenant: Tenant) -> None:
        await managers_approve_discounts_over(platform, tenant, "20")
        saved = await save(platform, tenant, discount_body(await the_plan_id(platform, tenant), "75"))
        [request] = await request_for(platform, tenant, saved["discount_id"])

        await decide(platform, tenant, request, "rejected")

        rejected = await status_becomes(platform, tenant, saved["discount_id"], "rejected")
        again = await platform.catalog.put(
            f"/v1/discounts/{saved['discount_id']}", json={**rejected, "name": "renamed"}, headers=tenant.auth
        )
        assert again.json()["event"]["state"]["approval_status"] == "rejected"

    async def test_a_discount_under_the_threshold_is_approved_at_once(self, platform: Platform, tenant: Tenant) -> None:
        await managers_approve_discounts_over(platform, tenant, "20")

        saved = await save(platform, tenant, discount_body(await the_plan_id(platform, tenant), "5"))

        assert saved["approval_status"] == "approved"
        assert saved["approval_request_id"] is None

    async def test_raising_an_approved_discount_over_the_threshold_asks_again(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await managers_approve_discounts_over(platform, tenant, "20")
        body = discount_body(await the_plan_id(platform, tenant), "10")
        await save(platform, tenant, body)

        raised = await save(platform, tenant, body | {"value": "40"})
        [request] = await request_for(platform, tenant, body["discount_id"])

        assert raised["approval_status"] == "pending"
        assert request["request_id"] == raised["approval_request_id"]

    async def test_a_newer_rule_set_replaces_the_held_one_and_an_older_one_does_not(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await managers_approve_discounts_over(platform, tenant, "20", version=3)
        await managers_approve_discounts_over(platform, tenant, "60", version=2)  # late, older: ignored

        async def all_consumed() -> bool:
            # approvals' defaults (version 1), then ours
            return len(await catalog_rows(platform, tenant, "SELECT 1 FROM inbox WHERE consumer = 'rules'")) == 3

        await platform.wait_for(all_consumed, timeout_s=60)
        plan_id = await the_plan_id(platform, tenant)

        assert (await save(platform, tenant, discount_body(plan_id, "30")))["approval_status"] == "pending"

        await managers_approve_discounts_over(platform, tenant, "60", version=4)
        assert (await save(platform, tenant, discount_body(plan_id, "30")))["approval_status"] == "approved"


class TestWhatTheCatalogChecks:
    async def test_a_client_cannot_set_the_approval_status(self, platform: Platform, tenant: Tenant) -> None:
        await managers_approve_discounts_over(platform, tenant, "20")

        saved = await save(
            platform, tenant, discount_body(await the_plan_id(platform, tenant), "90", approval_status="approved")
        )

        assert saved["approval_status"] == "pending"

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"value": "120"}, "value"),
            ({"discount_type": "fixed_amount", "value": "25.00"}, "currency"),
            ({"valid_from": "2026-03-01", "valid_to": "2026-02-01"}, "valid_to"),
            ({"plan_id": None}, "plan_id"),
        ],
    )
    async def test_refusals_name_the_field(
        self, platform: Platform, tenant: Tenant, extra: dict[str, Any], field: str
    ) -> None:
        body = discount_body(await the_plan_id(platform, tenant), "10") | extra

        response = await platform.catalog.put(f"/v1/discounts/{body['discount_id']}", json=body, headers=tenant.auth)

        assert response.status_code == 422, response.text
        assert [e["loc"][-1] for e in response.json()["detail"]] == [field]

    async def test_a_client_specific_discount_on_a_plan_is_kept_and_listed(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        plan_id = await the_plan_id(platform, tenant)
        body = discount_body(plan_id, "15", company_id=str(tenant.company_id), valid_from="2026-01-01")

        await save(platform, tenant, body)
        listing = await platform.catalog.get(
            "/v1/discounts", params={"company_id": str(tenant.company_id)}, headers=tenant.auth
        )
        deleting_the_plan = await platform.catalog.delete(f"/v1/plans/{plan_id}", headers=tenant.auth)

        assert [d["discount_id"] for d in listing.json()["items"]] == [body["discount_id"]]
        assert deleting_the_plan.status_code == 409
