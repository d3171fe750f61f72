"""The catalog API for categories, plan pricing models, custom plans and buckets, on the real stack."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.platform import Platform, Tenant

GRADUATED = {
    "model": "graduated",
    "tiers": [
        {"up_to": "10", "unit_price": "12.50"},
        {"up_to": "50", "unit_price": "10.00", "flat_fee": "5.00"},
        {"up_to": None, "unit_price": "8.00"},
    ],
}
BUCKET = {
    "hours": "20",
    "period": "monthly",
    "overage_rate": "110.00",
    "rollover": {"policy": "carry_up_to", "max_hours": "5"},
}


async def service_id_of(platform: Platform, tenant: Tenant) -> str:
    listing = await platform.catalog.get("/v1/services", params={"code": tenant.service_ref}, headers=tenant.auth)
    assert listing.status_code == 200, listing.text
    found: str = listing.json()["items"][0]["service_id"]
    return found


async def service_doc(platform: Platform, tenant: Tenant) -> dict[str, Any]:
    listing = await platform.catalog.get("/v1/services", params={"code": tenant.service_ref}, headers=tenant.auth)
    doc: dict[str, Any] = listing.json()["items"][0]
    return doc


async def put_plan(platform: Platform, tenant: Tenant, **changes: Any) -> tuple[str, httpx.Response]:
    plan_id = str(uuid.uuid4())
    body = {
        "plan_id": plan_id,
        "name": f"Plan {plan_id[:6]}",
        "plan_type": "usage-based",
        "billing_frequency": "monthly",
        "currency": tenant.currency,
        "lines": [{"service_id": await service_id_of(platform, tenant)}],
    } | changes
    return plan_id, await platform.catalog.put(f"/v1/plans/{plan_id}", json=body, headers=tenant.auth)


def paths(response: httpx.Response) -> list[str]:
    return [".".join(str(part) for part in d["loc"][1:]) for d in response.json()["detail"]]


async def put_category(platform: Platform, tenant: Tenant, name: str = "Endpoints") -> str:
    category_id = str(uuid.uuid4())
    await platform.put(
        f"/v1/categories/{category_id}",
        {"category_id": category_id, "name": name, "description": "Per-device services"},
        token=tenant.token,
    )
    return category_id


class TestCategories:
    async def test_a_category_is_created_read_listed_and_deleted(self, platform: Platform, tenant: Tenant) -> None:
        category_id = await put_category(platform, tenant)

        read = await platform.catalog.get(f"/v1/categories/{category_id}", headers=tenant.auth)
        listed = await platform.catalog.get("/v1/categories", headers=tenant.auth)
        deleted = await platform.catalog.delete(f"/v1/categories/{category_id}", headers=tenant.auth)
        gone = await platform.catalog.get(f"/v1/categories/{category_id}", headers=tenant.auth)

        assert read.json()["name"] == "Endpoints"
        assert [c["category_id"] for c in listed.json()["items"]] == [category_id]
        assert deleted.status_code == 200
        assert deleted.json()["deleted"] is True
        assert gone.status_code == 404

    async def test_a_service_is_filed_under_an_existing_category_with_its_tax_category(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        category_id = await put_category(platform, tenant)
        service = await service_doc(platform, tenant)

        saved = await platform.catalog.put(
            f"/v1/services/{service['service_id']}",
            json={k: v for k, v in service.items() if k not in ("tenant_id", "entity_type")}
            | {"category_id": category_id, "tax_category": "standard", "snapshot_aggregation": "last"},
            headers=tenant.auth,
        )

        assert saved.status_code == 200, saved.text
        state = saved.json()["event"]["state"]
        assert (state["category_id"], state["tax_category"], state["snapshot_aggregation"]) == (
            category_id,
            "standard",
            "last",
        )

    async def test_a_service_in_a_missing_category_is_refused(self, platform: Platform, tenant: Tenant) -> None:
        service = await service_doc(platform, tenant)

        saved = await platform.catalog.put(
            f"/v1/services/{service['service_id']}",
            json={k: v for k, v in service.items() if k not in ("tenant_id", "entity_type")}
            | {"category_id": str(uuid.uuid4())},
            headers=tenant.auth,
        )

        assert saved.status_code == 422
        assert paths(saved) == ["category_id"]

    async def test_a_category_in_use_is_not_deleted_and_the_refusal_names_its_services(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        category_id = await put_category(platform, tenant)
        service = await service_doc(platform, tenant)
        await platform.put(
            f"/v1/services/{service['service_id']}",
            {k: v for k, v in service.items() if k not in ("tenant_id", "entity_type")} | {"category_id": category_id},
            token=tenant.token,
        )

        refused = await platform.catalog.delete(f"/v1/categories/{category_id}", headers=tenant.auth)

        assert refused.status_code == 409
        assert tenant.service_ref in refused.json()["detail"][0]["msg"]

    async def test_the_loader_takes_categories_before_the_services_filed_under_them(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        category_id, service_id = str(uuid.uuid4()), str(uuid.uuid4())
        document = {
            "services": [
                {
                    "service_id": service_id,
                    "code": "backup-gb",
                    "name": "Backup storage",
                    "service_type": "Usage",
                    "default_rate": "0.10",
                    "currency": tenant.currency,
                    "unit": "GB",
                    "category_id": category_id,
                    "tax_category": "standard",
                }
            ],
            "categories": [{"category_id": category_id, "name": "Backup"}],
        }

        loaded = await platform.catalog.post("/v1/catalog/import", json=document, headers=tenant.auth)

        assert loaded.status_code == 200, loaded.text
        assert loaded.json() == {"changed": 2, "unchanged": 0, "pending_approval": []}


class TestPlanPricing:
    async def test_a_plan_with_graduated_tiers_and_dated_prices_round_trips(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        service_id = await service_id_of(platform, tenant)
        line = {
            "service_id": service_id,
            "included_quantity": "5",
            "pricing": GRADUATED,
            "prices": [{"effective_from": "2026-03-01", "custom_rate": "9.00"}],
        }
        plan_id, saved = await put_plan(platform, tenant, lines=[line], billing_timing="advance")

        read = await platform.catalog.get(f"/v1/plans/{plan_id}", headers=tenant.auth)

        assert saved.status_code == 200, saved.text
        plan = read.json()
        assert plan["billing_timing"] == "advance"
        assert plan["lines"][0]["pricing"]["model"] == "graduated"
        assert [(t["up_to"], t["unit_price"], t["flat_fee"]) for t in plan["lines"][0]["pricing"]["tiers"]] == [
            ("10", "12.50", None),
            ("50", "10.00", "5.00"),
            (None, "8.00", None),
        ]
        assert plan["lines"][0]["prices"] == [{"effective_from": "2026-03-01", "custom_rate": "9.00", "pricing": None}]
        assert plan["lines"][0]["included_quantity"] == "5"

    @pytest.mark.parametrize(
        ("pricing", "path"),
        [
            (
                {
                    "model": "volume",
                    "tiers": [
                        {"up_to": "10", "unit_price": "1"},
                        {"up_to": "20", "unit_price": "1"},
                        {"up_to": "20", "unit_price": "1"},
                        {"up_to": None, "unit_price": "1"},
                    ],
                },
                ["lines.0.pricing.tiers.2.up_to"],
            ),
            ({"model": "package", "package_size": "0", "package_price": "10"}, ["lines.0.pricing.package_size"]),
        ],
    )
    async def test_invalid_pricing_is_refused_naming_the_path(
        self, platform: Platform, tenant: Tenant, pricing: dict[str, Any], path: list[str]
    ) -> None:
        service_id = await service_id_of(platform, tenant)

        _, refused = await put_plan(platform, tenant, lines=[{"service_id": service_id, "pricing": pricing}])

        assert refused.status_code == 422
        assert paths(refused) == path

    async def test_an_unknown_plan_type_is_refused(self, platform: Platform, tenant: Tenant) -> None:
        _, refused = await put_plan(platform, tenant, plan_type="retainer")

        assert refused.status_code == 422
        assert paths(refused) == ["plan_type"]


class TestCustomPlans:
    async def test_a_custom_plan_for_an_existing_client_is_saved(self, platform: Platform, tenant: Tenant) -> None:
        _, saved = await put_plan(platform, tenant, is_custom=True, company_id=str(tenant.company_id))

        assert saved.status_code == 200, saved.text

    async def test_a_custom_plan_needs_an_existing_client(self, platform: Platform, tenant: Tenant) -> None:
        _, refused = await put_plan(platform, tenant, is_custom=True, company_id=str(uuid.uuid4()))

        assert refused.status_code == 422
        assert paths(refused) == ["company_id"]
        assert "does not exist" in refused.json()["detail"][0]["msg"]


class TestBucketPlans:
    async def test_a_bucket_plan_with_its_bucket_is_saved(self, platform: Platform, tenant: Tenant) -> None:
        plan_id, saved = await put_plan(platform, tenant, plan_type="bucket", bucket=BUCKET)

        read = await platform.catalog.get(f"/v1/plans/{plan_id}", headers=tenant.auth)

        assert saved.status_code == 200, saved.text
        assert read.json()["bucket"]["rollover"] == {"policy": "carry_up_to", "max_hours": "5", "periods": None}

    async def test_a_bucket_plan_needs_a_bucket(self, platform: Platform, tenant: Tenant) -> None:
        _, refused = await put_plan(platform, tenant, plan_type="bucket")

        assert refused.status_code == 422
        assert paths(refused) == ["bucket"]

    async def test_only_a_bucket_plan_has_a_bucket(self, platform: Platform, tenant: Tenant) -> None:
        _, refused = await put_plan(platform, tenant, plan_type="usage-based", bucket=BUCKET)

        assert refused.status_code == 422
        assert paths(refused) == ["bucket"]
