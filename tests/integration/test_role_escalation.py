"""No role may raise itself (issue 17, item 3): a billing manager used to make themselves admin through
POST /v1/catalog/import, which asked only catalog:write of every collection in the document."""

from __future__ import annotations

import uuid

from shared.auth import may_grant
from shared.contracts.catalog import Role
from tests.support.platform import Platform, Tenant


def a_user(user_id: uuid.UUID, role: str) -> dict[str, str]:
    return {"user_id": str(user_id), "email": f"u-{user_id.hex[:6]}@msp.example", "name": "Pat", "role": role,
            "kind": "staff"}  # fmt: skip


class TestTheImportAsksEachCollectionsOwnPermission:
    async def test_a_billing_manager_cannot_make_themselves_admin_by_import(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        manager_id, manager = await platform.add_user(tenant, "billing_manager")
        document = {"users": [a_user(manager_id, "admin")]}
        refused = await platform.catalog.post(
            "/v1/catalog/import", json=document, headers={"Authorization": f"Bearer {manager}"}
        )
        assert refused.status_code == 403, refused.text
        [problem] = refused.json()["detail"]
        assert problem["loc"] == ["body", "users", 0]
        assert problem["msg"] == "role 'billing_manager' may not users:manage (users)"
        still = await platform.catalog.get(f"/v1/users/{manager_id}", headers=tenant.auth)
        assert still.json()["role"] == "billing_manager"

    async def test_nothing_of_a_refused_document_is_saved(self, platform: Platform, tenant: Tenant) -> None:
        _, manager = await platform.add_user(tenant, "billing_manager")
        service_id = uuid.uuid4()
        document = {
            "services": [{"service_id": str(service_id), "code": f"s-{service_id.hex[:6]}", "name": "S",
                          "service_type": "Fixed", "default_rate": "1.00", "currency": "GBP", "unit": "month"}],
            "users": [a_user(uuid.uuid4(), "viewer")],
        }  # fmt: skip
        refused = await platform.catalog.post(
            "/v1/catalog/import", json=document, headers={"Authorization": f"Bearer {manager}"}
        )
        assert refused.status_code == 403
        assert (await platform.catalog.get(f"/v1/services/{service_id}", headers=tenant.auth)).status_code == 404

    async def test_a_billing_manager_still_imports_the_rest_of_a_catalog(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        _, manager = await platform.add_user(tenant, "billing_manager")
        service_id = uuid.uuid4()
        document = {"services": [{"service_id": str(service_id), "code": f"s-{service_id.hex[:6]}", "name": "S",
                                  "service_type": "Fixed", "default_rate": "1.00", "currency": "GBP",
                                  "unit": "month"}]}  # fmt: skip
        loaded = await platform.catalog.post(
            "/v1/catalog/import", json=document, headers={"Authorization": f"Bearer {manager}"}
        )
        assert loaded.status_code == 200, loaded.text

    async def test_an_admin_imports_users(self, platform: Platform, tenant: Tenant) -> None:
        loaded = await platform.catalog.post(
            "/v1/catalog/import", json={"users": [a_user(uuid.uuid4(), "billing_manager")]}, headers=tenant.auth
        )
        assert loaded.status_code == 200, loaded.text


class TestNobodyGrantsARoleAboveTheirOwn:
    def test_a_role_is_given_only_by_someone_holding_all_it_grants(self) -> None:
        assert may_grant(Role.ADMIN, Role.ADMIN)
        assert may_grant(Role.ADMIN, Role.BILLING_MANAGER)
        assert not may_grant(Role.BILLING_MANAGER, Role.ADMIN)
        assert not may_grant(Role.VIEWER, Role.BILLING_MANAGER)


class TestTheNilTenantIsNobodys:
    async def test_no_tenant_can_be_made_with_the_nil_uuid(self, platform: Platform) -> None:
        nil = "00000000-0000-0000-0000-000000000000"
        body = {"tenant_id": nil, "name": "Nobody", "mode": "sandbox", "timezone": "UTC", "base_currency": "GBP"}
        refused = await platform.catalog.put(f"/v1/tenants/{nil}", json=body)
        assert refused.status_code == 422
        assert "reserved" in refused.text


class TestImportsAreBounded:
    async def test_a_document_over_5_mib_is_refused_before_it_is_read_whole(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        huge = b'{"services": [' + b",".join([b'{"name": "' + b"x" * 1000 + b'"}'] * 6000) + b"]}"
        refused = await platform.catalog.post(
            "/v1/catalog/import", content=huge, headers=tenant.auth | {"content-type": "application/json"}
        )
        assert refused.status_code == 413, refused.text[:200]
