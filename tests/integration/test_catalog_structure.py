"""Bundles, service dependencies, assignment scope and client status, against the running platform."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.integration.conftest import rows_as_tenant
from tests.support.platform import Platform, Tenant


async def a_service(platform: Platform, tenant: Tenant, code: str, *requires: str) -> str:
    service_id = str(uuid.uuid4())
    body = {
        "service_id": service_id,
        "code": f"{code}-{service_id[:6]}",
        "name": code,
        "service_type": "Fixed",
        "default_rate": "10.00",
        "currency": tenant.currency,
        "unit": "device",
        "requires": list(requires),
    }
    await platform.put(f"/v1/services/{service_id}", body, token=tenant.token)
    return service_id


BUCKET = {"hours": "20", "period": "monthly", "overage_rate": "110.00", "rollover": {"policy": "none"}}


def plan_body(plan_id: str, lines: list[dict[str, Any]], *, plan_type: str = "fixed") -> dict[str, Any]:
    body: dict[str, Any] = {
        "plan_id": plan_id,
        "name": f"{plan_type} plan",
        "plan_type": plan_type,
        "billing_frequency": "monthly",
        "currency": "GBP",
        "lines": lines,
    }
    if plan_type == "bucket":
        body["bucket"] = BUCKET  # a bucket plan needs its bucket definition
    return body


async def a_plan(platform: Platform, tenant: Tenant, *service_ids: str, plan_type: str = "fixed") -> dict[str, Any]:
    plan_id = str(uuid.uuid4())
    body = plan_body(plan_id, [{"service_id": s} for s in service_ids], plan_type=plan_type)
    saved = await platform.put(f"/v1/plans/{plan_id}", body, token=tenant.token)
    state: dict[str, Any] = saved["event"]["state"]
    return state


def assignment_body(tenant: Tenant, plan_id: str, start: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    assignment_id = str(uuid.uuid4())
    body = {
        "assignment_id": assignment_id,
        "company_id": str(tenant.company_id),
        "plan_id": plan_id,
        "start_date": start,
    } | extra
    return assignment_id, body


async def put(platform: Platform, tenant: Tenant, path: str, body: dict[str, Any]) -> httpx.Response:
    return await platform.catalog.put(path, json=body, headers=tenant.auth)


async def set_status(platform: Platform, tenant: Tenant, **body: Any) -> httpx.Response:
    return await platform.catalog.post(f"/v1/companies/{tenant.company_id}/status", json=body, headers=tenant.auth)


async def services_on(platform: Platform, tenant: Tenant, day: str) -> list[str]:
    response = await platform.catalog.get(
        f"/v1/companies/{tenant.company_id}/services", params={"on": day}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return [s["service_id"] for s in response.json()]


async def fixture_assignment(platform: Platform, tenant: Tenant) -> dict[str, Any]:
    listing = await platform.catalog.get("/v1/assignments", headers=tenant.auth)
    found: dict[str, Any] = listing.json()["items"][0]
    return found


class TestServiceDependencies:
    async def test_dependent_services_are_added_automatically_when_a_primary_service_is_selected(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        agent = await a_service(platform, tenant, "rmm-agent")
        backup = await a_service(platform, tenant, "backup", agent)

        plan = await a_plan(platform, tenant, backup)
        stored = (await platform.catalog.get(f"/v1/plans/{plan['plan_id']}", headers=tenant.auth)).json()

        assert [line["service_id"] for line in stored["lines"]] == [backup, agent]
        assert stored["lines"][1]["added_as_dependency_of"] == [backup]
        assert stored == plan  # what was published is what was stored

    async def test_removing_a_service_also_removes_the_services_added_for_it(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        agent = await a_service(platform, tenant, "rmm-agent")
        backup = await a_service(platform, tenant, "backup", agent)
        monitoring = await a_service(platform, tenant, "monitoring")
        plan = await a_plan(platform, tenant, backup, monitoring)

        without_backup = [line for line in plan["lines"] if line["service_id"] != backup]
        saved = await platform.put(
            f"/v1/plans/{plan['plan_id']}", plan_body(plan["plan_id"], without_backup), token=tenant.token
        )

        assert [line["service_id"] for line in saved["event"]["state"]["lines"]] == [monitoring]

    async def test_a_prerequisite_chosen_on_its_own_stays_when_the_service_needing_it_goes(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        agent = await a_service(platform, tenant, "rmm-agent")
        backup = await a_service(platform, tenant, "backup", agent)
        plan = await a_plan(platform, tenant, backup, agent)

        saved = await platform.put(
            f"/v1/plans/{plan['plan_id']}", plan_body(plan["plan_id"], [{"service_id": agent}]), token=tenant.token
        )

        assert [line["service_id"] for line in saved["event"]["state"]["lines"]] == [agent]

    async def test_a_client_cannot_subscribe_to_a_service_without_its_required_services(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        agent = await a_service(platform, tenant, "rmm-agent")
        backup = await a_service(platform, tenant, "backup")
        plan = await a_plan(platform, tenant, backup)
        service = (await platform.catalog.get(f"/v1/services/{backup}", headers=tenant.auth)).json()
        await platform.put(f"/v1/services/{backup}", service | {"requires": [agent]}, token=tenant.token)

        _, body = assignment_body(tenant, plan["plan_id"], "2026-01-01")
        response = await put(platform, tenant, f"/v1/assignments/{body['assignment_id']}", body)

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "plan_id"]
        assert "requires 'rmm-agent-" in response.json()["detail"][0]["msg"]

    async def test_requirements_that_form_a_cycle_are_refused(self, platform: Platform, tenant: Tenant) -> None:
        agent = await a_service(platform, tenant, "rmm-agent")
        backup = await a_service(platform, tenant, "backup", agent)
        service = (await platform.catalog.get(f"/v1/services/{agent}", headers=tenant.auth)).json()

        response = await put(platform, tenant, f"/v1/services/{agent}", service | {"requires": [backup]})

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "requires"]


class TestBundles:
    async def bundle(self, platform: Platform, tenant: Tenant, service_ids: list[str]) -> tuple[str, httpx.Response]:
        bundle_id = str(uuid.uuid4())
        body = {
            "bundle_id": bundle_id,
            "name": "Security pack",
            "description": "AV and EDR",
            "price": "99.00",
            "currency": "GBP",
            "service_ids": service_ids,
        }
        return bundle_id, await put(platform, tenant, f"/v1/bundles/{bundle_id}", body)

    async def test_are_created_read_listed_and_deleted(self, platform: Platform, tenant: Tenant) -> None:
        av, edr = await a_service(platform, tenant, "av"), await a_service(platform, tenant, "edr")

        bundle_id, created = await self.bundle(platform, tenant, [av, edr])
        read = await platform.catalog.get(f"/v1/bundles/{bundle_id}", headers=tenant.auth)
        listing = await platform.catalog.get("/v1/bundles", headers=tenant.auth)
        deleted = await platform.catalog.delete(f"/v1/bundles/{bundle_id}", headers=tenant.auth)

        assert created.status_code == 200
        assert read.json()["price"] == "99.00"
        assert [b["bundle_id"] for b in listing.json()["items"]] == [bundle_id]
        assert deleted.json()["deleted"] is True

    async def test_need_at_least_two_existing_services(self, platform: Platform, tenant: Tenant) -> None:
        av = await a_service(platform, tenant, "av")

        _, one = await self.bundle(platform, tenant, [av])
        _, unknown = await self.bundle(platform, tenant, [av, str(uuid.uuid4())])

        assert one.status_code == 422
        assert one.json()["detail"][0]["loc"] == ["body", "service_ids"]
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "service_ids", "1"]

    async def test_are_billed_at_the_bundle_price_not_the_individual_service_prices(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        plans = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"]
        device = plans[0]["lines"][0]["service_id"]
        edr = await a_service(platform, tenant, "edr")
        bundle_id, _ = await self.bundle(platform, tenant, [device, edr])
        await platform.put(
            f"/v1/plans/{plans[0]['plan_id']}",
            plans[0] | {"lines": [{"bundle_id": bundle_id}]},
            token=tenant.token,
        )

        await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))  # 3 devices, a member service

        async def in_bundle() -> list[Any]:
            return await platform.fetch_as_tenant(
                "rating", tenant, "SELECT 1 FROM rated_records WHERE disposition = 'in_bundle'"
            )

        await platform.wait_for(in_bundle, timeout_s=60)
        await platform.tax_rate(tenant)  # invoicing holds an invoice it cannot tax
        await platform.advance_clock(tenant, "2026-02-01T00:00:00+00:00")
        [event] = await platform.invoices(tenant)
        lines = [(ln["kind"], ln["quantity"], ln["unit_price"], ln["amount"]) for ln in event["invoice"]["lines"]]
        # January in full at the bundle's 99.00; the 3 devices (12.50 each on their own) are not charged again
        assert lines == [("bundle", "1", "99.00", "99.00")]


class TestAssignments:
    async def test_overlapping_bucket_plan_assignments_for_the_same_scope_are_rejected(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        hours = await a_service(platform, tenant, "support-hours")
        first = await a_plan(platform, tenant, hours, plan_type="bucket")
        second = await a_plan(platform, tenant, hours, plan_type="bucket")
        a, body = assignment_body(tenant, first["plan_id"], "2026-01-01", end_date="2026-07-01")
        await platform.put(f"/v1/assignments/{a}", body, token=tenant.token)

        b, overlapping = assignment_body(tenant, second["plan_id"], "2026-06-01")
        refused = await put(platform, tenant, f"/v1/assignments/{b}", overlapping)
        after = await put(platform, tenant, f"/v1/assignments/{b}", overlapping | {"start_date": "2026-07-01"})

        assert refused.status_code == 409
        assert refused.json()["detail"][0]["loc"] == ["body", "start_date"]
        assert "overlaps bucket plan" in refused.json()["detail"][0]["msg"]
        assert after.status_code == 200

    async def test_a_term_gets_its_renewal_date_and_a_category_scope_is_kept(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        plan = await a_plan(platform, tenant, await a_service(platform, tenant, "backup"))
        a, body = assignment_body(
            tenant,
            plan["plan_id"],
            "2026-01-31",
            service_category="backup",
            term={"length_months": 1, "auto_renew": True},
        )

        saved = await platform.put(f"/v1/assignments/{a}", body, token=tenant.token)

        assert saved["event"]["state"]["term"] == {"length_months": 1, "auto_renew": True, "renewal_date": "2026-02-28"}
        assert saved["event"]["state"]["service_category"] == "backup"


class TestClientStatus:
    async def test_status_changes_are_recorded_with_the_correct_date_and_reason(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        first = await set_status(platform, tenant, status="suspended", effective_date="2026-02-01", reason="unpaid")
        second = await set_status(platform, tenant, status="active", effective_date="2026-02-20", reason="paid")

        history = (await platform.catalog.get(f"/v1/client-statuses/{tenant.company_id}", headers=tenant.auth)).json()
        conn = await platform.connect("catalog")
        try:
            audited = await rows_as_tenant(
                conn,
                tenant.tenant_id,
                "SELECT after FROM audit_log WHERE action = 'status_changed' ORDER BY seq",
            )
        finally:
            await conn.close()
        assert first.status_code == second.status_code == 200
        assert [(c["status"], c["effective_date"], c["reason"]) for c in history["history"]] == [
            ("suspended", "2026-02-01", "unpaid"),
            ("active", "2026-02-20", "paid"),
        ]
        assert history["status"] == "active"
        assert [(a["effective_date"], a["reason"]) for a in map(_json, audited)] == [
            ("2026-02-01", "unpaid"),
            ("2026-02-20", "paid"),
        ]

    async def test_cancelling_a_client_ends_its_plans_on_the_effective_date(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        assignment = await fixture_assignment(platform, tenant)

        response = await set_status(platform, tenant, status="cancelled", effective_date="2026-03-01", reason="left")
        ended = (
            await platform.catalog.get(f"/v1/assignments/{assignment['assignment_id']}", headers=tenant.auth)
        ).json()

        assert response.status_code == 200
        assert ended["end_date"] == "2026-03-01"
        assert [e["state"]["end_date"] for e in response.json()["assignments"]] == ["2026-03-01"]
        assert await services_on(platform, tenant, "2026-02-28") != []
        assert await services_on(platform, tenant, "2026-03-01") == []

    async def test_a_cancelled_service_is_removed_from_the_clients_active_plans(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        [device] = await services_on(platform, tenant, "2026-01-15")

        await set_status(
            platform, tenant, status="cancelled", effective_date="2026-02-01", reason="no devices", service_id=device
        )

        assert await services_on(platform, tenant, "2026-01-31") == [device]
        assert await services_on(platform, tenant, "2026-02-01") == []

    async def test_a_cancelled_assignment_is_not_reactivated_but_assigned_again(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        assignment_id = (await fixture_assignment(platform, tenant))["assignment_id"]
        scope = {"assignment_id": assignment_id, "reason": "r"}
        await set_status(platform, tenant, status="cancelled", effective_date="2026-03-01", **scope)

        response = await set_status(platform, tenant, status="active", effective_date="2026-04-01", **scope)

        assert response.status_code == 409
        assert response.json()["detail"][0]["loc"] == ["body", "assignment_id"]

    async def test_status_is_written_only_through_the_status_route(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, f"/v1/client-statuses/{tenant.company_id}", {})

        assert response.status_code == 405


def _json(row: Any) -> dict[str, Any]:
    value = row["after"]
    result: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return result


class TestLoadingACatalog:
    async def test_loads_services_bundles_and_plans_in_dependency_order_with_plans_expanded(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        agent, backup, av, plan_id, bundle_id = (str(uuid.uuid4()) for _ in range(5))

        def service(service_id: str, code: str, *requires: str) -> dict[str, Any]:
            return {
                "service_id": service_id,
                "code": code,
                "name": code,
                "service_type": "Fixed",
                "default_rate": "5.00",
                "currency": "GBP",
                "unit": "device",
                "requires": list(requires),
            }

        document = {
            "plans": [plan_body(plan_id, [{"bundle_id": bundle_id}])],
            "bundles": [
                {
                    "bundle_id": bundle_id,
                    "name": "Pack",
                    "price": "20.00",
                    "currency": "GBP",
                    "service_ids": [backup, av],
                }
            ],
            "services": [service(agent, "agent"), service(backup, "backup", agent), service(av, "av")],
        }

        loaded = await platform.catalog.post("/v1/catalog/import", json=document, headers=tenant.auth)
        again = await platform.catalog.post("/v1/catalog/import", json=document, headers=tenant.auth)
        plan = (await platform.catalog.get(f"/v1/plans/{plan_id}", headers=tenant.auth)).json()

        assert loaded.json() == {"changed": 5, "unchanged": 0, "pending_approval": []}
        assert again.json() == {"changed": 0, "unchanged": 5, "pending_approval": []}
        assert [(line["bundle_id"], line["service_id"]) for line in plan["lines"]] == [(bundle_id, None), (None, agent)]
