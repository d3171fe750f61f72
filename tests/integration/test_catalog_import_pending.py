"""`POST /v1/catalog/import` says what it saved pending approval, and why (issue 16): a discount over the
tenant's approval rule is saved, but is not in effect until a manager approves it."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.platform import Platform, Tenant


def a_document(plan_id: uuid.UUID) -> dict[str, Any]:
    """The plan's two discounts: 10 % is under the default 20 % rule, 30 % over it."""
    service_id = uuid.uuid4()
    return {
        "services": [
            {"service_id": str(service_id), "code": f"backup-{service_id.hex[:6]}", "name": "Backup",
             "service_type": "Usage", "default_rate": "0.10", "currency": "GBP", "unit": "GB"},
        ],
        "plans": [
            {"plan_id": str(plan_id), "name": "Backup", "plan_type": "usage-based", "billing_frequency": "monthly",
             "currency": "GBP", "lines": [{"service_id": str(service_id)}]},
        ],
        "discounts": [
            {"discount_id": str(uuid.uuid4()), "name": "Loyalty 10%", "discount_type": "percentage", "value": "10",
             "plan_id": str(plan_id)},
            {"discount_id": str(uuid.uuid4()), "name": "Launch 30%", "discount_type": "percentage", "value": "30",
             "plan_id": str(plan_id)},
        ],
    }  # fmt: skip


async def load(platform: Platform, tenant: Tenant, document: dict[str, Any]) -> dict[str, Any]:
    response = await platform.catalog.post("/v1/catalog/import", json=document, headers=tenant.auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class TestAnImportNamesWhatAwaitsApproval:
    async def test_of_two_discounts_it_names_the_one_over_the_rule_and_why(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.wait_ready(tenant, "catalog", wait_s=15)  # the tenant's default rules have arrived
        document = a_document(uuid.uuid4())
        under, over = document["discounts"]

        loaded = await load(platform, tenant, document)

        assert (loaded["changed"], loaded["unchanged"]) == (4, 0)
        [pending] = loaded["pending_approval"]
        assert (pending["entity_type"], pending["entity_id"]) == ("discount", over["discount_id"])
        assert pending["name"] == "Launch 30%"
        assert pending["approval_status"] == "pending"
        assert (pending["threshold_field"], pending["threshold"], pending["rule_version"]) == ("percentage", "20", 1)
        assert pending["requested_now"] is True
        assert pending["reason"] == (
            f"percentage 30 is above the threshold 20 of approval rule {pending['rule_id']} (version 1)"
        )
        saved = (await platform.catalog.get(f"/v1/discounts/{over['discount_id']}", headers=tenant.auth)).json()
        assert saved["approval_request_id"] == pending["approval_request_id"]
        assert under["discount_id"] not in {p["entity_id"] for p in loaded["pending_approval"]}

    async def test_loading_it_again_still_names_it_with_the_request_it_waits_on(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.wait_ready(tenant, "catalog", wait_s=15)
        document = a_document(uuid.uuid4())
        first = await load(platform, tenant, document)

        again = await load(platform, tenant, document)

        assert (again["changed"], again["unchanged"]) == (0, 4)
        [pending] = again["pending_approval"]
        [earlier] = first["pending_approval"]
        assert pending["entity_id"] == earlier["entity_id"]
        assert pending["approval_request_id"] == earlier["approval_request_id"]
        assert pending["requested_now"] is False
        assert pending["rule_id"] is None
        assert pending["reason"] == (
            f"still waiting for a decision on approval request {earlier['approval_request_id']} (terms unchanged)"
        )
